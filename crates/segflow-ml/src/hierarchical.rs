//! Agglomerative (hierarchical) clustering: Ward, average and complete linkage.
//!
//! [`linkage`] builds the whole merge tree of `n` rows the way scipy's
//! `scipy.cluster.hierarchy.linkage(X, method)` does for these three methods:
//!
//! 1. the condensed matrix of Euclidean distances (`n(n−1)/2` doubles, the `O(n²)`
//!    memory of the method: 400 MB at 10,000 rows), computed in parallel;
//! 2. the nearest-neighbour chain (Murtagh 1983; Müllner 2011): follow nearest
//!    neighbours from the lowest-numbered live cluster until two clusters are each
//!    other's nearest, merge them, and update the distances of the merged cluster with
//!    the Lance-Williams formula of the method —
//!    complete `max(d_xi, d_yi)`, average `(n_x·d_xi + n_y·d_yi) / (n_x + n_y)`, Ward
//!    `√(((n_i+n_x)·t)·d_xi² + ((n_i+n_y)·t)·d_yi² − (n_i·t)·d_xy²)` with
//!    `t = 1 / (n_x+n_y+n_i)` (the square root of a value below zero by rounding is 0;
//!    scipy gives NaN there);
//! 3. a stable sort of the merges by distance, and scipy's relabelling: leaves are
//!    `0..n`, merge `j` creates node `n + j`, and each merge lists its smaller node
//!    first.
//!
//! **Ties** are broken exactly as scipy's `nn_chain`: a chain starts at the
//! lowest-numbered live cluster; a cluster's nearest neighbour is the lowest-numbered
//! cluster at the smallest distance, except that the previous cluster of the chain wins
//! a tie (so the chain cannot cycle); merges of equal distance keep the order in which
//! the chain made them. The same arithmetic in the same order makes the output equal to
//! scipy's — to the last bit on integer data, and to about 1e-15 relative otherwise
//! (scipy's distance kernel may sum the features in another order):
//! `tests/hierarchical_scipy.rs`, fixtures from
//! `tests/fixtures/make_hierarchical_fixture.py`.
//!
//! [`cut`] turns the tree into flat clusters as scikit-learn's
//! `AgglomerativeClustering` does (which uses the same scipy tree when there is no
//! connectivity constraint): `k` clusters undo the last `k − 1` merges; a
//! `distance_threshold` `t` undoes every merge at a distance `>= t` (so merges strictly
//! below `t` are kept; scipy's `fcluster(criterion="distance")` keeps `<= t`). Clusters
//! are numbered `0..k` in the order of their first row.
//!
//! [`fit`] does both and, when there are more than `max_rows` rows, clusters a seeded
//! uniform sample of `max_rows` rows instead and gives every other row the cluster of
//! the nearest cluster centroid (the mean of its sampled members), as k-means would.
//! Deterministic for a seed whatever the thread count (the parallel parts compute
//! independent values).

use crate::kmeans::Nearest;
use crate::metrics::sample_indices;
use rayon::prelude::*;
use std::cmp::Ordering;

/// Rows above which [`HierarchicalParams::new`] samples by default.
pub const DEFAULT_MAX_ROWS: usize = 10_000;

/// The linkage criterion: how the distance between two clusters is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linkage {
    /// The increase in within-cluster sum of squares (Ward 1963), as a Euclidean
    /// distance: `√(2·n_a·n_b / (n_a + n_b)) · ‖c_a − c_b‖`.
    Ward,
    /// The mean distance between the rows of the two clusters (UPGMA).
    Average,
    /// The largest distance between a row of one cluster and a row of the other.
    Complete,
}

impl Linkage {
    /// The snake_case name used in config, facts and scipy.
    pub fn name(self) -> &'static str {
        match self {
            Linkage::Ward => "ward",
            Linkage::Average => "average",
            Linkage::Complete => "complete",
        }
    }

    /// The Lance-Williams update: the distance from cluster `i` to the union of `x` and
    /// `y`, written as scipy writes it (same operations, same order).
    #[inline]
    fn update(self, d_xi: f64, d_yi: f64, d_xy: f64, nx: usize, ny: usize, ni: usize) -> f64 {
        match self {
            Linkage::Complete => d_xi.max(d_yi),
            Linkage::Average => (nx as f64 * d_xi + ny as f64 * d_yi) / (nx + ny) as f64,
            Linkage::Ward => {
                let t = 1.0 / (nx + ny + ni) as f64;
                let v = (ni + nx) as f64 * t * d_xi * d_xi + (ni + ny) as f64 * t * d_yi * d_yi
                    - ni as f64 * t * d_xy * d_xy;
                v.max(0.0).sqrt()
            }
        }
    }
}

