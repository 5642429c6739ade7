//! k-means clustering on a dense row-major `f64` matrix.
//!
//! Lloyd's algorithm with a blocked distance kernel (the `‖c‖² − 2x·c` expansion with the
//! centres stored transposed, so the inner loop runs over contiguous centres and
//! vectorises), greedy k-means++ or random initialisation, and `n_init` restarts keeping
//! the lowest inertia.
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
const CHUNK_ROWS: usize = 2048;

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
}

impl KMeansParams {
    /// Defaults: k-means++, one initialisation, 300 iterations, `tol = 1e-4`, seed 0.
    pub fn new(k: usize) -> Self {
        KMeansParams {
            k,
            init: Init::KMeansPlusPlus,
            n_init: 1,
            max_iter: 300,
            tol: 1e-4,
            seed: 0,
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

    /// Check the settings against data of `d` features.
    pub fn check(&self, d: usize) -> Result<(), KMeansError> {
        if self.k == 0 {
            return Err(KMeansError::ZeroK);
        }
        if self.max_iter == 0 {
            return Err(KMeansError::ZeroIter);
        }
        if self.n_init == 0 {
            return Err(KMeansError::ZeroInit);
        }
        if !self.tol.is_finite() || self.tol < 0.0 {
            return Err(KMeansError::BadTol(self.tol));
        }
        if let Init::Given(c) = &self.init {
            if c.len() != self.k * d {
                return Err(KMeansError::BadInit {
                    got: c.len(),
                    want: self.k * d,
                });
            }
        }
        Ok(())
    }
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
    /// Lloyd iterations run by the best initialisation.
    pub n_iter: usize,
    /// Whether the best initialisation converged before `max_iter`.
    pub converged: bool,
    /// Inertia of every initialisation, in order.
    pub inertia_per_init: Vec<f64>,
}

impl KMeansModel {
    /// The nearest centre of each row of `data` and its squared distance.
    pub fn predict(&self, data: &[f64]) -> Vec<(u32, f64)> {
        let ct = Transposed::new(&self.centroids, self.k, self.d);
        data.par_chunks(CHUNK_ROWS * self.d)
            .flat_map_iter(|chunk| {
                chunk.chunks_exact(self.d).map(|x| {
                    let (j, _) = ct.nearest(x);
                    (
                        j as u32,
                        sq_dist(x, &self.centroids[j * self.d..(j + 1) * self.d]),
                    )
                })
            })
            .collect()
    }
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Centres transposed (`d × kp`, `kp` = k rounded up to a kernel width) with their
/// squared norms, for the assignment kernel. Padding centres have an infinite norm, so
/// they never win.
struct Transposed {
    ct: Vec<f64>,
    norms: Vec<f64>,
    k: usize,
    kp: usize,
    d: usize,
}

impl Transposed {
    fn new(centroids: &[f64], k: usize, d: usize) -> Self {
        let kp = [8, 16, 32, 64].into_iter().find(|&w| w >= k).unwrap_or(k);
        let mut ct = vec![0.0; kp * d];
        let mut norms = vec![f64::INFINITY; kp];
        for j in 0..k {
            let c = &centroids[j * d..(j + 1) * d];
            norms[j] = c.iter().map(|v| v * v).sum();
            for (f, v) in c.iter().enumerate() {
                ct[f * kp + j] = *v;
            }
        }
        Transposed {
            ct,
            norms,
            k,
            kp,
            d,
        }
    }

    /// Index of the nearest centre to `x` (ties to the lowest index).
    #[inline]
    fn nearest(&self, x: &[f64]) -> (usize, f64) {
        let mut acc = self.norms.clone();
        for (f, &xv) in x.iter().enumerate() {
            let m = -2.0 * xv;
            for (a, c) in acc.iter_mut().zip(&self.ct[f * self.kp..(f + 1) * self.kp]) {
                *a += m * c;
            }
        }
        argmin(&acc[..self.k])
    }

    /// Assign every row of `chunk`, updating `labels` and accumulating per-cluster sums
    /// and counts. Returns how many labels changed.
    fn assign(
        &self,
        chunk: &[f64],
        labels: &mut [u32],
        sums: &mut [f64],
        counts: &mut [u64],
    ) -> u64 {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU supports the features the function is compiled for.
                return unsafe { self.assign_avx2(chunk, labels, sums, counts) };
            }
        }
        self.assign_dispatch::<false>(chunk, labels, sums, counts)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn assign_avx2(
        &self,
        chunk: &[f64],
        labels: &mut [u32],
        sums: &mut [f64],
        counts: &mut [u64],
    ) -> u64 {
        self.assign_dispatch::<true>(chunk, labels, sums, counts)
    }

    #[inline(always)]
    fn assign_dispatch<const FMA: bool>(
        &self,
        chunk: &[f64],
        labels: &mut [u32],
        sums: &mut [f64],
        counts: &mut [u64],
    ) -> u64 {
        match self.kp {
            8 => self.assign_fixed::<8, FMA>(chunk, labels, sums, counts),
            16 => self.assign_fixed::<16, FMA>(chunk, labels, sums, counts),
            32 => self.assign_fixed::<32, FMA>(chunk, labels, sums, counts),
            64 => self.assign_fixed::<64, FMA>(chunk, labels, sums, counts),
            _ => {
                let mut changed = 0;
                for (x, l) in chunk.chunks_exact(self.d).zip(labels.iter_mut()) {
                    let (j, _) = self.nearest(x);
                    changed += self.record(x, j, l, sums, counts);
                }
                changed
            }
        }
    }

    /// The kernel for `KP` (padded) centres: the accumulator stays in registers and the
    /// loop over centres is unrolled and vectorised. `FMA` is set only where the CPU has
    /// fused multiply-add (elsewhere `mul_add` would be a slow library call).
    #[inline(always)]
    fn assign_fixed<const KP: usize, const FMA: bool>(
        &self,
        chunk: &[f64],
        labels: &mut [u32],
        sums: &mut [f64],
        counts: &mut [u64],
    ) -> u64 {
        #[inline(always)]
        fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
            if FMA {
                a.mul_add(b, c)
            } else {
                a * b + c
            }
        }
        let d = self.d;
        let norms: [f64; KP] = self.norms[..KP].try_into().expect("padded to KP");
        let mut changed = 0;
        for (x, l) in chunk.chunks_exact(d).zip(labels.iter_mut()) {
            let mut acc = norms;
            for (f, &xv) in x.iter().enumerate() {
                let m = -2.0 * xv;
                let row: &[f64; KP] = self.ct[f * KP..(f + 1) * KP].try_into().expect("KP wide");
                for i in 0..KP {
                    acc[i] = madd::<FMA>(m, row[i], acc[i]);
                }
            }
            changed += self.record(x, argmin(&acc[..self.k]).0, l, sums, counts);
        }
        changed
    }

    #[inline(always)]
    fn record(
        &self,
        x: &[f64],
        j: usize,
        l: &mut u32,
        sums: &mut [f64],
        counts: &mut [u64],
    ) -> u64 {
        let changed = u64::from(*l != j as u32);
        *l = j as u32;
        counts[j] += 1;
        for (s, v) in sums[j * self.d..(j + 1) * self.d].iter_mut().zip(x) {
            *s += v;
        }
        changed
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

/// Per-chunk results of one assignment pass.
struct Partial {
    sums: Vec<f64>,
    counts: Vec<u64>,
    changed: u64,
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
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let n_init = if matches!(params.init, Init::Given(_)) {
        1
    } else {
        params.n_init
    };
    let mut best: Option<KMeansModel> = None;
    let mut inertias = Vec::with_capacity(n_init);
    for _ in 0..n_init {
        let centres = match &params.init {
            Init::Given(c) => c.clone(),
            Init::KMeansPlusPlus => kmeans_plus_plus(data, n, d, k, &mut rng),
            Init::Random => random_init(data, n, d, k, &mut rng),
        };
        let model = lloyd(data, n, d, k, centres, params.max_iter, tol);
        inertias.push(model.inertia);
        // Strictly lower wins, so the earliest of equal runs is kept.
        if best.as_ref().is_none_or(|b| model.inertia < b.inertia) {
            best = Some(model);
        }
    }
    let mut best = best.expect("n_init >= 1");
    best.inertia_per_init = inertias;
    Ok(best)
}

fn mean_variance(data: &[f64], n: usize, d: usize) -> f64 {
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
fn kmeans_plus_plus(data: &[f64], n: usize, d: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let trials = 2 + (k as f64).ln() as usize;
    let mut centres = Vec::with_capacity(k * d);
    let first = rng.random_range(0..n);
    centres.extend_from_slice(&data[first * d..(first + 1) * d]);
    let row = |i: usize| &data[i * d..(i + 1) * d];
    let mut closest: Vec<f64> = data
        .par_chunks(CHUNK_ROWS * d)
        .flat_map_iter(|ch| ch.chunks_exact(d).map(|x| sq_dist(x, row(first))))
        .collect();
    let mut potential = chunked_sum(&closest);
    for _ in 1..k {
        if potential <= 0.0 {
            // Every row sits on a centre: the remaining centres repeat rows.
            let i = rng.random_range(0..n);
            centres.extend_from_slice(row(i));
            continue;
        }
        let candidates = sample_weighted_many(
            &closest,
            potential,
            (0..trials).map(|_| rng.random::<f64>()).collect(),
        );
        // One pass over the rows scores every candidate: the potential if it were added.
        let per_chunk: Vec<Vec<f64>> = data
            .par_chunks(CHUNK_ROWS * d)
            .zip(closest.par_chunks(CHUNK_ROWS))
            .map(|(ch, cl)| {
                let mut pots = vec![0.0; candidates.len()];
                for (x, &old) in ch.chunks_exact(d).zip(cl) {
                    for (p, &c) in pots.iter_mut().zip(&candidates) {
                        *p += old.min(sq_dist(x, row(c)));
                    }
                }
                pots
            })
            .collect();
        let mut pots = vec![0.0; candidates.len()];
        for part in &per_chunk {
            for (p, v) in pots.iter_mut().zip(part) {
                *p += v;
            }
        }
        // The lowest potential wins; the earliest candidate among equals.
        let (bi, _) =
            pots.iter().enumerate().fold(
                (0, f64::INFINITY),
                |b, (i, &p)| if p < b.1 { (i, p) } else { b },
            );
        let c = candidates[bi];
        let cand = row(c);
        closest
            .par_chunks_mut(CHUNK_ROWS)
            .zip(data.par_chunks(CHUNK_ROWS * d))
            .for_each(|(cl, ch)| {
                for (old, x) in cl.iter_mut().zip(ch.chunks_exact(d)) {
                    *old = old.min(sq_dist(x, cand));
                }
            });
        centres.extend_from_slice(cand);
        potential = chunked_sum(&closest);
    }
    centres
}

/// For each `u` in `us`, the index `i` where the cumulative weight first exceeds
/// `u * total` — one scan for all of them.
fn sample_weighted_many(weights: &[f64], total: f64, us: Vec<f64>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..us.len()).collect();
    order.sort_by(|&a, &b| us[a].total_cmp(&us[b]));
    let fallback = weights.iter().rposition(|w| *w > 0.0).unwrap_or(0);
    let mut out = vec![fallback; us.len()];
    let mut acc = 0.0;
    let mut next = 0;
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        while next < order.len() && acc > us[order[next]] * total {
            out[order[next]] = i;
            next += 1;
        }
        if next == order.len() {
            break;
        }
    }
    out
}

/// Sum in fixed chunks combined in order: the same result for any thread count.
fn chunked_sum(v: &[f64]) -> f64 {
    let parts: Vec<f64> = v.par_chunks(CHUNK_ROWS).map(|c| c.iter().sum()).collect();
    parts.iter().sum()
}

fn lloyd(
    data: &[f64],
    n: usize,
    d: usize,
    k: usize,
    mut centres: Vec<f64>,
    max_iter: usize,
    tol: f64,
) -> KMeansModel {
    let mut labels = vec![u32::MAX; n];
    let mut converged = false;
    let mut n_iter = 0;
    for it in 0..max_iter {
        n_iter = it + 1;
        let ct = Transposed::new(&centres, k, d);
        let parts: Vec<Partial> = data
            .par_chunks(CHUNK_ROWS * d)
            .zip(labels.par_chunks_mut(CHUNK_ROWS))
            .map(|(chunk, labs)| {
                let mut p = Partial {
                    sums: vec![0.0; k * d],
                    counts: vec![0; k],
                    changed: 0,
                };
                p.changed = ct.assign(chunk, labs, &mut p.sums, &mut p.counts);
                p
            })
            .collect();
        let mut sums = vec![0.0; k * d];
        let mut counts = vec![0u64; k];
        let mut changed = 0;
        for p in &parts {
            for (s, v) in sums.iter_mut().zip(&p.sums) {
                *s += v;
            }
            for (c, v) in counts.iter_mut().zip(&p.counts) {
                *c += v;
            }
            changed += p.changed;
        }
        if changed == 0 {
            converged = true;
            break;
        }
        let old = centres.clone();
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
    let ct = Transposed::new(&centres, k, d);
    let parts: Vec<f64> = data
        .par_chunks(CHUNK_ROWS * d)
        .zip(labels.par_chunks_mut(CHUNK_ROWS))
        .map(|(chunk, labs)| {
            let mut inertia = 0.0;
            for (x, l) in chunk.chunks_exact(d).zip(labs.iter_mut()) {
                let (j, _) = ct.nearest(x);
                *l = j as u32;
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

    #[test]
    fn recovers_separated_groups() {
        let (x, d) = blobs();
        let m = fit(&x, d, &KMeansParams::new(3).n_init(5).seed(7)).unwrap();
        for g in 0..3 {
            let l = m.labels[g * 50];
            assert!(m.labels[g * 50..(g + 1) * 50].iter().all(|&x| x == l));
        }
        assert!(m.converged);
        assert_eq!(m.inertia_per_init.len(), 5);
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
        // All rows identical: one real centre, the others repeat it; inertia 0.
        let same = vec![3.0; 20];
        let m = fit(&same, 2, &KMeansParams::new(3)).unwrap();
        assert_eq!(m.inertia, 0.0);
        assert_eq!(m.labels.len(), 10);
        // A single row with k = 1.
        let m = fit(&[1.0, 2.0], 2, &KMeansParams::new(1)).unwrap();
        assert_eq!(m.centroids, vec![1.0, 2.0]);
    }

    #[test]
    fn same_seed_same_result_for_any_thread_count() {
        let n = 20_000;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x: Vec<f64> = (0..n * 3).map(|_| rng.random::<f64>()).collect();
        let p = KMeansParams::new(6).n_init(2).seed(3);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| fit(&x, 3, &p).unwrap());
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
            .install(|| fit(&x, 3, &p).unwrap());
        assert_eq!(one, two);
    }
}
