//! CART classification trees (Breiman et al. 1984) with Gini impurity, as
//! scikit-learn's `DecisionTreeClassifier(criterion="gini")` grows them, for explaining
//! segments by readable rules.
//!
//! - A node is split on the feature and threshold that most decrease the weighted Gini
//!   impurity of its two children, over every feature and every threshold, and a row
//!   goes left when `x <= threshold`. Between two consecutive distinct observed values
//!   `a < b` scikit-learn puts the threshold at the midpoint; this tree takes the
//!   shortest decimal in `[a, b)` instead (`610.4` rather than `610.4000000000001`,
//!   `19` rather than `19.5` between whole days). Both send every observed row the same
//!   way, so the trees, predictions and importances are the same; only the printed rule
//!   reads better.
//! - Ties between equally good splits go to the lowest feature index, then the lowest
//!   threshold. Split quality is compared in exact integer arithmetic (the Gini decrease
//!   is a ratio of class-count sums), so the tree does not depend on rounding, the
//!   thread count or the order of the rows.
//! - A node becomes a leaf when it is pure, at `max_depth`, smaller than
//!   `min_samples_split`, smaller than `2·min_samples_leaf`, or when no split (leaving at
//!   least `min_samples_leaf` rows on each side) decreases the impurity. That last rule
//!   differs from scikit-learn, which also makes splits that decrease nothing; on data
//!   where every split it makes decreases the impurity and the best split of every node
//!   is unique, the trees are identical (`tests/cart_sklearn.rs`, fixtures from
//!   `tests/fixtures/make_cart_fixture.py`). A constant feature is never split on.
//! - A leaf predicts its most frequent class (the lowest class on a tie).
//! - Feature importances are scikit-learn's `feature_importances_`: each split's
//!   decrease `n·gini − n_l·gini_l − n_r·gini_r`, summed per feature and normalised to
//!   sum to 1 (all zero for a tree without splits).
//!
//! [`Cart::rules`] reads the tree as one rule per leaf: the conditions on its path with
//! repeated conditions on a feature merged into the tightest bounds (`a <= 5` then
//! `a <= 3` is `a <= 3`; `a > 2` then `a <= 3` is `a > 2 and a <= 3`, which the `rules` segmenter's
//! condition language reads as it is).
//!
//! Fitting sorts each node's rows once per feature: `O(d·n log n)` per level, features
//! in parallel (rayon; the result does not depend on the thread count). Besides the
//! data, memory is at most `n` row indices plus one sorted copy of a node's feature per
//! busy thread (12 bytes a row).

use rayon::prelude::*;
use std::fmt::Write as _;

/// Largest accepted `max_depth`: the trees are meant to be read.
pub const MAX_DEPTH: usize = 8;

/// Most rows [`fit`] accepts: split quality is compared exactly in 128-bit integers,
/// which holds up to 2^25 rows.
pub const MAX_ROWS: usize = 1 << 25;

/// Why a tree cannot be fitted or applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CartError {
    #[error("max_depth must be between 1 and {MAX_DEPTH}, got {0}")]
    MaxDepth(usize),
    #[error("min_samples_leaf must be at least 1")]
    MinSamplesLeaf,
    #[error("min_samples_split must be at least 2, got {0}")]
    MinSamplesSplit(usize),
    #[error("there are no rows to fit")]
    Empty,
    #[error("the data has no features (0 columns)")]
    NoFeatures,
    #[error("the data has {len} values, which is not a whole number of rows of {d} features")]
    Shape { len: usize, d: usize },
    #[error("the tree was fitted on {fitted} features but the data has {d}")]
    FeatureCount { fitted: usize, d: usize },
    #[error("row {row}, column {column} is {value}; the tree needs finite numbers (impute or drop missing values first)")]
    NotFinite {
        row: usize,
        column: usize,
        value: f64,
    },
    #[error("there are {rows} rows but {labels} labels; give one label per row")]
    Labels { rows: usize, labels: usize },
    #[error("n_classes must be at least 1")]
    NoClasses,
    #[error("row {row} has label {label}, but labels must be below n_classes = {n_classes}")]
    Label {
        row: usize,
        label: u32,
        n_classes: usize,
    },
    #[error("the data has {0} rows; a tree is fitted on at most {MAX_ROWS} (fit on a sample)")]
    TooManyRows(usize),
}

