//! Feature scaling: z-score, min-max and robust (median / IQR), with the conventions of
//! scikit-learn's `StandardScaler`, `MinMaxScaler` and `RobustScaler`.
//!
//! Every fitted scaler is an affine map written the same way for all three methods,
//!
//! ```text
//! y = (x − center) / scale + offset        x = (y − offset) · scale + center
//! ```
//!
//! so a later step can invert it from the three numbers alone:
//!
//! - `zscore`: `center` = mean, `scale` = population standard deviation (`ddof = 0`, as
//!   `StandardScaler`), `offset` = 0.
//! - `minmax` to `[low, high]` (default `[0, 1]`, `MinMaxScaler(feature_range)`):
//!   `center` = min, `scale` = (max − min) / (high − low), `offset` = low.
//! - `robust` with quantile range `(q_low, q_high)` in percent (default 25–75,
//!   `RobustScaler(quantile_range)`): `center` = median, `scale` = the difference of
//!   the two quantiles (numpy's linear quantiles, see [`crate::stats`]), `offset` = 0.
//!
//! Constant columns follow scikit-learn: a standard deviation that is zero up to the
//! rounding error of the two-pass variance (`StandardScaler`'s test), or a range / IQR
//! below `10·ε` (`MinMaxScaler`, `RobustScaler`), is replaced by 1 (so a constant column
//! maps to 0, or to `low` for min-max), and [`Scaler::constant`] reports it.
//!
//! Fitting ignores NaN (missing values, as scikit-learn's scalers do); infinite values
//! are an error ([`ScaleError::NotFinite`]), since they would make every parameter
//! infinite. Transforming NaN gives NaN.

use crate::stats;

/// Errors of the scalers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScaleError {
    /// A parameter is out of range.
    #[error("{name} {rule}, got {value}")]
    BadParameter {
        name: &'static str,
        rule: &'static str,
        value: String,
    },
    /// An infinite value in the data to fit on.
    #[error("value {value} at position {index} is not finite; scaling needs finite values")]
    NotFinite { index: usize, value: f64 },
    /// No values (other than NaN) to fit on.
    #[error("no values to fit the scaler on (all missing)")]
    Empty,
}

/// How a column is scaled. Build with [`ScaleMethod::zscore`],
/// [`ScaleMethod::min_max`] or [`ScaleMethod::robust`], which check the parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScaleMethod {
    /// `(x − mean) / std`, population std.
    ZScore,
    /// `(x − min) / (max − min) · (high − low) + low`.
    MinMax { low: f64, high: f64 },
    /// `(x − median) / (Q(q_high) − Q(q_low))`, quantiles in percent.
    Robust { q_low: f64, q_high: f64 },
}

impl ScaleMethod {
    /// Standard score with the population standard deviation.
    pub fn zscore() -> Self {
        ScaleMethod::ZScore
    }

    /// Min-max scaling to `[low, high]`; both finite and `low < high`.
    pub fn min_max(low: f64, high: f64) -> Result<Self, ScaleError> {
        if !(low.is_finite() && high.is_finite() && low < high) {
            return Err(ScaleError::BadParameter {
                name: "range",
                rule: "must be two finite numbers [low, high] with low < high",
                value: format!("[{low}, {high}]"),
            });
        }
        Ok(ScaleMethod::MinMax { low, high })
    }

    /// Robust scaling with the quantile range `(q_low, q_high)` in percent;
    /// `0 <= q_low < q_high <= 100`.
    pub fn robust(q_low: f64, q_high: f64) -> Result<Self, ScaleError> {
        if !(0.0..=100.0).contains(&q_low) || !(0.0..=100.0).contains(&q_high) || q_low >= q_high {
            return Err(ScaleError::BadParameter {
                name: "quantile_range",
                rule: "must be two percentages [q_low, q_high] with 0 <= q_low < q_high <= 100",
                value: format!("[{q_low}, {q_high}]"),
            });
        }
        Ok(ScaleMethod::Robust { q_low, q_high })
    }

    /// `zscore`, `minmax` or `robust`.
    pub fn name(&self) -> &'static str {
        match self {
            ScaleMethod::ZScore => "zscore",
            ScaleMethod::MinMax { .. } => "minmax",
            ScaleMethod::Robust { .. } => "robust",
        }
    }
}

/// A fitted scaler: `y = (x − center) / scale + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaler {
    /// The method it was fitted with.
    pub method: ScaleMethod,
    /// Mean (zscore), min (minmax) or median (robust).
    pub center: f64,
    /// Std (zscore), (max − min) / (high − low) (minmax) or the quantile range
    /// (robust); never 0: a constant column has 1 (1 / (high − low) for minmax).
    pub scale: f64,
    /// `low` for minmax, otherwise 0.
    pub offset: f64,
    /// The raw spread before the constant-column rule: std, max − min, or
    /// Q(q_high) − Q(q_low).
    pub spread: f64,
    /// Smallest value fitted on.
    pub min: f64,
    /// Largest value fitted on.
    pub max: f64,
    /// The column was (numerically) constant and its scale was set to 1.
    pub constant: bool,
    /// Number of values fitted on (NaN excluded).
    pub n: usize,
}

/// scikit-learn's `_is_constant_feature`: the variance is within the error bound of
/// the two-pass algorithm (Chan, Golub & LeVeque).
pub fn is_constant_variance(var: f64, mean: f64, n: usize) -> bool {
    let eps = f64::EPSILON;
    let n = n as f64;
    var <= n * eps * var + (n * mean * eps).powi(2)
}

