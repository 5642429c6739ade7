//! DBSCAN (Ester, Kriegel, Sander & Xu 1996) with scikit-learn's definitions, and the
//! k-distance curve for choosing `eps`.
//!
//! - A row's neighbours are the rows within Euclidean distance `eps` of it, itself
//!   included; the test is `Σ (x_j − y_j)² <= eps·eps`, summed over the features in
//!   order — exactly the test of scikit-learn's `DBSCAN(algorithm="kd_tree")`.
//! - A **core** row has at least `min_samples` neighbours. Core rows within `eps` of
//!   each other are in the same cluster; a non-core row within `eps` of a core row is a
//!   **border** row of that cluster; every other row is **noise** (label `−1`).
//! - Clusters are numbered `0, 1, …` in the order of their first core row (the row
//!   order), and a border row within reach of several clusters joins the one with the
//!   lowest number. This is the numbering scikit-learn's expansion produces (its outer
//!   loop visits rows in order and starts a cluster at each unlabelled core row, and a
//!   border row keeps the first cluster that reaches it), so the labels equal
//!   scikit-learn's exactly, not merely up to a permutation
//!   (`tests/dbscan_sklearn.rs`, fixtures from `tests/fixtures/make_dbscan_fixture.py`).
//!
//! Neighbourhoods come from a k-d tree (median splits on the widest dimension, 16 rows
//! per leaf, a bounding box per node), never from a distance matrix, and are never
//! stored: the core test counts neighbours in parallel and stops at `min_samples`; the
//! expansion then walks the tree once per core row, skipping subtrees whose rows all
//! have a cluster already. Memory is `O(n·d)`. The bounding-box bounds are computed
//! with the same monotone operations as the per-row test, so skipping a box (or taking
//! all of it) never disagrees with testing its rows one by one. The tree suits a few
//! to a dozen features; with many features most boxes overlap the query ball and the
//! cost tends to `n²` distance computations.
//!
//! [`k_distances`]: each (sampled) row's distance to its `k`-th nearest row, itself
//! counted as the first — with `k = min_samples` a row is core exactly when this
//! distance is `<= eps`, so the sorted curve shows which `eps` makes which share of the
//! rows core, and its knee (Kneedle) is a starting value for `eps`.

use crate::autok::{kneedle, Knee};
use crate::metrics::sample_indices;
use crate::stats::quantile_sorted;
use rayon::prelude::*;

/// Rows per leaf of the k-d tree.
const LEAF: usize = 16;
const NONE: u32 = u32::MAX;

/// Why DBSCAN (or the k-distance curve) cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DbscanError {
    #[error("there are no rows to cluster")]
    Empty,
    #[error("the data has {len} values, which is not a whole number of rows of {d} features")]
    Shape { len: usize, d: usize },
    #[error("the data has no features (0 columns)")]
    NoFeatures,
    #[error("row {row}, feature {feature} is {value}; DBSCAN needs finite numbers (impute or drop missing values first)")]
    NotFinite {
        row: usize,
        feature: usize,
        value: f64,
    },
    #[error("eps must be finite and > 0, got {0}")]
    BadEps(f64),
    #[error("min_samples must be at least 1")]
    ZeroMinSamples,
    #[error("the k-distance needs k <= rows, got k = {k} with {n} rows")]
    KTooLarge { k: usize, n: usize },
    #[error("the data has more than 2^32 − 1 rows")]
    TooManyRows,
}

/// DBSCAN settings, checked when built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DbscanParams {
    eps: f64,
    min_samples: usize,
}

impl DbscanParams {
    /// `eps` (finite, > 0) and `min_samples` (at least 1; the row itself counts).
    pub fn new(eps: f64, min_samples: usize) -> Result<Self, DbscanError> {
        if !eps.is_finite() || eps <= 0.0 {
            return Err(DbscanError::BadEps(eps));
        }
        if min_samples == 0 {
            return Err(DbscanError::ZeroMinSamples);
        }
        Ok(DbscanParams { eps, min_samples })
    }
    pub fn eps(&self) -> f64 {
        self.eps
    }
    pub fn min_samples(&self) -> usize {
        self.min_samples
    }
}

/// The result of [`fit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dbscan {
    /// Cluster of each row, `0..n_clusters`, or `−1` for noise.
    pub labels: Vec<i32>,
    /// Whether each row is a core row.
    pub core: Vec<bool>,
    pub n_clusters: usize,
}

