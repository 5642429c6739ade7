//! BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way"): fitting
//! by maximum likelihood, P(alive) and conditional expected purchases.

use super::optim::{self, Objective, Settings};
use super::special::{digamma, hyp2f1, ln_gamma};
use super::{ClvError, FitOptions, Summary};

/// BG/NBD parameters: purchase rates λ ~ Gamma(r, α) (α in the time unit of the data),
/// drop-out probabilities after each purchase p ~ Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BetaGeo {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// A fitted BG/NBD model.
#[derive(Debug, Clone, PartialEq)]
pub struct BetaGeoFit {
    pub params: BetaGeo,
    /// Total log-likelihood Σᵢ ln L(r, α, a, b | xᵢ, t_xᵢ, Tᵢ) in the data's time unit
    /// (Fader, Hardie & Lee report −9582.4 on CDNOW in weeks).
    pub log_likelihood: f64,
    /// The minimised objective exactly as lifetimes defines it: the mean negative
    /// log-likelihood on time scaled by 1 / max T, plus `penalizer · Σ params²` (with α
    /// on that scale). Comparable with lifetimes' `_negative_log_likelihood_`.
    pub objective: f64,
    /// BFGS iterations and objective evaluations.
    pub iterations: usize,
    pub evaluations: usize,
    /// Largest gradient component of the objective (in log-parameters) at the end.
    pub gradient_norm: f64,
    /// Always true unless [`FitOptions::allow_unconverged`] was set.
    pub converged: bool,
    /// Customers fitted.
    pub customers: usize,
}

impl BetaGeo {
    /// Parameters, each positive and finite.
    pub fn new(r: f64, alpha: f64, a: f64, b: f64) -> Result<Self, ClvError> {
        for (name, v) in [("r", r), ("alpha", alpha), ("a", a), ("b", b)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ClvError::InvalidParameter {
                    name,
                    value: v,
                    reason: "BG/NBD parameters must be positive and finite",
                });
            }
        }
        Ok(BetaGeo { r, alpha, a, b })
    }

    /// ln L of one customer with `x` repeat purchases, the last at `tx`, observed for
    /// `t` (FHL 2005 eq. 6, in log space: finite for any frequency).
    pub fn log_likelihood(&self, x: f64, tx: f64, t: f64) -> f64 {
        let BetaGeo { r, alpha, a, b } = *self;
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
        let a3 = -(r + x) * (alpha + t).ln();
        if x > 0.0 {
            let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + tx).ln();
            a1 + a2 + log_add_exp(a3, a4)
        } else {
            a1 + a2 + a3
        }
    }

    /// P(alive | x, t_x, T): the probability that the customer has not dropped out by
    /// `t` (Fader, Hardie & Lee, "Computing P(alive) using the BG/NBD model", note 021).
    /// 1 for customers with no repeat purchase (in BG/NBD a drop-out can only follow a
    /// purchase).
    pub fn p_alive(&self, x: f64, tx: f64, t: f64) -> f64 {
        if x <= 0.0 {
            return 1.0;
        }
        let BetaGeo { r, alpha, a, b } = *self;
        let log_odds_dead =
            (r + x) * ((alpha + t).ln() - (alpha + tx).ln()) + a.ln() - (b + x - 1.0).ln();
        logistic(-log_odds_dead)
    }

    /// E[X(t) | x, t_x, T]: expected repeat purchases in the next `horizon` time units of
    /// a customer with history (x, t_x, T) (FHL 2005 eq. 10, lifetimes'
    /// `conditional_expected_number_of_purchases_up_to_time`).
    ///
    /// With z = horizon / (α + T + horizon), Euler's transformation gives
    /// ₂F₁(r+x, b+x; a+b+x−1; z) (1−z)^(r+x) = (1−z)^(a−1) ₂F₁(a+b−1−r, a−1; a+b+x−1; z),
    /// so E = (a+b+x−1)/(a−1) · [1 − (1−z)^(a−1) ₂F₁(a+b−1−r, a−1; a+b+x−1; z)] ·
    /// P(alive): the frequency only enters the ₂F₁'s denominator parameter and the
    /// value stays finite for any x. At a = 1 exactly the expression is 0/0; a is then
    /// moved by 1e-9.
    pub fn conditional_expected_purchases(
        &self,
        horizon: f64,
        x: f64,
        tx: f64,
        t: f64,
    ) -> Result<f64, ClvError> {
        if horizon <= 0.0 {
            return Ok(0.0);
        }
        let BetaGeo { r, alpha, b, .. } = *self;
        let a = if (self.a - 1.0).abs() < 1e-9 {
            1.0 + 1e-9
        } else {
            self.a
        };
        let growth = self.growth(a, b, r, x, horizon / (alpha + t))?;
        Ok((a + b + x - 1.0) / (a - 1.0) * growth * self.p_alive(x, tx, t))
    }

    /// 1 − (1−z)^(a−1) ₂F₁(a+b−1−r, a−1; a+b+x−1; z) with z = u / (1 + u), which by
    /// Euler's transformation equals 1 − (1−z)^(r+x) ₂F₁(r+x, b+x; a+b+x−1; z): the
    /// first form is evaluated, and the second when the first's series cannot be (a
    /// huge `a`, as a fit with almost no heterogeneity in drop-out gives, makes the
    /// first ₂F₁ overflow while the second converges quickly).
    fn growth(&self, a: f64, b: f64, r: f64, x: f64, u: f64) -> Result<f64, ClvError> {
        let z = u / (1.0 + u);
        let ln_1mz = -u.ln_1p();
        let (pa, pb, pc) = (a + b - 1.0 - r, a - 1.0, a + b + x - 1.0);
        let (f, ln_pre) = match hyp2f1(pa, pb, pc, z) {
            Ok(f) => (f, (a - 1.0) * ln_1mz),
            Err(e) => match hyp2f1(r + x, b + x, pc, z) {
                Ok(f) => (f, (r + x) * ln_1mz),
                Err(_) => {
                    return Err(ClvError::Hyp2f1 {
                        a: pa,
                        b: pb,
                        c: pc,
                        z,
                        reason: e.to_string(),
                    })
                }
            },
        };
        Ok(if f > 0.0 {
            -(ln_pre + f.ln()).exp_m1()
        } else {
            1.0 - ln_pre.exp() * f
        })
    }

    /// E[X(t)]: expected repeat purchases of a new customer in `horizon` time units (FHL
    /// 2005 eq. 9, lifetimes' `expected_number_of_purchases_up_to_time`).
    pub fn expected_purchases(&self, horizon: f64) -> Result<f64, ClvError> {
        if horizon <= 0.0 {
            return Ok(0.0);
        }
        let BetaGeo { r, alpha, b, .. } = *self;
        let a = if (self.a - 1.0).abs() < 1e-9 {
            1.0 + 1e-9
        } else {
            self.a
        };
        // x = 0, T = 0, P(alive) = 1.
        let growth = self.growth(a, b, r, 0.0, horizon / alpha)?;
        Ok((a + b - 1.0) / (a - 1.0) * growth)
    }
}

