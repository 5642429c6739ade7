//! k-means clustering on a dense row-major `f64` matrix.
//!
//! Three iterations, all giving the same labels, centres and inertia from the same start:
//!
//! - [`Algorithm::Lloyd`]: every iteration computes the distance of every row to every
//!   centre. The kernel uses the `‖c‖² − 2x·c` expansion with the centres stored
//!   transposed and pre-multiplied by −2, so a block of rows × 16 centres stays in
//!   vector registers (AVX2/FMA where the CPU has it, chosen at run time), the argmin is
//!   taken with vector compares, and the per-cluster sums of a block are accumulated
//!   while its rows are still in cache (one pass over the data per iteration).
//! - [`Algorithm::Hamerly`]: one upper and one lower distance bound per row (Hamerly
//!   2010); rows whose bounds prove their centre unchanged are skipped.
//! - [`Algorithm::Elkan`]: one upper bound and `k` lower bounds per row (Elkan 2003);
//!   prunes more than Hamerly but keeps `n × k` bounds.
//!
//! The bounded iterations decide a row's centre with the same kernel as Lloyd whenever
//! the bounds do not settle it, and they only skip a row when its bounds separate the
//! centres by more than the kernel's worst-case rounding error (with bounds rounded
//! outwards), so their labels are exactly Lloyd's; the centre sums are then accumulated
//! in the same order, which makes the whole result bit-identical.
//!
//! Results are deterministic for a seed whatever the thread count: rows are processed in
//! fixed-size chunks whose partial sums are combined in chunk order, and all randomness
//! comes from one seeded generator consumed in a fixed order.
//!
//! Conventions follow scikit-learn's `KMeans(algorithm="lloyd")` so results can be
//! compared: `tol` is relative to the mean per-feature variance, iteration stops on no
//! label change or when the squared centre shift is at most that tolerance, an empty
//! cluster is re-seeded with the point farthest from its centre, and labels are
//! recomputed against the final centres.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Rows per chunk of work. Fixed, so the order of floating-point sums does not depend on
/// the number of threads.
pub(crate) const CHUNK_ROWS: usize = 2048;

/// How to choose the initial centres.
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// Greedy k-means++ (Arthur & Vassilvitskii, with `2 + ln k` candidates per centre,
    /// as scikit-learn does).
    KMeansPlusPlus,
    /// `k` distinct rows chosen uniformly at random.
    Random,
    /// These centres, row-major `k × d` (then `n_init` is 1).
    Given(Vec<f64>),
}

/// Which iteration runs; all give the same result from the same start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Every row against every centre, every iteration.
    Lloyd,
    /// `k` lower bounds per row (`n × k` doubles of memory).
    Elkan,
    /// One lower bound per row.
    Hamerly,
    /// Hamerly when `k > 16`, or `k > 8` with at least 64 features; Lloyd otherwise
    /// (see [`Algorithm::resolve`]).
    #[default]
    Auto,
}

impl Algorithm {
    /// The iteration `Auto` stands for with `k` centres on `d` features (the others
    /// stand for themselves).
    ///
    /// Measured with `tests/kmeans_speed.rs` (200k rows of overlapping blobs, `tol =
    /// 1e-4`, 2 cores): a row Hamerly skips still costs its bounds and its share of the
    /// centre sums, about as much as the blocked Lloyd kernel on 16 centres of a few
    /// features, so Hamerly pays off once there are more centres (k = 24: 0.74-0.79 of
    /// Lloyd's time at d = 2..32; k = 64: 0.38-0.53) or long rows (d = 64, k = 16: 0.54),
    /// and loses below (k = 16, d = 8: 1.41; k = 4: 1.9-2.4). Elkan's `k` bounds per row
    /// cost more than they save at every measured size (1.1-12x Lloyd), so `Auto` never
    /// picks it.
    pub fn resolve(self, d: usize, k: usize) -> Algorithm {
        match self {
            Algorithm::Auto if k > 16 || (k > 8 && d >= 64) => Algorithm::Hamerly,
            Algorithm::Auto => Algorithm::Lloyd,
            a => a,
        }
    }

    /// The snake_case name used in config and facts.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Lloyd => "lloyd",
            Algorithm::Elkan => "elkan",
            Algorithm::Hamerly => "hamerly",
            Algorithm::Auto => "auto",
        }
    }
}

/// Why k-means cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KMeansError {
    #[error("k must be at least 1")]
    ZeroK,
    #[error("k = {k} is more than the {n} rows to cluster; choose k <= {n}")]
    KTooLarge { k: usize, n: usize },
    #[error("there are no rows to cluster")]
    Empty,
    #[error("the data has {len} values, which is not a whole number of rows of {d} features")]
    Shape { len: usize, d: usize },
    #[error("the data has no features (0 columns)")]
    NoFeatures,
    #[error("row {row}, feature {feature} is {value}; k-means needs finite numbers (impute or drop missing values first)")]
    NotFinite {
        row: usize,
        feature: usize,
        value: f64,
    },
    #[error("max_iter must be at least 1")]
    ZeroIter,
    #[error("n_init must be at least 1")]
    ZeroInit,
    #[error("tol must be finite and >= 0, got {0}")]
    BadTol(f64),
    #[error("the given initial centres have {got} values, expected k × d = {want}")]
    BadInit { got: usize, want: usize },
    #[error("batch_size must be at least 1")]
    ZeroBatch,
    #[error("reassignment_ratio must be finite and >= 0, got {0}")]
    BadRatio(f64),
}

/// k-means settings, validated by [`KMeansParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams {
    pub k: usize,
    pub init: Init,
    pub n_init: usize,
    pub max_iter: usize,
    pub tol: f64,
    pub seed: u64,
    pub algorithm: Algorithm,
}

impl KMeansParams {
    /// Defaults: k-means++, one initialisation, 300 iterations, `tol = 1e-4`, seed 0,
    /// `Algorithm::Auto`.
    pub fn new(k: usize) -> Self {
        KMeansParams {
            k,
            init: Init::KMeansPlusPlus,
            n_init: 1,
            max_iter: 300,
            tol: 1e-4,
            seed: 0,
            algorithm: Algorithm::Auto,
        }
    }
    pub fn init(mut self, init: Init) -> Self {
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
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Check the settings against data of `d` features.
    pub fn check(&self, d: usize) -> Result<(), KMeansError> {
        check_common(self.k, self.max_iter, self.n_init, self.tol, &self.init, d)
    }
}

/// The checks k-means and mini-batch k-means share: `k`, iteration and restart counts,
/// `tol`, and the shape of given starting centres.
pub(crate) fn check_common(
    k: usize,
    max_iter: usize,
    n_init: usize,
    tol: f64,
    init: &Init,
    d: usize,
) -> Result<(), KMeansError> {
    if k == 0 {
        return Err(KMeansError::ZeroK);
    }
    if max_iter == 0 {
        return Err(KMeansError::ZeroIter);
    }
    if n_init == 0 {
        return Err(KMeansError::ZeroInit);
    }
    if !tol.is_finite() || tol < 0.0 {
        return Err(KMeansError::BadTol(tol));
    }
    if let Init::Given(c) = init {
        if c.len() != k * d {
            return Err(KMeansError::BadInit {
                got: c.len(),
                want: k * d,
            });
        }
    }
    Ok(())
}

/// A fitted k-means model.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansModel {
    /// Row-major `k × d`.
    pub centroids: Vec<f64>,
    pub k: usize,
    pub d: usize,
    /// Cluster of each row, `0..k`.
    pub labels: Vec<u32>,
    /// Sum of squared distances of rows to their centre.
    pub inertia: f64,
    /// Iterations run by the best initialisation.
    pub n_iter: usize,
    /// Whether the best initialisation converged before `max_iter`.
    pub converged: bool,
    /// Inertia of every initialisation, in order.
    pub inertia_per_init: Vec<f64>,
    /// Iterations of every initialisation, in order.
    pub n_iter_per_init: Vec<usize>,
    /// Whether each initialisation converged, in order.
    pub converged_per_init: Vec<bool>,
    /// The iteration that ran (`Auto` resolved).
    pub algorithm: Algorithm,
}