/// Where the tree is cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cut {
    /// Exactly this many clusters.
    K(usize),
    /// Undo every merge at a distance `>= t` (scikit-learn's `distance_threshold`).
    Distance(f64),
}

/// One merge of the tree, as a row of scipy's linkage matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Merge {
    /// The two nodes merged, `a < b`: a leaf (row) `< n`, or `n + j` for merge `j`.
    pub a: usize,
    pub b: usize,
    /// The linkage distance between them.
    pub distance: f64,
    /// Rows under the new node.
    pub size: usize,
}

/// Why hierarchical clustering cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HierarchicalError {
    #[error("there are no rows to cluster")]
    Empty,
    #[error("the data has {len} values, which is not a whole number of rows of {d} features")]
    Shape { len: usize, d: usize },
    #[error("the data has no features (0 columns)")]
    NoFeatures,
    #[error("row {row}, feature {feature} is {value}; hierarchical clustering needs finite numbers (impute or drop missing values first)")]
    NotFinite {
        row: usize,
        feature: usize,
        value: f64,
    },
    #[error("the distance between rows {a} and {b} overflows a double; scale the features (standardize) first")]
    Overflow { a: usize, b: usize },
    #[error("k must be at least 1")]
    ZeroK,
    #[error("k = {k} is more than the {n} rows to cluster; choose k <= {n}")]
    KTooLarge { k: usize, n: usize },
    #[error("distance_threshold must be finite and > 0, got {0}")]
    BadThreshold(f64),
    #[error("max_rows must be at least 2, got {0}")]
    BadMaxRows(usize),
    #[error("the linkage has {got} merges for {n} rows (expected n − 1)")]
    BadLinkage { got: usize, n: usize },
}

/// Settings of [`fit`], checked when built.
#[derive(Debug, Clone, PartialEq)]
pub struct HierarchicalParams {
    linkage: Linkage,
    cut: Cut,
    max_rows: usize,
    seed: u64,
}

impl HierarchicalParams {
    /// `linkage` cut at `cut`; above [`DEFAULT_MAX_ROWS`] rows a sample with seed 0.
    pub fn new(linkage: Linkage, cut: Cut) -> Result<Self, HierarchicalError> {
        match cut {
            Cut::K(0) => return Err(HierarchicalError::ZeroK),
            Cut::Distance(t) if !t.is_finite() || t <= 0.0 => {
                return Err(HierarchicalError::BadThreshold(t))
            }
            _ => {}
        }
        Ok(HierarchicalParams {
            linkage,
            cut,
            max_rows: DEFAULT_MAX_ROWS,
            seed: 0,
        })
    }

    /// Cluster a seeded uniform sample of `max_rows` rows when there are more (memory
    /// `4·max_rows²` bytes), and assign the rest to the nearest centroid.
    pub fn sample(mut self, max_rows: usize, seed: u64) -> Result<Self, HierarchicalError> {
        if max_rows < 2 {
            return Err(HierarchicalError::BadMaxRows(max_rows));
        }
        self.max_rows = max_rows;
        self.seed = seed;
        Ok(self)
    }