/// ln(eᵃ + eᵇ) without overflow.
fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    m + (-(a - b).abs()).exp().ln_1p()
}

/// 1 / (1 + e⁻ˣ) without overflow.
pub(crate) fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Sorted distinct values and, for each input, the index of its value.
fn distinct(values: impl Iterator<Item = f64> + Clone) -> (Vec<f64>, impl Fn(f64) -> u32) {
    let mut v: Vec<f64> = values.collect();
    v.sort_unstable_by(f64::total_cmp);
    v.dedup();
    let table = v.clone();
    (v, move |x: f64| {
        table
            .binary_search_by(|p| p.total_cmp(&x))
            .unwrap_or_default() as u32
    })
}

/// The data of the fit, compressed: customers with the same (x, t_x, T) are one
/// pattern with a weight, and the logs of α + T and α + t_x are computed once per
/// distinct value in each evaluation. Customers without repeat purchases depend on T
/// alone.
struct BgData {
    /// Distinct positive frequencies, and the customers with each.
    xs: Vec<f64>,
    x_weight: Vec<f64>,
    /// Distinct scaled ages and recencies.
    ts: Vec<f64>,
    recs: Vec<f64>,
    /// (T index, customers) of the customers without repeat purchases.
    zero: Vec<(u32, f64)>,
    /// (x index, recency index, T index, customers), sorted by x.
    rep: Vec<(u32, u32, u32, f64)>,
    n: f64,
    penalizer: f64,
}

impl BgData {
    fn new(s: &Summary<'_>, scale: f64, penalizer: f64) -> Self {
        let (ts, t_ix) = distinct(s.t.iter().map(|t| t * scale));
        let rep_rows = || (0..s.len()).filter(|&i| s.frequency[i] > 0.0);
        let (recs, r_ix) = distinct(rep_rows().map(|i| s.recency[i] * scale));
        let (xs, x_ix) = distinct(rep_rows().map(|i| s.frequency[i]));
        let mut zero_w = vec![0.0; ts.len()];
        let mut keys: Vec<(u32, u32, u32)> = Vec::with_capacity(s.len());
        for i in 0..s.len() {
            let ti = t_ix(s.t[i] * scale);
            if s.frequency[i] > 0.0 {
                keys.push((x_ix(s.frequency[i]), r_ix(s.recency[i] * scale), ti));
            } else {
                zero_w[ti as usize] += 1.0;
            }
        }
        keys.sort_unstable();
        let mut rep: Vec<(u32, u32, u32, f64)> = Vec::new();
        let mut x_weight = vec![0.0; xs.len()];
        for (xi, ri, ti) in keys {
            x_weight[xi as usize] += 1.0;
            match rep.last_mut() {
                Some(last) if (last.0, last.1, last.2) == (xi, ri, ti) => last.3 += 1.0,
                _ => rep.push((xi, ri, ti, 1.0)),
            }
        }
        let zero = zero_w
            .iter()
            .enumerate()
            .filter(|(_, &w)| w > 0.0)
            .map(|(i, &w)| (i as u32, w))
            .collect();
        BgData {
            xs,
            x_weight,
            ts,
            recs,
            zero,
            rep,
            n: s.len() as f64,
            penalizer,
        }
    }

