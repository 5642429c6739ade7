//! Categorical encodings: one-hot, ordinal and frequency.
//!
//! A categorical column is read as text ([`Categorical`]): UTF-8 columns as they are,
//! dictionary-encoded text through its dictionary, integers and booleans as their
//! decimal text (`42`, `true`). Integer columns sort numerically, text by code point
//! (as numpy and scikit-learn sort). Nulls are never a category of their own unless an
//! encoding says so.
//!
//! **Fitting** starts from [`ValueCounts`]: every distinct non-null value with its count,
//! most frequent first, ties in ascending value order. **Infrequent categories** follow
//! scikit-learn's `OneHotEncoder` / `OrdinalEncoder` (`max_categories`, `min_frequency`,
//! see [`Infrequent`]): a category counted fewer than `min_frequency` times (a count, or a
//! share of all rows including nulls) is infrequent; then, when at least
//! `max_categories` categories are left, only the `max_categories − 1` most frequent keep
//! their own slot and the rest join them in the shared `other` slot — so `other` is one of
//! the `max_categories` (scikit-learn's `infrequent_sklearn`). Where scikit-learn breaks
//! a tie in counts at the cut by keeping the larger value, segflow keeps the smaller (the
//! frequency order above); with distinct counts the two agree.
//!
//! - [`OneHot`]: a 0/1 `Int8` column per category, plus `other` (values outside the
//!   categories) and, with [`NullEncoding::Category`], `null`. With
//!   [`NullEncoding::Zeros`] a null row is all zeros (pandas' `get_dummies` default).
//!   Categories are either listed ([`OneHot::listed`]) or fitted ([`OneHot::fit`]:
//!   frequent categories in frequency order).
//! - [`Ordinal`]: an `Int64` code per category, 0-based: the listed order, or fitted in
//!   sorted order (scikit-learn's `OrdinalEncoder`) or frequency order; infrequent
//!   categories share the last code; nulls stay null; a value outside the categories is
//!   null or an error ([`UnknownOrdinal`]).
//! - [`frequency_count`] / [`frequency_share`]: each value replaced by its count, or its
//!   share of the non-null values (pandas' `value_counts(normalize=True)`); nulls stay
//!   null.

use ahash::RandomState;
use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, Int8Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use hashbrown::HashMap;
use std::cmp::Ordering;

/// Errors of the encodings.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// A parameter is out of range.
    #[error("{name} must be {rule}, got {value}")]
    BadParameter {
        name: &'static str,
        rule: &'static str,
        value: String,
    },
    /// An explicit category list is empty.
    #[error("the category list is empty")]
    NoCategories,
    /// A category is listed twice.
    #[error("category `{0}` is listed twice")]
    DuplicateCategory(String),
    /// The column type cannot be read as categories.
    #[error(
        "a column of type {0} cannot be encoded: use text, dictionary-encoded text, \
         integer or boolean columns"
    )]
    UnsupportedType(DataType),
    /// A value is not one of the categories and the encoding says that is an error.
    #[error("row {row}: value `{value}` is not one of the categories")]
    Unknown { row: usize, value: String },
    /// Arrow failed to convert the column.
    #[error("reading the column as text: {0}")]
    Arrow(#[from] ArrowError),
}

/// True when a column of type `dt` can be read as a [`Categorical`].
pub fn is_categorical(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean => true,
        DataType::Dictionary(k, v) => k.is_integer() && is_categorical(v),
        d => d.is_integer(),
    }
}

fn is_numeric_categorical(dt: &DataType) -> bool {
    match dt {
        DataType::Dictionary(_, v) => is_numeric_categorical(v),
        d => d.is_integer(),
    }
}

/// A categorical column read as text.
#[derive(Debug, Clone)]
pub struct Categorical {
    values: StringArray,
    numeric: bool,
}

impl Categorical {
    /// Read `array` (text, dictionary-encoded text, integer or boolean) as text.
    pub fn new(array: &ArrayRef) -> Result<Self, EncodeError> {
        let dt = array.data_type();
        if !is_categorical(dt) {
            return Err(EncodeError::UnsupportedType(dt.clone()));
        }
        let text = cast(array, &DataType::Utf8)?;
        let values = text
            .as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .ok_or_else(|| {
                EncodeError::Arrow(ArrowError::CastError("cast to Utf8 gave no Utf8".into()))
            })?;
        Ok(Categorical {
            values,
            numeric: is_numeric_categorical(dt),
        })
    }

