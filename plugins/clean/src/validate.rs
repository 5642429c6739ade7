//! The `validate` component: cast to a declared schema and check row-level rules.

use crate::quarantine;
use segflow_ml::rules::{self, Check, ColumnType, Literal, UniqueTracker};
use segflow_sdk::arrow::array::BooleanArray;
use segflow_sdk::arrow::compute::nullif;
use segflow_sdk::arrow::util::display::array_value_to_string;
use segflow_sdk::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Cast columns to a declared schema and check data-quality rules per column: not
/// null, a min/max range, a regex, a list of allowed values, uniqueness (of a column or
/// of a combined key). A row that breaks a rule is handled by the rule's policy:
/// `quarantine` (the default: the row goes to the `quarantine` port with a `reason`
/// such as `range: amount < 0` or `not_null: customer_id`), `fix` (the value is set to
/// null and the row kept) or `fail` (the step fails, naming the rule, the column and the
/// first offending row). A row is judged by the first rule it breaks: first the casts
/// (in input column order), then each column's not_null, min, max, regex and in (in
/// input column order), then uniqueness. Columns not named in `columns` pass through
/// unchanged. Quarantined rows keep their original (uncast) values.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Validate {
    /// The declared schema: column name to type (`int64`, `float64`, `utf8`, `bool`,
    /// `date`, `timestamp`). Each named column is cast; a value that does not convert
    /// (e.g. `12,50` to float64, `2024-02-30` to date) breaks the `cast` rule.
    #[serde(default)]
    pub columns: BTreeMap<String, TypeConfig>,
    /// Rules per column name (the column is checked after its cast, if declared).
    #[serde(default)]
    pub rules: BTreeMap<String, ColumnRules>,
    /// Columns whose combined value must be unique: a row repeating an earlier row's key
    /// (all parts non-null) breaks the `unique_key` rule. Policy `fix` is not available.
    #[serde(default)]
    pub unique_key: Vec<String>,
    /// Policy of every rule that does not set its own.
    #[serde(default)]
    pub policy: PolicyConfig,
}

/// A declared column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TypeConfig {
    /// 64-bit integer.
    Int64,
    /// 64-bit float.
    Float64,
    /// UTF-8 text.
    Utf8,
    /// Boolean (text `true`/`false`/`1`/`0`/`yes`/`no` converts).
    Bool,
    /// Calendar date (text `YYYY-MM-DD` converts).
    Date,
    /// Timestamp in microseconds without time zone (ISO 8601 text converts).
    Timestamp,
}

impl TypeConfig {
    pub(crate) fn column_type(self) -> ColumnType {
        match self {
            TypeConfig::Int64 => ColumnType::Int64,
            TypeConfig::Float64 => ColumnType::Float64,
            TypeConfig::Utf8 => ColumnType::Utf8,
            TypeConfig::Bool => ColumnType::Bool,
            TypeConfig::Date => ColumnType::Date,
            TypeConfig::Timestamp => ColumnType::Timestamp,
        }
    }
}

/// What happens to a row that breaks a rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyConfig {
    /// Move the row to the `quarantine` port with a reason.
    #[default]
    Quarantine,
    /// Set the offending value to null and keep the row.
    Fix,
    /// Fail the step, naming the rule, the column and the first offending row.
    Fail,
}

/// The rule names a policy can be set for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleName {
    /// A value that does not convert to the declared type.
    Cast,
    /// A null value.
    NotNull,
    /// A value below `min` or above `max`.
    Range,
    /// A text value that does not match `regex`.
    Regex,
    /// A value not in `in`.
    In,
    /// A value repeating an earlier row's value.
    Unique,
}

/// A literal in a rule: a number, text (dates and timestamps are written as text) or a
/// boolean.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum LiteralConfig {
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(f64),
    /// Text, also for dates (`2024-12-31`) and timestamps.
    Text(String),
}

impl LiteralConfig {
    pub(crate) fn literal(&self) -> Literal {
        match self {
            LiteralConfig::Bool(b) => Literal::Bool(*b),
            LiteralConfig::Number(x) => Literal::Number(*x),
            LiteralConfig::Text(s) => Literal::Text(s.clone()),
        }
    }
}