impl Dbscan {
    /// Rows in each cluster, `0..n_clusters`.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![0; self.n_clusters];
        for &l in &self.labels {
            if l >= 0 {
                s[l as usize] += 1;
            }
        }
        s
    }
    /// Noise rows.
    pub fn noise(&self) -> usize {
        self.labels.iter().filter(|&&l| l < 0).count()
    }
}

fn check_data(data: &[f64], d: usize) -> Result<usize, DbscanError> {
    if d == 0 {
        return Err(DbscanError::NoFeatures);
    }
    if !data.len().is_multiple_of(d) {
        return Err(DbscanError::Shape { len: data.len(), d });
    }
    if data.is_empty() {
        return Err(DbscanError::Empty);
    }
    if let Some(p) = data.iter().position(|v| !v.is_finite()) {
        return Err(DbscanError::NotFinite {
            row: p / d,
            feature: p % d,
            value: data[p],
        });
    }
    let n = data.len() / d;
    if n >= NONE as usize {
        return Err(DbscanError::TooManyRows);
    }
    Ok(n)
}

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Tree positions `start..end`.
    start: u32,
    end: u32,
    /// Children, or `NONE` for a leaf.
    left: u32,
    right: u32,
}

/// A k-d tree over the rows, with the rows copied in tree order.
struct KdTree {
    d: usize,
    /// Row-major, in tree order.
    pts: Vec<f64>,
    /// The original row of each tree position.
    idx: Vec<u32>,
    nodes: Vec<Node>,
    /// Per node: `d` lower then `d` upper bounds.
    bbox: Vec<f64>,
}

/// Squared distance summed over the features in order (scikit-learn's `rdist`).
#[inline]
fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        let t = x - y;
        s += t * t;
    }
    s
}

impl KdTree {
    fn build(data: &[f64], d: usize) -> KdTree {
        let n = data.len() / d;
        let mut idx: Vec<u32> = (0..n as u32).collect();
        let mut t = KdTree {
            d,
            pts: Vec::new(),
            idx: Vec::new(),
            nodes: Vec::with_capacity(2 * n / LEAF + 2),
            bbox: Vec::with_capacity((2 * n / LEAF + 2) * 2 * d),
        };
        t.split(data, &mut idx, 0, n);
        t.pts = idx
            .iter()
            .flat_map(|&i| data[i as usize * d..(i as usize + 1) * d].iter().copied())
            .collect();
        t.idx = idx;
        t
    }

    /// Make the node of positions `start..end` (and its subtree); returns its id.
    fn split(&mut self, data: &[f64], idx: &mut [u32], start: usize, end: usize) -> u32 {
        let d = self.d;
        let id = self.nodes.len();
        let mut lo = vec![f64::INFINITY; d];
        let mut hi = vec![f64::NEG_INFINITY; d];
        for &i in &idx[start..end] {
            let x = &data[i as usize * d..(i as usize + 1) * d];
            for f in 0..d {
                lo[f] = lo[f].min(x[f]);
                hi[f] = hi[f].max(x[f]);
            }
        }
        self.bbox.extend_from_slice(&lo);
        self.bbox.extend_from_slice(&hi);
        self.nodes.push(Node {
            start: start as u32,
            end: end as u32,
            left: NONE,
            right: NONE,
        });
        let (dim, width) =
            (0..d)
                .map(|f| (f, hi[f] - lo[f]))
                .fold((0, 0.0), |b, c| if c.1 > b.1 { c } else { b });
        if end - start <= LEAF || width <= 0.0 {
            return id as u32;
        }
        let mid = start + (end - start) / 2;
        idx[start..end].select_nth_unstable_by(mid - start, |&a, &b| {
            data[a as usize * d + dim]
                .total_cmp(&data[b as usize * d + dim])
                .then(a.cmp(&b))
        });
        let left = self.split(data, idx, start, mid);
        let right = self.split(data, idx, mid, end);
        self.nodes[id].left = left;
        self.nodes[id].right = right;
        id as u32
    }

