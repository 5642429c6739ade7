//! The `rules` component.

use crate::features::{assignments_head_fields, key_column};
use segflow_ml::conditions::Condition;
use segflow_sdk::arrow::array::{Float64Array, Int32Array, Int64Array, StringArray};
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// One named segment and the condition that puts a customer in it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The segment's label in `assignments` (unique).
    pub name: String,
    /// The condition, e.g. `recency_days <= 30 and frequency >= 5`: comparisons
    /// (`< <= == != >= >`) between a column and a number, a quoted text or date, or
    /// another column; `and`, `or`, `not`, parentheses, `COLUMN in [..]`, `COLUMN is
    /// null`, `COLUMN is not null`. A comparison with a null is never true.
    pub when: String,
}

/// Rule-based segments: an ordered list of named conditions on columns (`when:
/// recency_days <= 30 and frequency >= 5`). Each customer gets the first rule whose
/// condition is true, or the `default` segment when none is. Conditions are parsed and
/// type-checked against the input's columns before any data is read; errors point at
/// the rule's `when:` line and the character in it. A comparison with a missing (null)
/// value is never true, even under `not`: test for it with `is null`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Column identifying the customer, carried into `assignments`.
    #[serde(default = "default_key")]
    pub key: String,
    /// The segments in order; the first rule whose condition holds wins.
    #[schemars(length(min = 1))]
    pub rules: Vec<RuleConfig>,
    /// The segment of customers no rule matches; its `segment_id` is the number of rules.
    #[serde(default = "default_default")]
    pub default: String,
}

fn default_key() -> String {
    "customer_id".into()
}
fn default_default() -> String {
    "Other".into()
}

fn assignments_schema(key: &Field) -> SchemaRef {
    Arc::new(Schema::new(assignments_head_fields(key)))
}

fn model_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("when", DataType::Utf8, true),
        Field::new("size", DataType::Int64, false),
        Field::new("share", DataType::Float64, true),
        Field::new("matched", DataType::Int64, true),
    ]))
}

impl Rules {
    /// Check names and compile every condition against `schema`.
    fn compile(&self, schema: &Schema) -> Result<Vec<Condition>> {
        if self.rules.is_empty() {
            return Err(Error::config(
                "rules",
                "list at least one rule ({name, when})",
            ));
        }
        let mut out = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.name.trim().is_empty() {
                return Err(Error::config(
                    &format!("rules.{i}.name"),
                    "the name is empty",
                ));
            }
            if let Some(j) = self.rules[..i].iter().position(|r| r.name == rule.name) {
                return Err(Error::config(
                    &format!("rules.{i}.name"),
                    format!(
                        "`{}` is also the name of rule {j}; join the two conditions with `or` in one rule",
                        rule.name
                    ),
                ));
            }
            let c = Condition::new(&rule.when, schema).map_err(|e| {
                Error::config(
                    &format!("rules.{i}.when"),
                    format!("rule `{}`: condition `{}` {e}", rule.name, rule.when),
                )
            })?;
            out.push(c);
        }
        if self.default.trim().is_empty() {
            return Err(Error::config(
                "default",
                "the default segment's name is empty",
            ));
        }
        if let Some(j) = self.rules.iter().position(|r| r.name == self.default) {
            return Err(Error::config(
                "default",
                format!(
                    "`{}` is also the name of rule {j}; give the default segment another name",
                    self.default
                ),
            ));
        }
        Ok(out)
    }
}

impl Component for Rules {
    const NAME: &'static str = "rules";
    const STAGE: Stage = Stage::Segment;

    fn ports() -> Ports {
        Ports::new(Stage::Segment, 1, 1)
            .inputs_doc("one row per customer with the columns the conditions name")
            .outputs(&[
                (
                    "assignments",
                    "key, segment_id (the index of the first matching rule; the default is last), segment",
                ),
                (
                    "model",
                    "one row per rule and the default: condition, size, share, and matched (rows whose condition holds, before earlier rules take theirs)",
                ),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        let key = require_column(schema, &self.key, "key", &[])?.clone();
        self.compile(schema)?;
        Ok(Outputs::new()
            .port("assignments", assignments_schema(&key))
            .port("model", model_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let table = inputs
            .into_iter()
            .next()
            .ok_or_else(|| Error::new("expected exactly one input"))?
            .value;
        let schema = table.schema();
        let conditions = self.compile(&schema)?;
        let k = conditions.len() + 1;
        let mut names: Vec<&str> = self.rules.iter().map(|r| r.name.as_str()).collect();
        names.push(&self.default);
        let mut size = vec![0i64; k];
        let mut matched = vec![0i64; conditions.len()];
        let mut out = Vec::new();
        let mut out_schema = None;
        let mut rows = 0usize;
        for batch in table {
            let batch = batch?;
            rows += batch.num_rows();
            let mut hits = Vec::with_capacity(conditions.len());
            for (i, c) in conditions.iter().enumerate() {
                let h = c
                    .matches(&batch)
                    .map_err(|e| Error::config(&format!("rules.{i}.when"), e.to_string()))?;
                matched[i] += h.iter().filter(|&&x| x).count() as i64;
                hits.push(h);
            }
            let seg: Vec<usize> = (0..batch.num_rows())
                .map(|r| hits.iter().position(|h| h[r]).unwrap_or(conditions.len()))
                .collect();
            for &s in &seg {
                size[s] += 1;
            }
            let (key_field, key_col) = key_column(&batch, &self.key)?;
            let schema = out_schema
                .get_or_insert_with(|| assignments_schema(&key_field))
                .clone();
            out.push(RecordBatch::try_new(
                schema,
                vec![
                    key_col,
                    Arc::new(Int32Array::from(
                        seg.iter().map(|&s| s as i32).collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        seg.iter().map(|&s| names[s]).collect::<Vec<_>>(),
                    )),
                ],
            )?);
            if ctx.is_cancelled() {
                return Err(Error::new("cancelled"));
            }
        }
        let out_schema = match out_schema {
            Some(s) => s,
            None => assignments_schema(schema.field_with_name(&self.key)?),
        };
        let model = RecordBatch::try_new(
            model_schema(),
            vec![
                Arc::new(Int32Array::from((0..k as i32).collect::<Vec<_>>())),
                Arc::new(StringArray::from(names.clone())),
                Arc::new(StringArray::from(
                    (0..k)
                        .map(|i| self.rules.get(i).map(|r| r.when.as_str()))
                        .collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(size.clone())),
                Arc::new(Float64Array::from(
                    size.iter()
                        .map(|&c| (rows > 0).then(|| c as f64 / rows as f64))
                        .collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    (0..k).map(|i| matched.get(i).copied()).collect::<Vec<_>>(),
                )),
            ],
        )?;
        ctx.fact("rows", rows);
        ctx.fact("rules", self.rules.len());
        ctx.fact("default", &self.default);
        ctx.fact(
            "sizes",
            names
                .iter()
                .zip(&size)
                .map(|(name, c)| (name.to_string(), serde_json::json!(c)))
                .collect::<serde_json::Map<_, _>>(),
        );
        ctx.fact("unmatched", size[k - 1]);
        let empty: Vec<&str> = (0..conditions.len())
            .filter(|&i| size[i] == 0)
            .map(|i| names[i])
            .collect();
        ctx.fact("empty_rules", &empty);
        segflow_sdk::tracing::info!(rows, unmatched = size[k - 1], "rules applied");
        Ok(Outputs::new()
            .port("assignments", Table::from_batches(out_schema, out))
            .port("model", Table::from_batch(model)))
    }
}
