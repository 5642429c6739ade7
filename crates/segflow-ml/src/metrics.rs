//! Cluster-quality metrics, with scikit-learn's definitions and edge cases.
//!
//! Internal criteria (need the data): [`silhouette_score`] (exact, `O(n²·d)`, parallel
//! and deterministic), [`silhouette_score_sampled`] (on a seeded uniform sample of rows,
//! as `silhouette_score(X, labels, sample_size=, random_state=)`), [`calinski_harabasz`],
//! [`davies_bouldin`] and [`dispersion`] (within-cluster sum of squares — k-means'
//! inertia — and between-cluster sum of squares). External criteria (compare two
//! labelings): [`adjusted_rand_index`] and [`normalized_mutual_info`] (arithmetic-mean
//! normalisation, scikit-learn's default).
//!
//! Data is a row-major `n × d` `f64` slice; labels are any `u32` cluster ids (they need
//! not be contiguous: the distinct values present are the clusters, as scikit-learn's
//! `LabelEncoder` makes them). The values agree with scikit-learn to about 1e-12
//! relative (`tests/metrics_sklearn.rs`, fixtures from
//! `tests/fixtures/make_metrics_fixture.py`); the remaining difference is that
//! scikit-learn computes Euclidean distances as `‖x‖² − 2x·y + ‖y‖²` and this module
//! as `‖x − y‖²`.
//!
//! Every result is the same for any thread count: work is split into fixed chunks of
//! rows whose partial sums are combined in chunk order, and each row's silhouette is
//! computed by one thread in a fixed order.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::HashMap;
use std::hash::Hash;

/// Rows per chunk of parallel work (fixed, so sums do not depend on the thread count).
const CHUNK_ROWS: usize = 4096;

/// Why a metric cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("the data has {len} values, which is not a whole number of rows of {d} features")]
    Shape { len: usize, d: usize },
    #[error("the data has no features (0 columns)")]
    NoFeatures,
    #[error("there are {labels} labels for {rows} rows")]
    Length { labels: usize, rows: usize },
    #[error("row {row}, feature {feature} is {value}; cluster metrics need finite numbers")]
    NotFinite {
        row: usize,
        feature: usize,
        value: f64,
    },
    #[error(
        "{clusters} distinct clusters in {rows} rows: the metric needs 2 <= clusters <= rows - 1"
    )]
    Clusters { clusters: usize, rows: usize },
    #[error("the sample size must be at least 1")]
    ZeroSample,
    #[error("sample index {index} is out of range for {rows} rows")]
    Index { index: usize, rows: usize },
}

/// Labels re-coded to `0..k` in increasing order of the original ids.
struct Encoded {
    codes: Vec<u32>,
    k: usize,
}

fn encode(labels: &[u32]) -> Encoded {
    let max = labels.iter().copied().max().unwrap_or(0) as usize;
    if max <= 4 * labels.len() + 1024 {
        let mut seen = vec![u32::MAX; max + 1];
        for &l in labels {
            seen[l as usize] = 0;
        }
        let mut k = 0u32;
        for s in seen.iter_mut() {
            if *s == 0 {
                *s = k;
                k += 1;
            }
        }
        Encoded {
            codes: labels.iter().map(|&l| seen[l as usize]).collect(),
            k: k as usize,
        }
    } else {
        let mut uniq = labels.to_vec();
        uniq.sort_unstable();
        uniq.dedup();
        Encoded {
            codes: labels
                .iter()
                .map(|l| uniq.binary_search(l).expect("present") as u32)
                .collect(),
            k: uniq.len(),
        }
    }
}

/// Validate data and labels; returns the number of rows.
fn check(data: &[f64], d: usize, labels: &[u32]) -> Result<usize, MetricsError> {
    if d == 0 {
        return Err(MetricsError::NoFeatures);
    }
    if !data.len().is_multiple_of(d) {
        return Err(MetricsError::Shape { len: data.len(), d });
    }
    let n = data.len() / d;
    if labels.len() != n {
        return Err(MetricsError::Length {
            labels: labels.len(),
            rows: n,
        });
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(MetricsError::NotFinite {
            row: i / d,
            feature: i % d,
            value: data[i],
        });
    }
    Ok(n)
}