/// Tree settings. [`CartParams::check`] (called by [`fit`]) validates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartParams {
    /// Most splits from the root to a leaf, `1..=8` (default 3).
    pub max_depth: usize,
    /// Fewest rows in a leaf, at least 1 (default 1).
    pub min_samples_leaf: usize,
    /// Fewest rows a node needs to be split, at least 2 (default 2).
    pub min_samples_split: usize,
}

impl Default for CartParams {
    fn default() -> Self {
        CartParams {
            max_depth: 3,
            min_samples_leaf: 1,
            min_samples_split: 2,
        }
    }
}

impl CartParams {
    /// The defaults: depth 3, one row per leaf, two rows to split.
    pub fn new() -> Self {
        Self::default()
    }
    pub fn max_depth(mut self, v: usize) -> Self {
        self.max_depth = v;
        self
    }
    pub fn min_samples_leaf(mut self, v: usize) -> Self {
        self.min_samples_leaf = v;
        self
    }
    pub fn min_samples_split(mut self, v: usize) -> Self {
        self.min_samples_split = v;
        self
    }
    /// Check every setting.
    pub fn check(&self) -> Result<(), CartError> {
        if !(1..=MAX_DEPTH).contains(&self.max_depth) {
            return Err(CartError::MaxDepth(self.max_depth));
        }
        if self.min_samples_leaf == 0 {
            return Err(CartError::MinSamplesLeaf);
        }
        if self.min_samples_split < 2 {
            return Err(CartError::MinSamplesSplit(self.min_samples_split));
        }
        Ok(())
    }
}

/// How a node ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NodeKind {
    /// A leaf.
    Leaf,
    /// Rows with `x[feature] <= threshold` go to `left`, the others to `right` (node
    /// indices).
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
}

/// One node of a fitted tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    /// Training rows in the node.
    pub samples: usize,
    /// Training rows of each class.
    pub counts: Vec<usize>,
    /// Gini impurity `1 − Σ p_k²` of the training rows.
    pub impurity: f64,
    /// Splits from the root (the root is 0).
    pub depth: usize,
}

impl Node {
    /// The class the node predicts: the most frequent, the lowest on a tie.
    pub fn class(&self) -> u32 {
        argmax(&self.counts)
    }
}

/// Bounds on one feature along a leaf's path: `lower < x <= upper`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    pub feature: usize,
    /// Exclusive lower bound (`x > lower`).
    pub lower: Option<f64>,
    /// Inclusive upper bound (`x <= upper`).
    pub upper: Option<f64>,
}

impl Condition {
    /// The condition as text, with `name` for the feature: `a <= 3`, `a > 2` or
    /// `a > 2 and a <= 3` (the condition language of the `rules` segmenter). Numbers are printed by [`format_number`]; a name that is not a plain
    /// identifier is written in backticks.
    pub fn text(&self, name: &str) -> String {
        let name = column_name(name);
        match (self.lower, self.upper) {
            (Some(l), Some(u)) => format!(
                "{name} > {} and {name} <= {}",
                format_number(l),
                format_number(u)
            ),
            (Some(l), None) => format!("{name} > {}", format_number(l)),
            (None, Some(u)) => format!("{name} <= {}", format_number(u)),
            (None, None) => "true".to_string(),
        }
    }

    /// True when `x` (the feature's value) satisfies the bounds.
    pub fn holds(&self, x: f64) -> bool {
        self.lower.is_none_or(|l| x > l) && self.upper.is_none_or(|u| x <= u)
    }
}

/// One leaf read as a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The leaf's node index (as [`Cart::apply`] returns).
    pub node: usize,
    /// The merged conditions, one per feature, in the order the features first appear
    /// on the path from the root. Empty for a tree without splits.
    pub conditions: Vec<Condition>,
    /// The predicted class.
    pub class: u32,
    /// Training rows in the leaf.
    pub samples: usize,
    /// Training rows of each class in the leaf.
    pub counts: Vec<usize>,
    /// Splits on the path (before merging).
    pub depth: usize,
}

