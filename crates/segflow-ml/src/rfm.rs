//! RFM scoring: recency, frequency and monetary scores from quantile bins or fixed
//! thresholds, and segment maps on the scores (the standard 11-segment grid or a
//! user's ordered list of score ranges).
//!
//! # Quantile bins and ties
//! Each measure is scored on its own with `bins` (3 to 5) equal-count bins, the
//! convention of pandas' `pd.qcut(s.rank(method="first"), bins, labels=False)`:
//! values are ranked 1..n in ascending order, ties broken by row order (the earlier
//! row gets the lower rank), and rank `r` goes to bin `i` (0-based) where `i` is the
//! number of interior quantile edges `1 + j·(n−1)/bins` (`j = 1..bins−1`) strictly
//! below `r`. The edges are compared in exact integer arithmetic:
//! `j·(n−1) < (r−1)·bins`. Every bin then holds `n/bins` rows, give or take one, even
//! when many customers share a value — at the price of equal values landing in
//! different bins when a group of ties straddles an edge.
//!
//! [`Ties::Shared`] keeps equal values together instead: every value gets the bin of
//! the first (lowest-ranked) of its ties, as pandas'
//! `pd.qcut(s.rank(method="first"), bins, labels=False).groupby(s).transform("min")`.
//! Bins are then uneven when values tie heavily (a frequency of 1 for most customers
//! puts all of them in the lowest bin).
//!
//! Recency is better when lower: its score is `bins − bin`, so the most recent
//! customers score `bins`. Frequency and monetary scores are `bin + 1`.
//!
//! # Fixed thresholds
//! `bins − 1` strictly increasing cut points per measure: value `v` goes to the bin
//! counting the cut points strictly below it, so a value equal to a cut point belongs
//! to the lower bin (intervals `(c[i−1], c[i]]`, as `pd.cut(v, [-inf, *cuts, inf])`).
//! Fixed thresholds keep scores comparable from one run to the next.
//!
//! # Segment maps
//! `FM` is the mean of the frequency and monetary scores rounded half up,
//! `(F + M + 1) / 2` in integers. A map is an ordered list of [`ScoreRule`]s (ranges
//! of R, F, M and/or FM scores); the first rule that matches wins, and an optional
//! default takes the rest. [`SegmentMap::standard`] is the 11-segment R × FM grid, see
//! [`STANDARD_GRID`].

use std::cmp::Ordering;

/// Fewest bins per measure.
pub const MIN_BINS: u8 = 3;
/// Most bins per measure.
pub const MAX_BINS: u8 = 5;

/// One of the three RFM measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    Recency,
    Frequency,
    Monetary,
}

impl Measure {
    pub const ALL: [Measure; 3] = [Measure::Recency, Measure::Frequency, Measure::Monetary];

    pub fn name(self) -> &'static str {
        match self {
            Measure::Recency => "recency",
            Measure::Frequency => "frequency",
            Measure::Monetary => "monetary",
        }
    }

    /// Score of the (0-based, ascending-value) bin `bin`.
    pub fn score_of_bin(self, bin: u8, bins: u8) -> u8 {
        match self {
            Measure::Recency => bins - bin,
            _ => bin + 1,
        }
    }
}

/// How quantile scoring treats equal values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ties {
    /// Rank ties by row order (`rank(method="first")`): equal-count bins.
    #[default]
    First,
    /// Equal values share the bin of the first of them.
    Shared,
}

