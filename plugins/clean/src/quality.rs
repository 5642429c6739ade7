//! The `quality` component: a data-quality profile per column, as facts and a table.

use crate::quarantine;
use crate::validate::{LiteralConfig, TypeConfig};
use segflow_ml::quality::{CmpOp, ColumnChecks, CrossRule, Profiler, QualityReport};
use segflow_ml::rules::{self, Check, Literal};
use segflow_sdk::arrow::array::{Float64Array, Int64Array, StringArray};
use segflow_sdk::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Profile every column of a table on the four data-quality dimensions, without
/// changing it. Per column: **completeness** (share of rows with a value; null, NaN and
/// blank text are missing), **validity** (share of present values passing the checks
/// under `columns`; not assessed without checks), **uniqueness** (distinct present
/// values / present values) and **consistency** (text: share of values in the column's
/// most common shape, e.g. `9999-99-99` for ISO dates; other columns: share of rows
/// passing the `consistency` rules that involve them). The figures go to facts
/// (`columns`, `rules`, `score`) and to the `profile` table; `main` is the input,
/// unchanged. Distinct values are counted exactly, so memory grows with them; the
/// input is read once, batch by batch.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quality {
    /// Validity checks per column, e.g. `amount: {min: 0, max: 10000}` or `date: {type:
    /// date}`. Columns not named here are still profiled.
    #[serde(default)]
    pub columns: BTreeMap<String, QualityColumn>,
    /// Cross-column consistency rules `LEFT OP RIGHT` between two columns of the same
    /// type, with OP one of `<`, `<=`, `==`, `!=`, `>=`, `>`: e.g. `first_purchase <=
    /// last_purchase`. Judged on rows where both values are present.
    #[serde(default)]
    pub consistency: Vec<String>,
    /// Fail the step when a dimension of any column falls below a threshold, e.g.
    /// `{completeness: 0.95, validity: 0.99}` (shares in [0, 1]). The error lists the
    /// columns below it. Dimensions not assessed for a column are not compared.
    #[serde(default)]
    pub fail_below: BTreeMap<Dimension, f64>,
}

/// Validity checks of one column. A value breaking any of them is invalid.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityColumn {
    /// A type the values must convert to (`int64`, `float64`, `utf8`, `bool`, `date`,
    /// `timestamp`), as `validate` casts; the other checks see the converted values.
    #[serde(default, rename = "type")]
    pub data_type: Option<TypeConfig>,
    /// Smallest valid value, in the column's (or the declared) type.
    #[serde(default)]
    pub min: Option<LiteralConfig>,
    /// Largest valid value.
    #[serde(default)]
    pub max: Option<LiteralConfig>,
    /// Regular expression the whole text value must match.
    #[serde(default)]
    pub regex: Option<String>,
    /// The valid values.
    #[serde(default, rename = "in")]
    pub allowed: Option<Vec<LiteralConfig>>,
}

/// A data-quality dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    Completeness,
    Validity,
    Uniqueness,
    Consistency,
}

impl Dimension {
    fn name(self) -> &'static str {
        match self {
            Dimension::Completeness => "completeness",
            Dimension::Validity => "validity",
            Dimension::Uniqueness => "uniqueness",
            Dimension::Consistency => "consistency",
        }
    }
}

const PROFILE_COLUMNS: [(&str, DataType); 10] = [
    ("column", DataType::Utf8),
    ("data_type", DataType::Utf8),
    ("rows", DataType::Int64),
    ("missing", DataType::Int64),
    ("distinct", DataType::Int64),
    ("completeness", DataType::Float64),
    ("validity", DataType::Float64),
    ("uniqueness", DataType::Float64),
    ("consistency", DataType::Float64),
    ("dominant_shape", DataType::Utf8),
];

fn profile_schema() -> SchemaRef {
    Arc::new(Schema::new(
        PROFILE_COLUMNS
            .iter()
            .map(|(n, t)| {
                Field::new(
                    *n,
                    t.clone(),
                    !matches!(*n, "column" | "data_type" | "rows"),
                )
            })
            .collect::<Vec<_>>(),
    ))
}