    /// A column of text values.
    pub fn from_strs<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        Categorical {
            values: values.into_iter().collect(),
            numeric: false,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Value of row `i` (`None` for null).
    pub fn get(&self, i: usize) -> Option<&str> {
        self.values.is_valid(i).then(|| self.values.value(i))
    }

    /// True when the values are integers (sorted numerically).
    pub fn is_numeric(&self) -> bool {
        self.numeric
    }

    /// The values as a Utf8 array.
    pub fn as_strings(&self) -> &StringArray {
        &self.values
    }
}

/// Compare two category values: numerically for integer columns, else by code point.
fn cmp_values(a: &str, b: &str, numeric: bool) -> Ordering {
    if numeric {
        if let (Ok(x), Ok(y)) = (a.parse::<i128>(), b.parse::<i128>()) {
            return x.cmp(&y);
        }
    }
    a.cmp(b)
}

fn hasher() -> RandomState {
    RandomState::with_seeds(0xe7c0, 0xde00, 0x5e6f, 0x10a7)
}

/// Distinct non-null values of a column with their counts.
#[derive(Debug, Clone)]
pub struct ValueCounts {
    /// Values with their counts, most frequent first; ties in ascending value order.
    pub values: Vec<(String, u64)>,
    /// Null rows.
    pub nulls: u64,
    /// All rows, nulls included.
    pub rows: u64,
    numeric: bool,
    index: HashMap<String, usize, RandomState>,
}

impl ValueCounts {
    /// Count the values of `column`.
    pub fn of(column: &Categorical) -> Self {
        let mut counts: HashMap<&str, u64, RandomState> = HashMap::with_hasher(hasher());
        let mut nulls = 0;
        for i in 0..column.len() {
            match column.get(i) {
                Some(v) => *counts.entry(v).or_insert(0) += 1,
                None => nulls += 1,
            }
        }
        let numeric = column.numeric;
        let mut values: Vec<(String, u64)> = counts
            .into_iter()
            .map(|(v, n)| (v.to_string(), n))
            .collect();
        values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| cmp_values(&a.0, &b.0, numeric)));
        let mut index = HashMap::with_hasher(hasher());
        for (i, (v, _)) in values.iter().enumerate() {
            index.insert(v.clone(), i);
        }
        ValueCounts {
            values,
            nulls,
            rows: column.len() as u64,
            numeric,
            index,
        }
    }

    /// Count of `value` (0 when absent).
    pub fn count(&self, value: &str) -> u64 {
        self.index.get(value).map_or(0, |&i| self.values[i].1)
    }

    /// Number of distinct non-null values.
    pub fn distinct(&self) -> usize {
        self.values.len()
    }

    /// Non-null rows.
    pub fn non_null(&self) -> u64 {
        self.rows - self.nulls
    }

    /// The distinct values in ascending order (numeric for integer columns).
    pub fn sorted(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.values.iter().map(|(s, _)| s.as_str()).collect();
        v.sort_by(|a, b| cmp_values(a, b, self.numeric));
        v
    }
}

/// The minimum frequency of a category that keeps its own slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinFrequency {
    /// At least this many rows (`>= 1`).
    Count(u64),
    /// At least this share of all rows, nulls included (`0 < share <= 1`).
    Share(f64),
}

/// Which categories are infrequent (scikit-learn's `max_categories` and
/// `min_frequency`). Build with [`Infrequent::new`]; the default keeps every category.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Infrequent {
    max_categories: Option<usize>,
    min_frequency: Option<MinFrequency>,
}

