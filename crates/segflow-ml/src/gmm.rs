//! Gaussian mixture models fitted by expectation-maximisation.
//!
//! Full or diagonal covariances; each initialisation starts from the labels of one
//! k-means++ run (as scikit-learn's `init_params="kmeans"`), the best of `n_init` by
//! the final lower bound is kept. Conventions follow scikit-learn's
//! `GaussianMixture` so results can be compared:
//!
//! - M-step: `n_k = Σ resp + 10·ε`, means `Σ resp·x / n_k`, covariances about the new
//!   means with `reg_covar` (default 1e-6) added to the diagonal, weights `n_k / Σ n_k`.
//!   The initial parameters come from the one-hot k-means responsibilities, with weights
//!   `n_k / n`.
//! - E-step: log densities through the Cholesky factor `L` of each covariance
//!   (`‖L⁻¹(x − μ)‖²` and `−Σ log L_ii`), responsibilities by log-sum-exp.
//! - The lower bound of an iteration is the mean log-likelihood per row under the
//!   parameters the E-step used; iteration stops when it changes by less than `tol`
//!   (default 1e-3) or after `max_iter` (default 100) iterations. A final E-step with
//!   the kept parameters gives the labels (the most probable component) and their
//!   probability.
//! - [`GmmModel::bic`] and [`GmmModel::aic`] use the log-likelihood of the final
//!   parameters, as `GaussianMixture.bic(X)` / `.aic(X)`.
//!
//! From the same initial labels it gives scikit-learn's labels and lower bound
//! (`tests/gmm_sklearn.rs`, fixtures from `tests/fixtures/make_gmm_fixture.py`).
//! Deterministic for a seed whatever the thread count: rows are processed in fixed
//! chunks whose partial sums are combined in chunk order.

use crate::kmeans::{self, KMeansError, KMeansParams};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const CHUNK_ROWS: usize = 2048;
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// The shape of each component's covariance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Covariance {
    /// A full `d × d` matrix per component.
    Full,
    /// Per-feature variances only (axis-aligned ellipsoids).
    Diag,
}

impl Covariance {
    pub fn name(self) -> &'static str {
        match self {
            Covariance::Full => "full",
            Covariance::Diag => "diag",
        }
    }
}

/// How the components start.
#[derive(Debug, Clone, PartialEq)]
pub enum GmmInit {
    /// Labels of a k-means++ run (one per initialisation, `n_init` of them).
    KMeans,
    /// These hard labels (`0..k` per row; then `n_init` is 1).
    Labels(Vec<u32>),
}

/// Why a mixture cannot be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GmmError {
    #[error("k must be at least 1")]
    ZeroK,
    #[error("k = {k} is more than the {n} rows to fit; choose k <= {n}")]
    KTooLarge { k: usize, n: usize },
    #[error("max_iter must be at least 1")]
    ZeroIter,
    #[error("n_init must be at least 1")]
    ZeroInit,
    #[error("tol must be finite and >= 0, got {0}")]
    BadTol(f64),
    #[error("reg_covar must be finite and >= 0, got {0}")]
    BadReg(f64),
    #[error("the initial labels have {got} entries for {n} rows, or a label >= k")]
    BadInit { got: usize, n: usize },
    #[error("component {component} has an ill-defined covariance (not positive definite); decrease k, increase reg_covar, or scale the features")]
    Singular { component: usize },
    #[error(transparent)]
    Data(#[from] KMeansError),
}

/// Gaussian-mixture settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GmmParams {
    pub k: usize,
    pub covariance: Covariance,
    pub init: GmmInit,
    pub n_init: usize,
    pub max_iter: usize,
    pub tol: f64,
    pub reg_covar: f64,
    pub seed: u64,
}

