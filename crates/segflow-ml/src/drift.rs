//! Feature drift between two runs: the population stability index (PSI) over quantile
//! bins of the earlier run, and the two-sample Kolmogorov-Smirnov statistic.
//!
//! **PSI.** The bins are the quantiles of the *previous* ("expected") values: cut
//! points at the numpy-linear quantiles `i / bins` for `i = 1 … bins − 1`, duplicates
//! dropped (a feature with many ties, such as a purchase count, gets fewer bins). The
//! bins are right-closed, as `pandas.qcut`: bin 0 is `x ≤ c₁`, bin `j` is `cⱼ < x ≤
//! cⱼ₊₁`, the last bin is `x > c_last` (in numpy terms, the bin of `x` is
//! `searchsorted(cuts, x, side="left")`). When either side has nulls, the nulls form one
//! more bin, so a change in missingness counts as drift. With `eᵢ` and `aᵢ` the shares of
//! the previous and current values in bin `i` (each side sums to 1),
//!
//! ```text
//! PSI = Σᵢ (aᵢ − eᵢ) · ln(aᵢ / eᵢ)
//! ```
//!
//! where a share of 0 is replaced by `ε` ([`PSI_EPSILON`] = 0.0001 by default) on
//! either side, without renormalising (so a bin empty in both runs adds 0, and a bin
//! empty in one run adds a large but finite term). PSI is 0 for identical
//! distributions and grows with the shift; it is symmetric in the two runs except
//! through the bins, which come from the previous run.
//!
//! **KS.** `D = supₓ |F_previous(x) − F_current(x)|` over the two empirical
//! distribution functions (ties handled as `scipy.stats.ks_2samp`: both functions are
//! evaluated after every copy of a value). No p-value is computed: with the thousands
//! of customers a segmentation has, any shift is "significant"; read `D` (and PSI) as
//! an effect size.
//!
//! Both are checked against numpy / `scipy.stats.ks_2samp` in
//! `tests/drift_scipy.rs`.

use crate::stats;

/// The number of PSI bins when none is given (deciles of the previous run).
pub const DEFAULT_BINS: usize = 10;

/// What an empty bin's share is replaced by in the PSI sum.
pub const PSI_EPSILON: f64 = 1e-4;

/// Why drift cannot be measured.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriftError {
    #[error("PSI needs at least 2 bins, got {bins}")]
    Bins { bins: usize },
    #[error("the PSI epsilon must be a finite number in (0, 0.5), got {value}")]
    Epsilon { value: f64 },
    #[error("the {which} values have no rows, so their distribution is undefined")]
    Empty { which: &'static str },
    #[error("{which} value {index} is {value}; drift needs finite numbers (or nulls)")]
    NotFinite {
        which: &'static str,
        index: usize,
        value: f64,
    },
}

/// PSI settings, checked on construction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PsiParams {
    bins: usize,
    epsilon: f64,
}

impl Default for PsiParams {
    /// Deciles, ε = 0.0001.
    fn default() -> Self {
        PsiParams {
            bins: DEFAULT_BINS,
            epsilon: PSI_EPSILON,
        }
    }
}

impl PsiParams {
    /// `bins` quantile bins of the previous values (at least 2), ε = [`PSI_EPSILON`].
    pub fn new(bins: usize) -> Result<Self, DriftError> {
        if bins < 2 {
            return Err(DriftError::Bins { bins });
        }
        Ok(PsiParams {
            bins,
            epsilon: PSI_EPSILON,
        })
    }

    /// Replace empty-bin shares by `epsilon` instead (in `(0, 0.5)`).
    pub fn with_epsilon(self, epsilon: f64) -> Result<Self, DriftError> {
        if !(epsilon.is_finite() && epsilon > 0.0 && epsilon < 0.5) {
            return Err(DriftError::Epsilon { value: epsilon });
        }
        Ok(PsiParams { epsilon, ..self })
    }

    pub fn bins(&self) -> usize {
        self.bins
    }

    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }
}

