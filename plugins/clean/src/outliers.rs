//! The `outliers` component: IQR / z-score / robust z-score fences per column.

use crate::numeric::{self, NUMERIC};
use crate::quarantine;
use segflow_ml::outliers::{Fences, OutlierError, OutlierMethod};
use segflow_sdk::arrow::array::{BooleanArray, Float64Array};
use segflow_sdk::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Find univariate outliers of numeric columns and flag, clip or quarantine them.
/// Fences per method: `iqr` — [Q1 − k·IQR, Q3 + k·IQR] with numpy's default linear
/// quartiles; `zscore` — mean ± threshold·std (population std, ddof 0, as
/// `scipy.stats.zscore`); `robust_z` — median ± threshold·1.4826·MAD. A value strictly
/// outside the fences is an outlier; nulls and NaN never are and are not fitted on.
/// Fences are fitted on the whole input column. Facts record the fences and counts
/// per column. The whole input is held in memory.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outliers {
    /// Columns to check, each with its method and action: e.g. `amount: {method: iqr,
    /// k: 3, action: clip}`.
    pub columns: BTreeMap<String, OutlierColumn>,
}

/// How one column is checked.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutlierColumn {
    /// `iqr` (Tukey's fences), `zscore` or `robust_z` (median and MAD).
    pub method: MethodConfig,
    /// IQR multiplier of `method: iqr` (default 1.5; `>= 0`).
    #[serde(default)]
    pub k: Option<f64>,
    /// Threshold of `zscore` (default 3) and `robust_z` (default 3.5), in (scaled)
    /// standard deviations; `> 0`.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// `flag` (default: add a boolean column `<column>_outlier`), `clip` (winsorise to
    /// the fences; the column becomes float64) or `quarantine` (move the row to the
    /// `quarantine` port with reason `outlier: <column> (<method>)`).
    #[serde(default)]
    pub action: ActionConfig,
}

/// Outlier method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MethodConfig {
    /// Tukey's fences on the interquartile range.
    Iqr,
    /// Standard score with the population standard deviation.
    Zscore,
    /// Robust z-score: median and 1.4826·MAD.
    RobustZ,
}

/// What to do with an outlier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActionConfig {
    /// Add a boolean `<column>_outlier` column.
    #[default]
    Flag,
    /// Winsorise to the fences.
    Clip,
    /// Move the row to quarantine.
    Quarantine,
}

impl OutlierColumn {
    fn method(&self, name: &str) -> Result<OutlierMethod> {
        let bad =
            |f: &str, e: OutlierError| Error::config(&format!("columns.{name}.{f}"), e.to_string());
        match self.method {
            MethodConfig::Iqr => {
                if self.threshold.is_some() {
                    return Err(Error::config(
                        &format!("columns.{name}.threshold"),
                        "method `iqr` takes `k`, not `threshold`",
                    ));
                }
                OutlierMethod::iqr(self.k.unwrap_or(1.5)).map_err(|e| bad("k", e))
            }
            MethodConfig::Zscore | MethodConfig::RobustZ => {
                if self.k.is_some() {
                    return Err(Error::config(
                        &format!("columns.{name}.k"),
                        "`k` is for method `iqr`; z-score methods take `threshold`",
                    ));
                }
                if self.method == MethodConfig::Zscore {
                    OutlierMethod::zscore(self.threshold.unwrap_or(3.0))
                } else {
                    OutlierMethod::robust_z(self.threshold.unwrap_or(3.5))
                }
                .map_err(|e| bad("threshold", e))
            }
        }
    }
}

impl Outliers {
    fn check(&self, schema: &SchemaRef) -> Result<SchemaRef> {
        if self.columns.is_empty() {
            return Err(Error::config(
                "columns",
                "name at least one column to check",
            ));
        }
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        for (name, c) in &self.columns {
            require_column(schema, name, &format!("columns.{name}"), NUMERIC)?;
            c.method(name)?;
            let i = schema.index_of(name)?;
            match c.action {
                ActionConfig::Clip => fields[i] = Field::new(name, DataType::Float64, true),
                ActionConfig::Flag => {
                    let flag = format!("{name}_outlier");
                    if schema.field_with_name(&flag).is_ok() {
                        return Err(Error::config(
                            &format!("columns.{name}.action"),
                            format!("the input already has a column `{flag}`, which `flag` adds"),
                        ));
                    }
                    fields.push(Field::new(flag, DataType::Boolean, true));
                }
                ActionConfig::Quarantine => {}
            }
        }
        Ok(Arc::new(Schema::new_with_metadata(
            fields,
            schema.metadata().clone(),
        )))
    }
}