impl GmmParams {
    /// scikit-learn's defaults: full covariance, k-means start, one initialisation, 100
    /// iterations, `tol = 1e-3`, `reg_covar = 1e-6`; seed 0.
    pub fn new(k: usize) -> Self {
        GmmParams {
            k,
            covariance: Covariance::Full,
            init: GmmInit::KMeans,
            n_init: 1,
            max_iter: 100,
            tol: 1e-3,
            reg_covar: 1e-6,
            seed: 0,
        }
    }
    pub fn covariance(mut self, c: Covariance) -> Self {
        self.covariance = c;
        self
    }
    pub fn init(mut self, init: GmmInit) -> Self {
        self.init = init;
        self
    }
    pub fn n_init(mut self, n: usize) -> Self {
        self.n_init = n;
        self
    }
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
    pub fn reg_covar(mut self, r: f64) -> Self {
        self.reg_covar = r;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn check(&self, n: usize) -> Result<(), GmmError> {
        if self.k == 0 {
            return Err(GmmError::ZeroK);
        }
        if self.k > n {
            return Err(GmmError::KTooLarge { k: self.k, n });
        }
        if self.max_iter == 0 {
            return Err(GmmError::ZeroIter);
        }
        if self.n_init == 0 {
            return Err(GmmError::ZeroInit);
        }
        if !self.tol.is_finite() || self.tol < 0.0 {
            return Err(GmmError::BadTol(self.tol));
        }
        if !self.reg_covar.is_finite() || self.reg_covar < 0.0 {
            return Err(GmmError::BadReg(self.reg_covar));
        }
        if let GmmInit::Labels(l) = &self.init {
            if l.len() != n || l.iter().any(|&v| v as usize >= self.k) {
                return Err(GmmError::BadInit { got: l.len(), n });
            }
        }
        Ok(())
    }
}

/// A fitted Gaussian mixture.
#[derive(Debug, Clone, PartialEq)]
pub struct GmmModel {
    pub k: usize,
    pub d: usize,
    /// Rows the model was fitted on.
    pub n: usize,
    pub covariance: Covariance,
    /// Mixing weights (sum to 1).
    pub weights: Vec<f64>,
    /// Row-major `k × d`.
    pub means: Vec<f64>,
    /// `k × d × d` (full) or `k × d` (diag), `reg_covar` included.
    pub covariances: Vec<f64>,
    /// Most probable component of each row.
    pub labels: Vec<u32>,
    /// That component's responsibility (posterior probability) for each row.
    pub probability: Vec<f64>,
    /// Mean log-likelihood per row at the last iteration (scikit-learn's `lower_bound_`).
    pub lower_bound: f64,
    /// Mean log-likelihood per row under the final parameters (scikit-learn's
    /// `score(X)`).
    pub mean_log_likelihood: f64,
    /// EM iterations of the kept initialisation.
    pub n_iter: usize,
    /// Whether it converged before `max_iter`.
    pub converged: bool,
    /// Final lower bound of every initialisation, in order.
    pub lower_bound_per_init: Vec<f64>,
}

impl GmmModel {
    /// Total log-likelihood of the fitted rows under the final parameters.
    pub fn log_likelihood(&self) -> f64 {
        self.mean_log_likelihood * self.n as f64
    }

    /// Free parameters: `k·d` means, `k − 1` weights, and `k·d(d+1)/2` (full) or `k·d`
    /// (diag) covariance entries.
    pub fn n_parameters(&self) -> usize {
        let (k, d) = (self.k, self.d);
        let cov = match self.covariance {
            Covariance::Full => k * d * (d + 1) / 2,
            Covariance::Diag => k * d,
        };
        cov + k * d + k - 1
    }

    /// Bayesian information criterion: `−2·log L + p·ln n` (lower is better).
    pub fn bic(&self) -> f64 {
        -2.0 * self.log_likelihood() + self.n_parameters() as f64 * (self.n as f64).ln()
    }

    /// Akaike information criterion: `−2·log L + 2p` (lower is better).
    pub fn aic(&self) -> f64 {
        -2.0 * self.log_likelihood() + 2.0 * self.n_parameters() as f64
    }
}

/// Current parameters plus the Cholesky factors used by the E-step.
#[derive(Clone)]
struct Params {
    weights: Vec<f64>,
    means: Vec<f64>,
    covariances: Vec<f64>,
    /// Full: lower Cholesky factors `k × d × d`; diag: standard deviations `k × d`.
    chol: Vec<f64>,
    /// Per component: `ln w − Σ ln L_ii − d/2 · ln 2π`.
    log_norm: Vec<f64>,
}

struct Fitter<'a> {
    data: &'a [f64],
    n: usize,
    d: usize,
    k: usize,
    cov: Covariance,
    reg: f64,
}

