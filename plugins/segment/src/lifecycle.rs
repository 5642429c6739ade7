//! The `lifecycle` component.

use crate::features::{assignments_batch, assignments_head_fields, NUMERIC};
use crate::rfm::numeric_column;
use segflow_ml::lifecycle::{stages, LifecycleError, LifecycleParams, Stage as LifeStage};
use segflow_sdk::arrow::array::{Float64Array, Int32Array, Int64Array, StringArray};
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// The label of each stage in `assignments` (e.g. 新客戶, 活躍, 沉睡, 流失).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    /// Label of new customers.
    #[serde(default = "label_new")]
    pub new: String,
    /// Label of active customers.
    #[serde(default = "label_active")]
    pub active: String,
    /// Label of dormant customers.
    #[serde(default = "label_dormant")]
    pub dormant: String,
    /// Label of churned customers.
    #[serde(default = "label_churned")]
    pub churned: String,
}

impl Default for Labels {
    fn default() -> Self {
        Labels {
            new: label_new(),
            active: label_active(),
            dormant: label_dormant(),
            churned: label_churned(),
        }
    }
}

impl Labels {
    fn get(&self, s: LifeStage) -> &str {
        match s {
            LifeStage::New => &self.new,
            LifeStage::Active => &self.active,
            LifeStage::Dormant => &self.dormant,
            LifeStage::Churned => &self.churned,
        }
    }
}

fn label_new() -> String {
    "new".into()
}
fn label_active() -> String {
    "active".into()
}
fn label_dormant() -> String {
    "dormant".into()
}
fn label_churned() -> String {
    "churned".into()
}

/// Customer lifecycle stages from recency and tenure: **new** when the tenure (time
/// since the first purchase) is at most `new_max_tenure`; otherwise **active** when the
/// recency (time since the last purchase) is at most `active_max_recency`; otherwise
/// **dormant** when it is at most `dormant_max_recency`; otherwise **churned**. The
/// first stage that holds wins; thresholds are inclusive and in the columns' units
/// (days for `customer_features`). Labels can be renamed, e.g. to 新客戶 / 活躍 / 沉睡 /
/// 流失.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// Column identifying the customer, carried into `assignments`.
    #[serde(default = "default_key")]
    pub key: String,
    /// Numeric column with the time since the last purchase.
    #[serde(default = "default_recency")]
    pub recency: String,
    /// Numeric column with the time since the first purchase.
    #[serde(default = "default_tenure")]
    pub tenure: String,
    /// Largest tenure that counts as new.
    #[serde(default = "ninety")]
    #[schemars(range(min = 0.0))]
    pub new_max_tenure: f64,
    /// Largest recency that counts as active (for customers who are not new).
    #[serde(default = "ninety")]
    #[schemars(range(min = 0.0))]
    pub active_max_recency: f64,
    /// Largest recency that counts as dormant; beyond it a customer has churned. Must be
    /// greater than `active_max_recency`.
    #[serde(default = "year")]
    #[schemars(range(min = 0.0))]
    pub dormant_max_recency: f64,
    /// Labels of the four stages (each defaults to the stage's English name).
    #[serde(default)]
    pub labels: Labels,
}

fn default_key() -> String {
    "customer_id".into()
}
fn default_recency() -> String {
    "recency_days".into()
}
fn default_tenure() -> String {
    "tenure_days".into()
}
fn ninety() -> f64 {
    90.0
}
fn year() -> f64 {
    365.0
}

fn assignments_schema(key: &Field) -> SchemaRef {
    let mut fields = assignments_head_fields(key);
    fields.push(Field::new("stage", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

fn model_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("stage", DataType::Utf8, false),
        Field::new("rule", DataType::Utf8, false),
        Field::new("size", DataType::Int64, false),
        Field::new("share", DataType::Float64, true),
    ]))
}

impl Lifecycle {
    fn params(&self) -> Result<LifecycleParams> {
        let p = LifecycleParams {
            new_max_tenure: self.new_max_tenure,
            active_max_recency: self.active_max_recency,
            dormant_max_recency: self.dormant_max_recency,
        };
        p.check().map_err(|e| match &e {
            LifecycleError::BadThreshold { name, .. } => Error::config(name, e.to_string()),
            _ => Error::config("dormant_max_recency", e.to_string()),
        })?;
        for (i, s) in LifeStage::ALL.iter().enumerate() {
            let label = self.labels.get(*s);
            if label.trim().is_empty() {
                return Err(Error::config(
                    &format!("labels.{}", s.name()),
                    "the label is empty",
                ));
            }
            if let Some(o) = LifeStage::ALL[..i]
                .iter()
                .find(|o| self.labels.get(**o) == label)
            {
                return Err(Error::config(
                    &format!("labels.{}", s.name()),
                    format!(
                        "`{label}` is also the label of `{}`; give each stage its own label",
                        o.name()
                    ),
                ));
            }
        }
        Ok(p)
    }

