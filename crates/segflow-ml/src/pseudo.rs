//! Pseudonymisation: keyed hashing of identifiers and generalisation of quasi-identifiers.
//!
//! - [`Pseudonymizer`]: HMAC-SHA256 of a value under a secret key, written as lowercase
//!   hex (64 characters, optionally truncated to `length >= 16`) after an optional
//!   prefix. Text is hashed as its UTF-8 bytes exactly as stored (no trimming or case
//!   folding), an integer as its decimal text (`42`, `-7`), so the same key and value
//!   give the same pseudonym in every run and tables pseudonymised apart still join.
//!   The key is never kept outside the HMAC state and never printed: `Debug` shows only
//!   the length and prefix, and [`Pseudonymizer::key_id`] identifies a key without
//!   revealing it.
//! - [`Generalisation`]: coarser values — an age to a band (`30-39`, `90+`), a number to
//!   a labelled interval between explicit edges, a postcode to its first characters, a
//!   date to its year or year-month, a number rounded to a multiple.
//!
//! Errors name rows and rules, never a value: the values handled here are personal data.

use arrow::array::{Array, ArrayRef, Float64Array, Int32Array, StringArray};
use arrow::compute::cast;
use arrow::compute::kernels::temporal::{date_part, DatePart as ArrowDatePart};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::sync::Arc;

type HmacSha256 = Hmac<Sha256>;

/// Shortest accepted key, in bytes.
pub const MIN_KEY_BYTES: usize = 16;
/// Shortest accepted pseudonym, in hex characters (64 bits).
pub const MIN_HEX_LENGTH: usize = 16;
/// A whole HMAC-SHA256, in hex characters.
pub const FULL_HEX_LENGTH: usize = 64;

/// Errors of pseudonymisation. None of them carries a data value or the key.
#[derive(Debug, thiserror::Error)]
pub enum PseudoError {
    /// The key is shorter than [`MIN_KEY_BYTES`].
    #[error("the key is {len} bytes long, but it must be at least {min} bytes")]
    KeyTooShort { len: usize, min: usize },
    /// A parameter is out of range.
    #[error("{name} must be {rule}, got {value}")]
    BadParameter {
        name: &'static str,
        rule: &'static str,
        value: String,
    },
    /// The column type does not suit the operation.
    #[error("{op} takes {expects}, not a column of type {data_type}")]
    UnsupportedType {
        op: &'static str,
        expects: &'static str,
        data_type: DataType,
    },
    /// A value cannot be processed (the value itself is not shown).
    #[error("row {row}: {what}")]
    BadValue { row: usize, what: &'static str },
    /// Arrow failed to convert a column.
    #[error("converting the column: {0}")]
    Arrow(#[from] ArrowError),
}

fn text_or_integer(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(k, v) => k.is_integer() && text_or_integer(v),
        d => d.is_integer(),
    }
}

fn numeric(dt: &DataType) -> bool {
    dt.is_integer() || dt.is_floating()
}

fn as_strings(array: &ArrayRef) -> Result<StringArray, PseudoError> {
    let c = cast(array, &DataType::Utf8)?;
    c.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| ArrowError::CastError("cast to Utf8 gave no Utf8 array".into()).into())
}

