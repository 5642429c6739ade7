//! Hashing helpers for multi-column keys: group ids and duplicate detection.
//!
//! Key columns are encoded with Arrow's row format ([`arrow::row`]), which gives every
//! row one comparable byte string whatever the column types. Two rows have the same key
//! exactly when their encodings are equal; nulls compare equal to nulls (as pandas'
//! `drop_duplicates` and `groupby(dropna=False)`). Row hashes are computed in parallel
//! on the current rayon pool; the grouping pass is sequential, in row order, so the
//! result never depends on the thread count.

use arrow::array::ArrayRef;
use arrow::error::ArrowError;
use arrow::row::{RowConverter, Rows, SortField};
use hashbrown::hash_table::{Entry, HashTable};
use rayon::prelude::*;

/// Below this many rows hashing runs on one thread.
const PARALLEL_ROWS: usize = 1 << 16;

/// Errors of the key helpers.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No key columns were given.
    #[error("a key needs at least one column")]
    NoColumns,
    /// The key columns differ in length.
    #[error("the key columns have different lengths")]
    LengthMismatch,
    /// More rows than a `u32` row number can address.
    #[error("more than 4,294,967,295 rows")]
    TooManyRows,
    /// Arrow could not encode the columns.
    #[error("encoding the key columns: {0}")]
    Encode(#[from] ArrowError),
}

/// Encoded keys of a table, ready for grouping.
pub struct KeyRows {
    rows: Rows,
    hashes: Vec<u64>,
}

impl KeyRows {
    /// Encode and hash the key `columns` (all of the same length).
    pub fn new(columns: &[ArrayRef]) -> Result<Self, KeyError> {
        let first = columns.first().ok_or(KeyError::NoColumns)?;
        let len = first.len();
        if columns.iter().any(|c| c.len() != len) {
            return Err(KeyError::LengthMismatch);
        }
        if len > u32::MAX as usize {
            return Err(KeyError::TooManyRows);
        }
        let fields = columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields)?;
        let rows = converter.convert_columns(columns)?;
        let state = ahash::RandomState::with_seeds(0x5e6f, 0x10f1, 0xc1ea, 0x0d0d);
        let hashes = if len >= PARALLEL_ROWS {
            (0..len)
                .into_par_iter()
                .with_min_len(4096)
                .map(|i| state.hash_one(rows.row(i).as_ref()))
                .collect()
        } else {
            (0..len)
                .map(|i| state.hash_one(rows.row(i).as_ref()))
                .collect()
        };
        Ok(KeyRows { rows, hashes })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The group id of every row, numbered by first appearance, and the group count.
    pub fn group_ids(&self) -> (Vec<u32>, usize) {
        let mut table: HashTable<(u64, u32, u32)> = HashTable::new();
        let mut ids = Vec::with_capacity(self.len());
        let mut n = 0u32;
        for i in 0..self.len() {
            let h = self.hashes[i];
            let row = self.rows.row(i);
            let entry = table.entry(
                h,
                |&(eh, first, _)| eh == h && self.rows.row(first as usize) == row,
                |&(eh, _, _)| eh,
            );
            match entry {
                Entry::Occupied(e) => ids.push(e.get().2),
                Entry::Vacant(e) => {
                    e.insert((h, i as u32, n));
                    ids.push(n);
                    n += 1;
                }
            }
        }
        (ids, n as usize)
    }
}

/// Group ids of the rows of `columns`, numbered by first appearance, and the number of
/// groups. Nulls form groups of their own.
pub fn group_ids(columns: &[ArrayRef]) -> Result<(Vec<u32>, usize), KeyError> {
    Ok(KeyRows::new(columns)?.group_ids())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn groups_by_first_appearance_with_nulls_equal() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(1),
            Some(2),
            Some(1),
            None,
            None,
        ]));
        let b: ArrayRef = Arc::new(StringArray::from(vec!["x", "x", "x", "y", "y"]));
        assert_eq!(
            group_ids(&[a.clone(), b]).unwrap(),
            (vec![0, 1, 0, 2, 2], 3)
        );
        assert!(matches!(group_ids(&[]), Err(KeyError::NoColumns)));
        let short: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        assert!(matches!(
            group_ids(&[a, short]),
            Err(KeyError::LengthMismatch)
        ));
    }

    #[test]
    fn parallel_hashing_gives_the_same_groups() {
        let n = PARALLEL_ROWS * 2 + 5;
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(
            (0..n as i64).map(|i| i % 1000),
        ));
        let (ids, k) = group_ids(&[a]).unwrap();
        assert_eq!(k, 1000);
        assert!(ids.iter().enumerate().all(|(i, &g)| g as usize == i % 1000));
    }
}