/// scikit-learn's `check_number_of_labels`: 2 <= clusters <= rows - 1.
fn check_clusters(k: usize, n: usize) -> Result<(), MetricsError> {
    if k < 2 || k + 1 > n {
        return Err(MetricsError::Clusters {
            clusters: k,
            rows: n,
        });
    }
    Ok(())
}

/// Per-cluster sizes, centroids and spreads, from which the centroid-based metrics
/// follow. Clusters are the distinct labels present, in increasing order of label.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSummary {
    /// Number of rows.
    pub n: usize,
    /// Number of features.
    pub d: usize,
    /// The original label of each cluster, increasing.
    pub labels: Vec<u32>,
    /// Rows per cluster.
    pub counts: Vec<u64>,
    /// Row-major `k × d` cluster means.
    pub centroids: Vec<f64>,
    /// Mean of all rows (`d`).
    pub mean: Vec<f64>,
    /// Sum of squared distances of each cluster's rows to its centroid.
    pub within_ss: Vec<f64>,
    /// Mean Euclidean distance of each cluster's rows to its centroid.
    pub mean_distance: Vec<f64>,
    /// Sum of squared distances of all rows to the overall mean.
    pub total_ss: f64,
}

/// Within- and between-cluster dispersion. `within` is k-means' inertia; for the
/// cluster means, `within + between = total` (up to rounding).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dispersion {
    /// Σ over clusters of Σ ‖x − centroid‖².
    pub within: f64,
    /// Σ over clusters of size × ‖centroid − overall mean‖².
    pub between: f64,
    /// Σ ‖x − overall mean‖².
    pub total: f64,
}

/// Chunked, in-order parallel fold over rows: `f(first_row, rows_chunk, labels_chunk,
/// acc)` per chunk, partial results combined in chunk order by `merge`.
fn fold_rows<A, F, M>(data: &[f64], d: usize, codes: &[u32], zero: A, f: F, merge: M) -> A
where
    A: Clone + Send + Sync,
    F: Fn(&[f64], &[u32], &mut A) + Sync,
    M: Fn(&mut A, &A),
{
    let parts: Vec<A> = data
        .par_chunks(CHUNK_ROWS * d)
        .zip(codes.par_chunks(CHUNK_ROWS))
        .map(|(x, l)| {
            let mut a = zero.clone();
            f(x, l, &mut a);
            a
        })
        .collect();
    let mut acc = zero;
    for p in &parts {
        merge(&mut acc, p);
    }
    acc
}