/// Why RFM scoring or a segment map cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RfmError {
    #[error("bins must be 3, 4 or 5, got {0}")]
    Bins(u8),
    #[error("{measure} thresholds: {bins} bins need {} cut points, got {got}", .bins - 1)]
    CutCount {
        measure: &'static str,
        bins: u8,
        got: usize,
    },
    #[error("{measure} thresholds must be finite numbers in strictly increasing order; {prev} is followed by {next}")]
    CutOrder {
        measure: &'static str,
        prev: f64,
        next: f64,
    },
    #[error("{measure} thresholds must be finite numbers, got {value}")]
    CutNotFinite { measure: &'static str, value: f64 },
    #[error("the recency, frequency and monetary inputs have different lengths ({r}, {f}, {m})")]
    Lengths { r: usize, f: usize, m: usize },
    #[error("{measure} is {value} at row {row}; RFM scoring needs finite numbers (impute or drop missing values first)")]
    NotFinite {
        measure: &'static str,
        row: usize,
        value: f64,
    },
    #[error("segment {index}: {message}")]
    Segment {
        index: usize,
        /// The part of the segment at fault: `name`, `r`, `f`, `m` or `fm`.
        field: &'static str,
        message: String,
    },
    #[error("list at least one segment")]
    NoSegments,
    #[error("no segment matches R={r} F={f} M={m} (FM={fm}); add a default segment, or widen a segment to cover it")]
    Uncovered { r: u8, f: u8, m: u8, fm: u8 },
    #[error("the default segment `{0}` has the name of a listed segment; give it another name")]
    DefaultClash(String),
}

fn check_bins(bins: u8) -> Result<(), RfmError> {
    if (MIN_BINS..=MAX_BINS).contains(&bins) {
        Ok(())
    } else {
        Err(RfmError::Bins(bins))
    }
}

/// Check fixed cut points for `measure` with `bins` bins.
pub fn check_cuts(measure: Measure, cuts: &[f64], bins: u8) -> Result<(), RfmError> {
    check_bins(bins)?;
    let name = measure.name();
    if cuts.len() != bins as usize - 1 {
        return Err(RfmError::CutCount {
            measure: name,
            bins,
            got: cuts.len(),
        });
    }
    if let Some(&value) = cuts.iter().find(|c| !c.is_finite()) {
        return Err(RfmError::CutNotFinite {
            measure: name,
            value,
        });
    }
    if let Some(w) = cuts.windows(2).find(|w| w[0] >= w[1]) {
        return Err(RfmError::CutOrder {
            measure: name,
            prev: w[0],
            next: w[1],
        });
    }
    Ok(())
}

/// Row indices in ascending order of value, ties in row order (a stable sort).
fn order(values: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].partial_cmp(&values[b]).unwrap_or(Ordering::Equal));
    idx
}

/// Quantile bin (0-based, ascending) of every value; `values` must be finite.
pub fn quantile_bins(values: &[f64], bins: u8, ties: Ties) -> Vec<u8> {
    let n = values.len();
    let q = bins as u64;
    let idx = order(values);
    let mut out = vec![0u8; n];
    let mut group_bin = 0u8;
    for (pos, &row) in idx.iter().enumerate() {
        let r = pos as u64 + 1;
        let nm1 = n as u64 - 1;
        let bin = (1..q).filter(|j| j * nm1 < (r - 1) * q).count() as u8;
        let bin = match ties {
            Ties::First => bin,
            Ties::Shared => {
                if pos == 0 || values[idx[pos - 1]] != values[row] {
                    group_bin = bin;
                }
                group_bin
            }
        };
        out[row] = bin;
    }
    out
}

/// Fixed-threshold bin of every value: the number of cut points strictly below it.
pub fn threshold_bins(values: &[f64], cuts: &[f64]) -> Vec<u8> {
    values
        .iter()
        .map(|v| cuts.iter().filter(|c| **c < *v).count() as u8)
        .collect()
}

/// What a measure's scoring produced.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureScores {
    pub measure: Measure,
    /// Score of every row, 1..=bins (higher is better).
    pub scores: Vec<u8>,
    /// True when fixed thresholds were used.
    pub fixed: bool,
    /// Cut points in original units, ascending (`bins − 1`): a value at most `cuts[i]`
    /// and above `cuts[i−1]` is in ascending bin `i`. For quantile bins `cuts[i]` is the
    /// largest value in bin `i` (`None` for an empty bin). With [`Ties::First`] a value
    /// equal to a cut point can also sit in the next bin.
    pub cuts: Vec<Option<f64>>,
    /// One entry per score, 1..=bins.
    pub per_score: Vec<ScoreStats>,
}

