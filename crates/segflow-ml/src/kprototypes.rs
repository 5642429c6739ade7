//! k-prototypes clustering of mixed numeric and categorical data (Huang 1997, 1998).
//!
//! Each row has `p` numeric values and `m` categorical codes. A segment's *prototype*
//! is the mean of its rows' numeric values and the mode of each categorical column.
//! The dissimilarity of a row `x` to a prototype `c` is Huang's cost
//!
//! ```text
//! d(x, c) = Σ_a (x_a − c_a)²  +  γ · #{ b : x_b ≠ c_b }
//! ```
//!
//! squared Euclidean distance on the numeric part plus `γ` (gamma) times the simple
//! matching dissimilarity (the number of categorical columns that differ). The cost
//! of a segmentation is the sum of every row's dissimilarity to its prototype.
//!
//! # The algorithm, as the Python `kmodes` package (`KPrototypes`) runs it
//! 1. Starting prototypes ([`KPrototypesInit`]): the categorical part by Huang's method
//!    (each column's value sampled in proportion to its frequency, then each prototype
//!    replaced by the closest row not already a prototype) or Cao's (Cao, Liang & Bai
//!    2009: the densest row first, then each next the row maximising density × the
//!    distance to the nearest chosen one; deterministic); the numeric part is drawn
//!    as `mean + N(0, 1) · std` per column. Or given outright.
//! 2. Every row is assigned to its nearest starting prototype; a start that leaves a
//!    segment empty is drawn again (up to 20 tries, then k distinct random rows; after
//!    100 tries an error). Prototypes become the means and modes of their segments.
//! 3. Iterations, each one pass over the rows in order: a row whose nearest prototype
//!    is not its segment's moves there, and the two prototypes are updated at once
//!    (incremental means and mode counts — Huang's online update, so later rows of the
//!    same pass see the moved prototypes). A pass ends with every row labelled by its
//!    nearest prototype and the cost. Stop when no row moved, when the cost did not
//!    decrease, or after `max_iter` passes.
//! 4. Best of `n_init` runs by cost (the earliest of equal costs).
//!
//! From the same starting prototypes this reproduces `kmodes`' labels and cost
//! (`tests/kprototypes_kmodes.rs`). Points where segflow differs on purpose:
//! - A segment emptied during a pass is re-seeded, as `kmodes` does, with a random row
//!   of the largest segment; `kmodes` then leaves the re-seeded segment's numeric
//!   centre at 0 until a later move, segflow sets it to that row (and updates the
//!   segment it came from).
//! - The random numbers (Huang's sampling, the numeric draws, re-seeding) come from
//!   segflow's own seeded generator, not numpy's.
//! - When every numeric column is constant the default gamma (below) would be 0 and
//!   the categorical columns would be ignored; gamma 1 is used instead
//!   ([`GammaSource::ConstantNumeric`]).
//!
//! # Gamma
//! Unless given, `γ = 0.5 × mean(std)` of the numeric columns (population standard
//! deviations), `kmodes`' default after Huang's advice that γ be of the order of the
//! numeric spread. With standardised numeric columns that is 0.5.
//!
//! # Modes and ties
//! Categorical codes are compared by value: the *smallest* code wins a tie. Starting
//! modes (step 2) and any mode recomputed because its value lost a row are the most
//! frequent value, ties to the smallest code. When a row joins a segment its value
//! becomes that segment's mode only if it is now *strictly* more frequent than the
//! current mode (so an equal count keeps the current mode) — exactly `kmodes`'
//! incremental rule. [`encode_categorical`] numbers text by code-point order and
//! integers numerically, so "smallest code" is "smallest value", as `kmodes` encodes
//! with `np.unique`.
//!
//! # Determinism
//! The passes are sequential (the online update depends on row order); labelling and
//! cost run on fixed 2,048-row chunks in parallel with the per-row costs summed in row
//! order, and the `n_init` runs run in parallel from seeds drawn up front in order.
//! The result is the same for any thread count.
//!
//! # Few distinct rows
//! When the data has at most `k` distinct rows (numeric and categorical together),
//! each distinct row becomes a segment (so fewer than `k` segments) and no iteration
//! runs, as `kmodes` does. [`KPrototypesModel::distinct_rows`] says so.

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, UInt64Type};
use hashbrown::{HashMap, HashSet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Rows per chunk of labelling work (fixed, so nothing depends on the thread count).
const CHUNK_ROWS: usize = 2048;
/// Tries of the chosen initialisation before falling back to distinct random rows.
pub const MAX_INIT_TRIES: usize = 20;
/// Tries in all before giving up.
pub const RAISE_INIT_TRIES: usize = 100;

/// How the starting prototypes are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum KPrototypesInit {
    /// Huang (1998): each categorical column's values sampled in proportion to their
    /// frequency, each prototype then moved to the closest row that is not already a
    /// prototype; numeric part `mean + N(0,1)·std`.
    Huang,
    /// Cao, Liang & Bai (2009): the row of highest density (mean frequency of its
    /// values), then the rows maximising density × distance to the nearest chosen
    /// prototype; numeric part `mean + N(0,1)·std`. `kmodes`' default.
    Cao,
    /// These prototypes: `numeric` row-major `k × p`, `categorical` codes `k × m`.
    /// `n_init` is then 1.
    Given {
        numeric: Vec<f64>,
        categorical: Vec<u32>,
    },
}

/// Where the gamma of a fit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GammaSource {
    /// Given in the parameters.
    Given,
    /// `0.5 × mean std` of the numeric columns.
    Default,
    /// Every numeric column is constant, so the default would be 0: 1 is used.
    ConstantNumeric,
}