impl Quality {
    fn compile(&self, schema: &SchemaRef) -> Result<(Vec<ColumnChecks>, Vec<CrossRule>)> {
        let mut checks = vec![ColumnChecks::default(); schema.fields().len()];
        for (name, c) in &self.columns {
            let at = |k: &str| format!("columns.{name}.{k}");
            let f = require_column(schema, name, &format!("columns.{name}"), &[])?;
            let i = schema.index_of(name)?;
            let mut ty = f.data_type().clone();
            let out = &mut checks[i];
            if let Some(t) = c.data_type {
                let to = t.column_type().data_type();
                if !segflow_sdk::arrow::compute::can_cast_types(&ty, &to) {
                    return Err(Error::config(
                        &at("type"),
                        format!("column `{name}` has type {ty}, which cannot be cast to {to}"),
                    ));
                }
                out.cast_to = Some(to.clone());
                ty = to;
            }
            for (key, bound) in [("min", &c.min), ("max", &c.max)] {
                if let Some(b) = bound {
                    let arr = rules::literals(std::slice::from_ref(&b.literal()), &ty)
                        .map_err(|e| Error::config(&at(key), e.to_string()))?;
                    let check = if key == "min" {
                        Check::Min(arr)
                    } else {
                        Check::Max(arr)
                    };
                    out.checks.push(("range".into(), check));
                }
            }
            if let Some(pattern) = &c.regex {
                if ty != DataType::Utf8 {
                    return Err(Error::config(
                        &at("regex"),
                        format!("a regex needs a utf8 column; `{name}` is {ty}"),
                    ));
                }
                let check = Check::regex(pattern)
                    .map_err(|e| Error::config(&at("regex"), e.to_string()))?;
                out.checks.push(("regex".into(), check));
            }
            if let Some(values) = &c.allowed {
                let lits: Vec<Literal> = values.iter().map(LiteralConfig::literal).collect();
                let arr = rules::literals(&lits, &ty)
                    .map_err(|e| Error::config(&at("in"), e.to_string()))?;
                out.checks.push(("in".into(), Check::In(arr)));
            }
        }
        let mut cross = Vec::with_capacity(self.consistency.len());
        for (k, text) in self.consistency.iter().enumerate() {
            let field = format!("consistency.{k}");
            let rule = parse_rule(text).ok_or_else(|| {
                Error::config(
                    &field,
                    format!(
                        "`{text}` is not a rule of the form `LEFT OP RIGHT` with OP one of <, \
                         <=, ==, !=, >=, >"
                    ),
                )
            })?;
            let (left, op, right) = rule;
            let lf = require_column(schema, left, &field, &[])?;
            let rf = require_column(schema, right, &field, &[])?;
            if lf.data_type() != rf.data_type() {
                return Err(Error::config(
                    &field,
                    format!(
                        "`{left}` is {} and `{right}` is {}; a consistency rule compares \
                         columns of the same type (cast one with `validate` first)",
                        lf.data_type(),
                        rf.data_type()
                    ),
                ));
            }
            cross.push(CrossRule {
                left: schema.index_of(left)?,
                op,
                right: schema.index_of(right)?,
                text: format!("{left} {} {right}", op.symbol()),
            });
        }
        for (d, v) in &self.fail_below {
            if !(0.0..=1.0).contains(v) {
                return Err(Error::config(
                    &format!("fail_below.{}", d.name()),
                    format!("{v} is not a share in [0, 1]"),
                ));
            }
        }
        Ok((checks, cross))
    }
}

/// `left op right`, split at the first comparison operator.
fn parse_rule(text: &str) -> Option<(&str, CmpOp, &str)> {
    let at = text.find(['<', '>', '=', '!'])?;
    let rest = &text[at..];
    let len = if rest.len() > 1 && rest.as_bytes()[1] == b'=' {
        2
    } else {
        1
    };
    let op = CmpOp::parse(&rest[..len])?;
    let (left, right) = (text[..at].trim(), rest[len..].trim());
    let word = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    (word(left) && word(right)).then_some((left, op, right))
}

fn dimension(p: &segflow_ml::quality::ColumnProfile, d: Dimension) -> Option<f64> {
    match d {
        Dimension::Completeness => p.completeness,
        Dimension::Validity => p.validity,
        Dimension::Uniqueness => p.uniqueness,
        Dimension::Consistency => p.consistency,
    }
}

fn profile_batch(report: &QualityReport) -> Result<RecordBatch> {
    let c = &report.columns;
    let f = |d: Dimension| Arc::new(c.iter().map(|p| dimension(p, d)).collect::<Float64Array>());
    Ok(RecordBatch::try_new(
        profile_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(c.iter().map(|p| &p.column))),
            Arc::new(StringArray::from_iter_values(
                c.iter().map(|p| &p.data_type),
            )),
            Arc::new(Int64Array::from_iter_values(
                c.iter().map(|p| p.rows as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                c.iter().map(|p| p.missing as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                c.iter().map(|p| p.distinct as i64),
            )),
            f(Dimension::Completeness),
            f(Dimension::Validity),
            f(Dimension::Uniqueness),
            f(Dimension::Consistency),
            Arc::new(
                c.iter()
                    .map(|p| p.dominant_shape.as_deref())
                    .collect::<StringArray>(),
            ),
        ],
    )?)
}