impl KMeansModel {
    /// The nearest centre of each row of `data` and its squared distance.
    pub fn predict(&self, data: &[f64]) -> Vec<(u32, f64)> {
        let cs = Centres::new(&self.centroids, self.k, self.d);
        let mut out = vec![(0u32, 0.0); data.len() / self.d];
        data.par_chunks(CHUNK_ROWS * self.d)
            .zip(out.par_chunks_mut(CHUNK_ROWS))
            .for_each(|(rows, out)| {
                let mut labels = vec![0u32; out.len()];
                cs.nearest(rows, &mut labels);
                for ((o, x), &j) in out.iter_mut().zip(rows.chunks_exact(self.d)).zip(&labels) {
                    let j = j as usize;
                    *o = (
                        j as u32,
                        sq_dist(x, &self.centroids[j * self.d..(j + 1) * self.d]),
                    );
                }
            });
        out
    }
}

/// The nearest of fixed centres, for labelling rows batch by batch on the calling thread
/// (a stream, say) with the same kernel and tie rule as [`fit`].
pub struct Nearest {
    cs: Centres,
    centroids: Vec<f64>,
    d: usize,
}

impl Nearest {
    /// `centroids` row-major `k × d`.
    pub fn new(centroids: &[f64], k: usize, d: usize) -> Self {
        assert_eq!(centroids.len(), k * d, "k × d centre values");
        Nearest {
            cs: Centres::new(centroids, k, d),
            centroids: centroids.to_vec(),
            d,
        }
    }

    /// The nearest centre of every row of `rows` and the squared distance to it.
    pub fn assign(&self, rows: &[f64], labels: &mut [u32], sq_dists: &mut [f64]) {
        self.cs.nearest(rows, labels);
        let d = self.d;
        for ((x, &j), s) in rows.chunks_exact(d).zip(labels.iter()).zip(sq_dists) {
            let j = j as usize;
            *s = sq_dist(x, &self.centroids[j * d..(j + 1) * d]);
        }
    }
}

/// Squared Euclidean distance, summed over the features in order.
#[inline]
pub(crate) fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        let t = x - y;
        s += t * t;
    }
    s
}