    /// Lower and upper bounds of the squared distance from `q` to the rows of `node`,
    /// computed so that `lower <= sq_dist(q, row) <= upper` holds for the computed
    /// values too (each term is a monotone function of the same differences, summed
    /// in the same order).
    #[inline]
    fn bounds(&self, q: &[f64], node: usize) -> (f64, f64) {
        let d = self.d;
        let b = &self.bbox[node * 2 * d..(node + 1) * 2 * d];
        let (lo, hi) = b.split_at(d);
        let (mut min, mut max) = (0.0, 0.0);
        for f in 0..d {
            let (a, c) = (q[f] - lo[f], q[f] - hi[f]);
            let near = if a < 0.0 {
                -a
            } else if c > 0.0 {
                c
            } else {
                0.0
            };
            let far = a.abs().max(c.abs());
            min += near * near;
            max += far * far;
        }
        (min, max)
    }

    fn row(&self, pos: usize) -> &[f64] {
        &self.pts[pos * self.d..(pos + 1) * self.d]
    }

    /// Rows within `r2` (squared) of `q`, counting up to `limit`.
    fn count_within(&self, q: &[f64], r2: f64, limit: usize, stack: &mut Vec<u32>) -> usize {
        let mut count = 0;
        stack.clear();
        stack.push(0);
        while let Some(id) = stack.pop() {
            let node = self.nodes[id as usize];
            let (min, max) = self.bounds(q, id as usize);
            if min > r2 {
                continue;
            }
            if max <= r2 {
                count += (node.end - node.start) as usize;
            } else if node.left == NONE {
                for p in node.start as usize..node.end as usize {
                    count += usize::from(sq_dist(q, self.row(p)) <= r2);
                }
            } else {
                stack.push(node.right);
                stack.push(node.left);
                continue;
            }
            if count >= limit {
                break;
            }
        }
        count
    }

    /// Call `f` with the tree position of every row within `r2` of `q` whose
    /// `open` count is still positive, and keep `open` (rows not yet taken, per node)
    /// up to date; `f` decides whether the row is taken. Returns the rows taken.
    fn take_within(
        &self,
        id: u32,
        q: &[f64],
        r2: f64,
        inside: bool,
        open: &mut [u32],
        f: &mut dyn FnMut(usize) -> bool,
    ) -> u32 {
        let i = id as usize;
        if open[i] == 0 {
            return 0;
        }
        let inside = inside || {
            let (min, max) = self.bounds(q, i);
            if min > r2 {
                return 0;
            }
            max <= r2
        };
        let node = self.nodes[i];
        let taken = if node.left == NONE {
            let mut t = 0;
            for p in node.start as usize..node.end as usize {
                if (inside || sq_dist(q, self.row(p)) <= r2) && f(p) {
                    t += 1;
                }
            }
            t
        } else {
            self.take_within(node.left, q, r2, inside, open, f)
                + self.take_within(node.right, q, r2, inside, open, f)
        };
        open[i] -= taken;
        taken
    }

    /// The squared distance from `q` to its `k`-th nearest row (`q`'s own row, if it
    /// is one, counts).
    fn kth_sq(&self, q: &[f64], k: usize, best: &mut Vec<f64>, stack: &mut Vec<(u32, f64)>) -> f64 {
        // `best`: the k smallest squared distances so far, ascending.
        best.clear();
        stack.clear();
        stack.push((0, 0.0));
        while let Some((id, min)) = stack.pop() {
            if best.len() == k && min > best[k - 1] {
                continue;
            }
            let node = self.nodes[id as usize];
            if node.left == NONE {
                for p in node.start as usize..node.end as usize {
                    let s = sq_dist(q, self.row(p));
                    if best.len() < k || s < best[k - 1] {
                        let at = best.partition_point(|&v| v <= s);
                        if best.len() == k {
                            best.pop();
                        }
                        best.insert(at, s);
                    }
                }
            } else {
                // Nearer child last, so it is visited first.
                let (l, r) = (node.left, node.right);
                let (ml, mr) = (self.bounds(q, l as usize).0, self.bounds(q, r as usize).0);
                if ml <= mr {
                    stack.push((r, mr));
                    stack.push((l, ml));
                } else {
                    stack.push((l, ml));
                    stack.push((r, mr));
                }
            }
        }
        best[k - 1]
    }
}

