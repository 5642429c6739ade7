//! Customer lifetime value: the BG/NBD model of repeat purchases and the Gamma-Gamma
//! model of spend, fitted by maximum likelihood as `lifetimes` 0.11.3 does
//! (`BetaGeoFitter`, `GammaGammaFitter`), with its per-customer predictions.
//!
//! # Data
//! Per customer, in one time unit (days or weeks, ...), the lifetimes summary of a
//! calibration period: `frequency` x, the number of repeat purchase periods (purchase
//! days after the first); `recency` t_x, the age at the last purchase (0 without a
//! repeat purchase); `T`, the age at the end of the period; and for Gamma-Gamma
//! `monetary_value` m̄, the mean value of the repeat purchases. [`Summary::new`]
//! checks them as lifetimes' `_check_inputs` does, with errors that name the row.
//!
//! # Models
//! - **BG/NBD** (Fader, Hardie & Lee 2005a): while alive, a customer buys as a Poisson
//!   process with rate λ; after each purchase they drop out for good with probability
//!   p. Across customers λ ~ Gamma(r, α) and p ~ Beta(a, b), independent. See
//!   [`BetaGeo`].
//! - **Gamma-Gamma** (Fader, Hardie & Lee 2005b): a customer's transaction values are
//!   Gamma(p, ν) around their own mean, ν ~ Gamma(q, v) across customers, and spend is
//!   independent of purchase frequency. See [`GammaGamma`].
//!
//! # Fitting
//! [`fit_bgnbd`] and [`fit_gamma_gamma`] minimise lifetimes' objective — the mean
//! negative log-likelihood plus `penalizer · Σ params²` — over the logs of the
//! parameters, starting from 0.1 each as lifetimes does, with BFGS and analytic
//! gradients (ln Γ and ψ from `statrs`; the BG/NBD likelihood is summed in log space
//! with log-sum-exp, so frequencies in the thousands stay finite). BG/NBD works on time
//! scaled by 1 / max T, as lifetimes. Customers with equal (x, t_x, T) are one weighted
//! term, and the logarithms of α + T and α + t_x are taken once per distinct value, so an
//! evaluation costs little more than one exp and one log per distinct repeat-customer
//! history. On CDNOW the fits reproduce lifetimes' parameters to 1e-6 relative.
//!
//! # Predictions
//! - [`BetaGeo::conditional_expected_purchases`]: E[X(t) | x, t_x, T] (FHL 2005a eq. 10),
//!   with the Gauss hypergeometric function of [`special::hyp2f1`].
//! - [`BetaGeo::p_alive`]: P(alive | x, t_x, T).
//! - [`GammaGamma::conditional_expected_average_value`]: E[M | x, m̄].
//! - [`customer_lifetime_value`]: lifetimes' `customer_lifetime_value`, see there.

pub mod bgnbd;
pub mod gamma_gamma;
mod optim;
pub mod special;

pub use bgnbd::{fit_bgnbd, BetaGeo, BetaGeoFit};
pub use gamma_gamma::{fit_gamma_gamma, GammaGamma, GammaGammaFit};