/// The customers and values behind one score of one measure.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreStats {
    pub score: u8,
    /// Customers with this score.
    pub count: u64,
    /// Smallest and largest value among them.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The score's interval in original units, `(lower, upper]`; `None` is unbounded.
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

fn measure_scores(
    measure: Measure,
    values: &[f64],
    bins: u8,
    ties: Ties,
    fixed: Option<&[f64]>,
) -> MeasureScores {
    let vbins = match fixed {
        Some(c) => threshold_bins(values, c),
        None => quantile_bins(values, bins, ties),
    };
    let b = bins as usize;
    let mut count = vec![0u64; b];
    let mut min = vec![None::<f64>; b];
    let mut max = vec![None::<f64>; b];
    for (v, &k) in values.iter().zip(&vbins) {
        let k = k as usize;
        count[k] += 1;
        min[k] = Some(min[k].map_or(*v, |m: f64| m.min(*v)));
        max[k] = Some(max[k].map_or(*v, |m: f64| m.max(*v)));
    }
    let cuts: Vec<Option<f64>> = match fixed {
        Some(c) => c.iter().map(|v| Some(*v)).collect(),
        None => max[..b - 1].to_vec(),
    };
    let mut per_score: Vec<ScoreStats> = (0..b)
        .map(|k| ScoreStats {
            score: measure.score_of_bin(k as u8, bins),
            count: count[k],
            min: min[k],
            max: max[k],
            lower: if k == 0 { None } else { cuts[k - 1] },
            upper: cuts.get(k).copied().flatten(),
        })
        .collect();
    per_score.sort_by_key(|s| s.score);
    MeasureScores {
        measure,
        scores: vbins
            .iter()
            .map(|&k| measure.score_of_bin(k, bins))
            .collect(),
        fixed: fixed.is_some(),
        cuts,
        per_score,
    }
}

/// RFM scoring settings, checked by [`RfmParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct RfmParams {
    pub bins: u8,
    pub ties: Ties,
    /// Fixed cut points per measure (recency, frequency, monetary); `None`: quantiles.
    pub thresholds: [Option<Vec<f64>>; 3],
}

impl RfmParams {
    /// `bins` quantile bins per measure, ties by row order.
    pub fn new(bins: u8) -> Self {
        RfmParams {
            bins,
            ties: Ties::First,
            thresholds: [None, None, None],
        }
    }
    pub fn ties(mut self, ties: Ties) -> Self {
        self.ties = ties;
        self
    }
    /// Score `measure` with fixed cut points instead of quantiles.
    pub fn thresholds(mut self, measure: Measure, cuts: Vec<f64>) -> Self {
        self.thresholds[measure as usize] = Some(cuts);
        self
    }
    pub fn check(&self) -> Result<(), RfmError> {
        check_bins(self.bins)?;
        for m in Measure::ALL {
            if let Some(c) = &self.thresholds[m as usize] {
                check_cuts(m, c, self.bins)?;
            }
        }
        Ok(())
    }
}

/// Scores of every customer.
#[derive(Debug, Clone, PartialEq)]
pub struct RfmScores {
    pub bins: u8,
    pub recency: MeasureScores,
    pub frequency: MeasureScores,
    pub monetary: MeasureScores,
    /// [`fm_score`] of every row.
    pub fm: Vec<u8>,
}

impl RfmScores {
    pub fn measures(&self) -> [&MeasureScores; 3] {
        [&self.recency, &self.frequency, &self.monetary]
    }
}

/// The FM score: the mean of F and M rounded half up.
pub fn fm_score(f: u8, m: u8) -> u8 {
    (f + m).div_ceil(2)
}