impl Rule {
    /// The rule as text, `names[f]` naming feature `f`: the conditions joined by
    /// ` and `, or `true` when there are none.
    pub fn text(&self, names: &[&str]) -> String {
        if self.conditions.is_empty() {
            return "true".to_string();
        }
        let mut s = String::new();
        for (i, c) in self.conditions.iter().enumerate() {
            if i > 0 {
                s.push_str(" and ");
            }
            let fallback = format!("x{}", c.feature);
            let name = names.get(c.feature).copied().unwrap_or(&fallback);
            let _ = write!(s, "{}", c.text(name));
        }
        s
    }
}

/// A number as the shortest text that reads back as the same `f64`: plain decimals
/// (`34.5`, `3`, `-0.25`) for magnitudes in `[1e-4, 1e16)` and zero, exponent notation
/// (`1.5e-7`, `2e20`) otherwise.
pub fn format_number(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".to_string()
    } else if (1e-4..1e16).contains(&a) || !a.is_finite() {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

fn column_name(name: &str) -> String {
    const KEYWORDS: [&str; 8] = ["and", "or", "not", "in", "is", "null", "true", "false"];
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name));
    if plain {
        name.to_string()
    } else {
        format!("`{name}`")
    }
}

/// A fitted tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Cart {
    /// The nodes in depth-first order, left child first; node 0 is the root.
    pub nodes: Vec<Node>,
    pub n_features: usize,
    pub n_classes: usize,
    importances: Vec<f64>,
}

fn argmax(counts: &[usize]) -> u32 {
    let mut best = 0;
    for (k, &c) in counts.iter().enumerate() {
        if c > counts[best] {
            best = k;
        }
    }
    best as u32
}

fn gini(counts: &[usize], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let sq: f64 = counts.iter().map(|&c| (c as f64) * (c as f64)).sum();
    1.0 - sq / ((n as f64) * (n as f64))
}

fn check_matrix(data: &[f64], d: usize) -> Result<usize, CartError> {
    if d == 0 {
        return Err(CartError::NoFeatures);
    }
    if !data.len().is_multiple_of(d) {
        return Err(CartError::Shape { len: data.len(), d });
    }
    if let Some(p) = data.iter().position(|v| !v.is_finite()) {
        return Err(CartError::NotFinite {
            row: p / d,
            column: p % d,
            value: data[p],
        });
    }
    Ok(data.len() / d)
}

/// A candidate split's quality `Σ_k l_k²/n_l + Σ_k r_k²/n_r` as the exact fraction
/// `num / den` (larger is better; the Gini decrease is this minus `Σ_k c_k²/n`, over n).
#[derive(Debug, Clone, Copy)]
struct Score {
    num: u128,
    den: u128,
}

impl Score {
    fn new(a: u64, nl: u64, b: u64, nr: u64) -> Score {
        Score {
            num: a as u128 * nr as u128 + b as u128 * nl as u128,
            den: nl as u128 * nr as u128,
        }
    }
    fn better_than(&self, o: &Score) -> bool {
        self.num * o.den > o.num * self.den
    }
}

#[derive(Debug, Clone, Copy)]
struct Split {
    feature: usize,
    threshold: f64,
    score: Score,
}

/// The best split of `rows` (whose class counts' squares sum to `total_sq`) on feature
/// `f`, ties to the lowest threshold.
fn best_on_feature(b: &Builder, rows: &[u32], f: usize, total_sq: u64) -> Option<Split> {
    let (data, d, labels, k) = (b.data, b.d, b.labels, b.k);
    let min_leaf = b.params.min_samples_leaf;
    let m = rows.len();
    let mut v: Vec<(f64, u32)> = rows
        .iter()
        .map(|&r| (data[r as usize * d + f], labels[r as usize]))
        .collect();
    v.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    if v[0].0 >= v[m - 1].0 {
        return None; // constant in this node
    }
    let mut left = vec![0u64; k];
    let mut right = vec![0u64; k];
    for &(_, c) in &v {
        right[c as usize] += 1;
    }
    let (mut a, mut b) = (0u64, total_sq);
    let mut best: Option<Split> = None;
    for p in 1..m {
        let c = v[p - 1].1 as usize;
        a += 2 * left[c] + 1;
        left[c] += 1;
        b -= 2 * right[c] - 1;
        right[c] -= 1;
        if p < min_leaf || m - p < min_leaf {
            continue;
        }
        let (lo, hi) = (v[p - 1].0, v[p].0);
        if lo >= hi {
            continue;
        }
        let score = Score::new(a, p as u64, b, (m - p) as u64);
        if best.is_none_or(|s| score.better_than(&s.score)) {
            best = Some(Split {
                feature: f,
                threshold: short_threshold(lo, hi),
                score,
            });
        }
    }
    best
}