fn as_f64(array: &ArrayRef) -> Result<Float64Array, PseudoError> {
    let c = cast(array, &DataType::Float64)?;
    c.as_any()
        .downcast_ref::<Float64Array>()
        .cloned()
        .ok_or_else(|| ArrowError::CastError("cast to Float64 gave no Float64 array".into()).into())
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Keyed pseudonyms: HMAC-SHA256 as lowercase hex.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: HmacSha256,
    length: usize,
    prefix: String,
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pseudonymizer")
            .field("length", &self.length)
            .field("prefix", &self.prefix)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Pseudonymizer {
    /// A pseudonymiser with `key` (at least [`MIN_KEY_BYTES`]), pseudonyms of `length`
    /// hex characters ([`MIN_HEX_LENGTH`]..=[`FULL_HEX_LENGTH`]) after `prefix`.
    pub fn new(key: &[u8], length: usize, prefix: &str) -> Result<Self, PseudoError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(PseudoError::KeyTooShort {
                len: key.len(),
                min: MIN_KEY_BYTES,
            });
        }
        if !(MIN_HEX_LENGTH..=FULL_HEX_LENGTH).contains(&length) {
            return Err(PseudoError::BadParameter {
                name: "length",
                rule: "between 16 and 64 hex characters",
                value: length.to_string(),
            });
        }
        let mac = HmacSha256::new_from_slice(key).map_err(|_| PseudoError::KeyTooShort {
            len: key.len(),
            min: MIN_KEY_BYTES,
        })?;
        Ok(Pseudonymizer {
            mac,
            length,
            prefix: prefix.to_string(),
        })
    }

    /// Hex characters of each pseudonym (without the prefix).
    pub fn length(&self) -> usize {
        self.length
    }

    /// The pseudonym of `bytes`.
    pub fn pseudonym(&self, bytes: &[u8]) -> String {
        let mut out = String::with_capacity(self.prefix.len() + self.length);
        self.write(bytes, &mut out);
        out
    }

    fn write(&self, bytes: &[u8], out: &mut String) {
        let mut m = self.mac.clone();
        m.update(bytes);
        let digest = m.finalize().into_bytes();
        out.push_str(&self.prefix);
        for (i, b) in digest.iter().enumerate() {
            if 2 * i >= self.length {
                break;
            }
            out.push(HEX[(b >> 4) as usize] as char);
            if 2 * i + 1 < self.length {
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
    }

    /// A public identifier of the key: the first 16 hex characters of the HMAC of a fixed
    /// label. Runs whose pseudonyms join have the same key id; the key cannot be
    /// recovered from it.
    pub fn key_id(&self) -> String {
        let mut m = self.mac.clone();
        m.update(b"segflow pseudonymize key id v1");
        let digest = m.finalize().into_bytes();
        digest[..8]
            .iter()
            .flat_map(|b| {
                [
                    HEX[(b >> 4) as usize] as char,
                    HEX[(b & 0xf) as usize] as char,
                ]
            })
            .collect()
    }

    /// True when a column of type `dt` can be hashed: text, dictionary-encoded text or
    /// integers.
    pub fn accepts(dt: &DataType) -> bool {
        text_or_integer(dt)
    }

    /// The pseudonyms of a column (nulls stay null).
    pub fn hash_array(&self, array: &ArrayRef) -> Result<StringArray, PseudoError> {
        if !Self::accepts(array.data_type()) {
            return Err(PseudoError::UnsupportedType {
                op: "hashing",
                expects: "text, dictionary-encoded text or integer columns",
                data_type: array.data_type().clone(),
            });
        }
        let text = as_strings(array)?;
        let mut buf = String::new();
        Ok(text
            .iter()
            .map(|v| {
                v.map(|s| {
                    buf.clear();
                    self.write(s.as_bytes(), &mut buf);
                    buf.clone()
                })
            })
            .collect())
    }
}

/// The part of a date kept by [`Generalisation::Date`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePart {
    /// `2024`.
    Year,
    /// `2024-03`.
    Month,
}

/// A way to make values coarser. Build with the constructors, which check parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Generalisation {
    /// Bands of `width`: `floor(x / width) * width` labelled `lo-hi` (`30-39` holds
    /// 30 <= x < 40); values `>= top` become `top+`.
    Band { width: u32, top: Option<i64> },
    /// Intervals between increasing edges: `<e0`, `e0-(e1-1)`, ..., `en+`
    /// (`18-24` holds 18 <= x < 25).
    Edges(Vec<i64>),
    /// The first `n` characters after removing all whitespace (`SW1A 1AA` → `SW1`).
    Prefix(usize),
    /// A date's year or year-month.
    Date(DatePart),
    /// The nearest multiple of a step, halves away from zero.
    Round(f64),
}

impl Generalisation {
    /// Bands of `width >= 1`, with an optional open top band `top+` (`top >= 1`).
    pub fn band(width: u32, top: Option<i64>) -> Result<Self, PseudoError> {
        if width == 0 {
            return Err(PseudoError::BadParameter {
                name: "band",
                rule: "a width of at least 1",
                value: "0".into(),
            });
        }
        if let Some(t) = top {
            if t < 1 {
                return Err(PseudoError::BadParameter {
                    name: "top",
                    rule: "at least 1",
                    value: t.to_string(),
                });
            }
        }
        Ok(Generalisation::Band { width, top })
    }

