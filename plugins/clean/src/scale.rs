//! The `scale` component: z-score, min-max or robust scaling per column, with the
//! fitted parameters in the facts so a later step can invert it.

use crate::numeric::{self, NUMERIC};
use crate::quarantine;
use segflow_ml::scale::{ScaleError, ScaleMethod, Scaler};
use segflow_sdk::arrow::array::Float64Array;
use segflow_sdk::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Scale numeric columns, as scikit-learn's scalers do: `zscore` — (x − mean) / std
/// with the population std (`StandardScaler`); `minmax` — onto `[low, high]`, default
/// `[0, 1]` (`MinMaxScaler`); `robust` — (x − median) / (Q(q_high) − Q(q_low)), default
/// quartiles, numpy's linear quantiles (`RobustScaler`). A constant column gets scale 1
/// (it maps to 0, or to `low`) and is reported as `constant` in the facts. The scaled
/// column is float64 and replaces the input column, or is added as
/// `<column><suffix>` when `suffix` is set. Parameters are fitted on the rows that
/// reach `main`; null stays null and NaN stays NaN (neither is fitted on). A row with
/// an infinite value in a scaled column goes to `quarantine` with the reason
/// `scale: <column> is infinite`. Facts `scaled.<column>` hold `center`, `scale` and
/// `offset` — the scaled value is y = (x − center) / scale + offset, so
/// x = (y − offset) · scale + center — plus the method's own parameters (`mean`, `std`;
/// `min`, `max`, `range`; `median`, `quantile_range` and `spread`, the difference of
/// the two quantiles), `constant` and `n`. The whole input is held in memory.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    /// Columns to scale, each with its method: e.g. `recency: {method: zscore}`,
    /// `monetary: {method: robust}`, `frequency: {method: minmax, range: [0, 10]}`.
    pub columns: BTreeMap<String, ScaleColumn>,
    /// Write each scaled column as a new float64 column `<column><suffix>` (e.g.
    /// `_scaled`) and keep the input column. Omitted: the input column is replaced.
    #[serde(default)]
    pub suffix: Option<String>,
}

/// How one column is scaled.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleColumn {
    /// `zscore`, `minmax` or `robust`.
    pub method: ScaleMethodConfig,
    /// Target range `[low, high]` of `method: minmax` (default `[0, 1]`; `low < high`).
    #[serde(default)]
    pub range: Option<[f64; 2]>,
    /// Quantile range `[q_low, q_high]` in percent of `method: robust` (default
    /// `[25, 75]`, the interquartile range; `0 <= q_low < q_high <= 100`).
    #[serde(default)]
    pub quantile_range: Option<[f64; 2]>,
}

/// Scaling method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScaleMethodConfig {
    /// Standard score: mean 0, population standard deviation 1.
    Zscore,
    /// Min-max onto `range`.
    Minmax,
    /// Median and quantile range.
    Robust,
}

impl ScaleColumn {
    fn method(&self, name: &str) -> Result<ScaleMethod> {
        let at = |f: &str| format!("columns.{name}.{f}");
        let only = |f: &str, m: &str| {
            Error::config(&at(f), format!("`{f}` is only used with method `{m}`"))
        };
        match self.method {
            ScaleMethodConfig::Zscore => {
                if self.range.is_some() {
                    return Err(only("range", "minmax"));
                }
                if self.quantile_range.is_some() {
                    return Err(only("quantile_range", "robust"));
                }
                Ok(ScaleMethod::zscore())
            }
            ScaleMethodConfig::Minmax => {
                if self.quantile_range.is_some() {
                    return Err(only("quantile_range", "robust"));
                }
                let [lo, hi] = self.range.unwrap_or([0.0, 1.0]);
                ScaleMethod::min_max(lo, hi).map_err(|e| Error::config(&at("range"), e.to_string()))
            }
            ScaleMethodConfig::Robust => {
                if self.range.is_some() {
                    return Err(only("range", "minmax"));
                }
                let [lo, hi] = self.quantile_range.unwrap_or([25.0, 75.0]);
                ScaleMethod::robust(lo, hi)
                    .map_err(|e| Error::config(&at("quantile_range"), e.to_string()))
            }
        }
    }
}

/// The output column of `name`: `name` itself, or `name + suffix`.
pub(crate) fn output_name(name: &str, suffix: &Option<String>) -> String {
    match suffix {
        Some(s) => format!("{name}{s}"),
        None => name.to_string(),
    }
}