    /// Σ ln L and its gradient in (r, α, a, b).
    fn log_likelihood(&self, p: [f64; 4], grad: &mut [f64; 4]) -> f64 {
        let [r, alpha, a, b] = p;
        let ln_alpha = alpha.ln();
        let lt: Vec<(f64, f64)> = self
            .ts
            .iter()
            .map(|t| ((alpha + t).ln(), 1.0 / (alpha + t)))
            .collect();
        let lr: Vec<(f64, f64)> = self
            .recs
            .iter()
            .map(|t| ((alpha + t).ln(), 1.0 / (alpha + t)))
            .collect();
        let mut ll = self.n * r * ln_alpha;
        let (mut gr, mut ga_lpha, mut ga, mut gb) =
            (self.n * ln_alpha, self.n * r / alpha, 0.0, 0.0);
        for &(ti, w) in &self.zero {
            let (l, inv) = lt[ti as usize];
            ll -= w * r * l;
            gr -= w * l;
            ga_lpha -= w * r * inv;
        }
        let (lg_r, lg_b, lg_ab) = (ln_gamma(r), ln_gamma(b), ln_gamma(a + b));
        let (dg_r, dg_b, dg_ab) = (digamma(r), digamma(b), digamma(a + b));
        let ln_a = a.ln();
        let mut start = 0;
        while start < self.rep.len() {
            let xi = self.rep[start].0;
            let end = start + self.rep[start..].partition_point(|p| p.0 == xi);
            let x = self.xs[xi as usize];
            let wx = self.x_weight[xi as usize];
            let base =
                ln_gamma(r + x) - lg_r + lg_ab + ln_gamma(b + x) - lg_b - ln_gamma(a + b + x);
            let c4 = ln_a - (b + x - 1.0).ln();
            let rx = r + x;
            let (mut lse, mut s_sum, mut g_r, mut g_alpha) = (0.0, 0.0, 0.0, 0.0);
            for &(_, ri, ti, w) in &self.rep[start..end] {
                let (lt_, it) = lt[ti as usize];
                let (lr_, ir) = lr[ri as usize];
                let a3 = -rx * lt_;
                let a4 = c4 - rx * lr_;
                let d = a4 - a3;
                let e = (-d.abs()).exp();
                let (l, s) = if d > 0.0 {
                    (a4 + e.ln_1p(), 1.0 / (1.0 + e))
                } else {
                    (a3 + e.ln_1p(), e / (1.0 + e))
                };
                lse += w * l;
                s_sum += w * s;
                g_r += w * ((1.0 - s) * lt_ + s * lr_);
                g_alpha += w * ((1.0 - s) * it + s * ir);
            }
            ll += wx * base + lse;
            gr += wx * (digamma(rx) - dg_r) - g_r;
            ga_lpha -= rx * g_alpha;
            let dg_abx = digamma(a + b + x);
            ga += wx * (dg_ab - dg_abx) + s_sum / a;
            gb += wx * (dg_ab + digamma(b + x) - dg_b - dg_abx) - s_sum / (b + x - 1.0);
            start = end;
        }
        *grad = [gr, ga_lpha, ga, gb];
        ll
    }
}

impl Objective for BgData {
    fn eval(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let p = [
            theta[0].exp(),
            theta[1].exp(),
            theta[2].exp(),
            theta[3].exp(),
        ];
        let mut g = [0.0; 4];
        let ll = self.log_likelihood(p, &mut g);
        let mut f = -ll / self.n;
        for k in 0..4 {
            f += self.penalizer * p[k] * p[k];
            grad[k] = -p[k] * g[k] / self.n + 2.0 * self.penalizer * p[k] * p[k];
        }
        f
    }
}

