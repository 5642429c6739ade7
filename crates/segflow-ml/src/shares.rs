//! Per-customer shares of categorical columns (channel mix, category mix).
//!
//! [`ShareAggregator`] takes the same transaction batches as
//! [`FeatureAggregator`](crate::features::FeatureAggregator), with one or more
//! categorical columns, and gives each customer the share of their transactions (or of
//! their spend) per listed value. The values are listed up front, so the output columns
//! are known before any data is read and stay the same from one month to the next;
//! every other value, and a null, counts towards an `other` column.
//!
//! Rows are folded in input order by one thread, so sums do not depend on the thread
//! count or on how the input is cut into batches.

use arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use arrow::error::ArrowError;
use hashbrown::HashMap;
use std::sync::Arc;
use thiserror::Error;

/// Errors of the share aggregator.
#[derive(Debug, Error)]
pub enum ShareError {
    /// A column was given no values to share over.
    #[error("column `{column}` lists no values; list the values to report a share for")]
    NoValues { column: String },
    /// A value was listed twice for one column.
    #[error("column `{column}` lists the value `{value}` twice")]
    DuplicateValue { column: String, value: String },
    /// The number of category arrays pushed differs from the number of columns.
    #[error("expected {expected} category columns, got {found}")]
    ColumnCount { expected: usize, found: usize },
    /// Arrays of one batch have different lengths.
    #[error("the key, amount and category columns of a batch have different lengths")]
    Length,
    /// A column could not be read as the needed type.
    #[error("reading the {role} column: {source}")]
    Cast {
        role: &'static str,
        #[source]
        source: ArrowError,
    },
    /// The output key column holds a key the aggregator never saw.
    #[error("the output key column holds a customer that had no transactions")]
    UnknownKey,
}

/// What a share is a share of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ShareWeight {
    /// The share of the customer's transactions (rows).
    #[default]
    Transactions,
    /// The share of the customer's net spend (the sum of amounts; refunds count
    /// negative). Null when the net spend is zero.
    Amount,
}

/// One categorical column and the values to report a share for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareColumn {
    /// Input column; any type Arrow can cast to text.
    pub column: String,
    /// Values with their own output column, in output order.
    pub values: Vec<String>,
    /// What the shares are shares of.
    pub weight: ShareWeight,
}

impl ShareColumn {
    /// Output column names: `<column>_share_<value>` per value, then
    /// `<column>_share_other`.
    pub fn output_names(&self) -> Vec<String> {
        self.values
            .iter()
            .map(String::as_str)
            .chain(["other"])
            .map(|v| format!("{}_share_{v}", self.column))
            .collect()
    }
}

/// Customer keys, as integers or text.
enum KeyIndex {
    Int(HashMap<i64, u32>),
    Str(HashMap<Box<str>, u32>),
}

/// Streaming per-customer share aggregator. See the [module docs](self).
pub struct ShareAggregator {
    columns: Vec<ShareColumn>,
    lookups: Vec<HashMap<String, usize>>,
    /// Offset of each column's slots in a customer's row of `sums`.
    offsets: Vec<usize>,
    width: usize,
    keys: KeyIndex,
    /// `width` weights per customer, in the order customers were first seen.
    sums: Vec<f64>,
}

const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: arrow::util::display::FormatOptions::new(),
};

impl ShareAggregator {
    /// An aggregator over `columns`; `int_keys` says whether keys are integers (else
    /// text).
    pub fn new(columns: Vec<ShareColumn>, int_keys: bool) -> Result<Self, ShareError> {
        let mut lookups = Vec::with_capacity(columns.len());
        let mut offsets = Vec::with_capacity(columns.len());
        let mut width = 0;
        for c in &columns {
            if c.values.is_empty() {
                return Err(ShareError::NoValues {
                    column: c.column.clone(),
                });
            }
            let mut lookup = HashMap::with_capacity(c.values.len());
            for (i, v) in c.values.iter().enumerate() {
                if lookup.insert(v.clone(), i).is_some() {
                    return Err(ShareError::DuplicateValue {
                        column: c.column.clone(),
                        value: v.clone(),
                    });
                }
            }
            lookups.push(lookup);
            offsets.push(width);
            width += c.values.len() + 1;
        }
        Ok(ShareAggregator {
            columns,
            lookups,
            offsets,
            width,
            keys: if int_keys {
                KeyIndex::Int(HashMap::new())
            } else {
                KeyIndex::Str(HashMap::new())
            },
            sums: Vec::new(),
        })
    }

