//! Resampling stability of a clustering: seeded subsamples or bootstrap samples, and
//! Hennig's clusterwise Jaccard stability (Hennig 2007, "Cluster-wise assessment of
//! cluster stability", as the R package `fpc`'s `clusterboot`).
//!
//! The procedure: draw rows ([`resample_indices`]), re-fit the clustering on them,
//! and compare, on the distinct rows drawn, the original clusters with the re-fitted
//! ones. The global comparison is the adjusted Rand index
//! ([`crate::metrics::adjusted_rand_index`]); the clusterwise one is, for every
//! original cluster `C` (restricted to the rows drawn), the best Jaccard index
//! `|C ∩ D| / |C ∪ D|` over the re-fitted clusters `D` ([`best_jaccard`]).
//! [`ClusterwiseStability`] averages it over resamples and counts how often a cluster
//! was *dissolved* (best Jaccard ≤ 0.5) or *recovered* (best Jaccard > 0.75), with
//! `clusterboot`'s default thresholds.
//!
//! Hennig's reading of the mean Jaccard: below 0.5 the cluster is dissolved (not a
//! real pattern); 0.6–0.75 it indicates a pattern, but which points belong to it is
//! doubtful; above 0.85 it is highly stable.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::hash::Hash;

/// A Jaccard index at or below this dissolves the cluster (`clusterboot`'s
/// `dissolution`).
pub const DISSOLVED_AT_MOST: f64 = 0.5;
/// A Jaccard index above this recovers the cluster (`clusterboot`'s `recover`).
pub const RECOVERED_ABOVE: f64 = 0.75;

/// Why a resampling or a comparison cannot be done.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StabilityError {
    #[error("the subsample fraction is {0}; it must be greater than 0 and less than 1")]
    Fraction(f64),
    #[error("a resample of {rows} rows would hold {drawn} row(s); it needs at least 2")]
    TooFewRows { rows: usize, drawn: usize },
    #[error("there are {refit} re-fitted labels for {original} original ones")]
    Length { original: usize, refit: usize },
    #[error("original label {label} is not below the number of clusters {k}")]
    Label { label: u32, k: usize },
}

/// How the rows of one resample are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resampling {
    /// `round(fraction × n)` distinct rows, without replacement.
    Subsample { fraction: f64 },
    /// `n` rows with replacement (duplicates included).
    Bootstrap,
}

impl Resampling {
    /// A subsample of `fraction` of the rows, checked: `0 < fraction < 1`.
    pub fn subsample(fraction: f64) -> Result<Self, StabilityError> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(StabilityError::Fraction(fraction));
        }
        Ok(Resampling::Subsample { fraction })
    }

    /// Rows drawn from `n` (before removing bootstrap duplicates).
    pub fn drawn(&self, n: usize) -> usize {
        match *self {
            Resampling::Subsample { fraction } => (fraction * n as f64).round() as usize,
            Resampling::Bootstrap => n,
        }
    }
}

/// The rows (indices into `0..n`) of resample number `resample`, in increasing order
/// (bootstrap duplicates are adjacent). Deterministic: the generator is ChaCha8 seeded
/// with `seed`, on stream `resample`, so each resample is independent of how many
/// others are drawn and in which order.
pub fn resample_indices(
    n: usize,
    method: Resampling,
    seed: u64,
    resample: u64,
) -> Result<Vec<usize>, StabilityError> {
    if let Resampling::Subsample { fraction } = method {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(StabilityError::Fraction(fraction));
        }
    }
    let drawn = method.drawn(n);
    if drawn < 2 {
        return Err(StabilityError::TooFewRows { rows: n, drawn });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(resample);
    let mut idx = match method {
        Resampling::Subsample { .. } => rand::seq::index::sample(&mut rng, n, drawn).into_vec(),
        Resampling::Bootstrap => (0..n).map(|_| rng.random_range(0..n)).collect(),
    };
    idx.sort_unstable();
    Ok(idx)
}