/// DBSCAN of the rows of `data` (row-major `n × d`).
pub fn fit(data: &[f64], d: usize, params: &DbscanParams) -> Result<Dbscan, DbscanError> {
    let n = check_data(data, d)?;
    let tree = KdTree::build(data, d);
    let r2 = params.eps * params.eps;
    let m = params.min_samples;
    // Core rows, by tree position (a bounded count each, in parallel).
    let core_pos: Vec<bool> = (0..n)
        .into_par_iter()
        .with_min_len(256)
        .map_init(Vec::new, |stack, p| {
            tree.count_within(tree.row(p), r2, m, stack) >= m
        })
        .collect();
    let mut pos_of = vec![0u32; n];
    for (p, &i) in tree.idx.iter().enumerate() {
        pos_of[i as usize] = p as u32;
    }
    // Expansion in row order: each cluster takes every row within eps of its core rows
    // that no earlier cluster took.
    let mut label_pos = vec![-1i32; n];
    let mut open: Vec<u32> = tree.nodes.iter().map(|nd| nd.end - nd.start).collect();
    let mut todo: Vec<usize> = Vec::new();
    let mut clusters = 0i32;
    for &p0 in &pos_of {
        let p0 = p0 as usize;
        if label_pos[p0] != -1 || !core_pos[p0] {
            continue;
        }
        todo.push(p0);
        while let Some(p) = todo.pop() {
            let q = tree.row(p);
            let mut take = |t: usize| {
                if label_pos[t] != -1 {
                    return false;
                }
                label_pos[t] = clusters;
                if core_pos[t] && t != p {
                    todo.push(t);
                }
                true
            };
            tree.take_within(0, q, r2, false, &mut open, &mut take);
        }
        clusters += 1;
    }
    let mut labels = vec![-1i32; n];
    let mut core = vec![false; n];
    for (p, &i) in tree.idx.iter().enumerate() {
        labels[i as usize] = label_pos[p];
        core[i as usize] = core_pos[p];
    }
    Ok(Dbscan {
        labels,
        core,
        n_clusters: clusters as usize,
    })
}

/// The sorted k-distance curve of [`k_distances`].
#[derive(Debug, Clone, PartialEq)]
pub struct KDistances {
    /// The neighbour rank (the row itself is the first).
    pub k: usize,
    /// Rows of the data.
    pub rows: usize,
    /// Distance of each queried row to its `k`-th nearest row, ascending.
    pub sorted: Vec<f64>,
    /// Their squares as the core test computes them (`sorted` is their square roots).
    pub sorted_sq: Vec<f64>,
}

/// The knee of a k-distance curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KneeEps {
    /// The k-distance at the knee: a starting value for `eps`.
    pub eps: f64,
    /// The share of queried rows whose k-distance is at most that (they would be core).
    pub fraction: f64,
    /// `true` when Kneedle found a knee; `false` when none passed its threshold and
    /// this is the point farthest below the chord.
    pub found: bool,
}

impl KDistances {
    /// The `q` quantile (numpy's linear interpolation).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        quantile_sorted(&self.sorted, q)
    }

    /// The curve at `points` evenly spaced shares `0..=1` of the queried rows, as
    /// `(share, k-distance)` pairs (linear interpolation between ranks).
    pub fn curve(&self, points: usize) -> Vec<(f64, f64)> {
        let m = points.max(2);
        (0..m)
            .filter_map(|j| {
                let x = j as f64 / (m - 1) as f64;
                self.quantile(x).map(|y| (x, y))
            })
            .collect()
    }

    /// The share of queried rows with a k-distance `<= eps`, tested as the core test
    /// does (squared distance `<= eps·eps`): with `k = min_samples` and every row
    /// queried, exactly the share of core rows.
    pub fn fraction_within(&self, eps: f64) -> f64 {
        if self.sorted_sq.is_empty() {
            return 0.0;
        }
        let r2 = eps * eps;
        self.sorted_sq.partition_point(|&v| v <= r2) as f64 / self.sorted_sq.len() as f64
    }

    /// The knee of the curve sampled at `points` shares, by Kneedle with sensitivity 1
    /// on the increasing convex curve (as the `kneed` package's `curve="convex",
    /// direction="increasing"`: the curve is reversed into a decreasing one). `None`
    /// when the curve is flat (all rows equally dense) or too short.
    pub fn knee(&self, points: usize) -> Option<KneeEps> {
        let c = self.curve(points);
        let x: Vec<f64> = c.iter().map(|p| p.0).collect();
        let y: Vec<f64> = c.iter().rev().map(|p| p.1).collect();
        let (j, found) = match kneedle(&x, &y, 1.0) {
            Knee::Found(j) => (j, true),
            Knee::Farthest(j) => (j, false),
            Knee::Flat => return None,
        };
        let (fraction, eps) = c[c.len() - 1 - j];
        Some(KneeEps {
            eps,
            fraction,
            found,
        })
    }
}

