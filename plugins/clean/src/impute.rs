//! The `impute` component: fill missing numeric values, overall or per group.

use crate::numeric::{self, NUMERIC};
use crate::quarantine;
use segflow_ml::impute::{self, ImputeMethod, TextImputeMethod};
use segflow_ml::keys;
use segflow_sdk::arrow::array::AsArray;
use segflow_sdk::arrow::util::display::array_value_to_string;
use segflow_sdk::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Fill missing values (null or NaN) of numeric columns with the column's mean,
/// median, mode (most frequent value, ties to the smallest) or a constant, and nulls of
/// text (utf8) columns with the mode or a constant, computed over the whole column or
/// per group of `by` columns (a group with no value takes the column-wide value).
/// Imputed numeric columns become float64; text columns stay utf8. Facts record per
/// column the method, the fill value(s) and how many values were filled. No row is
/// rejected: the `quarantine` port is always empty. The whole input is held in memory.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Impute {
    /// Columns to impute, each with its method: e.g. `amount: {method: median, by:
    /// [segment]}` or `score: {method: constant, value: 0}`.
    pub columns: BTreeMap<String, ImputeColumn>,
}

/// How one column is imputed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImputeColumn {
    /// `mean`, `median`, `mode` or `constant` (with `value`); text columns take `mode`
    /// or `constant`.
    pub method: MethodConfig,
    /// The fill value of `method: constant`: a finite number for a numeric column, text
    /// for a text column.
    #[serde(default)]
    pub value: Option<FillValue>,
    /// Group columns: the fill value is computed within each group (nulls form a group
    /// of their own). Omitted: over the whole column.
    #[serde(default)]
    pub by: Vec<String>,
}

/// Imputation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MethodConfig {
    /// Arithmetic mean.
    Mean,
    /// Median (mean of the two middle values for an even count).
    Median,
    /// Most frequent value; ties go to the smallest.
    Mode,
    /// The fixed `value`.
    Constant,
}

/// A constant fill value.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FillValue {
    /// For numeric columns.
    Number(f64),
    /// For text columns.
    Text(String),
}

/// The method of one column, by the column's kind.
enum Method {
    Numeric(ImputeMethod),
    Text(TextImputeMethod),
}

impl ImputeColumn {
    fn method_for(&self, name: &str, data_type: &DataType) -> Result<Method> {
        if data_type != &DataType::Utf8 {
            return self.method(name).map(Method::Numeric);
        }
        let at = format!("columns.{name}");
        match (self.method, &self.value) {
            (MethodConfig::Mode, None) => Ok(Method::Text(TextImputeMethod::Mode)),
            (MethodConfig::Constant, Some(FillValue::Text(t))) => {
                Ok(Method::Text(TextImputeMethod::Constant(t.clone())))
            }
            (MethodConfig::Constant, _) => Err(Error::config(
                &format!("{at}.value"),
                format!("`{name}` is a text column: give the constant `value` as text"),
            )),
            (MethodConfig::Mode, Some(_)) => Err(Error::config(
                &format!("{at}.value"),
                "`value` is only used with method `constant`",
            )),
            (MethodConfig::Mean | MethodConfig::Median, _) => Err(Error::config(
                &format!("{at}.method"),
                format!("`{name}` is a text column: use method `mode` or `constant`"),
            )),
        }
    }

    fn method(&self, name: &str) -> Result<ImputeMethod> {
        let at = format!("columns.{name}.value");
        match (self.method, &self.value) {
            (MethodConfig::Constant, Some(FillValue::Number(v))) => {
                ImputeMethod::constant(*v).map_err(|e| Error::config(&at, e.to_string()))
            }
            (MethodConfig::Constant, Some(FillValue::Text(_))) => Err(Error::config(
                &at,
                format!("`{name}` is a numeric column: give the constant `value` as a number"),
            )),
            (MethodConfig::Constant, None) => {
                Err(Error::config(&at, "method `constant` needs a `value`"))
            }
            (_, Some(_)) => Err(Error::config(
                &at,
                "`value` is only used with method `constant`",
            )),
            (MethodConfig::Mean, None) => Ok(ImputeMethod::Mean),
            (MethodConfig::Median, None) => Ok(ImputeMethod::Median),
            (MethodConfig::Mode, None) => Ok(ImputeMethod::Mode),
        }
    }
}