/// The shortest decimal `t` with `lo <= t < hi` (fewest significant digits; the
/// smallest such number of that length): a threshold that splits the observed values
/// exactly as the midpoint does and reads well in a rule (`monetary_sum <= 610.4`
/// rather than `610.4000000000001`, `recency_days <= 19` rather than `19.5`).
fn short_threshold(lo: f64, hi: f64) -> f64 {
    for p in -15i32..=17 {
        let c = if p >= 0 {
            let scale = 10f64.powi(p);
            let c = (lo * scale).ceil() / scale;
            // round-trip through the decimal text to land on the f64 nearest to it
            format!("{c:.*}", p as usize).parse().unwrap_or(c)
        } else {
            let scale = 10f64.powi(-p);
            (lo / scale).ceil() * scale
        };
        if lo <= c && c < hi {
            return c;
        }
    }
    let t = lo / 2.0 + hi / 2.0;
    if lo <= t && t < hi {
        t
    } else {
        lo
    }
}

struct Builder<'a> {
    data: &'a [f64],
    d: usize,
    labels: &'a [u32],
    k: usize,
    params: CartParams,
    nodes: Vec<Node>,
    importances: Vec<f64>,
}

impl Builder<'_> {
    fn build(&mut self, rows: Vec<u32>, depth: usize) -> usize {
        let n = rows.len();
        let mut counts = vec![0usize; self.k];
        for &r in &rows {
            counts[self.labels[r as usize] as usize] += 1;
        }
        let impurity = gini(&counts, n);
        let id = self.nodes.len();
        self.nodes.push(Node {
            kind: NodeKind::Leaf,
            samples: n,
            counts: counts.clone(),
            impurity,
            depth,
        });
        let pure = counts.iter().filter(|&&c| c > 0).count() <= 1;
        if pure
            || depth >= self.params.max_depth
            || n < self.params.min_samples_split
            || n < 2 * self.params.min_samples_leaf
        {
            return id;
        }
        let total_sq: u64 = counts.iter().map(|&c| (c as u64) * (c as u64)).sum();
        let (data, d) = (self.data, self.d);
        let this = &*self;
        let per_feature: Vec<Option<Split>> = (0..d)
            .into_par_iter()
            .map(|f| best_on_feature(this, &rows, f, total_sq))
            .collect();
        let mut best: Option<Split> = None;
        for s in per_feature.into_iter().flatten() {
            if best.is_none_or(|b| s.score.better_than(&b.score)) {
                best = Some(s);
            }
        }
        let Some(best) = best else { return id };
        // Leaf unless the split decreases the impurity: score > Σc²/n.
        let parent = Score {
            num: total_sq as u128,
            den: n as u128,
        };
        if !best.score.better_than(&parent) {
            return id;
        }
        let (l, r): (Vec<u32>, Vec<u32>) = rows
            .iter()
            .partition(|&&i| data[i as usize * d + best.feature] <= best.threshold);
        drop(rows);
        let (nl, nr) = (l.len(), r.len());
        let left = self.build(l, depth + 1);
        let right = self.build(r, depth + 1);
        let (il, ir) = (self.nodes[left].impurity, self.nodes[right].impurity);
        self.importances[best.feature] += n as f64 * impurity - nl as f64 * il - nr as f64 * ir;
        self.nodes[id].kind = NodeKind::Split {
            feature: best.feature,
            threshold: best.threshold,
            left,
            right,
        };
        id
    }
}