fn add_into(a: &mut [f64], b: &[f64]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Sizes, centroids and within-cluster spreads of a labeling.
pub fn summarize(data: &[f64], d: usize, labels: &[u32]) -> Result<ClusterSummary, MetricsError> {
    let n = check(data, d, labels)?;
    let enc = encode(labels);
    Ok(summarize_encoded(data, d, n, &enc, labels))
}

fn summarize_encoded(
    data: &[f64],
    d: usize,
    n: usize,
    enc: &Encoded,
    labels: &[u32],
) -> ClusterSummary {
    let k = enc.k;
    let mut original = vec![0u32; k];
    for (&c, &l) in enc.codes.iter().zip(labels) {
        original[c as usize] = l;
    }
    // Pass 1: counts and sums per cluster, and the overall sum.
    let (sums, counts, total): (Vec<f64>, Vec<f64>, Vec<f64>) = {
        let zero = (vec![0.0; k * d], vec![0.0; k], vec![0.0; d]);
        fold_rows(
            data,
            d,
            &enc.codes,
            zero,
            |x, l, acc| {
                for (row, &c) in x.chunks_exact(d).zip(l) {
                    let c = c as usize;
                    acc.1[c] += 1.0;
                    for (f, &v) in row.iter().enumerate() {
                        acc.0[c * d + f] += v;
                        acc.2[f] += v;
                    }
                }
            },
            |a, b| {
                add_into(&mut a.0, &b.0);
                add_into(&mut a.1, &b.1);
                add_into(&mut a.2, &b.2);
            },
        )
    };
    let counts: Vec<u64> = counts.iter().map(|&c| c as u64).collect();
    let mut centroids = sums;
    for c in 0..k {
        for f in 0..d {
            centroids[c * d + f] /= counts[c] as f64;
        }
    }
    let mean: Vec<f64> = total.iter().map(|s| s / n as f64).collect();
    // Pass 2: squared and plain distances to the centroid, and to the overall mean.
    let (within_ss, dist_sum, total_ss) = fold_rows(
        data,
        d,
        &enc.codes,
        (vec![0.0; k], vec![0.0; k], vec![0.0]),
        |x, l, acc| {
            for (row, &c) in x.chunks_exact(d).zip(l) {
                let c = c as usize;
                let sq = sq_dist(row, &centroids[c * d..(c + 1) * d]);
                acc.0[c] += sq;
                acc.1[c] += sq.sqrt();
                acc.2[0] += sq_dist(row, &mean);
            }
        },
        |a, b| {
            add_into(&mut a.0, &b.0);
            add_into(&mut a.1, &b.1);
            add_into(&mut a.2, &b.2);
        },
    );
    let mean_distance = dist_sum
        .iter()
        .zip(&counts)
        .map(|(s, &c)| s / c as f64)
        .collect();
    ClusterSummary {
        n,
        d,
        labels: original,
        counts,
        centroids,
        mean,
        within_ss,
        mean_distance,
        total_ss: total_ss[0],
    }
}

#[inline]
fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

impl ClusterSummary {
    /// Number of clusters.
    pub fn k(&self) -> usize {
        self.counts.len()
    }

    /// Within, between and total dispersion.
    pub fn dispersion(&self) -> Dispersion {
        let d = self.d;
        let within: f64 = self.within_ss.iter().sum();
        let between: f64 = (0..self.k())
            .map(|c| {
                self.counts[c] as f64 * sq_dist(&self.centroids[c * d..(c + 1) * d], &self.mean)
            })
            .sum();
        Dispersion {
            within,
            between,
            total: self.total_ss,
        }
    }

    /// Calinski-Harabasz index (variance ratio criterion): `between / (k − 1)` over
    /// `within / (n − k)`; 1.0 when the within dispersion is 0, as scikit-learn.
    pub fn calinski_harabasz(&self) -> Result<f64, MetricsError> {
        let (k, n) = (self.k(), self.n);
        check_clusters(k, n)?;
        let disp = self.dispersion();
        Ok(if disp.within == 0.0 {
            1.0
        } else {
            disp.between * (n - k) as f64 / (disp.within * (k as f64 - 1.0))
        })
    }

    /// Davies-Bouldin index: the mean over clusters of the largest
    /// `(s_i + s_j) / ‖c_i − c_j‖`, `s` the mean distance to the centroid. Lower is
    /// better; 0.0 when every spread or every centroid distance is (close to) 0, and
    /// coincident centroids are ignored, as scikit-learn.
    pub fn davies_bouldin(&self) -> Result<f64, MetricsError> {
        let (k, d) = (self.k(), self.d);
        check_clusters(k, self.n)?;
        // numpy isclose(a, 0): |a| <= 1e-8.
        let near0 = |v: f64| v.abs() <= 1e-8;
        let mut cd = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                cd[i * k + j] = sq_dist(
                    &self.centroids[i * d..(i + 1) * d],
                    &self.centroids[j * d..(j + 1) * d],
                )
                .sqrt();
            }
        }
        if self.mean_distance.iter().all(|&v| near0(v)) || cd.iter().all(|&v| near0(v)) {
            return Ok(0.0);
        }
        let mut total = 0.0;
        for i in 0..k {
            let mut best = f64::NEG_INFINITY;
            for j in 0..k {
                let dist = if cd[i * k + j] == 0.0 {
                    f64::INFINITY
                } else {
                    cd[i * k + j]
                };
                let r = (self.mean_distance[i] + self.mean_distance[j]) / dist;
                best = best.max(r);
            }
            total += best;
        }
        Ok(total / k as f64)
    }
}

/// Within, between and total sums of squares of a labeling.
pub fn dispersion(data: &[f64], d: usize, labels: &[u32]) -> Result<Dispersion, MetricsError> {
    Ok(summarize(data, d, labels)?.dispersion())
}

/// k-means' inertia of a labeling: the within-cluster sum of squares about the cluster
/// means.
pub fn inertia(data: &[f64], d: usize, labels: &[u32]) -> Result<f64, MetricsError> {
    Ok(dispersion(data, d, labels)?.within)
}

