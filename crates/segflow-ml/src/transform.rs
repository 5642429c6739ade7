//! Variance-stabilising transforms: `log1p`, Box-Cox and Yeo-Johnson, with the power
//! parameter λ fitted by maximum likelihood as `scipy.stats.boxcox` /
//! `scipy.stats.yeojohnson` (and scikit-learn's `PowerTransformer`) do.
//!
//! - `log1p`: `y = ln(1 + x)`, defined for `x > -1`.
//! - Box-Cox (`scipy.special.boxcox`): `y = (x^λ − 1) / λ`, `ln x` at λ = 0; defined
//!   for `x > 0` only.
//! - Yeo-Johnson: `((x + 1)^λ − 1) / λ` for `x >= 0` and
//!   `−((1 − x)^(2−λ) − 1) / (2 − λ)` for `x < 0` (logarithms at λ = 0 and 2); defined
//!   for every real `x`.
//!
//! A fixed `shift` is added before the transform (`y = T(x + shift)`), so Box-Cox can be
//! used on data with zeros, and an optional standardisation (`StandardScaler` on the
//! transformed values, as `PowerTransformer(standardize=True)`) follows it. Every
//! step is invertible: [`Transformer::inverse`].
//!
//! λ is found as scipy finds it: Box-Cox maximises the profile log-likelihood
//! ([`box_cox_llf`]) with Brent's method after a downhill bracket search from
//! (−2, 2) (`scipy.optimize.brent`); Yeo-Johnson maximises [`yeo_johnson_llf`] with
//! bounded Brent (`scipy.optimize.fminbound`) between bounds that keep the transformed
//! data clear of overflow, as `scipy.stats.yeojohnson_normmax`. Both tolerances are
//! scipy's (1.48e-8). The log-likelihoods are computed in log space: the variance of
//! `x^λ` is evaluated as `exp(2m) · var(exp(λ ln x − m))` with `m` the largest
//! exponent, so no power overflows however far the search strays.
//!
//! A (numerically) constant column — scikit-learn's two-pass variance test — has no
//! maximum-likelihood λ; it gets λ = 1 (as `PowerTransformer` does for Yeo-Johnson)
//! and [`Transformer::constant`] reports it.
//!
//! Fitting ignores NaN (missing). Values outside the domain (after the shift) and
//! infinite values are typed errors: filter them with [`TransformParams::in_domain`]
//! first (the `transform` component moves those rows to quarantine).

use crate::scale::{is_constant_variance, ScaleMethod, Scaler};
use crate::stats;

/// Errors of the transforms.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransformError {
    /// A parameter is out of range or not allowed for the method.
    #[error("{name} {rule}")]
    BadParameter { name: &'static str, rule: String },
    /// A value outside the method's domain (after the shift).
    #[error(
        "value {value} at position {index} is outside the domain of {method}: x + shift must be > {bound} (shift {shift})"
    )]
    OutOfDomain {
        index: usize,
        value: f64,
        method: &'static str,
        bound: f64,
        shift: f64,
    },
    /// An infinite value.
    #[error("value {value} at position {index} is not finite")]
    NotFinite { index: usize, value: f64 },
    /// No values (other than NaN) to fit on.
    #[error("no values to fit the transform on (all missing)")]
    Empty,
    /// The maximum-likelihood search failed.
    #[error("{method}: could not find the maximum-likelihood lambda: {detail}")]
    NoOptimum {
        method: &'static str,
        detail: String,
    },
    /// The fitted (or fixed) λ sends some value out of the range of f64.
    #[error("{method} with lambda {lambda} overflows on value {value}; use a smaller |lambda| or rescale the column first")]
    Overflow {
        method: &'static str,
        lambda: f64,
        value: f64,
    },
}

/// The transform family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerMethod {
    /// `ln(1 + x)`.
    Log1p,
    /// Box-Cox, positive data.
    BoxCox,
    /// Yeo-Johnson, any real data.
    YeoJohnson,
}

impl PowerMethod {
    /// `log1p`, `box_cox` or `yeo_johnson`.
    pub fn name(&self) -> &'static str {
        match self {
            PowerMethod::Log1p => "log1p",
            PowerMethod::BoxCox => "box_cox",
            PowerMethod::YeoJohnson => "yeo_johnson",
        }
    }

    /// The exclusive lower bound of the domain: `x` must be `> bound` (`None`: all
    /// reals).
    pub fn domain_bound(&self) -> Option<f64> {
        match self {
            PowerMethod::Log1p => Some(-1.0),
            PowerMethod::BoxCox => Some(0.0),
            PowerMethod::YeoJohnson => None,
        }
    }
}

