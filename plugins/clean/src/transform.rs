//! The `transform` component: log1p, Box-Cox or Yeo-Johnson per column, λ fitted by
//! maximum likelihood (as scipy) or fixed, with the parameters in the facts.

use crate::numeric;
use crate::quarantine;
use crate::scale::{finish, output_name, output_schema};
use segflow_ml::transform::{PowerMethod, TransformError, TransformParams, Transformer};
use segflow_sdk::arrow::array::Float64Array;
use segflow_sdk::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Make skewed numeric columns more symmetric: `log1p` — ln(1 + x); `box_cox` —
/// (x^λ − 1) / λ (ln x at λ = 0), for positive data; `yeo_johnson` — Box-Cox's
/// extension to zero and negative values. λ is fitted by maximum likelihood exactly as
/// `scipy.stats.boxcox` / `scipy.stats.yeojohnson` (and scikit-learn's
/// `PowerTransformer`) do, unless `lambda` fixes it. `shift` is added before the
/// transform; `standardize: true` rescales the result to mean 0 and population std 1
/// (`PowerTransformer(standardize=True)`). Rows the transform cannot take — x + shift
/// <= 0 for `box_cox`, <= −1 for `log1p`, or an infinite value — go to `quarantine`
/// with a reason such as `transform: amount <= 0 (box_cox)` (the bound is −shift, or
/// −1 − shift for log1p); parameters are fitted on the rows that reach `main`. Null
/// stays null and NaN stays NaN. A constant column gets λ = 1 and `constant: true`.
/// The transformed column is float64 and replaces the input column, or is added as
/// `<column><suffix>`. Facts `transformed.<column>` hold `lambda`, `lambda_fitted`,
/// `log_likelihood` (at λ, on the shifted data), `shift`, `standardize` with its
/// `mean` and `std`, `constant`, `n` and `quarantined`; invert with
/// x = T⁻¹(y · std + mean) − shift. The whole input is held in memory.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// Columns to transform, each with its method: e.g. `amount: {method: box_cox}`,
    /// `balance: {method: yeo_johnson, standardize: true}`, `visits: {method: log1p}`,
    /// `days: {method: box_cox, shift: 1}`.
    pub columns: BTreeMap<String, TransformColumn>,
    /// Write each transformed column as a new float64 column `<column><suffix>` (e.g.
    /// `_t`) and keep the input column. Omitted: the input column is replaced.
    #[serde(default)]
    pub suffix: Option<String>,
}

/// How one column is transformed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformColumn {
    /// `log1p`, `box_cox` or `yeo_johnson`.
    pub method: TransformMethodConfig,
    /// A fixed power λ for `box_cox` or `yeo_johnson` (e.g. `0.5`, or `0` for the
    /// logarithm) instead of the maximum-likelihood one.
    #[serde(default)]
    pub lambda: Option<f64>,
    /// A constant added to the column before the transform (default 0): `shift: 1`
    /// lets `box_cox` take counts with zeros.
    #[serde(default)]
    pub shift: Option<f64>,
    /// Standardise the transformed column to mean 0 and population std 1 (default
    /// false).
    #[serde(default)]
    pub standardize: bool,
}

/// Transform method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransformMethodConfig {
    /// ln(1 + x), for x > −1.
    Log1p,
    /// Box-Cox power transform, for x > 0.
    BoxCox,
    /// Yeo-Johnson power transform, for any x.
    YeoJohnson,
}

impl TransformColumn {
    fn params(&self, name: &str) -> Result<TransformParams> {
        let method = match self.method {
            TransformMethodConfig::Log1p => PowerMethod::Log1p,
            TransformMethodConfig::BoxCox => PowerMethod::BoxCox,
            TransformMethodConfig::YeoJohnson => PowerMethod::YeoJohnson,
        };
        TransformParams::new(
            method,
            self.lambda,
            self.shift.unwrap_or(0.0),
            self.standardize,
        )
        .map_err(|e| {
            let field = match &e {
                TransformError::BadParameter { name: f, .. } => format!("columns.{name}.{f}"),
                _ => format!("columns.{name}"),
            };
            Error::config(&field, e.to_string())
        })
    }
}

