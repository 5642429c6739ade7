//! Target-segment selection: score every segment of one segmentation on weighted
//! attractiveness criteria, rank them, and choose targets under size constraints.
//!
//! The criteria are the classic segment-attractiveness tests — 可衡量性 (measurable:
//! size), 可盈利性 (profitable: value), 可進入性 (accessible), 穩定性 (stable) — plus
//! growth, but this module does not know their names: a criterion is any named raw
//! value per segment where higher is better.
//!
//! # Scoring
//!
//! 1. **Normalise** each criterion across the segments of one segmentation by min–max
//!    to 0..1: `(x − min) / (max − min)`, so the best segment scores 1 and the worst 0.
//!    When every known value is the same (including a single segment), each scores
//!    **1.0**: a criterion that does not tell segments apart should not penalise any of
//!    them, and a one-segment segmentation keeps a score of the sum of its weights. A
//!    missing raw value (`None`) scores 0 and is reported in [`Selection::nulls`].
//! 2. **Score** = Σ weight × normalised. Weights are checked by [`Weights::new`]: a
//!    negative or non-finite weight, or all weights zero, is an error; weights whose sum
//!    differs from 1 by more than 1e-9 are divided by their sum (and
//!    [`Weights::was_normalised`] says so, for the caller to report), so a score always
//!    lies in 0..1.
//! 3. **Rank** by score, descending; ties go to the larger segment (more customers),
//!    then to the lower `segment_id`. Scores are compared exactly.
//! 4. **Choose** greedily in rank order. A segment is not chosen when its label is in
//!    [`Constraints::exclude`], when it has fewer than `min_customers` customers, when
//!    its share is below `min_share`, when its score is 0 (it is lowest, or unknown, on
//!    every weighted criterion), or when `max_targets` segments are already chosen — the
//!    first of these that applies is its reason. Every row carries a one-line reason.

use std::fmt;

/// Sums of weights within this distance of 1 are used as given.
pub const WEIGHT_SUM_TOLERANCE: f64 = 1e-9;

/// Why targeting cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetingError {
    #[error("no criteria were given; give at least one criterion a positive weight")]
    NoCriteria,
    #[error("criterion `{0}` is given twice; give each criterion one weight")]
    DuplicateCriterion(String),
    #[error("the weight of `{criterion}` is {weight}; weights must be finite numbers >= 0 (use 0 to ignore a criterion)")]
    BadWeight { criterion: String, weight: f64 },
    #[error("every weight is 0, so no segment could score above another; give at least one criterion a positive weight")]
    AllZero,
    #[error("min_share is {0}; it must be a share between 0 and 1 (e.g. 0.05 for 5%)")]
    BadMinShare(f64),
    #[error("max_targets is 0, so nothing could be chosen; give at least 1, or leave it out for no limit")]
    ZeroMaxTargets,
    #[error("segment `{segment}` has {got} raw values but there are {expected} criteria")]
    Lengths {
        segment: String,
        got: usize,
        expected: usize,
    },
    #[error("segment `{segment}` has {criterion} = {value}; raw values must be finite numbers (or missing)")]
    NotFinite {
        segment: String,
        criterion: String,
        value: f64,
    },
}

/// Checked criterion weights, normalised to sum to 1 when they did not.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    criteria: Vec<String>,
    values: Vec<f64>,
    given_sum: f64,
    normalised: bool,
}

