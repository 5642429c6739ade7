//! Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV:
//! Using Iso-Value Curves for Customer Base Analysis"; Hardie's note 025).

use super::optim::{self, Objective, Settings};
use super::special::{digamma, ln_gamma};
use super::{ClvError, FitOptions};

/// Gamma-Gamma parameters: a customer's transaction values are Gamma(p, ν) with the
/// customer's scale ν ~ Gamma(q, v) across customers (`v` is the paper's γ).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

/// A fitted Gamma-Gamma model.
#[derive(Debug, Clone, PartialEq)]
pub struct GammaGammaFit {
    pub params: GammaGamma,
    /// Total log-likelihood over the repeat customers.
    pub log_likelihood: f64,
    /// lifetimes' objective: mean negative log-likelihood plus `penalizer · Σ params²`.
    pub objective: f64,
    pub iterations: usize,
    pub evaluations: usize,
    pub gradient_norm: f64,
    pub converged: bool,
    /// Repeat customers fitted (those with frequency > 0).
    pub customers: usize,
}

impl GammaGamma {
    /// Parameters, each positive and finite.
    pub fn new(p: f64, q: f64, v: f64) -> Result<Self, ClvError> {
        for (name, x) in [("p", p), ("q", q), ("v", v)] {
            if !(x.is_finite() && x > 0.0) {
                return Err(ClvError::InvalidParameter {
                    name,
                    value: x,
                    reason: "Gamma-Gamma parameters must be positive and finite",
                });
            }
        }
        Ok(GammaGamma { p, q, v })
    }

    /// The population's mean spend per transaction, p·v / (q − 1); needs q > 1.
    pub fn population_mean(&self) -> Result<f64, ClvError> {
        if self.q <= 1.0 {
            return Err(ClvError::InfiniteMeanValue { q: self.q });
        }
        Ok(self.p * self.v / (self.q - 1.0))
    }

    /// E[M | x, m̄]: the expected spend per transaction of a customer with `x` repeat
    /// purchases of mean value `m` (lifetimes' `conditional_expected_average_profit`):
    /// the weighted average (1 − w)·p·v/(q − 1) + w·m with w = p·x / (p·x + q − 1).
    /// Customers without repeat purchases get the population mean (m is ignored).
    pub fn conditional_expected_average_value(&self, x: f64, m: f64) -> Result<f64, ClvError> {
        let mean = self.population_mean()?;
        let w = self.p * x / (self.p * x + self.q - 1.0);
        Ok(if x > 0.0 {
            (1.0 - w) * mean + w * m
        } else {
            mean
        })
    }

    /// ln L of one repeat customer (x > 0, m > 0).
    pub fn log_likelihood(&self, x: f64, m: f64) -> f64 {
        let GammaGamma { p, q, v } = *self;
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
            + q * v.ln()
            + (p * x - 1.0) * m.ln()
            + p * x * x.ln()
            - (p * x + q) * (x * m + v).ln()
    }
}

/// The repeat customers, with the per-customer constants of the likelihood.
struct GgData {
    /// Distinct frequencies and the customers with each.
    xs: Vec<f64>,
    x_weight: Vec<f64>,
    /// (x, m) per customer.
    rows: Vec<(f64, f64)>,
    n: f64,
    /// Σ x ln m, Σ ln m, Σ x ln x.
    sum_x_ln_m: f64,
    sum_ln_m: f64,
    sum_x_ln_x: f64,
    penalizer: f64,
}

impl GgData {
    fn new(rows: Vec<(f64, f64)>, penalizer: f64) -> Self {
        let mut xs: Vec<f64> = rows.iter().map(|r| r.0).collect();
        xs.sort_unstable_by(f64::total_cmp);
        let mut x_weight = Vec::new();
        let mut distinct: Vec<f64> = Vec::new();
        for x in xs {
            if distinct.last() == Some(&x) {
                *x_weight.last_mut().expect("weight of the last x") += 1.0;
            } else {
                distinct.push(x);
                x_weight.push(1.0);
            }
        }
        let (mut a, mut b, mut c) = (0.0, 0.0, 0.0);
        for &(x, m) in &rows {
            let lm = m.ln();
            a += x * lm;
            b += lm;
            c += x * x.ln();
        }
        GgData {
            xs: distinct,
            x_weight,
            n: rows.len() as f64,
            rows,
            sum_x_ln_m: a,
            sum_ln_m: b,
            sum_x_ln_x: c,
            penalizer,
        }
    }