    /// The rule of each stage, in words, e.g. `tenure_days <= 90`.
    fn rule(&self, s: LifeStage) -> String {
        match s {
            LifeStage::New => format!("{} <= {}", self.tenure, self.new_max_tenure),
            LifeStage::Active => format!("{} <= {}", self.recency, self.active_max_recency),
            LifeStage::Dormant => format!("{} <= {}", self.recency, self.dormant_max_recency),
            LifeStage::Churned => format!("{} > {}", self.recency, self.dormant_max_recency),
        }
    }
}

impl Component for Lifecycle {
    const NAME: &'static str = "lifecycle";
    const STAGE: Stage = Stage::Segment;

    fn ports() -> Ports {
        Ports::new(Stage::Segment, 1, 1)
            .inputs_doc("one row per customer with recency and tenure columns, e.g. customer_features")
            .outputs(&[
                (
                    "assignments",
                    "key, segment_id (0 new, 1 active, 2 dormant, 3 churned), segment (the label), stage (the English name)",
                ),
                ("model", "one row per stage: label, rule, size, share"),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        let key = require_column(schema, &self.key, "key", &[])?.clone();
        require_column(schema, &self.recency, "recency", NUMERIC)?;
        require_column(schema, &self.tenure, "tenure", NUMERIC)?;
        self.params()?;
        Ok(Outputs::new()
            .port("assignments", assignments_schema(&key))
            .port("model", model_schema()))
    }

    fn run(&self, mut inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let params = self.params()?;
        let batch = inputs.remove(0).value.concat()?;
        let n = batch.num_rows();
        let recency = numeric_column(&batch, &self.recency, "recency")?;
        let tenure = numeric_column(&batch, &self.tenure, "tenure")?;
        let st = stages(&recency, &tenure, &params).map_err(|e| Error::new(e.to_string()))?;
        let mut size = [0i64; 4];
        for s in &st {
            size[s.index()] += 1;
        }
        let assignments = assignments_batch(
            assignments_schema,
            &batch,
            &self.key,
            st.iter().map(|s| s.index() as i32).collect(),
            st.iter().map(|s| self.labels.get(*s)).collect::<Vec<_>>(),
            vec![Arc::new(StringArray::from(
                st.iter().map(|s| s.name()).collect::<Vec<_>>(),
            ))],
        )?;
        let all = LifeStage::ALL;
        let model = RecordBatch::try_new(
            model_schema(),
            vec![
                Arc::new(Int32Array::from(
                    all.iter().map(|s| s.index() as i32).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    all.iter().map(|s| self.labels.get(*s)).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    all.iter().map(|s| s.name()).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    all.iter().map(|s| self.rule(*s)).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(size.to_vec())),
                Arc::new(Float64Array::from(
                    size.iter()
                        .map(|&c| (n > 0).then(|| c as f64 / n as f64))
                        .collect::<Vec<_>>(),
                )),
            ],
        )?;
        ctx.fact("customers", n);
        ctx.fact(
            "thresholds",
            serde_json::json!({
                "new_max_tenure": self.new_max_tenure,
                "active_max_recency": self.active_max_recency,
                "dormant_max_recency": self.dormant_max_recency,
            }),
        );
        ctx.fact(
            "labels",
            all.iter()
                .map(|s| (s.name().to_string(), serde_json::json!(self.labels.get(*s))))
                .collect::<serde_json::Map<_, _>>(),
        );
        ctx.fact(
            "sizes",
            all.iter()
                .map(|s| {
                    (
                        self.labels.get(*s).to_string(),
                        serde_json::json!(size[s.index()]),
                    )
                })
                .collect::<serde_json::Map<_, _>>(),
        );
        segflow_sdk::tracing::info!(customers = n, "lifecycle stages assigned");
        Ok(Outputs::new()
            .port("assignments", Table::from_batch(assignments))
            .port("model", Table::from_batch(model)))
    }
}