    /// Add one batch: the key, the amount and one array per share column (in the order
    /// of `columns`). Rows listed in `skip` (ascending row numbers) are left out, as the
    /// feature aggregator left them out.
    pub fn push(
        &mut self,
        key: &ArrayRef,
        amount: &ArrayRef,
        categories: &[ArrayRef],
        skip: &[u32],
    ) -> Result<(), ShareError> {
        if categories.len() != self.columns.len() {
            return Err(ShareError::ColumnCount {
                expected: self.columns.len(),
                found: categories.len(),
            });
        }
        let n = key.len();
        if amount.len() != n || categories.iter().any(|c| c.len() != n) {
            return Err(ShareError::Length);
        }
        let by_amount = self.columns.iter().any(|c| c.weight == ShareWeight::Amount);
        let amounts = if by_amount {
            Some(
                cast_with_options(amount, &DataType::Float64, &STRICT).map_err(|source| {
                    ShareError::Cast {
                        role: "amount",
                        source,
                    }
                })?,
            )
        } else {
            None
        };
        let amounts = amounts.as_ref().map(|a| a.as_primitive::<Float64Type>());
        let texts: Vec<ArrayRef> = categories
            .iter()
            .map(|c| {
                cast_with_options(c, &DataType::Utf8, &STRICT).map_err(|source| ShareError::Cast {
                    role: "category",
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        let texts: Vec<_> = texts.iter().map(|t| t.as_string::<i32>()).collect();
        let slots = self.customer_slots(key, skip)?;
        let mut skip = skip.iter().peekable();
        for (row, slot) in slots.into_iter().enumerate() {
            if skip.next_if(|&&s| s as usize == row).is_some() {
                continue;
            }
            let amount = amounts.map_or(1.0, |a| a.value(row));
            let base = slot as usize * self.width;
            for (c, text) in texts.iter().enumerate() {
                let w = match self.columns[c].weight {
                    ShareWeight::Amount => amount,
                    ShareWeight::Transactions => 1.0,
                };
                let lookup = &self.lookups[c];
                let other = self.columns[c].values.len();
                let v = if text.is_valid(row) {
                    lookup.get(text.value(row)).copied().unwrap_or(other)
                } else {
                    other
                };
                self.sums[base + self.offsets[c] + v] += w;
            }
        }
        Ok(())
    }

    /// The slot of each row's customer, adding new customers (skipped rows get slot 0
    /// and are not added).
    fn customer_slots(&mut self, key: &ArrayRef, skip: &[u32]) -> Result<Vec<u32>, ShareError> {
        let mut skip = skip.iter().peekable();
        let mut out = Vec::with_capacity(key.len());
        let width = self.width;
        let sums = &mut self.sums;
        let mut next = |len: usize| {
            sums.resize(sums.len() + width, 0.0);
            len as u32
        };
        match &mut self.keys {
            KeyIndex::Int(map) => {
                let k = cast_with_options(key, &DataType::Int64, &STRICT).map_err(|source| {
                    ShareError::Cast {
                        role: "key",
                        source,
                    }
                })?;
                let k = k.as_primitive::<Int64Type>();
                for row in 0..k.len() {
                    if skip.next_if(|&&s| s as usize == row).is_some() || k.is_null(row) {
                        out.push(0);
                        continue;
                    }
                    let len = map.len();
                    out.push(*map.entry(k.value(row)).or_insert_with(|| next(len)));
                }
            }
            KeyIndex::Str(map) => {
                let k = cast_with_options(key, &DataType::Utf8, &STRICT).map_err(|source| {
                    ShareError::Cast {
                        role: "key",
                        source,
                    }
                })?;
                let k = k.as_string::<i32>();
                for row in 0..k.len() {
                    if skip.next_if(|&&s| s as usize == row).is_some() || k.is_null(row) {
                        out.push(0);
                        continue;
                    }
                    let v = k.value(row);
                    let slot = match map.get(v) {
                        Some(&s) => s,
                        None => {
                            let s = next(map.len());
                            map.insert(v.into(), s);
                            s
                        }
                    };
                    out.push(slot);
                }
            }
        }
        Ok(out)
    }

    /// The share columns for the customers of `keys` (the feature output's key column),
    /// in the order of [`ShareColumn::output_names`] for each column.
    pub fn finish(self, keys: &ArrayRef) -> Result<Vec<ArrayRef>, ShareError> {
        let slots: Vec<u32> = match &self.keys {
            KeyIndex::Int(map) => {
                let k = cast_with_options(keys, &DataType::Int64, &STRICT).map_err(|source| {
                    ShareError::Cast {
                        role: "key",
                        source,
                    }
                })?;
                k.as_primitive::<Int64Type>()
                    .iter()
                    .map(|v| v.and_then(|v| map.get(&v).copied()))
                    .collect::<Option<_>>()
            }
            KeyIndex::Str(map) => {
                let k = cast_with_options(keys, &DataType::Utf8, &STRICT).map_err(|source| {
                    ShareError::Cast {
                        role: "key",
                        source,
                    }
                })?;
                k.as_string::<i32>()
                    .iter()
                    .map(|v| v.and_then(|v| map.get(v).copied()))
                    .collect::<Option<_>>()
            }
        }
        .ok_or(ShareError::UnknownKey)?;
        let mut out: Vec<ArrayRef> = Vec::with_capacity(self.width);
        for (c, column) in self.columns.iter().enumerate() {
            let slots_of_column = column.values.len() + 1;
            let offset = self.offsets[c];
            for v in 0..slots_of_column {
                let shares: Float64Array = slots
                    .iter()
                    .map(|&s| {
                        let row = &self.sums[s as usize * self.width + offset..][..slots_of_column];
                        let total: f64 = row.iter().sum();
                        (total != 0.0).then(|| row[v] / total)
                    })
                    .collect();
                out.push(Arc::new(shares));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    fn shares(weight: ShareWeight) -> Vec<Vec<Option<f64>>> {
        let mut agg = ShareAggregator::new(
            vec![ShareColumn {
                column: "channel".into(),
                values: vec!["web".into(), "store".into()],
                weight,
            }],
            true,
        )
        .unwrap();
        let key: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 1, 1, 2, 3]));
        let amount: ArrayRef = Arc::new(Float64Array::from(vec![10.0, 5.0, 30.0, 60.0, 5.0, 1.0]));
        let channel: ArrayRef = Arc::new(StringArray::from(vec![
            Some("web"),
            Some("store"),
            Some("store"),
            None,
            Some("app"),
            Some("web"),
        ]));
        // row 5 (customer 3) is left out, as an excluded row would be
        agg.push(&key, &amount, &[channel], &[5]).unwrap();
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        agg.finish(&keys)
            .unwrap()
            .iter()
            .map(|a| a.as_primitive::<Float64Type>().iter().collect())
            .collect()
    }

    #[test]
    fn transaction_and_amount_shares_by_hand() {
        let t = shares(ShareWeight::Transactions);
        assert_eq!(t[0], vec![Some(1.0 / 3.0), Some(0.0)]);
        assert_eq!(t[1], vec![Some(1.0 / 3.0), Some(0.5)]);
        assert_eq!(t[2], vec![Some(1.0 / 3.0), Some(0.5)]);
        let a = shares(ShareWeight::Amount);
        assert_eq!(a[0], vec![Some(0.1), Some(0.0)]);
        assert_eq!(a[1], vec![Some(0.3), Some(0.5)]);
        assert_eq!(a[2], vec![Some(0.6), Some(0.5)]);
    }

    #[test]
    fn bad_params_are_typed_errors() {
        let col = |values: &[&str]| ShareColumn {
            column: "c".into(),
            values: values.iter().map(|v| v.to_string()).collect(),
            weight: ShareWeight::Transactions,
        };
        assert!(matches!(
            ShareAggregator::new(vec![col(&[])], true),
            Err(ShareError::NoValues { .. })
        ));
        assert!(matches!(
            ShareAggregator::new(vec![col(&["a", "a"])], true),
            Err(ShareError::DuplicateValue { .. })
        ));
        assert_eq!(
            col(&["a"]).output_names(),
            vec!["c_share_a".to_string(), "c_share_other".to_string()]
        );
    }
}