/// Score every customer. The three slices are the customers' recency (e.g. days since
/// the last purchase: lower is better), frequency and monetary value.
pub fn score(
    recency: &[f64],
    frequency: &[f64],
    monetary: &[f64],
    params: &RfmParams,
) -> Result<RfmScores, RfmError> {
    params.check()?;
    if recency.len() != frequency.len() || recency.len() != monetary.len() {
        return Err(RfmError::Lengths {
            r: recency.len(),
            f: frequency.len(),
            m: monetary.len(),
        });
    }
    for (m, vals) in Measure::ALL.into_iter().zip([recency, frequency, monetary]) {
        if let Some((row, &value)) = vals.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(RfmError::NotFinite {
                measure: m.name(),
                row,
                value,
            });
        }
    }
    let one = |m: Measure, v: &[f64]| {
        measure_scores(
            m,
            v,
            params.bins,
            params.ties,
            params.thresholds[m as usize].as_deref(),
        )
    };
    let r = one(Measure::Recency, recency);
    let f = one(Measure::Frequency, frequency);
    let m = one(Measure::Monetary, monetary);
    let fm = f
        .scores
        .iter()
        .zip(&m.scores)
        .map(|(&a, &b)| fm_score(a, b))
        .collect();
    Ok(RfmScores {
        bins: params.bins,
        recency: r,
        frequency: f,
        monetary: m,
        fm,
    })
}

/// A segment as inclusive score ranges; a range left out matches any score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreRule {
    pub name: String,
    pub r: Option<(u8, u8)>,
    pub f: Option<(u8, u8)>,
    pub m: Option<(u8, u8)>,
    pub fm: Option<(u8, u8)>,
}

impl ScoreRule {
    /// A rule on R and FM, as the standard grid is written.
    pub fn r_fm(name: &str, r: (u8, u8), fm: (u8, u8)) -> Self {
        ScoreRule {
            name: name.to_string(),
            r: Some(r),
            f: None,
            m: None,
            fm: Some(fm),
        }
    }

    pub fn matches(&self, r: u8, f: u8, m: u8) -> bool {
        let within =
            |range: Option<(u8, u8)>, s: u8| range.is_none_or(|(lo, hi)| lo <= s && s <= hi);
        within(self.r, r)
            && within(self.f, f)
            && within(self.m, m)
            && within(self.fm, fm_score(f, m))
    }

    /// The rule's range of `part` (`r`, `f`, `m` or `fm`), the full `1..=bins` when it
    /// has none.
    pub fn range(&self, part: &str, bins: u8) -> (u8, u8) {
        let r = match part {
            "r" => self.r,
            "f" => self.f,
            "m" => self.m,
            _ => self.fm,
        };
        r.unwrap_or((1, bins))
    }
}

/// An inclusive range of scores, `(low, high)`.
pub type ScoreRange = (u8, u8);