/// Fit a tree on `data`, `n` rows of `d` features in row-major order (finite values),
/// predicting `labels` (`0..n_classes`, one per row).
pub fn fit(
    data: &[f64],
    d: usize,
    labels: &[u32],
    n_classes: usize,
    params: &CartParams,
) -> Result<Cart, CartError> {
    params.check()?;
    let n = check_matrix(data, d)?;
    if n == 0 {
        return Err(CartError::Empty);
    }
    if n > MAX_ROWS {
        return Err(CartError::TooManyRows(n));
    }
    if labels.len() != n {
        return Err(CartError::Labels {
            rows: n,
            labels: labels.len(),
        });
    }
    if n_classes == 0 {
        return Err(CartError::NoClasses);
    }
    if let Some(row) = labels.iter().position(|&l| l as usize >= n_classes) {
        return Err(CartError::Label {
            row,
            label: labels[row],
            n_classes,
        });
    }
    let mut b = Builder {
        data,
        d,
        labels,
        k: n_classes,
        params: *params,
        nodes: Vec::new(),
        importances: vec![0.0; d],
    };
    b.build((0..n as u32).collect(), 0);
    let total: f64 = b.importances.iter().sum();
    if total > 0.0 {
        for v in &mut b.importances {
            *v /= total;
        }
    }
    Ok(Cart {
        nodes: b.nodes,
        n_features: d,
        n_classes,
        importances: b.importances,
    })
}

impl Cart {
    fn check(&self, data: &[f64], d: usize) -> Result<usize, CartError> {
        if d != self.n_features {
            return Err(CartError::FeatureCount {
                fitted: self.n_features,
                d,
            });
        }
        check_matrix(data, d)
    }

    /// The leaf (node index) a row of `n_features` values falls in.
    pub fn leaf_of(&self, row: &[f64]) -> usize {
        let mut i = 0;
        while let NodeKind::Split {
            feature,
            threshold,
            left,
            right,
        } = self.nodes[i].kind
        {
            i = if row[feature] <= threshold {
                left
            } else {
                right
            };
        }
        i
    }

    /// The leaf of every row (scikit-learn's `apply`).
    pub fn apply(&self, data: &[f64], d: usize) -> Result<Vec<usize>, CartError> {
        self.check(data, d)?;
        Ok(data
            .par_chunks(d)
            .with_min_len(4096)
            .map(|row| self.leaf_of(row))
            .collect())
    }

    /// The predicted class of every row.
    pub fn predict(&self, data: &[f64], d: usize) -> Result<Vec<u32>, CartError> {
        Ok(self
            .apply(data, d)?
            .into_iter()
            .map(|leaf| self.nodes[leaf].class())
            .collect())
    }

    /// Share of rows whose predicted class is their label ("fidelity" when the labels
    /// are the segments the tree explains).
    pub fn accuracy(&self, data: &[f64], d: usize, labels: &[u32]) -> Result<f64, CartError> {
        let pred = self.predict(data, d)?;
        if labels.len() != pred.len() {
            return Err(CartError::Labels {
                rows: pred.len(),
                labels: labels.len(),
            });
        }
        if pred.is_empty() {
            return Err(CartError::Empty);
        }
        let hits = pred.iter().zip(labels).filter(|(p, l)| p == l).count();
        Ok(hits as f64 / pred.len() as f64)
    }

    /// Normalised total Gini decrease per feature (sums to 1, or all 0 without splits).
    pub fn feature_importances(&self) -> &[f64] {
        &self.importances
    }

    /// The deepest leaf's depth (0 for a single leaf).
    pub fn depth(&self) -> usize {
        self.nodes.iter().map(|n| n.depth).max().unwrap_or(0)
    }