/// Per-chunk sums of the E-step.
#[derive(Clone)]
struct Stats {
    nk: Vec<f64>,
    sx: Vec<f64>,
    ll: f64,
}

impl Fitter<'_> {
    fn cov_len(&self) -> usize {
        match self.cov {
            Covariance::Full => self.k * self.d * self.d,
            Covariance::Diag => self.k * self.d,
        }
    }

    /// Cholesky factors and normalising constants of `covariances`.
    fn factor(
        &self,
        weights: Vec<f64>,
        means: Vec<f64>,
        covariances: Vec<f64>,
    ) -> Result<Params, GmmError> {
        let (k, d) = (self.k, self.d);
        let mut chol = vec![0.0; covariances.len()];
        let mut log_norm = vec![0.0; k];
        for j in 0..k {
            let log_det_half = match self.cov {
                Covariance::Full => {
                    let a = &covariances[j * d * d..(j + 1) * d * d];
                    let l = &mut chol[j * d * d..(j + 1) * d * d];
                    cholesky(a, l, d).ok_or(GmmError::Singular { component: j })?;
                    (0..d).map(|i| l[i * d + i].ln()).sum::<f64>()
                }
                Covariance::Diag => {
                    let mut s = 0.0;
                    for f in 0..d {
                        let v = covariances[j * d + f];
                        if v.is_nan() || v <= 0.0 || !v.is_finite() {
                            return Err(GmmError::Singular { component: j });
                        }
                        chol[j * d + f] = v.sqrt();
                        s += chol[j * d + f].ln();
                    }
                    s
                }
            };
            log_norm[j] = weights[j].ln() - log_det_half - 0.5 * d as f64 * LN_2PI;
        }
        Ok(Params {
            weights,
            means,
            covariances,
            chol,
            log_norm,
        })
    }

    /// Log of weight × density of row `x` under each component, into `out`.
    #[inline]
    fn weighted_log_prob(&self, p: &Params, x: &[f64], z: &mut [f64], out: &mut [f64]) {
        let d = self.d;
        for (j, o) in out.iter_mut().enumerate().take(self.k) {
            let mu = &p.means[j * d..(j + 1) * d];
            let sq = match self.cov {
                Covariance::Full => {
                    let l = &p.chol[j * d * d..(j + 1) * d * d];
                    let mut sq = 0.0;
                    for i in 0..d {
                        let mut v = x[i] - mu[i];
                        for m in 0..i {
                            v -= l[i * d + m] * z[m];
                        }
                        z[i] = v / l[i * d + i];
                        sq += z[i] * z[i];
                    }
                    sq
                }
                Covariance::Diag => {
                    let sd = &p.chol[j * d..(j + 1) * d];
                    let mut sq = 0.0;
                    for i in 0..d {
                        let t = (x[i] - mu[i]) / sd[i];
                        sq += t * t;
                    }
                    sq
                }
            };
            *o = p.log_norm[j] - 0.5 * sq;
        }
    }

    /// E-step: responsibilities into `resp` (`n × k`), and the sums the M-step needs.
    fn e_step(&self, p: &Params, resp: &mut [f64]) -> Stats {
        let (k, d) = (self.k, self.d);
        let parts: Vec<Stats> = self
            .data
            .par_chunks(CHUNK_ROWS * d)
            .zip(resp.par_chunks_mut(CHUNK_ROWS * k))
            .map(|(x, r)| {
                let mut s = Stats {
                    nk: vec![0.0; k],
                    sx: vec![0.0; k * d],
                    ll: 0.0,
                };
                let mut z = vec![0.0; d];
                for (row, rr) in x.chunks_exact(d).zip(r.chunks_exact_mut(k)) {
                    self.weighted_log_prob(p, row, &mut z, rr);
                    let max = rr.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let lse = if max.is_finite() {
                        max + rr.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
                    } else {
                        max
                    };
                    s.ll += lse;
                    for (j, r) in rr.iter_mut().enumerate() {
                        let w = (*r - lse).exp();
                        *r = w;
                        s.nk[j] += w;
                        for (sx, v) in s.sx[j * d..(j + 1) * d].iter_mut().zip(row) {
                            *sx += w * v;
                        }
                    }
                }
                s
            })
            .collect();
        let mut total = Stats {
            nk: vec![0.0; k],
            sx: vec![0.0; k * d],
            ll: 0.0,
        };
        for s in &parts {
            for (a, b) in total.nk.iter_mut().zip(&s.nk) {
                *a += b;
            }
            for (a, b) in total.sx.iter_mut().zip(&s.sx) {
                *a += b;
            }
            total.ll += s.ll;
        }
        total
    }

    /// M-step from responsibilities and their sums; `weights_by_n` gives the initial
    /// weights `n_k / n` instead of `n_k / Σ n_k`.
    fn m_step(&self, resp: &[f64], stats: &Stats, weights_by_n: bool) -> Result<Params, GmmError> {
        let (k, d) = (self.k, self.d);
        let nk: Vec<f64> = stats.nk.iter().map(|v| v + 10.0 * f64::EPSILON).collect();
        let mut means = stats.sx.clone();
        for j in 0..k {
            for f in 0..d {
                means[j * d + f] /= nk[j];
            }
        }
        let cl = self.cov_len();
        let per = cl / k;
        let parts: Vec<Vec<f64>> = self
            .data
            .par_chunks(CHUNK_ROWS * d)
            .zip(resp.par_chunks(CHUNK_ROWS * k))
            .map(|(x, r)| {
                let mut c = vec![0.0; cl];
                let mut diff = vec![0.0; d];
                for (row, rr) in x.chunks_exact(d).zip(r.chunks_exact(k)) {
                    for j in 0..k {
                        let w = rr[j];
                        if w == 0.0 {
                            continue;
                        }
                        for f in 0..d {
                            diff[f] = row[f] - means[j * d + f];
                        }
                        let cj = &mut c[j * per..(j + 1) * per];
                        match self.cov {
                            Covariance::Full => {
                                // Lower triangle only; mirrored below.
                                for a in 0..d {
                                    let wa = w * diff[a];
                                    for b in 0..=a {
                                        cj[a * d + b] += wa * diff[b];
                                    }
                                }
                            }
                            Covariance::Diag => {
                                for f in 0..d {
                                    cj[f] += w * diff[f] * diff[f];
                                }
                            }
                        }
                    }
                }
                c
            })
            .collect();
        let mut cov = vec![0.0; cl];
        for p in &parts {
            for (a, b) in cov.iter_mut().zip(p) {
                *a += b;
            }
        }
        for j in 0..k {
            let cj = &mut cov[j * per..(j + 1) * per];
            match self.cov {
                Covariance::Full => {
                    for a in 0..d {
                        for b in 0..=a {
                            let v = cj[a * d + b] / nk[j];
                            cj[a * d + b] = v;
                            cj[b * d + a] = v;
                        }
                        cj[a * d + a] += self.reg;
                    }
                }
                Covariance::Diag => {
                    for v in cj.iter_mut() {
                        *v = *v / nk[j] + self.reg;
                    }
                }
            }
        }
        let weights: Vec<f64> = if weights_by_n {
            nk.iter().map(|v| v / self.n as f64).collect()
        } else {
            let s: f64 = nk.iter().sum();
            nk.iter().map(|v| v / s).collect()
        };
        self.factor(weights, means, cov)
    }

    /// Initial parameters from hard labels.
    fn start_from_labels(&self, labels: &[u32], resp: &mut [f64]) -> Result<Params, GmmError> {
        let (k, d) = (self.k, self.d);
        resp.iter_mut().for_each(|v| *v = 0.0);
        let mut stats = Stats {
            nk: vec![0.0; k],
            sx: vec![0.0; k * d],
            ll: 0.0,
        };
        for (i, &l) in labels.iter().enumerate() {
            let l = l as usize;
            resp[i * k + l] = 1.0;
            stats.nk[l] += 1.0;
            for f in 0..d {
                stats.sx[l * d + f] += self.data[i * d + f];
            }
        }
        self.m_step(resp, &stats, true)
    }

    /// EM from `start`; returns the kept parameters, lower bound, iterations and
    /// convergence.
    fn em(
        &self,
        mut p: Params,
        resp: &mut [f64],
        max_iter: usize,
        tol: f64,
    ) -> Result<(Params, f64, usize, bool), GmmError> {
        let mut lower = f64::NEG_INFINITY;
        let mut n_iter = 0;
        let mut converged = false;
        for it in 1..=max_iter {
            n_iter = it;
            let prev = lower;
            let stats = self.e_step(&p, resp);
            p = self.m_step(resp, &stats, false)?;
            lower = stats.ll / self.n as f64;
            if (lower - prev).abs() < tol {
                converged = true;
                break;
            }
        }
        Ok((p, lower, n_iter, converged))
    }
}

