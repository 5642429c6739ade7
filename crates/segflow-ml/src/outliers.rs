//! Univariate outlier fences: IQR (Tukey), z-score and robust z-score (MAD).
//!
//! Conventions (see [`crate::stats`]): quartiles are numpy's default linear quantiles;
//! the z-score uses the population standard deviation (`ddof = 0`, as
//! `scipy.stats.zscore` and scikit-learn's `StandardScaler`); the robust z-score scales
//! the MAD by [`MAD_NORMAL_SCALE`] (1.4826). A value is an outlier when it lies strictly
//! outside `[lower, upper]`; clipping winsorises to the same fences. With a zero scale
//! (all values equal, or a MAD of 0) the fences collapse to the centre, so every value
//! that differs from it is an outlier — as an infinite z-score would say.

use crate::stats::{self, MAD_NORMAL_SCALE};

/// Errors of the outlier methods.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutlierError {
    /// A parameter is out of range.
    #[error("{name} must be a finite number {rule}, got {value}")]
    BadParameter {
        name: &'static str,
        rule: &'static str,
        value: f64,
    },
    /// No finite values to fit on.
    #[error("no finite values to compute the fences from")]
    Empty,
}

/// How the fences are computed. Build with [`OutlierMethod::iqr`],
/// [`OutlierMethod::zscore`] or [`OutlierMethod::robust_z`], which check the parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutlierMethod {
    /// `[Q1 - k·IQR, Q3 + k·IQR]`.
    Iqr { k: f64 },
    /// `mean ± threshold·std` (population std).
    ZScore { threshold: f64 },
    /// `median ± threshold·1.4826·MAD`.
    RobustZ { threshold: f64 },
}

fn check(name: &'static str, value: f64, allow_zero: bool) -> Result<f64, OutlierError> {
    let ok = value.is_finite() && (value > 0.0 || (allow_zero && value == 0.0));
    if ok {
        Ok(value)
    } else {
        Err(OutlierError::BadParameter {
            name,
            rule: if allow_zero { ">= 0" } else { "> 0" },
            value,
        })
    }
}

impl OutlierMethod {
    /// Tukey's fences with multiplier `k` (usually 1.5; `k >= 0`).
    pub fn iqr(k: f64) -> Result<Self, OutlierError> {
        Ok(OutlierMethod::Iqr {
            k: check("k", k, true)?,
        })
    }
    /// Z-score fences at `threshold` standard deviations (usually 3; `> 0`).
    pub fn zscore(threshold: f64) -> Result<Self, OutlierError> {
        Ok(OutlierMethod::ZScore {
            threshold: check("threshold", threshold, false)?,
        })
    }
    /// Robust z-score fences at `threshold` scaled MADs (usually 3.5; `> 0`).
    pub fn robust_z(threshold: f64) -> Result<Self, OutlierError> {
        Ok(OutlierMethod::RobustZ {
            threshold: check("threshold", threshold, false)?,
        })
    }
    /// `iqr`, `zscore` or `robust_z`.
    pub fn name(&self) -> &'static str {
        match self {
            OutlierMethod::Iqr { .. } => "iqr",
            OutlierMethod::ZScore { .. } => "zscore",
            OutlierMethod::RobustZ { .. } => "robust_z",
        }
    }
}

/// Fitted fences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fences {
    /// Smallest value that is not an outlier.
    pub lower: f64,
    /// Largest value that is not an outlier.
    pub upper: f64,
    /// Median (iqr, robust_z) or mean (zscore).
    pub center: f64,
    /// IQR, population std or 1.4826·MAD.
    pub scale: f64,
    /// Number of values fitted on.
    pub n: usize,
}

impl Fences {
    /// Fit fences on `values`; NaN and infinite values are ignored.
    pub fn fit(method: OutlierMethod, values: &[f64]) -> Result<Fences, OutlierError> {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Err(OutlierError::Empty);
        }
        let sorted = stats::sorted(&v);
        let q = |p| stats::quantile_sorted(&sorted, p).ok_or(OutlierError::Empty);
        let (lower, upper, center, scale) = match method {
            OutlierMethod::Iqr { k } => {
                let (q1, q3) = (q(0.25)?, q(0.75)?);
                let iqr = q3 - q1;
                (q1 - k * iqr, q3 + k * iqr, q(0.5)?, iqr)
            }
            OutlierMethod::ZScore { threshold } => {
                let m = stats::mean(&v).ok_or(OutlierError::Empty)?;
                let s = stats::std_pop(&v).ok_or(OutlierError::Empty)?;
                (m - threshold * s, m + threshold * s, m, s)
            }
            OutlierMethod::RobustZ { threshold } => {
                let m = q(0.5)?;
                let s = stats::mad(&v).ok_or(OutlierError::Empty)? * MAD_NORMAL_SCALE;
                (m - threshold * s, m + threshold * s, m, s)
            }
        };
        Ok(Fences {
            lower,
            upper,
            center,
            scale,
            n: v.len(),
        })
    }

    /// True when `x` lies strictly outside the fences (NaN is never an outlier).
    pub fn is_outlier(&self, x: f64) -> bool {
        x < self.lower || x > self.upper
    }

    /// `x` winsorised to the fences (NaN stays NaN).
    pub fn clip(&self, x: f64) -> f64 {
        if x < self.lower {
            self.lower
        } else if x > self.upper {
            self.upper
        } else {
            x
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: [f64; 9] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 100.0];

    #[test]
    fn iqr_fences_by_hand() {
        // numpy: q1 = 3, q3 = 7, iqr = 4 -> [-3, 13]
        let f = Fences::fit(OutlierMethod::iqr(1.5).unwrap(), &V).unwrap();
        assert_eq!(
            (f.lower, f.upper, f.center, f.scale),
            (-3.0, 13.0, 5.0, 4.0)
        );
        assert!(f.is_outlier(100.0) && !f.is_outlier(13.0));
        assert_eq!(f.clip(100.0), 13.0);
        assert!(f.clip(f64::NAN).is_nan() && !f.is_outlier(f64::NAN));
    }

    #[test]
    fn z_and_robust_z() {
        let f = Fences::fit(
            OutlierMethod::zscore(2.0).unwrap(),
            &[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0],
        )
        .unwrap();
        assert_eq!((f.lower, f.upper), (1.0, 9.0));
        // median 5, MAD 2 -> scale 2.9652
        let f = Fences::fit(OutlierMethod::robust_z(3.5).unwrap(), &V).unwrap();
        assert_eq!(f.center, 5.0);
        assert!((f.scale - 2.0 * 1.4826).abs() < 1e-12);
        assert!(f.is_outlier(100.0) && !f.is_outlier(1.0));
    }

    #[test]
    fn parameters_and_empty_input_are_checked() {
        assert!(OutlierMethod::iqr(-1.0).is_err());
        assert!(OutlierMethod::iqr(0.0).is_ok());
        assert!(OutlierMethod::zscore(0.0).is_err());
        assert!(OutlierMethod::robust_z(f64::NAN).is_err());
        let m = OutlierMethod::iqr(1.5).unwrap();
        assert_eq!(Fences::fit(m, &[f64::NAN]), Err(OutlierError::Empty));
    }
}
