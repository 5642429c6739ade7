//! A data-quality profile per column, on the four dimensions data-quality frameworks
//! name: completeness, validity, uniqueness and consistency.
//!
//! [`Profiler`] folds Arrow batches one after another and keeps, per column:
//!
//! - **completeness**: the share of rows holding a value. Null, NaN and text that is
//!   empty or only whitespace count as missing.
//! - **validity**: the share of present values that pass the column's checks (a
//!   declared type they must cast to, range, regex, allowed values). Not assessed
//!   (`None`) for a column without checks.
//! - **uniqueness**: distinct present values / present values (1 when every value is
//!   different). Counted exactly, so memory grows with the number of distinct values.
//! - **consistency**: for text, the share of present values written in the column's
//!   most common *shape* (digits → `9`, letters → `a`, other characters kept: `2024-01-05`
//!   and `05/01/2024` are two shapes of one date); for other columns, the share of rows
//!   passing the cross-column [`CrossRule`]s that involve the column. `None` when
//!   neither applies.
//!
//! The fold is sequential, so the profile never depends on the thread count.

use crate::rules::{self, Check, RuleError, UniqueTracker};
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::kernels::cmp;
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use hashbrown::HashMap;
use std::collections::BTreeMap;

/// Shapes tracked per text column; values of further shapes still count as present but
/// not as consistent, which only matters for columns with no dominant format anyway.
const MAX_SHAPES: usize = 4096;
/// Characters of a value that take part in its shape.
const SHAPE_CHARS: usize = 64;

/// Errors of the profiler.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// A check failed to run.
    #[error("column `{column}`: {source}")]
    Rule {
        column: String,
        #[source]
        source: RuleError,
    },
    /// A batch does not have the profiled schema.
    #[error("a batch has {found} columns, the profiled schema {expected}")]
    Schema { expected: usize, found: usize },
}

/// A comparison between two columns of the same row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
}

impl CmpOp {
    /// The operator as written: `<`, `<=`, `==`, `!=`, `>=`, `>`.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Ge => ">=",
            CmpOp::Gt => ">",
        }
    }

    /// Parse `<`, `<=`, `==` (or `=`), `!=`, `>=`, `>`.
    pub fn parse(s: &str) -> Option<CmpOp> {
        Some(match s.trim() {
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            "==" | "=" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            ">=" => CmpOp::Ge,
            ">" => CmpOp::Gt,
            _ => return None,
        })
    }
}

/// A cross-column rule `left op right`, judged on rows where both values are present.
#[derive(Debug, Clone)]
pub struct CrossRule {
    /// Index of the left column in the profiled schema.
    pub left: usize,
    pub op: CmpOp,
    /// Index of the right column; it must have the left column's type.
    pub right: usize,
    /// The rule as written, for the report.
    pub text: String,
}

/// What is checked for one column.
#[derive(Debug, Clone, Default)]
pub struct ColumnChecks {
    /// A type the values must cast to; the other checks then see the cast values.
    pub cast_to: Option<DataType>,
    /// Named row checks (`range`, `regex`, `in`, ...); [`Check::NotNull`] is not
    /// useful here, completeness already measures it.
    pub checks: Vec<(String, Check)>,
}

impl ColumnChecks {
    fn is_empty(&self) -> bool {
        self.cast_to.is_none() && self.checks.is_empty()
    }
}

/// The profile of one column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnProfile {
    pub column: String,
    pub data_type: String,
    pub rows: u64,
    /// Rows without a value (null, NaN, blank text).
    pub missing: u64,
    pub completeness: Option<f64>,
    /// Present values that pass every check (`None` without checks).
    pub valid: Option<u64>,
    pub validity: Option<f64>,
    /// Failures per check (`cast` for the declared type), when checks are set.
    pub failures: BTreeMap<String, u64>,
    pub distinct: u64,
    pub uniqueness: Option<f64>,
    /// The most common shape of a text column.
    pub dominant_shape: Option<String>,
    pub consistency: Option<f64>,
}

/// The result of one cross-column rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleProfile {
    pub rule: String,
    /// Rows where both values are present.
    pub checked: u64,
    pub passed: u64,
    pub consistency: Option<f64>,
}