/// Lower Cholesky factor of the symmetric `d × d` matrix `a` into `l`; `None` when `a`
/// is not positive definite.
fn cholesky(a: &[f64], l: &mut [f64], d: usize) -> Option<()> {
    l.iter_mut().for_each(|v| *v = 0.0);
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for m in 0..j {
                s -= l[i * d + m] * l[j * d + m];
            }
            if i == j {
                if s.is_nan() || s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    Some(())
}

/// Fit a Gaussian mixture to `data`, row-major with `d` features per row.
pub fn fit(data: &[f64], d: usize, params: &GmmParams) -> Result<GmmModel, GmmError> {
    let n = kmeans::check_data(data, d)?;
    params.check(n)?;
    let k = params.k;
    let fitter = Fitter {
        data,
        n,
        d,
        k,
        cov: params.covariance,
        reg: params.reg_covar,
    };
    let mut resp = vec![0.0; n * k];
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let n_init = match params.init {
        GmmInit::Labels(_) => 1,
        GmmInit::KMeans => params.n_init,
    };
    let mut best: Option<(Params, f64, usize, bool)> = None;
    let mut per_init = Vec::with_capacity(n_init);
    for _ in 0..n_init {
        let start = match &params.init {
            GmmInit::Labels(l) => fitter.start_from_labels(l, &mut resp)?,
            GmmInit::KMeans => {
                let km = kmeans::fit(
                    data,
                    d,
                    &KMeansParams::new(k).n_init(1).seed(rng.random::<u64>()),
                )?;
                fitter.start_from_labels(&km.labels, &mut resp)?
            }
        };
        let run = fitter.em(start, &mut resp, params.max_iter, params.tol)?;
        per_init.push(run.1);
        // Strictly higher wins, so the earliest of equal runs is kept.
        if best.as_ref().is_none_or(|b| run.1 > b.1) {
            best = Some(run);
        }
    }
    let (p, lower_bound, n_iter, converged) = best.expect("n_init >= 1");
    // Final E-step: labels, their probability and the log-likelihood of the kept
    // parameters.
    let stats = fitter.e_step(&p, &mut resp);
    let mut labels = Vec::with_capacity(n);
    let mut probability = Vec::with_capacity(n);
    for r in resp.chunks_exact(k) {
        let (j, v) =
            r.iter().enumerate().fold(
                (0, f64::NEG_INFINITY),
                |b, (j, &v)| if v > b.1 { (j, v) } else { b },
            );
        labels.push(j as u32);
        probability.push(v);
    }
    Ok(GmmModel {
        k,
        d,
        n,
        covariance: params.covariance,
        weights: p.weights,
        means: p.means,
        covariances: p.covariances,
        labels,
        probability,
        lower_bound,
        mean_log_likelihood: stats.ll / n as f64,
        n_iter,
        converged,
        lower_bound_per_init: per_init,
    })
}

/// An information criterion for choosing `k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoCriterion {
    Bic,
    Aic,
}