impl Infrequent {
    /// `max_categories` counts the shared `other` slot (`>= 1`); see the module docs.
    pub fn new(
        max_categories: Option<usize>,
        min_frequency: Option<MinFrequency>,
    ) -> Result<Self, EncodeError> {
        if let Some(m) = max_categories {
            if m < 1 {
                return Err(EncodeError::BadParameter {
                    name: "max_categories",
                    rule: "at least 1",
                    value: m.to_string(),
                });
            }
        }
        match min_frequency {
            Some(MinFrequency::Count(0)) => {
                return Err(EncodeError::BadParameter {
                    name: "min_frequency",
                    rule: "a count of at least 1 or a share in (0, 1]",
                    value: "0".into(),
                })
            }
            Some(MinFrequency::Share(s)) if !(s > 0.0 && s <= 1.0) => {
                return Err(EncodeError::BadParameter {
                    name: "min_frequency",
                    rule: "a count of at least 1 or a share in (0, 1]",
                    value: s.to_string(),
                })
            }
            _ => {}
        }
        Ok(Infrequent {
            max_categories,
            min_frequency,
        })
    }

    /// The cap, when set.
    pub fn max_categories(&self) -> Option<usize> {
        self.max_categories
    }

    /// The minimum frequency, when set.
    pub fn min_frequency(&self) -> Option<MinFrequency> {
        self.min_frequency
    }

    /// Split the counted values into (frequent, infrequent), both in frequency order.
    pub fn split<'a>(&self, counts: &'a ValueCounts) -> (Vec<&'a str>, Vec<&'a str>) {
        let threshold = match self.min_frequency {
            None => 0.0,
            Some(MinFrequency::Count(c)) => c as f64,
            Some(MinFrequency::Share(s)) => s * counts.rows as f64,
        };
        let (mut frequent, mut infrequent): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
        for (v, n) in &counts.values {
            if (*n as f64) < threshold {
                infrequent.push(v);
            } else {
                frequent.push(v);
            }
        }
        if let Some(max) = self.max_categories {
            // As scikit-learn: `other` is one of the `max` slots whenever the cap binds.
            if frequent.len() + 1 > max {
                let cut: Vec<&str> = frequent.split_off(max - 1);
                infrequent.splice(0..0, cut);
                infrequent.sort_by(|a, b| {
                    counts
                        .count(b)
                        .cmp(&counts.count(a))
                        .then_with(|| cmp_values(a, b, counts.numeric))
                });
            }
        }
        (frequent, infrequent)
    }
}

/// How a null is one-hot encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NullEncoding {
    /// Every column 0 (pandas' `get_dummies(dummy_na=False)`).
    #[default]
    Zeros,
    /// A `null` column of its own, 1 for null rows.
    Category,
}

/// What one-hot does with a value that is not one of its categories.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownOneHot {
    /// Set the `other` column.
    #[default]
    Other,
    /// Every column 0.
    Ignore,
    /// Fail with [`EncodeError::Unknown`].
    Error,
}

/// A one-hot output column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneHotLabel {
    /// A category's own column.
    Category(String),
    /// Values outside the categories.
    Other,
    /// Nulls (with [`NullEncoding::Category`]).
    Null,
}

/// A one-hot encoding: the categories with a column each, in output order.
#[derive(Debug, Clone)]
pub struct OneHot {
    categories: Vec<String>,
    other: bool,
    unknown: UnknownOneHot,
    nulls: NullEncoding,
    index: HashMap<String, usize, RandomState>,
}

fn index_of(categories: &[String]) -> Result<HashMap<String, usize, RandomState>, EncodeError> {
    if categories.is_empty() {
        return Err(EncodeError::NoCategories);
    }
    let mut index = HashMap::with_hasher(hasher());
    for (i, c) in categories.iter().enumerate() {
        if index.insert(c.clone(), i).is_some() {
            return Err(EncodeError::DuplicateCategory(c.clone()));
        }
    }
    Ok(index)
}

impl OneHot {
    /// One-hot over listed categories, in the listed order. The `other` column exists
    /// exactly when `unknown` is [`UnknownOneHot::Other`], whatever the data.
    pub fn listed(
        categories: Vec<String>,
        unknown: UnknownOneHot,
        nulls: NullEncoding,
    ) -> Result<Self, EncodeError> {
        let index = index_of(&categories)?;
        Ok(OneHot {
            categories,
            other: unknown == UnknownOneHot::Other,
            unknown,
            nulls,
            index,
        })
    }