impl Component for Outliers {
    const NAME: &'static str = "outliers";
    const STAGE: Stage = Stage::Clean;

    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1)
            .inputs_doc("any table")
            .outputs(&[
                (
                    "main",
                    "the input, with flag columns added or values clipped",
                ),
                (
                    "quarantine",
                    "rows outlying in a column with `action: quarantine`, with a `reason` column",
                ),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        Ok(Outputs::new()
            .port("main", self.check(schema)?)
            .port("quarantine", quarantine::schema(schema)?))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let Some(input) = inputs.into_iter().next() else {
            return Err(Error::new("expected one input, got none"));
        };
        let schema = input.value.schema();
        let out_schema = self.check(&schema)?;
        let q_schema = quarantine::schema(&schema)?;
        let batch = input.value.concat()?;
        let n = batch.num_rows();
        let mut columns = batch.columns().to_vec();
        let mut flags: Vec<ArrayRef> = Vec::new();
        let mut reason: Vec<Option<String>> = vec![None; n];
        let mut facts = serde_json::Map::new();
        for (name, c) in &self.columns {
            let i = schema.index_of(name)?;
            let values = numeric::as_f64(batch.column(i))?;
            let method = c.method(name)?;
            let fences = match Fences::fit(
                method,
                values
                    .values()
                    .iter()
                    .enumerate()
                    .filter(|(r, _)| values.is_valid(*r))
                    .map(|(_, v)| *v)
                    .collect::<Vec<f64>>()
                    .as_slice(),
            ) {
                Ok(f) => Some(f),
                Err(OutlierError::Empty) => None,
                Err(e) => return Err(Error::new(format!("column `{name}`: {e}"))),
            };
            let is_out: Vec<bool> = (0..n)
                .map(|r| {
                    values.is_valid(r) && fences.is_some_and(|f| f.is_outlier(values.value(r)))
                })
                .collect();
            let count = is_out.iter().filter(|&&o| o).count();
            match c.action {
                ActionConfig::Flag => {
                    let flag: BooleanArray = (0..n)
                        .map(|r| values.is_valid(r).then_some(is_out[r]))
                        .collect();
                    flags.push(Arc::new(flag));
                }
                ActionConfig::Clip => {
                    let clipped: Float64Array = values
                        .iter()
                        .map(|v| v.map(|x| fences.map_or(x, |f| f.clip(x))))
                        .collect();
                    columns[i] = Arc::new(clipped);
                }
                ActionConfig::Quarantine => {
                    for (r, o) in reason.iter_mut().zip(&is_out) {
                        if *o && r.is_none() {
                            *r = Some(format!("outlier: {name} ({})", method.name()));
                        }
                    }
                }
            }
            let mut f = serde_json::Map::new();
            f.insert("method".into(), method.name().into());
            match method {
                OutlierMethod::Iqr { k } => f.insert("k".into(), k.into()),
                OutlierMethod::ZScore { threshold } | OutlierMethod::RobustZ { threshold } => {
                    f.insert("threshold".into(), threshold.into())
                }
            };
            f.insert("lower".into(), fences.map(|x| x.lower).into());
            f.insert("upper".into(), fences.map(|x| x.upper).into());
            f.insert("center".into(), fences.map(|x| x.center).into());
            f.insert("scale".into(), fences.map(|x| x.scale).into());
            f.insert("n".into(), fences.map_or(0, |x| x.n).into());
            f.insert("outliers".into(), count.into());
            f.insert(
                "action".into(),
                match c.action {
                    ActionConfig::Flag => "flag",
                    ActionConfig::Clip => "clip",
                    ActionConfig::Quarantine => "quarantine",
                }
                .into(),
            );
            facts.insert(name.clone(), f.into());
        }
        columns.extend(flags);
        let all = RecordBatch::try_new(out_schema, columns)?;
        ctx.fact("fences", facts);
        quarantine::split(&all, &batch, &q_schema, reason, ctx)
    }
}