/// Check the columns (numeric, present) and the suffix; the `main` schema, with each
/// listed column float64 (replaced or added as `<column><suffix>`).
pub(crate) fn output_schema<'a>(
    schema: &SchemaRef,
    columns: impl Iterator<Item = &'a String>,
    suffix: &Option<String>,
) -> Result<SchemaRef> {
    if suffix.as_deref() == Some("") {
        return Err(Error::config(
            "suffix",
            "`suffix` must not be empty; omit it to replace the input columns",
        ));
    }
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for name in columns {
        require_column(schema, name, &format!("columns.{name}"), NUMERIC)?;
        let out = output_name(name, suffix);
        if suffix.is_some() {
            if schema.field_with_name(&out).is_ok() {
                return Err(Error::config(
                    "suffix",
                    format!("the input already has a column `{out}`, which `suffix` would add"),
                ));
            }
            fields.push(Field::new(out, DataType::Float64, true));
        } else {
            let i = schema.index_of(name)?;
            fields[i] = Field::new(name, DataType::Float64, true);
        }
    }
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// Assemble `main` (the input with `outputs` replacing or appended) and `quarantine`
/// (the input rows with a reason), and record the row counts.
pub(crate) fn finish(
    batch: &RecordBatch,
    out_schema: SchemaRef,
    q_schema: SchemaRef,
    outputs: Vec<(String, ArrayRef)>,
    suffix: &Option<String>,
    reason: Vec<Option<String>>,
    ctx: &mut Context,
) -> Result<Outputs<Table>> {
    let schema = batch.schema();
    let mut columns = batch.columns().to_vec();
    for (name, array) in outputs {
        if suffix.is_some() {
            columns.push(array);
        } else {
            columns[schema.index_of(&name)?] = array;
        }
    }
    let all = RecordBatch::try_new(out_schema, columns)?;
    quarantine::split(&all, batch, &q_schema, reason, ctx)
}

impl Scale {
    fn check(&self, schema: &SchemaRef) -> Result<SchemaRef> {
        if self.columns.is_empty() {
            return Err(Error::config(
                "columns",
                "name at least one column to scale",
            ));
        }
        for (name, c) in &self.columns {
            c.method(name)?;
        }
        output_schema(schema, self.columns.keys(), &self.suffix)
    }
}

impl Component for Scale {
    const NAME: &'static str = "scale";
    const STAGE: Stage = Stage::Clean;

    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1)
            .inputs_doc("any table")
            .outputs(&[
                (
                    "main",
                    "the input with the listed columns scaled (float64), in place or as \
                     `<column><suffix>`",
                ),
                (
                    "quarantine",
                    "rows with an infinite value in a scaled column, with a `reason` column",
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
        let mut values = Vec::with_capacity(self.columns.len());
        let mut reason: Vec<Option<String>> = vec![None; n];
        for name in self.columns.keys() {
            let v = numeric::as_f64(batch.column(schema.index_of(name)?))?;
            for (r, why) in reason.iter_mut().enumerate() {
                if why.is_none() && v.is_valid(r) && v.value(r).is_infinite() {
                    *why = Some(format!("scale: {name} is infinite"));
                }
            }
            values.push(v);
        }
        let mut outputs = Vec::with_capacity(self.columns.len());
        let mut facts = serde_json::Map::new();
        for ((name, c), v) in self.columns.iter().zip(&values) {
            let method = c.method(name)?;
            let fit_on: Vec<f64> = (0..n)
                .filter(|&r| reason[r].is_none() && v.is_valid(r))
                .map(|r| v.value(r))
                .collect();
            let scaler = match Scaler::fit(method, &fit_on) {
                Ok(s) => Some(s),
                Err(ScaleError::Empty) => None,
                Err(e) => return Err(Error::new(format!("column `{name}`: {e}"))),
            };
            let scaled: Float64Array = v
                .iter()
                .map(|x| x.map(|x| scaler.map_or(x, |s| s.transform(x))))
                .collect();
            outputs.push((name.clone(), Arc::new(scaled) as ArrayRef));
            facts.insert(
                name.clone(),
                scale_facts(method, scaler, name, &self.suffix),
            );
        }
        ctx.fact("scaled", facts);
        finish(
            &batch,
            out_schema,
            q_schema,
            outputs,
            &self.suffix,
            reason,
            ctx,
        )
    }
}

fn scale_facts(
    method: ScaleMethod,
    s: Option<Scaler>,
    name: &str,
    suffix: &Option<String>,
) -> serde_json::Value {
    let mut f = serde_json::Map::new();
    f.insert("method".into(), method.name().into());
    f.insert("output".into(), output_name(name, suffix).into());
    f.insert("center".into(), s.map(|s| s.center).into());
    f.insert("scale".into(), s.map(|s| s.scale).into());
    f.insert("offset".into(), s.map(|s| s.offset).into());
    match method {
        ScaleMethod::ZScore => {
            f.insert("mean".into(), s.map(|s| s.center).into());
            f.insert("std".into(), s.map(|s| s.spread).into());
        }
        ScaleMethod::MinMax { low, high } => {
            f.insert("min".into(), s.map(|s| s.min).into());
            f.insert("max".into(), s.map(|s| s.max).into());
            f.insert("range".into(), serde_json::json!([low, high]));
        }
        ScaleMethod::Robust { q_low, q_high } => {
            f.insert("median".into(), s.map(|s| s.center).into());
            f.insert("quantile_range".into(), serde_json::json!([q_low, q_high]));
            f.insert("spread".into(), s.map(|s| s.spread).into());
        }
    }
    f.insert("constant".into(), s.is_some_and(|s| s.constant).into());
    f.insert("n".into(), s.map_or(0, |s| s.n).into());
    f.into()
}