impl GammaSource {
    pub fn name(self) -> &'static str {
        match self {
            GammaSource::Given => "given",
            GammaSource::Default => "default",
            GammaSource::ConstantNumeric => "constant_numeric",
        }
    }
}

/// Why k-prototypes cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KPrototypesError {
    #[error("k must be at least 1")]
    ZeroK,
    #[error("k = {k} is more than the {n} rows to cluster; choose k <= {n}")]
    KTooLarge { k: usize, n: usize },
    #[error("there are no rows to cluster")]
    Empty,
    #[error("k-prototypes needs at least one numeric column (with categorical columns only, use k-modes)")]
    NoNumeric,
    #[error("k-prototypes needs at least one categorical column (with numeric columns only, use k-means)")]
    NoCategorical,
    #[error("the numeric data has {numeric} values and the categorical data {categorical}, which are not the same number of rows of {p} and {m} columns")]
    Shape {
        numeric: usize,
        categorical: usize,
        p: usize,
        m: usize,
    },
    #[error("row {row}, numeric column {column} is {value}; k-prototypes needs finite numbers (impute or drop missing values first)")]
    NotFinite {
        row: usize,
        column: usize,
        value: f64,
    },
    #[error("max_iter must be at least 1")]
    ZeroIter,
    #[error("n_init must be at least 1")]
    ZeroInit,
    #[error("gamma must be finite and >= 0, got {0}")]
    BadGamma(f64),
    #[error("the given prototypes have {numeric} numeric and {categorical} categorical values, expected k × p = {want_numeric} and k × m = {want_categorical}")]
    BadInit {
        numeric: usize,
        categorical: usize,
        want_numeric: usize,
        want_categorical: usize,
    },
    #[error("the given numeric prototypes must be finite numbers")]
    BadInitValue,
    #[error("could not find {k} starting prototypes that each attract a row in {tries} tries: too few distinct rows for k = {k} (gamma = {gamma}); lower k")]
    NoStart { k: usize, tries: usize, gamma: f64 },
}

/// Settings, validated by [`KPrototypesParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct KPrototypesParams {
    pub k: usize,
    /// Weight of the categorical part; `None`: `0.5 × mean std` of the numeric columns.
    pub gamma: Option<f64>,
    pub init: KPrototypesInit,
    pub n_init: usize,
    pub max_iter: usize,
    pub seed: u64,
}

impl KPrototypesParams {
    /// `kmodes`' defaults: Cao's start, 10 runs, 100 passes, gamma from the data; seed 0.
    pub fn new(k: usize) -> Self {
        KPrototypesParams {
            k,
            gamma: None,
            init: KPrototypesInit::Cao,
            n_init: 10,
            max_iter: 100,
            seed: 0,
        }
    }
    pub fn gamma(mut self, gamma: Option<f64>) -> Self {
        self.gamma = gamma;
        self
    }
    pub fn init(mut self, init: KPrototypesInit) -> Self {
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
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Check the settings against data of `p` numeric and `m` categorical columns.
    pub fn check(&self, p: usize, m: usize) -> Result<(), KPrototypesError> {
        if self.k == 0 {
            return Err(KPrototypesError::ZeroK);
        }
        if self.max_iter == 0 {
            return Err(KPrototypesError::ZeroIter);
        }
        if self.n_init == 0 {
            return Err(KPrototypesError::ZeroInit);
        }
        if let Some(g) = self.gamma {
            if !g.is_finite() || g < 0.0 {
                return Err(KPrototypesError::BadGamma(g));
            }
        }
        if let KPrototypesInit::Given {
            numeric,
            categorical,
        } = &self.init
        {
            if numeric.len() != self.k * p || categorical.len() != self.k * m {
                return Err(KPrototypesError::BadInit {
                    numeric: numeric.len(),
                    categorical: categorical.len(),
                    want_numeric: self.k * p,
                    want_categorical: self.k * m,
                });
            }
            if numeric.iter().any(|v| !v.is_finite()) {
                return Err(KPrototypesError::BadInitValue);
            }
        }
        Ok(())
    }
}

/// Mixed data: `numeric` row-major `n × p`, `categorical` codes row-major `n × m`.
#[derive(Debug, Clone, Copy)]
pub struct MixedData<'a> {
    pub numeric: &'a [f64],
    pub p: usize,
    pub categorical: &'a [u32],
    pub m: usize,
}

impl<'a> MixedData<'a> {
    pub fn new(numeric: &'a [f64], p: usize, categorical: &'a [u32], m: usize) -> Self {
        MixedData {
            numeric,
            p,
            categorical,
            m,
        }
    }

    /// Validate the shapes and values; returns the number of rows.
    pub fn check(&self) -> Result<usize, KPrototypesError> {
        if self.p == 0 {
            return Err(KPrototypesError::NoNumeric);
        }
        if self.m == 0 {
            return Err(KPrototypesError::NoCategorical);
        }
        let shape = KPrototypesError::Shape {
            numeric: self.numeric.len(),
            categorical: self.categorical.len(),
            p: self.p,
            m: self.m,
        };
        if !self.numeric.len().is_multiple_of(self.p)
            || !self.categorical.len().is_multiple_of(self.m)
        {
            return Err(shape);
        }
        let n = self.numeric.len() / self.p;
        if self.categorical.len() / self.m != n {
            return Err(shape);
        }
        if n == 0 {
            return Err(KPrototypesError::Empty);
        }
        if let Some(i) = self.numeric.iter().position(|v| !v.is_finite()) {
            return Err(KPrototypesError::NotFinite {
                row: i / self.p,
                column: i % self.p,
                value: self.numeric[i],
            });
        }
        Ok(n)
    }
}

