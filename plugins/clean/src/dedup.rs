//! The `dedup` component: one row per key, duplicates to quarantine.

use crate::quarantine;
use segflow_ml::dedup::{self, Keep};
use segflow_ml::keys::KeyRows;
use segflow_sdk::prelude::*;

/// Remove duplicate rows: exact duplicates (all columns equal) or rows sharing a `key`.
/// Of each group of equal rows one is kept (`keep`); the others go to `quarantine` with
/// the reason `duplicate of row N` (exact) or `duplicate key of row N` (by key), N being
/// the 0-based input row number of the kept row. Nulls are equal to nulls, as in pandas'
/// `drop_duplicates`. Kept rows stay in input order; keys are hashed in parallel and the
/// result does not depend on the thread count. The whole input is held in memory.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dedup {
    /// Key columns. Omitted or empty: every column (exact duplicates).
    #[serde(default)]
    pub key: Vec<String>,
    /// Which row of a group to keep: `first` (default) or `last` in input order, or
    /// `{max_by: COL}` / `{min_by: COL}`, the row with the largest / smallest value of
    /// COL (ties keep the first; nulls never win).
    #[serde(default)]
    pub keep: KeepConfig,
}

/// Which row of a group of duplicates is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeepConfig {
    /// The first in input order.
    #[default]
    First,
    /// The last in input order.
    Last,
    /// The one with the largest value of this column.
    MaxBy(String),
    /// The one with the smallest value of this column.
    MinBy(String),
}

impl Dedup {
    fn key_indices(&self, schema: &SchemaRef) -> Result<Vec<usize>> {
        if self.key.is_empty() {
            return Ok((0..schema.fields().len()).collect());
        }
        self.key
            .iter()
            .enumerate()
            .map(|(k, name)| {
                require_column(schema, name, &format!("key.{k}"), &[])?;
                Ok(schema.index_of(name)?)
            })
            .collect()
    }

    fn order_column(&self, schema: &SchemaRef) -> Result<Option<usize>> {
        let (name, field) = match &self.keep {
            KeepConfig::MaxBy(c) => (c, "keep.max_by"),
            KeepConfig::MinBy(c) => (c, "keep.min_by"),
            _ => return Ok(None),
        };
        let f = require_column(schema, name, field, &[])?;
        if !f.data_type().is_primitive()
            && !matches!(f.data_type(), DataType::Utf8 | DataType::Boolean)
        {
            return Err(Error::config(
                field,
                format!(
                    "column `{name}` has type {}, which cannot be ordered",
                    f.data_type()
                ),
            ));
        }
        Ok(Some(schema.index_of(name)?))
    }
}

impl Component for Dedup {
    const NAME: &'static str = "dedup";
    const STAGE: Stage = Stage::Clean;

    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1)
            .inputs_doc("any table")
            .outputs(&[
                ("main", "one row per key, in input order"),
                (
                    "quarantine",
                    "the duplicates, with a `reason` column: `duplicate of row N` or \
                     `duplicate key of row N`",
                ),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        self.key_indices(schema)?;
        self.order_column(schema)?;
        Ok(Outputs::new()
            .port("main", schema.clone())
            .port("quarantine", quarantine::schema(schema)?))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let Some(input) = inputs.into_iter().next() else {
            return Err(Error::new("expected one input, got none"));
        };
        let schema = input.value.schema();
        let key_idx = self.key_indices(&schema)?;
        let order_idx = self.order_column(&schema)?;
        let q_schema = quarantine::schema(&schema)?;
        let batch = input.value.concat()?;
        let keep = match self.keep {
            KeepConfig::First => Keep::First,
            KeepConfig::Last => Keep::Last,
            KeepConfig::MaxBy(_) => Keep::MaxBy,
            KeepConfig::MinBy(_) => Keep::MinBy,
        };
        let columns: Vec<ArrayRef> = key_idx.iter().map(|&i| batch.column(i).clone()).collect();
        let order = order_idx.map(|i| batch.column(i).clone());
        let result = ctx.pool().install(|| -> Result<dedup::Dedup> {
            if batch.num_rows() == 0 {
                return Ok(dedup::Dedup::default());
            }
            let keys = KeyRows::new(&columns).map_err(|e| Error::new(e.to_string()))?;
            dedup::dedup(&keys, keep, order.as_deref()).map_err(|e| Error::new(e.to_string()))
        })?;
        let what = if self.key.is_empty() {
            "duplicate of row"
        } else {
            "duplicate key of row"
        };
        let q_rows: Vec<u32> = result.duplicates.iter().map(|d| d.0).collect();
        let reasons: Vec<String> = result
            .duplicates
            .iter()
            .map(|d| format!("{what} {}", d.1))
            .collect();
        let main = quarantine::take(&batch, &result.kept)?;
        let quar = quarantine::batch(&q_schema, &batch, &q_rows, &reasons)?;
        ctx.fact("rows_in", batch.num_rows());
        ctx.fact("rows_out", main.num_rows());
        ctx.fact("rows_quarantined", quar.num_rows());
        ctx.fact(
            "key",
            if self.key.is_empty() {
                vec!["(all columns)".to_string()]
            } else {
                self.key.clone()
            },
        );
        Ok(Outputs::new()
            .port("main", Table::from_batch(main))
            .port("quarantine", Table::from_batches(q_schema, vec![quar])))
    }
}