/// A PSI and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Psi {
    /// The population stability index.
    pub psi: f64,
    /// The interior cut points (sorted, distinct): `edges.len() + 1` value bins.
    pub edges: Vec<f64>,
    /// Whether a last bin holds the nulls (when either side has any).
    pub null_bin: bool,
    /// Share of the previous values in each bin (value bins, then the null bin).
    pub expected: Vec<f64>,
    /// Share of the current values in each bin.
    pub actual: Vec<f64>,
}

impl Psi {
    /// Number of bins used (value bins plus the null bin).
    pub fn bins(&self) -> usize {
        self.expected.len()
    }
}

fn check_finite(which: &'static str, values: &[Option<f64>]) -> Result<(), DriftError> {
    match values
        .iter()
        .enumerate()
        .find_map(|(i, v)| v.filter(|x| !x.is_finite()).map(|x| (i, x)))
    {
        Some((index, value)) => Err(DriftError::NotFinite {
            which,
            index,
            value,
        }),
        None => Ok(()),
    }
}

/// The distinct interior quantile cut points of `sorted` (ascending, finite) for
/// `bins` bins: the numpy-linear quantiles at `i / bins`, `i = 1 … bins − 1`, with
/// duplicates dropped. Empty for empty input.
pub fn quantile_edges(sorted: &[f64], bins: usize) -> Vec<f64> {
    let mut edges: Vec<f64> = Vec::with_capacity(bins.saturating_sub(1));
    for i in 1..bins {
        if let Some(q) = stats::quantile_sorted(sorted, i as f64 / bins as f64) {
            if edges.last().is_none_or(|&last| q > last) {
                edges.push(q);
            }
        }
    }
    edges
}

/// The bin of `x` among right-closed bins cut at `edges`: the number of edges `< x`.
pub fn bin_of(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|&e| e < x)
}

/// `Σ (a − e) · ln(a / e)` with shares of 0 replaced by `epsilon` on either side.
pub fn psi_of_shares(expected: &[f64], actual: &[f64], epsilon: f64) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let e = if e > 0.0 { e } else { epsilon };
            let a = if a > 0.0 { a } else { epsilon };
            (a - e) * (a / e).ln()
        })
        .sum()
}

fn shares(values: &[Option<f64>], edges: &[f64], null_bin: bool) -> Vec<f64> {
    let n_bins = edges.len() + 1 + null_bin as usize;
    let mut counts = vec![0usize; n_bins];
    for v in values {
        match v {
            Some(x) => counts[bin_of(edges, *x)] += 1,
            // nulls only exist here when there is a null bin
            None => counts[n_bins - 1] += 1,
        }
    }
    let n = values.len() as f64;
    counts.into_iter().map(|c| c as f64 / n).collect()
}

/// The PSI of `current` against `previous` (nulls allowed, as `None`), over quantile
/// bins of the previous non-null values. Errors when either side has no rows or a
/// non-finite value.
pub fn psi(
    previous: &[Option<f64>],
    current: &[Option<f64>],
    params: &PsiParams,
) -> Result<Psi, DriftError> {
    if previous.is_empty() {
        return Err(DriftError::Empty { which: "previous" });
    }
    if current.is_empty() {
        return Err(DriftError::Empty { which: "current" });
    }
    check_finite("previous", previous)?;
    check_finite("current", current)?;
    let prev_values: Vec<f64> = previous.iter().flatten().copied().collect();
    let sorted = stats::sorted(&prev_values);
    let edges = quantile_edges(&sorted, params.bins);
    let null_bin = previous.iter().any(Option::is_none) || current.iter().any(Option::is_none);
    let expected = shares(previous, &edges, null_bin);
    let actual = shares(current, &edges, null_bin);
    Ok(Psi {
        psi: psi_of_shares(&expected, &actual, params.epsilon),
        edges,
        null_bin,
        expected,
        actual,
    })
}