/// For every original cluster `0..k`, the largest Jaccard index `|C ∩ D| / |C ∪ D|`
/// between its rows and the rows of one re-fitted cluster `D`; `None` for a cluster
/// with no row here (not drawn in this resample). `original[i]` and `refit[i]` are the
/// two labels of row `i`; the re-fitted labels may be any values (DBSCAN's noise is a
/// cluster like any other).
pub fn best_jaccard<B: Hash + Eq>(
    original: &[u32],
    refit: &[B],
    k: usize,
) -> Result<Vec<Option<f64>>, StabilityError> {
    if original.len() != refit.len() {
        return Err(StabilityError::Length {
            original: original.len(),
            refit: refit.len(),
        });
    }
    let mut refit_code: HashMap<&B, usize> = HashMap::new();
    let mut refit_size: Vec<u64> = Vec::new();
    let mut size = vec![0u64; k];
    let mut cells: HashMap<(usize, usize), u64> = HashMap::new();
    for (&c, d) in original.iter().zip(refit) {
        let c = c as usize;
        if c >= k {
            return Err(StabilityError::Label { label: c as u32, k });
        }
        let next = refit_code.len();
        let j = *refit_code.entry(d).or_insert(next);
        if j == refit_size.len() {
            refit_size.push(0);
        }
        refit_size[j] += 1;
        size[c] += 1;
        *cells.entry((c, j)).or_insert(0) += 1;
    }
    let mut best: Vec<Option<f64>> = vec![None; k];
    for (&(c, j), &both) in &cells {
        let union = size[c] + refit_size[j] - both;
        let jac = both as f64 / union as f64;
        // Deterministic whatever the map's order: max is order-independent.
        best[c] = Some(best[c].map_or(jac, |b: f64| b.max(jac)));
    }
    Ok(best)
}

/// The stability of one cluster over the resamples in which it was drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterStability {
    /// Resamples in which the cluster had at least one row.
    pub resamples: usize,
    /// Mean best Jaccard index (`None` when never drawn).
    pub mean: Option<f64>,
    /// Smallest best Jaccard index.
    pub min: Option<f64>,
    /// Share of those resamples in which the cluster dissolved (Jaccard ≤ 0.5).
    pub dissolved: Option<f64>,
    /// Share of those resamples in which it was recovered (Jaccard > 0.75).
    pub recovered: Option<f64>,
}

/// Accumulates [`best_jaccard`] results over resamples, in the order added.
#[derive(Debug, Clone)]
pub struct ClusterwiseStability {
    sums: Vec<f64>,
    mins: Vec<f64>,
    counts: Vec<usize>,
    dissolved: Vec<usize>,
    recovered: Vec<usize>,
}

impl ClusterwiseStability {
    /// For `k` original clusters.
    pub fn new(k: usize) -> Self {
        ClusterwiseStability {
            sums: vec![0.0; k],
            mins: vec![f64::INFINITY; k],
            counts: vec![0; k],
            dissolved: vec![0; k],
            recovered: vec![0; k],
        }
    }

    /// Add one resample's per-cluster best Jaccard indices (`None`: not drawn).
    pub fn add(&mut self, jaccard: &[Option<f64>]) {
        for (c, j) in jaccard.iter().enumerate().take(self.sums.len()) {
            if let Some(j) = *j {
                self.sums[c] += j;
                self.mins[c] = self.mins[c].min(j);
                self.counts[c] += 1;
                self.dissolved[c] += usize::from(j <= DISSOLVED_AT_MOST);
                self.recovered[c] += usize::from(j > RECOVERED_ABOVE);
            }
        }
    }