/// What to fit. Build with [`TransformParams::new`], which checks the combination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransformParams {
    pub method: PowerMethod,
    /// A fixed λ (Box-Cox and Yeo-Johnson only); `None` fits it.
    pub lambda: Option<f64>,
    /// Added to every value before the transform.
    pub shift: f64,
    /// Standardise (mean 0, population std 1) after the transform.
    pub standardize: bool,
}

impl TransformParams {
    /// Check and build the parameters: `lambda` and `shift` finite, `lambda` only for
    /// Box-Cox and Yeo-Johnson.
    pub fn new(
        method: PowerMethod,
        lambda: Option<f64>,
        shift: f64,
        standardize: bool,
    ) -> Result<Self, TransformError> {
        if let Some(l) = lambda {
            if method == PowerMethod::Log1p {
                return Err(TransformError::BadParameter {
                    name: "lambda",
                    rule: "is only used by box_cox and yeo_johnson; log1p has no parameter".into(),
                });
            }
            if !l.is_finite() {
                return Err(TransformError::BadParameter {
                    name: "lambda",
                    rule: format!("must be a finite number, got {l}"),
                });
            }
        }
        if !shift.is_finite() {
            return Err(TransformError::BadParameter {
                name: "shift",
                rule: format!("must be a finite number, got {shift}"),
            });
        }
        Ok(TransformParams {
            method,
            lambda,
            shift,
            standardize,
        })
    }

    /// `x` can be transformed: finite and `x + shift` inside the domain. NaN is not in
    /// the domain either (it is missing; callers keep it as is).
    pub fn in_domain(&self, x: f64) -> bool {
        let s = x + self.shift;
        x.is_finite() && s.is_finite() && self.method.domain_bound().is_none_or(|b| s > b)
    }
}

/// A fitted transform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transformer {
    pub params: TransformParams,
    /// λ (fitted or fixed); `None` for `log1p`.
    pub lambda: Option<f64>,
    /// λ was fitted by maximum likelihood (not fixed, not the constant-column 1).
    pub lambda_fitted: bool,
    /// The profile log-likelihood at λ (`scipy.stats.boxcox_llf` /
    /// `yeojohnson_llf`) on the shifted data; `None` for `log1p` and constant columns.
    pub log_likelihood: Option<f64>,
    /// The standardisation of the transformed values, when asked for.
    pub standardizer: Option<Scaler>,
    /// The column was numerically constant (λ = 1 unless fixed).
    pub constant: bool,
    /// Number of values fitted on (NaN excluded).
    pub n: usize,
}

impl Transformer {
    /// Fit on `values`: NaN is ignored; infinite or out-of-domain values are errors.
    pub fn fit(params: TransformParams, values: &[f64]) -> Result<Transformer, TransformError> {
        let mut x = Vec::with_capacity(values.len());
        for (index, &value) in values.iter().enumerate() {
            if value.is_nan() {
                continue;
            }
            if value.is_infinite() {
                return Err(TransformError::NotFinite { index, value });
            }
            if !params.in_domain(value) {
                return Err(TransformError::OutOfDomain {
                    index,
                    value,
                    method: params.method.name(),
                    bound: params.method.domain_bound().unwrap_or(f64::NEG_INFINITY),
                    shift: params.shift,
                });
            }
            x.push(value + params.shift);
        }
        if x.is_empty() {
            return Err(TransformError::Empty);
        }
        let n = x.len();
        let mean = stats::mean(&x).ok_or(TransformError::Empty)?;
        let sd = stats::std_pop(&x).ok_or(TransformError::Empty)?;
        let constant = is_constant_variance(sd * sd, mean, n);
        let method = params.method;
        let (lambda, lambda_fitted) = match (method, params.lambda) {
            (PowerMethod::Log1p, _) => (None, false),
            (_, Some(l)) => (Some(l), false),
            (_, None) if constant => (Some(1.0), false),
            (PowerMethod::BoxCox, None) => (Some(box_cox_lambda(&x)?), true),
            (PowerMethod::YeoJohnson, None) => (Some(yeo_johnson_lambda(&x)?), true),
        };
        let t = |v: f64| apply(method, lambda, v);
        // Overflow check on the extremes (the transforms are monotone).
        let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        for v in [lo, hi] {
            if !t(v).is_finite() {
                return Err(TransformError::Overflow {
                    method: method.name(),
                    lambda: lambda.unwrap_or(f64::NAN),
                    value: v - params.shift,
                });
            }
        }
        let log_likelihood = match (method, lambda) {
            (_, _) if constant => None,
            (PowerMethod::BoxCox, Some(l)) => Some(box_cox_llf(l, &x)),
            (PowerMethod::YeoJohnson, Some(l)) => Some(yeo_johnson_llf(l, &x)),
            _ => None,
        };
        let standardizer = if params.standardize {
            let y: Vec<f64> = x.iter().map(|&v| t(v)).collect();
            Some(Scaler::fit(ScaleMethod::zscore(), &y).map_err(|_| TransformError::Empty)?)
        } else {
            None
        };
        Ok(Transformer {
            params,
            lambda,
            lambda_fitted,
            log_likelihood,
            standardizer,
            constant,
            n,
        })
    }