/// PSI and KS of one feature between two runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The PSI over quantile bins of the previous values (nulls in their own bin).
    pub psi: Psi,
    /// The KS statistic of the non-null values; `None` when either side has none.
    pub ks: Option<f64>,
}

/// Shares of sorted non-null values (and `nulls` more rows) in the bins cut at `edges`.
fn sorted_shares(sorted: &[f64], nulls: usize, edges: &[f64], null_bin: bool) -> Vec<f64> {
    let n = (sorted.len() + nulls) as f64;
    let mut out = Vec::with_capacity(edges.len() + 2);
    let mut below = 0usize;
    for &e in edges {
        let upto = sorted.partition_point(|&x| x <= e);
        out.push((upto - below) as f64 / n);
        below = upto;
    }
    out.push((sorted.len() - below) as f64 / n);
    if null_bin {
        out.push(nulls as f64 / n);
    }
    out
}

/// [`psi`] and [`ks_statistic`] together, sorting each side once: the same numbers as
/// the two calls, faster on large inputs.
pub fn compare(
    previous: &[Option<f64>],
    current: &[Option<f64>],
    params: &PsiParams,
) -> Result<Comparison, DriftError> {
    if previous.is_empty() {
        return Err(DriftError::Empty { which: "previous" });
    }
    if current.is_empty() {
        return Err(DriftError::Empty { which: "current" });
    }
    check_finite("previous", previous)?;
    check_finite("current", current)?;
    let prev: Vec<f64> = previous.iter().flatten().copied().collect();
    let cur: Vec<f64> = current.iter().flatten().copied().collect();
    let prev = stats::sorted(&prev);
    let cur = stats::sorted(&cur);
    let (prev_nulls, cur_nulls) = (previous.len() - prev.len(), current.len() - cur.len());
    let edges = quantile_edges(&prev, params.bins);
    let null_bin = prev_nulls > 0 || cur_nulls > 0;
    let expected = sorted_shares(&prev, prev_nulls, &edges, null_bin);
    let actual = sorted_shares(&cur, cur_nulls, &edges, null_bin);
    let ks = (!prev.is_empty() && !cur.is_empty()).then(|| ks_sorted(&prev, &cur));
    Ok(Comparison {
        psi: Psi {
            psi: psi_of_shares(&expected, &actual, params.epsilon),
            edges,
            null_bin,
            expected,
            actual,
        },
        ks,
    })
}

/// The two-sample Kolmogorov-Smirnov statistic `D = sup |F_a − F_b|` of two sets of
/// finite values (as `scipy.stats.ks_2samp(a, b).statistic`).
pub fn ks_statistic(a: &[f64], b: &[f64]) -> Result<f64, DriftError> {
    if a.is_empty() {
        return Err(DriftError::Empty { which: "previous" });
    }
    if b.is_empty() {
        return Err(DriftError::Empty { which: "current" });
    }
    for (which, v) in [("previous", a), ("current", b)] {
        if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(DriftError::NotFinite {
                which,
                index,
                value,
            });
        }
    }
    let a = stats::sorted(a);
    let b = stats::sorted(b);
    Ok(ks_sorted(&a, &b))
}

