//! Missing-value imputation of numeric and text columns, overall or per group.
//!
//! The fill value of a group is computed from the group's non-null, non-NaN values
//! (mean; median as numpy/pandas; mode with ties to the smallest value, as
//! `pandas.Series.mode()[0]`; or a constant). A group with no value to compute from
//! takes the overall fill value; when the whole column has none, its nulls stay null
//! and are counted as unfilled.

use crate::stats;
use arrow::array::{Array, Float64Array, StringArray};
use std::collections::HashMap;

/// Errors of [`impute`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImputeError {
    /// A constant fill value is not finite.
    #[error("the constant fill value must be finite, got {0}")]
    BadConstant(f64),
    /// The group ids do not match the values.
    #[error("{groups} group ids for {values} values")]
    LengthMismatch { groups: usize, values: usize },
}

/// How the fill value is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ImputeMethod {
    Mean,
    Median,
    Mode,
    /// A fixed value; build with [`ImputeMethod::constant`].
    Constant(f64),
}

impl ImputeMethod {
    /// A constant fill value (must be finite).
    pub fn constant(value: f64) -> Result<Self, ImputeError> {
        if value.is_finite() {
            Ok(ImputeMethod::Constant(value))
        } else {
            Err(ImputeError::BadConstant(value))
        }
    }
    /// `mean`, `median`, `mode` or `constant`.
    pub fn name(&self) -> &'static str {
        match self {
            ImputeMethod::Mean => "mean",
            ImputeMethod::Median => "median",
            ImputeMethod::Mode => "mode",
            ImputeMethod::Constant(_) => "constant",
        }
    }
    /// The fill value for `values` (already free of nulls and NaN).
    pub fn fill_value(&self, values: &[f64]) -> Option<f64> {
        match self {
            ImputeMethod::Mean => stats::mean(values),
            ImputeMethod::Median => stats::median(values),
            ImputeMethod::Mode => stats::mode(values),
            ImputeMethod::Constant(c) => Some(*c),
        }
    }
}

/// The result of [`impute`].
#[derive(Debug, Clone, PartialEq)]
pub struct Imputed {
    /// The column with its nulls (and NaN) filled.
    pub values: Float64Array,
    /// The overall fill value (`None` when the column has no value).
    pub overall: Option<f64>,
    /// The fill value of each group (group-wise only; falls back to `overall`).
    pub group_fills: Vec<Option<f64>>,
    /// Values filled.
    pub filled: usize,
    /// Missing values left null (no fill value anywhere).
    pub unfilled: usize,
}

/// Fill the nulls and NaN of `values`, overall (`groups: None`) or per group
/// (`Some((ids, n_groups))`, ids as from [`crate::keys::group_ids`]).
pub fn impute(
    values: &Float64Array,
    method: ImputeMethod,
    groups: Option<(&[u32], usize)>,
) -> Result<Imputed, ImputeError> {
    let n = values.len();
    let present = |i: usize| values.is_valid(i) && !values.value(i).is_nan();
    let all: Vec<f64> = (0..n)
        .filter(|&i| present(i))
        .map(|i| values.value(i))
        .collect();
    let overall = method.fill_value(&all);
    let mut group_fills = Vec::new();
    if let Some((ids, k)) = groups {
        if ids.len() != n {
            return Err(ImputeError::LengthMismatch {
                groups: ids.len(),
                values: n,
            });
        }
        let mut per: Vec<Vec<f64>> = vec![Vec::new(); k];
        for i in (0..n).filter(|&i| present(i)) {
            if let Some(g) = per.get_mut(ids[i] as usize) {
                g.push(values.value(i));
            }
        }
        group_fills = per
            .iter()
            .map(|g| method.fill_value(g).or(overall))
            .collect();
    }
    let (mut filled, mut unfilled) = (0, 0);
    let out: Float64Array = (0..n)
        .map(|i| {
            if present(i) {
                return Some(values.value(i));
            }
            let fill = match groups {
                Some((ids, _)) => group_fills.get(ids[i] as usize).copied().flatten(),
                None => overall,
            };
            match fill {
                Some(_) => filled += 1,
                None => unfilled += 1,
            }
            fill
        })
        .collect();
    Ok(Imputed {
        values: out,
        overall,
        group_fills,
        filled,
        unfilled,
    })
}

/// How a text column's fill value is computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextImputeMethod {
    /// The most frequent value; ties go to the smallest (as `pandas.Series.mode()[0]`).
    Mode,
    /// A fixed value.
    Constant(String),
}