impl Weights {
    /// Check `(criterion, weight)` pairs: each weight finite and >= 0, at least one
    /// positive, no criterion twice. When the weights do not sum to 1 (within
    /// [`WEIGHT_SUM_TOLERANCE`]) they are divided by their sum.
    pub fn new<S: Into<String>>(
        pairs: impl IntoIterator<Item = (S, f64)>,
    ) -> Result<Weights, TargetingError> {
        let mut criteria: Vec<String> = Vec::new();
        let mut values = Vec::new();
        for (c, w) in pairs {
            let c = c.into();
            if criteria.contains(&c) {
                return Err(TargetingError::DuplicateCriterion(c));
            }
            if !w.is_finite() || w < 0.0 {
                return Err(TargetingError::BadWeight {
                    criterion: c,
                    weight: w,
                });
            }
            criteria.push(c);
            values.push(w);
        }
        if criteria.is_empty() {
            return Err(TargetingError::NoCriteria);
        }
        let sum: f64 = values.iter().sum();
        if sum <= 0.0 {
            return Err(TargetingError::AllZero);
        }
        let normalised = (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE;
        if normalised {
            for v in &mut values {
                *v /= sum;
            }
        }
        Ok(Weights {
            criteria,
            values,
            given_sum: sum,
            normalised,
        })
    }

    /// The criteria, in the order given.
    pub fn criteria(&self) -> &[String] {
        &self.criteria
    }

    /// The weights in use (after normalisation), in criterion order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The sum of the weights as given.
    pub fn given_sum(&self) -> f64 {
        self.given_sum
    }

    /// True when the given weights did not sum to 1 and were divided by their sum.
    pub fn was_normalised(&self) -> bool {
        self.normalised
    }
}

/// Which segments may be chosen.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Constraints {
    /// Segments with fewer customers are not chosen.
    pub min_customers: u64,
    /// Segments with a smaller share of customers (0..1) are not chosen.
    pub min_share: f64,
    /// At most this many segments are chosen (`None`: no limit).
    pub max_targets: Option<usize>,
    /// Segment labels never chosen.
    pub exclude: Vec<String>,
}

impl Constraints {
    /// `min_share` in 0..1 and `max_targets` at least 1.
    pub fn check(&self) -> Result<(), TargetingError> {
        if !(0.0..=1.0).contains(&self.min_share) {
            return Err(TargetingError::BadMinShare(self.min_share));
        }
        if self.max_targets == Some(0) {
            return Err(TargetingError::ZeroMaxTargets);
        }
        Ok(())
    }
}

/// One segment of the segmentation being targeted.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub segment_id: i32,
    pub label: String,
    /// Number of customers.
    pub customers: i64,
    /// Share of the segmentation's customers (0..1), for `min_share`.
    pub share: f64,
    /// Raw value of each criterion, in [`Weights::criteria`] order (`None`: unknown).
    pub raw: Vec<Option<f64>>,
}

/// What happened to a segment, in the order the checks are made.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Chosen,
    /// Its label is in [`Constraints::exclude`].
    Excluded,
    BelowMinCustomers {
        customers: i64,
        min: u64,
    },
    BelowMinShare {
        share: f64,
        min: f64,
    },
    /// Lowest (or unknown) on every weighted criterion.
    ZeroScore,
    /// `max` segments were already chosen.
    MaxTargets {
        max: usize,
    },
}

impl Decision {
    pub fn is_chosen(&self) -> bool {
        matches!(self, Decision::Chosen)
    }
}

/// One scored segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Index of the segment in the input slice.
    pub index: usize,
    /// 1 = best.
    pub rank: usize,
    pub score: f64,
    /// Normalised value of each criterion (0..1; 0 when unknown).
    pub normalised: Vec<f64>,
    /// weight × normalised, per criterion; they sum to `score`.
    pub points: Vec<f64>,
    pub decision: Decision,
    /// The decision in words, e.g. `rank 1: score 0.82 (value 0.40, size 0.25)` or
    /// `below min_customers: 120 customers < 500`.
    pub reason: String,
}

/// The outcome for one segmentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// One row per segment, in rank order.
    pub rows: Vec<Row>,
    /// `(segment index, criterion index)` of every missing raw value, scored 0.
    pub nulls: Vec<(usize, usize)>,
}

impl Selection {
    /// Indices of the chosen segments, in rank order.
    pub fn chosen(&self) -> Vec<usize> {
        self.rows
            .iter()
            .filter(|r| r.decision.is_chosen())
            .map(|r| r.index)
            .collect()
    }
}