impl Impute {
    /// Check the columns; returns the output schema.
    fn check(&self, schema: &SchemaRef) -> Result<SchemaRef> {
        if self.columns.is_empty() {
            return Err(Error::config(
                "columns",
                "name at least one column to impute",
            ));
        }
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        for (name, c) in &self.columns {
            let mut allowed = NUMERIC.to_vec();
            allowed.push(DataType::Utf8);
            let f = require_column(schema, name, &format!("columns.{name}"), &allowed)?;
            let out_type = match c.method_for(name, f.data_type())? {
                Method::Numeric(_) => DataType::Float64,
                Method::Text(_) => DataType::Utf8,
            };
            for (k, g) in c.by.iter().enumerate() {
                require_column(schema, g, &format!("columns.{name}.by.{k}"), &[])?;
            }
            let i = schema.index_of(name)?;
            fields[i] = Field::new(name, out_type, true);
        }
        Ok(Arc::new(Schema::new_with_metadata(
            fields,
            schema.metadata().clone(),
        )))
    }
}

impl Component for Impute {
    const NAME: &'static str = "impute";
    const STAGE: Stage = Stage::Clean;

    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1)
            .inputs_doc("any table")
            .outputs(&[
                (
                    "main",
                    "the input with the named columns filled (numeric ones as float64)",
                ),
                ("quarantine", "always empty: imputation rejects no row"),
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
        let mut columns = batch.columns().to_vec();
        let mut facts = serde_json::Map::new();
        for (name, c) in &self.columns {
            let i = schema.index_of(name)?;
            let method = c.method_for(name, batch.column(i).data_type())?;
            let by: Vec<ArrayRef> =
                c.by.iter()
                    .map(|g| Ok(batch.column(schema.index_of(g)?).clone()))
                    .collect::<Result<_>>()?;
            let groups = if by.is_empty() || batch.num_rows() == 0 {
                None
            } else {
                let kr = ctx.pool().install(|| keys::KeyRows::new(&by));
                let (ids, n) = kr.map_err(|e| Error::new(e.to_string()))?.group_ids();
                let firsts = first_rows(&ids, n);
                Some((ids, n, firsts))
            };
            let ids = groups.as_ref().map(|(ids, n, _)| (ids.as_slice(), *n));
            let failed = |e: impute::ImputeError| Error::new(format!("column `{name}`: {e}"));
            let (method_name, column, overall, group_fills, filled, unfilled): (
                &str,
                ArrayRef,
                serde_json::Value,
                Vec<serde_json::Value>,
                usize,
                usize,
            ) = match &method {
                Method::Numeric(m) => {
                    let values = numeric::as_f64(batch.column(i))?;
                    let r = impute::impute(&values, *m, ids).map_err(failed)?;
                    let fills = r.group_fills.iter().map(|&v| v.into()).collect();
                    let column: ArrayRef = Arc::new(r.values);
                    (
                        m.name(),
                        column,
                        r.overall.into(),
                        fills,
                        r.filled,
                        r.unfilled,
                    )
                }
                Method::Text(m) => {
                    let values = batch.column(i).as_string::<i32>();
                    let r = impute::impute_text(values, m, ids).map_err(failed)?;
                    let fills = r.group_fills.iter().map(|v| v.clone().into()).collect();
                    let name = match m {
                        TextImputeMethod::Mode => "mode",
                        TextImputeMethod::Constant(_) => "constant",
                    };
                    let column: ArrayRef = Arc::new(r.values);
                    (name, column, r.overall.into(), fills, r.filled, r.unfilled)
                }
            };
            let mut f = serde_json::Map::new();
            f.insert("method".into(), method_name.into());
            f.insert("fill".into(), overall);
            if let Some((_, _, firsts)) = &groups {
                let mut per = serde_json::Map::new();
                for (g, fill) in group_fills.into_iter().enumerate() {
                    let row = firsts.get(g).copied().unwrap_or(0);
                    let label: Vec<String> = by
                        .iter()
                        .map(|a| {
                            if a.is_null(row) {
                                "null".to_string()
                            } else {
                                array_value_to_string(a, row).unwrap_or_default()
                            }
                        })
                        .collect();
                    per.insert(label.join("|"), fill);
                }
                f.insert("by".into(), c.by.clone().into());
                f.insert("group_fills".into(), per.into());
            }
            f.insert("filled".into(), filled.into());
            f.insert("unfilled".into(), unfilled.into());
            facts.insert(name.clone(), f.into());
            columns[i] = column;
        }
        let main = RecordBatch::try_new(out_schema, columns)?;
        ctx.fact("rows_in", batch.num_rows());
        ctx.fact("rows_out", main.num_rows());
        ctx.fact("rows_quarantined", 0);
        ctx.fact("imputed", facts);
        Ok(Outputs::new()
            .port("main", Table::from_batch(main))
            .port("quarantine", Table::from_batches(q_schema, vec![])))
    }
}

/// The first row of each group (ids number groups by first appearance).
fn first_rows(ids: &[u32], n: usize) -> Vec<usize> {
    let mut first = vec![usize::MAX; n];
    for (row, &g) in ids.iter().enumerate() {
        if let Some(f) = first.get_mut(g as usize) {
            if *f == usize::MAX {
                *f = row;
            }
        }
    }
    first
}