    /// One-hot fitted on counted values: the frequent categories in frequency order, and
    /// an `other` column when any category is infrequent (values unseen in the fit go
    /// there too, or nowhere when there is no `other`, as scikit-learn's
    /// `handle_unknown="infrequent_if_exist"`).
    pub fn fit(counts: &ValueCounts, infrequent: &Infrequent, nulls: NullEncoding) -> Self {
        let (frequent, rare) = infrequent.split(counts);
        let categories: Vec<String> = frequent.iter().map(|s| s.to_string()).collect();
        let mut index = HashMap::with_hasher(hasher());
        for (i, c) in categories.iter().enumerate() {
            index.insert(c.clone(), i);
        }
        let other = !rare.is_empty();
        OneHot {
            categories,
            other,
            unknown: if other {
                UnknownOneHot::Other
            } else {
                UnknownOneHot::Ignore
            },
            nulls,
            index,
        }
    }

    /// The categories with a column of their own, in output order.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// True when there is an `other` column.
    pub fn has_other(&self) -> bool {
        self.other
    }

    /// The output columns in order: the categories, then `other`, then `null`.
    pub fn labels(&self) -> Vec<OneHotLabel> {
        let mut v: Vec<OneHotLabel> = self
            .categories
            .iter()
            .map(|c| OneHotLabel::Category(c.clone()))
            .collect();
        if self.other {
            v.push(OneHotLabel::Other);
        }
        if self.nulls == NullEncoding::Category {
            v.push(OneHotLabel::Null);
        }
        v
    }

    /// Counted values that fall outside the categories, most frequent first.
    pub fn outside<'a>(&self, counts: &'a ValueCounts) -> Vec<(&'a str, u64)> {
        counts
            .values
            .iter()
            .filter(|(v, _)| !self.index.contains_key(v.as_str()))
            .map(|(v, n)| (v.as_str(), *n))
            .collect()
    }

    /// Encode `column`: one 0/1 column per [`labels`](Self::labels) entry, never null.
    pub fn transform(&self, column: &Categorical) -> Result<Vec<Int8Array>, EncodeError> {
        let n = column.len();
        let width = self.labels().len();
        let other = self.other.then_some(self.categories.len());
        let null = (self.nulls == NullEncoding::Category)
            .then_some(self.categories.len() + usize::from(self.other));
        let mut slots: Vec<Option<usize>> = Vec::with_capacity(n);
        for r in 0..n {
            slots.push(match column.get(r) {
                None => null,
                Some(v) => match self.index.get(v) {
                    Some(&i) => Some(i),
                    None => match self.unknown {
                        UnknownOneHot::Other => other,
                        UnknownOneHot::Ignore => None,
                        UnknownOneHot::Error => {
                            return Err(EncodeError::Unknown {
                                row: r,
                                value: v.to_string(),
                            })
                        }
                    },
                },
            });
        }
        let mut cols = vec![vec![0i8; n]; width];
        for (r, slot) in slots.into_iter().enumerate() {
            if let Some(s) = slot {
                cols[s][r] = 1;
            }
        }
        Ok(cols.into_iter().map(Int8Array::from).collect())
    }
}

/// The order of fitted ordinal codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OrdinalOrder {
    /// Ascending value order (scikit-learn's `OrdinalEncoder`).
    #[default]
    Sorted,
    /// Most frequent first (code 0), ties in ascending value order.
    Frequency,
}

/// What ordinal encoding does with a value that is not one of its categories.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownOrdinal {
    /// Write null.
    #[default]
    Null,
    /// Fail with [`EncodeError::Unknown`].
    Error,
}

/// An ordinal encoding: category `i` has code `i`; infrequent categories share the code
/// after the last category.
#[derive(Debug, Clone)]
pub struct Ordinal {
    categories: Vec<String>,
    infrequent: Vec<String>,
    unknown: UnknownOrdinal,
    index: HashMap<String, i64, RandomState>,
}

impl Ordinal {
    /// Codes in the listed order.
    pub fn listed(categories: Vec<String>, unknown: UnknownOrdinal) -> Result<Self, EncodeError> {
        let index = index_of(&categories)?
            .into_iter()
            .map(|(k, v)| (k, v as i64))
            .collect();
        Ok(Ordinal {
            categories,
            infrequent: Vec::new(),
            unknown,
            index,
        })
    }