/// Min–max normalise raw values to 0..1 (higher is better). Missing values score 0;
/// when every known value is the same, each known value scores 1.0 (see the module
/// doc). Values must be finite.
pub fn normalise(raw: &[Option<f64>]) -> Vec<f64> {
    let known = raw.iter().flatten().copied();
    let min = known.clone().fold(f64::INFINITY, f64::min);
    let max = known.fold(f64::NEG_INFINITY, f64::max);
    raw.iter()
        .map(|v| match v {
            None => 0.0,
            Some(_) if max <= min => 1.0,
            Some(x) => ((x - min) / (max - min)).clamp(0.0, 1.0),
        })
        .collect()
}

/// Score, rank and choose the segments of one segmentation.
pub fn select(
    segments: &[Segment],
    weights: &Weights,
    constraints: &Constraints,
) -> Result<Selection, TargetingError> {
    constraints.check()?;
    let k = weights.criteria.len();
    for s in segments {
        if s.raw.len() != k {
            return Err(TargetingError::Lengths {
                segment: s.label.clone(),
                got: s.raw.len(),
                expected: k,
            });
        }
        for (c, v) in s.raw.iter().enumerate() {
            if let Some(v) = v.filter(|v| !v.is_finite()) {
                return Err(TargetingError::NotFinite {
                    segment: s.label.clone(),
                    criterion: weights.criteria[c].clone(),
                    value: v,
                });
            }
        }
    }
    let mut nulls = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        for (c, v) in s.raw.iter().enumerate() {
            if v.is_none() {
                nulls.push((i, c));
            }
        }
    }
    // normalised[c][i]
    let by_criterion: Vec<Vec<f64>> = (0..k)
        .map(|c| {
            let raw: Vec<Option<f64>> = segments.iter().map(|s| s.raw[c]).collect();
            normalise(&raw)
        })
        .collect();
    let mut rows: Vec<Row> = segments
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let normalised: Vec<f64> = (0..k).map(|c| by_criterion[c][i]).collect();
            let points: Vec<f64> = normalised
                .iter()
                .zip(&weights.values)
                .map(|(n, w)| n * w)
                .collect();
            Row {
                index: i,
                rank: 0,
                score: points.iter().sum(),
                normalised,
                points,
                decision: Decision::Chosen,
                reason: String::new(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        let (sa, sb) = (&segments[a.index], &segments[b.index]);
        b.score
            .total_cmp(&a.score)
            .then(sb.customers.cmp(&sa.customers))
            .then(sa.segment_id.cmp(&sb.segment_id))
            .then(a.index.cmp(&b.index))
    });
    let mut chosen = 0usize;
    for (r, row) in rows.iter_mut().enumerate() {
        row.rank = r + 1;
        let s = &segments[row.index];
        row.decision = if constraints.exclude.contains(&s.label) {
            Decision::Excluded
        } else if u64::try_from(s.customers).unwrap_or(0) < constraints.min_customers {
            Decision::BelowMinCustomers {
                customers: s.customers,
                min: constraints.min_customers,
            }
        } else if s.share < constraints.min_share || s.share.is_nan() {
            Decision::BelowMinShare {
                share: s.share,
                min: constraints.min_share,
            }
        } else if row.score <= 0.0 {
            Decision::ZeroScore
        } else if constraints.max_targets.is_some_and(|m| chosen >= m) {
            Decision::MaxTargets {
                max: constraints.max_targets.unwrap_or(0),
            }
        } else {
            chosen += 1;
            Decision::Chosen
        };
        row.reason = reason(row, s, weights);
    }
    Ok(Selection { rows, nulls })
}

/// At most this many contributions are listed in a chosen segment's reason.
const LISTED: usize = 3;

