//! Duplicate removal by a multi-column key.
//!
//! Rows are grouped by their key (see [`crate::keys`]: hashed, nulls equal to nulls);
//! in each group one row is kept by a [`Keep`] rule and the others are reported as
//! duplicates of it. The kept rows come back in input order, so the output is the
//! input with the duplicates taken out, whatever the thread count.

use crate::keys::{KeyError, KeyRows};
use arrow::array::{make_comparator, Array};
use arrow::compute::SortOptions;
use arrow::error::ArrowError;
use std::cmp::Ordering;

/// Errors of [`dedup`].
#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    /// Encoding or hashing the key failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The ordering column's length differs from the key's.
    #[error("the ordering column has {found} rows, the key {expected}")]
    LengthMismatch { expected: usize, found: usize },
    /// The ordering column's type cannot be compared.
    #[error("the ordering column cannot be compared: {0}")]
    Compare(ArrowError),
}

/// Which row of a group of equal keys is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The first row in input order (pandas `keep="first"`).
    First,
    /// The last row in input order (pandas `keep="last"`).
    Last,
    /// The row with the largest value of the ordering column; ties keep the first.
    /// Nulls rank below every value.
    MaxBy,
    /// The row with the smallest value of the ordering column; ties keep the first.
    /// Nulls rank above every value.
    MinBy,
}

/// What [`dedup`] decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dedup {
    /// Rows kept, ascending.
    pub kept: Vec<u32>,
    /// Rows dropped, ascending, each with the kept row whose key it repeats.
    pub duplicates: Vec<(u32, u32)>,
}

/// Deduplicate rows by `keys`. `order` is the column compared by [`Keep::MaxBy`] and
/// [`Keep::MinBy`] (ignored otherwise, and required by them: without it they behave as
/// [`Keep::First`]).
pub fn dedup(keys: &KeyRows, keep: Keep, order: Option<&dyn Array>) -> Result<Dedup, DedupError> {
    let n = keys.len();
    if let Some(o) = order {
        if o.len() != n {
            return Err(DedupError::LengthMismatch {
                expected: n,
                found: o.len(),
            });
        }
    }
    let (ids, groups) = keys.group_ids();
    let cmp = match (keep, order) {
        (Keep::MaxBy | Keep::MinBy, Some(o)) => {
            let opts = SortOptions {
                descending: false,
                nulls_first: keep == Keep::MaxBy,
            };
            Some(make_comparator(o, o, opts).map_err(DedupError::Compare)?)
        }
        _ => None,
    };
    let mut winner: Vec<u32> = vec![u32::MAX; groups];
    for (i, &g) in ids.iter().enumerate() {
        let w = &mut winner[g as usize];
        let take = *w == u32::MAX
            || match (keep, &cmp) {
                (Keep::Last, _) => true,
                (Keep::MaxBy, Some(c)) => c(i, *w as usize) == Ordering::Greater,
                (Keep::MinBy, Some(c)) => c(i, *w as usize) == Ordering::Less,
                _ => false,
            };
        if take {
            *w = i as u32;
        }
    }
    let mut out = Dedup::default();
    for (i, &g) in ids.iter().enumerate() {
        let w = winner[g as usize];
        if w == i as u32 {
            out.kept.push(w);
        } else {
            out.duplicates.push((i as u32, w));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Float64Array, Int64Array};
    use std::sync::Arc;

    fn keys() -> KeyRows {
        let k: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 1, 3, 1, 2]));
        KeyRows::new(&[k]).unwrap()
    }

    #[test]
    fn keep_rules() {
        let d = dedup(&keys(), Keep::First, None).unwrap();
        assert_eq!(d.kept, [0, 1, 3]);
        assert_eq!(d.duplicates, [(2, 0), (4, 0), (5, 1)]);
        let d = dedup(&keys(), Keep::Last, None).unwrap();
        assert_eq!(d.kept, [3, 4, 5]);
        assert_eq!(d.duplicates, [(0, 4), (1, 5), (2, 4)]);
        let by = Float64Array::from(vec![
            Some(1.0),
            None,
            Some(5.0),
            Some(0.0),
            Some(5.0),
            Some(2.0),
        ]);
        let d = dedup(&keys(), Keep::MaxBy, Some(&by)).unwrap();
        assert_eq!(d.kept, [2, 3, 5]); // tie 5.0 keeps the first; null loses
        let d = dedup(&keys(), Keep::MinBy, Some(&by)).unwrap();
        assert_eq!(d.kept, [0, 3, 5]); // null ranks above 2.0
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let by = Float64Array::from(vec![1.0]);
        assert!(matches!(
            dedup(&keys(), Keep::MaxBy, Some(&by)),
            Err(DedupError::LengthMismatch { .. })
        ));
    }
}