    /// Codes fitted on counted values: frequent categories in `order`, infrequent ones
    /// (in frequency order) sharing the next code.
    pub fn fit(
        counts: &ValueCounts,
        order: OrdinalOrder,
        infrequent: &Infrequent,
        unknown: UnknownOrdinal,
    ) -> Self {
        let (mut frequent, rare) = infrequent.split(counts);
        if order == OrdinalOrder::Sorted {
            frequent.sort_by(|a, b| cmp_values(a, b, counts.numeric));
        }
        let categories: Vec<String> = frequent.iter().map(|s| s.to_string()).collect();
        let mut index = HashMap::with_hasher(hasher());
        for (i, c) in categories.iter().enumerate() {
            index.insert(c.clone(), i as i64);
        }
        let shared = categories.len() as i64;
        for r in &rare {
            index.insert(r.to_string(), shared);
        }
        Ordinal {
            categories,
            infrequent: rare.iter().map(|s| s.to_string()).collect(),
            unknown,
            index,
        }
    }

    /// The categories in code order.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// Categories sharing code `categories().len()`, most frequent first.
    pub fn infrequent(&self) -> &[String] {
        &self.infrequent
    }

    /// Code of `value`, if it has one.
    pub fn code(&self, value: &str) -> Option<i64> {
        self.index.get(value).copied()
    }

    /// Encode `column`; nulls stay null.
    pub fn transform(&self, column: &Categorical) -> Result<Int64Array, EncodeError> {
        (0..column.len())
            .map(|r| match column.get(r) {
                None => Ok(None),
                Some(v) => match self.index.get(v) {
                    Some(&c) => Ok(Some(c)),
                    None => match self.unknown {
                        UnknownOrdinal::Null => Ok(None),
                        UnknownOrdinal::Error => Err(EncodeError::Unknown {
                            row: r,
                            value: v.to_string(),
                        }),
                    },
                },
            })
            .collect()
    }
}

/// Each value's count in `counts` (null for nulls and values not counted).
pub fn frequency_count(column: &Categorical, counts: &ValueCounts) -> Int64Array {
    (0..column.len())
        .map(|r| {
            column
                .get(r)
                .and_then(|v| counts.index.get(v))
                .map(|&i| counts.values[i].1 as i64)
        })
        .collect()
}