/// `a * b + c`, fused where the portable kernel is compiled with FMA.
#[inline(always)]
fn madd(a: f64, b: f64, c: f64) -> f64 {
    if cfg!(any(target_feature = "fma", target_arch = "aarch64")) {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Whether the x86-64 AVX2/FMA kernel runs on this CPU.
#[inline]
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// What the assignment kernel reports per row besides the label.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    /// The label only.
    Label,
    /// The label, the lowest and the second-lowest `‖c‖² − 2x·c`.
    Best2,
}

/// Centres prepared for the assignment kernel: transposed (`d × kp`, `kp` = k rounded up
/// to a multiple of 4), multiplied by −2, with their squared norms. Padding centres
/// have an infinite norm, so they never win.
///
/// Row `x` scores centre `j` as `‖c_j‖² + Σ_f x_f·(−2c_jf)`, accumulated over the
/// features in order with one fused multiply-add each (a plain multiply and add on CPUs
/// without FMA). Every path of the kernel computes exactly this, lane by lane, so a
/// row's score does not depend on how rows are grouped.
pub(crate) struct Centres {
    m2ct: Vec<f64>,
    norms: Vec<f64>,
    kp: usize,
    d: usize,
    avx2: bool,
}

impl Centres {
    pub(crate) fn new(centroids: &[f64], k: usize, d: usize) -> Self {
        let kp = k.div_ceil(4) * 4;
        let mut m2ct = vec![0.0; kp * d];
        let mut norms = vec![f64::INFINITY; kp];
        for j in 0..k {
            let c = &centroids[j * d..(j + 1) * d];
            norms[j] = c.iter().map(|v| v * v).sum();
            for (f, v) in c.iter().enumerate() {
                m2ct[f * kp + j] = -2.0 * v;
            }
        }
        Centres {
            m2ct,
            norms,
            kp,
            d,
            avx2: has_avx2(),
        }
    }

    /// The nearest centre of every row of `rows` (ties to the lowest index).
    pub(crate) fn nearest(&self, rows: &[f64], labels: &mut [u32]) {
        self.run(Out::Label, rows, labels, &mut [], &mut []);
    }

    /// The nearest centre of every row, and the lowest and second-lowest scores
    /// `‖c‖² − 2x·c` (the second is +∞ when k = 1).
    fn nearest2(&self, rows: &[f64], labels: &mut [u32], best: &mut [f64], second: &mut [f64]) {
        self.run(Out::Best2, rows, labels, best, second);
    }

    /// Every row's score against every centre, `kp` per row (padding +∞).
    fn scores(&self, rows: &[f64], out: &mut [f64]) {
        let (d, kp) = (self.d, self.kp);
        for (x, o) in rows.chunks_exact(d).zip(out.chunks_exact_mut(kp)) {
            o.copy_from_slice(&self.norms);
            for (f, &xv) in x.iter().enumerate() {
                let c = &self.m2ct[f * kp..(f + 1) * kp];
                if self.avx2 {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU has AVX2 and FMA (checked in `new`).
                    unsafe {
                        avx2::fma_row(xv, c, o)
                    };
                } else {
                    for (a, &cv) in o.iter_mut().zip(c) {
                        *a = madd(xv, cv, *a);
                    }
                }
            }
        }
    }

    fn run(
        &self,
        out: Out,
        rows: &[f64],
        labels: &mut [u32],
        best: &mut [f64],
        second: &mut [f64],
    ) {
        debug_assert_eq!(rows.len(), labels.len() * self.d);
        if self.avx2 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has AVX2 and FMA (checked in `new`).
            unsafe {
                return match out {
                    Out::Label => avx2::nearest::<false>(self, rows, labels, best, second),
                    Out::Best2 => avx2::nearest::<true>(self, rows, labels, best, second),
                };
            }
        }
        match out {
            Out::Label => self.nearest_portable::<false>(rows, labels, best, second),
            Out::Best2 => self.nearest_portable::<true>(rows, labels, best, second),
        }
    }

    fn nearest_portable<const SECOND: bool>(
        &self,
        rows: &[f64],
        labels: &mut [u32],
        best: &mut [f64],
        second: &mut [f64],
    ) {
        let (d, kp) = (self.d, self.kp);
        let mut acc = vec![0.0; kp];
        for (i, x) in rows.chunks_exact(d).enumerate() {
            acc.copy_from_slice(&self.norms);
            for (f, &xv) in x.iter().enumerate() {
                for (a, &c) in acc.iter_mut().zip(&self.m2ct[f * kp..(f + 1) * kp]) {
                    *a = madd(xv, c, *a);
                }
            }
            let (j, b) = argmin(&acc);
            labels[i] = j as u32;
            if SECOND {
                best[i] = b;
                second[i] = acc
                    .iter()
                    .enumerate()
                    .filter(|&(m, _)| m != j)
                    .fold(f64::INFINITY, |s, (_, &v)| s.min(v));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The AVX2/FMA assignment kernel: `R` rows × a tile of `4T` centres held in
    //! `R·T` vector accumulators.
    use super::Centres;
    use std::arch::x86_64::*;

    /// Rows scored together (2 rows × 16 centres = 8 accumulators, which keeps two FMA
    /// pipes busy without spilling).
    const R: usize = 2;

    /// `o[j] = fma(x, c[j], o[j])` for every `j`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fma_row(x: f64, c: &[f64], o: &mut [f64]) {
        let xb = _mm256_set1_pd(x);
        let n = o.len().min(c.len());
        let mut j = 0;
        while j + 4 <= n {
            let v = _mm256_fmadd_pd(
                xb,
                _mm256_loadu_pd(c.as_ptr().add(j)),
                _mm256_loadu_pd(o.as_ptr().add(j)),
            );
            _mm256_storeu_pd(o.as_mut_ptr().add(j), v);
            j += 4;
        }
        while j < n {
            o[j] = x.mul_add(c[j], o[j]);
            j += 1;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn nearest<const SECOND: bool>(
        c: &Centres,
        rows: &[f64],
        labels: &mut [u32],
        best: &mut [f64],
        second: &mut [f64],
    ) {
        let n = labels.len();
        assert!(rows.len() >= n * c.d);
        if SECOND {
            assert!(best.len() >= n && second.len() >= n);
        }
        let mut i = 0;
        while i + R <= n {
            group::<R, SECOND>(c, rows.as_ptr().add(i * c.d), i, labels, best, second);
            i += R;
        }
        while i < n {
            group::<1, SECOND>(c, rows.as_ptr().add(i * c.d), i, labels, best, second);
            i += 1;
        }
    }

    /// Rows `i..i + RR` (at `x`) against every centre.
    #[inline(always)]
    unsafe fn group<const RR: usize, const SECOND: bool>(
        c: &Centres,
        x: *const f64,
        i: usize,
        labels: &mut [u32],
        best: &mut [f64],
        second: &mut [f64],
    ) {
        let mut bv = [f64::INFINITY; RR];
        let mut bi = [0u32; RR];
        let mut sv = [f64::INFINITY; RR];
        let full = c.kp / 16;
        for t in 0..full {
            tile::<RR, 4, SECOND>(c, x, t * 16, &mut bv, &mut bi, &mut sv);
        }
        let base = full * 16;
        match (c.kp - base) / 4 {
            1 => tile::<RR, 1, SECOND>(c, x, base, &mut bv, &mut bi, &mut sv),
            2 => tile::<RR, 2, SECOND>(c, x, base, &mut bv, &mut bi, &mut sv),
            3 => tile::<RR, 3, SECOND>(c, x, base, &mut bv, &mut bi, &mut sv),
            _ => {}
        }
        for r in 0..RR {
            *labels.get_unchecked_mut(i + r) = bi[r];
            if SECOND {
                *best.get_unchecked_mut(i + r) = bv[r];
                *second.get_unchecked_mut(i + r) = sv[r];
            }
        }
    }

    /// Score `RR` rows against centres `base..base + 4T` and merge into the running best
    /// (strictly lower wins, so ties keep the lowest index).
    #[inline(always)]
    unsafe fn tile<const RR: usize, const T: usize, const SECOND: bool>(
        c: &Centres,
        x: *const f64,
        base: usize,
        bv: &mut [f64; RR],
        bi: &mut [u32; RR],
        sv: &mut [f64; RR],
    ) {
        let (d, kp) = (c.d, c.kp);
        let ct = c.m2ct.as_ptr().add(base);
        let nm = c.norms.as_ptr().add(base);
        let mut acc = [[_mm256_setzero_pd(); T]; RR];
        for row in acc.iter_mut() {
            for (t, a) in row.iter_mut().enumerate() {
                *a = _mm256_loadu_pd(nm.add(4 * t));
            }
        }
        for f in 0..d {
            let cf = ct.add(f * kp);
            let mut cv = [_mm256_setzero_pd(); T];
            for (t, v) in cv.iter_mut().enumerate() {
                *v = _mm256_loadu_pd(cf.add(4 * t));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let xb = _mm256_broadcast_sd(&*x.add(r * d + f));
                for t in 0..T {
                    row[t] = _mm256_fmadd_pd(xb, cv[t], row[t]);
                }
            }
        }
        for r in 0..RR {
            let a = &acc[r];
            let mut m = a[0];
            for v in a.iter().skip(1) {
                m = _mm256_min_pd(m, *v);
            }
            // Every lane := the minimum of the tile.
            let m = _mm256_min_pd(m, _mm256_permute2f128_pd::<1>(m, m));
            let m = _mm256_min_pd(m, _mm256_permute_pd::<0b0101>(m));
            let mut mask = 0u32;
            for (t, v) in a.iter().enumerate() {
                let eq = _mm256_cmp_pd::<_CMP_EQ_OQ>(*v, m);
                mask |= (_mm256_movemask_pd(eq) as u32) << (4 * t);
            }
            let tmin = _mm256_cvtsd_f64(m);
            let tidx = mask.trailing_zeros();
            let tsecond = if SECOND {
                // The minimum over the other lanes: the winner's lane masked to +inf.
                let win = _mm256_set1_pd(tidx as f64);
                let inf = _mm256_set1_pd(f64::INFINITY);
                let mut s = inf;
                for (t, v) in a.iter().enumerate() {
                    let b = (4 * t) as f64;
                    let lanes = _mm256_setr_pd(b, b + 1.0, b + 2.0, b + 3.0);
                    let is_win = _mm256_cmp_pd::<_CMP_EQ_OQ>(lanes, win);
                    s = _mm256_min_pd(s, _mm256_blendv_pd(*v, inf, is_win));
                }
                let s = _mm256_min_pd(s, _mm256_permute2f128_pd::<1>(s, s));
                let s = _mm256_min_pd(s, _mm256_permute_pd::<0b0101>(s));
                _mm256_cvtsd_f64(s)
            } else {
                0.0
            };
            if tmin < bv[r] {
                if SECOND {
                    sv[r] = bv[r].min(tsecond);
                }
                bv[r] = tmin;
                bi[r] = base as u32 + tidx;
            } else if SECOND {
                sv[r] = sv[r].min(tmin);
            }
        }
    }
}

#[inline]
fn argmin(v: &[f64]) -> (usize, f64) {
    let mut best = 0;
    let mut bv = v[0];
    for (i, &x) in v.iter().enumerate().skip(1) {
        if x < bv {
            bv = x;
            best = i;
        }
    }
    (best, bv)
}

/// [`accumulate`], compiled for AVX2 where the CPU has it (the same additions in the
/// same order, so the same sums).
fn accumulate_any(
    avx2: bool,
    rows: &[f64],
    d: usize,
    labels: &[u32],
    sums: &mut [f64],
    counts: &mut [u64],
) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn accumulate_avx2(
        rows: &[f64],
        d: usize,
        labels: &[u32],
        sums: &mut [f64],
        counts: &mut [u64],
    ) {
        accumulate(rows, d, labels, sums, counts)
    }
    if avx2 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller checked that the CPU has AVX2 and FMA.
        unsafe {
            return accumulate_avx2(rows, d, labels, sums, counts);
        }
    }
    accumulate(rows, d, labels, sums, counts)
}

/// Add each row of `rows` to the sums of its cluster (rows in order).
#[inline(always)]
fn accumulate(rows: &[f64], d: usize, labels: &[u32], sums: &mut [f64], counts: &mut [u64]) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match d {
                $($n => {
                    for (x, &j) in rows.chunks_exact($n).zip(labels) {
                        let j = j as usize;
                        let x: &[f64; $n] = x.try_into().expect("row");
                        let s: &mut [f64; $n] =
                            (&mut sums[j * $n..(j + 1) * $n]).try_into().expect("row");
                        for f in 0..$n {
                            s[f] += x[f];
                        }
                        counts[j] += 1;
                    }
                })*
                _ => {
                    for (x, &j) in rows.chunks_exact(d).zip(labels) {
                        let j = j as usize;
                        for (s, v) in sums[j * d..(j + 1) * d].iter_mut().zip(x) {
                            *s += v;
                        }
                        counts[j] += 1;
                    }
                }
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
}

/// Validate the data and return the number of rows.
pub fn check_data(data: &[f64], d: usize) -> Result<usize, KMeansError> {
    if d == 0 {
        return Err(KMeansError::NoFeatures);
    }
    if !data.len().is_multiple_of(d) {
        return Err(KMeansError::Shape { len: data.len(), d });
    }
    let n = data.len() / d;
    if n == 0 {
        return Err(KMeansError::Empty);
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(KMeansError::NotFinite {
            row: i / d,
            feature: i % d,
            value: data[i],
        });
    }
    Ok(n)
}

/// Fit k-means to `data`, row-major with `d` features per row.
pub fn fit(data: &[f64], d: usize, params: &KMeansParams) -> Result<KMeansModel, KMeansError> {
    params.check(d)?;
    let n = check_data(data, d)?;
    let k = params.k;
    if k > n {
        return Err(KMeansError::KTooLarge { k, n });
    }
    let tol = params.tol * mean_variance(data, n, d);
    let algorithm = params.algorithm.resolve(d, k);
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let n_init = if matches!(params.init, Init::Given(_)) {
        1
    } else {
        params.n_init
    };
    // Row norms for the bounded iterations, computed once for all restarts.
    let norms: Vec<f64> = match algorithm {
        Algorithm::Lloyd | Algorithm::Auto => Vec::new(),
        Algorithm::Hamerly | Algorithm::Elkan => data
            .par_chunks(CHUNK_ROWS * d)
            .flat_map_iter(|ch| ch.chunks_exact(d).map(|x| norm2(x).sqrt()))
            .collect(),
    };
    let mut best: Option<KMeansModel> = None;
    let mut inertias = Vec::with_capacity(n_init);
    let mut iters = Vec::with_capacity(n_init);
    let mut convs = Vec::with_capacity(n_init);
    for _ in 0..n_init {
        let centres = match &params.init {
            Init::Given(c) => c.clone(),
            Init::KMeansPlusPlus => kmeans_plus_plus(data, n, d, k, &mut rng),
            Init::Random => random_init(data, n, d, k, &mut rng),
        };
        let model = iterate(
            data,
            &norms,
            n,
            d,
            k,
            centres,
            params.max_iter,
            tol,
            algorithm,
        );
        inertias.push(model.inertia);
        iters.push(model.n_iter);
        convs.push(model.converged);
        // Strictly lower wins, so the earliest of equal runs is kept.
        if best.as_ref().is_none_or(|b| model.inertia < b.inertia) {
            best = Some(model);
        }
    }
    let mut best = best.expect("n_init >= 1");
    best.inertia_per_init = inertias;
    best.n_iter_per_init = iters;
    best.converged_per_init = convs;
    Ok(best)
}

fn norm2(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum()
}

pub(crate) fn mean_variance(data: &[f64], n: usize, d: usize) -> f64 {
    let mut mean = vec![0.0; d];
    for row in data.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0.0; d];
    for row in data.chunks_exact(d) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    var.iter().map(|s| s / n as f64).sum::<f64>() / d as f64
}

fn random_init(data: &[f64], n: usize, d: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let idx = rand::seq::index::sample(rng, n, k);
    let mut c = Vec::with_capacity(k * d);
    for i in idx.iter() {
        c.extend_from_slice(&data[i * d..(i + 1) * d]);
    }
    c
}

/// Greedy k-means++: each new centre is the best of `2 + ln k` candidates sampled in
/// proportion to the squared distance to the nearest chosen centre.
///
/// Two passes over the rows per centre: one scores every candidate (the potential if it
/// were added; candidates are held transposed so the distances of a row to all of them
/// vectorise), one updates the distances to the winner and the per-chunk potentials
/// from which the next candidates are sampled.
pub(crate) fn kmeans_plus_plus(
    data: &[f64],
    n: usize,
    d: usize,
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<f64> {
    let trials = 2 + (k as f64).ln() as usize;
    let mut centres = Vec::with_capacity(k * d);
    let row = |i: usize| &data[i * d..(i + 1) * d];
    let first = rng.random_range(0..n);
    centres.extend_from_slice(row(first));
    let mut closest = vec![0.0; n];
    let mut chunk_pot = vec![0.0; n.div_ceil(CHUNK_ROWS)];
    update_closest(data, d, row(first), true, &mut closest, &mut chunk_pot);
    let mut potential: f64 = chunk_pot.iter().sum();
    for _ in 1..k {
        if potential <= 0.0 {
            // Every row sits on a centre: the remaining centres repeat rows.
            let i = rng.random_range(0..n);
            centres.extend_from_slice(row(i));
            continue;
        }
        let candidates: Vec<usize> = (0..trials)
            .map(|_| sample_weighted(&closest, &chunk_pot, potential, rng.random::<f64>()))
            .collect();
        let pots = candidate_potentials(data, d, &closest, &candidates, |i| row(i));
        // The lowest potential wins; the earliest candidate among equals.
        let (bi, _) =
            pots.iter().enumerate().fold(
                (0, f64::INFINITY),
                |b, (i, &p)| if p < b.1 { (i, p) } else { b },
            );
        let cand = row(candidates[bi]);
        update_closest(data, d, cand, false, &mut closest, &mut chunk_pot);
        centres.extend_from_slice(cand);
        potential = chunk_pot.iter().sum();
    }
    centres
}

/// `closest[i] = min(closest[i], ‖x_i − c‖²)` (or `=` when `first`), and the sum of
/// each chunk of `closest`.
fn update_closest(
    data: &[f64],
    d: usize,
    c: &[f64],
    first: bool,
    closest: &mut [f64],
    chunk_pot: &mut [f64],
) {
    closest
        .par_chunks_mut(CHUNK_ROWS)
        .zip(data.par_chunks(CHUNK_ROWS * d))
        .zip(chunk_pot.par_iter_mut())
        .for_each(|((cl, ch), pot)| {
            let mut s = 0.0;
            for (old, x) in cl.iter_mut().zip(ch.chunks_exact(d)) {
                let v = sq_dist(x, c);
                *old = if first { v } else { old.min(v) };
                s += *old;
            }
            *pot = s;
        });
}

/// The row where the cumulative weight first exceeds `u * total`: the chunk from the
/// chunk sums, then the row within it.
fn sample_weighted(weights: &[f64], chunk_pot: &[f64], total: f64, u: f64) -> usize {
    let target = u * total;
    let mut acc = 0.0;
    let mut chunk = None;
    for (c, &p) in chunk_pot.iter().enumerate() {
        if acc + p > target && p > 0.0 {
            chunk = Some(c);
            break;
        }
        acc += p;
    }
    let c = chunk.unwrap_or_else(|| chunk_pot.iter().rposition(|&p| p > 0.0).unwrap_or(0));
    let lo = c * CHUNK_ROWS;
    let w = &weights[lo..(lo + CHUNK_ROWS).min(weights.len())];
    let mut last = None;
    for (i, &x) in w.iter().enumerate() {
        acc += x;
        if x > 0.0 {
            last = Some(i);
            if acc > target {
                return lo + i;
            }
        }
    }
    lo + last.unwrap_or(0)
}

/// For each candidate, `Σ_i min(closest[i], ‖x_i − cand‖²)`, summed per chunk and the
/// chunks in order.
fn candidate_potentials<'a>(
    data: &'a [f64],
    d: usize,
    closest: &[f64],
    candidates: &[usize],
    row: impl Fn(usize) -> &'a [f64],
) -> Vec<f64> {
    fn run<const T: usize>(data: &[f64], d: usize, closest: &[f64], ct: &[f64]) -> Vec<[f64; T]> {
        data.par_chunks(CHUNK_ROWS * d)
            .zip(closest.par_chunks(CHUNK_ROWS))
            .map(|(ch, cl)| {
                if has_avx2() {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the CPU has AVX2 and FMA.
                    return unsafe { chunk_avx2::<T>(ch, cl, d, ct) };
                }
                chunk::<T>(ch, cl, d, ct)
            })
            .collect()
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn chunk_avx2<const T: usize>(ch: &[f64], cl: &[f64], d: usize, ct: &[f64]) -> [f64; T] {
        chunk::<T>(ch, cl, d, ct)
    }
    // Plain multiplies and adds (never contracted to FMA), so every target gives the
    // same sums as `sq_dist`.
    #[inline(always)]
    fn chunk<const T: usize>(ch: &[f64], cl: &[f64], d: usize, ct: &[f64]) -> [f64; T] {
        let mut pots = [0.0; T];
        for (x, &old) in ch.chunks_exact(d).zip(cl) {
            let mut acc = [0.0; T];
            for (f, &xv) in x.iter().enumerate() {
                let c: &[f64; T] = ct[f * T..(f + 1) * T].try_into().expect("T wide");
                for t in 0..T {
                    let df = xv - c[t];
                    acc[t] += df * df;
                }
            }
            for t in 0..T {
                pots[t] += old.min(acc[t]);
            }
        }
        pots
    }
    fn go<'a, const T: usize>(
        data: &'a [f64],
        d: usize,
        closest: &[f64],
        candidates: &[usize],
        row: impl Fn(usize) -> &'a [f64],
    ) -> Vec<f64> {
        // Candidates transposed, `d × T`, padded by repeating the last one.
        let mut ct = vec![0.0; d * T];
        for t in 0..T {
            let c = row(candidates[t.min(candidates.len() - 1)]);
            for f in 0..d {
                ct[f * T + t] = c[f];
            }
        }
        let parts = run::<T>(data, d, closest, &ct);
        let mut pots = vec![0.0; candidates.len()];
        for part in &parts {
            for (p, v) in pots.iter_mut().zip(part) {
                *p += v;
            }
        }
        pots
    }
    match candidates.len() {
        0..=4 => go::<4>(data, d, closest, candidates, row),
        5..=8 => go::<8>(data, d, closest, candidates, row),
        _ => candidates
            .chunks(8)
            .flat_map(|cs| go::<8>(data, d, closest, cs, &row))
            .collect(),
    }
}

/// Partial sums of one chunk of rows.
struct Partials {
    sums: Vec<f64>,
    counts: Vec<u64>,
    changed: Vec<u64>,
    kd: usize,
    k: usize,
}

impl Partials {
    fn new(chunks: usize, k: usize, d: usize) -> Self {
        Partials {
            sums: vec![0.0; chunks * k * d],
            counts: vec![0; chunks * k],
            changed: vec![0; chunks],
            kd: k * d,
            k,
        }
    }

    /// The chunks' sums, counts and label changes, combined in chunk order.
    fn reduce(&self) -> (Vec<f64>, Vec<u64>, u64) {
        let mut sums = vec![0.0; self.kd];
        let mut counts = vec![0u64; self.k];
        for part in self.sums.chunks_exact(self.kd) {
            for (s, v) in sums.iter_mut().zip(part) {
                *s += v;
            }
        }
        for part in self.counts.chunks_exact(self.k) {
            for (c, v) in counts.iter_mut().zip(part) {
                *c += v;
            }
        }
        (sums, counts, self.changed.iter().sum())
    }
}

/// One assignment step over all rows: labels against `centres`, per-chunk sums.
trait Step {
    fn assign(&mut self, data: &[f64], centres: &[f64], labels: &mut [u32], parts: &mut Partials);
}

struct LloydStep {
    d: usize,
    k: usize,
}

impl Step for LloydStep {
    fn assign(&mut self, data: &[f64], centres: &[f64], labels: &mut [u32], parts: &mut Partials) {
        let (d, k) = (self.d, self.k);
        let cs = Centres::new(centres, k, d);
        data.par_chunks(CHUNK_ROWS * d)
            .zip(labels.par_chunks_mut(CHUNK_ROWS))
            .zip(parts.sums.par_chunks_mut(k * d))
            .zip(parts.counts.par_chunks_mut(k))
            .zip(parts.changed.par_iter_mut())
            .for_each(|((((rows, labs), sums), counts), changed)| {
                let mut new = [0u32; CHUNK_ROWS];
                let new = &mut new[..labs.len()];
                cs.nearest(rows, new);
                *changed = labs.iter().zip(new.iter()).filter(|(a, b)| a != b).count() as u64;
                labs.copy_from_slice(new);
                sums.fill(0.0);
                counts.fill(0);
                accumulate_any(cs.avx2, rows, d, labs, sums, counts);
            });
    }
}

/// Ask the CPU to bring `rows` into cache: the bounded iterations read only some rows
/// of a chunk before summing all of them, which defeats the hardware prefetcher.
#[inline]
fn prefetch(rows: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    for line in rows.chunks(8) {
        // SAFETY: prefetching is a hint; the address is inside `rows`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(
                line.as_ptr().cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = rows;
}

/// Outward rounding of a bound after an addition or subtraction: an upper bound is
/// multiplied by `UP` and a lower bound by `DOWN`.
const UP: f64 = 1.0 + 4.0 * f64::EPSILON;
const DOWN: f64 = 1.0 - 4.0 * f64::EPSILON;

/// A row is only left out when its bounds separate the squared distances by more than
/// `TAU_REL · (d + 8) · (‖x‖ + max‖c‖)²`: far above the worst-case rounding error of the
/// kernel's scores (about `(4d + 4)·ε·(‖x‖ + ‖c‖)²`), so a skipped row's label is exactly
/// the one the kernel would have chosen.
const TAU_REL: f64 = 1e-12;

/// `lower` (a lower bound on the distance to every other centre) beats `upper` (an upper
/// bound on the distance to the assigned centre) by more than the rounding margin `tau`.
#[inline(always)]
fn separated(lower: f64, upper: f64, tau: f64) -> bool {
    lower > upper && (lower - upper) * (lower + upper) > tau
}

/// Per-iteration geometry of the centres shared by Hamerly and Elkan.
struct Geometry {
    /// Outward rounding of a directly computed distance (see `new`).
    up: f64,
    /// Distance each centre moved since the previous assignment.
    moved: Vec<f64>,
    /// Index of the centre that moved most, the largest and second-largest moves.
    top: (usize, f64, f64),
    /// Distances between centres, `k × k` (for Elkan) and half the nearest other centre.
    cc: Vec<f64>,
    half_nearest: Vec<f64>,
    /// Largest centre norm.
    cmax: f64,
}

impl Geometry {
    fn new(centres: &[f64], prev: Option<&[f64]>, k: usize, d: usize, with_cc: bool) -> Self {
        let c = |j: usize| &centres[j * d..(j + 1) * d];
        // A distance computed directly (d squared differences summed, a square root) is
        // within (d + 2)·ε of the truth, relatively: round it outwards by more.
        let up = 1.0 + (d as f64 + 4.0) * f64::EPSILON;
        let down = 1.0 - (d as f64 + 4.0) * f64::EPSILON;
        let moved: Vec<f64> = (0..k)
            .map(|j| match prev {
                Some(p) => sq_dist(c(j), &p[j * d..(j + 1) * d]).sqrt() * up,
                None => 0.0,
            })
            .collect();
        let mut top = (usize::MAX, 0.0, 0.0);
        for (j, &m) in moved.iter().enumerate() {
            if top.0 == usize::MAX || m > top.1 {
                top.2 = top.1;
                top = (j, m, top.2);
            } else if m > top.2 {
                top.2 = m;
            }
        }
        let mut cc = if with_cc {
            vec![0.0; k * k]
        } else {
            Vec::new()
        };
        let mut half_nearest = vec![f64::INFINITY; k];
        for a in 0..k {
            for b in a + 1..k {
                let v = sq_dist(c(a), c(b)).sqrt() * down;
                if with_cc {
                    cc[a * k + b] = v;
                    cc[b * k + a] = v;
                }
                half_nearest[a] = half_nearest[a].min(v * 0.5);
                half_nearest[b] = half_nearest[b].min(v * 0.5);
            }
        }
        let cmax = (0..k).map(|j| norm2(c(j)).sqrt()).fold(0.0, f64::max) * up;
        Geometry {
            up,
            moved,
            top,
            cc,
            half_nearest,
            cmax,
        }
    }

    /// How far the nearest centre other than `a` may have come closer.
    #[inline]
    fn moved_other(&self, a: usize) -> f64 {
        if a == self.top.0 {
            self.top.2
        } else {
            self.top.1
        }
    }

    #[inline]
    fn tau(&self, xnorm: f64, d: usize) -> f64 {
        let s = xnorm + self.cmax;
        TAU_REL * (d as f64 + 8.0) * s * s
    }
}

/// Hamerly (2010): `upper` bounds the distance to the assigned centre, `lower` the
/// distance to every other centre.
struct HamerlyStep<'a> {
    d: usize,
    k: usize,
    norms: &'a [f64],
    upper: Vec<f64>,
    lower: Vec<f64>,
    prev: Option<Vec<f64>>,
}

impl Step for HamerlyStep<'_> {
    fn assign(&mut self, data: &[f64], centres: &[f64], labels: &mut [u32], parts: &mut Partials) {
        let (d, k) = (self.d, self.k);
        let cs = Centres::new(centres, k, d);
        let g = Geometry::new(centres, self.prev.as_deref(), k, d, false);
        // Per centre: how far it moved, how far the nearest other may have come, and
        // twice half the distance to its nearest other centre.
        let moved_other: Vec<f64> = (0..k).map(|a| g.moved_other(a)).collect();
        let first = self.prev.is_none();
        data.par_chunks(CHUNK_ROWS * d)
            .zip(labels.par_chunks_mut(CHUNK_ROWS))
            .zip(self.upper.par_chunks_mut(CHUNK_ROWS))
            .zip(self.lower.par_chunks_mut(CHUNK_ROWS))
            .zip(self.norms.par_chunks(CHUNK_ROWS))
            .zip(parts.sums.par_chunks_mut(k * d))
            .zip(parts.counts.par_chunks_mut(k))
            .zip(parts.changed.par_iter_mut())
            .for_each(
                |(((((((rows, labs), upper), lower), norms), sums), counts), changed)| {
                    let len = labs.len();
                    let mut todo = [0u32; CHUNK_ROWS];
                    let mut m = 0;
                    if first {
                        for (i, t) in todo.iter_mut().take(len).enumerate() {
                            *t = i as u32;
                        }
                        m = len;
                    } else {
                        // Pass 1, branch-free: move the bounds with the centres and
                        // keep the rows they no longer settle.
                        prefetch(rows);
                        for i in 0..len {
                            let a = labs[i] as usize;
                            let tau = g.tau(norms[i], d);
                            let u = (upper[i] + g.moved[a]) * UP;
                            let l = (lower[i] - moved_other[a]) * DOWN;
                            upper[i] = u;
                            lower[i] = l;
                            let lb = l.max((2.0 * g.half_nearest[a] - u) * DOWN);
                            todo[m] = i as u32;
                            m += usize::from(!separated(lb, u, tau));
                        }
                        // Pass 2: tighten the upper bound of those rows and keep the
                        // ones still unsettled.
                        let mut m2 = 0;
                        for q in 0..m {
                            let i = todo[q] as usize;
                            let a = labs[i] as usize;
                            let x = &rows[i * d..(i + 1) * d];
                            let u = sq_dist(x, &centres[a * d..(a + 1) * d]).sqrt() * g.up;
                            upper[i] = u;
                            let lb = lower[i].max((2.0 * g.half_nearest[a] - u) * DOWN);
                            todo[m2] = i as u32;
                            m2 += usize::from(!separated(lb, u, g.tau(norms[i], d)));
                        }
                        m = m2;
                    }
                    // Pass 3: the kernel on the rows left.
                    let mut ch = 0;
                    if m > 0 {
                        let todo = &todo[..m];
                        let mut buf = Vec::with_capacity(m * d);
                        for &i in todo {
                            let i = i as usize;
                            buf.extend_from_slice(&rows[i * d..(i + 1) * d]);
                        }
                        let (mut lab, mut best, mut second) =
                            (vec![0u32; m], vec![0.0; m], vec![0.0; m]);
                        cs.nearest2(&buf, &mut lab, &mut best, &mut second);
                        for (q, &i) in todo.iter().enumerate() {
                            let i = i as usize;
                            let j = lab[q] as usize;
                            ch += u64::from(labs[i] != lab[q]);
                            labs[i] = lab[q];
                            let x = &buf[q * d..(q + 1) * d];
                            upper[i] = sq_dist(x, &centres[j * d..(j + 1) * d]).sqrt() * g.up;
                            let xn = norms[i];
                            let tau = g.tau(xn, d);
                            lower[i] = (xn * xn + second[q] - tau).max(0.0).sqrt() * DOWN;
                        }
                    }
                    *changed = ch;
                    sums.fill(0.0);
                    counts.fill(0);
                    accumulate_any(cs.avx2, rows, d, labs, sums, counts);
                },
            );
        self.prev = Some(centres.to_vec());
    }
}