    /// Transform one value; NaN stays NaN, and a value outside the domain gives NaN
    /// (check [`TransformParams::in_domain`] first).
    pub fn transform(&self, x: f64) -> f64 {
        if !self.params.in_domain(x) {
            return f64::NAN;
        }
        let y = apply(self.params.method, self.lambda, x + self.params.shift);
        match &self.standardizer {
            Some(s) => s.transform(y),
            None => y,
        }
    }

    /// Undo [`Transformer::transform`] (NaN where `y` is outside the transform's range).
    pub fn inverse(&self, y: f64) -> f64 {
        let y = match &self.standardizer {
            Some(s) => s.inverse(y),
            None => y,
        };
        let x = match (self.params.method, self.lambda) {
            (PowerMethod::Log1p, _) => y.exp_m1(),
            (PowerMethod::BoxCox, Some(l)) => inv_box_cox(y, l),
            (PowerMethod::YeoJohnson, Some(l)) => inv_yeo_johnson(y, l),
            (_, None) => f64::NAN,
        };
        x - self.params.shift
    }
}

fn apply(method: PowerMethod, lambda: Option<f64>, x: f64) -> f64 {
    match (method, lambda) {
        (PowerMethod::Log1p, _) => x.ln_1p(),
        (PowerMethod::BoxCox, Some(l)) => box_cox(x, l),
        (PowerMethod::YeoJohnson, Some(l)) => yeo_johnson(x, l),
        (_, None) => f64::NAN,
    }
}

/// Box-Cox of one value, as `scipy.special.boxcox` (NaN for `x < 0`, −∞ or NaN at
/// `x = 0`: the domain is `x > 0`).
pub fn box_cox(x: f64, lambda: f64) -> f64 {
    let lx = x.ln();
    if lambda.abs() < 1e-19 {
        lx
    } else if lambda * lx < 709.78 {
        (lambda * lx).exp_m1() / lambda
    } else {
        (lambda * lx - lambda.abs().ln()).exp() - 1.0 / lambda
    }
}

/// Inverse Box-Cox, as `scipy.special.inv_boxcox`.
pub fn inv_box_cox(y: f64, lambda: f64) -> f64 {
    if lambda == 0.0 {
        y.exp()
    } else {
        ((lambda * y).ln_1p() / lambda).exp()
    }
}

/// Yeo-Johnson of one value, as scipy's `_yeojohnson_transform`.
pub fn yeo_johnson(x: f64, lambda: f64) -> f64 {
    let eps = f64::EPSILON;
    if x >= 0.0 {
        if lambda.abs() < eps {
            x.ln_1p()
        } else {
            (lambda * x.ln_1p()).exp_m1() / lambda
        }
    } else if (lambda - 2.0).abs() > eps {
        -((2.0 - lambda) * (-x).ln_1p()).exp_m1() / (2.0 - lambda)
    } else {
        -(-x).ln_1p()
    }
}

/// Inverse Yeo-Johnson, as scikit-learn's `_yeo_johnson_inverse_transform`.
pub fn inv_yeo_johnson(y: f64, lambda: f64) -> f64 {
    let eps = f64::EPSILON;
    if y >= 0.0 {
        if lambda.abs() < eps {
            y.exp_m1()
        } else {
            ((y * lambda).ln_1p() / lambda).exp_m1()
        }
    } else if (lambda - 2.0).abs() > eps {
        -((-(2.0 - lambda) * y).ln_1p() / (2.0 - lambda)).exp_m1()
    } else {
        -(-y).exp_m1()
    }
}

/// `ln |e^t − 1|`, accurate for every `t` (−∞ at `t = 0`).
fn ln_abs_expm1(t: f64) -> f64 {
    if t > 1.0 {
        t + (-(-t).exp()).ln_1p()
    } else {
        t.exp_m1().abs().ln()
    }
}