/// The whole profile.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityReport {
    pub rows: u64,
    pub columns: Vec<ColumnProfile>,
    pub rules: Vec<RuleProfile>,
}

struct ColumnState {
    name: String,
    data_type: DataType,
    checks: ColumnChecks,
    missing: u64,
    valid: u64,
    failures: Vec<u64>,
    cast_failures: u64,
    unique: UniqueTracker,
    duplicates: u64,
    shapes: HashMap<String, u64>,
    /// Rows judged by, and rows passing, the cross rules involving this column.
    cross_checked: u64,
    cross_passed: u64,
}

struct RuleState {
    rule: CrossRule,
    checked: u64,
    passed: u64,
}

/// Streaming profiler. See the [module docs](self).
pub struct Profiler {
    rows: u64,
    columns: Vec<ColumnState>,
    rules: Vec<RuleState>,
}

impl Profiler {
    /// A profiler for `schema`'s columns; `checks[i]` belongs to column `i` (missing
    /// entries mean no checks).
    pub fn new(
        schema: &arrow::datatypes::Schema,
        mut checks: Vec<ColumnChecks>,
        rules: Vec<CrossRule>,
    ) -> Result<Self, QualityError> {
        checks.resize_with(schema.fields().len(), ColumnChecks::default);
        let columns = schema
            .fields()
            .iter()
            .zip(checks)
            .map(|(f, checks)| {
                Ok(ColumnState {
                    name: f.name().clone(),
                    data_type: f.data_type().clone(),
                    failures: vec![0; checks.checks.len()],
                    checks,
                    missing: 0,
                    valid: 0,
                    cast_failures: 0,
                    unique: UniqueTracker::new(std::slice::from_ref(f.data_type())).map_err(
                        |source| QualityError::Rule {
                            column: f.name().clone(),
                            source,
                        },
                    )?,
                    duplicates: 0,
                    shapes: HashMap::new(),
                    cross_checked: 0,
                    cross_passed: 0,
                })
            })
            .collect::<Result<_, QualityError>>()?;
        Ok(Profiler {
            rows: 0,
            columns,
            rules: rules
                .into_iter()
                .map(|rule| RuleState {
                    rule,
                    checked: 0,
                    passed: 0,
                })
                .collect(),
        })
    }