/// The standard segments on the 5-score R × FM grid, in segment-id order:
/// `(name, R range, FM range)`. The ranges tile the grid exactly once:
///
/// ```text
///          FM=1            FM=2            FM=3            FM=4        FM=5
/// R=5  New Customers   Potential Loyalist  Potential Loyalist  Champions   Champions
/// R=4  Promising       Potential Loyalist  Potential Loyalist  Loyal       Loyal
/// R=3  About to Sleep  About to Sleep      Need Attention      Loyal       Loyal
/// R=2  Hibernating     Hibernating         At Risk             At Risk     Can't Lose Them
/// R=1  Lost            Lost                At Risk             At Risk     Can't Lose Them
/// ```
///
/// This is the widely used 10-segment R × F map of RFM tutorials (`[1-2][1-2]`
/// hibernating, `[1-2][3-4]` at risk, `[1-2]5` can't lose, `3[1-2]` about to sleep,
/// `33` need attention, `[3-4][4-5]` loyal, `41` promising, `51` new, `[4-5][2-3]`
/// potential loyalists, `5[4-5]` champions) with FM on the second axis, as in the
/// R × FM grids of Putler and the R `rfm` package, and with `Lost` (the lowest
/// recency, R = 1) split from `Hibernating` to give the 11 named segments.
pub const STANDARD_GRID: [(&str, ScoreRange, ScoreRange); 11] = [
    ("Champions", (5, 5), (4, 5)),
    ("Loyal", (3, 4), (4, 5)),
    ("Potential Loyalist", (4, 5), (2, 3)),
    ("New Customers", (5, 5), (1, 1)),
    ("Promising", (4, 4), (1, 1)),
    ("Need Attention", (3, 3), (3, 3)),
    ("About to Sleep", (3, 3), (1, 2)),
    ("At Risk", (1, 2), (3, 4)),
    ("Can't Lose Them", (1, 2), (5, 5)),
    ("Hibernating", (2, 2), (1, 2)),
    ("Lost", (1, 1), (1, 2)),
];

/// A score on `bins` bins placed on the 5-score scale: `1 + round((s − 1) · 4 / (bins − 1))`
/// with halves rounded up (3 bins: 1, 3, 5; 4 bins: 1, 2, 4, 5).
pub fn to_five(s: u8, bins: u8) -> u8 {
    let b = bins as u32 - 1;
    1 + (((s as u32 - 1) * 8 + b) / (2 * b)) as u8
}

/// The scores `s` in `1..=bins` with `to_five(s)` in `range`, as a range.
fn preimage(range: (u8, u8), bins: u8) -> Option<(u8, u8)> {
    let s: Vec<u8> = (1..=bins)
        .filter(|&s| (range.0..=range.1).contains(&to_five(s, bins)))
        .collect();
    Some((*s.first()?, *s.last()?))
}

/// An ordered list of score rules with an optional default, checked to assign every
/// score combination.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentMap {
    bins: u8,
    rules: Vec<ScoreRule>,
    default: Option<String>,
}

impl SegmentMap {
    /// The standard segments for `bins` bins: [`STANDARD_GRID`] with each score placed
    /// on the 5-score scale by [`to_five`]. With 5 bins that is the grid itself; with 4
    /// bins `Need Attention` and `About to Sleep` have no cell and are left out; with 3
    /// bins `Promising` and `Hibernating` are (nine segments either way). Every
    /// combination of scores has exactly one segment.
    pub fn standard(bins: u8) -> Result<Self, RfmError> {
        check_bins(bins)?;
        let rules = STANDARD_GRID
            .iter()
            .filter_map(|(name, r, fm)| {
                Some(ScoreRule::r_fm(
                    name,
                    preimage(*r, bins)?,
                    preimage(*fm, bins)?,
                ))
            })
            .collect();
        SegmentMap::custom(rules, None, bins)
    }