/// Errors of the CLV models.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClvError {
    /// No customers.
    #[error("there are no customers to fit")]
    Empty,
    /// Two input columns differ in length.
    #[error("`{column}` has {got} values but `frequency` has {expected}")]
    LengthMismatch {
        column: &'static str,
        expected: usize,
        got: usize,
    },
    /// A value is NaN or infinite.
    #[error("`{column}` of row {row} is {value}; every value must be a finite number")]
    NonFinite {
        column: &'static str,
        row: usize,
        value: f64,
    },
    /// A negative frequency, recency or T.
    #[error("`{column}` of row {row} is {value}; it cannot be negative")]
    Negative {
        column: &'static str,
        row: usize,
        value: f64,
    },
    /// A frequency that is not a whole number.
    #[error("`frequency` of row {row} is {value}; frequency counts repeat purchase periods and must be a whole number")]
    NonInteger { row: usize, value: f64 },
    /// recency > T.
    #[error("row {row} has recency {recency} > T {t}; the last purchase cannot come after the end of the period (recency and T must be in the same time unit)")]
    RecencyAfterT { row: usize, recency: f64, t: f64 },
    /// recency > 0 with frequency 0.
    #[error("row {row} has recency {recency} but frequency 0; without a repeat purchase recency must be 0")]
    RecencyWithoutRepeat { row: usize, recency: f64 },
    /// Every T is 0: nothing can be learnt about purchase rates.
    #[error("every customer's T (age) is 0: the calibration period ends on every customer's first purchase day")]
    ZeroAge,
    /// A repeat customer with a non-positive or non-finite mean spend.
    #[error("row {row} has frequency {frequency} and monetary_value {value}; Gamma-Gamma needs a positive mean spend for every repeat customer")]
    NonPositiveMonetary {
        row: usize,
        frequency: f64,
        value: f64,
    },
    /// Gamma-Gamma has no customer with frequency > 0.
    #[error("no customer has a repeat purchase (every frequency is 0): Gamma-Gamma learns spend from repeat purchases only")]
    NoRepeatCustomers,
    /// A fit option is out of range.
    #[error("`{name}` is {value}: {reason}")]
    InvalidOption {
        name: &'static str,
        value: f64,
        reason: &'static str,
    },
    /// A model parameter is out of range.
    #[error("parameter `{name}` is {value}: {reason}")]
    InvalidParameter {
        name: &'static str,
        value: f64,
        reason: &'static str,
    },
    /// The optimiser did not reach the gradient tolerance.
    #[error("the {model} fit did not converge after {iterations} iterations (largest gradient component {gradient_norm:e})")]
    NotConverged {
        model: &'static str,
        iterations: usize,
        gradient_norm: f64,
    },
    /// Gamma-Gamma's q ≤ 1: the population's mean spend is infinite.
    #[error("Gamma-Gamma's q is {q} <= 1, so the population's mean spend p*v/(q-1) is not finite; a few extreme spenders dominate: check monetary values for outliers or add a penalizer")]
    InfiniteMeanValue { q: f64 },
    /// ₂F₁ failed.
    #[error(
        "the hypergeometric function 2F1({a}, {b}; {c}; {z}) could not be evaluated: {reason}"
    )]
    Hyp2f1 {
        a: f64,
        b: f64,
        c: f64,
        z: f64,
        reason: String,
    },
}

/// How to fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// L2 penalty on the parameters, as lifetimes' `penalizer_coef` (≥ 0; default 0).
    pub penalizer: f64,
    /// BFGS iteration limit (default 500).
    pub max_iterations: usize,
    /// Stop when the largest gradient component of the objective (in log-parameters)
    /// is at most this (default 1e-9; lifetimes passes scipy `tol=1e-7`). A fit whose
    /// objective stops decreasing at machine precision before that (its gradient is
    /// then rounding noise) counts as converged when the gradient is at most 1e-5.
    pub tolerance: f64,
    /// Return an unconverged fit (with `converged: false`) instead of an error.
    pub allow_unconverged: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            penalizer: 0.0,
            max_iterations: 500,
            tolerance: 1e-9,
            allow_unconverged: false,
        }
    }
}

impl FitOptions {
    /// Check the options' ranges.
    pub fn validate(&self) -> Result<(), ClvError> {
        if !(self.penalizer.is_finite() && self.penalizer >= 0.0) {
            return Err(ClvError::InvalidOption {
                name: "penalizer",
                value: self.penalizer,
                reason: "must be a finite number >= 0",
            });
        }
        if self.max_iterations == 0 {
            return Err(ClvError::InvalidOption {
                name: "max_iterations",
                value: 0.0,
                reason: "must be at least 1",
            });
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(ClvError::InvalidOption {
                name: "tolerance",
                value: self.tolerance,
                reason: "must be a finite number > 0",
            });
        }
        Ok(())
    }
}

/// A checked lifetimes summary: frequency, recency and T per customer.
#[derive(Debug, Clone, Copy)]
pub struct Summary<'a> {
    pub frequency: &'a [f64],
    pub recency: &'a [f64],
    pub t: &'a [f64],
}

impl<'a> Summary<'a> {
    /// Check the summary: equal lengths, at least one customer, finite values,
    /// whole non-negative frequencies, 0 ≤ recency ≤ T, and recency 0 when frequency
    /// is 0 (lifetimes' `_check_inputs`).
    pub fn new(frequency: &'a [f64], recency: &'a [f64], t: &'a [f64]) -> Result<Self, ClvError> {
        let n = frequency.len();
        for (column, c) in [("recency", recency), ("T", t)] {
            if c.len() != n {
                return Err(ClvError::LengthMismatch {
                    column,
                    expected: n,
                    got: c.len(),
                });
            }
        }
        if n == 0 {
            return Err(ClvError::Empty);
        }
        for row in 0..n {
            check_row(row, frequency[row], recency[row], t[row])?;
        }
        Ok(Summary {
            frequency,
            recency,
            t,
        })
    }

    /// Customers.
    pub fn len(&self) -> usize {
        self.frequency.len()
    }