/// Calinski-Harabasz index, as `sklearn.metrics.calinski_harabasz_score`.
pub fn calinski_harabasz(data: &[f64], d: usize, labels: &[u32]) -> Result<f64, MetricsError> {
    summarize(data, d, labels)?.calinski_harabasz()
}

/// Davies-Bouldin index, as `sklearn.metrics.davies_bouldin_score`.
pub fn davies_bouldin(data: &[f64], d: usize, labels: &[u32]) -> Result<f64, MetricsError> {
    summarize(data, d, labels)?.davies_bouldin()
}

/// The silhouette coefficient of every row, as `sklearn.metrics.silhouette_samples`
/// (Euclidean): `(b − a) / max(a, b)` with `a` the mean distance to the other rows of
/// its cluster and `b` the smallest mean distance to the rows of another cluster; 0 for
/// a row alone in its cluster. `O(n²·d)` time, `O(n·d)` memory; rows are shared out
/// over the rayon pool, each row computed by one thread in a fixed order.
pub fn silhouette_samples(
    data: &[f64],
    d: usize,
    labels: &[u32],
) -> Result<Vec<f64>, MetricsError> {
    let n = check(data, d, labels)?;
    let enc = encode(labels);
    check_clusters(enc.k, n)?;
    Ok(silhouette_encoded(data, d, n, &enc))
}

/// Mean silhouette coefficient over all rows (exact), as
/// `sklearn.metrics.silhouette_score`.
pub fn silhouette_score(data: &[f64], d: usize, labels: &[u32]) -> Result<f64, MetricsError> {
    let s = silhouette_samples(data, d, labels)?;
    Ok(mean(&s))
}

/// Mean silhouette coefficient of the rows `indices` (a subset; each row compared with
/// the other rows of the subset only, as scikit-learn's `sample_size`). The indices may
/// come in any order and should be distinct.
pub fn silhouette_score_subset(
    data: &[f64],
    d: usize,
    labels: &[u32],
    indices: &[usize],
) -> Result<f64, MetricsError> {
    let n = check(data, d, labels)?;
    let mut sub = Vec::with_capacity(indices.len() * d);
    let mut sub_labels = Vec::with_capacity(indices.len());
    for &i in indices {
        if i >= n {
            return Err(MetricsError::Index { index: i, rows: n });
        }
        sub.extend_from_slice(&data[i * d..(i + 1) * d]);
        sub_labels.push(labels[i]);
    }
    silhouette_score(&sub, d, &sub_labels)
}

/// `sample_size` distinct row indices drawn uniformly with a seeded ChaCha8 generator,
/// in increasing order (all rows when `sample_size >= n`).
pub fn sample_indices(n: usize, sample_size: usize, seed: u64) -> Vec<usize> {
    if sample_size >= n {
        return (0..n).collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx = rand::seq::index::sample(&mut rng, n, sample_size).into_vec();
    idx.sort_unstable();
    idx
}

/// Mean silhouette coefficient on a sample of `sample_size` rows drawn uniformly
/// without replacement with `seed` — scikit-learn's
/// `silhouette_score(X, labels, sample_size=, random_state=)` semantics: the sample's
/// rows are compared with each other only, so the cost is `O(sample_size²·d)` whatever
/// `n`. When `sample_size >= n` this is the exact score. (The sample itself differs
/// from scikit-learn's, which draws with numpy's generator: the same indices give the
/// same value, see [`silhouette_score_subset`].)
pub fn silhouette_score_sampled(
    data: &[f64],
    d: usize,
    labels: &[u32],
    sample_size: usize,
    seed: u64,
) -> Result<f64, MetricsError> {
    if sample_size == 0 {
        return Err(MetricsError::ZeroSample);
    }
    let n = check(data, d, labels)?;
    if sample_size >= n {
        return silhouette_score(data, d, labels);
    }
    silhouette_score_subset(data, d, labels, &sample_indices(n, sample_size, seed))
}

fn mean(v: &[f64]) -> f64 {
    // Chunked sums in order: deterministic, and more accurate than one long sum.
    let parts: Vec<f64> = v.chunks(CHUNK_ROWS).map(|c| c.iter().sum()).collect();
    parts.iter().sum::<f64>() / v.len() as f64
}

/// The silhouette kernel. Rows are grouped by cluster (stably, so each cluster keeps
/// the original row order) and stored column-major, so the distance sums to one
/// cluster run over contiguous memory and vectorise.
fn silhouette_encoded(data: &[f64], d: usize, n: usize, enc: &Encoded) -> Vec<f64> {
    let k = enc.k;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| enc.codes[i]);
    let mut starts = vec![0usize; k + 1];
    for &c in &enc.codes {
        starts[c as usize + 1] += 1;
    }
    for c in 0..k {
        starts[c + 1] += starts[c];
    }
    let mut cols = vec![0.0; n * d];
    for (p, &i) in order.iter().enumerate() {
        for f in 0..d {
            cols[f * n + p] = data[i * d + f];
        }
    }
    let kernel = Kernel {
        cols: &cols,
        n,
        starts: &starts,
    };
    let mut out = vec![0.0; n];
    out.par_chunks_mut(256).enumerate().for_each(|(ci, chunk)| {
        let mut sums = vec![0.0; k];
        let mut x = vec![0.0; d];
        for (o, s) in chunk.iter_mut().enumerate() {
            let i = ci * 256 + o;
            x.copy_from_slice(&data[i * d..(i + 1) * d]);
            kernel.cluster_sums(&x, &mut sums);
            let own = enc.codes[i] as usize;
            let size = (starts[own + 1] - starts[own]) as f64;
            if size <= 1.0 {
                *s = 0.0;
                continue;
            }
            let a = sums[own] / (size - 1.0);
            let mut b = f64::INFINITY;
            for c in 0..k {
                if c != own {
                    b = b.min(sums[c] / (starts[c + 1] - starts[c]) as f64);
                }
            }
            let m = a.max(b);
            *s = if m > 0.0 { (b - a) / m } else { 0.0 };
        }
    });
    out
}