/// The distance of each of up to `sample` rows (a seeded uniform sample; all rows when
/// there are fewer) to its `k`-th nearest row among all rows, itself counted as the
/// first (scikit-learn's `NearestNeighbors(n_neighbors=k).kneighbors(X)[0][:, -1]`),
/// sorted ascending.
pub fn k_distances(
    data: &[f64],
    d: usize,
    k: usize,
    sample: usize,
    seed: u64,
) -> Result<KDistances, DbscanError> {
    let n = check_data(data, d)?;
    if k == 0 {
        return Err(DbscanError::ZeroMinSamples);
    }
    if k > n {
        return Err(DbscanError::KTooLarge { k, n });
    }
    let rows = sample_indices(n, sample.max(1), seed);
    let tree = KdTree::build(data, d);
    let mut sorted_sq: Vec<f64> = rows
        .par_iter()
        .with_min_len(64)
        .map_init(
            || (Vec::with_capacity(k + 1), Vec::new()),
            |(best, stack), &i| tree.kth_sq(&data[i * d..(i + 1) * d], k, best, stack),
        )
        .collect();
    sorted_sq.sort_by(f64::total_cmp);
    let sorted = sorted_sq.iter().map(|v| v.sqrt()).collect();
    Ok(KDistances {
        k,
        rows: n,
        sorted,
        sorted_sq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// DBSCAN by its definition, with all pairwise distances.
    fn brute(data: &[f64], d: usize, eps: f64, m: usize) -> (Vec<i32>, Vec<bool>) {
        let n = data.len() / d;
        let r2 = eps * eps;
        let row = |i: usize| &data[i * d..(i + 1) * d];
        let nb: Vec<Vec<usize>> = (0..n)
            .map(|i| (0..n).filter(|&j| sq_dist(row(i), row(j)) <= r2).collect())
            .collect();
        let core: Vec<bool> = nb.iter().map(|v| v.len() >= m).collect();
        let mut labels = vec![-1i32; n];
        let mut c = 0;
        for i in 0..n {
            if labels[i] != -1 || !core[i] {
                continue;
            }
            let mut stack = vec![i];
            while let Some(p) = stack.pop() {
                if labels[p] != -1 {
                    continue;
                }
                labels[p] = c;
                if core[p] {
                    stack.extend(nb[p].iter().copied().filter(|&q| labels[q] == -1));
                }
            }
            c += 1;
        }
        (labels, core)
    }

    fn blobs(n: usize, d: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<f64> = (0..4 * d).map(|_| rng.random::<f64>() * 10.0).collect();
        let mut v = Vec::with_capacity(n * d);
        for i in 0..n {
            let g = i % 5;
            for f in 0..d {
                v.push(if g == 4 {
                    rng.random::<f64>() * 12.0 - 1.0
                } else {
                    centres[g * d + f] + (rng.random::<f64>() - 0.5) * 2.0
                });
            }
        }
        v
    }

    #[test]
    fn matches_the_definition() {
        for (n, d, eps, m) in [
            (500, 2, 0.3, 5),
            (500, 2, 0.8, 10),
            (400, 3, 0.5, 4),
            (300, 1, 0.05, 3),
            (300, 5, 1.2, 6),
            (200, 2, 100.0, 5),
            (200, 2, 1e-6, 1),
            (200, 2, 1e-6, 2),
        ] {
            let x = blobs(n, d, n as u64 + d as u64);
            let p = DbscanParams::new(eps, m).unwrap();
            let got = fit(&x, d, &p).unwrap();
            let (labels, core) = brute(&x, d, eps, m);
            assert_eq!(got.labels, labels, "n={n} d={d} eps={eps} m={m}");
            assert_eq!(got.core, core);
            assert_eq!(
                got.n_clusters,
                labels.iter().copied().max().map_or(0, |v| (v + 1) as usize)
            );
        }
    }

    #[test]
    fn integer_grid_with_ties_at_eps() {
        // Many rows exactly eps apart: the boundary is inclusive.
        let mut x = Vec::new();
        for i in 0..30 {
            for j in 0..10 {
                x.push((i * 2) as f64);
                x.push(j as f64 * if i % 3 == 0 { 1.0 } else { 3.0 });
            }
        }
        for (eps, m) in [(1.0, 2), (1.0, 3), (2.0, 4), (3.0, 5), (2.0, 1)] {
            let p = DbscanParams::new(eps, m).unwrap();
            let got = fit(&x, 2, &p).unwrap();
            let (labels, core) = brute(&x, 2, eps, m);
            assert_eq!((got.labels, got.core), (labels, core), "eps={eps} m={m}");
        }
    }

    #[test]
    fn degenerate_inputs() {
        let p = DbscanParams::new(0.5, 3).unwrap();
        assert_eq!(fit(&[], 2, &p), Err(DbscanError::Empty));
        assert_eq!(
            fit(&[1.0; 3], 2, &p),
            Err(DbscanError::Shape { len: 3, d: 2 })
        );
        assert!(matches!(
            fit(&[0.0, f64::NAN], 2, &p),
            Err(DbscanError::NotFinite {
                row: 0,
                feature: 1,
                ..
            })
        ));
        assert_eq!(DbscanParams::new(0.0, 3), Err(DbscanError::BadEps(0.0)));
        assert!(DbscanParams::new(f64::NAN, 3).is_err());
        assert_eq!(DbscanParams::new(1.0, 0), Err(DbscanError::ZeroMinSamples));
        // One row: noise unless min_samples is 1.
        let one = fit(&[1.0, 2.0], 2, &p).unwrap();
        assert_eq!((one.labels, one.n_clusters), (vec![-1], 0));
        let one = fit(&[1.0, 2.0], 2, &DbscanParams::new(0.5, 1).unwrap()).unwrap();
        assert_eq!((one.labels, one.core), (vec![0], vec![true]));
        // All rows identical: one cluster when there are min_samples of them.
        let same = vec![4.0; 2 * 50];
        let r = fit(&same, 2, &p).unwrap();
        assert_eq!((r.n_clusters, r.noise()), (1, 0));
        assert_eq!(r.sizes(), vec![50]);
        let r = fit(&same[..4], 2, &p).unwrap();
        assert_eq!((r.n_clusters, r.noise()), (0, 2));
        // k-distances of identical rows are all 0: no knee.
        let kd = k_distances(&same, 2, 3, 100, 0).unwrap();
        assert!(kd.sorted.iter().all(|&v| v == 0.0));
        assert_eq!(kd.knee(50), None);
        assert_eq!(
            k_distances(&same[..4], 2, 3, 100, 0),
            Err(DbscanError::KTooLarge { k: 3, n: 2 })
        );
    }

    #[test]
    fn k_distances_by_brute_force_and_core_link() {
        let d = 3;
        let x = blobs(600, d, 9);
        let k = 6;
        let kd = k_distances(&x, d, k, usize::MAX, 0).unwrap();
        let n = x.len() / d;
        let mut want: Vec<f64> = (0..n)
            .map(|i| {
                let mut s: Vec<f64> = (0..n)
                    .map(|j| sq_dist(&x[i * d..(i + 1) * d], &x[j * d..(j + 1) * d]))
                    .collect();
                s.sort_by(f64::total_cmp);
                s[k - 1].sqrt()
            })
            .collect();
        want.sort_by(f64::total_cmp);
        assert_eq!(kd.sorted, want);
        // A row is core exactly when its k-distance is <= eps.
        for eps in [0.2, 0.4, 0.9] {
            let r = fit(&x, d, &DbscanParams::new(eps, k).unwrap()).unwrap();
            let core = r.core.iter().filter(|&&c| c).count() as f64 / n as f64;
            assert_eq!(kd.fraction_within(eps), core);
        }
        let knee = kd.knee(100).unwrap();
        assert!(knee.eps > kd.quantile(0.5).unwrap() && knee.eps <= kd.sorted[n - 1]);
        let c = kd.curve(11);
        assert_eq!(c.len(), 11);
        assert_eq!(c[0], (0.0, kd.sorted[0]));
        assert_eq!(c[10], (1.0, kd.sorted[n - 1]));
        // A sample queries fewer rows, against all of them.
        let s = k_distances(&x, d, k, 100, 3).unwrap();
        assert_eq!((s.sorted.len(), s.rows), (100, 600));
    }

    #[test]
    fn same_result_for_any_thread_count() {
        let x = blobs(20_000, 2, 4);
        let p = DbscanParams::new(0.15, 8).unwrap();
        let run = |t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| {
                    (
                        fit(&x, 2, &p).unwrap(),
                        k_distances(&x, 2, 8, 5000, 1).unwrap(),
                    )
                })
        };
        assert_eq!(run(1), run(3));
    }
}