/// A fitted k-prototypes model.
#[derive(Debug, Clone, PartialEq)]
pub struct KPrototypesModel {
    /// Number of segments (fewer than asked when there are fewer distinct rows).
    pub k: usize,
    pub p: usize,
    pub m: usize,
    /// Numeric prototypes, row-major `k × p`.
    pub numeric: Vec<f64>,
    /// Categorical prototypes (modes), codes as given, row-major `k × m`.
    pub categorical: Vec<u32>,
    /// Segment of each row (its nearest final prototype), `0..k`.
    pub labels: Vec<u32>,
    /// Each row's dissimilarity to its prototype.
    pub row_cost: Vec<f64>,
    /// Sum of `row_cost` (in row order).
    pub cost: f64,
    pub gamma: f64,
    pub gamma_source: GammaSource,
    /// Passes run by the kept run.
    pub n_iter: usize,
    /// Whether the kept run stopped before `max_iter` (no row moved, or the cost
    /// stopped decreasing; also when there were at most `k` distinct rows).
    pub converged: bool,
    /// Cost after the start and after each pass of the kept run.
    pub epoch_costs: Vec<f64>,
    /// Final cost of every run, in order.
    pub cost_per_init: Vec<f64>,
    /// Passes of every run, in order.
    pub n_iter_per_init: Vec<usize>,
    /// Starting draws the kept run needed (1 unless a start left a segment empty).
    pub init_tries: usize,
    /// `Some(d)` when the data has only `d <= k` distinct rows, each made a segment.
    pub distinct_rows: Option<usize>,
}

/// `0.5 ×` the mean population standard deviation of the numeric columns.
pub fn default_gamma(numeric: &[f64], p: usize) -> f64 {
    let (_, sd) = mean_std(numeric, p);
    0.5 * (sd.iter().sum::<f64>() / p as f64)
}

/// Per-column mean and population standard deviation (numpy's `mean`, `std`).
fn mean_std(x: &[f64], p: usize) -> (Vec<f64>, Vec<f64>) {
    let n = (x.len() / p).max(1) as f64;
    let mut mean = vec![0.0; p];
    for row in x.chunks_exact(p) {
        for (s, v) in mean.iter_mut().zip(row) {
            *s += v;
        }
    }
    mean.iter_mut().for_each(|s| *s /= n);
    let mut var = vec![0.0; p];
    for row in x.chunks_exact(p) {
        for ((s, v), mu) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - mu) * (v - mu);
        }
    }
    let sd = var.iter().map(|s| (s / n).sqrt()).collect();
    (mean, sd)
}

/// A standard normal draw (Marsaglia's polar method).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    loop {
        let u: f64 = rng.random::<f64>() * 2.0 - 1.0;
        let v: f64 = rng.random::<f64>() * 2.0 - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * s.ln() / s).sqrt();
        }
    }
}

/// The data with categorical codes renumbered `0..cardinality` per column (order
/// kept), and the per-column offsets into a flat count table.
struct Prepared<'a> {
    x: &'a [f64],
    c: Vec<u32>,
    n: usize,
    p: usize,
    m: usize,
    /// `offsets[b]`: start of column `b`'s counts; `offsets[m]`: total.
    offsets: Vec<usize>,
    /// Original code of each compact code, per column.
    decode: Vec<Vec<u32>>,
    gamma: f64,
}

impl<'a> Prepared<'a> {
    fn new(data: &MixedData<'a>, n: usize, gamma: f64) -> Self {
        let (p, m) = (data.p, data.m);
        let mut c = vec![0u32; n * m];
        let mut offsets = Vec::with_capacity(m + 1);
        let mut decode = Vec::with_capacity(m);
        let mut total = 0usize;
        for b in 0..m {
            let mut values: Vec<u32> = (0..n).map(|i| data.categorical[i * m + b]).collect();
            values.sort_unstable();
            values.dedup();
            let map: HashMap<u32, u32> = values
                .iter()
                .enumerate()
                .map(|(j, &v)| (v, j as u32))
                .collect();
            for i in 0..n {
                c[i * m + b] = map[&data.categorical[i * m + b]];
            }
            offsets.push(total);
            total += values.len();
            decode.push(values);
        }
        offsets.push(total);
        Prepared {
            x: data.numeric,
            c,
            n,
            p,
            m,
            offsets,
            decode,
            gamma,
        }
    }

    fn num(&self, i: usize) -> &[f64] {
        &self.x[i * self.p..(i + 1) * self.p]
    }
    fn cat(&self, i: usize) -> &[u32] {
        &self.c[i * self.m..(i + 1) * self.m]
    }

    /// Huang's dissimilarity of row `i` to prototype `j`.
    #[inline]
    fn dissim(&self, i: usize, pn: &[f64], pc: &[u32], j: usize) -> f64 {
        let (p, m) = (self.p, self.m);
        let mut num = 0.0;
        for (c, x) in pn[j * p..(j + 1) * p].iter().zip(self.num(i)) {
            let t = c - x;
            num += t * t;
        }
        let cat = pc[j * m..(j + 1) * m]
            .iter()
            .zip(self.cat(i))
            .filter(|(a, b)| a != b)
            .count();
        num + self.gamma * cat as f64
    }

    /// The nearest prototype of row `i` (the lowest index of equal ones) and its
    /// dissimilarity.
    #[inline]
    fn nearest(&self, i: usize, pn: &[f64], pc: &[u32], k: usize) -> (usize, f64) {
        let mut best = (0, self.dissim(i, pn, pc, 0));
        for j in 1..k {
            let d = self.dissim(i, pn, pc, j);
            if d < best.1 {
                best = (j, d);
            }
        }
        best
    }