/// [`ks_statistic`] of two non-empty, ascending, finite slices.
pub fn ks_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut d = 0.0f64;
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().copied().map(Some).collect()
    }

    #[test]
    fn identical_samples_have_zero_drift() {
        let v: Vec<f64> = (0..100).map(|i| (i % 17) as f64).collect();
        let p = psi(&some(&v), &some(&v), &PsiParams::default()).unwrap();
        assert_eq!(p.psi, 0.0);
        assert_eq!(ks_statistic(&v, &v).unwrap(), 0.0);
    }

    // previous 1..=4, 2 bins: the median 2.5 cuts {1,2} | {3,4}, e = (0.5, 0.5).
    // current {1,1,1,4}: a = (0.75, 0.25).
    // PSI = 0.25·ln(1.5) + (−0.25)·ln(0.5) = 0.25·(ln 1.5 + ln 2) = 0.25·ln 3.
    // KS: at x=1, F_prev = 0.25, F_cur = 0.75 → D = 0.5.
    #[test]
    fn by_hand() {
        let p = psi(
            &some(&[1.0, 2.0, 3.0, 4.0]),
            &some(&[1.0, 1.0, 1.0, 4.0]),
            &PsiParams::new(2).unwrap(),
        )
        .unwrap();
        assert_eq!(p.edges, vec![2.5]);
        assert!((p.psi - 0.25 * 3f64.ln()).abs() < 1e-15);
        let d = ks_statistic(&[1.0, 2.0, 3.0, 4.0], &[1.0, 1.0, 1.0, 4.0]).unwrap();
        assert_eq!(d, 0.5);
    }

    // previous has no nulls, current has one of four: null bin e = 0 → ε.
    // edges of [1,2,3,4] in 2 bins: [2.5]; e = (0.5, 0.5, 0), a = (0.5, 0.25, 0.25).
    #[test]
    fn nulls_get_their_own_bin() {
        let prev = some(&[1.0, 2.0, 3.0, 4.0]);
        let cur = vec![Some(1.0), Some(2.0), Some(3.0), None];
        let p = psi(&prev, &cur, &PsiParams::new(2).unwrap()).unwrap();
        assert!(p.null_bin);
        assert_eq!(p.expected, vec![0.5, 0.5, 0.0]);
        assert_eq!(p.actual, vec![0.5, 0.25, 0.25]);
        let want = (0.25 - 0.5) * (0.25f64 / 0.5).ln() + (0.25 - 1e-4) * (0.25f64 / 1e-4).ln();
        assert!((p.psi - want).abs() < 1e-12);
    }

    #[test]
    fn ties_collapse_bins() {
        let prev = some(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 9.0]);
        let p = psi(&prev, &prev, &PsiParams::default()).unwrap();
        // numpy: unique(quantile(prev, [0.1 … 0.9])) = [1.0, 1.3, 2.2, 3.6]
        assert_eq!(p.edges.len(), 4);
        for (e, want) in p.edges.iter().zip([1.0, 1.3, 2.2, 3.6]) {
            assert!((e - want).abs() < 1e-12, "{e} vs {want}");
        }
        assert_eq!(bin_of(&p.edges, 1.0), 0);
        assert_eq!(bin_of(&p.edges, 1.1), 1);
    }

    // a previous run with only nulls: one value bin and the null bin; no KS
    #[test]
    fn all_null_side() {
        let prev = vec![None, None];
        let cur = some(&[1.0, 2.0]);
        let c = compare(&prev, &cur, &PsiParams::default()).unwrap();
        assert!(c.psi.edges.is_empty());
        assert_eq!(c.psi.expected, vec![0.0, 1.0]);
        assert_eq!(c.psi.actual, vec![1.0, 0.0]);
        assert_eq!(c.ks, None);
        assert_eq!(c.psi, psi(&prev, &cur, &PsiParams::default()).unwrap());
        let want = 2.0 * (1.0 - 1e-4) * (1.0f64 / 1e-4).ln();
        assert!((c.psi.psi - want).abs() < 1e-12);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(PsiParams::new(1), Err(DriftError::Bins { bins: 1 }));
        assert!(PsiParams::default().with_epsilon(0.0).is_err());
        assert!(matches!(
            psi(&[], &some(&[1.0]), &PsiParams::default()),
            Err(DriftError::Empty { which: "previous" })
        ));
        assert!(matches!(
            psi(
                &some(&[1.0]),
                &some(&[f64::INFINITY]),
                &PsiParams::default()
            ),
            Err(DriftError::NotFinite {
                which: "current",
                index: 0,
                ..
            })
        ));
        assert!(ks_statistic(&[1.0], &[]).is_err());
        assert!(ks_statistic(&[f64::NAN], &[1.0]).is_err());
    }
}