/// Fit BG/NBD by maximum likelihood, as lifetimes' `BetaGeoFitter.fit`: time is scaled
/// by 1 / max T, the objective (mean negative log-likelihood plus the penalizer) is
/// minimised over the logs of (r, α, a, b) from 0.1 each by BFGS with analytic
/// gradients, and α is scaled back.
pub fn fit_bgnbd(data: &Summary<'_>, options: &FitOptions) -> Result<BetaGeoFit, ClvError> {
    options.validate()?;
    let max_t = data.t.iter().fold(0.0f64, |m, &t| m.max(t));
    if max_t <= 0.0 {
        return Err(ClvError::ZeroAge);
    }
    let scale = 1.0 / max_t;
    let problem = BgData::new(data, scale, options.penalizer);
    let m = optim::minimize(
        &problem,
        &[0.1; 4],
        Settings {
            tolerance: options.tolerance,
            max_iterations: options.max_iterations,
        },
    );
    let p: Vec<f64> = m.x.iter().map(|v| v.exp()).collect();
    if !m.converged && !options.allow_unconverged || p.iter().any(|v| !v.is_finite()) {
        return Err(ClvError::NotConverged {
            model: "BG/NBD",
            iterations: m.iterations,
            gradient_norm: m.gradient_norm,
        });
    }
    let mut g = [0.0; 4];
    let ll_scaled = problem.log_likelihood([p[0], p[1], p[2], p[3]], &mut g);
    // Scaling time by s multiplies each customer's likelihood by s^(−x).
    let sum_x: f64 = data.frequency.iter().sum();
    let params = BetaGeo::new(p[0], p[1] / scale, p[2], p[3])?;
    Ok(BetaGeoFit {
        params,
        log_likelihood: ll_scaled + sum_x * scale.ln(),
        objective: m.f,
        iterations: m.iterations,
        evaluations: m.evaluations,
        gradient_norm: m.gradient_norm,
        converged: m.converged,
        customers: data.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finite_difference(d: &BgData, theta: [f64; 4]) {
        let mut g = [0.0; 4];
        d.eval(&theta, &mut g);
        for k in 0..4 {
            let h = 1e-6;
            let mut tp = theta;
            let mut tm = theta;
            tp[k] += h;
            tm[k] -= h;
            let mut scratch = [0.0; 4];
            let fd = (d.eval(&tp, &mut scratch) - d.eval(&tm, &mut scratch)) / (2.0 * h);
            assert!(
                (fd - g[k]).abs() < 1e-7 * (1.0 + fd.abs()),
                "k={k} fd={fd} g={}",
                g[k]
            );
        }
    }

    #[test]
    fn a_fit_without_dropout_heterogeneity_still_predicts() {
        // a and b in the millions (p ~ Beta concentrated at a/(a+b)): the first form's
        // 2F1 overflows; the Euler form gives the answer, which tends to the
        // homogeneous-dropout limit and stays between 0 and the horizon's Poisson mean.
        let bg = BetaGeo {
            r: 2.0,
            alpha: 40.0,
            a: 424_548.0,
            b: 35_725_044.0,
        };
        let e = bg
            .conditional_expected_purchases(365.0, 6.0, 500.0, 540.0)
            .unwrap();
        assert!(
            e.is_finite() && e > 0.0 && e < 365.0 * (2.0 + 6.0) / (40.0 + 540.0),
            "{e}"
        );
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = [0.0, 1.0, 2.0, 5.0, 0.0, 3.0, 1.0, 40.0];
        let tx = [0.0, 3.0, 10.0, 20.0, 0.0, 25.0, 3.0, 30.0];
        let t = [30.0, 30.0, 28.0, 35.0, 12.0, 26.0, 30.0, 31.0];
        let s = Summary::new(&x, &tx, &t).unwrap();
        let d = BgData::new(&s, 1.0 / 35.0, 0.0);
        finite_difference(&d, [0.1, 0.1, 0.1, 0.1]);
        finite_difference(&d, [-1.4, 0.3, -0.2, 0.9]);
        let d = BgData::new(&s, 1.0 / 35.0, 0.5);
        finite_difference(&d, [-1.4, 0.3, -0.2, 0.9]);
    }

    #[test]
    fn compressed_likelihood_equals_the_sum_over_customers() {
        let x = [0.0, 1.0, 2.0, 5.0, 0.0, 3.0, 1.0, 500.0];
        let tx = [0.0, 3.0, 10.0, 20.0, 0.0, 25.0, 3.0, 30.0];
        let t = [30.0, 30.0, 28.0, 35.0, 12.0, 26.0, 30.0, 31.0];
        let s = Summary::new(&x, &tx, &t).unwrap();
        let d = BgData::new(&s, 1.0, 0.0);
        let p = BetaGeo::new(0.3, 4.0, 0.8, 2.5).unwrap();
        let mut g = [0.0; 4];
        let total = d.log_likelihood([p.r, p.alpha, p.a, p.b], &mut g);
        let direct: f64 = (0..x.len())
            .map(|i| p.log_likelihood(x[i], tx[i], t[i]))
            .sum();
        assert!(
            (total - direct).abs() < 1e-10 * direct.abs(),
            "{total} {direct}"
        );
    }
}