/// The result of [`impute_text`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImputedText {
    /// The column with its nulls filled.
    pub values: StringArray,
    /// The overall fill value (`None` when the column has no value).
    pub overall: Option<String>,
    /// The fill value of each group (group-wise only; falls back to `overall`).
    pub group_fills: Vec<Option<String>>,
    /// Values filled.
    pub filled: usize,
    /// Missing values left null.
    pub unfilled: usize,
}

fn text_fill(method: &TextImputeMethod, values: &[&str]) -> Option<String> {
    match method {
        TextImputeMethod::Constant(c) => Some(c.clone()),
        TextImputeMethod::Mode => {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for v in values {
                *counts.entry(v).or_default() += 1;
            }
            counts
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
                .map(|(v, _)| v.to_string())
        }
    }
}

/// Fill the nulls of a text column, overall or per group (as [`impute`]).
pub fn impute_text(
    values: &StringArray,
    method: &TextImputeMethod,
    groups: Option<(&[u32], usize)>,
) -> Result<ImputedText, ImputeError> {
    let n = values.len();
    let all: Vec<&str> = values.iter().flatten().collect();
    let overall = text_fill(method, &all);
    let mut group_fills = Vec::new();
    if let Some((ids, k)) = groups {
        if ids.len() != n {
            return Err(ImputeError::LengthMismatch {
                groups: ids.len(),
                values: n,
            });
        }
        let mut per: Vec<Vec<&str>> = vec![Vec::new(); k];
        for (i, v) in values.iter().enumerate() {
            if let (Some(v), Some(g)) = (v, per.get_mut(ids[i] as usize)) {
                g.push(v);
            }
        }
        group_fills = per
            .iter()
            .map(|g| text_fill(method, g).or_else(|| overall.clone()))
            .collect();
    }
    let (mut filled, mut unfilled) = (0, 0);
    let out: StringArray = (0..n)
        .map(|i| {
            if values.is_valid(i) {
                return Some(values.value(i).to_string());
            }
            let fill = match groups {
                Some((ids, _)) => group_fills.get(ids[i] as usize).cloned().flatten(),
                None => overall.clone(),
            };
            if fill.is_some() {
                filled += 1;
            } else {
                unfilled += 1;
            }
            fill
        })
        .collect();
    Ok(ImputedText {
        values: out,
        overall,
        group_fills,
        filled,
        unfilled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overall_and_grouped() {
        let v = Float64Array::from(vec![
            Some(1.0),
            None,
            Some(3.0),
            Some(f64::NAN),
            Some(10.0),
            None,
        ]);
        let r = impute(&v, ImputeMethod::Median, None).unwrap();
        assert_eq!(r.overall, Some(3.0));
        assert_eq!((r.filled, r.unfilled), (3, 0));
        assert_eq!(r.values.value(1), 3.0);
        let ids = [0, 0, 0, 1, 1, 2];
        let r = impute(&v, ImputeMethod::Mean, Some((&ids, 3))).unwrap();
        assert_eq!(r.group_fills, [Some(2.0), Some(10.0), Some(14.0 / 3.0)]);
        assert_eq!(r.values.value(3), 10.0);
        assert_eq!(r.values.value(5), 14.0 / 3.0); // empty group: overall mean
    }

    #[test]
    fn text_mode_and_constant() {
        let v = StringArray::from(vec![Some("b"), None, Some("a"), Some("b"), Some("a"), None]);
        let r = impute_text(&v, &TextImputeMethod::Mode, None).unwrap();
        assert_eq!(r.overall.as_deref(), Some("a")); // tie: smallest
        assert_eq!((r.filled, r.unfilled), (2, 0));
        let ids = [0, 0, 1, 1, 1, 2];
        let r = impute_text(&v, &TextImputeMethod::Mode, Some((&ids, 3))).unwrap();
        assert_eq!(r.values.value(1), "b");
        assert_eq!(r.values.value(5), "a"); // empty group: overall
        let c = TextImputeMethod::Constant("unknown".into());
        let r = impute_text(&StringArray::from(vec![None::<&str>]), &c, None).unwrap();
        assert_eq!(r.values.value(0), "unknown");
    }

    #[test]
    fn nothing_to_fill_from_and_bad_input() {
        let v = Float64Array::from(vec![None, None]);
        let r = impute(&v, ImputeMethod::Mode, None).unwrap();
        assert_eq!((r.filled, r.unfilled, r.overall), (0, 2, None));
        assert!(ImputeMethod::constant(f64::INFINITY).is_err());
        let r = impute(&v, ImputeMethod::constant(0.5).unwrap(), None).unwrap();
        assert_eq!(r.values.value(0), 0.5);
        assert!(impute(&v, ImputeMethod::Mean, Some((&[0], 1))).is_err());
    }
}