/// `ln var(v)` (population variance) of values given as `sign_i · exp(l_i)`, computed
/// without forming `exp(l_i)`: the largest `l` is factored out.
fn ln_var_signed(terms: &[(f64, f64)]) -> f64 {
    let m = terms
        .iter()
        .map(|&(_, l)| l)
        .fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        // all zero (m = −∞), or an infinite term
        return if m == f64::NEG_INFINITY {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let z: Vec<f64> = terms.iter().map(|&(s, l)| s * (l - m).exp()).collect();
    let var = stats::std_pop(&z).map_or(0.0, |s| s * s);
    var.ln() + 2.0 * m
}

/// The Box-Cox profile log-likelihood at `lambda` of positive `data`, as
/// `scipy.stats.boxcox_llf`: `(λ − 1) Σ ln x − n/2 · ln var(y)`, with the variance of
/// the transformed data computed in log space.
pub fn box_cox_llf(lambda: f64, data: &[f64]) -> f64 {
    let n = data.len() as f64;
    if data.is_empty() {
        return f64::NAN;
    }
    let logdata: Vec<f64> = data.iter().map(|x| x.ln()).collect();
    let ln_var = if lambda == 0.0 {
        stats::std_pop(&logdata).map_or(f64::NAN, |s| (s * s).ln())
    } else {
        // var((x^λ − 1)/λ) = var(x^λ) / λ²
        let terms: Vec<(f64, f64)> = logdata.iter().map(|&l| (1.0, lambda * l)).collect();
        ln_var_signed(&terms) - 2.0 * lambda.abs().ln()
    };
    (lambda - 1.0) * logdata.iter().sum::<f64>() - n / 2.0 * ln_var
}

/// The Yeo-Johnson profile log-likelihood at `lambda`, as `scipy.stats.yeojohnson_llf`:
/// `−n/2 · ln var(y) + (λ − 1) Σ sign(x) ln(1 + |x|)`, variance in log space.
pub fn yeo_johnson_llf(lambda: f64, data: &[f64]) -> f64 {
    if data.is_empty() {
        return f64::NAN;
    }
    let n = data.len() as f64;
    let eps = f64::EPSILON;
    let terms: Vec<(f64, f64)> = data
        .iter()
        .map(|&x| {
            if x == 0.0 {
                (0.0, f64::NEG_INFINITY)
            } else if x > 0.0 {
                let l1 = x.ln_1p();
                if lambda.abs() < eps {
                    (1.0, l1.ln())
                } else {
                    (1.0, ln_abs_expm1(lambda * l1) - lambda.abs().ln())
                }
            } else {
                let l1 = (-x).ln_1p();
                let k = 2.0 - lambda;
                if k.abs() <= eps {
                    (-1.0, l1.ln())
                } else {
                    (-1.0, ln_abs_expm1(k * l1) - k.abs().ln())
                }
            }
        })
        .collect();
    let ln_var = ln_var_signed(&terms);
    let s: f64 = data.iter().map(|&x| x.signum() * x.abs().ln_1p()).sum();
    -n / 2.0 * ln_var + (lambda - 1.0) * s
}

/// The maximum-likelihood Box-Cox λ of positive, finite `data` (`scipy.stats.boxcox`):
/// Brent's method after a downhill bracket search from (−2, 2).
pub fn box_cox_lambda(data: &[f64]) -> Result<f64, TransformError> {
    let bad = |detail: String| TransformError::NoOptimum {
        method: "box_cox",
        detail,
    };
    if data.len() < 2 {
        return Err(bad("needs at least two values".into()));
    }
    if let Some(&v) = data.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
        return Err(bad(format!("data must be positive and finite, got {v}")));
    }
    let f = |l: f64| objective(-box_cox_llf(l, data));
    optimize::brent(f, -2.0, 2.0).map_err(|e| bad(e.to_string()))
}

/// The maximum-likelihood Yeo-Johnson λ of finite `data` (`scipy.stats.yeojohnson`):
/// bounded Brent between scipy's overflow-safe bounds. All zeros give 1.
pub fn yeo_johnson_lambda(data: &[f64]) -> Result<f64, TransformError> {
    let bad = |detail: String| TransformError::NoOptimum {
        method: "yeo_johnson",
        detail,
    };
    if data.is_empty() {
        return Err(TransformError::Empty);
    }
    if let Some(&v) = data.iter().find(|v| !v.is_finite()) {
        return Err(bad(format!("data must be finite, got {v}")));
    }
    if data.iter().all(|&v| v == 0.0) {
        return Ok(1.0);
    }
    let max_abs = data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let log1p_max_x = (20.0 * max_abs).ln_1p();
    let log_eps = f64::EPSILON.ln();
    let log_tiny = (f64::MIN_POSITIVE.ln() - log_eps) / 2.0;
    let log_max = (f64::MAX.ln() + log_eps) / 2.0;
    let (mut lb, mut ub) = (log_tiny / log1p_max_x, log_max / log1p_max_x);
    if data.iter().all(|&v| v < 0.0) {
        (lb, ub) = (2.0 - ub, 2.0 - lb);
    } else if data.iter().any(|&v| v < 0.0) {
        (lb, ub) = ((2.0 - ub).max(lb), (2.0 - lb).min(ub));
    }
    let f = |l: f64| objective(-yeo_johnson_llf(l, data));
    optimize::fminbound(f, lb, ub, 1.48e-8, 500).map_err(|e| bad(e.to_string()))
}

