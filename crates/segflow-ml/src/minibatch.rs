//! Mini-batch k-means (Sculley 2010, "Web-scale k-means clustering"), as scikit-learn's
//! `MiniBatchKMeans`.
//!
//! Each step draws `batch_size` rows uniformly with replacement, assigns them to the
//! nearest centre, and moves every centre that received rows to the weighted mean of its
//! previous position (weighted by all the rows it has received so far) and the new rows:
//! a per-centre learning rate of `1 / count`. The steps are those of scikit-learn:
//!
//! - starting centres: k-means++ (or random rows) on `init_size` rows drawn at random
//!   (default `3 × batch_size`), best of `n_init` by inertia on another `init_size`
//!   rows;
//! - up to `max_epochs × n / batch_size` steps;
//! - reassignment of small clusters: every `10 k` rows processed (or when a centre has
//!   received nothing), centres whose count is below `reassignment_ratio` × the largest
//!   move to rows of the current batch drawn at random, and their count is reset to the
//!   smallest other count;
//! - early stopping when the exponentially weighted average of the per-row batch
//!   inertia (`α = 2·batch_size / (n + 1)`, the first step ignored) has not improved for
//!   `max_no_improvement` steps, or (with `tol > 0`) when the squared centre shift of a
//!   step is at most `tol` × the mean feature variance;
//! - finally, every row is labelled against the final centres and the inertia is
//!   computed exactly.
//!
//! The steps run in sequence from one seeded generator, and the final labelling sums its
//! inertia in fixed chunks combined in order, so the result is the same for a seed at any
//! thread count.