    /// Label every row by its nearest prototype; the per-row costs and their sum in
    /// row order.
    fn labels_cost(&self, pn: &[f64], pc: &[u32], k: usize) -> (Vec<u32>, Vec<f64>, f64) {
        let mut labels = vec![0u32; self.n];
        let mut costs = vec![0.0; self.n];
        labels
            .par_chunks_mut(CHUNK_ROWS)
            .zip(costs.par_chunks_mut(CHUNK_ROWS))
            .enumerate()
            .for_each(|(ch, (l, c))| {
                let base = ch * CHUNK_ROWS;
                for (r, (l, c)) in l.iter_mut().zip(c.iter_mut()).enumerate() {
                    let (j, d) = self.nearest(base + r, pn, pc, k);
                    *l = j as u32;
                    *c = d;
                }
            });
        let mut total = 0.0;
        for c in &costs {
            total += c;
        }
        (labels, costs, total)
    }

    fn rows_equal(&self, a: usize, pn: &[f64], pc: &[u32], j: usize) -> bool {
        self.num(a) == &pn[j * self.p..(j + 1) * self.p]
            && self.cat(a) == &pc[j * self.m..(j + 1) * self.m]
    }

    /// The distinct rows in first-occurrence order, or `None` once there are more
    /// than `k`.
    fn distinct_rows(&self, k: usize) -> Option<Vec<usize>> {
        let mut seen: HashSet<(Vec<u64>, &[u32])> = HashSet::new();
        let mut rows = Vec::new();
        for i in 0..self.n {
            // -0.0 and 0.0 are the same value.
            let bits = self.num(i).iter().map(|v| (v + 0.0).to_bits()).collect();
            if seen.insert((bits, self.cat(i))) {
                rows.push(i);
                if rows.len() > k {
                    return None;
                }
            }
        }
        Some(rows)
    }

    /// Numeric starting prototypes: `mean + N(0,1)·std` per column, `k × p` draws in
    /// row-major order.
    fn random_numeric(&self, k: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
        let (mean, sd) = mean_std(self.x, self.p);
        let mut out = Vec::with_capacity(k * self.p);
        for _ in 0..k {
            for a in 0..self.p {
                out.push(mean[a] + normal(rng) * sd[a]);
            }
        }
        out
    }

    /// Matching dissimilarity of row `i`'s categories to `proto`.
    fn cat_dissim(&self, i: usize, proto: &[u32]) -> usize {
        self.cat(i)
            .iter()
            .zip(proto)
            .filter(|(a, b)| a != b)
            .count()
    }

    /// Cao's categorical starting prototypes (compact codes), deterministic.
    fn cao(&self, k: usize) -> Vec<u32> {
        let (n, m) = (self.n, self.m);
        let mut dens = vec![0.0f64; n];
        for b in 0..m {
            let mut freq = vec![0u64; self.offsets[b + 1] - self.offsets[b]];
            for i in 0..n {
                freq[self.c[i * m + b] as usize] += 1;
            }
            for (i, d) in dens.iter_mut().enumerate() {
                *d += freq[self.c[i * m + b] as usize] as f64 / n as f64 / m as f64;
            }
        }
        let argmax = |v: &mut dyn Iterator<Item = f64>| -> usize {
            let mut best = (0, f64::NEG_INFINITY);
            for (i, x) in v.enumerate() {
                if x > best.1 {
                    best = (i, x);
                }
            }
            best.0
        };
        let mut protos = Vec::with_capacity(k * m);
        let first = argmax(&mut dens.iter().copied());
        protos.extend_from_slice(self.cat(first));
        let mut min_d = vec![usize::MAX; n];
        for ik in 1..k {
            let last = protos[(ik - 1) * m..ik * m].to_vec();
            for (i, md) in min_d.iter_mut().enumerate() {
                *md = (*md).min(self.cat_dissim(i, &last));
            }
            let pick = argmax(&mut (0..n).map(|i| min_d[i] as f64 * dens[i]));
            protos.extend_from_slice(self.cat(pick));
        }
        protos
    }

    /// Huang's categorical starting prototypes (compact codes).
    fn huang(&self, k: usize, rng: &mut ChaCha8Rng) -> Vec<u32> {
        let (n, m) = (self.n, self.m);
        let mut protos = vec![0u32; k * m];
        for b in 0..m {
            let mut col: Vec<u32> = (0..n).map(|i| self.c[i * m + b]).collect();
            col.sort_unstable();
            for j in 0..k {
                protos[j * m + b] = col[rng.random_range(0..n)];
            }
        }
        // Each prototype becomes the closest row (lowest index among equals) that is
        // not already a prototype; if every row is one, the farthest (last) row.
        let mut dist = vec![0usize; n];
        for ik in 0..k {
            let target = protos[ik * m..(ik + 1) * m].to_vec();
            for (i, d) in dist.iter_mut().enumerate() {
                *d = self.cat_dissim(i, &target);
            }
            let is_proto = |i: usize| (0..k).any(|j| self.cat(i) == &protos[j * m..(j + 1) * m]);
            let mut pick = None;
            'buckets: for want in 0..=m {
                for (i, &d) in dist.iter().enumerate() {
                    if d == want && !is_proto(i) {
                        pick = Some(i);
                        break 'buckets;
                    }
                }
            }
            let pick = pick.unwrap_or_else(|| {
                (0..n)
                    .max_by_key(|&i| (dist[i], i))
                    .expect("at least one row")
            });
            let row = self.cat(pick).to_vec();
            protos[ik * m..(ik + 1) * m].copy_from_slice(&row);
        }
        protos
    }

    /// `k` distinct rows at random (numeric and categorical parts).
    fn distinct_random(&self, k: usize, rng: &mut ChaCha8Rng) -> (Vec<f64>, Vec<u32>) {
        let mut order: Vec<usize> = (0..self.n).collect();
        for i in (1..order.len()).rev() {
            let j = rng.random_range(0..=i);
            order.swap(i, j);
        }
        let mut pn = Vec::with_capacity(k * self.p);
        let mut pc = Vec::with_capacity(k * self.m);
        let mut chosen = 0;
        for &i in &order {
            if chosen == k {
                break;
            }
            if (0..chosen).any(|j| self.rows_equal(i, &pn, &pc, j)) {
                continue;
            }
            pn.extend_from_slice(self.num(i));
            pc.extend_from_slice(self.cat(i));
            chosen += 1;
        }
        // Fewer than k distinct rows cannot happen here (handled before), but keep the
        // shapes right regardless.
        while chosen < k {
            pn.extend_from_slice(self.num(order[0]));
            pc.extend_from_slice(self.cat(order[0]));
            chosen += 1;
        }
        (pn, pc)
    }
}