/// A minimisation objective: NaN (an invalid point) counts as +∞, and so does −∞ (a
/// zero variance in the transformed space is a degenerate fit, not a good one — scipy
/// rejects infinite likelihoods the same way).
fn objective(v: f64) -> f64 {
    if v.is_nan() || v == f64::NEG_INFINITY {
        f64::INFINITY
    } else {
        v
    }
}

/// One-dimensional minimisers, ported from `scipy.optimize` (`bracket`, `brent`,
/// `fminbound`) step for step so that they stop where scipy stops.
pub mod optimize {
    const GOLD: f64 = 1.618034;
    const VERY_SMALL: f64 = 1e-21;
    const CG: f64 = 0.381_966_0;

    /// A failed search.
    #[derive(Debug, Clone, PartialEq, thiserror::Error)]
    pub enum OptimizeError {
        #[error("no bracket around a minimum was found within {0} steps (the log-likelihood keeps increasing)")]
        BracketLimit(usize),
        #[error("the bracket search ended without a valid bracket (the log-likelihood has no interior maximum)")]
        NoBracket,
        #[error("the search reached a non-finite point")]
        NotFinite,
        #[error("bounds [{0}, {1}] are not an interval")]
        BadBounds(f64, f64),
    }

    /// A downhill search for `xa < xb < xc` (or reversed) with `f(xb)` below both ends,
    /// as `scipy.optimize.bracket` (grow limit 110, at most 1000 steps).
    #[allow(clippy::type_complexity)]
    pub fn bracket(
        f: &impl Fn(f64) -> f64,
        xa: f64,
        xb: f64,
    ) -> Result<(f64, f64, f64, f64, f64, f64), OptimizeError> {
        let grow_limit = 110.0;
        let max_iter = 1000;
        let (mut xa, mut xb) = (xa, xb);
        let (mut fa, mut fb) = (f(xa), f(xb));
        if fa < fb {
            std::mem::swap(&mut xa, &mut xb);
            std::mem::swap(&mut fa, &mut fb);
        }
        let mut xc = xb + GOLD * (xb - xa);
        let mut fc = f(xc);
        let mut iter = 0;
        while fc < fb {
            let tmp1 = (xb - xa) * (fb - fc);
            let tmp2 = (xb - xc) * (fb - fa);
            let val = tmp2 - tmp1;
            let denom = if val.abs() < VERY_SMALL {
                2.0 * VERY_SMALL
            } else {
                2.0 * val
            };
            let mut w = xb - ((xb - xc) * tmp2 - (xb - xa) * tmp1) / denom;
            let wlim = xb + grow_limit * (xc - xb);
            if iter > max_iter {
                return Err(OptimizeError::BracketLimit(max_iter));
            }
            iter += 1;
            let mut fw;
            if (w - xc) * (xb - w) > 0.0 {
                fw = f(w);
                if fw < fc {
                    xa = xb;
                    xb = w;
                    fa = fb;
                    fb = fw;
                    break;
                } else if fw > fb {
                    xc = w;
                    fc = fw;
                    break;
                }
                w = xc + GOLD * (xc - xb);
                fw = f(w);
            } else if (w - wlim) * (wlim - xc) >= 0.0 {
                w = wlim;
                fw = f(w);
            } else if (w - wlim) * (xc - w) > 0.0 {
                fw = f(w);
                if fw < fc {
                    xb = xc;
                    xc = w;
                    w = xc + GOLD * (xc - xb);
                    fb = fc;
                    fc = fw;
                    fw = f(w);
                }
            } else {
                w = xc + GOLD * (xc - xb);
                fw = f(w);
            }
            xa = xb;
            xb = xc;
            xc = w;
            fa = fb;
            fb = fc;
            fc = fw;
        }
        let cond1 = (fb < fc && fb <= fa) || (fb < fa && fb <= fc);
        let cond2 = (xa < xb && xb < xc) || (xc < xb && xb < xa);
        let cond3 = xa.is_finite() && xb.is_finite() && xc.is_finite();
        if !(cond1 && cond2 && cond3) {
            return Err(OptimizeError::NoBracket);
        }
        Ok((xa, xb, xc, fa, fb, fc))
    }