    /// Never true for a checked summary.
    pub fn is_empty(&self) -> bool {
        self.frequency.is_empty()
    }
}

/// Check one customer's (frequency, recency, T); `row` is used in the error.
pub fn check_row(row: usize, x: f64, tx: f64, t: f64) -> Result<(), ClvError> {
    check_frequency(row, x)?;
    for (column, v) in [("recency", tx), ("T", t)] {
        if !v.is_finite() {
            return Err(ClvError::NonFinite {
                column,
                row,
                value: v,
            });
        }
        if v < 0.0 {
            return Err(ClvError::Negative {
                column,
                row,
                value: v,
            });
        }
    }
    if tx > t {
        return Err(ClvError::RecencyAfterT {
            row,
            recency: tx,
            t,
        });
    }
    if x == 0.0 && tx != 0.0 {
        return Err(ClvError::RecencyWithoutRepeat { row, recency: tx });
    }
    Ok(())
}

fn check_frequency(row: usize, x: f64) -> Result<(), ClvError> {
    if !x.is_finite() {
        return Err(ClvError::NonFinite {
            column: "frequency",
            row,
            value: x,
        });
    }
    if x < 0.0 {
        return Err(ClvError::Negative {
            column: "frequency",
            row,
            value: x,
        });
    }
    if x.fract() != 0.0 {
        return Err(ClvError::NonInteger { row, value: x });
    }
    Ok(())
}

/// The (frequency, monetary_value) of the repeat customers, checked.
fn repeat_spend(frequency: &[f64], monetary: &[f64]) -> Result<Vec<(f64, f64)>, ClvError> {
    if monetary.len() != frequency.len() {
        return Err(ClvError::LengthMismatch {
            column: "monetary_value",
            expected: frequency.len(),
            got: monetary.len(),
        });
    }
    if frequency.is_empty() {
        return Err(ClvError::Empty);
    }
    let mut rows = Vec::new();
    for (row, (&x, &m)) in frequency.iter().zip(monetary).enumerate() {
        check_frequency(row, x)?;
        if x > 0.0 {
            if !(m.is_finite() && m > 0.0) {
                return Err(ClvError::NonPositiveMonetary {
                    row,
                    frequency: x,
                    value: m,
                });
            }
            rows.push((x, m));
        }
    }
    if rows.is_empty() {
        return Err(ClvError::NoRepeatCustomers);
    }
    Ok(rows)
}

/// The time unit of recency and T, as lifetimes' `freq` argument of
/// `customer_lifetime_value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeUnit {
    /// lifetimes "D": 30 per month.
    #[default]
    Days,
    /// lifetimes "W": 4.345 per month.
    Weeks,
    /// lifetimes "M": 1 per month.
    Months,
    /// lifetimes "H": 720 per month.
    Hours,
}

impl TimeUnit {
    /// Periods per month, lifetimes' factors.
    pub fn per_month(self) -> f64 {
        match self {
            TimeUnit::Days => 30.0,
            TimeUnit::Weeks => 4.345,
            TimeUnit::Months => 1.0,
            TimeUnit::Hours => 720.0,
        }
    }

    /// Periods per year: 365 days, 52 weeks, 12 months or 8,760 hours.
    pub fn per_year(self) -> f64 {
        match self {
            TimeUnit::Days => 365.0,
            TimeUnit::Weeks => 52.0,
            TimeUnit::Months => 12.0,
            TimeUnit::Hours => 8760.0,
        }
    }
}

/// How CLV is discounted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClvOptions {
    /// Months of future purchases counted (lifetimes' `time`, default 12).
    pub months: u32,
    /// Discount rate per month (lifetimes' `discount_rate`, default 0.01).
    pub discount_rate: f64,
    /// Unit of recency and T (lifetimes' `freq`).
    pub time_unit: TimeUnit,
}

impl Default for ClvOptions {
    fn default() -> Self {
        ClvOptions {
            months: 12,
            discount_rate: 0.01,
            time_unit: TimeUnit::Days,
        }
    }
}

impl ClvOptions {
    /// Check the options' ranges.
    pub fn validate(&self) -> Result<(), ClvError> {
        if self.months == 0 {
            return Err(ClvError::InvalidOption {
                name: "months",
                value: 0.0,
                reason: "must be at least 1",
            });
        }
        if !(self.discount_rate.is_finite() && self.discount_rate > -1.0) {
            return Err(ClvError::InvalidOption {
                name: "discount_rate",
                value: self.discount_rate,
                reason: "must be a finite number > -1 (a monthly rate such as 0.01)",
            });
        }
        Ok(())
    }
}