/// The rules of one column.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnRules {
    /// The value must not be null (rule `not_null`; policy `fix` is not available).
    #[serde(default)]
    pub not_null: bool,
    /// Smallest allowed value (rule `range`), in the column's type: a number, or text
    /// such as `2020-01-01` for a date.
    #[serde(default)]
    pub min: Option<LiteralConfig>,
    /// Largest allowed value (rule `range`), in the column's type.
    #[serde(default)]
    pub max: Option<LiteralConfig>,
    /// Regular expression (Rust `regex` syntax) the whole text value must match (rule
    /// `regex`; text columns only).
    #[serde(default)]
    pub regex: Option<String>,
    /// The allowed values (rule `in`), in the column's type.
    #[serde(default, rename = "in")]
    pub allowed: Option<Vec<LiteralConfig>>,
    /// The value must not repeat an earlier row's value (rule `unique`; nulls pass).
    #[serde(default)]
    pub unique: bool,
    /// Policy of this column's rules (default: the top-level `policy`).
    #[serde(default)]
    pub policy: Option<PolicyConfig>,
    /// Policy per rule of this column, overriding `policy`: e.g. `{range: fix, cast:
    /// fail}`.
    #[serde(default)]
    pub policies: BTreeMap<RuleName, PolicyConfig>,
}

/// One compiled row check of one column.
struct Compiled {
    column: usize,
    check: Check,
    policy: PolicyConfig,
    reason: String,
}

/// Everything run() needs, compiled from the config and the input schema.
struct Plan {
    /// Input column index → target type, for declared columns.
    casts: Vec<(usize, DataType, PolicyConfig, String)>,
    /// Row checks in order.
    checks: Vec<Compiled>,
    /// Unique checks: key column indices, policy, reason.
    uniques: Vec<(Vec<usize>, PolicyConfig, String)>,
    main_schema: SchemaRef,
}

impl Validate {
    fn policy(&self, column: &str, rule: RuleName) -> PolicyConfig {
        let r = self.rules.get(column);
        r.and_then(|r| r.policies.get(&rule).copied())
            .or_else(|| r.and_then(|r| r.policy))
            .unwrap_or(self.policy)
    }

    fn compile(&self, input: &SchemaRef) -> Result<Plan> {
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut casts = Vec::new();
        for (name, ty) in &self.columns {
            let field = format!("columns.{name}");
            require_column(input, name, &field, &[])?;
            let i = input.index_of(name)?;
            let to = ty.column_type().data_type();
            if !segflow_sdk::arrow::compute::can_cast_types(input.field(i).data_type(), &to) {
                return Err(Error::config(
                    &field,
                    format!(
                        "column `{name}` has type {}, which cannot be cast to {}",
                        input.field(i).data_type(),
                        ty.column_type().name()
                    ),
                ));
            }
            fields[i] = Field::new(name, to.clone(), true);
            let reason = format!("cast: {name} to {}", ty.column_type().name());
            let policy = self.policy(name, RuleName::Cast);
            casts.push((i, to, policy, reason));
        }
        casts.sort_by_key(|c| c.0);
        let mut checks = Vec::new();
        let mut uniques = Vec::new();
        let mut ordered: Vec<(&String, &ColumnRules)> = Vec::new();
        for (name, r) in &self.rules {
            require_column(input, name, &format!("rules.{name}"), &[])?;
            ordered.push((name, r));
        }
        ordered.sort_by_key(|(n, _)| input.index_of(n).unwrap_or(usize::MAX));
        for (name, r) in ordered {
            let i = input.index_of(name)?;
            let ty = fields[i].data_type().clone();
            let at = |k: &str| format!("rules.{name}.{k}");
            let mut push = |check: Check, rule: RuleName, reason: String| {
                checks.push(Compiled {
                    column: i,
                    check,
                    policy: self.policy(name, rule),
                    reason,
                });
            };
            if r.not_null {
                if self.policy(name, RuleName::NotNull) == PolicyConfig::Fix {
                    return Err(Error::config(
                        &at("policies"),
                        "policy `fix` is not available for not_null (the value is already \
                         null): use quarantine or fail",
                    ));
                }
                push(
                    Check::NotNull,
                    RuleName::NotNull,
                    format!("not_null: {name}"),
                );
            }
            for (key, bound, op) in [("min", &r.min, "<"), ("max", &r.max, ">")] {
                if let Some(b) = bound {
                    let lit = b.literal();
                    let arr = rules::literals(std::slice::from_ref(&lit), &ty)
                        .map_err(|e| Error::config(&at(key), e.to_string()))?;
                    let check = if key == "min" {
                        Check::Min(arr)
                    } else {
                        Check::Max(arr)
                    };
                    push(check, RuleName::Range, format!("range: {name} {op} {lit}"));
                }
            }
            if let Some(pattern) = &r.regex {
                if ty != DataType::Utf8 {
                    return Err(Error::config(
                        &at("regex"),
                        format!("a regex needs a utf8 column; `{name}` is {ty}"),
                    ));
                }
                let check = Check::regex(pattern)
                    .map_err(|e| Error::config(&at("regex"), e.to_string()))?;
                push(check, RuleName::Regex, format!("regex: {name}"));
            }
            if let Some(values) = &r.allowed {
                let lits: Vec<Literal> = values.iter().map(LiteralConfig::literal).collect();
                let arr = rules::literals(&lits, &ty)
                    .map_err(|e| Error::config(&at("in"), e.to_string()))?;
                push(Check::In(arr), RuleName::In, format!("in: {name}"));
            }
            if r.unique {
                uniques.push((
                    vec![i],
                    self.policy(name, RuleName::Unique),
                    format!("unique: {name}"),
                ));
            }
        }
        if !self.unique_key.is_empty() {
            if self.policy == PolicyConfig::Fix {
                return Err(Error::config(
                    "unique_key",
                    "policy `fix` is not available for unique_key: set the top-level policy \
                     to quarantine or fail",
                ));
            }
            let mut idx = Vec::new();
            for (k, name) in self.unique_key.iter().enumerate() {
                require_column(input, name, &format!("unique_key.{k}"), &[])?;
                idx.push(input.index_of(name)?);
            }
            uniques.push((
                idx,
                self.policy,
                format!("unique_key: {}", self.unique_key.join(", ")),
            ));
        }
        let main_schema = Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()));
        Ok(Plan {
            casts,
            checks,
            uniques,
            main_schema,
        })
    }
}