impl InfoCriterion {
    pub fn name(self) -> &'static str {
        match self {
            InfoCriterion::Bic => "bic",
            InfoCriterion::Aic => "aic",
        }
    }
}

/// One candidate of [`select_k`].
#[derive(Debug, Clone, PartialEq)]
pub struct GmmCurvePoint {
    pub k: usize,
    pub bic: f64,
    pub aic: f64,
    /// Total log-likelihood.
    pub log_likelihood: f64,
    pub converged: bool,
}

/// Fit every `k` in `k_min..=k_max` (with `params` otherwise) on all rows and keep the
/// one with the lowest BIC or AIC (the smaller `k` among equals). Returns the kept
/// model and the curve.
pub fn select_k(
    data: &[f64],
    d: usize,
    params: &GmmParams,
    k_min: usize,
    k_max: usize,
    criterion: InfoCriterion,
) -> Result<(GmmModel, Vec<GmmCurvePoint>), GmmError> {
    let mut best: Option<(f64, GmmModel)> = None;
    let mut curve = Vec::new();
    for k in k_min.max(1)..=k_max {
        let mut p = params.clone();
        p.k = k;
        let m = fit(data, d, &p)?;
        let (bic, aic) = (m.bic(), m.aic());
        curve.push(GmmCurvePoint {
            k,
            bic,
            aic,
            log_likelihood: m.log_likelihood(),
            converged: m.converged,
        });
        let score = match criterion {
            InfoCriterion::Bic => bic,
            InfoCriterion::Aic => aic,
        };
        if best.as_ref().is_none_or(|b| score < b.0) {
            best = Some((score, m));
        }
    }
    let (_, model) = best.ok_or(GmmError::ZeroK)?;
    Ok((model, curve))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut v = Vec::new();
        for (g, (cx, cy, sx, sy)) in [
            (0.0, 0.0, 1.0, 0.3),
            (6.0, 0.0, 0.4, 1.5),
            (0.0, 7.0, 1.0, 1.0),
        ]
        .into_iter()
        .enumerate()
        {
            for _ in 0..(200 + 100 * g) {
                let (a, b): (f64, f64) = (rng.random(), rng.random());
                let r = (-2.0 * (1.0 - a).ln()).sqrt();
                v.push(cx + sx * r * (std::f64::consts::TAU * b).cos());
                v.push(cy + sy * r * (std::f64::consts::TAU * b).sin());
            }
        }
        v
    }

    #[test]
    fn fits_separated_blobs_and_picks_k_by_bic() {
        let x = blobs(1);
        for cov in [Covariance::Full, Covariance::Diag] {
            let m = fit(&x, 2, &GmmParams::new(3).covariance(cov).seed(2)).unwrap();
            assert!(m.converged);
            let mut w = m.weights.clone();
            w.sort_by(f64::total_cmp);
            assert!((w[0] - 200.0 / 900.0).abs() < 0.01, "{w:?}");
            assert!(m
                .probability
                .iter()
                .all(|&p| p > 1.0 / 3.0 && p <= 1.0 + 1e-12));
            assert!((m.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let (best, curve) = select_k(
                &x,
                2,
                &GmmParams::new(1).covariance(cov),
                1,
                6,
                InfoCriterion::Bic,
            )
            .unwrap();
            assert_eq!(best.k, 3, "{curve:?}");
            assert_eq!(curve.len(), 6);
        }
    }

    #[test]
    fn same_result_for_any_thread_count() {
        let mut x = blobs(3);
        x.extend(blobs(4));
        x.extend(blobs(5));
        let p = GmmParams::new(4).n_init(2).seed(1);
        let run = |t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| fit(&x, 2, &p).unwrap())
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn errors() {
        let x = [1.0, 2.0, 3.0];
        assert_eq!(fit(&x, 1, &GmmParams::new(0)), Err(GmmError::ZeroK));
        assert_eq!(
            fit(&x, 1, &GmmParams::new(4)),
            Err(GmmError::KTooLarge { k: 4, n: 3 })
        );
        assert!(fit(
            &x,
            1,
            &GmmParams::new(1).init(GmmInit::Labels(vec![0, 1, 0]))
        )
        .is_err());
        // Identical rows: the covariance is reg_covar alone, still fine.
        let same = vec![2.0; 20];
        let m = fit(&same, 2, &GmmParams::new(1)).unwrap();
        assert!((m.covariances[0] - 1e-6).abs() < 1e-12);
        // No regularisation: singular.
        assert_eq!(
            fit(&same, 2, &GmmParams::new(1).reg_covar(0.0)),
            Err(GmmError::Singular { component: 0 })
        );
    }
}