    /// Brent's method from the bracket found downhill of `(xa, xb)`, as
    /// `scipy.optimize.brent` (tol 1.48e-8, at most 500 iterations). Returns the
    /// minimiser.
    pub fn brent(f: impl Fn(f64) -> f64, xa: f64, xb: f64) -> Result<f64, OptimizeError> {
        let tol = 1.48e-8;
        let max_iter = 500;
        let mintol = 1.0e-11;
        let (xa, xb, xc, _fa, fb, _fc) = bracket(&f, xa, xb)?;
        let (mut x, mut w, mut v) = (xb, xb, xb);
        let (mut fx, mut fw, mut fv) = (fb, fb, fb);
        let (mut a, mut b) = if xa < xc { (xa, xc) } else { (xc, xa) };
        let mut deltax: f64 = 0.0;
        let mut rat: f64 = 0.0;
        let mut iter = 0;
        while iter < max_iter {
            let tol1 = tol * x.abs() + mintol;
            let tol2 = 2.0 * tol1;
            let xmid = 0.5 * (a + b);
            if (x - xmid).abs() < (tol2 - 0.5 * (b - a)) {
                break;
            }
            if deltax.abs() <= tol1 {
                deltax = if x >= xmid { a - x } else { b - x };
                rat = CG * deltax;
            } else {
                let tmp1 = (x - w) * (fx - fv);
                let mut tmp2 = (x - v) * (fx - fw);
                let mut p = (x - v) * tmp2 - (x - w) * tmp1;
                tmp2 = 2.0 * (tmp2 - tmp1);
                if tmp2 > 0.0 {
                    p = -p;
                }
                tmp2 = tmp2.abs();
                let dx_temp = deltax;
                deltax = rat;
                if p > tmp2 * (a - x)
                    && p < tmp2 * (b - x)
                    && p.abs() < (0.5 * tmp2 * dx_temp).abs()
                {
                    rat = p / tmp2;
                    let u = x + rat;
                    if (u - a) < tol2 || (b - u) < tol2 {
                        rat = if xmid - x >= 0.0 { tol1 } else { -tol1 };
                    }
                } else {
                    deltax = if x >= xmid { a - x } else { b - x };
                    rat = CG * deltax;
                }
            }
            let u = if rat.abs() < tol1 {
                if rat >= 0.0 {
                    x + tol1
                } else {
                    x - tol1
                }
            } else {
                x + rat
            };
            let fu = f(u);
            if fu > fx {
                if u < x {
                    a = u;
                } else {
                    b = u;
                }
                if fu <= fw || w == x {
                    v = w;
                    w = u;
                    fv = fw;
                    fw = fu;
                } else if fu <= fv || v == x || v == w {
                    v = u;
                    fv = fu;
                }
            } else {
                if u >= x {
                    a = x;
                } else {
                    b = x;
                }
                v = w;
                w = x;
                x = u;
                fv = fw;
                fw = fx;
                fx = fu;
            }
            iter += 1;
        }
        if !(x.is_finite() && fx.is_finite()) {
            return Err(OptimizeError::NotFinite);
        }
        Ok(x)
    }