    /// Fold one batch in.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), QualityError> {
        if batch.num_columns() != self.columns.len() {
            return Err(QualityError::Schema {
                expected: self.columns.len(),
                found: batch.num_columns(),
            });
        }
        let n = batch.num_rows();
        self.rows += n as u64;
        let mut present: Vec<Vec<bool>> = Vec::with_capacity(self.columns.len());
        for (state, array) in self.columns.iter_mut().zip(batch.columns()) {
            let here = present_mask(array);
            state.missing += here.iter().filter(|p| !**p).count() as u64;
            let err = |source| QualityError::Rule {
                column: state.name.clone(),
                source,
            };
            // uniqueness over present values
            let absent: Vec<bool> = here.iter().map(|p| !p).collect();
            let dup = state
                .unique
                .check(std::slice::from_ref(array), &absent)
                .map_err(err)?;
            state.duplicates += dup.iter().filter(|d| **d).count() as u64;
            if !state.checks.is_empty() {
                let mut bad = vec![false; n];
                let values = match &state.checks.cast_to {
                    Some(to) => {
                        let (cast, failed) = rules::cast_column(array, to).map_err(err)?;
                        for (i, f) in failed.iter().enumerate() {
                            if *f && here[i] {
                                bad[i] = true;
                                state.cast_failures += 1;
                            }
                        }
                        cast
                    }
                    None => array.clone(),
                };
                for (k, (_, check)) in state.checks.checks.iter().enumerate() {
                    let failed = rules::failures(&values, check).map_err(err)?;
                    for (i, f) in failed.into_iter().enumerate() {
                        if f && here[i] {
                            state.failures[k] += 1;
                            bad[i] = true;
                        }
                    }
                }
                state.valid += (0..n).filter(|&i| here[i] && !bad[i]).count() as u64;
            }
            if let Some(text) = as_text(array) {
                for (i, v) in text.into_iter().enumerate() {
                    if let (true, Some(v)) = (here[i], v) {
                        let s = shape(v);
                        if let Some(c) = state.shapes.get_mut(&s) {
                            *c += 1;
                        } else if state.shapes.len() < MAX_SHAPES {
                            state.shapes.insert(s, 1);
                        }
                    }
                }
            }
            present.push(here);
        }
        for r in &mut self.rules {
            let (l, rt) = (batch.column(r.rule.left), batch.column(r.rule.right));
            let result = match r.rule.op {
                CmpOp::Lt => cmp::lt(l, rt),
                CmpOp::Le => cmp::lt_eq(l, rt),
                CmpOp::Eq => cmp::eq(l, rt),
                CmpOp::Ne => cmp::neq(l, rt),
                CmpOp::Ge => cmp::gt_eq(l, rt),
                CmpOp::Gt => cmp::gt(l, rt),
            }
            .map_err(|e| QualityError::Rule {
                column: self.columns[r.rule.left].name.clone(),
                source: RuleError::Compare(e),
            })?;
            let both = present[r.rule.left]
                .iter()
                .zip(&present[r.rule.right])
                .map(|(l, r)| *l && *r);
            for (i, both) in both.enumerate() {
                if both {
                    let ok = result.is_valid(i) && result.value(i);
                    r.checked += 1;
                    r.passed += u64::from(ok);
                    for c in [r.rule.left, r.rule.right] {
                        self.columns[c].cross_checked += 1;
                        self.columns[c].cross_passed += u64::from(ok);
                    }
                }
            }
        }
        Ok(())
    }

    /// The profile of everything pushed.
    pub fn finish(self) -> QualityReport {
        let rows = self.rows;
        let share = |num: u64, den: u64| (den > 0).then(|| num as f64 / den as f64);
        let columns = self
            .columns
            .into_iter()
            .map(|s| {
                let present = rows - s.missing;
                let checked = !s.checks.is_empty();
                let mut failures = BTreeMap::new();
                if checked {
                    if s.checks.cast_to.is_some() {
                        failures.insert("cast".to_string(), s.cast_failures);
                    }
                    for ((name, _), count) in s.checks.checks.iter().zip(&s.failures) {
                        *failures.entry(name.clone()).or_insert(0) += count;
                    }
                }
                // Most frequent shape; ties go to the smaller shape text, so the
                // report does not depend on hash order.
                let dominant = s
                    .shapes
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                    .map(|(k, v)| (k.clone(), *v));
                let consistency = match &dominant {
                    Some((_, count)) => share(*count, present),
                    None => share(s.cross_passed, s.cross_checked),
                };
                let distinct = present - s.duplicates;
                ColumnProfile {
                    data_type: s.data_type.to_string(),
                    rows,
                    missing: s.missing,
                    completeness: share(present, rows),
                    valid: checked.then_some(s.valid),
                    validity: if checked {
                        share(s.valid, present)
                    } else {
                        None
                    },
                    failures,
                    distinct,
                    uniqueness: share(distinct, present),
                    dominant_shape: dominant.map(|d| d.0),
                    consistency,
                    column: s.name,
                }
            })
            .collect();
        let rules = self
            .rules
            .into_iter()
            .map(|r| RuleProfile {
                rule: r.rule.text,
                checked: r.checked,
                passed: r.passed,
                consistency: share(r.passed, r.checked),
            })
            .collect();
        QualityReport {
            rows,
            columns,
            rules,
        }
    }
}

/// Whether each row holds a value: not null, not NaN, not blank text.
fn present_mask(array: &ArrayRef) -> Vec<bool> {
    let n = array.len();
    match array.data_type() {
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            (0..n)
                .map(|i| a.is_valid(i) && !a.value(i).is_nan())
                .collect()
        }
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            (0..n)
                .map(|i| a.is_valid(i) && !a.value(i).is_nan())
                .collect()
        }
        _ => match as_text(array) {
            Some(t) => t
                .into_iter()
                .map(|v| v.is_some_and(|s| !s.trim().is_empty()))
                .collect(),
            None => (0..n).map(|i| array.is_valid(i)).collect(),
        },
    }
}