/// Elkan (2003): `upper` bounds the distance to the assigned centre and `lower[i·k + j]`
/// the distance to centre `j`.
struct ElkanStep<'a> {
    d: usize,
    k: usize,
    norms: &'a [f64],
    upper: Vec<f64>,
    lower: Vec<f64>,
    prev: Option<Vec<f64>>,
}

impl Step for ElkanStep<'_> {
    fn assign(&mut self, data: &[f64], centres: &[f64], labels: &mut [u32], parts: &mut Partials) {
        let (d, k) = (self.d, self.k);
        let cs = Centres::new(centres, k, d);
        let kp = cs.kp;
        let g = Geometry::new(centres, self.prev.as_deref(), k, d, true);
        let first = self.prev.is_none();
        data.par_chunks(CHUNK_ROWS * d)
            .zip(labels.par_chunks_mut(CHUNK_ROWS))
            .zip(self.upper.par_chunks_mut(CHUNK_ROWS))
            .zip(self.lower.par_chunks_mut(CHUNK_ROWS * k))
            .zip(self.norms.par_chunks(CHUNK_ROWS))
            .zip(parts.sums.par_chunks_mut(k * d))
            .zip(parts.counts.par_chunks_mut(k))
            .zip(parts.changed.par_iter_mut())
            .for_each(
                |(((((((rows, labs), upper), lower), norms), sums), counts), changed)| {
                    let len = labs.len();
                    let mut todo = [0u32; CHUNK_ROWS];
                    let mut m = 0;
                    if first {
                        for (i, t) in todo.iter_mut().take(len).enumerate() {
                            *t = i as u32;
                        }
                        m = len;
                    } else {
                        // Pass 1, branch-free: move every bound with the centres and
                        // keep the rows the nearest-centre test does not settle.
                        prefetch(rows);
                        for i in 0..len {
                            let a = labs[i] as usize;
                            for (l, &p) in lower[i * k..(i + 1) * k].iter_mut().zip(&g.moved) {
                                *l = (*l - p) * DOWN;
                            }
                            let u = (upper[i] + g.moved[a]) * UP;
                            upper[i] = u;
                            let lb = (2.0 * g.half_nearest[a] - u) * DOWN;
                            todo[m] = i as u32;
                            m += usize::from(!separated(lb, u, g.tau(norms[i], d)));
                        }
                        // Pass 2: tighten the upper bound and test every other centre
                        // against its own bound.
                        let mut m2 = 0;
                        for q in 0..m {
                            let i = todo[q] as usize;
                            let a = labs[i] as usize;
                            let x = &rows[i * d..(i + 1) * d];
                            let u = sq_dist(x, &centres[a * d..(a + 1) * d]).sqrt() * g.up;
                            upper[i] = u;
                            let tau = g.tau(norms[i], d);
                            let cca = &g.cc[a * k..(a + 1) * k];
                            let li = &lower[i * k..(i + 1) * k];
                            let mut open = false;
                            for j in 0..k {
                                let lb = li[j].max((cca[j] - u) * DOWN);
                                open |= j != a && !separated(lb, u, tau);
                            }
                            todo[m2] = i as u32;
                            m2 += usize::from(open);
                        }
                        m = m2;
                    }
                    // Pass 3: every score of the rows left; all their bounds reset.
                    let mut ch = 0;
                    if m > 0 {
                        let todo = &todo[..m];
                        let mut buf = Vec::with_capacity(m * d);
                        for &i in todo {
                            let i = i as usize;
                            buf.extend_from_slice(&rows[i * d..(i + 1) * d]);
                        }
                        let mut sc = vec![0.0; m * kp];
                        cs.scores(&buf, &mut sc);
                        for (q, &i) in todo.iter().enumerate() {
                            let i = i as usize;
                            let s = &sc[q * kp..q * kp + k];
                            let (j, _) = argmin(s);
                            ch += u64::from(labs[i] != j as u32);
                            labs[i] = j as u32;
                            let x = &buf[q * d..(q + 1) * d];
                            upper[i] = sq_dist(x, &centres[j * d..(j + 1) * d]).sqrt() * g.up;
                            let xn = norms[i];
                            let tau = g.tau(xn, d);
                            for (l, &v) in lower[i * k..(i + 1) * k].iter_mut().zip(s) {
                                *l = (xn * xn + v - tau).max(0.0).sqrt() * DOWN;
                            }
                        }
                    }
                    *changed = ch;
                    sums.fill(0.0);
                    counts.fill(0);
                    accumulate_any(cs.avx2, rows, d, labs, sums, counts);
                },
            );
        self.prev = Some(centres.to_vec());
    }
}