fn facts(report: &QualityReport) -> serde_json::Value {
    let mut columns = serde_json::Map::new();
    for p in &report.columns {
        columns.insert(
            p.column.clone(),
            serde_json::json!({
                "data_type": p.data_type,
                "rows": p.rows,
                "missing": p.missing,
                "completeness": p.completeness,
                "valid": p.valid,
                "validity": p.validity,
                "failures": p.failures,
                "distinct": p.distinct,
                "uniqueness": p.uniqueness,
                "dominant_shape": p.dominant_shape,
                "consistency": p.consistency,
            }),
        );
    }
    serde_json::Value::Object(columns)
}

/// The mean of each dimension over the columns where it was assessed.
fn scores(report: &QualityReport) -> BTreeMap<&'static str, Option<f64>> {
    [
        Dimension::Completeness,
        Dimension::Validity,
        Dimension::Uniqueness,
        Dimension::Consistency,
    ]
    .into_iter()
    .map(|d| {
        let v: Vec<f64> = report
            .columns
            .iter()
            .filter_map(|p| dimension(p, d))
            .collect();
        (
            d.name(),
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64),
        )
    })
    .collect()
}

impl Component for Quality {
    const NAME: &'static str = "quality";
    const STAGE: Stage = Stage::Clean;

    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1)
            .inputs_doc("any table")
            .outputs(&[
                ("main", "the input, unchanged"),
                (
                    "quarantine",
                    "always empty: quality measures rows and never removes them",
                ),
                (
                    "profile",
                    "one row per input column: column, data_type, rows, missing, distinct, \
                     completeness, validity, uniqueness, consistency, dominant_shape",
                ),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        self.compile(schema)?;
        Ok(Outputs::new()
            .port("main", schema.clone())
            .port("quarantine", quarantine::schema(schema)?)
            .port("profile", profile_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let Some(input) = inputs.into_iter().next() else {
            return Err(Error::new("expected one input, got none"));
        };
        let schema = input.value.schema();
        let (checks, cross) = self.compile(&schema)?;
        let q_schema = quarantine::schema(&schema)?;
        let mut profiler =
            Profiler::new(&schema, checks, cross).map_err(|e| Error::new(e.to_string()))?;
        let mut batches = Vec::new();
        let mut rows = 0u64;
        for batch in input.value {
            let batch = batch.map_err(|e| Error::new(format!("reading the input: {e}")))?;
            if ctx.is_cancelled() {
                return Err(Error::new("cancelled"));
            }
            profiler
                .push(&batch)
                .map_err(|e| Error::new(e.to_string()))?;
            rows += batch.num_rows() as u64;
            ctx.progress(rows, 0, "rows");
            batches.push(batch);
        }
        let report = profiler.finish();
        ctx.fact("rows_in", rows);
        ctx.fact("rows_out", rows);
        ctx.fact("rows_quarantined", 0);
        ctx.fact("columns", facts(&report));
        ctx.fact(
            "rules",
            report
                .rules
                .iter()
                .map(|r| {
                    serde_json::json!({"rule": r.rule, "checked": r.checked, "passed": r.passed,
                        "consistency": r.consistency})
                })
                .collect::<Vec<_>>(),
        );
        ctx.fact("score", scores(&report));
        let mut below = Vec::new();
        for (d, min) in &self.fail_below {
            for p in &report.columns {
                if let Some(v) = dimension(p, *d).filter(|v| v < min) {
                    below.push(format!("{} {} {v:.4} < {min}", p.column, d.name()));
                }
            }
        }
        if !below.is_empty() {
            return Err(Error::new(format!(
                "data quality below the `fail_below` thresholds: {}. The full profile is in \
                 this step's facts; fix the data upstream or lower the threshold",
                below.join("; ")
            )));
        }
        let profile = profile_batch(&report)?;
        Ok(Outputs::new()
            .port("main", Table::from_batches(schema, batches))
            .port("quarantine", Table::from_batches(q_schema, vec![]))
            .port("profile", Table::from_batch(profile)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse() {
        assert_eq!(
            parse_rule("first_purchase <= last_purchase"),
            Some(("first_purchase", CmpOp::Le, "last_purchase"))
        );
        assert_eq!(parse_rule("a>b"), Some(("a", CmpOp::Gt, "b")));
        assert_eq!(parse_rule("a = b"), Some(("a", CmpOp::Eq, "b")));
        assert_eq!(parse_rule("a != b"), Some(("a", CmpOp::Ne, "b")));
        assert_eq!(parse_rule("a b"), None);
        assert_eq!(parse_rule("a <= "), None);
        assert_eq!(parse_rule("a x <= b"), None);
        assert_eq!(parse_rule("a => b"), None);
    }
}