    pub fn linkage(&self) -> Linkage {
        self.linkage
    }
    pub fn cut(&self) -> Cut {
        self.cut
    }
    pub fn max_rows(&self) -> usize {
        self.max_rows
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// A fitted hierarchical clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct HierarchicalModel {
    pub linkage: Linkage,
    /// Number of clusters.
    pub k: usize,
    pub d: usize,
    /// Cluster of every row, `0..k`, numbered in the order of each cluster's first
    /// clustered row.
    pub labels: Vec<u32>,
    /// Euclidean distance of every row to its cluster's centroid.
    pub distances: Vec<f64>,
    /// Row-major `k × d`: the mean of each cluster's clustered rows (the sample when
    /// sampled).
    pub centroids: Vec<f64>,
    /// Rows of each cluster (all rows, sampled or assigned).
    pub sizes: Vec<usize>,
    /// The tree of the clustered rows (leaf `i` is clustered row `i`).
    pub merges: Vec<Merge>,
    /// The node of the tree that is each cluster (a leaf, or `n + j` for merge `j`).
    pub cluster_nodes: Vec<usize>,
    /// The rows clustered, in increasing order, when a sample was taken.
    pub sample: Option<Vec<usize>>,
}

impl HierarchicalModel {
    /// Rows the tree was built on.
    pub fn clustered_rows(&self) -> usize {
        self.merges.len() + 1
    }
}

fn check_data(data: &[f64], d: usize) -> Result<usize, HierarchicalError> {
    if d == 0 {
        return Err(HierarchicalError::NoFeatures);
    }
    if !data.len().is_multiple_of(d) {
        return Err(HierarchicalError::Shape { len: data.len(), d });
    }
    if data.is_empty() {
        return Err(HierarchicalError::Empty);
    }
    if let Some(p) = data.iter().position(|v| !v.is_finite()) {
        return Err(HierarchicalError::NotFinite {
            row: p / d,
            feature: p % d,
            value: data[p],
        });
    }
    Ok(data.len() / d)
}

/// Index of the pair `i < j` in the condensed matrix of `n` rows.
#[inline]
fn condensed(n: usize, i: usize, j: usize) -> usize {
    debug_assert!(i < j && j < n);
    n * i - i * (i + 1) / 2 + (j - i - 1)
}

/// Condensed Euclidean distances (scipy's `pdist`), rows in parallel.
fn pdist(data: &[f64], n: usize, d: usize) -> Result<Vec<f64>, HierarchicalError> {
    let mut out = vec![0.0; n * (n - 1) / 2];
    // Split the condensed matrix into its rows (row i holds the pairs (i, j > i)).
    let mut rows: Vec<(usize, &mut [f64])> = Vec::with_capacity(n);
    let mut rest = out.as_mut_slice();
    for i in 0..n.saturating_sub(1) {
        let (row, tail) = rest.split_at_mut(n - 1 - i);
        rows.push((i, row));
        rest = tail;
    }
    // Squared distances this large overflow in Ward's update (which squares them).
    const TOO_FAR: f64 = 1e290;
    let overflow = rows
        .par_iter_mut()
        .with_min_len(8)
        .filter_map(|(i, row)| {
            let xi = &data[*i * d..(*i + 1) * d];
            let mut bad = None;
            for (j, (o, xj)) in row
                .iter_mut()
                .zip(data[(*i + 1) * d..].chunks_exact(d))
                .enumerate()
            {
                let mut s = 0.0;
                for (a, b) in xi.iter().zip(xj) {
                    let t = a - b;
                    s += t * t;
                }
                if s > TOO_FAR && bad.is_none() {
                    bad = Some((*i, *i + 1 + j));
                }
                *o = s.sqrt();
            }
            bad
        })
        .min();
    if let Some((a, b)) = overflow {
        return Err(HierarchicalError::Overflow { a, b });
    }
    Ok(out)
}

/// The full merge tree of the rows of `data` (row-major `n × d`), as scipy's
/// `linkage(data, method)`: `n − 1` merges sorted by distance (stable), leaves `0..n`,
/// merge `j` creating node `n + j`. One row gives no merges.
pub fn linkage(data: &[f64], d: usize, method: Linkage) -> Result<Vec<Merge>, HierarchicalError> {
    let n = check_data(data, d)?;
    if n == 1 {
        return Ok(Vec::new());
    }
    let mut dist = pdist(data, n, d)?;
    let at = |i: usize, j: usize| {
        if i < j {
            condensed(n, i, j)
        } else {
            condensed(n, j, i)
        }
    };
    let mut size = vec![1usize; n];
    // Live clusters in increasing order, as a doubly linked list (scipy scans 0..n and
    // skips the dead ones; this visits the same clusters in the same order).
    const NONE: usize = usize::MAX;
    let mut next: Vec<usize> = (1..=n).map(|i| if i == n { NONE } else { i }).collect();
    let mut prev: Vec<usize> = (0..n).map(|i| if i == 0 { NONE } else { i - 1 }).collect();
    let mut head = 0usize;
    let mut chain: Vec<usize> = Vec::with_capacity(n);
    let mut merges: Vec<Merge> = Vec::with_capacity(n - 1);
    for _ in 0..n - 1 {
        if chain.is_empty() {
            chain.push(head);
        }
        let (x, y, d_xy) = loop {
            let x = chain[chain.len() - 1];
            let before = (chain.len() > 1).then(|| chain[chain.len() - 2]);
            let (mut y, mut best) = match before {
                Some(b) => (b, dist[at(x, b)]),
                None => (NONE, f64::INFINITY),
            };
            let mut i = head;
            while i != NONE {
                if i != x {
                    let v = dist[at(x, i)];
                    if v < best {
                        best = v;
                        y = i;
                    }
                }
                i = next[i];
            }
            if y == NONE {
                // Only reachable with infinite distances, which pdist rejects.
                y = if head == x { next[x] } else { head };
                best = dist[at(x, y)];
            }
            if before == Some(y) {
                break (x, y, best);
            }
            chain.push(y);
        };
        chain.truncate(chain.len() - 2);
        let (x, y) = if x > y { (y, x) } else { (x, y) };
        let (nx, ny) = (size[x], size[y]);
        merges.push(Merge {
            a: x,
            b: y,
            distance: d_xy,
            size: nx + ny,
        });
        // x leaves the live list; y becomes the merged cluster.
        size[x] = 0;
        size[y] = nx + ny;
        if prev[x] == NONE {
            head = next[x];
        } else {
            next[prev[x]] = next[x];
        }
        if next[x] != NONE {
            prev[next[x]] = prev[x];
        }
        let mut i = head;
        while i != NONE {
            if i != y {
                let (ix, iy) = (at(i, x), at(i, y));
                dist[iy] = method.update(dist[ix], dist[iy], d_xy, nx, ny, size[i]);
            }
            i = next[i];
        }
    }
    drop(dist);
    // Stable sort by distance (numpy's mergesort), then scipy's relabelling.
    merges.sort_by(|a, b| {
        a.distance
            .partial_cmp(&b.distance)
            .unwrap_or(Ordering::Equal)
    });
    relabel(&mut merges, n);
    Ok(merges)
}

/// scipy's `label`: rewrite the merges (given as pairs of original cluster indices in
/// merge order) into node ids with a union-find.
fn relabel(merges: &mut [Merge], n: usize) {
    let mut parent: Vec<usize> = (0..2 * n - 1).collect();
    let mut sizes = vec![1usize; 2 * n - 1];
    let mut next_label = n;
    let find = |parent: &mut Vec<usize>, mut x: usize| {
        let mut root = x;
        while parent[root] != root {
            root = parent[root];
        }
        while parent[x] != root {
            let p = parent[x];
            parent[x] = root;
            x = p;
        }
        root
    };
    for m in merges.iter_mut() {
        let (rx, ry) = (find(&mut parent, m.a), find(&mut parent, m.b));
        let (a, b) = if rx < ry { (rx, ry) } else { (ry, rx) };
        parent[rx] = next_label;
        parent[ry] = next_label;
        sizes[next_label] = sizes[rx] + sizes[ry];
        m.a = a;
        m.b = b;
        m.size = sizes[next_label];
        next_label += 1;
    }
}

/// The number of clusters a cut gives on a tree of `n` leaves: `k` itself (checked
/// against `n`), or one more than the number of merges at a distance `>= t`.
pub fn cut_k(merges: &[Merge], n: usize, cut: Cut) -> Result<usize, HierarchicalError> {
    if n == 0 {
        return Err(HierarchicalError::Empty);
    }
    if merges.len() + 1 != n {
        return Err(HierarchicalError::BadLinkage {
            got: merges.len(),
            n,
        });
    }
    match cut {
        Cut::K(0) => Err(HierarchicalError::ZeroK),
        Cut::K(k) if k > n => Err(HierarchicalError::KTooLarge { k, n }),
        Cut::K(k) => Ok(k),
        Cut::Distance(t) if !t.is_finite() || t <= 0.0 => Err(HierarchicalError::BadThreshold(t)),
        Cut::Distance(t) => Ok(merges.iter().filter(|m| m.distance >= t).count() + 1),
    }
}

/// Flat clusters from a tree of `n` leaves (as made by [`linkage`]): labels `0..k`
/// numbered in the order of each cluster's first leaf, and the node of each cluster.
pub fn cut(
    merges: &[Merge],
    n: usize,
    cut: Cut,
) -> Result<(Vec<u32>, Vec<usize>), HierarchicalError> {
    let k = cut_k(merges, n, cut)?;
    // Apply the first n − k merges with a union-find whose roots carry node ids.
    let kept = n - k;
    let mut parent: Vec<usize> = (0..n).collect();
    let mut node: Vec<usize> = (0..n).collect();
    // Representative leaf of every node made so far.
    let mut rep: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        let mut root = x;
        while parent[root] != root {
            root = parent[root];
        }
        while parent[x] != root {
            let p = parent[x];
            parent[x] = root;
            x = p;
        }
        root
    }
    for (j, m) in merges[..kept].iter().enumerate() {
        let (ra, rb) = (find(&mut parent, rep[m.a]), find(&mut parent, rep[m.b]));
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        parent[hi] = lo;
        node[lo] = n + j;
        rep.push(lo);
    }
    let mut labels = vec![u32::MAX; n];
    let mut id_of_root = vec![u32::MAX; n];
    let mut nodes = Vec::with_capacity(k);
    for (i, l) in labels.iter_mut().enumerate() {
        let r = find(&mut parent, i);
        if id_of_root[r] == u32::MAX {
            id_of_root[r] = nodes.len() as u32;
            nodes.push(node[r]);
        }
        *l = id_of_root[r];
    }
    Ok((labels, nodes))
}