fn reason(row: &Row, s: &Segment, weights: &Weights) -> String {
    match &row.decision {
        Decision::Chosen => {
            let mut parts: Vec<(usize, f64)> = row
                .points
                .iter()
                .copied()
                .enumerate()
                .filter(|(_, p)| *p > 0.0)
                .collect();
            parts.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let more = parts.len() > LISTED;
            let mut list: Vec<String> = parts
                .iter()
                .take(LISTED)
                .map(|(c, p)| format!("{} {p:.2}", weights.criteria[*c]))
                .collect();
            if more {
                list.push("…".into());
            }
            format!(
                "rank {}: score {:.2} ({})",
                row.rank,
                row.score,
                list.join(", ")
            )
        }
        Decision::Excluded => "excluded in config".into(),
        Decision::BelowMinCustomers { customers, min } => {
            format!("below min_customers: {customers} customers < {min}")
        }
        Decision::BelowMinShare { share, min } => {
            format!("below min_share: share {} < {}", Num(*share), Num(*min))
        }
        Decision::ZeroScore => {
            let unknown: Vec<&str> = s
                .raw
                .iter()
                .enumerate()
                .filter(|(c, v)| v.is_none() && weights.values[*c] > 0.0)
                .map(|(c, _)| weights.criteria[c].as_str())
                .collect();
            if unknown.is_empty() {
                "score 0: scores lowest on every weighted criterion".into()
            } else {
                format!(
                    "score 0: scores lowest on every weighted criterion (unknown {} counted as lowest)",
                    unknown.join(", ")
                )
            }
        }
        Decision::MaxTargets { max } => {
            format!("max_targets reached: {max} better-ranked segments already chosen")
        }
    }
}