    /// Intervals between strictly increasing `edges` (at least one).
    pub fn edges(edges: Vec<i64>) -> Result<Self, PseudoError> {
        if edges.is_empty() || edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(PseudoError::BadParameter {
                name: "edges",
                rule: "a non-empty, strictly increasing list",
                value: format!("{edges:?}"),
            });
        }
        Ok(Generalisation::Edges(edges))
    }

    /// The first `n >= 1` characters.
    pub fn prefix(n: usize) -> Result<Self, PseudoError> {
        if n == 0 {
            return Err(PseudoError::BadParameter {
                name: "prefix",
                rule: "at least 1 character",
                value: "0".into(),
            });
        }
        Ok(Generalisation::Prefix(n))
    }

    /// The year or year-month of a date.
    pub fn date(part: DatePart) -> Self {
        Generalisation::Date(part)
    }

    /// The nearest multiple of `step` (finite, `> 0`).
    pub fn round(step: f64) -> Result<Self, PseudoError> {
        if !(step.is_finite() && step > 0.0) {
            return Err(PseudoError::BadParameter {
                name: "round",
                rule: "a finite number > 0",
                value: step.to_string(),
            });
        }
        Ok(Generalisation::Round(step))
    }

    /// `band`, `edges`, `prefix`, `date` or `round`.
    pub fn name(&self) -> &'static str {
        match self {
            Generalisation::Band { .. } => "band",
            Generalisation::Edges(_) => "edges",
            Generalisation::Prefix(_) => "prefix",
            Generalisation::Date(_) => "date",
            Generalisation::Round(_) => "round",
        }
    }

    /// What the input column must be, for messages.
    pub fn expects(&self) -> &'static str {
        match self {
            Generalisation::Band { .. } | Generalisation::Edges(_) | Generalisation::Round(_) => {
                "a numeric column"
            }
            Generalisation::Prefix(_) => "a text or integer column",
            Generalisation::Date(_) => "a date, timestamp or ISO-date text column",
        }
    }

    /// True when this generalisation takes a column of type `dt`.
    pub fn accepts(&self, dt: &DataType) -> bool {
        match self {
            Generalisation::Band { .. } | Generalisation::Edges(_) | Generalisation::Round(_) => {
                numeric(dt)
            }
            Generalisation::Prefix(_) => text_or_integer(dt),
            Generalisation::Date(_) => matches!(
                dt,
                DataType::Date32
                    | DataType::Date64
                    | DataType::Timestamp(_, _)
                    | DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
            ),
        }
    }

    /// The output type: Float64 for `round`, Utf8 otherwise.
    pub fn output_type(&self) -> DataType {
        match self {
            Generalisation::Round(_) => DataType::Float64,
            _ => DataType::Utf8,
        }
    }

    /// Generalise a column. Nulls stay null, and so do NaN and infinite numbers.
    pub fn apply(&self, array: &ArrayRef) -> Result<ArrayRef, PseudoError> {
        if !self.accepts(array.data_type()) {
            return Err(PseudoError::UnsupportedType {
                op: self.name(),
                expects: self.expects(),
                data_type: array.data_type().clone(),
            });
        }
        Ok(match self {
            Generalisation::Band { width, top } => {
                let w = *width as f64;
                let v = as_f64(array)?;
                let out: StringArray = v
                    .iter()
                    .map(|x| {
                        let x = x.filter(|x| x.is_finite())?;
                        if let Some(t) = top {
                            if x >= *t as f64 {
                                return Some(format!("{t}+"));
                            }
                        }
                        let lo = (x / w).floor() * w;
                        let mut hi = lo + w;
                        if let Some(t) = top {
                            hi = hi.min(*t as f64);
                        }
                        Some(format!("{}-{}", lo as i64, hi as i64 - 1))
                    })
                    .collect();
                Arc::new(out)
            }
            Generalisation::Edges(edges) => {
                let v = as_f64(array)?;
                let out: StringArray = v
                    .iter()
                    .map(|x| {
                        let x = x.filter(|x| x.is_finite())?;
                        let first = edges[0];
                        let last = *edges.last().expect("non-empty");
                        if x < first as f64 {
                            return Some(format!("<{first}"));
                        }
                        if x >= last as f64 {
                            return Some(format!("{last}+"));
                        }
                        edges
                            .windows(2)
                            .find(|w| x >= w[0] as f64 && x < w[1] as f64)
                            .map(|w| format!("{}-{}", w[0], w[1] - 1))
                    })
                    .collect();
                Arc::new(out)
            }
            Generalisation::Prefix(n) => {
                let text = as_strings(array)?;
                let out: StringArray = text
                    .iter()
                    .map(|v| {
                        v.map(|s| {
                            s.chars()
                                .filter(|c| !c.is_whitespace())
                                .take(*n)
                                .collect::<String>()
                        })
                    })
                    .collect();
                Arc::new(out)
            }
            Generalisation::Date(part) => {
                let dates = cast(array, &DataType::Date32)?;
                if let Some(row) = (0..array.len()).find(|&r| array.is_valid(r) && dates.is_null(r))
                {
                    return Err(PseudoError::BadValue {
                        row,
                        what: "not a date written YYYY-MM-DD",
                    });
                }
                let year = date_part(&dates, ArrowDatePart::Year)?;
                let month = date_part(&dates, ArrowDatePart::Month)?;
                let (year, month) = match (
                    year.as_any().downcast_ref::<Int32Array>(),
                    month.as_any().downcast_ref::<Int32Array>(),
                ) {
                    (Some(y), Some(m)) => (y.clone(), m.clone()),
                    _ => {
                        return Err(ArrowError::CastError(
                            "date_part did not give Int32 arrays".into(),
                        )
                        .into())
                    }
                };
                let out: StringArray = year
                    .iter()
                    .zip(month.iter())
                    .map(|(y, m)| match (y, m, part) {
                        (Some(y), _, DatePart::Year) => Some(format!("{y:04}")),
                        (Some(y), Some(m), DatePart::Month) => Some(format!("{y:04}-{m:02}")),
                        _ => None,
                    })
                    .collect();
                Arc::new(out)
            }
            Generalisation::Round(step) => {
                let v = as_f64(array)?;
                let out: Float64Array = v
                    .iter()
                    .map(|x| {
                        x.filter(|x| x.is_finite())
                            .map(|x| (x / step).round() * step)
                    })
                    .collect();
                Arc::new(out)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Int64Array};

    const KEY: &[u8] = b"0123456789abcdef";

    #[test]
    fn key_and_length_are_checked() {
        assert!(matches!(
            Pseudonymizer::new(b"short", 64, ""),
            Err(PseudoError::KeyTooShort { len: 5, min: 16 })
        ));
        for bad in [0, 15, 65] {
            assert!(matches!(
                Pseudonymizer::new(KEY, bad, ""),
                Err(PseudoError::BadParameter { name: "length", .. })
            ));
        }
        let p = Pseudonymizer::new(KEY, 64, "c_").unwrap();
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("0123456789abcdef"), "{dbg}");
    }

    #[test]
    fn truncation_and_prefix() {
        let full = Pseudonymizer::new(KEY, 64, "").unwrap().pseudonym(b"x");
        assert_eq!(full.len(), 64);
        assert!(full
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let short = Pseudonymizer::new(KEY, 17, "cus_").unwrap().pseudonym(b"x");
        assert_eq!(short, format!("cus_{}", &full[..17]));
        let a = Pseudonymizer::new(KEY, 64, "").unwrap();
        let b = Pseudonymizer::new(b"0123456789abcdeF", 64, "").unwrap();
        assert_ne!(a.key_id(), b.key_id());
        assert_eq!(a.key_id().len(), 16);
    }

    #[test]
    fn integers_hash_as_decimal_text() {
        let p = Pseudonymizer::new(KEY, 64, "").unwrap();
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(-7), None]));
        let h = p.hash_array(&ints).unwrap();
        assert_eq!(h.value(0), p.pseudonym(b"-7"));
        assert!(h.is_null(1));
        let f: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
        assert!(matches!(
            p.hash_array(&f),
            Err(PseudoError::UnsupportedType { .. })
        ));
    }

    #[test]
    fn parameters_and_types_are_checked() {
        assert!(Generalisation::band(0, None).is_err());
        assert!(Generalisation::band(10, Some(0)).is_err());
        assert!(Generalisation::edges(vec![]).is_err());
        assert!(Generalisation::edges(vec![5, 5]).is_err());
        assert!(Generalisation::prefix(0).is_err());
        assert!(Generalisation::round(0.0).is_err());
        assert!(Generalisation::round(f64::NAN).is_err());
        let text: ArrayRef = Arc::new(StringArray::from(vec!["a"]));
        let g = Generalisation::band(10, None).unwrap();
        assert!(!g.accepts(text.data_type()));
        assert!(matches!(
            g.apply(&text),
            Err(PseudoError::UnsupportedType { op: "band", .. })
        ));
    }

    #[test]
    fn bad_dates_name_the_row_not_the_value() {
        let text: ArrayRef = Arc::new(StringArray::from(vec![
            Some("2024-01-02"),
            None,
            Some("secret-ish"),
        ]));
        let e = Generalisation::date(DatePart::Year)
            .apply(&text)
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("row 2"), "{msg}");
        assert!(!msg.contains("secret-ish"), "{msg}");
        let d: ArrayRef = Arc::new(Date32Array::from(vec![Some(0), None]));
        let out = Generalisation::date(DatePart::Month).apply(&d).unwrap();
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(out.value(0), "1970-01");
        assert!(out.is_null(1));
    }
}
