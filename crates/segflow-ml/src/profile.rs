//! Segment profiles: per-segment statistics of a feature against the whole base, and
//! the mix of a categorical attribute with its lift.
//!
//! Definitions (the position docs repeat them):
//! - `mean`, `median` (numpy-linear), `std` (sample, ddof 1; null below 2 values) over
//!   the segment's non-null values;
//! - `index = 100 × segment mean / base mean` (null when the base mean is 0);
//! - `z = (segment mean − base mean) / base std` with the base's sample std (null when
//!   the feature is constant over the base);
//! - for a category value, `share` is the share of the segment's customers with that
//!   value (or, for a mix column such as `channel_share_web`, the segment's mean of it)
//!   and `lift = segment share / base share`.

use crate::stats;

/// Mean, median and sample standard deviation of one group's non-null values.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Non-null values.
    pub count: usize,
    pub mean: Option<f64>,
    pub median: Option<f64>,
    /// Sample standard deviation (ddof 1); `None` below two values.
    pub std: Option<f64>,
}

impl Summary {
    /// Summarise `values` (already without nulls).
    pub fn of(values: &[f64]) -> Summary {
        let n = values.len();
        let mean = stats::mean(values);
        let std = match (mean, n) {
            (Some(m), n) if n >= 2 => {
                let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
                Some((ss / (n - 1) as f64).sqrt())
            }
            _ => None,
        };
        Summary {
            count: n,
            mean,
            median: stats::median(values),
            std,
        }
    }
}

/// One feature profiled over the groups of a segmentation.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureProfile {
    /// The whole base (every row with a group).
    pub base: Summary,
    /// Each group, by group index.
    pub groups: Vec<Summary>,
    /// `100 × group mean / base mean`.
    pub index: Vec<Option<f64>>,
    /// `(group mean − base mean) / base std`.
    pub z: Vec<Option<f64>>,
}

/// Profile `values` (one per row, `None` for null) over `group` (the group index of
/// each row, `< k`).
///
/// # Panics
/// When `values` and `group` differ in length or a group index is `>= k` (caller bugs).
pub fn feature(values: &[Option<f64>], group: &[usize], k: usize) -> FeatureProfile {
    assert_eq!(values.len(), group.len(), "one group per value");
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); k];
    let mut all = Vec::with_capacity(values.len());
    for (v, &g) in values.iter().zip(group) {
        if let Some(v) = v {
            per[g].push(*v);
            all.push(*v);
        }
    }
    let base = Summary::of(&all);
    drop(all);
    let groups: Vec<Summary> = per.iter().map(|v| Summary::of(v)).collect();
    let index = groups
        .iter()
        .map(|g| match (g.mean, base.mean) {
            (Some(m), Some(b)) if b != 0.0 => Some(100.0 * m / b),
            _ => None,
        })
        .collect();
    let z = groups
        .iter()
        .map(|g| match (g.mean, base.mean, base.std) {
            (Some(m), Some(b), Some(s)) if s > 0.0 => Some((m - b) / s),
            _ => None,
        })
        .collect();
    FeatureProfile {
        base,
        groups,
        index,
        z,
    }
}

/// One value of a categorical attribute over the groups.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueShare {
    pub value: String,
    /// Share over the whole base.
    pub base_share: f64,
    /// Share within each group (0 for an empty group).
    pub shares: Vec<f64>,
    /// `share / base_share` per group (`None` when the base share is 0).
    pub lifts: Vec<Option<f64>>,
}

fn with_lifts(value: String, base_share: f64, shares: Vec<f64>) -> ValueShare {
    let lifts = shares
        .iter()
        .map(|s| (base_share > 0.0).then(|| s / base_share))
        .collect();
    ValueShare {
        value,
        base_share,
        shares,
        lifts,
    }
}