    /// Σ ln L and its gradient in (p, q, v).
    fn log_likelihood(&self, [p, q, v]: [f64; 3], grad: &mut [f64; 3]) -> f64 {
        let (mut sxl, mut sl, mut sxi, mut si) = (0.0, 0.0, 0.0, 0.0);
        for &(x, m) in &self.rows {
            let d = x * m + v;
            let l = d.ln();
            let inv = 1.0 / d;
            sxl += x * l;
            sl += l;
            sxi += x * inv;
            si += inv;
        }
        let (mut lg, mut dp, mut dq) = (0.0, 0.0, 0.0);
        for (&x, &w) in self.xs.iter().zip(&self.x_weight) {
            let (d1, d2) = (digamma(p * x + q), digamma(p * x));
            lg += w * (ln_gamma(p * x + q) - ln_gamma(p * x));
            dp += w * x * (d1 - d2);
            dq += w * d1;
        }
        let n = self.n;
        let ln_v = v.ln();
        let ll = lg - n * ln_gamma(q) + n * q * ln_v + p * self.sum_x_ln_m - self.sum_ln_m
            + p * self.sum_x_ln_x
            - p * sxl
            - q * sl;
        *grad = [
            dp + self.sum_x_ln_m + self.sum_x_ln_x - sxl,
            dq - n * digamma(q) + n * ln_v - sl,
            n * q / v - p * sxi - q * si,
        ];
        ll
    }
}

impl Objective for GgData {
    fn eval(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let p = [theta[0].exp(), theta[1].exp(), theta[2].exp()];
        let mut g = [0.0; 3];
        let ll = self.log_likelihood(p, &mut g);
        let mut f = -ll / self.n;
        for k in 0..3 {
            f += self.penalizer * p[k] * p[k];
            grad[k] = -p[k] * g[k] / self.n + 2.0 * self.penalizer * p[k] * p[k];
        }
        f
    }
}

/// Fit Gamma-Gamma by maximum likelihood, as lifetimes' `GammaGammaFitter.fit` (BFGS
/// on the logs of (p, q, v) from 0.1 each, analytic gradients). Only customers with
/// `frequency > 0` are used (their `monetary_value` must be positive and finite);
/// the others are skipped, as lifetimes users filter them out before fitting.
pub fn fit_gamma_gamma(
    frequency: &[f64],
    monetary_value: &[f64],
    options: &FitOptions,
) -> Result<GammaGammaFit, ClvError> {
    options.validate()?;
    let rows = super::repeat_spend(frequency, monetary_value)?;
    let customers = rows.len();
    let problem = GgData::new(rows, options.penalizer);
    let m = optim::minimize(
        &problem,
        &[0.1; 3],
        Settings {
            tolerance: options.tolerance,
            max_iterations: options.max_iterations,
        },
    );
    let p: Vec<f64> = m.x.iter().map(|v| v.exp()).collect();
    if !m.converged && !options.allow_unconverged || p.iter().any(|v| !v.is_finite()) {
        return Err(ClvError::NotConverged {
            model: "Gamma-Gamma",
            iterations: m.iterations,
            gradient_norm: m.gradient_norm,
        });
    }
    let mut g = [0.0; 3];
    let ll = problem.log_likelihood([p[0], p[1], p[2]], &mut g);
    Ok(GammaGammaFit {
        params: GammaGamma::new(p[0], p[1], p[2])?,
        log_likelihood: ll,
        objective: m.f,
        iterations: m.iterations,
        evaluations: m.evaluations,
        gradient_norm: m.gradient_norm,
        converged: m.converged,
        customers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let rows = vec![
            (1.0, 10.0),
            (2.0, 35.5),
            (2.0, 12.25),
            (7.0, 80.0),
            (300.0, 22.0),
        ];
        for pen in [0.0, 0.3] {
            let d = GgData::new(rows.clone(), pen);
            for theta in [[0.1, 0.1, 0.1], [1.8, 1.3, 2.7]] {
                let mut g = [0.0; 3];
                d.eval(&theta, &mut g);
                for k in 0..3 {
                    let h = 1e-6;
                    let (mut tp, mut tm) = (theta, theta);
                    tp[k] += h;
                    tm[k] -= h;
                    let mut s = [0.0; 3];
                    let fd = (d.eval(&tp, &mut s) - d.eval(&tm, &mut s)) / (2.0 * h);
                    // central differences of a sum of ln Γ(~2000) terms: noise ~1e-6
                    assert!(
                        (fd - g[k]).abs() < 1e-5 * (1.0 + fd.abs()),
                        "k={k} {fd} {}",
                        g[k]
                    );
                }
            }
        }
    }

    #[test]
    fn aggregated_likelihood_equals_the_sum_over_customers() {
        let rows = vec![
            (1.0, 10.0),
            (2.0, 35.5),
            (2.0, 12.25),
            (7.0, 80.0),
            (300.0, 22.0),
        ];
        let d = GgData::new(rows.clone(), 0.0);
        let gg = GammaGamma::new(6.2, 3.7, 15.4).unwrap();
        let mut g = [0.0; 3];
        let total = d.log_likelihood([gg.p, gg.q, gg.v], &mut g);
        let direct: f64 = rows.iter().map(|&(x, m)| gg.log_likelihood(x, m)).sum();
        assert!((total - direct).abs() < 1e-10 * direct.abs());
    }
}