/// Customer lifetime value, as lifetimes' `GammaGammaFitter.customer_lifetime_value`:
///
/// CLV = Σ_{i=1}^{months} value · (E[X(i·f) | x, t_x, T] − E[X((i−1)·f) | x, t_x, T]) / (1 + d)^i
///
/// where f is the number of time units per month ([`TimeUnit::per_month`]: 30 days,
/// 4.345 weeks), d the monthly discount rate, E the BG/NBD conditional expected
/// purchases and `value` the expected spend per purchase (normally
/// [`GammaGamma::conditional_expected_average_value`]). Each month's expected
/// purchases are valued and discounted at the end of that month.
pub fn customer_lifetime_value(
    bg: &BetaGeo,
    value: f64,
    x: f64,
    tx: f64,
    t: f64,
    options: &ClvOptions,
) -> Result<f64, ClvError> {
    let f = options.time_unit.per_month();
    let mut prev = 0.0;
    let mut clv = 0.0;
    for i in 1..=options.months {
        let e = bg.conditional_expected_purchases(f64::from(i) * f, x, tx, t)?;
        clv += value * (e - prev) / (1.0 + options.discount_rate).powi(i as i32);
        prev = e;
    }
    Ok(clv)
}

/// Everything the models say about one customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// E[X(horizon) | x, t_x, T].
    pub expected_purchases: f64,
    pub p_alive: f64,
    /// E[M | x, m̄].
    pub expected_average_value: f64,
    pub clv: f64,
}

/// One customer's calibration summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History {
    /// Repeat purchase periods x.
    pub frequency: f64,
    /// Age at the last purchase t_x.
    pub recency: f64,
    /// Age at the end of the calibration period T.
    pub t: f64,
    /// Mean value of the repeat purchases m̄ (ignored when frequency is 0).
    pub monetary_value: f64,
}

/// [`Prediction`] of one customer over `horizon` time units.
pub fn predict(
    bg: &BetaGeo,
    gg: &GammaGamma,
    customer: &History,
    horizon: f64,
    options: &ClvOptions,
) -> Result<Prediction, ClvError> {
    let History {
        frequency: x,
        recency: tx,
        t,
        monetary_value: m,
    } = *customer;
    let value = gg.conditional_expected_average_value(x, m)?;
    Ok(Prediction {
        expected_purchases: bg.conditional_expected_purchases(horizon, x, tx, t)?,
        p_alive: bg.p_alive(x, tx, t),
        expected_average_value: value,
        clv: customer_lifetime_value(bg, value, x, tx, t, options)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_errors_name_the_row() {
        let e = Summary::new(&[0.0, 1.0], &[0.0, 5.0], &[3.0, 4.0]).unwrap_err();
        assert_eq!(
            e,
            ClvError::RecencyAfterT {
                row: 1,
                recency: 5.0,
                t: 4.0
            }
        );
        assert!(matches!(
            Summary::new(&[1.5], &[1.0], &[2.0]),
            Err(ClvError::NonInteger { row: 0, .. })
        ));
        assert!(matches!(
            Summary::new(&[1.0], &[-1.0], &[2.0]),
            Err(ClvError::Negative {
                column: "recency",
                ..
            })
        ));
        assert!(matches!(
            Summary::new(&[0.0], &[1.0], &[2.0]),
            Err(ClvError::RecencyWithoutRepeat { .. })
        ));
        assert!(matches!(
            Summary::new(&[1.0], &[f64::NAN], &[2.0]),
            Err(ClvError::NonFinite { .. })
        ));
        assert_eq!(Summary::new(&[], &[], &[]).unwrap_err(), ClvError::Empty);
        assert!(matches!(
            Summary::new(&[1.0], &[1.0, 2.0], &[2.0]),
            Err(ClvError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn gamma_gamma_needs_repeat_customers() {
        let o = FitOptions::default();
        assert_eq!(
            fit_gamma_gamma(&[0.0, 0.0], &[0.0, 0.0], &o).unwrap_err(),
            ClvError::NoRepeatCustomers
        );
        assert!(matches!(
            fit_gamma_gamma(&[0.0, 2.0], &[0.0, -3.0], &o),
            Err(ClvError::NonPositiveMonetary { row: 1, .. })
        ));
    }

    #[test]
    fn options_are_checked() {
        let o = FitOptions {
            penalizer: -1.0,
            ..FitOptions::default()
        };
        assert!(matches!(
            o.validate(),
            Err(ClvError::InvalidOption {
                name: "penalizer",
                ..
            })
        ));
        let c = ClvOptions {
            discount_rate: -1.0,
            ..ClvOptions::default()
        };
        assert!(c.validate().is_err());
    }
}