/// The running state of one k-prototypes run.
struct State {
    k: usize,
    /// `k × p` numeric prototypes, `k × m` categorical prototypes (compact codes).
    pn: Vec<f64>,
    pc: Vec<u32>,
    member: Vec<u32>,
    attr_sum: Vec<f64>,
    memb_sum: Vec<f64>,
    /// `k × total cardinality` value counts.
    freq: Vec<u64>,
}

impl State {
    /// Assign every row to its nearest starting prototype and compute the means and
    /// modes; `None` when a segment gets no row.
    fn start(d: &Prepared, k: usize, pn: Vec<f64>, pc: Vec<u32>) -> Option<State> {
        let (p, m) = (d.p, d.m);
        let total = d.offsets[m];
        let mut s = State {
            k,
            pn,
            pc,
            member: vec![0; d.n],
            attr_sum: vec![0.0; k * p],
            memb_sum: vec![0.0; k],
            freq: vec![0; k * total],
        };
        for i in 0..d.n {
            let (j, _) = d.nearest(i, &s.pn, &s.pc, k);
            s.member[i] = j as u32;
            s.memb_sum[j] += 1.0;
            for (a, x) in d.num(i).iter().enumerate() {
                s.attr_sum[j * p + a] += x;
            }
            for (b, &v) in d.cat(i).iter().enumerate() {
                s.freq[j * total + d.offsets[b] + v as usize] += 1;
            }
        }
        if s.memb_sum.contains(&0.0) {
            return None;
        }
        for j in 0..k {
            for a in 0..p {
                s.pn[j * p + a] = s.attr_sum[j * p + a] / s.memb_sum[j];
            }
            for b in 0..m {
                s.pc[j * m + b] = s.mode(d, j, b);
            }
        }
        Some(s)
    }

    /// The most frequent value of column `b` in segment `j`, ties to the smallest.
    fn mode(&self, d: &Prepared, j: usize, b: usize) -> u32 {
        let total = d.offsets[d.m];
        let counts = &self.freq[j * total + d.offsets[b]..j * total + d.offsets[b + 1]];
        let mut best = (0usize, 0u64);
        for (v, &c) in counts.iter().enumerate() {
            if c > best.1 {
                best = (v, c);
            }
        }
        best.0 as u32
    }

    fn count(&self, d: &Prepared, j: usize, b: usize, v: u32) -> u64 {
        self.freq[j * d.offsets[d.m] + d.offsets[b] + v as usize]
    }

    /// Move row `i` from segment `from` to `to`: sums, counts and modes (`kmodes`'
    /// `_move_point_num` and `_move_point_cat`).
    fn move_row(&mut self, d: &Prepared, i: usize, to: usize, from: usize) {
        let (p, m) = (d.p, d.m);
        let total = d.offsets[m];
        for (a, x) in d.num(i).iter().enumerate() {
            self.attr_sum[to * p + a] += x;
            self.attr_sum[from * p + a] -= x;
        }
        self.memb_sum[to] += 1.0;
        self.memb_sum[from] -= 1.0;
        self.member[i] = to as u32;
        for (b, &v) in d.cat(i).iter().enumerate() {
            self.freq[to * total + d.offsets[b] + v as usize] += 1;
            let mode_to = self.pc[to * m + b];
            if self.count(d, to, b, mode_to) < self.count(d, to, b, v) {
                self.pc[to * m + b] = v;
            }
            self.freq[from * total + d.offsets[b] + v as usize] -= 1;
            if self.pc[from * m + b] == v {
                self.pc[from * m + b] = self.mode(d, from, b);
            }
        }
    }

    fn update_mean(&mut self, p: usize, j: usize) {
        for a in 0..p {
            self.pn[j * p + a] = if self.memb_sum[j] != 0.0 {
                self.attr_sum[j * p + a] / self.memb_sum[j]
            } else {
                0.0
            };
        }
    }

    /// One pass over the rows in order; returns the number of moves.
    fn pass(&mut self, d: &Prepared, rng: &mut ChaCha8Rng) -> usize {
        let p = d.p;
        let mut moves = 0;
        for i in 0..d.n {
            let (to, _) = d.nearest(i, &self.pn, &self.pc, self.k);
            let from = self.member[i] as usize;
            if to == from {
                continue;
            }
            moves += 1;
            self.move_row(d, i, to, from);
            self.update_mean(p, to);
            self.update_mean(p, from);
            if self.memb_sum[from] == 0.0 {
                // Re-seed the emptied segment with a random row of the largest one.
                let mut big = 0;
                for j in 1..self.k {
                    if self.memb_sum[j] > self.memb_sum[big] {
                        big = j;
                    }
                }
                let members: Vec<usize> = (0..d.n)
                    .filter(|&r| self.member[r] as usize == big)
                    .collect();
                let r = members[rng.random_range(0..members.len())];
                self.move_row(d, r, from, big);
                self.update_mean(p, from);
                self.update_mean(p, big);
            }
        }
        moves
    }
}