/// Per-run state carried across batches.
struct RunState {
    trackers: Vec<UniqueTracker>,
    counts: BTreeMap<String, u64>,
    fixed: BTreeMap<String, u64>,
}

fn fail_error(reason: &str, row: u64, value: &str) -> Error {
    Error::new(format!(
        "validation rule `{reason}` failed (policy fail) at input row {row} (0-based), \
         value `{value}`; fix the data upstream or set the rule's policy to quarantine or fix"
    ))
}

impl Plan {
    /// Handle the failures `mask` of one rule on the current batch.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        mask: &[bool],
        policy: PolicyConfig,
        reason: &str,
        column: usize,
        columns: &mut [ArrayRef],
        original: &RecordBatch,
        offset: u64,
        rejected: &mut [Option<String>],
        st: &mut RunState,
    ) -> Result<()> {
        let live: Vec<bool> = mask
            .iter()
            .zip(rejected.iter())
            .map(|(&m, r)| m && r.is_none())
            .collect();
        let n = live.iter().filter(|&&m| m).count() as u64;
        if n == 0 {
            return Ok(());
        }
        match policy {
            PolicyConfig::Fail => {
                let row = live.iter().position(|&m| m).unwrap_or(0);
                let value = array_value_to_string(original.column(column), row)
                    .unwrap_or_else(|_| "?".into());
                return Err(fail_error(reason, offset + row as u64, &value));
            }
            PolicyConfig::Fix => {
                columns[column] = nullif(&columns[column], &BooleanArray::from(live))?;
                *st.fixed.entry(reason.to_string()).or_default() += n;
            }
            PolicyConfig::Quarantine => {
                for (r, m) in rejected.iter_mut().zip(live) {
                    if m {
                        *r = Some(reason.to_string());
                    }
                }
                *st.counts.entry(reason.to_string()).or_default() += n;
            }
        }
        Ok(())
    }

    fn batch(
        &self,
        batch: &RecordBatch,
        offset: u64,
        st: &mut RunState,
    ) -> Result<(RecordBatch, Vec<u32>, Vec<String>)> {
        let n = batch.num_rows();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        let mut rejected: Vec<Option<String>> = vec![None; n];
        for (i, to, policy, reason) in &self.casts {
            let (cast, failed) =
                rules::cast_column(&columns[*i], to).map_err(|e| Error::new(e.to_string()))?;
            columns[*i] = cast;
            // A failed cast is already null: `fix` keeps it that way.
            Self::apply(
                &failed,
                *policy,
                reason,
                *i,
                &mut columns,
                batch,
                offset,
                &mut rejected,
                st,
            )?;
        }
        for c in &self.checks {
            let mask = rules::failures(&columns[c.column], &c.check)
                .map_err(|e| Error::new(format!("{}: {e}", c.reason)))?;
            Self::apply(
                &mask,
                c.policy,
                &c.reason,
                c.column,
                &mut columns,
                batch,
                offset,
                &mut rejected,
                st,
            )?;
        }
        for (k, (idx, policy, reason)) in self.uniques.iter().enumerate() {
            let keys: Vec<ArrayRef> = idx.iter().map(|&i| columns[i].clone()).collect();
            let skip: Vec<bool> = rejected.iter().map(Option::is_some).collect();
            let mask = st.trackers[k]
                .check(&keys, &skip)
                .map_err(|e| Error::new(e.to_string()))?;
            Self::apply(
                &mask,
                *policy,
                reason,
                idx[0],
                &mut columns,
                batch,
                offset,
                &mut rejected,
                st,
            )?;
        }
        let cast = RecordBatch::try_new(self.main_schema.clone(), columns)?;
        let keep: Vec<u32> = (0..n as u32)
            .filter(|&i| rejected[i as usize].is_none())
            .collect();
        let main = quarantine::take(&cast, &keep)?;
        let mut q_rows = Vec::new();
        let mut q_reasons = Vec::new();
        for (i, r) in rejected.into_iter().enumerate() {
            if let Some(r) = r {
                q_rows.push(i as u32);
                q_reasons.push(r);
            }
        }
        Ok((main, q_rows, q_reasons))
    }
}

