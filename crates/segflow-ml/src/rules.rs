//! Row-level data-quality rules on Arrow columns: casting to a declared type, and
//! not-null, range, regex, allowed-values and uniqueness checks.
//!
//! Every check returns a failure mask (`true` = the row breaks the rule); a null value
//! passes every rule but [`Check::NotNull`]. What to do with failing rows (quarantine,
//! null the value, fail) is the caller's policy.

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, StringArray};
use arrow::compute::kernels::cmp;
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::error::ArrowError;
use arrow::row::{RowConverter, SortField};
use hashbrown::HashSet;
use std::sync::Arc;

/// Errors of the rule checks.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A literal in the rules cannot be converted to the column's type.
    #[error("`{literal}` is not a valid {data_type} value")]
    BadLiteral {
        literal: String,
        data_type: DataType,
    },
    /// A regular expression does not compile.
    #[error("invalid regular expression: {0}")]
    BadRegex(#[from] regex::Error),
    /// A regex check on a column that is not text.
    #[error("a regex needs a text column, this one is {0}")]
    RegexOnNonText(DataType),
    /// The column cannot be cast to the declared type at all.
    #[error("cannot cast {from} to {to}: {source}")]
    Cast {
        from: DataType,
        to: DataType,
        source: ArrowError,
    },
    /// A comparison kernel failed.
    #[error("comparing values: {0}")]
    Compare(ArrowError),
}

/// The declared types a column can be cast to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Int64,
    Float64,
    Utf8,
    Bool,
    /// Calendar date (Arrow `Date32`).
    Date,
    /// Timestamp in microseconds, without a time zone.
    Timestamp,
}

impl ColumnType {
    /// The Arrow type.
    pub fn data_type(self) -> DataType {
        match self {
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }

    /// The name used in configs: `int64`, `float64`, `utf8`, `bool`, `date`, `timestamp`.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Int64 => "int64",
            ColumnType::Float64 => "float64",
            ColumnType::Utf8 => "utf8",
            ColumnType::Bool => "bool",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
        }
    }
}

/// A literal from a rule (a bound or an allowed value), before it is typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Number(f64),
    Text(String),
    Bool(bool),
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Number(v) => write!(f, "{v}"),
            Literal::Text(s) => f.write_str(s),
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Convert literals to a column of type `to` (an error names the first that does not
/// convert: text is parsed as Arrow's cast parses it, e.g. `2024-12-31` for a date).
pub fn literals(values: &[Literal], to: &DataType) -> Result<ArrayRef, RuleError> {
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        let one: ArrayRef = match v {
            Literal::Number(x) => Arc::new(Float64Array::from(vec![*x])),
            Literal::Text(s) => Arc::new(StringArray::from(vec![s.as_str()])),
            Literal::Bool(b) => Arc::new(BooleanArray::from(vec![*b])),
        };
        let bad = || RuleError::BadLiteral {
            literal: v.to_string(),
            data_type: to.clone(),
        };
        let opts = CastOptions {
            safe: false,
            ..Default::default()
        };
        let typed = cast_with_options(&one, to, &opts).map_err(|_| bad())?;
        if typed.null_count() > 0 {
            return Err(bad());
        }
        out.push(typed);
    }
    let refs: Vec<&dyn Array> = out.iter().map(|a| a.as_ref()).collect();
    if refs.is_empty() {
        return Ok(arrow::array::new_empty_array(to));
    }
    arrow::compute::concat(&refs).map_err(RuleError::Compare)
}

/// Cast `array` to `to`. Values that do not convert become null and are flagged in the
/// returned mask (a value that was already null is not a failure).
pub fn cast_column(array: &ArrayRef, to: &DataType) -> Result<(ArrayRef, Vec<bool>), RuleError> {
    if array.data_type() == to {
        return Ok((array.clone(), vec![false; array.len()]));
    }
    let opts = CastOptions {
        safe: true,
        ..Default::default()
    };
    let out = cast_with_options(array, to, &opts).map_err(|source| RuleError::Cast {
        from: array.data_type().clone(),
        to: to.clone(),
        source,
    })?;
    let failed = (0..array.len())
        .map(|i| array.is_valid(i) && out.is_null(i))
        .collect();
    Ok((out, failed))
}