    /// Per cluster: mean, min, and the dissolved and recovered shares.
    pub fn summary(&self) -> Vec<ClusterStability> {
        (0..self.sums.len())
            .map(|c| {
                let n = self.counts[c];
                let share = |x: usize| (n > 0).then(|| x as f64 / n as f64);
                ClusterStability {
                    resamples: n,
                    mean: (n > 0).then(|| self.sums[c] / n as f64),
                    min: (n > 0).then_some(self.mins[c]),
                    dissolved: share(self.dissolved[c]),
                    recovered: share(self.recovered[c]),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaccard_by_hand() {
        // Original: A = {0,1,2,3}, B = {4,5}; re-fit: x = {0,1,2}, y = {3,4,5}.
        // A: J(A,x) = 3/4, J(A,y) = 1/6 → 0.75. B: J(B,x) = 0, J(B,y) = 2/3 → 2/3.
        let orig = [0, 0, 0, 0, 1, 1];
        let refit = ["x", "x", "x", "y", "y", "y"];
        let j = best_jaccard(&orig, &refit, 3).unwrap();
        assert_eq!(j[0], Some(0.75));
        assert!((j[1].unwrap() - 2.0 / 3.0).abs() < 1e-15);
        // Cluster 2 has no row here.
        assert_eq!(j[2], None);
        // Identical partitions with other names: 1 for every cluster.
        let j = best_jaccard(&orig, &[7, 7, 7, 7, -1, -1], 2).unwrap();
        assert_eq!(j, vec![Some(1.0), Some(1.0)]);
        // Everything merged into one re-fitted cluster: |A|/6 and |B|/6.
        let j = best_jaccard(&orig, &[0; 6], 2).unwrap();
        assert_eq!(j, vec![Some(4.0 / 6.0), Some(2.0 / 6.0)]);
        assert!(best_jaccard(&orig, &[0; 5], 2).is_err());
        assert!(matches!(
            best_jaccard(&[0, 3], &[0, 0], 2),
            Err(StabilityError::Label { label: 3, k: 2 })
        ));
    }

    #[test]
    fn aggregate_by_hand() {
        let mut s = ClusterwiseStability::new(3);
        s.add(&[Some(0.9), Some(0.5), None]);
        s.add(&[Some(0.7), Some(0.8), None]);
        s.add(&[Some(0.8), None, None]);
        let r = s.summary();
        assert_eq!(r[0].resamples, 3);
        assert!((r[0].mean.unwrap() - 0.8).abs() < 1e-15);
        assert_eq!(r[0].min, Some(0.7));
        assert_eq!(r[0].dissolved, Some(0.0));
        // 0.9 and 0.8 are above 0.75; 0.7 is not.
        assert!((r[0].recovered.unwrap() - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(r[1].resamples, 2);
        assert!((r[1].mean.unwrap() - 0.65).abs() < 1e-15);
        // 0.5 counts as dissolved (at most 0.5).
        assert_eq!(r[1].dissolved, Some(0.5));
        assert_eq!(r[1].recovered, Some(0.5));
        assert_eq!(
            r[2],
            ClusterStability {
                resamples: 0,
                mean: None,
                min: None,
                dissolved: None,
                recovered: None
            }
        );
    }

    #[test]
    fn resamples_are_seeded_and_shaped() {
        let sub = Resampling::subsample(0.8).unwrap();
        let a = resample_indices(100, sub, 7, 0).unwrap();
        assert_eq!(a.len(), 80);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(a, resample_indices(100, sub, 7, 0).unwrap());
        assert_ne!(a, resample_indices(100, sub, 7, 1).unwrap());
        assert_ne!(a, resample_indices(100, sub, 8, 0).unwrap());
        let b = resample_indices(100, Resampling::Bootstrap, 7, 3).unwrap();
        assert_eq!(b.len(), 100);
        assert!(b.windows(2).all(|w| w[0] <= w[1]));
        assert!(b.iter().all(|&i| i < 100));
        // With replacement: about 63% distinct rows, never all of them here.
        let mut u = b.clone();
        u.dedup();
        assert!(u.len() > 50 && u.len() < 80, "{}", u.len());
        assert!(Resampling::subsample(1.0).is_err());
        assert!(Resampling::subsample(0.0).is_err());
        assert_eq!(resample_indices(2, sub, 0, 0).unwrap().len(), 2);
        assert!(matches!(
            resample_indices(2, Resampling::subsample(0.2).unwrap(), 0, 0),
            Err(StabilityError::TooFewRows { rows: 2, drawn: 0 })
        ));
        assert!(matches!(
            resample_indices(1, Resampling::Bootstrap, 0, 0),
            Err(StabilityError::TooFewRows { rows: 1, drawn: 1 })
        ));
    }
}