/// `v` for a message, without a `-0`.
fn num(v: f64) -> f64 {
    v + 0.0
}

impl Transform {
    fn check(&self, schema: &SchemaRef) -> Result<SchemaRef> {
        if self.columns.is_empty() {
            return Err(Error::config(
                "columns",
                "name at least one column to transform",
            ));
        }
        for (name, c) in &self.columns {
            c.params(name)?;
        }
        output_schema(schema, self.columns.keys(), &self.suffix)
    }
}

impl Component for Transform {
    const NAME: &'static str = "transform";
    const STAGE: Stage = Stage::Clean;

    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1)
            .inputs_doc("any table")
            .outputs(&[
                (
                    "main",
                    "the input with the listed columns transformed (float64), in place or \
                     as `<column><suffix>`",
                ),
                (
                    "quarantine",
                    "rows outside a transform's domain (e.g. amount <= 0 for box_cox) or \
                     with an infinite value, with a `reason` column",
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
        let mut columns = Vec::with_capacity(self.columns.len());
        let mut reason: Vec<Option<String>> = vec![None; n];
        for (name, c) in &self.columns {
            let v = numeric::as_f64(batch.column(schema.index_of(name)?))?;
            let p = c.params(name)?;
            let why = match p.method.domain_bound() {
                Some(b) => format!(
                    "transform: {name} <= {} ({})",
                    num(b - p.shift),
                    p.method.name()
                ),
                None => String::new(),
            };
            let mut quarantined = 0;
            for (r, slot) in reason.iter_mut().enumerate() {
                if slot.is_some() || !v.is_valid(r) {
                    continue;
                }
                let x = v.value(r);
                if x.is_infinite() {
                    *slot = Some(format!("transform: {name} is infinite"));
                    quarantined += 1;
                } else if !x.is_nan() && !p.in_domain(x) {
                    *slot = Some(why.clone());
                    quarantined += 1;
                }
            }
            columns.push((name, p, v, quarantined));
        }
        let mut outputs = Vec::with_capacity(self.columns.len());
        let mut facts = serde_json::Map::new();
        for (name, p, v, quarantined) in columns {
            let fit_on: Vec<f64> = (0..n)
                .filter(|&r| reason[r].is_none() && v.is_valid(r))
                .map(|r| v.value(r))
                .collect();
            let t = match Transformer::fit(p, &fit_on) {
                Ok(t) => Some(t),
                Err(TransformError::Empty) => None,
                Err(e @ (TransformError::NoOptimum { .. } | TransformError::Overflow { .. })) => {
                    return Err(Error::new(format!(
                        "column `{name}`: {e}; set `columns.{name}.lambda` to use a fixed lambda"
                    )))
                }
                Err(e) => return Err(Error::new(format!("column `{name}`: {e}"))),
            };
            // Quarantined rows are dropped from `main`; in-domain values transform.
            let out: Float64Array = v
                .iter()
                .map(|x| {
                    x.map(|x| match t {
                        Some(t) if p.in_domain(x) => t.transform(x),
                        _ => x,
                    })
                })
                .collect();
            outputs.push((name.clone(), Arc::new(out) as ArrayRef));
            facts.insert(
                name.clone(),
                transform_facts(p, t, name, &self.suffix, quarantined),
            );
        }
        ctx.fact("transformed", facts);
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

fn transform_facts(
    p: TransformParams,
    t: Option<Transformer>,
    name: &str,
    suffix: &Option<String>,
    quarantined: usize,
) -> serde_json::Value {
    let std = t.and_then(|t| t.standardizer);
    serde_json::json!({
        "method": p.method.name(),
        "output": output_name(name, suffix),
        "lambda": t.map_or(p.lambda, |t| t.lambda),
        "lambda_fitted": t.is_some_and(|t| t.lambda_fitted),
        "log_likelihood": t.and_then(|t| t.log_likelihood),
        "shift": p.shift,
        "standardize": p.standardize,
        "mean": std.map(|s| s.center),
        "std": std.map(|s| s.scale),
        "constant": t.is_some_and(|t| t.constant),
        "n": t.map_or(0, |t| t.n),
        "quarantined": quarantined,
    })
}