/// Shares of each value of a categorical column (one `Option<&str>` per row; null
/// counts as its own value `"(null)"` so shares sum to 1), in order of base share
/// (descending), then value.
pub fn category(values: &[Option<&str>], group: &[usize], k: usize) -> Vec<ValueShare> {
    assert_eq!(values.len(), group.len(), "one group per value");
    let mut codes: std::collections::HashMap<&str, usize> = Default::default();
    let mut names: Vec<&str> = Vec::new();
    let mut counts: Vec<Vec<u64>> = Vec::new();
    let mut sizes = vec![0u64; k];
    for (v, &g) in values.iter().zip(group) {
        let v = v.unwrap_or("(null)");
        let c = *codes.entry(v).or_insert_with(|| {
            names.push(v);
            counts.push(vec![0; k]);
            names.len() - 1
        });
        counts[c][g] += 1;
        sizes[g] += 1;
    }
    let n: u64 = sizes.iter().sum();
    let mut out: Vec<ValueShare> = names
        .iter()
        .zip(&counts)
        .map(|(name, c)| {
            let base = if n > 0 {
                c.iter().sum::<u64>() as f64 / n as f64
            } else {
                0.0
            };
            let shares = c
                .iter()
                .zip(&sizes)
                .map(|(&x, &s)| if s > 0 { x as f64 / s as f64 } else { 0.0 })
                .collect();
            with_lifts(name.to_string(), base, shares)
        })
        .collect();
    out.sort_by(|a, b| {
        b.base_share
            .total_cmp(&a.base_share)
            .then_with(|| a.value.cmp(&b.value))
    });
    out
}

/// Shares from mix columns (e.g. `channel_share_web`, `channel_share_app`): the share
/// of a value in a group is the group's mean of its column (nulls skipped), the base
/// share the mean over all rows. Values keep the order given.
pub fn mix(columns: &[(String, Vec<Option<f64>>)], group: &[usize], k: usize) -> Vec<ValueShare> {
    columns
        .iter()
        .map(|(name, values)| {
            let mut sum = vec![0.0; k];
            let mut count = vec![0usize; k];
            for (v, &g) in values.iter().zip(group) {
                if let Some(v) = v {
                    sum[g] += v;
                    count[g] += 1;
                }
            }
            let n: usize = count.iter().sum();
            let base = if n > 0 {
                sum.iter().sum::<f64>() / n as f64
            } else {
                0.0
            };
            let shares = sum
                .iter()
                .zip(&count)
                .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
                .collect();
            with_lifts(name.clone(), base, shares)
        })
        .collect()
}

/// The most common value of group `g` (highest share; ties: the order of `values`).
pub fn top(values: &[ValueShare], g: usize) -> Option<&ValueShare> {
    values
        .iter()
        .fold(None, |best: Option<&ValueShare>, v| match best {
            Some(b) if b.shares[g] >= v.shares[g] => Some(b),
            _ => Some(v),
        })
}

/// The most over-represented value of group `g`: highest lift among values holding at
/// least `min_share` of the group (ties: the order of `values`). `None` when no value
/// qualifies.
pub fn distinctive(values: &[ValueShare], g: usize, min_share: f64) -> Option<&ValueShare> {
    values
        .iter()
        .filter(|v| v.shares[g] >= min_share && v.lifts[g].is_some())
        .fold(None, |best: Option<&ValueShare>, v| match best {
            Some(b) if b.lifts[g] >= v.lifts[g] => Some(b),
            _ => Some(v),
        })
}