/// What one run produced (compact codes).
struct RunResult {
    pn: Vec<f64>,
    pc: Vec<u32>,
    labels: Vec<u32>,
    costs: Vec<f64>,
    cost: f64,
    n_iter: usize,
    converged: bool,
    epoch_costs: Vec<f64>,
    tries: usize,
}

/// How a run starts.
enum Start<'s> {
    Huang,
    /// Cao's categorical prototypes (computed once for every run).
    Cao(&'s [u32]),
    Given(&'s [f64], &'s [u32]),
}

fn run(
    d: &Prepared,
    k: usize,
    start: &Start,
    max_iter: usize,
    seed: u64,
) -> Result<RunResult, KPrototypesError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut state = None;
    let mut tries = 0;
    while tries < RAISE_INIT_TRIES {
        tries += 1;
        let (pn, pc) = match start {
            _ if tries > MAX_INIT_TRIES => d.distinct_random(k, &mut rng),
            Start::Given(pn, pc) if tries == 1 => (pn.to_vec(), pc.to_vec()),
            // A given start that leaves a segment empty: distinct random rows.
            Start::Given(..) => d.distinct_random(k, &mut rng),
            Start::Huang => {
                let pc = d.huang(k, &mut rng);
                (d.random_numeric(k, &mut rng), pc)
            }
            Start::Cao(pc) => (d.random_numeric(k, &mut rng), pc.to_vec()),
        };
        if let Some(s) = State::start(d, k, pn, pc) {
            state = Some(s);
            break;
        }
    }
    let Some(mut s) = state else {
        return Err(KPrototypesError::NoStart {
            k,
            tries,
            gamma: d.gamma,
        });
    };
    let (mut labels, mut costs, mut cost) = d.labels_cost(&s.pn, &s.pc, k);
    let mut epoch_costs = vec![cost];
    let mut itr = 0;
    // No passes at all (each distinct row its own segment): nothing left to move.
    let mut converged = max_iter == 0;
    while itr < max_iter && !converged {
        itr += 1;
        let moves = s.pass(d, &mut rng);
        let (l, c, ncost) = d.labels_cost(&s.pn, &s.pc, k);
        converged = moves == 0 || ncost >= cost;
        epoch_costs.push(ncost);
        (labels, costs, cost) = (l, c, ncost);
    }
    Ok(RunResult {
        pn: s.pn,
        pc: s.pc,
        labels,
        costs,
        cost,
        n_iter: itr,
        converged,
        epoch_costs,
        tries,
    })
}

/// Fit k-prototypes to `data`.
pub fn fit(
    data: &MixedData,
    params: &KPrototypesParams,
) -> Result<KPrototypesModel, KPrototypesError> {
    let n = data.check()?;
    params.check(data.p, data.m)?;
    let (p, m) = (data.p, data.m);
    if params.k > n {
        return Err(KPrototypesError::KTooLarge { k: params.k, n });
    }
    let (gamma, gamma_source) = match params.gamma {
        Some(g) => (g, GammaSource::Given),
        None => match default_gamma(data.numeric, p) {
            g if g > 0.0 => (g, GammaSource::Default),
            _ => (1.0, GammaSource::ConstantNumeric),
        },
    };
    let d = Prepared::new(data, n, gamma);
    // Given categorical prototypes in compact codes; a value that no row has matches
    // no row (it gets a code past the column's values) and is replaced by the
    // segment's mode at the start.
    let given = match &params.init {
        KPrototypesInit::Given {
            numeric,
            categorical,
        } => {
            let pc = categorical
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let col = &d.decode[i % m];
                    col.binary_search(v).map(|c| c as u32).unwrap_or(u32::MAX)
                })
                .collect::<Vec<_>>();
            Some((numeric.clone(), pc))
        }
        _ => None,
    };

    let distinct = d.distinct_rows(params.k);
    let (k, n_init, max_iter, cao, given) = match &distinct {
        Some(rows) => {
            let pn = rows.iter().flat_map(|&i| d.num(i).to_vec()).collect();
            let pc = rows.iter().flat_map(|&i| d.cat(i).to_vec()).collect();
            (rows.len(), 1, 0, None, Some((pn, pc)))
        }
        None => {
            let cao = matches!(params.init, KPrototypesInit::Cao).then(|| d.cao(params.k));
            let n_init = if given.is_some() { 1 } else { params.n_init };
            (params.k, n_init, params.max_iter, cao, given)
        }
    };
    let start = match (&given, &cao, &params.init) {
        (Some((pn, pc)), _, _) => Start::Given(pn, pc),
        (None, Some(c), _) => Start::Cao(c),
        _ => Start::Huang,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let seeds: Vec<u64> = (0..n_init).map(|_| rng.random::<u64>()).collect();
    let runs: Vec<Result<RunResult, KPrototypesError>> = seeds
        .par_iter()
        .map(|&s| run(&d, k, &start, max_iter, s))
        .collect();
    let mut best: Option<RunResult> = None;
    let mut cost_per_init = Vec::with_capacity(n_init);
    let mut n_iter_per_init = Vec::with_capacity(n_init);
    for r in runs {
        let r = r?;
        cost_per_init.push(r.cost);
        n_iter_per_init.push(r.n_iter);
        // Strictly lower wins, so the earliest of equal runs is kept.
        if best.as_ref().is_none_or(|b| r.cost < b.cost) {
            best = Some(r);
        }
    }
    let best = best.expect("n_init >= 1");
    let categorical = best
        .pc
        .iter()
        .enumerate()
        .map(|(i, &c)| d.decode[i % m][c as usize])
        .collect();
    Ok(KPrototypesModel {
        k,
        p,
        m,
        numeric: best.pn,
        categorical,
        labels: best.labels,
        row_cost: best.costs,
        cost: best.cost,
        gamma,
        gamma_source,
        n_iter: best.n_iter,
        converged: best.converged,
        epoch_costs: best.epoch_costs,
        cost_per_init,
        n_iter_per_init,
        init_tries: best.tries,
        distinct_rows: distinct.map(|r| r.len()),
    })
}