    /// Number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Leaf)
            .count()
    }

    /// One rule per leaf, in node order (left before right).
    pub fn rules(&self) -> Vec<Rule> {
        let mut out = Vec::new();
        let mut path: Vec<Condition> = Vec::new();
        self.walk(0, &mut path, &mut out);
        out
    }

    fn walk(&self, i: usize, path: &mut Vec<Condition>, out: &mut Vec<Rule>) {
        let node = &self.nodes[i];
        match node.kind {
            NodeKind::Leaf => out.push(Rule {
                node: i,
                conditions: path.clone(),
                class: node.class(),
                samples: node.samples,
                counts: node.counts.clone(),
                depth: node.depth,
            }),
            NodeKind::Split {
                feature,
                threshold,
                left,
                right,
            } => {
                for (child, go_left) in [(left, true), (right, false)] {
                    let saved = path.clone();
                    let pos = match path.iter().position(|c| c.feature == feature) {
                        Some(p) => p,
                        None => {
                            path.push(Condition {
                                feature,
                                lower: None,
                                upper: None,
                            });
                            path.len() - 1
                        }
                    };
                    let c = &mut path[pos];
                    if go_left {
                        c.upper = Some(c.upper.map_or(threshold, |u| u.min(threshold)));
                    } else {
                        c.lower = Some(c.lower.map_or(threshold, |l| l.max(threshold)));
                    }
                    self.walk(child, path, out);
                    *path = saved;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(cols: &[&[f64]]) -> (Vec<f64>, usize) {
        let n = cols[0].len();
        let d = cols.len();
        let mut v = Vec::with_capacity(n * d);
        for r in 0..n {
            for c in cols {
                v.push(c[r]);
            }
        }
        (v, d)
    }

    #[test]
    fn params_are_checked() {
        let data = [1.0, 2.0];
        let y = [0, 1];
        for (p, e) in [
            (CartParams::new().max_depth(0), CartError::MaxDepth(0)),
            (CartParams::new().max_depth(9), CartError::MaxDepth(9)),
            (
                CartParams::new().min_samples_leaf(0),
                CartError::MinSamplesLeaf,
            ),
            (
                CartParams::new().min_samples_split(1),
                CartError::MinSamplesSplit(1),
            ),
        ] {
            assert_eq!(p.check(), Err(e.clone()));
            assert_eq!(fit(&data, 1, &y, 2, &p), Err(e));
        }
        assert_eq!(CartParams::default().check(), Ok(()));
    }

    #[test]
    fn bad_data_is_an_error() {
        let p = CartParams::new();
        assert_eq!(fit(&[], 1, &[], 2, &p), Err(CartError::Empty));
        assert_eq!(fit(&[1.0], 0, &[0], 2, &p), Err(CartError::NoFeatures));
        assert_eq!(
            fit(&[1.0, 2.0, 3.0], 2, &[0], 2, &p),
            Err(CartError::Shape { len: 3, d: 2 })
        );
        assert!(matches!(
            fit(&[1.0, 2.0, 3.0, f64::NAN], 2, &[0, 1], 2, &p),
            Err(CartError::NotFinite { row: 1, column: 1, value }) if value.is_nan()
        ));
        let e = fit(&[1.0, 2.0, f64::INFINITY, 4.0], 2, &[0, 1], 2, &p).unwrap_err();
        assert!(e.to_string().contains("row 1, column 0 is inf"), "{e}");
        assert_eq!(
            fit(&[1.0, 2.0], 1, &[0], 2, &p),
            Err(CartError::Labels { rows: 2, labels: 1 })
        );
        assert_eq!(
            fit(&[1.0, 2.0], 1, &[0, 2], 2, &p),
            Err(CartError::Label {
                row: 1,
                label: 2,
                n_classes: 2
            })
        );
        assert_eq!(fit(&[1.0], 1, &[0], 0, &p), Err(CartError::NoClasses));
        let t = fit(&[1.0, 2.0], 1, &[0, 1], 2, &p).unwrap();
        assert_eq!(
            t.predict(&[1.0, 2.0], 2),
            Err(CartError::FeatureCount { fitted: 1, d: 2 })
        );
    }

    #[test]
    fn a_pure_node_is_a_leaf() {
        let (x, d) = matrix(&[&[1.0, 2.0, 3.0, 10.0, 11.0, 12.0]]);
        let y = [0, 0, 0, 1, 1, 1];
        let t = fit(&x, d, &y, 2, &CartParams::new().max_depth(5)).unwrap();
        assert_eq!(t.nodes.len(), 3);
        assert_eq!(
            t.nodes[0].kind,
            NodeKind::Split {
                feature: 0,
                threshold: 3.0,
                left: 1,
                right: 2
            }
        );
        assert_eq!(t.depth(), 1);
        assert_eq!(t.predict(&x, d).unwrap(), y);
        assert_eq!(t.accuracy(&x, d, &y).unwrap(), 1.0);
        assert_eq!(t.feature_importances(), &[1.0]);
        let rules = t.rules();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].text(&["a"]), "a <= 3");
        assert_eq!(rules[1].text(&["a"]), "a > 3");
        assert_eq!((rules[1].class, rules[1].samples), (1, 3));
        assert_eq!(rules[1].counts, vec![0, 3]);
    }

    #[test]
    fn a_constant_feature_is_never_split_on() {
        let c = [7.0; 8];
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let (x, d) = matrix(&[&c, &a, &c]);
        let y = [0, 0, 1, 0, 1, 1, 1, 0];
        let t = fit(&x, d, &y, 2, &CartParams::new().max_depth(8)).unwrap();
        for n in &t.nodes {
            if let NodeKind::Split { feature, .. } = n.kind {
                assert_eq!(feature, 1);
            }
        }
        let fi = t.feature_importances();
        assert_eq!((fi[0], fi[2]), (0.0, 0.0));
        assert!((fi[1] - 1.0).abs() < 1e-15);
        assert_eq!(t.accuracy(&x, d, &y).unwrap(), 1.0);
        // Only a constant feature: a single leaf.
        let (x, d) = matrix(&[&c]);
        let t = fit(&x, d, &y, 2, &CartParams::new()).unwrap();
        assert_eq!(t.nodes.len(), 1);
        assert_eq!(t.rules()[0].text(&["c"]), "true");
        assert_eq!(t.feature_importances(), &[0.0]);
        assert_eq!(t.rules()[0].class, 0); // 4 and 4: the lowest class
    }

    #[test]
    fn one_class_is_one_leaf() {
        let (x, d) = matrix(&[&[1.0, 5.0, 3.0], &[2.0, 0.0, 9.0]]);
        let t = fit(&x, d, &[0, 0, 0], 1, &CartParams::new()).unwrap();
        assert_eq!(t.n_leaves(), 1);
        assert_eq!(t.depth(), 0);
        let r = t.rules();
        assert_eq!(r.len(), 1);
        assert!(r[0].conditions.is_empty());
        assert_eq!((r[0].class, r[0].samples, r[0].depth), (0, 3, 0));
        assert_eq!(t.accuracy(&x, d, &[0, 0, 0]).unwrap(), 1.0);
        assert_eq!(t.feature_importances(), &[0.0, 0.0]);
    }

    #[test]
    fn depth_one_is_a_stump_on_the_best_feature() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 2.0, 3.0, 10.0, 11.0, 12.0];
        let y = [0, 1, 0, 1, 1, 1];
        let (x, d) = matrix(&[&a, &b]);
        let t = fit(&x, d, &y, 2, &CartParams::new().max_depth(1)).unwrap();
        assert_eq!(t.depth(), 1);
        assert_eq!(t.n_leaves(), 2);
        // Candidates: both features order the rows alike, so their splits tie; the
        // lowest feature wins, then the lowest threshold among equal scores.
        match t.nodes[0].kind {
            NodeKind::Split {
                feature, threshold, ..
            } => assert_eq!((feature, threshold), (0, 3.0)),
            k => panic!("{k:?}"),
        }
        assert_eq!(t.rules()[1].text(&["a", "b"]), "a > 3");
    }

    #[test]
    fn ties_go_to_the_lowest_threshold() {
        // Splitting after row 1 or after row 3 scores the same.
        let a = [1.0, 2.0, 3.0, 4.0];
        let y = [0, 1, 1, 0];
        let t = fit(&a, 1, &y, 2, &CartParams::new().max_depth(1)).unwrap();
        match t.nodes[0].kind {
            NodeKind::Split { threshold, .. } => assert_eq!(threshold, 1.0),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn thresholds_are_the_shortest_decimal_in_the_gap() {
        assert_eq!(super::short_threshold(610.39, 610.41), 610.4);
        assert_eq!(super::short_threshold(19.0, 20.0), 19.0);
        assert_eq!(super::short_threshold(0.12345678, 0.1239), 0.1235);
        assert_eq!(super::short_threshold(0.1234, 0.1239), 0.1234);
        assert_eq!(super::short_threshold(-2.5, -2.4), -2.5);
        assert_eq!(super::short_threshold(1234.0, 1300.0), 1240.0);
        assert_eq!(super::short_threshold(1201.0, 1300.0), 1210.0);
        assert_eq!(super::short_threshold(0.0, 1e-9), 0.0);
        let (lo, hi) = (1.0, 1.0 + f64::EPSILON);
        assert_eq!(super::short_threshold(lo, hi), 1.0);
    }

    #[test]
    fn no_improving_split_means_a_leaf() {
        // Both halves of every split keep the classes 50/50.
        let a = [1.0, 2.0, 3.0, 4.0];
        let y = [0, 1, 1, 0];
        let t = fit(&a, 1, &y, 2, &CartParams::new().min_samples_leaf(2)).unwrap();
        assert_eq!(t.n_leaves(), 1);
    }

    #[test]
    fn min_samples_leaf_and_split_are_respected() {
        let a: Vec<f64> = (0..20).map(|i| i as f64).collect();
        let y: Vec<u32> = (0..20).map(|i| u32::from(i >= 2)).collect();
        let t = fit(&a, 1, &y, 2, &CartParams::new().min_samples_leaf(5)).unwrap();
        assert!(t.rules().iter().all(|r| r.samples >= 5));
        let t = fit(&a, 1, &y, 2, &CartParams::new().min_samples_split(21)).unwrap();
        assert_eq!(t.n_leaves(), 1);
    }

    #[test]
    fn rules_merge_repeated_conditions() {
        // Class 1 lives in (2, 3]; the paths to it and to class 0 test `a` twice.
        let a = [0.0, 1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0];
        let y = [0, 0, 0, 1, 1, 2, 2, 2, 2];
        let t = fit(&a, 1, &y, 3, &CartParams::new().max_depth(3)).unwrap();
        assert_eq!(t.accuracy(&a, 1, &y).unwrap(), 1.0);
        let texts: Vec<String> = t.rules().iter().map(|r| r.text(&["a"])).collect();
        assert_eq!(texts, ["a <= 2", "a > 2 and a <= 3", "a > 3"]);
        let r = &t.rules()[1];
        assert_eq!((r.class, r.depth, r.samples), (1, 2, 2));
        for r in t.rules() {
            for (i, &v) in a.iter().enumerate() {
                let inside = r.conditions.iter().all(|c| c.holds(v));
                assert_eq!(inside, t.leaf_of(&[v]) == r.node, "row {i}");
            }
        }
    }

    #[test]
    fn numbers_print_short_and_exact() {
        assert_eq!(format_number(34.5), "34.5");
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(-0.25), "-0.25");
        assert_eq!(format_number(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_number(1.5e-7), "1.5e-7");
        assert_eq!(format_number(2e20), "2e20");
        assert_eq!(format_number(0.0), "0");
        for v in [1.0 / 3.0, 12345.678, 1.5e-7, 2e20, -7.25e-5] {
            assert_eq!(format_number(v).parse::<f64>().unwrap(), v);
        }
        let c = Condition {
            feature: 0,
            lower: Some(1.0),
            upper: None,
        };
        assert_eq!(c.text("order count"), "`order count` > 1");
        assert_eq!(c.text("not"), "`not` > 1");
    }

    #[test]
    fn the_result_does_not_depend_on_row_order() {
        let n = 200;
        let a: Vec<f64> = (0..n).map(|i| ((i * 37) % 101) as f64).collect();
        let b: Vec<f64> = (0..n).map(|i| ((i * 53) % 89) as f64 * 0.5).collect();
        let y: Vec<u32> = (0..n)
            .map(|i| u32::from(a[i] + b[i] > 60.0) + u32::from(a[i] > 80.0))
            .collect();
        let (x, d) = matrix(&[&a, &b]);
        let t = fit(&x, d, &y, 3, &CartParams::new().max_depth(4)).unwrap();
        let rev: Vec<usize> = (0..n).rev().collect();
        let xr: Vec<f64> = rev.iter().flat_map(|&i| [a[i], b[i]]).collect();
        let yr: Vec<u32> = rev.iter().map(|&i| y[i]).collect();
        let tr = fit(&xr, d, &yr, 3, &CartParams::new().max_depth(4)).unwrap();
        assert_eq!(t, tr);
    }
}