    /// A user's map: `rules` in order, first match wins, `default` for the rest. Every
    /// range must lie in `1..=bins` with `lo <= hi`, names must be unique and non-empty,
    /// and without a default the rules must cover every combination of scores.
    pub fn custom(
        rules: Vec<ScoreRule>,
        default: Option<String>,
        bins: u8,
    ) -> Result<Self, RfmError> {
        check_bins(bins)?;
        if rules.is_empty() {
            return Err(RfmError::NoSegments);
        }
        for (index, rule) in rules.iter().enumerate() {
            let bad = |field: &'static str, message: String| RfmError::Segment {
                index,
                field,
                message,
            };
            if rule.name.trim().is_empty() {
                return Err(bad("name", "the name is empty".into()));
            }
            if let Some(first) = rules[..index].iter().position(|o| o.name == rule.name) {
                return Err(bad(
                    "name",
                    format!(
                        "`{}` is also the name of segment {first}; give each segment its own name (widen its ranges instead)",
                        rule.name
                    ),
                ));
            }
            for (field, range) in [("r", rule.r), ("f", rule.f), ("m", rule.m), ("fm", rule.fm)] {
                if let Some((lo, hi)) = range {
                    if lo < 1 || hi > bins || lo > hi {
                        return Err(bad(
                            field,
                            format!(
                                "the {field} range [{lo}, {hi}] must be [low, high] with 1 <= low <= high <= {bins} (the number of bins)"
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(d) = &default {
            if d.trim().is_empty() {
                return Err(RfmError::Segment {
                    index: rules.len(),
                    field: "name",
                    message: "the default segment's name is empty".into(),
                });
            }
            if rules.iter().any(|r| &r.name == d) {
                return Err(RfmError::DefaultClash(d.clone()));
            }
        }
        let map = SegmentMap {
            bins,
            rules,
            default,
        };
        if map.default.is_none() {
            for (r, f, m) in map.combinations() {
                if map.first(r, f, m).is_none() {
                    return Err(RfmError::Uncovered {
                        r,
                        f,
                        m,
                        fm: fm_score(f, m),
                    });
                }
            }
        }
        Ok(map)
    }

    fn combinations(&self) -> impl Iterator<Item = (u8, u8, u8)> {
        let b = self.bins;
        (1..=b).flat_map(move |r| (1..=b).flat_map(move |f| (1..=b).map(move |m| (r, f, m))))
    }

    fn first(&self, r: u8, f: u8, m: u8) -> Option<usize> {
        self.rules.iter().position(|x| x.matches(r, f, m))
    }

    pub fn bins(&self) -> u8 {
        self.bins
    }
    pub fn rules(&self) -> &[ScoreRule] {
        &self.rules
    }
    pub fn default_name(&self) -> Option<&str> {
        self.default.as_deref()
    }

    /// Segment names by id: the rules, then the default if there is one.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.rules.iter().map(|r| r.name.as_str()).collect();
        v.extend(self.default.as_deref());
        v
    }

    /// The segment id of a score combination: the first matching rule, or
    /// `rules().len()` (the default).
    pub fn assign(&self, r: u8, f: u8, m: u8) -> usize {
        self.first(r, f, m).unwrap_or(self.rules.len())
    }

    /// Rules that no score combination reaches (every cell they cover is taken by an
    /// earlier rule).
    pub fn unreachable(&self) -> Vec<usize> {
        let mut hit = vec![false; self.rules.len()];
        for (r, f, m) in self.combinations() {
            if let Some(i) = self.first(r, f, m) {
                hit[i] = true;
            }
        }
        (0..self.rules.len()).filter(|&i| !hit[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_bins_match_qcut_of_first_ranks() {
        // pd.qcut(pd.Series(range(1, 11)).rank(method="first"), 5, labels=False)
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(
            quantile_bins(&v, 5, Ties::First),
            [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
        );
        // n - 1 divisible by q: rank 3 sits on the edge 1 + 2 = 3 and stays below it.
        let v: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(
            quantile_bins(&v, 5, Ties::First),
            [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
        );
        assert_eq!(quantile_bins(&[7.0], 5, Ties::First), [0]);
        assert_eq!(quantile_bins(&[], 5, Ties::First), Vec::<u8>::new());
        assert_eq!(quantile_bins(&[2.0, 1.0], 3, Ties::First), [2, 0]);
    }

    #[test]
    fn tie_rules() {
        // Six ones, then 2..5: `first` splits the ones across bins by row order,
        // `shared` keeps them in the bin of the first one.
        let v = [1.0, 1.0, 3.0, 1.0, 1.0, 1.0, 1.0, 2.0, 4.0, 5.0];
        assert_eq!(
            quantile_bins(&v, 5, Ties::First),
            [0, 0, 3, 1, 1, 2, 2, 3, 4, 4]
        );
        assert_eq!(
            quantile_bins(&v, 5, Ties::Shared),
            [0, 0, 3, 0, 0, 0, 0, 3, 4, 4]
        );
        // Row order decides under `first`: the same values permuted.
        let w = [3.0, 1.0, 1.0];
        assert_eq!(quantile_bins(&w, 3, Ties::First), [2, 0, 1]);
        assert_eq!(quantile_bins(&w, 3, Ties::Shared), [2, 0, 0]);
    }

    #[test]
    fn recency_scores_reverse() {
        let r = [1.0, 50.0, 400.0];
        let f = [9.0, 2.0, 1.0];
        let m = [900.0, 20.0, 5.0];
        let s = score(&r, &f, &m, &RfmParams::new(3)).unwrap();
        assert_eq!(s.recency.scores, [3, 2, 1]);
        assert_eq!(s.frequency.scores, [3, 2, 1]);
        assert_eq!(s.monetary.scores, [3, 2, 1]);
        assert_eq!(s.fm, [3, 2, 1]);
        assert_eq!(s.recency.cuts, [Some(1.0), Some(50.0)]);
        let top = &s.recency.per_score[2];
        assert_eq!((top.score, top.count, top.upper), (3, 1, Some(1.0)));
    }

    #[test]
    fn fixed_thresholds_are_right_closed() {
        assert_eq!(
            threshold_bins(&[0.0, 30.0, 30.5, 90.0, 1e9], &[30.0, 90.0]),
            [0, 0, 1, 1, 2]
        );
        let p = RfmParams::new(3)
            .thresholds(Measure::Recency, vec![30.0, 90.0])
            .thresholds(Measure::Monetary, vec![100.0, 1000.0]);
        let s = score(
            &[30.0, 31.0, 365.0],
            &[1.0, 2.0, 3.0],
            &[100.0, 100.01, 5000.0],
            &p,
        )
        .unwrap();
        assert_eq!(s.recency.scores, [3, 2, 1]);
        assert_eq!(s.monetary.scores, [1, 2, 3]);
        assert!(s.recency.fixed && !s.frequency.fixed);
        assert_eq!(s.monetary.per_score[1].lower, Some(100.0));
        assert_eq!(s.monetary.per_score[1].upper, Some(1000.0));
    }

    #[test]
    fn params_are_checked() {
        assert_eq!(RfmParams::new(6).check(), Err(RfmError::Bins(6)));
        assert!(matches!(
            RfmParams::new(5)
                .thresholds(Measure::Frequency, vec![1.0, 2.0])
                .check(),
            Err(RfmError::CutCount { got: 2, .. })
        ));
        assert!(matches!(
            RfmParams::new(3)
                .thresholds(Measure::Frequency, vec![2.0, 2.0])
                .check(),
            Err(RfmError::CutOrder { .. })
        ));
        assert!(matches!(
            score(
                &[1.0, f64::NAN],
                &[1.0, 1.0],
                &[1.0, 1.0],
                &RfmParams::new(3)
            ),
            Err(RfmError::NotFinite { row: 1, .. })
        ));
    }

    #[test]
    fn standard_map_tiles_the_grid() {
        let m5 = SegmentMap::standard(5).unwrap();
        assert_eq!(m5.names().len(), 11);
        assert!(m5.unreachable().is_empty());
        // Exactly one rule per cell.
        for r in 1..=5 {
            for fm in 1..=5u8 {
                let n = m5
                    .rules()
                    .iter()
                    .filter(|x| x.r.unwrap().0 <= r && r <= x.r.unwrap().1)
                    .filter(|x| x.fm.unwrap().0 <= fm && fm <= x.fm.unwrap().1)
                    .count();
                assert_eq!(n, 1, "R={r} FM={fm}");
            }
        }
        let name = |m: &SegmentMap, r, f, mm| m.names()[m.assign(r, f, mm)].to_string();
        assert_eq!(name(&m5, 5, 5, 5), "Champions");
        assert_eq!(name(&m5, 5, 1, 1), "New Customers");
        assert_eq!(name(&m5, 1, 1, 1), "Lost");
        assert_eq!(name(&m5, 2, 1, 2), "Hibernating");
        assert_eq!(name(&m5, 1, 5, 5), "Can't Lose Them");
        assert_eq!(name(&m5, 3, 3, 3), "Need Attention");
        assert_eq!(name(&m5, 5, 4, 3), "Champions"); // FM = 3.5 rounds up to 4
        assert_eq!(name(&m5, 4, 1, 2), "Potential Loyalist"); // FM = 1.5 -> 2

        let m4 = SegmentMap::standard(4).unwrap();
        assert_eq!(m4.names().len(), 9);
        assert!(!m4.names().contains(&"Need Attention"));
        assert_eq!(name(&m4, 4, 4, 4), "Champions");
        assert_eq!(name(&m4, 3, 4, 4), "Loyal");
        assert_eq!(name(&m4, 3, 1, 1), "Promising");
        let m3 = SegmentMap::standard(3).unwrap();
        assert_eq!(
            m3.names(),
            [
                "Champions",
                "Loyal",
                "Potential Loyalist",
                "New Customers",
                "Need Attention",
                "About to Sleep",
                "At Risk",
                "Can't Lose Them",
                "Lost"
            ]
        );
        assert_eq!(name(&m3, 2, 2, 2), "Need Attention");
        assert_eq!(to_five(2, 4), 2);
        assert_eq!(to_five(3, 4), 4);
        assert_eq!(to_five(2, 3), 3);
    }

    #[test]
    fn custom_maps_are_checked() {
        let rule = |name: &str, r: Option<(u8, u8)>| ScoreRule {
            name: name.into(),
            r,
            f: None,
            m: None,
            fm: None,
        };
        let e = SegmentMap::custom(vec![rule("recent", Some((4, 5)))], None, 5).unwrap_err();
        assert!(
            matches!(
                e,
                RfmError::Uncovered {
                    r: 1,
                    f: 1,
                    m: 1,
                    ..
                }
            ),
            "{e}"
        );
        let ok = SegmentMap::custom(
            vec![rule("recent", Some((4, 5))), rule("old", Some((1, 3)))],
            None,
            5,
        )
        .unwrap();
        assert_eq!(ok.assign(2, 5, 5), 1);
        let with_default =
            SegmentMap::custom(vec![rule("recent", Some((4, 5)))], Some("other".into()), 5)
                .unwrap();
        assert_eq!(with_default.assign(1, 1, 1), 1);
        assert_eq!(with_default.names(), ["recent", "other"]);
        let e = SegmentMap::custom(vec![rule("x", Some((0, 2)))], Some("o".into()), 5).unwrap_err();
        assert!(
            matches!(
                e,
                RfmError::Segment {
                    index: 0,
                    field: "r",
                    ..
                }
            ),
            "{e}"
        );
        let e = SegmentMap::custom(vec![rule("x", Some((3, 4)))], Some("o".into()), 3).unwrap_err();
        assert!(matches!(e, RfmError::Segment { field: "r", .. }), "{e}");
        let e = SegmentMap::custom(
            vec![rule("x", Some((1, 2))), rule("x", Some((3, 5)))],
            None,
            5,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                RfmError::Segment {
                    index: 1,
                    field: "name",
                    ..
                }
            ),
            "{e}"
        );
        let e = SegmentMap::custom(vec![rule("x", None)], Some("x".into()), 5).unwrap_err();
        assert!(matches!(e, RfmError::DefaultClash(_)), "{e}");
        let shadowed = SegmentMap::custom(
            vec![rule("all", None), rule("never", Some((5, 5)))],
            None,
            5,
        )
        .unwrap();
        assert_eq!(shadowed.unreachable(), [1]);
    }
}