use crate::kmeans::{
    check_data, kmeans_plus_plus, mean_variance, sq_dist, Centres, Init, KMeansError, CHUNK_ROWS,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Mini-batch k-means settings, validated by [`MiniBatchParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct MiniBatchParams {
    pub k: usize,
    pub batch_size: usize,
    /// Most passes over the rows (in expectation: steps × batch_size / n).
    pub max_epochs: usize,
    /// Stop after this many steps without improvement of the smoothed inertia (`None`:
    /// never).
    pub max_no_improvement: Option<usize>,
    /// Stop when a step moves the centres by at most `tol` × the mean feature variance
    /// (squared); 0 turns the test off.
    pub tol: f64,
    pub reassignment_ratio: f64,
    pub init: Init,
    pub n_init: usize,
    /// Rows drawn for each initialisation (default `3 × batch_size`, at least `3k`).
    pub init_size: Option<usize>,
    pub seed: u64,
}

impl MiniBatchParams {
    /// scikit-learn's defaults: batch 1024, 100 epochs, stop after 10 steps without
    /// improvement, `tol = 0`, reassignment ratio 0.01, k-means++ best of 3, seed 0.
    pub fn new(k: usize) -> Self {
        MiniBatchParams {
            k,
            batch_size: 1024,
            max_epochs: 100,
            max_no_improvement: Some(10),
            tol: 0.0,
            reassignment_ratio: 0.01,
            init: Init::KMeansPlusPlus,
            n_init: 3,
            init_size: None,
            seed: 0,
        }
    }
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    pub fn max_epochs(mut self, n: usize) -> Self {
        self.max_epochs = n;
        self
    }
    pub fn max_no_improvement(mut self, n: Option<usize>) -> Self {
        self.max_no_improvement = n;
        self
    }
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
    pub fn reassignment_ratio(mut self, r: f64) -> Self {
        self.reassignment_ratio = r;
        self
    }
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }
    pub fn n_init(mut self, n: usize) -> Self {
        self.n_init = n;
        self
    }
    pub fn init_size(mut self, n: Option<usize>) -> Self {
        self.init_size = n;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Check the settings against data of `d` features.
    pub fn check(&self, d: usize) -> Result<(), KMeansError> {
        // Checked first, as before: a zero batch size is reported ahead of the rest.
        if self.k != 0 && self.batch_size == 0 {
            return Err(KMeansError::ZeroBatch);
        }
        crate::kmeans::check_common(
            self.k,
            self.max_epochs,
            self.n_init,
            self.tol,
            &self.init,
            d,
        )?;
        if !self.reassignment_ratio.is_finite() || self.reassignment_ratio < 0.0 {
            return Err(KMeansError::BadRatio(self.reassignment_ratio));
        }
        Ok(())
    }
}

/// A fitted mini-batch k-means model.
#[derive(Debug, Clone, PartialEq)]
pub struct MiniBatchModel {
    /// Row-major `k × d`.
    pub centroids: Vec<f64>,
    pub k: usize,
    pub d: usize,
    /// Cluster of each fitted row against the final centres.
    pub labels: Vec<u32>,
    /// Sum of squared distances of the fitted rows to their centre.
    pub inertia: f64,
    /// Mini-batch steps run.
    pub n_steps: usize,
    /// Passes over the rows those steps amount to, rounded up (scikit-learn's `n_iter_`).
    pub n_epochs: usize,
    /// Whether a stopping rule ended the run before the step budget.
    pub converged: bool,
    /// The smoothed (exponentially weighted) per-row batch inertia at the end.
    pub ewa_inertia: f64,
    /// Rows each centre has received (its learning rate is the inverse).
    pub counts: Vec<f64>,
    /// Centres moved to a random row because they received too few.
    pub n_reassigned: usize,
    /// Inertia of every initialisation on the validation rows, in order.
    pub init_inertia: Vec<f64>,
}

/// Fit mini-batch k-means to `data`, row-major with `d` features per row.
pub fn fit(
    data: &[f64],
    d: usize,
    params: &MiniBatchParams,
) -> Result<MiniBatchModel, KMeansError> {
    params.check(d)?;
    let n = check_data(data, d)?;
    let k = params.k;
    if k > n {
        return Err(KMeansError::KTooLarge { k, n });
    }
    let row = |i: usize| &data[i * d..(i + 1) * d];
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let batch = params.batch_size.min(n);
    let init_size = match params.init_size {
        Some(s) => s.max(k),
        None if 3 * batch < k => 3 * k,
        None => 3 * batch,
    }
    .min(n);
    let tol = if params.tol > 0.0 {
        params.tol * mean_variance(data, n, d)
    } else {
        0.0
    };

    // Starting centres: the best of n_init on a validation sample.
    let valid = gather(data, d, (0..init_size).map(|_| rng.random_range(0..n)));
    let n_init = if matches!(params.init, Init::Given(_)) {
        1
    } else {
        params.n_init
    };
    let mut centres = Vec::new();
    let mut init_inertia = Vec::with_capacity(n_init);
    for _ in 0..n_init {
        let c = match &params.init {
            Init::Given(c) => c.clone(),
            Init::KMeansPlusPlus | Init::Random => {
                let sample = if init_size < n {
                    gather(data, d, (0..init_size).map(|_| rng.random_range(0..n)))
                } else {
                    data.to_vec()
                };
                if matches!(params.init, Init::Random) {
                    let idx = rand::seq::index::sample(&mut rng, init_size, k);
                    gather(&sample, d, idx.iter())
                } else {
                    kmeans_plus_plus(&sample, init_size, d, k, &mut rng)
                }
            }
        };
        let inertia = batch_inertia(&valid, d, &c, k);
        if init_inertia.iter().all(|&b| inertia < b) {
            centres = c;
        }
        init_inertia.push(inertia);
    }

    let n_steps = (params.max_epochs * n / batch).max(1);
    let mut counts = vec![0.0f64; k];
    let mut new_centres = vec![0.0; k * d];
    let mut buf = vec![0.0; batch * d];
    let mut labels = vec![0u32; batch];
    let mut since_reassign = 0usize;
    let mut ewa: Option<f64> = None;
    let mut ewa_min: Option<f64> = None;
    let mut no_improvement = 0usize;
    let mut n_reassigned = 0;
    let mut converged = false;
    let mut steps = 0;
    let alpha = (batch as f64 * 2.0 / (n as f64 + 1.0)).min(1.0);
    for step in 0..n_steps {
        steps = step + 1;
        for b in 0..batch {
            let i = rng.random_range(0..n);
            buf[b * d..(b + 1) * d].copy_from_slice(row(i));
        }
        // Labels and inertia against the current centres.
        let cs = Centres::new(&centres, k, d);
        cs.nearest(&buf, &mut labels);
        let mut inertia = 0.0;
        for (x, &j) in buf.chunks_exact(d).zip(&labels) {
            let j = j as usize;
            inertia += sq_dist(x, &centres[j * d..(j + 1) * d]);
        }
        // Move each centre to the mean of everything it has received.
        let mut wsum = vec![0.0f64; k];
        let mut sums = vec![0.0; k * d];
        for (x, &j) in buf.chunks_exact(d).zip(&labels) {
            let j = j as usize;
            wsum[j] += 1.0;
            for (s, v) in sums[j * d..(j + 1) * d].iter_mut().zip(x) {
                *s += v;
            }
        }
        for j in 0..k {
            let (old, new) = (
                &centres[j * d..(j + 1) * d],
                &mut new_centres[j * d..(j + 1) * d],
            );
            if wsum[j] > 0.0 {
                for f in 0..d {
                    new[f] = old[f] * counts[j] + sums[j * d + f];
                }
                counts[j] += wsum[j];
                let a = 1.0 / counts[j];
                new.iter_mut().for_each(|v| *v *= a);
            } else {
                new.copy_from_slice(old);
            }
        }
        // Reassign centres that received too few rows.
        since_reassign += batch;
        let reassign_now = counts.contains(&0.0) || since_reassign >= 10 * k;
        if reassign_now {
            since_reassign = 0;
        }
        if reassign_now && params.reassignment_ratio > 0.0 {
            let max = counts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut to: Vec<bool> = counts
                .iter()
                .map(|&c| c < params.reassignment_ratio * max)
                .collect();
            let limit = batch / 2;
            if to.iter().filter(|&&t| t).count() > limit {
                // Keep the `k - limit` largest where they are.
                let mut order: Vec<usize> = (0..k).collect();
                order.sort_by(|&a, &b| counts[a].total_cmp(&counts[b]).then(a.cmp(&b)));
                for &j in &order[limit..] {
                    to[j] = false;
                }
            }
            let m = to.iter().filter(|&&t| t).count();
            if m > 0 {
                let picks = rand::seq::index::sample(&mut rng, batch, m);
                let keep_min = (0..k)
                    .filter(|&j| !to[j])
                    .map(|j| counts[j])
                    .fold(f64::INFINITY, f64::min);
                for (j, b) in (0..k).filter(|&j| to[j]).zip(picks.iter()) {
                    new_centres[j * d..(j + 1) * d].copy_from_slice(&buf[b * d..(b + 1) * d]);
                    counts[j] = keep_min;
                }
                n_reassigned += m;
            }
        }
        let shift = if tol > 0.0 {
            centres
                .iter()
                .zip(&new_centres)
                .map(|(a, b)| (a - b) * (a - b))
                .sum()
        } else {
            0.0
        };
        std::mem::swap(&mut centres, &mut new_centres);
        // Early stopping on the smoothed inertia (the first step is the initialisation's).
        if step == 0 {
            continue;
        }
        let bi = inertia / batch as f64;
        let e = match ewa {
            None => bi,
            Some(e) => e * (1.0 - alpha) + bi * alpha,
        };
        ewa = Some(e);
        if tol > 0.0 && shift <= tol {
            converged = true;
            break;
        }
        if ewa_min.is_none_or(|m| e < m) {
            no_improvement = 0;
            ewa_min = Some(e);
        } else {
            no_improvement += 1;
        }
        if params
            .max_no_improvement
            .is_some_and(|m| no_improvement >= m)
        {
            converged = true;
            break;
        }
    }

    let (labels, inertia) = label_all(data, d, &centres, k);
    Ok(MiniBatchModel {
        centroids: centres,
        k,
        d,
        labels,
        inertia,
        n_steps: steps,
        n_epochs: (steps * batch).div_ceil(n),
        converged,
        ewa_inertia: ewa.unwrap_or(f64::NAN),
        counts,
        n_reassigned,
        init_inertia,
    })
}

/// The rows of `data` at `idx`, in that order.
fn gather(data: &[f64], d: usize, idx: impl IntoIterator<Item = usize>) -> Vec<f64> {
    let mut out = Vec::new();
    for i in idx {
        out.extend_from_slice(&data[i * d..(i + 1) * d]);
    }
    out
}

/// Inertia of `rows` against `centres` (sequential).
fn batch_inertia(rows: &[f64], d: usize, centres: &[f64], k: usize) -> f64 {
    let cs = Centres::new(centres, k, d);
    let mut labels = vec![0u32; rows.len() / d];
    cs.nearest(rows, &mut labels);
    rows.chunks_exact(d)
        .zip(&labels)
        .map(|(x, &j)| sq_dist(x, &centres[j as usize * d..(j as usize + 1) * d]))
        .sum()
}

/// Labels of every row and the inertia, in fixed chunks summed in order.
fn label_all(data: &[f64], d: usize, centres: &[f64], k: usize) -> (Vec<u32>, f64) {
    let cs = Centres::new(centres, k, d);
    let mut labels = vec![0u32; data.len() / d];
    let parts: Vec<f64> = data
        .par_chunks(CHUNK_ROWS * d)
        .zip(labels.par_chunks_mut(CHUNK_ROWS))
        .map(|(rows, labs)| {
            cs.nearest(rows, labs);
            rows.chunks_exact(d)
                .zip(labs.iter())
                .map(|(x, &j)| sq_dist(x, &centres[j as usize * d..(j as usize + 1) * d]))
                .sum::<f64>()
        })
        .collect();
    (labels, parts.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::KMeansParams;

    /// `groups` Gaussian-ish blobs in `d` dimensions, 3 apart, unit-ish spread.
    fn blobs(n: usize, d: usize, groups: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<f64> = (0..groups * d)
            .map(|_| rng.random::<f64>() * 12.0)
            .collect();
        let mut v = Vec::with_capacity(n * d);
        for _ in 0..n {
            let g = rng.random_range(0..groups);
            for f in 0..d {
                let z: f64 = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0;
                v.push(centres[g * d + f] + z);
            }
        }
        v
    }

    #[test]
    fn close_to_full_kmeans_on_blobs() {
        let (n, d, k) = (60_000, 4, 6);
        let x = blobs(n, d, k, 11);
        let full = crate::kmeans::fit(&x, d, &KMeansParams::new(k).n_init(3).seed(1)).unwrap();
        let mb = fit(&x, d, &MiniBatchParams::new(k).seed(1)).unwrap();
        assert!(
            mb.inertia <= full.inertia * 1.02,
            "mini-batch {} vs full {}",
            mb.inertia,
            full.inertia
        );
        assert!(mb.converged, "stopped early on the smoothed inertia");
        assert!(mb.n_steps < 100 * n / 1024);
        assert_eq!(mb.labels.len(), n);
        assert_eq!(mb.init_inertia.len(), 3);
    }

    #[test]
    fn same_seed_same_result_for_any_thread_count() {
        let x = blobs(30_000, 3, 5, 2);
        let p = MiniBatchParams::new(5).batch_size(256).seed(9);
        let run = |t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| fit(&x, 3, &p).unwrap())
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
        // Another seed gives another run.
        let other = fit(&x, 3, &p.clone().seed(10)).unwrap();
        assert_ne!(one.centroids, other.centroids);
    }

    #[test]
    fn settings_and_small_inputs() {
        assert_eq!(
            fit(&[1.0, 2.0], 1, &MiniBatchParams::new(1).batch_size(0)),
            Err(KMeansError::ZeroBatch)
        );
        assert_eq!(
            fit(
                &[1.0, 2.0],
                1,
                &MiniBatchParams::new(1).reassignment_ratio(-1.0)
            ),
            Err(KMeansError::BadRatio(-1.0))
        );
        assert_eq!(
            fit(&[1.0, 2.0], 1, &MiniBatchParams::new(3)),
            Err(KMeansError::KTooLarge { k: 3, n: 2 })
        );
        // Fewer rows than a batch; identical rows; k = n.
        let m = fit(&[1.0, 1.0, 1.0, 1.0], 2, &MiniBatchParams::new(2)).unwrap();
        assert_eq!(m.inertia, 0.0);
        let m = fit(&[0.0, 5.0, 10.0], 1, &MiniBatchParams::new(3)).unwrap();
        assert_eq!(m.labels.len(), 3);
        assert!(m.inertia.is_finite());
        // Given centres, tol-based stop.
        let x = blobs(5000, 2, 3, 4);
        let init = x[..6].to_vec();
        let m = fit(
            &x,
            2,
            &MiniBatchParams::new(3)
                .init(Init::Given(init))
                .tol(1e-3)
                .max_no_improvement(None),
        )
        .unwrap();
        assert!(m.converged);
        assert_eq!(m.init_inertia.len(), 1);
        // Random init, no early stop: the full step budget.
        let m = fit(
            &x,
            2,
            &MiniBatchParams::new(3)
                .init(Init::Random)
                .max_no_improvement(None)
                .max_epochs(2)
                .batch_size(500),
        )
        .unwrap();
        assert!(!m.converged);
        assert_eq!(m.n_steps, 20);
        assert_eq!(m.n_epochs, 2);
    }

    #[test]
    fn small_clusters_are_reassigned() {
        // Start with a centre far from every row: it receives nothing and is moved.
        let x = blobs(20_000, 2, 4, 5);
        let mut init = x[..8].to_vec();
        init[0] = 1e6;
        init[1] = 1e6;
        let m = fit(&x, 2, &MiniBatchParams::new(4).init(Init::Given(init))).unwrap();
        assert!(m.n_reassigned >= 1);
        assert!(m.centroids[0] < 1e3);
    }
}