struct Kernel<'a> {
    /// Column-major `d × n`, rows grouped by cluster.
    cols: &'a [f64],
    n: usize,
    /// Cluster `c` occupies columns `starts[c]..starts[c + 1]`.
    starts: &'a [usize],
}

impl Kernel<'_> {
    /// Sum of the Euclidean distances from `x` to the rows of each cluster.
    fn cluster_sums(&self, x: &[f64], sums: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU supports the features the function is compiled for.
                return unsafe { self.cluster_sums_avx2(x, sums) };
            }
        }
        self.cluster_sums_generic(x, sums)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn cluster_sums_avx2(&self, x: &[f64], sums: &mut [f64]) {
        self.cluster_sums_generic(x, sums)
    }

    #[inline(always)]
    fn cluster_sums_generic(&self, x: &[f64], sums: &mut [f64]) {
        const W: usize = 8;
        for (c, s) in sums.iter_mut().enumerate() {
            let (lo, hi) = (self.starts[c], self.starts[c + 1]);
            let mut acc = [0.0f64; W];
            let mut j = lo;
            while j + W <= hi {
                let mut sq = [0.0f64; W];
                for (f, &xf) in x.iter().enumerate() {
                    let col: &[f64; W] = self.cols[f * self.n + j..f * self.n + j + W]
                        .try_into()
                        .expect("W wide");
                    for l in 0..W {
                        let t = col[l] - xf;
                        sq[l] += t * t;
                    }
                }
                for l in 0..W {
                    acc[l] += sq[l].sqrt();
                }
                j += W;
            }
            let mut tail = 0.0;
            while j < hi {
                let mut sq = 0.0;
                for (f, &xf) in x.iter().enumerate() {
                    let t = self.cols[f * self.n + j] - xf;
                    sq += t * t;
                }
                tail += sq.sqrt();
                j += 1;
            }
            *s = acc.iter().sum::<f64>() + tail;
        }
    }
}

/// Contingency table of two labelings of any hashable values: class and cluster sizes
/// and the non-zero cells (classes numbered in order of first appearance).
struct Contingency {
    rows: Vec<u64>,
    cols: Vec<u64>,
    cells: Vec<((usize, usize), u64)>,
}