/// Cao's categorical starting prototypes for `k` segments (codes as given, `k × m`):
/// deterministic, the start [`KPrototypesInit::Cao`] uses (with `kmodes`' tie rule: the
/// first row of equal scores).
pub fn cao_prototypes(data: &MixedData, k: usize) -> Result<Vec<u32>, KPrototypesError> {
    let n = data.check()?;
    if k == 0 {
        return Err(KPrototypesError::ZeroK);
    }
    if k > n {
        return Err(KPrototypesError::KTooLarge { k, n });
    }
    let d = Prepared::new(data, n, 1.0);
    Ok(d.cao(k)
        .iter()
        .enumerate()
        .map(|(i, &c)| d.decode[i % data.m][c as usize])
        .collect())
}

/// A categorical column numbered for [`fit`]: `codes[i]` is row `i`'s value as an
/// index into `values`, which are sorted (text by code point, integers numerically,
/// `false` before `true`) so that the smallest code is the smallest value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Categories {
    pub codes: Vec<u32>,
    pub values: Vec<String>,
}

/// Why a column cannot be used as categorical.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CategoriesError {
    #[error("the value at row {row} is null; k-prototypes needs a value in every categorical column (impute a value such as \"unknown\" first)")]
    Null { row: usize },
    #[error("type {0} is not categorical: use a text, dictionary, integer or boolean column")]
    Type(DataType),
    #[error("reading the column: {0}")]
    Cast(String),
}

fn number<K: Ord + std::hash::Hash + Clone>(keys: Vec<K>) -> (Vec<u32>, Vec<K>) {
    let mut distinct: Vec<K> = keys
        .iter()
        .cloned()
        .collect::<HashSet<K>>()
        .into_iter()
        .collect();
    distinct.sort_unstable();
    let codes = {
        let map: HashMap<&K, u32> = distinct
            .iter()
            .enumerate()
            .map(|(i, v)| (v, i as u32))
            .collect();
        keys.iter().map(|k| map[k]).collect()
    };
    (codes, distinct)
}