impl Component for Validate {
    const NAME: &'static str = "validate";
    const STAGE: Stage = Stage::Clean;

    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1)
            .inputs_doc("any table")
            .outputs(&[
                ("main", "the rows that pass, cast to the declared schema"),
                (
                    "quarantine",
                    "rows that break a quarantine-policy rule, as they came in, with a \
                     `reason` column naming the rule and the column",
                ),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        let plan = self.compile(schema)?;
        Ok(Outputs::new()
            .port("main", plan.main_schema)
            .port("quarantine", quarantine::schema(schema)?))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let Some(input) = inputs.into_iter().next() else {
            return Err(Error::new("expected one input, got none"));
        };
        let table = input.value;
        let schema = table.schema();
        let plan = self.compile(&schema)?;
        let q_schema = quarantine::schema(&schema)?;
        let mut st = RunState {
            trackers: Vec::new(),
            counts: BTreeMap::new(),
            fixed: BTreeMap::new(),
        };
        for (idx, _, _) in &plan.uniques {
            let types: Vec<DataType> = idx
                .iter()
                .map(|&i| plan.main_schema.field(i).data_type().clone())
                .collect();
            st.trackers
                .push(UniqueTracker::new(&types).map_err(|e| Error::new(e.to_string()))?);
        }
        let (mut main, mut quar) = (Vec::new(), Vec::new());
        let (mut rows_in, mut rows_out, mut rows_q) = (0u64, 0u64, 0u64);
        for next in table {
            let batch = next.map_err(|e| Error::new(format!("reading the input: {e}")))?;
            if ctx.is_cancelled() {
                return Err(Error::new("cancelled"));
            }
            let (m, q_rows, q_reasons) = plan.batch(&batch, rows_in, &mut st)?;
            rows_in += batch.num_rows() as u64;
            rows_out += m.num_rows() as u64;
            rows_q += q_rows.len() as u64;
            if m.num_rows() > 0 {
                main.push(m);
            }
            if !q_rows.is_empty() {
                quar.push(quarantine::batch(&q_schema, &batch, &q_rows, &q_reasons)?);
            }
            ctx.progress(rows_in, 0, "rows");
        }
        ctx.fact("rows_in", rows_in);
        ctx.fact("rows_out", rows_out);
        ctx.fact("rows_quarantined", rows_q);
        ctx.fact("quarantine_reasons", &st.counts);
        ctx.fact("values_fixed", &st.fixed);
        Ok(Outputs::new()
            .port("main", Table::from_batches(plan.main_schema, main))
            .port("quarantine", Table::from_batches(q_schema, quar)))
    }
}