#[allow(clippy::too_many_arguments)]
fn iterate(
    data: &[f64],
    norms: &[f64],
    n: usize,
    d: usize,
    k: usize,
    centres: Vec<f64>,
    max_iter: usize,
    tol: f64,
    algorithm: Algorithm,
) -> KMeansModel {
    let mut model = match algorithm {
        Algorithm::Lloyd | Algorithm::Auto => run(
            data,
            n,
            d,
            k,
            centres,
            max_iter,
            tol,
            &mut LloydStep { d, k },
        ),
        Algorithm::Hamerly => run(
            data,
            n,
            d,
            k,
            centres,
            max_iter,
            tol,
            &mut HamerlyStep {
                d,
                k,
                norms,
                upper: vec![0.0; n],
                lower: vec![0.0; n],
                prev: None,
            },
        ),
        Algorithm::Elkan => run(
            data,
            n,
            d,
            k,
            centres,
            max_iter,
            tol,
            &mut ElkanStep {
                d,
                k,
                norms,
                upper: vec![0.0; n],
                lower: vec![0.0; n * k],
                prev: None,
            },
        ),
    };
    model.algorithm = algorithm;
    model
}

#[allow(clippy::too_many_arguments)]
fn run(
    data: &[f64],
    n: usize,
    d: usize,
    k: usize,
    mut centres: Vec<f64>,
    max_iter: usize,
    tol: f64,
    step: &mut dyn Step,
) -> KMeansModel {
    let mut labels = vec![u32::MAX; n];
    let mut parts = Partials::new(n.div_ceil(CHUNK_ROWS), k, d);
    let mut converged = false;
    let mut n_iter = 0;
    let mut old = vec![0.0; k * d];
    for it in 0..max_iter {
        n_iter = it + 1;
        step.assign(data, &centres, &mut labels, &mut parts);
        let (mut sums, mut counts, changed) = parts.reduce();
        if changed == 0 {
            converged = true;
            break;
        }
        old.copy_from_slice(&centres);
        relocate_empty(data, d, k, &old, &labels, &mut sums, &mut counts);
        for j in 0..k {
            if counts[j] > 0 {
                for f in 0..d {
                    centres[j * d + f] = sums[j * d + f] / counts[j] as f64;
                }
            }
        }
        let shift: f64 = old
            .iter()
            .zip(&centres)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        if shift <= tol {
            converged = true;
            break;
        }
    }
    // Labels against the final centres, and the exact inertia.
    let cs = Centres::new(&centres, k, d);
    let parts: Vec<f64> = data
        .par_chunks(CHUNK_ROWS * d)
        .zip(labels.par_chunks_mut(CHUNK_ROWS))
        .map(|(rows, labs)| {
            cs.nearest(rows, labs);
            let mut inertia = 0.0;
            for (x, &j) in rows.chunks_exact(d).zip(labs.iter()) {
                let j = j as usize;
                inertia += sq_dist(x, &centres[j * d..(j + 1) * d]);
            }
            inertia
        })
        .collect();
    KMeansModel {
        centroids: centres,
        k,
        d,
        labels,
        inertia: parts.iter().sum(),
        n_iter,
        converged,
        inertia_per_init: Vec::new(),
        n_iter_per_init: Vec::new(),
        converged_per_init: Vec::new(),
        algorithm: Algorithm::Lloyd,
    }
}