/// A share printed with at most 4 decimals and no trailing zeros.
struct Num(f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = format!("{:.4}", self.0);
        let s = s.trim_end_matches('0').trim_end_matches('.');
        f.write_str(if s == "-0" { "0" } else { s })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: f64 = 1e-12;

    fn seg(id: i32, label: &str, customers: i64, raw: &[Option<f64>]) -> Segment {
        Segment {
            segment_id: id,
            label: label.into(),
            customers,
            share: customers as f64 / 1000.0,
            raw: raw.to_vec(),
        }
    }

    /// Four segments of 1000 customers, criteria size (customer share), value
    /// (revenue share) and growth.
    fn four() -> Vec<Segment> {
        vec![
            seg(0, "A", 400, &[Some(0.40), Some(0.20), Some(0.05)]),
            seg(1, "B", 300, &[Some(0.30), Some(0.50), Some(0.10)]),
            seg(2, "C", 200, &[Some(0.20), Some(0.25), Some(-0.05)]),
            seg(3, "D", 100, &[Some(0.10), Some(0.05), Some(0.15)]),
        ]
    }

    fn weights() -> Weights {
        Weights::new([("size", 0.3), ("value", 0.5), ("growth", 0.2)]).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < TOL
    }

    fn labels(segs: &[Segment], sel: &Selection) -> Vec<String> {
        sel.rows
            .iter()
            .map(|r| segs[r.index].label.clone())
            .collect()
    }

    fn row<'a>(segs: &[Segment], sel: &'a Selection, label: &str) -> &'a Row {
        sel.rows
            .iter()
            .find(|r| segs[r.index].label == label)
            .unwrap()
    }

    // Hand calculation for `four()` with weights size 0.3, value 0.5, growth 0.2:
    //   size:   min 0.10, max 0.40, range 0.30
    //           A (0.40-0.10)/0.30 = 1        B 0.20/0.30 = 2/3
    //           C 0.10/0.30 = 1/3             D 0
    //   value:  min 0.05, max 0.50, range 0.45
    //           A 0.15/0.45 = 1/3             B 1
    //           C 0.20/0.45 = 4/9             D 0
    //   growth: min -0.05, max 0.15, range 0.20
    //           A 0.10/0.20 = 0.5             B 0.15/0.20 = 0.75
    //           C 0                           D 1
    //   score A = 0.3*1   + 0.5*1/3 + 0.2*0.5  = 0.3 + 0.1666… + 0.1 = 0.5666…
    //   score B = 0.3*2/3 + 0.5*1   + 0.2*0.75 = 0.2 + 0.5     + 0.15 = 0.85
    //   score C = 0.3*1/3 + 0.5*4/9 + 0.2*0    = 0.1 + 0.2222…        = 0.3222…
    //   score D = 0       + 0       + 0.2*1    = 0.2
    //   ranking: B (0.85), A (0.567), C (0.322), D (0.2)
    const SCORE_A: f64 = 0.3 + 0.5 / 3.0 + 0.1;
    const SCORE_B: f64 = 0.2 + 0.5 + 0.15;
    const SCORE_C: f64 = 0.1 + 0.5 * 4.0 / 9.0;
    const SCORE_D: f64 = 0.2;

    #[test]
    fn four_segments_score_and_rank_as_by_hand() {
        let segs = four();
        let sel = select(&segs, &weights(), &Constraints::default()).unwrap();
        assert_eq!(labels(&segs, &sel), ["B", "A", "C", "D"]);
        for (label, score, rank) in [
            ("A", SCORE_A, 2),
            ("B", SCORE_B, 1),
            ("C", SCORE_C, 3),
            ("D", SCORE_D, 4),
        ] {
            let r = row(&segs, &sel, label);
            assert!(close(r.score, score), "{label}: {} vs {score}", r.score);
            assert_eq!(r.rank, rank);
            assert!(close(r.points.iter().sum::<f64>(), r.score));
            assert!(r.decision.is_chosen(), "{label}: {}", r.reason);
        }
        let a = row(&segs, &sel, "A");
        for (got, want) in a.normalised.iter().zip([1.0, 1.0 / 3.0, 0.5]) {
            assert!(close(*got, want), "{got} vs {want}");
        }
        for (got, want) in a.points.iter().zip([0.3, 0.5 / 3.0, 0.1]) {
            assert!(close(*got, want), "{got} vs {want}");
        }
        // B's contributions, largest first: value 0.5, size 0.2, growth 0.15.
        assert_eq!(
            row(&segs, &sel, "B").reason,
            "rank 1: score 0.85 (value 0.50, size 0.20, growth 0.15)"
        );
        // D has only growth (0.2 * 1).
        assert_eq!(
            row(&segs, &sel, "D").reason,
            "rank 4: score 0.20 (growth 0.20)"
        );
        assert!(sel.nulls.is_empty());
        assert_eq!(sel.chosen(), vec![1, 0, 2, 3]);
    }

    #[test]
    fn min_customers_excludes_the_top_scorer_and_max_targets_cuts() {
        let segs = four();
        // B (rank 1, 300 customers) is below 350: A, then C are chosen.
        let c = Constraints {
            min_customers: 350,
            max_targets: Some(2),
            ..Default::default()
        };
        let sel = select(&segs, &weights(), &c).unwrap();
        let b = row(&segs, &sel, "B");
        assert_eq!(b.rank, 1);
        assert_eq!(
            b.decision,
            Decision::BelowMinCustomers {
                customers: 300,
                min: 350
            }
        );
        assert_eq!(b.reason, "below min_customers: 300 customers < 350");
        // A is the only segment with at least 350 customers; C and D are below too.
        assert!(row(&segs, &sel, "A").decision.is_chosen());
        assert_eq!(sel.chosen(), vec![0]);

        // max_targets 2 without size limits: B and A chosen, C and D cut.
        let c = Constraints {
            max_targets: Some(2),
            ..Default::default()
        };
        let sel = select(&segs, &weights(), &c).unwrap();
        assert_eq!(sel.chosen(), vec![1, 0]);
        let cr = row(&segs, &sel, "C");
        assert_eq!(cr.decision, Decision::MaxTargets { max: 2 });
        assert_eq!(
            cr.reason,
            "max_targets reached: 2 better-ranked segments already chosen"
        );

        // min_share 0.25: C (0.20) and D (0.10) are below; exclude B by label.
        let c = Constraints {
            min_share: 0.25,
            exclude: vec!["B".into()],
            ..Default::default()
        };
        let sel = select(&segs, &weights(), &c).unwrap();
        assert_eq!(sel.chosen(), vec![0]);
        assert_eq!(row(&segs, &sel, "B").reason, "excluded in config");
        assert_eq!(
            row(&segs, &sel, "C").reason,
            "below min_share: share 0.2 < 0.25"
        );
        // A share equal to min_share is allowed.
        let c = Constraints {
            min_share: 0.3,
            ..Default::default()
        };
        let sel = select(&segs, &weights(), &c).unwrap();
        assert_eq!(sel.chosen(), vec![1, 0]);
    }

    #[test]
    fn equal_values_score_one_each() {
        // Every segment has value 0.25: value normalises to 1.0 for all of them, so
        // the scores are 0.5*1 + 0.5*size_normalised:
        //   size 0.4, 0.3, 0.2, 0.1 → 1, 2/3, 1/3, 0 → scores 1, 5/6, 2/3, 0.5.
        let segs: Vec<Segment> = four()
            .into_iter()
            .map(|mut s| {
                s.raw = vec![s.raw[0], Some(0.25)];
                s
            })
            .collect();
        let w = Weights::new([("size", 0.5), ("value", 0.5)]).unwrap();
        let sel = select(&segs, &w, &Constraints::default()).unwrap();
        assert_eq!(labels(&segs, &sel), ["A", "B", "C", "D"]);
        for (r, want) in sel.rows.iter().zip([1.0, 5.0 / 6.0, 2.0 / 3.0, 0.5]) {
            assert_eq!(r.normalised[1], 1.0);
            assert!(close(r.score, want), "{} vs {want}", r.score);
        }
        // One segment: every criterion is constant, score = sum of weights = 1.
        let one = vec![seg(7, "only", 10, &[Some(0.0), Some(0.0)])];
        let sel = select(&one, &w, &Constraints::default()).unwrap();
        assert_eq!(sel.rows[0].score, 1.0);
        assert!(sel.rows[0].decision.is_chosen());
        assert_eq!(normalise(&[]), Vec::<f64>::new());
        assert_eq!(normalise(&[None, Some(3.0)]), vec![0.0, 1.0]);
    }

    #[test]
    fn nulls_score_zero_and_are_reported() {
        // B's value is unknown: value is normalised over A 0.20, C 0.25, D 0.05
        //   (min 0.05, max 0.25, range 0.20): A 0.75, C 1, D 0, B 0 (null).
        //   score A = 0.3*1   + 0.5*0.75 + 0.2*0.5  = 0.3 + 0.375 + 0.1 = 0.775
        //   score B = 0.3*2/3 + 0        + 0.2*0.75 = 0.2 + 0.15        = 0.35
        //   score C = 0.3*1/3 + 0.5*1    + 0        = 0.1 + 0.5         = 0.6
        //   score D = 0.2
        let mut segs = four();
        segs[1].raw[1] = None;
        let sel = select(&segs, &weights(), &Constraints::default()).unwrap();
        assert_eq!(sel.nulls, vec![(1, 1)]);
        assert_eq!(labels(&segs, &sel), ["A", "C", "B", "D"]);
        for (label, want) in [("A", 0.775), ("B", 0.35), ("C", 0.6), ("D", 0.2)] {
            let r = row(&segs, &sel, label);
            assert!(close(r.score, want), "{label}: {} vs {want}", r.score);
        }
        // A segment unknown on the only criterion with weight scores 0 and is not chosen.
        let w = Weights::new([("size", 0.0), ("value", 1.0), ("growth", 0.0)]).unwrap();
        let sel = select(&segs, &w, &Constraints::default()).unwrap();
        let b = row(&segs, &sel, "B");
        assert_eq!(b.decision, Decision::ZeroScore);
        assert_eq!(
            b.reason,
            "score 0: scores lowest on every weighted criterion (unknown value counted as lowest)"
        );
        // D has the lowest value (0.05 → 0): score 0, not chosen.
        assert_eq!(
            row(&segs, &sel, "D").reason,
            "score 0: scores lowest on every weighted criterion"
        );
    }

    #[test]
    fn weights_not_summing_to_one_are_normalised() {
        // 3, 5, 2 sum to 10 → 0.3, 0.5, 0.2: the same scores as by hand above.
        let w = Weights::new([("size", 3.0), ("value", 5.0), ("growth", 2.0)]).unwrap();
        assert!(w.was_normalised());
        assert_eq!(w.given_sum(), 10.0);
        assert_eq!(w.values(), &[0.3, 0.5, 0.2]);
        let segs = four();
        let sel = select(&segs, &w, &Constraints::default()).unwrap();
        assert!(close(row(&segs, &sel, "B").score, SCORE_B));
        assert!(close(row(&segs, &sel, "C").score, SCORE_C));
        // Within 1e-9 of 1: used as given.
        let w = Weights::new([("a", 0.5), ("b", 0.5 + 1e-12)]).unwrap();
        assert!(!w.was_normalised());
        assert_eq!(w.values(), &[0.5, 0.5 + 1e-12]);
        assert!(!weights().was_normalised());
    }

    #[test]
    fn bad_weights_and_constraints_are_typed_errors() {
        assert_eq!(
            Weights::new([("size", 0.5), ("value", -0.1)]),
            Err(TargetingError::BadWeight {
                criterion: "value".into(),
                weight: -0.1
            })
        );
        assert!(matches!(
            Weights::new([("size", f64::NAN)]),
            Err(TargetingError::BadWeight { .. })
        ));
        assert_eq!(
            Weights::new([("size", 0.0), ("value", 0.0)]),
            Err(TargetingError::AllZero)
        );
        assert_eq!(
            Weights::new(Vec::<(String, f64)>::new()),
            Err(TargetingError::NoCriteria)
        );
        assert_eq!(
            Weights::new([("size", 0.5), ("size", 0.5)]),
            Err(TargetingError::DuplicateCriterion("size".into()))
        );
        let segs = four();
        let bad = |c: Constraints| select(&segs, &weights(), &c).unwrap_err();
        assert_eq!(
            bad(Constraints {
                min_share: 1.5,
                ..Default::default()
            }),
            TargetingError::BadMinShare(1.5)
        );
        assert_eq!(
            bad(Constraints {
                max_targets: Some(0),
                ..Default::default()
            }),
            TargetingError::ZeroMaxTargets
        );
        let mut inf = four();
        inf[2].raw[0] = Some(f64::INFINITY);
        assert!(matches!(
            select(&inf, &weights(), &Constraints::default()),
            Err(TargetingError::NotFinite { .. })
        ));
        let mut short = four();
        short[0].raw.pop();
        assert!(matches!(
            select(&short, &weights(), &Constraints::default()),
            Err(TargetingError::Lengths { .. })
        ));
    }

    #[test]
    fn ties_go_to_the_larger_segment_then_the_lower_id() {
        // Same raw values everywhere: every score is 1.0.
        let segs = vec![
            seg(5, "small", 10, &[Some(1.0)]),
            seg(3, "big_late", 50, &[Some(1.0)]),
            seg(1, "big_early", 50, &[Some(1.0)]),
        ];
        let w = Weights::new([("value", 1.0)]).unwrap();
        let sel = select(&segs, &w, &Constraints::default()).unwrap();
        assert_eq!(labels(&segs, &sel), ["big_early", "big_late", "small"]);
        assert!(sel.rows.iter().all(|r| r.score == 1.0));
    }
}