/// Number a text, dictionary, integer or boolean column for [`fit`].
pub fn encode_categorical(array: &dyn Array) -> Result<Categories, CategoriesError> {
    if let Some(row) = (0..array.len()).find(|&i| array.is_null(i)) {
        return Err(CategoriesError::Null { row });
    }
    let t = array.data_type();
    let cast_err = |e: arrow::error::ArrowError| CategoriesError::Cast(e.to_string());
    let textual = matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean
    ) || matches!(t, DataType::Dictionary(_, v) if matches!(v.as_ref(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View));
    let signed = matches!(
        t,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
    );
    let unsigned = matches!(
        t,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64
    );
    let dict_int = matches!(t, DataType::Dictionary(_, v) if v.is_integer());
    if signed || (dict_int && !matches!(t, DataType::Dictionary(_, v) if v.is_unsigned_integer())) {
        let a = cast(array, &DataType::Int64).map_err(cast_err)?;
        let (codes, values) = number(a.as_primitive::<Int64Type>().values().to_vec());
        return Ok(Categories {
            codes,
            values: values.iter().map(|v| v.to_string()).collect(),
        });
    }
    if unsigned || dict_int {
        let a = cast(array, &DataType::UInt64).map_err(cast_err)?;
        let (codes, values) = number(a.as_primitive::<UInt64Type>().values().to_vec());
        return Ok(Categories {
            codes,
            values: values.iter().map(|v| v.to_string()).collect(),
        });
    }
    if textual {
        let a = cast(array, &DataType::Utf8).map_err(cast_err)?;
        let s = a.as_string::<i32>();
        let (codes, values) = number((0..s.len()).map(|i| s.value(i)).collect());
        return Ok(Categories {
            codes,
            values: values.into_iter().map(str::to_string).collect(),
        });
    }
    Err(CategoriesError::Type(t.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, DictionaryArray, Int32Array, StringArray};
    use arrow::datatypes::Int8Type;

    /// Three groups: numeric blobs with a matching region.
    fn mixed(n_per: usize) -> (Vec<f64>, Vec<u32>) {
        let mut x = Vec::new();
        let mut c = Vec::new();
        let mut s = 7u64;
        let mut u = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        for g in 0..3u32 {
            for _ in 0..n_per {
                x.push(g as f64 * 5.0 + u() - 0.5);
                x.push(-(g as f64) * 3.0 + u() - 0.5);
                c.push(if u() < 0.9 { g } else { (g + 1) % 3 });
                c.push((u() * 2.0) as u32);
            }
        }
        (x, c)
    }

    #[test]
    fn recovers_mixed_groups_for_any_thread_count() {
        let (x, c) = mixed(60);
        let data = MixedData::new(&x, 2, &c, 2);
        for init in [KPrototypesInit::Huang, KPrototypesInit::Cao] {
            let p = KPrototypesParams::new(3).init(init.clone()).seed(3);
            let one = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap()
                .install(|| fit(&data, &p).unwrap());
            let three = rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .unwrap()
                .install(|| fit(&data, &p).unwrap());
            assert_eq!(one, three);
            let truth: Vec<u32> = (0..180).map(|i| i / 60).collect();
            let ari = crate::metrics::adjusted_rand_index(&truth, &one.labels).unwrap();
            assert!(ari > 0.95, "{init:?}: ARI {ari}");
            assert_eq!(one.gamma_source, GammaSource::Default);
            assert!((one.cost - one.row_cost.iter().sum::<f64>()).abs() < 1e-9);
            assert_eq!(one.cost_per_init.len(), 10);
        }
    }

    #[test]
    fn few_distinct_rows_become_the_segments() {
        let x = [1.0, 1.0, 2.0, 1.0, 1.0];
        let c = [0, 0, 1, 0, 0];
        let m = fit(&MixedData::new(&x, 1, &c, 1), &KPrototypesParams::new(3)).unwrap();
        assert_eq!(m.k, 2);
        assert_eq!(m.distinct_rows, Some(2));
        assert_eq!(m.labels, vec![0, 0, 1, 0, 0]);
        assert_eq!(m.cost, 0.0);
        assert_eq!(m.n_iter, 0);
        // All identical: one segment.
        let m = fit(
            &MixedData::new(&[4.0; 3], 1, &[2; 3], 1),
            &KPrototypesParams::new(2),
        )
        .unwrap();
        assert_eq!((m.k, m.labels.clone()), (1, vec![0, 0, 0]));
        assert_eq!(m.gamma_source, GammaSource::ConstantNumeric);
        assert_eq!(m.categorical, vec![2]);
    }

    #[test]
    fn constant_numeric_columns_fall_back_to_gamma_one() {
        let x = [0.0; 6];
        let c = [0, 0, 0, 1, 1, 1];
        let m = fit(
            &MixedData::new(&x, 1, &c, 1),
            &KPrototypesParams::new(2).init(KPrototypesInit::Huang),
        );
        // Two distinct rows, k = 2: each a segment.
        let m = m.unwrap();
        assert_eq!(m.gamma, 1.0);
        assert_eq!(m.labels, vec![0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn modes_tie_to_the_smallest_value() {
        // One segment: values 3 and 1 twice each; the mode is 1.
        let x = [0.0, 1.0, 2.0, 3.0, 4.0];
        let c = [3, 1, 3, 1, 7];
        let m = fit(
            &MixedData::new(&x, 1, &c, 1),
            &KPrototypesParams::new(1).n_init(1),
        )
        .unwrap();
        assert_eq!(m.categorical, vec![1]);
        assert_eq!(m.numeric, vec![2.0]);
    }

    #[test]
    fn errors() {
        let x = [0.0, 1.0];
        let c = [0, 1];
        let d = MixedData::new(&x, 1, &c, 1);
        let e = |p: KPrototypesParams| fit(&d, &p).unwrap_err();
        assert_eq!(e(KPrototypesParams::new(0)), KPrototypesError::ZeroK);
        assert_eq!(
            e(KPrototypesParams::new(3)),
            KPrototypesError::KTooLarge { k: 3, n: 2 }
        );
        assert_eq!(
            e(KPrototypesParams::new(1).gamma(Some(-1.0))),
            KPrototypesError::BadGamma(-1.0)
        );
        assert_eq!(
            e(KPrototypesParams::new(1).max_iter(0)),
            KPrototypesError::ZeroIter
        );
        assert!(matches!(
            e(KPrototypesParams::new(2).init(KPrototypesInit::Given {
                numeric: vec![0.0],
                categorical: vec![0, 1]
            })),
            KPrototypesError::BadInit { .. }
        ));
        let nan = [0.0, f64::NAN];
        assert!(matches!(
            fit(&MixedData::new(&nan, 1, &c, 1), &KPrototypesParams::new(1)),
            Err(KPrototypesError::NotFinite { row: 1, .. })
        ));
        assert_eq!(
            fit(&MixedData::new(&[], 1, &[], 1), &KPrototypesParams::new(1)),
            Err(KPrototypesError::Empty)
        );
        assert_eq!(
            fit(&MixedData::new(&x, 1, &[], 0), &KPrototypesParams::new(1)),
            Err(KPrototypesError::NoCategorical)
        );
        assert!(matches!(
            fit(&MixedData::new(&x, 1, &[0], 1), &KPrototypesParams::new(1)),
            Err(KPrototypesError::Shape { .. })
        ));
    }

    #[test]
    fn encodes_text_integers_dictionaries_and_booleans() {
        let s = StringArray::from(vec!["b", "a", "é", "b"]);
        let e = encode_categorical(&s).unwrap();
        assert_eq!(e.values, vec!["a", "b", "é"]);
        assert_eq!(e.codes, vec![1, 0, 2, 1]);
        let i = Int32Array::from(vec![10, 9, -1, 10]);
        let e = encode_categorical(&i).unwrap();
        assert_eq!(e.values, vec!["-1", "9", "10"]);
        assert_eq!(e.codes, vec![2, 1, 0, 2]);
        let d: DictionaryArray<Int8Type> = vec!["x", "w", "x"].into_iter().collect();
        let e = encode_categorical(&d).unwrap();
        assert_eq!(
            (e.values.clone(), e.codes),
            (vec!["w".into(), "x".into()], vec![1, 0, 1])
        );
        let b = BooleanArray::from(vec![true, false]);
        assert_eq!(
            encode_categorical(&b).unwrap().values,
            vec!["false", "true"]
        );
        let n = StringArray::from(vec![Some("a"), None]);
        assert_eq!(
            encode_categorical(&n).unwrap_err(),
            CategoriesError::Null { row: 1 }
        );
        let f = arrow::array::Float64Array::from(vec![1.0]);
        assert!(matches!(
            encode_categorical(&f).unwrap_err(),
            CategoriesError::Type(_)
        ));
    }
}