/// A row-level check.
#[derive(Debug, Clone)]
pub enum Check {
    /// The value is not null.
    NotNull,
    /// The value is not below this one-element array's value.
    Min(ArrayRef),
    /// The value is not above this one-element array's value.
    Max(ArrayRef),
    /// The whole text value matches the regular expression.
    Regex(regex::Regex),
    /// The value is one of these (same type as the column).
    In(ArrayRef),
}

impl Check {
    /// A regex check: the pattern must match the whole value.
    pub fn regex(pattern: &str) -> Result<Check, RuleError> {
        Ok(Check::Regex(regex::Regex::new(&format!(
            "^(?:{pattern})$"
        ))?))
    }
}

fn mask(b: &BooleanArray) -> Vec<bool> {
    (0..b.len()).map(|i| b.is_valid(i) && b.value(i)).collect()
}

/// Clear the mask where a float value is NaN: Arrow orders NaN above every number,
/// but NaN is no more out of range than a null is (use `not_null` after a cast, or
/// `impute`, to deal with it).
fn without_nan(array: &ArrayRef, mut m: Vec<bool>) -> Vec<bool> {
    use arrow::datatypes::{Float32Type, Float64Type};
    match array.data_type() {
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            m.iter_mut()
                .zip(a.values().iter())
                .for_each(|(f, v)| *f &= !v.is_nan());
        }
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            m.iter_mut()
                .zip(a.values().iter())
                .for_each(|(f, v)| *f &= !v.is_nan());
        }
        _ => {}
    }
    m
}

/// The rows of `array` that break `check`. NaN passes range checks, like null.
pub fn failures(array: &ArrayRef, check: &Check) -> Result<Vec<bool>, RuleError> {
    match check {
        Check::NotNull => Ok((0..array.len()).map(|i| array.is_null(i)).collect()),
        Check::Min(bound) => {
            let s = arrow::array::Scalar::new(bound.clone());
            let m = mask(&cmp::lt(array, &s).map_err(RuleError::Compare)?);
            Ok(without_nan(array, m))
        }
        Check::Max(bound) => {
            let s = arrow::array::Scalar::new(bound.clone());
            let m = mask(&cmp::gt(array, &s).map_err(RuleError::Compare)?);
            Ok(without_nan(array, m))
        }
        Check::Regex(re) => {
            let text = match array.data_type() {
                DataType::Utf8 => array.as_string::<i32>(),
                other => return Err(RuleError::RegexOnNonText(other.clone())),
            };
            Ok(text
                .iter()
                .map(|v| v.is_some_and(|s| !re.is_match(s)))
                .collect())
        }
        Check::In(allowed) => {
            let mut ok = vec![false; array.len()];
            for i in 0..allowed.len() {
                let s = arrow::array::Scalar::new(allowed.slice(i, 1));
                let eq = mask(&cmp::eq(array, &s).map_err(RuleError::Compare)?);
                ok.iter_mut().zip(eq).for_each(|(o, e)| *o |= e);
            }
            Ok((0..array.len())
                .map(|i| array.is_valid(i) && !ok[i])
                .collect())
        }
    }
}

/// Tracks keys seen across batches: a row breaks uniqueness when its key (all columns
/// non-null) was seen in an earlier row. Rows with a null key part pass.
pub struct UniqueTracker {
    converter: RowConverter,
    seen: HashSet<Box<[u8]>>,
}

impl UniqueTracker {
    /// A tracker for key columns of these types.
    pub fn new(types: &[DataType]) -> Result<Self, RuleError> {
        let fields = types.iter().map(|t| SortField::new(t.clone())).collect();
        Ok(UniqueTracker {
            converter: RowConverter::new(fields).map_err(RuleError::Compare)?,
            seen: HashSet::new(),
        })
    }