fn contingency<A: Hash + Eq, B: Hash + Eq>(a: &[A], b: &[B]) -> Contingency {
    let mut ia: HashMap<&A, usize> = HashMap::new();
    let mut ib: HashMap<&B, usize> = HashMap::new();
    let mut cells: HashMap<(usize, usize), u64> = HashMap::new();
    for (x, y) in a.iter().zip(b) {
        let na = ia.len();
        let i = *ia.entry(x).or_insert(na);
        let nb = ib.len();
        let j = *ib.entry(y).or_insert(nb);
        *cells.entry((i, j)).or_insert(0) += 1;
    }
    let mut rows = vec![0u64; ia.len()];
    let mut cols = vec![0u64; ib.len()];
    let mut cells: Vec<((usize, usize), u64)> = cells.into_iter().collect();
    cells.sort_unstable();
    for &((i, j), v) in &cells {
        rows[i] += v;
        cols[j] += v;
    }
    Contingency { rows, cols, cells }
}

fn check_lengths(a: usize, b: usize) -> Result<(), MetricsError> {
    if a != b {
        return Err(MetricsError::Length { labels: b, rows: a });
    }
    Ok(())
}

/// Adjusted Rand index of two labelings, as `sklearn.metrics.adjusted_rand_score`: the
/// Rand index corrected for chance, 1.0 for identical partitions (whatever the label
/// names), about 0 for independent ones, and 1.0 for empty input.
pub fn adjusted_rand_index<A: Hash + Eq, B: Hash + Eq>(
    truth: &[A],
    pred: &[B],
) -> Result<f64, MetricsError> {
    check_lengths(truth.len(), pred.len())?;
    let c = contingency(truth, pred);
    // The pair confusion matrix, in exact integers.
    let n = truth.len() as i128;
    let sq =
        |v: &mut dyn Iterator<Item = u64>| -> i128 { v.map(|x| (x as i128) * (x as i128)).sum() };
    let sum_squares = sq(&mut c.cells.iter().map(|x| x.1));
    let tp = sum_squares - n;
    let fp = sq(&mut c.cols.iter().copied()) - sum_squares;
    let fn_ = sq(&mut c.rows.iter().copied()) - sum_squares;
    let tn = n * n - fp - fn_ - sum_squares;
    if fn_ == 0 && fp == 0 {
        return Ok(1.0);
    }
    let num = 2.0 * (tp * tn - fn_ * fp) as f64;
    let den = ((tp + fn_) * (fn_ + tn) + (tp + fp) * (fp + tn)) as f64;
    Ok(num / den)
}

/// Normalized mutual information with the arithmetic mean of the entropies as the
/// normaliser, as `sklearn.metrics.normalized_mutual_info_score` (its default): 1.0
/// for identical partitions and when both labelings are a single cluster, 0.0 when the
/// mutual information is 0. Natural logarithms.
pub fn normalized_mutual_info<A: Hash + Eq, B: Hash + Eq>(
    truth: &[A],
    pred: &[B],
) -> Result<f64, MetricsError> {
    check_lengths(truth.len(), pred.len())?;
    let c = contingency(truth, pred);
    if c.rows.len() == c.cols.len() && c.rows.len() <= 1 {
        return Ok(1.0);
    }
    let mi = c.mutual_info();
    if mi == 0.0 {
        return Ok(0.0);
    }
    let h = (entropy(&c.rows) + entropy(&c.cols)) / 2.0;
    Ok(mi / h)
}

/// Mutual information (nats) of two labelings, as `sklearn.metrics.mutual_info_score`.
pub fn mutual_info<A: Hash + Eq, B: Hash + Eq>(
    truth: &[A],
    pred: &[B],
) -> Result<f64, MetricsError> {
    check_lengths(truth.len(), pred.len())?;
    Ok(contingency(truth, pred).mutual_info())
}

impl Contingency {
    fn mutual_info(&self) -> f64 {
        let (pi, pj) = (&self.rows, &self.cols);
        if pi.len() <= 1 || pj.len() <= 1 {
            return 0.0;
        }
        let total: u64 = pi.iter().sum();
        let log_total = (total as f64).ln();
        let mut mi = 0.0;
        for &((i, j), v) in &self.cells {
            let p = v as f64 / total as f64;
            let outer = (pi[i] as f64) * (pj[j] as f64);
            let log_outer = -outer.ln() + log_total + log_total;
            let term = p * ((v as f64).ln() - log_total) + p * log_outer;
            // scikit-learn zeroes terms below machine epsilon.
            if term.abs() >= f64::EPSILON {
                mi += term;
            }
        }
        mi.max(0.0)
    }
}