/// Give each empty cluster the row farthest from its current centre (taking it out of
/// its old cluster's sums), as scikit-learn does.
fn relocate_empty(
    data: &[f64],
    d: usize,
    k: usize,
    centres: &[f64],
    labels: &[u32],
    sums: &mut [f64],
    counts: &mut [u64],
) {
    let empty: Vec<usize> = (0..k).filter(|&j| counts[j] == 0).collect();
    if empty.is_empty() {
        return;
    }
    let mut far: Vec<(f64, usize)> = data
        .chunks_exact(d)
        .zip(labels)
        .enumerate()
        .map(|(i, (x, &l))| {
            let l = l as usize;
            (sq_dist(x, &centres[l * d..(l + 1) * d]), i)
        })
        .collect();
    // Farthest first; the lower index first among equals.
    far.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (&j, &(_, i)) in empty.iter().zip(&far) {
        let x = &data[i * d..(i + 1) * d];
        let old = labels[i] as usize;
        for f in 0..d {
            sums[old * d + f] -= x[f];
            sums[j * d + f] = x[f];
        }
        counts[old] -= 1;
        counts[j] = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> (Vec<f64>, usize) {
        // Three tight, well separated groups in 2-D.
        let mut v = Vec::new();
        for (cx, cy) in [(0.0, 0.0), (10.0, 10.0), (-10.0, 10.0)] {
            for i in 0..50 {
                let a = i as f64 * 0.1;
                v.push(cx + a.sin() * 0.5);
                v.push(cy + a.cos() * 0.5);
            }
        }
        (v, 2)
    }

    const ALL: [Algorithm; 3] = [Algorithm::Lloyd, Algorithm::Hamerly, Algorithm::Elkan];

    #[test]
    fn recovers_separated_groups() {
        let (x, d) = blobs();
        for a in ALL {
            let m = fit(&x, d, &KMeansParams::new(3).n_init(5).seed(7).algorithm(a)).unwrap();
            for g in 0..3 {
                let l = m.labels[g * 50];
                assert!(m.labels[g * 50..(g + 1) * 50].iter().all(|&x| x == l));
            }
            assert!(m.converged);
            assert_eq!(m.inertia_per_init.len(), 5);
            assert_eq!(m.n_iter_per_init.len(), 5);
            assert_eq!(m.converged_per_init, vec![true; 5]);
            assert_eq!(m.algorithm, a);
        }
    }

    #[test]
    fn degenerate_inputs_are_errors_not_panics() {
        assert_eq!(fit(&[], 2, &KMeansParams::new(2)), Err(KMeansError::Empty));
        assert_eq!(
            fit(&[1.0, 2.0], 2, &KMeansParams::new(2)),
            Err(KMeansError::KTooLarge { k: 2, n: 1 })
        );
        assert!(matches!(
            fit(&[1.0, f64::NAN], 2, &KMeansParams::new(1)),
            Err(KMeansError::NotFinite {
                row: 0,
                feature: 1,
                ..
            })
        ));
        assert_eq!(
            fit(&[1.0, 2.0, 3.0], 2, &KMeansParams::new(1)),
            Err(KMeansError::Shape { len: 3, d: 2 })
        );
        assert_eq!(
            fit(&[1.0], 1, &KMeansParams::new(0)),
            Err(KMeansError::ZeroK)
        );
        for a in ALL {
            // All rows identical: one real centre, the others repeat it; inertia 0.
            let same = vec![3.0; 20];
            let m = fit(&same, 2, &KMeansParams::new(3).algorithm(a)).unwrap();
            assert_eq!(m.inertia, 0.0);
            assert_eq!(m.labels.len(), 10);
            // A single row with k = 1.
            let m = fit(&[1.0, 2.0], 2, &KMeansParams::new(1).algorithm(a)).unwrap();
            assert_eq!(m.centroids, vec![1.0, 2.0]);
        }
    }

    fn uniform(n: usize, d: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * d).map(|_| rng.random::<f64>()).collect()
    }

    /// Gaussian-ish overlapping blobs, so many rows sit near a boundary.
    fn overlapping(n: usize, d: usize, groups: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<f64> = (0..groups * d).map(|_| rng.random::<f64>() * 6.0).collect();
        let mut v = Vec::with_capacity(n * d);
        for _ in 0..n {
            let g = rng.random_range(0..groups);
            for f in 0..d {
                let z: f64 = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0;
                v.push(centres[g * d + f] + 1.5 * z);
            }
        }
        v
    }

    #[test]
    fn same_seed_same_result_for_any_thread_count() {
        let x = uniform(20_000, 3, 1);
        for a in ALL {
            let p = KMeansParams::new(6).n_init(2).seed(3).algorithm(a);
            let one = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap()
                .install(|| fit(&x, 3, &p).unwrap());
            let two = rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .unwrap()
                .install(|| fit(&x, 3, &p).unwrap());
            assert_eq!(one, two, "{a:?}");
        }
    }

    fn same_fit(x: &[f64], d: usize, p: &KMeansParams) {
        let lloyd = fit(x, d, &p.clone().algorithm(Algorithm::Lloyd)).unwrap();
        for a in [Algorithm::Hamerly, Algorithm::Elkan] {
            let m = fit(x, d, &p.clone().algorithm(a)).unwrap();
            let what = format!("{a:?}, d={d}, k={}", p.k);
            assert_eq!(m.labels, lloyd.labels, "{what}");
            assert_eq!(m.centroids, lloyd.centroids, "{what}");
            assert_eq!(m.inertia, lloyd.inertia, "{what}");
            assert_eq!(m.n_iter, lloyd.n_iter, "{what}");
            assert_eq!(m.inertia_per_init, lloyd.inertia_per_init, "{what}");
            assert_eq!(m.n_iter_per_init, lloyd.n_iter_per_init, "{what}");
        }
    }

    #[test]
    fn hamerly_and_elkan_give_lloyds_result() {
        for (d, k) in [
            (1, 3),
            (2, 1),
            (2, 5),
            (3, 16),
            (5, 7),
            (8, 16),
            (8, 23),
            (17, 9),
            (40, 33),
        ] {
            let x = overlapping(3_000, d, 6, d as u64 * 100 + k as u64);
            same_fit(
                &x,
                d,
                &KMeansParams::new(k).n_init(2).seed(5).tol(0.0).max_iter(60),
            );
            same_fit(&x, d, &KMeansParams::new(k).init(Init::Random).seed(9));
        }
    }

    #[test]
    fn ties_and_duplicates_agree_across_algorithms() {
        // Integer grid with many repeated rows and rows exactly between centres.
        let mut x = Vec::new();
        for i in 0..3000 {
            x.push((i % 7) as f64);
            x.push(((i / 7) % 5) as f64);
        }
        // Duplicate starting centres: an empty cluster is re-seeded.
        let init = vec![0.0, 0.0, 0.0, 0.0, 6.0, 4.0, 3.0, 2.0, 1.0, 3.0];
        same_fit(
            &x,
            2,
            &KMeansParams::new(5).init(Init::Given(init)).tol(0.0),
        );
        same_fit(&x, 2, &KMeansParams::new(9).n_init(3).seed(1));
        // Large offsets: bounds must stay safe when norms dwarf the distances.
        let far: Vec<f64> = overlapping(4000, 3, 5, 3).iter().map(|v| v + 1e6).collect();
        same_fit(
            &far,
            3,
            &KMeansParams::new(6).n_init(2).seed(2).tol(0.0).max_iter(40),
        );
    }

    #[test]
    fn kernel_matches_brute_force() {
        for (d, k) in [(1, 1), (3, 4), (8, 16), (8, 13), (5, 35), (2, 64)] {
            let x = uniform(513, d, k as u64);
            let c = uniform(k, d, 99 + d as u64);
            let cs = Centres::new(&c, k, d);
            let n = x.len() / d;
            let (mut lab, mut best, mut second) = (vec![0u32; n], vec![0.0; n], vec![0.0; n]);
            cs.nearest2(&x, &mut lab, &mut best, &mut second);
            let mut lab1 = vec![0u32; n];
            cs.nearest(&x, &mut lab1);
            assert_eq!(lab, lab1);
            let mut sc = vec![0.0; n * cs.kp];
            cs.scores(&x, &mut sc);
            for i in 0..n {
                let s = &sc[i * cs.kp..i * cs.kp + k];
                let (j, b) = argmin(s);
                assert_eq!(lab[i] as usize, j);
                assert_eq!(best[i], b);
                let sec = (0..k)
                    .filter(|&m| m != j)
                    .map(|m| s[m])
                    .fold(f64::INFINITY, f64::min);
                assert_eq!(second[i], sec);
                // The true nearest centre, up to rounding.
                let xi = &x[i * d..(i + 1) * d];
                let exact = (0..k)
                    .map(|m| sq_dist(xi, &c[m * d..(m + 1) * d]))
                    .fold(f64::INFINITY, f64::min);
                assert!(sq_dist(xi, &c[j * d..(j + 1) * d]) <= exact + 1e-12);
            }
        }
    }

    #[test]
    fn predict_gives_the_fitted_labels() {
        let x = overlapping(5000, 4, 4, 8);
        let m = fit(&x, 4, &KMeansParams::new(4).seed(1)).unwrap();
        let p = m.predict(&x);
        assert_eq!(p.iter().map(|q| q.0).collect::<Vec<_>>(), m.labels);
        let inertia: f64 = p.iter().map(|q| q.1).sum();
        assert!((inertia - m.inertia).abs() <= 1e-9 * m.inertia);
    }
}