    /// The rows of this batch whose key was already seen. Rows with `skip[i]` (already
    /// rejected by another rule) neither fail nor register their key.
    pub fn check(&mut self, columns: &[ArrayRef], skip: &[bool]) -> Result<Vec<bool>, RuleError> {
        let rows = self
            .converter
            .convert_columns(columns)
            .map_err(RuleError::Compare)?;
        let n = columns.first().map_or(0, |c| c.len());
        let mut out = vec![false; n];
        for (i, o) in out.iter_mut().enumerate() {
            if skip.get(i).copied().unwrap_or(false) || columns.iter().any(|c| c.is_null(i)) {
                continue;
            }
            let key: Box<[u8]> = rows.row(i).as_ref().into();
            *o = !self.seen.insert(key);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    fn text(v: Vec<Option<&str>>) -> ArrayRef {
        Arc::new(StringArray::from(v))
    }

    #[test]
    fn cast_flags_only_values_that_fail() {
        let a = text(vec![
            Some("1.5"),
            None,
            Some("x"),
            Some("1,234.5"),
            Some("-2"),
        ]);
        let (out, failed) = cast_column(&a, &DataType::Float64).unwrap();
        assert_eq!(failed, [false, false, true, true, false]);
        assert_eq!(
            out.as_primitive::<arrow::datatypes::Float64Type>().value(4),
            -2.0
        );
        let d = text(vec![Some("2024-02-30"), Some("2024-02-28")]);
        let (_, failed) = cast_column(&d, &DataType::Date32).unwrap();
        assert_eq!(failed, [true, false]);
    }

    #[test]
    fn range_regex_in_and_not_null() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(-1), Some(5), None, Some(11)]));
        let lo = literals(&[Literal::Number(0.0)], &DataType::Int64).unwrap();
        let hi = literals(&[Literal::Number(10.0)], &DataType::Int64).unwrap();
        assert_eq!(
            failures(&a, &Check::Min(lo)).unwrap(),
            [true, false, false, false]
        );
        assert_eq!(
            failures(&a, &Check::Max(hi)).unwrap(),
            [false, false, false, true]
        );
        assert_eq!(
            failures(&a, &Check::NotNull).unwrap(),
            [false, false, true, false]
        );
        let allowed = literals(
            &[Literal::Number(5.0), Literal::Number(11.0)],
            &DataType::Int64,
        )
        .unwrap();
        assert_eq!(
            failures(&a, &Check::In(allowed)).unwrap(),
            [true, false, false, false]
        );
        let t = text(vec![Some("ab12"), Some("ab"), None]);
        let re = Check::regex("[a-z]+[0-9]+").unwrap();
        assert_eq!(failures(&t, &re).unwrap(), [false, true, false]);
        assert!(matches!(
            failures(&a, &re),
            Err(RuleError::RegexOnNonText(_))
        ));
        assert!(matches!(Check::regex("("), Err(RuleError::BadRegex(_))));
        let d = literals(&[Literal::Text("2024-12-31".into())], &DataType::Date32).unwrap();
        assert_eq!(d.len(), 1);
        assert!(matches!(
            literals(&[Literal::Text("soon".into())], &DataType::Date32),
            Err(RuleError::BadLiteral { .. })
        ));
    }

    #[test]
    fn nan_is_not_out_of_range() {
        let a: ArrayRef = Arc::new(Float64Array::from(vec![f64::NAN, 20.0, -1.0]));
        let hi = literals(&[Literal::Number(10.0)], &DataType::Float64).unwrap();
        let lo = literals(&[Literal::Number(0.0)], &DataType::Float64).unwrap();
        assert_eq!(failures(&a, &Check::Max(hi)).unwrap(), [false, true, false]);
        assert_eq!(failures(&a, &Check::Min(lo)).unwrap(), [false, false, true]);
    }

    #[test]
    fn uniqueness_spans_batches_and_skips_rejected_rows() {
        let mut u = UniqueTracker::new(&[DataType::Int64]).unwrap();
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(3)]));
        assert_eq!(
            u.check(&[a], &[false, false, false, true]).unwrap(),
            [false; 4]
        );
        let b: ArrayRef = Arc::new(Int64Array::from(vec![Some(2), None, Some(3), Some(3)]));
        assert_eq!(
            u.check(&[b], &[false; 4]).unwrap(),
            [true, false, false, true]
        );
    }
}