/// Sum of `values` per group (nulls skipped) and over all rows.
pub fn sums(values: &[Option<f64>], group: &[usize], k: usize) -> (Vec<f64>, f64) {
    let mut per = vec![0.0; k];
    for (v, &g) in values.iter().zip(group) {
        if let Some(v) = v {
            per[g] += v;
        }
    }
    let total = per.iter().sum();
    (per, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("a value");
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    // Hand-computed: values 1, 2, 3 in group 0 and 10, 20 in group 1, one null in 1.
    // base: 1 2 3 10 20 → mean 7.2, sample var = (38.44+27.04+17.64+7.84+163.84)/4
    // = 254.8/4 = 63.7, std = 7.981228...
    #[test]
    fn index_and_z_by_hand() {
        let v = [
            Some(1.0),
            Some(2.0),
            Some(3.0),
            Some(10.0),
            Some(20.0),
            None,
        ];
        let g = [0, 0, 0, 1, 1, 1];
        let p = feature(&v, &g, 2);
        close(p.base.mean, 7.2);
        close(p.base.std, 63.7f64.sqrt());
        close(p.groups[0].mean, 2.0);
        close(p.groups[0].median, 2.0);
        close(p.groups[0].std, 1.0);
        close(p.groups[1].mean, 15.0);
        assert_eq!(p.groups[1].count, 2);
        close(p.index[0], 100.0 * 2.0 / 7.2);
        close(p.index[1], 100.0 * 15.0 / 7.2);
        close(p.z[0], (2.0 - 7.2) / 63.7f64.sqrt());
        close(p.z[1], (15.0 - 7.2) / 63.7f64.sqrt());
    }

    #[test]
    fn constant_feature_has_no_z_and_zero_mean_no_index() {
        let p = feature(&[Some(5.0); 4], &[0, 0, 1, 1], 2);
        assert_eq!(p.z, vec![None, None]);
        close(p.index[0], 100.0);
        let p = feature(&[Some(-1.0), Some(1.0)], &[0, 1], 2);
        assert_eq!(p.index, vec![None, None]);
        close(p.z[1], 1.0 / 2f64.sqrt());
        // an empty group has no statistics
        let p = feature(&[Some(1.0), Some(2.0)], &[0, 0], 2);
        assert_eq!(p.groups[1], Summary::default());
        assert_eq!(p.z[1], None);
    }

    // Group 0: a a b (shares 2/3, 1/3); group 1: b b b c (0, 3/4, 1/4).
    // Base over 7 rows: a 2/7, b 4/7, c 1/7. Lift of a in group 0 = (2/3)/(2/7) = 7/3.
    #[test]
    fn category_shares_and_lift_by_hand() {
        let v = [
            Some("a"),
            Some("a"),
            Some("b"),
            Some("b"),
            Some("b"),
            Some("b"),
            Some("c"),
        ];
        let g = [0, 0, 0, 1, 1, 1, 1];
        let s = category(&v, &g, 2);
        assert_eq!(
            s.iter().map(|x| x.value.as_str()).collect::<Vec<_>>(),
            ["b", "a", "c"]
        );
        let a = &s[1];
        close(Some(a.base_share), 2.0 / 7.0);
        close(Some(a.shares[0]), 2.0 / 3.0);
        close(a.lifts[0], 7.0 / 3.0);
        close(a.lifts[1], 0.0);
        assert_eq!(top(&s, 0).unwrap().value, "a");
        assert_eq!(top(&s, 1).unwrap().value, "b");
        // c: share 1/4 in group 1, lift (1/4)/(1/7) = 7/4 > b's (3/4)/(4/7) = 21/16
        assert_eq!(distinctive(&s, 1, 0.2).unwrap().value, "c");
        assert_eq!(distinctive(&s, 1, 0.3).unwrap().value, "b");
        assert!(distinctive(&s, 1, 0.9).is_none());
    }

    #[test]
    fn mix_columns_average_per_group() {
        let cols = vec![
            (
                "web".to_string(),
                vec![Some(1.0), Some(0.5), Some(0.0), None],
            ),
            (
                "app".to_string(),
                vec![Some(0.0), Some(0.5), Some(1.0), None],
            ),
        ];
        let s = mix(&cols, &[0, 0, 1, 1], 2);
        close(Some(s[0].shares[0]), 0.75);
        close(Some(s[0].base_share), 0.5);
        close(s[0].lifts[0], 1.5);
        close(s[1].lifts[1], 2.0);
        let (per, total) = sums(&[Some(1.0), None, Some(2.5)], &[0, 1, 1], 2);
        assert_eq!(per, vec![1.0, 2.5]);
        assert_eq!(total, 3.5);
    }
}