/// The values of a text column (Utf8 or LargeUtf8).
fn as_text(array: &ArrayRef) -> Option<Vec<Option<&str>>> {
    match array.data_type() {
        DataType::Utf8 => Some(array.as_string::<i32>().iter().collect()),
        DataType::LargeUtf8 => Some(array.as_string::<i64>().iter().collect()),
        DataType::Utf8View => Some(array.as_string_view().iter().collect()),
        _ => None,
    }
}

/// The shape of a text value: ASCII digits become `9`, letters (any script) `a`,
/// whitespace runs one space; other characters stay. Only the first characters count.
pub fn shape(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(SHAPE_CHARS));
    let mut last_space = false;
    for c in value.trim().chars().take(SHAPE_CHARS) {
        let s = if c.is_ascii_digit() {
            '9'
        } else if c.is_alphabetic() {
            'a'
        } else if c.is_whitespace() {
            if last_space {
                continue;
            }
            ' '
        } else {
            c
        };
        last_space = s == ' ';
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn shapes() {
        assert_eq!(shape("2024-01-05"), "9999-99-99");
        assert_eq!(shape("05/01/2024"), "99/99/9999");
        assert_eq!(shape("  Zoë  Smith "), "aaa aaaaa");
        assert_eq!(shape("王小明"), "aaa");
    }

    #[test]
    fn profile_by_hand() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("date", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("limit", DataType::Float64, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), Some(2), Some(2), None])),
                Arc::new(StringArray::from(vec![
                    Some("2024-01-05"),
                    Some("2024-02-30"),
                    Some(" "),
                    Some("05/01/2024"),
                ])),
                Arc::new(Float64Array::from(vec![
                    Some(5.0),
                    Some(-1.0),
                    Some(f64::NAN),
                    Some(7.0),
                ])),
                Arc::new(Float64Array::from(vec![10.0, 10.0, 10.0, 5.0])),
            ],
        )
        .unwrap();
        let min0 = rules::literals(&[rules::Literal::Number(0.0)], &DataType::Float64).unwrap();
        let checks = vec![
            ColumnChecks::default(),
            ColumnChecks {
                cast_to: Some(DataType::Date32),
                checks: vec![],
            },
            ColumnChecks {
                cast_to: None,
                checks: vec![("range".into(), Check::Min(min0))],
            },
        ];
        let rules = vec![CrossRule {
            left: 2,
            op: CmpOp::Le,
            right: 3,
            text: "amount <= limit".into(),
        }];
        let mut p = Profiler::new(&schema, checks, rules).unwrap();
        // the same rows in two batches
        p.push(&batch.slice(0, 2)).unwrap();
        p.push(&batch.slice(2, 2)).unwrap();
        let r = p.finish();
        let id = &r.columns[0];
        assert_eq!((id.missing, id.distinct), (1, 2));
        assert_eq!(id.uniqueness, Some(2.0 / 3.0));
        assert_eq!(id.validity, None);
        assert_eq!(id.consistency, None);
        let date = &r.columns[1];
        assert_eq!(date.missing, 1);
        // "2024-02-30" and "05/01/2024" do not cast to a date
        assert_eq!(date.valid, Some(1));
        assert_eq!(date.failures["cast"], 2);
        assert_eq!(date.dominant_shape.as_deref(), Some("9999-99-99"));
        assert_eq!(date.consistency, Some(2.0 / 3.0));
        let amount = &r.columns[2];
        assert_eq!(amount.missing, 1);
        assert_eq!(amount.validity, Some(2.0 / 3.0));
        // amount <= limit on the three present rows: 5<=10, -1<=10, 7<=5
        assert_eq!(r.rules[0].checked, 3);
        assert_eq!(r.rules[0].passed, 2);
        assert_eq!(amount.consistency, Some(2.0 / 3.0));
        assert_eq!(r.columns[3].consistency, Some(2.0 / 3.0));
    }
}