/// Each value's share of the non-null counted values (null for nulls and values not
/// counted), as pandas' `value_counts(normalize=True)`.
pub fn frequency_share(column: &Categorical, counts: &ValueCounts) -> Float64Array {
    let total = counts.non_null() as f64;
    (0..column.len())
        .map(|r| {
            column
                .get(r)
                .and_then(|v| counts.index.get(v))
                .map(|&i| counts.values[i].1 as f64 / total)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{DictionaryArray, Int64Array as I64};
    use arrow::datatypes::Int32Type;
    use std::sync::Arc;

    fn col(v: &[Option<&str>]) -> Categorical {
        Categorical::from_strs(v.iter().copied())
    }

    #[test]
    fn counts_order_by_frequency_then_value() {
        let c = col(&[Some("b"), Some("a"), None, Some("c"), Some("b"), Some("a")]);
        let vc = ValueCounts::of(&c);
        assert_eq!(
            vc.values,
            vec![("a".into(), 2), ("b".into(), 2), ("c".into(), 1)]
        );
        assert_eq!((vc.nulls, vc.rows, vc.non_null()), (1, 6, 5));
        assert_eq!(vc.count("zz"), 0);
    }

    #[test]
    fn integer_and_dictionary_inputs() {
        let ints: ArrayRef = Arc::new(I64::from(vec![Some(10), Some(9), None, Some(100)]));
        let c = Categorical::new(&ints).unwrap();
        assert!(c.is_numeric());
        let vc = ValueCounts::of(&c);
        assert_eq!(vc.sorted(), vec!["9", "10", "100"]);
        let dict: DictionaryArray<Int32Type> = vec![Some("x"), None, Some("y"), Some("x")]
            .into_iter()
            .collect();
        let d: ArrayRef = Arc::new(dict);
        let c = Categorical::new(&d).unwrap();
        assert_eq!(c.get(0), Some("x"));
        assert_eq!(c.get(1), None);
        assert!(!c.is_numeric());
        let f: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
        assert!(matches!(
            Categorical::new(&f),
            Err(EncodeError::UnsupportedType(DataType::Float64))
        ));
    }

    #[test]
    fn tie_at_the_cap_keeps_the_smaller_value() {
        let c = col(&[Some("b"), Some("a"), Some("c"), Some("c")]);
        let vc = ValueCounts::of(&c);
        let (f, i) = Infrequent::new(Some(3), None).unwrap().split(&vc);
        assert_eq!((f, i), (vec!["c", "a"], vec!["b"]));
    }

    #[test]
    fn bad_parameters_are_typed_errors() {
        assert!(matches!(
            Infrequent::new(Some(0), None),
            Err(EncodeError::BadParameter {
                name: "max_categories",
                ..
            })
        ));
        for bad in [
            MinFrequency::Count(0),
            MinFrequency::Share(0.0),
            MinFrequency::Share(1.5),
            MinFrequency::Share(f64::NAN),
        ] {
            assert!(Infrequent::new(None, Some(bad)).is_err(), "{bad:?}");
        }
        assert!(matches!(
            OneHot::listed(vec![], UnknownOneHot::Other, NullEncoding::Zeros),
            Err(EncodeError::NoCategories)
        ));
        assert!(matches!(
            Ordinal::listed(vec!["a".into(), "a".into()], UnknownOrdinal::Null),
            Err(EncodeError::DuplicateCategory(c)) if c == "a"
        ));
    }

    #[test]
    fn one_hot_listed_unknown_and_nulls() {
        let c = col(&[Some("a"), Some("z"), None, Some("b")]);
        let oh = OneHot::listed(
            vec!["b".into(), "a".into()],
            UnknownOneHot::Other,
            NullEncoding::Category,
        )
        .unwrap();
        assert_eq!(
            oh.labels(),
            vec![
                OneHotLabel::Category("b".into()),
                OneHotLabel::Category("a".into()),
                OneHotLabel::Other,
                OneHotLabel::Null
            ]
        );
        let cols = oh.transform(&c).unwrap();
        let rows: Vec<Vec<i8>> = cols.iter().map(|a| a.values().to_vec()).collect();
        assert_eq!(
            rows,
            vec![
                vec![0, 0, 0, 1],
                vec![1, 0, 0, 0],
                vec![0, 1, 0, 0],
                vec![0, 0, 1, 0]
            ]
        );
        let strict =
            OneHot::listed(vec!["a".into()], UnknownOneHot::Error, NullEncoding::Zeros).unwrap();
        match strict.transform(&c) {
            Err(EncodeError::Unknown { row, value }) => assert_eq!((row, value.as_str()), (1, "z")),
            other => panic!("{other:?}"),
        }
        let ignore =
            OneHot::listed(vec!["a".into()], UnknownOneHot::Ignore, NullEncoding::Zeros).unwrap();
        let cols = ignore.transform(&c).unwrap();
        assert_eq!(cols.len(), 1);
        assert_eq!(cols[0].values().to_vec(), vec![1, 0, 0, 0]);
    }

    #[test]
    fn ordinal_frequency_order_and_unknown() {
        let c = col(&[Some("x"), Some("y"), Some("y"), None]);
        let vc = ValueCounts::of(&c);
        let o = Ordinal::fit(
            &vc,
            OrdinalOrder::Frequency,
            &Infrequent::default(),
            UnknownOrdinal::Null,
        );
        assert_eq!(o.categories(), ["y", "x"]);
        let codes = o.transform(&c).unwrap();
        assert_eq!(
            codes.iter().collect::<Vec<_>>(),
            vec![Some(1), Some(0), Some(0), None]
        );
        let l = Ordinal::listed(vec!["y".into()], UnknownOrdinal::Error).unwrap();
        assert!(matches!(
            l.transform(&c),
            Err(EncodeError::Unknown { row: 0, .. })
        ));
    }

    #[test]
    fn frequency_of_values() {
        let c = col(&[Some("x"), Some("y"), Some("y"), None]);
        let vc = ValueCounts::of(&c);
        let n = frequency_count(&c, &vc);
        assert_eq!(
            n.iter().collect::<Vec<_>>(),
            vec![Some(1), Some(2), Some(2), None]
        );
        let s = frequency_share(&c, &vc);
        assert_eq!(s.value(1), 2.0 / 3.0);
        assert!(s.is_null(3));
    }
}