/// Entropy (nats) of class counts; 0 for a single class.
fn entropy(counts: &[u64]) -> f64 {
    let nz: Vec<f64> = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| c as f64)
        .collect();
    if nz.len() <= 1 {
        return 0.0;
    }
    let total: f64 = nz.iter().sum();
    let lt = total.ln();
    -nz.iter().map(|&p| (p / total) * (p.ln() - lt)).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ari_and_nmi_edge_cases() {
        assert_eq!(
            adjusted_rand_index(&[0, 0, 1, 1], &[1, 1, 0, 0]).unwrap(),
            1.0
        );
        assert_eq!(
            adjusted_rand_index(&[0, 0, 1, 1], &[0, 1, 0, 1]).unwrap(),
            -0.5
        );
        assert_eq!(
            adjusted_rand_index(&[0, 0, 0, 0], &[0, 1, 2, 3]).unwrap(),
            0.0
        );
        assert_eq!(adjusted_rand_index::<u32, u32>(&[], &[]).unwrap(), 1.0);
        assert_eq!(normalized_mutual_info(&["a", "a"], &[3, 3]).unwrap(), 1.0);
        assert_eq!(
            normalized_mutual_info(&[0, 0, 1, 1], &[0, 1, 0, 1]).unwrap(),
            0.0
        );
        assert!(
            (normalized_mutual_info(&[0, 0, 1, 1], &["x", "x", "y", "y"]).unwrap() - 1.0).abs()
                < 1e-15
        );
        assert!(adjusted_rand_index(&[0, 1], &[0]).is_err());
    }

    #[test]
    fn internal_metrics_need_two_to_n_minus_one_clusters() {
        let x = [0.0, 1.0, 2.0, 3.0];
        assert!(matches!(
            silhouette_score(&x, 1, &[0, 0, 0, 0]),
            Err(MetricsError::Clusters { clusters: 1, .. })
        ));
        assert!(calinski_harabasz(&x, 1, &[0, 1, 2, 3]).is_err());
        // Gaps in the label ids are fine.
        let s = silhouette_score(&x, 1, &[5, 5, 9, 9]).unwrap();
        let t = silhouette_score(&x, 1, &[0, 0, 1, 1]).unwrap();
        assert_eq!(s, t);
        // A singleton cluster scores 0.
        let v = silhouette_samples(&x, 1, &[0, 0, 0, 1]).unwrap();
        assert_eq!(v[3], 0.0);
        assert!(matches!(
            silhouette_score(&[1.0, f64::NAN], 1, &[0, 1]),
            Err(MetricsError::NotFinite { row: 1, .. })
        ));
    }

    #[test]
    fn dispersion_adds_up() {
        let x = [0.0, 0.0, 1.0, 0.0, 10.0, 10.0, 11.0, 10.0, 5.0, 5.0];
        let l = [0, 0, 1, 1, 1];
        let disp = dispersion(&x, 2, &l).unwrap();
        let mut total = 0.0;
        let m = [27.0 / 5.0, 25.0 / 5.0];
        for r in x.chunks(2) {
            total += (r[0] - m[0]).powi(2) + (r[1] - m[1]).powi(2);
        }
        assert!((disp.total - total).abs() < 1e-9);
        assert!((disp.within + disp.between - total).abs() < 1e-9);
    }

    #[test]
    fn silhouette_same_for_any_thread_count() {
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 3000;
        let x: Vec<f64> = (0..n * 3).map(|_| rng.random::<f64>()).collect();
        let l: Vec<u32> = (0..n).map(|_| rng.random_range(0..5)).collect();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| {
                (
                    silhouette_score(&x, 3, &l).unwrap(),
                    summarize(&x, 3, &l).unwrap(),
                )
            });
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap()
            .install(|| {
                (
                    silhouette_score(&x, 3, &l).unwrap(),
                    summarize(&x, 3, &l).unwrap(),
                )
            });
        assert_eq!(one, three);
        let sampled = silhouette_score_sampled(&x, 3, &l, 500, 9).unwrap();
        assert_eq!(
            sampled,
            silhouette_score_sampled(&x, 3, &l, 500, 9).unwrap()
        );
        assert_eq!(silhouette_score_sampled(&x, 3, &l, n, 9).unwrap(), one.0);
    }
}