impl Scaler {
    /// Fit on `values`; NaN is ignored, an infinite value is an error.
    pub fn fit(method: ScaleMethod, values: &[f64]) -> Result<Scaler, ScaleError> {
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| v.is_infinite()) {
            return Err(ScaleError::NotFinite { index, value });
        }
        let v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return Err(ScaleError::Empty);
        }
        let tiny = 10.0 * f64::EPSILON;
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s = match method {
            ScaleMethod::ZScore => {
                let mean = stats::mean(&v).ok_or(ScaleError::Empty)?;
                let std = stats::std_pop(&v).ok_or(ScaleError::Empty)?;
                let constant = is_constant_variance(std * std, mean, v.len());
                Scaler {
                    method,
                    center: mean,
                    scale: if constant { 1.0 } else { std },
                    offset: 0.0,
                    spread: std,
                    min,
                    max,
                    constant,
                    n: v.len(),
                }
            }
            ScaleMethod::MinMax { low, high } => {
                let range = max - min;
                let constant = range < tiny;
                Scaler {
                    method,
                    center: min,
                    scale: if constant { 1.0 } else { range } / (high - low),
                    offset: low,
                    spread: range,
                    min,
                    max,
                    constant,
                    n: v.len(),
                }
            }
            ScaleMethod::Robust { q_low, q_high } => {
                let sorted = stats::sorted(&v);
                let q = |p: f64| stats::quantile_sorted(&sorted, p).ok_or(ScaleError::Empty);
                let median = q(0.5)?;
                let iqr = q(q_high / 100.0)? - q(q_low / 100.0)?;
                let constant = iqr < tiny;
                Scaler {
                    method,
                    center: median,
                    scale: if constant { 1.0 } else { iqr },
                    offset: 0.0,
                    spread: iqr,
                    min,
                    max,
                    constant,
                    n: v.len(),
                }
            }
        };
        Ok(s)
    }

    /// Scale one value (NaN stays NaN).
    pub fn transform(&self, x: f64) -> f64 {
        (x - self.center) / self.scale + self.offset
    }

    /// Undo [`Scaler::transform`].
    pub fn inverse(&self, y: f64) -> f64 {
        (y - self.offset) * self.scale + self.center
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zscore_by_hand() {
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0, f64::NAN];
        let s = Scaler::fit(ScaleMethod::zscore(), &v).unwrap();
        assert_eq!((s.center, s.scale, s.offset, s.n), (5.0, 2.0, 0.0, 8));
        assert_eq!(s.transform(9.0), 2.0);
        assert_eq!(s.inverse(-1.5), 2.0);
        assert!(s.transform(f64::NAN).is_nan());
        assert!(!s.constant);
    }

    #[test]
    fn min_max_and_robust_by_hand() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        let s = Scaler::fit(ScaleMethod::min_max(-1.0, 1.0).unwrap(), &v).unwrap();
        assert_eq!((s.center, s.max, s.scale, s.offset), (1.0, 5.0, 2.0, -1.0));
        assert_eq!(
            [s.transform(1.0), s.transform(3.0), s.transform(5.0)],
            [-1.0, 0.0, 1.0]
        );
        // numpy: median 3, q25 2, q75 4 -> iqr 2
        let s = Scaler::fit(ScaleMethod::robust(25.0, 75.0).unwrap(), &v).unwrap();
        assert_eq!((s.center, s.scale), (3.0, 2.0));
        assert_eq!(s.inverse(s.transform(4.5)), 4.5);
    }

    #[test]
    fn constant_columns_get_scale_one_like_sklearn() {
        let v = [7.0; 5];
        for m in [
            ScaleMethod::zscore(),
            ScaleMethod::min_max(0.0, 1.0).unwrap(),
            ScaleMethod::robust(25.0, 75.0).unwrap(),
        ] {
            let s = Scaler::fit(m, &v).unwrap();
            assert!(s.constant, "{}", m.name());
            assert_eq!(s.spread, 0.0);
            assert_eq!(s.transform(7.0), 0.0, "{}", m.name());
            assert_eq!(s.inverse(0.0), 7.0);
        }
        // 0.1 repeated: the two-pass std is not exactly 0, but within rounding error
        let s = Scaler::fit(ScaleMethod::zscore(), &[0.1; 10]).unwrap();
        assert!(s.constant && s.scale == 1.0);
        let s = Scaler::fit(ScaleMethod::min_max(2.0, 4.0).unwrap(), &[3.0]).unwrap();
        assert_eq!((s.transform(3.0), s.scale), (2.0, 0.5));
    }

    #[test]
    fn parameters_and_bad_input_are_checked() {
        assert!(ScaleMethod::min_max(1.0, 1.0).is_err());
        assert!(ScaleMethod::min_max(0.0, f64::INFINITY).is_err());
        assert!(ScaleMethod::min_max(f64::NAN, 1.0).is_err());
        assert!(ScaleMethod::robust(75.0, 25.0).is_err());
        assert!(ScaleMethod::robust(-1.0, 50.0).is_err());
        assert!(ScaleMethod::robust(0.0, 100.0).is_ok());
        let e = ScaleMethod::robust(30.0, 101.0).unwrap_err();
        assert!(e.to_string().contains("quantile_range"), "{e}");
        assert_eq!(
            Scaler::fit(ScaleMethod::zscore(), &[f64::NAN]),
            Err(ScaleError::Empty)
        );
        assert_eq!(
            Scaler::fit(ScaleMethod::zscore(), &[1.0, f64::NEG_INFINITY]),
            Err(ScaleError::NotFinite {
                index: 1,
                value: f64::NEG_INFINITY
            })
        );
    }
}