    /// Bounded Brent on `[x1, x2]`, as `scipy.optimize.fminbound` with absolute
    /// tolerance `xatol` and at most `max_fun` evaluations. Returns the minimiser.
    pub fn fminbound(
        f: impl Fn(f64) -> f64,
        x1: f64,
        x2: f64,
        xatol: f64,
        max_fun: usize,
    ) -> Result<f64, OptimizeError> {
        if !(x1.is_finite() && x2.is_finite() && x1 <= x2) {
            return Err(OptimizeError::BadBounds(x1, x2));
        }
        let sqrt_eps = 2.2e-16f64.sqrt();
        let golden_mean = 0.5 * (3.0 - 5.0f64.sqrt());
        let (mut a, mut b) = (x1, x2);
        let mut fulc = a + golden_mean * (b - a);
        let mut nfc = fulc;
        let mut xf = fulc;
        let (mut rat, mut e): (f64, f64) = (0.0, 0.0);
        let mut fx = f(xf);
        let mut num = 1;
        let mut fu = f64::INFINITY;
        let (mut ffulc, mut fnfc) = (fx, fx);
        let mut xm = 0.5 * (a + b);
        let mut tol1 = sqrt_eps * xf.abs() + xatol / 3.0;
        let mut tol2 = 2.0 * tol1;
        // sign(v) + (v == 0): 1 for v >= 0, −1 otherwise
        let si = |v: f64| if v >= 0.0 { 1.0 } else { -1.0 };
        while (xf - xm).abs() > (tol2 - 0.5 * (b - a)) {
            let mut golden = true;
            if e.abs() > tol1 {
                golden = false;
                let mut r = (xf - nfc) * (fx - ffulc);
                let mut q = (xf - fulc) * (fx - fnfc);
                let mut p = (xf - fulc) * q - (xf - nfc) * r;
                q = 2.0 * (q - r);
                if q > 0.0 {
                    p = -p;
                }
                q = q.abs();
                r = e;
                e = rat;
                if p.abs() < (0.5 * q * r).abs() && p > q * (a - xf) && p < q * (b - xf) {
                    rat = p / q;
                    let x = xf + rat;
                    if (x - a) < tol2 || (b - x) < tol2 {
                        rat = tol1 * si(xm - xf);
                    }
                } else {
                    golden = true;
                }
            }
            if golden {
                e = if xf >= xm { a - xf } else { b - xf };
                rat = golden_mean * e;
            }
            let x = xf + si(rat) * rat.abs().max(tol1);
            fu = f(x);
            num += 1;
            if fu <= fx {
                if x >= xf {
                    a = xf;
                } else {
                    b = xf;
                }
                (fulc, ffulc) = (nfc, fnfc);
                (nfc, fnfc) = (xf, fx);
                (xf, fx) = (x, fu);
            } else {
                if x < xf {
                    a = x;
                } else {
                    b = x;
                }
                if fu <= fnfc || nfc == xf {
                    (fulc, ffulc) = (nfc, fnfc);
                    (nfc, fnfc) = (x, fu);
                } else if fu <= ffulc || fulc == xf || fulc == nfc {
                    (fulc, ffulc) = (x, fu);
                }
            }
            xm = 0.5 * (a + b);
            tol1 = sqrt_eps * xf.abs() + xatol / 3.0;
            tol2 = 2.0 * tol1;
            if num >= max_fun {
                break;
            }
        }
        if xf.is_nan() || fx.is_nan() || fu.is_nan() || !fx.is_finite() {
            return Err(OptimizeError::NotFinite);
        }
        Ok(xf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn optimisers_find_a_parabola_minimum() {
        let f = |x: f64| (x - 1.3) * (x - 1.3) + 2.0;
        assert!(close(optimize::brent(f, -2.0, 2.0).unwrap(), 1.3, 1e-7));
        assert!(close(optimize::brent(f, 50.0, 51.0).unwrap(), 1.3, 1e-7));
        let x = optimize::fminbound(f, -10.0, 10.0, 1.48e-8, 500).unwrap();
        assert!(close(x, 1.3, 1e-7));
        // minimum outside the bounds: the bound
        let x = optimize::fminbound(f, 2.0, 5.0, 1.48e-8, 500).unwrap();
        assert!(close(x, 2.0, 1e-6));
        // a line has no minimum
        assert!(optimize::brent(|x: f64| -x, -2.0, 2.0).is_err());
        assert!(optimize::fminbound(f, 1.0, 0.0, 1e-8, 500).is_err());
    }

    #[test]
    fn transforms_invert() {
        // (Far in the tails, e.g. x = 1000 at λ = −2.5, x^λ is nearly 0 and the
        // inverse is ill-conditioned — scipy's inv_boxcox loses digits there too.)
        for l in [-1.5, -0.5, 0.0, 1e-20, 0.5, 1.0, 2.0, 3.7] {
            for x in [0.01, 0.5, 1.0, 3.0, 250.0] {
                assert!(close(inv_box_cox(box_cox(x, l), l), x, 1e-11), "{l} {x}");
            }
            for x in [-40.0, -1.0, -0.2, 0.0, 0.3, 7.0, 90.0] {
                let back = inv_yeo_johnson(yeo_johnson(x, l), l);
                assert!(close(back, x, 1e-11), "{l} {x}");
            }
        }
        assert_eq!(box_cox(std::f64::consts::E, 0.0), 1.0);
        assert_eq!(yeo_johnson(3.0, 1.0), 3.0);
        assert_eq!(yeo_johnson(-3.0, 1.0), -3.0);
    }

    #[test]
    fn log_space_likelihood_matches_the_direct_formula() {
        let x = [0.5, 1.2, 3.3, 4.0, 9.1, 22.0];
        for l in [-1.5, -0.3, 0.0, 0.4, 2.0] {
            let y: Vec<f64> = x.iter().map(|&v| box_cox(v, l)).collect();
            let var = stats::std_pop(&y).unwrap().powi(2);
            let direct = (l - 1.0) * x.iter().map(|v| v.ln()).sum::<f64>() - 3.0 * var.ln();
            assert!(close(box_cox_llf(l, &x), direct, 1e-12), "{l}");
            let xs = [-3.0, -0.5, 0.0, 0.7, 2.0, 11.0];
            let y: Vec<f64> = xs.iter().map(|&v| yeo_johnson(v, l)).collect();
            let var = stats::std_pop(&y).unwrap().powi(2);
            let s: f64 = xs.iter().map(|v| v.signum() * v.abs().ln_1p()).sum();
            let direct = -3.0 * var.ln() + (l - 1.0) * s;
            assert!(close(yeo_johnson_llf(l, &xs), direct, 1e-12), "{l}");
        }
        // far out, the direct formula overflows; the log-space one does not
        assert!(box_cox_llf(400.0, &[1e3, 2e3, 5e3]).is_finite());
        assert!(yeo_johnson_llf(-300.0, &[-1e3, 2e3, 5e3]).is_finite());
    }

    #[test]
    fn fit_checks_domain_and_parameters() {
        let bc = TransformParams::new(PowerMethod::BoxCox, None, 0.0, false).unwrap();
        let e = Transformer::fit(bc, &[1.0, 2.0, 0.0, 4.0]).unwrap_err();
        assert!(
            matches!(e, TransformError::OutOfDomain { index: 2, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("> 0"), "{e}");
        let shifted = TransformParams::new(PowerMethod::BoxCox, None, 1.0, false).unwrap();
        assert!(Transformer::fit(shifted, &[1.0, 2.0, 0.0, 4.0, 9.0]).is_ok());
        let lp = TransformParams::new(PowerMethod::Log1p, None, 0.0, false).unwrap();
        assert!(lp.in_domain(-0.5) && !lp.in_domain(-1.0) && !lp.in_domain(f64::NAN));
        assert!(matches!(
            Transformer::fit(lp, &[1.0, -1.0]),
            Err(TransformError::OutOfDomain { index: 1, .. })
        ));
        assert!(matches!(
            Transformer::fit(lp, &[1.0, f64::INFINITY]),
            Err(TransformError::NotFinite { index: 1, .. })
        ));
        assert_eq!(
            Transformer::fit(lp, &[f64::NAN]),
            Err(TransformError::Empty)
        );
        assert!(TransformParams::new(PowerMethod::Log1p, Some(0.5), 0.0, false).is_err());
        assert!(TransformParams::new(PowerMethod::BoxCox, Some(f64::NAN), 0.0, false).is_err());
        assert!(TransformParams::new(PowerMethod::BoxCox, None, f64::INFINITY, false).is_err());
        assert!(box_cox_lambda(&[1.0]).is_err());
        assert!(box_cox_lambda(&[1.0, -2.0, 3.0]).is_err());
        // Overflow of a fixed lambda
        let big = TransformParams::new(PowerMethod::BoxCox, Some(200.0), 0.0, false).unwrap();
        assert!(matches!(
            Transformer::fit(big, &[1.0, 1e10]),
            Err(TransformError::Overflow { .. })
        ));
    }

    #[test]
    fn constant_columns_get_lambda_one() {
        for m in [PowerMethod::BoxCox, PowerMethod::YeoJohnson] {
            let p = TransformParams::new(m, None, 0.0, true).unwrap();
            let t = Transformer::fit(p, &[3.0, 3.0, f64::NAN, 3.0]).unwrap();
            assert!(t.constant && !t.lambda_fitted);
            assert_eq!(t.lambda, Some(1.0));
            assert_eq!(t.log_likelihood, None);
            assert_eq!(t.transform(3.0), 0.0);
            assert_eq!(t.n, 3);
        }
    }

    #[test]
    fn fitted_transform_inverts_with_shift_and_standardize() {
        let x = [0.0, 0.5, 1.0, 2.0, 3.5, 8.0, 20.0, 55.0];
        for m in [
            PowerMethod::Log1p,
            PowerMethod::BoxCox,
            PowerMethod::YeoJohnson,
        ] {
            let p = TransformParams::new(m, None, 0.5, true).unwrap();
            let t = Transformer::fit(p, &x).unwrap();
            let y: Vec<f64> = x.iter().map(|&v| t.transform(v)).collect();
            assert!(close(stats::mean(&y).unwrap(), 0.0, 1e-12), "{m:?}");
            assert!(close(stats::std_pop(&y).unwrap(), 1.0, 1e-12), "{m:?}");
            for (a, b) in x.iter().zip(&y) {
                assert!(close(t.inverse(*b), *a, 1e-10), "{m:?}: {a}");
            }
            assert_eq!(t.lambda_fitted, m != PowerMethod::Log1p);
        }
    }

    #[test]
    fn degenerate_inputs_give_a_finite_lambda_or_a_typed_error() {
        // (two values: a flat likelihood; a tiny relative spread far from 0; ties;
        // a huge dynamic range; values near the limits of f64)
        for x in [
            vec![1.0, 2.0],
            vec![1e6, 1e6 + 1.0, 1e6 + 2.0, 1e6 + 5.0],
            vec![1.0, 1.0, 1.0, 2.0],
            vec![0.001, 0.002, 1000.0, 5000.0],
            vec![1e-300, 1.0, 1e300],
            vec![1e308, 1.5e308, 1.7e308],
            vec![-1e300, 0.0, 1e300],
        ] {
            for m in [PowerMethod::BoxCox, PowerMethod::YeoJohnson] {
                let p = TransformParams::new(m, None, 0.0, true).unwrap();
                match Transformer::fit(p, &x) {
                    Ok(t) => {
                        assert!(t.lambda.unwrap().is_finite(), "{m:?} {x:?}");
                        for &v in &x {
                            assert!(!t.transform(v).is_nan(), "{m:?} {x:?} {v}");
                        }
                    }
                    Err(e) => assert!(
                        matches!(
                            e,
                            TransformError::NoOptimum { .. }
                                | TransformError::Overflow { .. }
                                | TransformError::OutOfDomain { .. }
                        ),
                        "{m:?} {x:?}: {e}"
                    ),
                }
            }
        }
    }
}