/// Hierarchical clustering of `data` (row-major `n × d`): the tree of all rows (or of
/// a seeded sample of `max_rows` rows, the others then joining the nearest centroid),
/// cut as `params` says.
pub fn fit(
    data: &[f64],
    d: usize,
    params: &HierarchicalParams,
) -> Result<HierarchicalModel, HierarchicalError> {
    let n = check_data(data, d)?;
    let sample = (n > params.max_rows).then(|| sample_indices(n, params.max_rows, params.seed));
    let m = sample.as_ref().map_or(n, Vec::len);
    if let Cut::K(k) = params.cut {
        if k > m {
            return Err(HierarchicalError::KTooLarge { k, n: m });
        }
    }
    let sub: Vec<f64>;
    let fitted: &[f64] = match &sample {
        Some(idx) => {
            sub = idx
                .iter()
                .flat_map(|&i| data[i * d..(i + 1) * d].iter().copied())
                .collect();
            &sub
        }
        None => data,
    };
    let merges = linkage(fitted, d, params.linkage)?;
    let (sub_labels, cluster_nodes) = cut(&merges, m, params.cut)?;
    let k = cluster_nodes.len();

    // Centroids: the mean of each cluster's clustered rows, summed in row order.
    let mut centroids = vec![0.0; k * d];
    let mut counts = vec![0usize; k];
    for (x, &l) in fitted.chunks_exact(d).zip(&sub_labels) {
        let l = l as usize;
        counts[l] += 1;
        for (c, v) in centroids[l * d..(l + 1) * d].iter_mut().zip(x) {
            *c += v;
        }
    }
    for (c, &cnt) in centroids.chunks_exact_mut(d).zip(&counts) {
        c.iter_mut().for_each(|v| *v /= cnt as f64);
    }

    // Labels of every row: the tree's for clustered rows, the nearest centroid's for
    // the others.
    let mut labels = vec![0u32; n];
    let mut distances = vec![0.0; n];
    match &sample {
        None => labels.copy_from_slice(&sub_labels),
        Some(idx) => {
            let near = Nearest::new(&centroids, k, d);
            const CHUNK: usize = 2048;
            data.par_chunks(CHUNK * d)
                .zip(labels.par_chunks_mut(CHUNK))
                .zip(distances.par_chunks_mut(CHUNK))
                .for_each(|((rows, labs), sq)| near.assign(rows, labs, sq));
            for (&i, &l) in idx.iter().zip(&sub_labels) {
                labels[i] = l;
            }
        }
    }
    distances
        .par_chunks_mut(2048)
        .zip(labels.par_chunks(2048))
        .zip(data.par_chunks(2048 * d))
        .for_each(|((out, labs), rows)| {
            for ((o, &l), x) in out.iter_mut().zip(labs).zip(rows.chunks_exact(d)) {
                let c = &centroids[l as usize * d..(l as usize + 1) * d];
                let s: f64 = x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum();
                *o = s.sqrt();
            }
        });
    let mut sizes = vec![0usize; k];
    for &l in &labels {
        sizes[l as usize] += 1;
    }
    Ok(HierarchicalModel {
        linkage: params.linkage,
        k,
        d,
        labels,
        distances,
        centroids,
        sizes,
        merges,
        cluster_nodes,
        sample,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const ALL: [Linkage; 3] = [Linkage::Ward, Linkage::Average, Linkage::Complete];

    fn points(n: usize, d: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * d).map(|_| rng.random::<f64>() * 10.0).collect()
    }

    /// The textbook O(n³) algorithm on explicit clusters: every step merges the pair
    /// at the smallest linkage distance computed from the rows themselves.
    fn naive(data: &[f64], d: usize, method: Linkage) -> Vec<f64> {
        let n = data.len() / d;
        let row = |i: usize| &data[i * d..(i + 1) * d];
        let dist = |a: usize, b: usize| -> f64 {
            row(a)
                .iter()
                .zip(row(b))
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f64>()
                .sqrt()
        };
        let centroid = |c: &[usize]| -> Vec<f64> {
            let mut m = vec![0.0; d];
            for &i in c {
                for (v, x) in m.iter_mut().zip(row(i)) {
                    *v += x / c.len() as f64;
                }
            }
            m
        };
        let link = |a: &[usize], b: &[usize]| -> f64 {
            match method {
                Linkage::Complete => a
                    .iter()
                    .flat_map(|&i| b.iter().map(move |&j| (i, j)))
                    .map(|(i, j)| dist(i, j))
                    .fold(0.0, f64::max),
                Linkage::Average => {
                    a.iter()
                        .flat_map(|&i| b.iter().map(move |&j| (i, j)))
                        .map(|(i, j)| dist(i, j))
                        .sum::<f64>()
                        / (a.len() * b.len()) as f64
                }
                Linkage::Ward => {
                    let (ca, cb) = (centroid(a), centroid(b));
                    let sq: f64 = ca.iter().zip(&cb).map(|(x, y)| (x - y) * (x - y)).sum();
                    let (na, nb) = (a.len() as f64, b.len() as f64);
                    (2.0 * na * nb / (na + nb) * sq).sqrt()
                }
            }
        };
        let mut clusters: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
        let mut out = Vec::new();
        while clusters.len() > 1 {
            let mut best = (f64::INFINITY, 0, 0);
            for a in 0..clusters.len() {
                for b in a + 1..clusters.len() {
                    let v = link(&clusters[a], &clusters[b]);
                    if v < best.0 {
                        best = (v, a, b);
                    }
                }
            }
            let b = clusters.remove(best.2);
            clusters[best.1].extend(b);
            out.push(best.0);
        }
        out
    }

    #[test]
    fn matches_the_textbook_algorithm() {
        for method in ALL {
            for (n, d, seed) in [(2, 1, 1), (7, 2, 2), (40, 3, 3), (61, 1, 4)] {
                let x = points(n, d, seed);
                let z = linkage(&x, d, method).unwrap();
                let want = naive(&x, d, method);
                assert_eq!(z.len(), n - 1);
                for (m, w) in z.iter().zip(&want) {
                    assert!(
                        (m.distance - w).abs() <= 1e-10 * w.max(1.0),
                        "{method:?} n={n}: {} vs {w}",
                        m.distance
                    );
                }
                assert_eq!(z.last().unwrap().size, n);
                // Node ids refer only to earlier nodes.
                for (j, m) in z.iter().enumerate() {
                    assert!(m.a < m.b && m.b < n + j);
                }
            }
        }
    }

    #[test]
    fn cuts_by_k_and_by_distance() {
        // Three tight pairs far apart.
        let x = [0.0, 0.1, 10.0, 10.2, 30.0, 30.4];
        for method in ALL {
            let z = linkage(&x, 1, method).unwrap();
            let (l, nodes) = cut(&z, 6, Cut::K(3)).unwrap();
            assert_eq!(l, vec![0, 0, 1, 1, 2, 2]);
            assert_eq!(nodes, vec![6, 7, 8]);
            let (l, _) = cut(&z, 6, Cut::K(6)).unwrap();
            assert_eq!(l, vec![0, 1, 2, 3, 4, 5]);
            let (l, nodes) = cut(&z, 6, Cut::K(1)).unwrap();
            assert_eq!((l, nodes), (vec![0; 6], vec![10]));
            // Merges strictly below the threshold are kept.
            let (l, _) = cut(&z, 6, Cut::Distance(1.0)).unwrap();
            assert_eq!(l, vec![0, 0, 1, 1, 2, 2]);
            let t = z[1].distance; // the 0.2 pair's distance: that merge is undone
            assert_eq!(cut_k(&z, 6, Cut::Distance(t)).unwrap(), 5);
            assert_eq!(
                cut(&z, 6, Cut::K(7)),
                Err(HierarchicalError::KTooLarge { k: 7, n: 6 })
            );
        }
    }

    #[test]
    fn degenerate_inputs() {
        let p = |c| HierarchicalParams::new(Linkage::Ward, c).unwrap();
        assert_eq!(fit(&[], 2, &p(Cut::K(1))), Err(HierarchicalError::Empty));
        assert_eq!(
            fit(&[1.0, 2.0], 2, &p(Cut::K(2))),
            Err(HierarchicalError::KTooLarge { k: 2, n: 1 })
        );
        assert!(matches!(
            fit(&[1.0, f64::INFINITY], 2, &p(Cut::K(1))),
            Err(HierarchicalError::NotFinite {
                row: 0,
                feature: 1,
                ..
            })
        ));
        assert_eq!(
            fit(&[1.0, 2.0, 3.0], 2, &p(Cut::K(1))),
            Err(HierarchicalError::Shape { len: 3, d: 2 })
        );
        assert_eq!(
            HierarchicalParams::new(Linkage::Ward, Cut::K(0)),
            Err(HierarchicalError::ZeroK)
        );
        assert_eq!(
            HierarchicalParams::new(Linkage::Ward, Cut::Distance(0.0)),
            Err(HierarchicalError::BadThreshold(0.0))
        );
        assert!(matches!(
            linkage(&[1e200, -1e200], 1, Linkage::Ward),
            Err(HierarchicalError::Overflow { a: 0, b: 1 })
        ));
        // One row.
        let m = fit(&[1.0, 2.0], 2, &p(Cut::K(1))).unwrap();
        assert_eq!((m.k, m.labels.clone(), m.merges.len()), (1, vec![0], 0));
        assert_eq!(m.centroids, vec![1.0, 2.0]);
        let m = fit(&[1.0, 2.0], 2, &p(Cut::Distance(1.0))).unwrap();
        assert_eq!(m.k, 1);
        for method in ALL {
            // All rows identical: every merge at 0; k clusters split by the tie rule.
            let same = vec![3.0; 20];
            let z = linkage(&same, 2, method).unwrap();
            assert!(z.iter().all(|m| m.distance == 0.0));
            let q = HierarchicalParams::new(method, Cut::K(3)).unwrap();
            let m = fit(&same, 2, &q).unwrap();
            assert_eq!(m.k, 3);
            assert_eq!(m.sizes.iter().sum::<usize>(), 10);
            assert!(m.distances.iter().all(|&v| v == 0.0));
            let q = HierarchicalParams::new(method, Cut::Distance(0.5)).unwrap();
            assert_eq!(fit(&same, 2, &q).unwrap().k, 1);
        }
    }

    #[test]
    fn samples_above_max_rows_and_assigns_the_rest() {
        // Four separated groups of 500.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut x = Vec::new();
        for i in 0..2000 {
            let g = (i % 4) as f64 * 20.0;
            x.push(g + rng.random::<f64>());
            x.push(-g + rng.random::<f64>());
        }
        let p = HierarchicalParams::new(Linkage::Average, Cut::K(4))
            .unwrap()
            .sample(300, 9)
            .unwrap();
        let m = fit(&x, 2, &p).unwrap();
        assert_eq!(m.clustered_rows(), 300);
        assert_eq!(m.sample.as_ref().unwrap().len(), 300);
        assert_eq!(m.sizes, vec![500; 4]);
        for i in 0..2000 {
            assert_eq!(m.labels[i], m.labels[i % 4]);
            assert!(m.distances[i] < 1.0);
        }
        // Same seed, same result, any thread count.
        let again = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap()
            .install(|| fit(&x, 2, &p).unwrap());
        assert_eq!(m, again);
        assert!(matches!(
            fit(
                &x,
                2,
                &HierarchicalParams::new(Linkage::Ward, Cut::K(301))
                    .unwrap()
                    .sample(300, 0)
                    .unwrap()
            ),
            Err(HierarchicalError::KTooLarge { k: 301, n: 300 })
        ));
    }
}
