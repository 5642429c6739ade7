//! The `customer_features` component: transactions in, one row per customer out.

use segflow_ml::features::{
    self, BatchColumns, ExclusionReason, Exclusions, FeatureAggregator, FeatureOptions, TimeUnit,
};
use segflow_ml::shares::{ShareAggregator, ShareColumn, ShareWeight};
use segflow_sdk::arrow::array::{StringArray, UInt32Array};
use segflow_sdk::arrow::compute::take_record_batch;
use segflow_sdk::config::IsoDate;
use segflow_sdk::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Per-customer features from a transaction table: first and last purchase, recency,
/// frequency (distinct purchase days), number of transactions, total and mean spend,
/// tenure and mean days between purchase days, as of a date; optionally the spread of
/// the gaps between purchase days and each customer's mix of channels or categories.
/// Optionally the
/// lifetimes-style summary (frequency, recency, T, monetary_value) up to a calibration
/// date, for BG/NBD and Gamma-Gamma models. `main` has one row per customer, sorted by
/// key; rows left out (a null key, date or amount, a non-finite amount, a date after
/// the cutoff) go to `quarantine` with a `reason` column. The result does not depend on
/// the thread count.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerFeatures {
    /// Column holding the customer key: an integer or string column. The output key
    /// column keeps its name and type.
    #[serde(default = "default_key")]
    pub key: String,
    /// Column holding the transaction date: Date32, Date64 or Timestamp (any unit; with
    /// a time zone the local date counts).
    #[serde(default = "default_date")]
    pub date: String,
    /// Column holding the transaction amount: an integer, float or decimal column.
    /// Negative amounts (refunds) are summed as they are.
    #[serde(default = "default_amount")]
    pub amount: String,
    /// Date the features are computed at (YYYY-MM-DD): recency and tenure are counted
    /// to it, and transactions after it are quarantined. Required unless
    /// `calibration_end` is set.
    #[serde(default)]
    pub as_of: Option<IsoDate>,
    /// End of the calibration period (YYYY-MM-DD) for the lifetimes summary, as
    /// `lifetimes.utils.summary_data_from_transaction_data` with `freq="D"`: repeat
    /// purchase days (`frequency`), `recency` and age `T`, and `monetary_value`, the
    /// mean spend of the repeat purchase days (same-day purchases summed). Alone, the
    /// output is exactly those four columns and later transactions are quarantined.
    /// With `as_of` (which must be later), the features get the columns
    /// `frequency_cal`, `recency_cal`, `T_cal`, `monetary_value_cal`,
    /// `frequency_holdout`, `monetary_value_holdout` and `duration_holdout`, as
    /// `lifetimes.utils.calibration_and_holdout_data` with `observation_period_end:
    /// as_of` (null for customers whose first purchase is after `calibration_end`).
    #[serde(default)]
    pub calibration_end: Option<IsoDate>,
    /// Unit of `recency`, `T` and `duration_holdout` in the calibration summary:
    /// `days`, or `weeks` (days / 7, as lifetimes `freq_multiplier: 7`).
    #[serde(default)]
    pub time_unit: TimeUnitConfig,
    /// Add purchase-gap statistics (needs `as_of`): `gap_min_days`, `gap_median_days`,
    /// `gap_max_days` and `gap_std_days` (sample standard deviation, ddof 1) of the
    /// gaps in days between consecutive distinct purchase days. Null for customers with
    /// one purchase day (`gap_std_days` also with two).
    #[serde(default)]
    pub gap_stats: bool,
    /// Per-customer shares of categorical columns (needs `as_of`), e.g. `channel:
    /// {values: [web, store, app]}`. For each listed value the output gets a Float64
    /// column `<column>_share_<value>`, then `<column>_share_other` for every other
    /// value and nulls; a customer's shares of one column sum to 1. Columns come in
    /// name order. The values are listed rather than discovered so that the output
    /// columns are known before the data is read and stay the same from run to run.
    #[serde(default)]
    pub shares: BTreeMap<String, ShareConfig>,
}

/// The values of one categorical column to report shares for.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareConfig {
    /// Values that get their own share column (compared as text; at least one).
    pub values: Vec<String>,
    /// `transactions` (default: share of the customer's transactions) or `amount`
    /// (share of the customer's net spend; refunds count negative; null when the net
    /// spend is zero).
    #[serde(default)]
    pub by: ShareByConfig,
}

/// What a share is a share of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShareByConfig {
    /// Share of the customer's transactions.
    #[default]
    Transactions,
    /// Share of the customer's net spend.
    Amount,
}

/// Unit of the calibration summary's durations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnitConfig {
    /// Days.
    #[default]
    Days,
    /// Weeks of 7 days.
    Weeks,
}

fn default_key() -> String {
    "customer_id".into()
}
fn default_date() -> String {
    "date".into()
}
fn default_amount() -> String {
    "amount".into()
}

/// Rows read before they are handed to the aggregator together.
const GROUP_ROWS: usize = 1 << 20;

/// Rows per output batch of `main`.
const OUTPUT_BATCH_ROWS: usize = 65_536;

impl CustomerFeatures {
    fn options(&self, record_exclusions: bool) -> Result<FeatureOptions> {
        let options = FeatureOptions {
            as_of: self.as_of.map(IsoDate::days),
            calibration_end: self.calibration_end.map(IsoDate::days),
            time_unit: match self.time_unit {
                TimeUnitConfig::Days => TimeUnit::Days,
                TimeUnitConfig::Weeks => TimeUnit::Weeks,
            },
            record_exclusions,
            gap_stats: self.gap_stats,
        };
        if self.as_of.is_none() {
            if self.gap_stats {
                return Err(Error::config(
                    "gap_stats",
                    "gap statistics are RFM features: set `as_of` too",
                ));
            }
            if !self.shares.is_empty() {
                return Err(Error::config(
                    "shares",
                    "shares are RFM features: set `as_of` too",
                ));
            }
        }
        match (self.as_of, self.calibration_end) {
            (None, None) => Err(Error::config(
                "as_of",
                "set `as_of` (the date the features are computed at), `calibration_end` \
                 (for the lifetimes summary), or both",
            )),
            (Some(a), Some(c)) if c >= a => Err(Error::config(
                "calibration_end",
                format!("calibration_end ({c}) must be before as_of ({a})"),
            )),
            _ => Ok(options),
        }
    }

    /// Check the three columns; returns their indices.
    fn columns(&self, schema: &SchemaRef) -> Result<[usize; 3]> {
        type Check<'a> = (&'a str, &'a str, fn(&DataType) -> bool, &'a str);
        let checks: [Check<'_>; 3] = [
            (
                &self.key,
                "key",
                features::supports_key_type,
                features::SUPPORTED_KEY_TYPES,
            ),
            (
                &self.date,
                "date",
                features::supports_date_type,
                features::SUPPORTED_DATE_TYPES,
            ),
            (
                &self.amount,
                "amount",
                features::supports_amount_type,
                features::SUPPORTED_AMOUNT_TYPES,
            ),
        ];
        let mut idx = [0; 3];
        for (i, (column, field, ok, supported)) in checks.into_iter().enumerate() {
            let f = require_column(schema, column, field, &[])?;
            if !ok(f.data_type()) {
                return Err(Error::config(
                    field,
                    format!(
                        "column `{column}` has type {}, but the {field} must be one of: {supported}",
                        f.data_type()
                    ),
                ));
            }
            idx[i] = schema.index_of(column)?;
        }
        Ok(idx)
    }

    fn main_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let key_type = input.field_with_name(&self.key)?.data_type().clone();
        let base =
            FeatureAggregator::output_schema_for(&self.key, &key_type, &self.options(false)?)
                .map_err(|e| Error::config("key", e.to_string()))?;
        if self.shares.is_empty() {
            return Ok(base);
        }
        let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
        for column in self.share_columns() {
            for name in column.output_names() {
                if fields.iter().any(|f| f.name() == &name) {
                    return Err(Error::config(
                        &format!("shares.{}", column.column),
                        format!("the share column `{name}` would be written twice"),
                    ));
                }
                fields.push(Field::new(name, DataType::Float64, true));
            }
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    fn share_columns(&self) -> Vec<ShareColumn> {
        self.shares
            .iter()
            .map(|(column, c)| ShareColumn {
                column: column.clone(),
                values: c.values.clone(),
                weight: match c.by {
                    ShareByConfig::Transactions => ShareWeight::Transactions,
                    ShareByConfig::Amount => ShareWeight::Amount,
                },
            })
            .collect()
    }

    /// Check the share columns; returns the aggregator and their input indices.
    fn shares(
        &self,
        schema: &SchemaRef,
        key_type: &DataType,
    ) -> Result<Option<(ShareAggregator, Vec<usize>)>> {
        if self.shares.is_empty() {
            return Ok(None);
        }
        let mut idx = Vec::with_capacity(self.shares.len());
        for column in self.shares.keys() {
            let field = format!("shares.{column}");
            let f = require_column(schema, column, &field, &[])?;
            let t = f.data_type();
            let textual = matches!(
                t,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean
            ) || t.is_integer()
                || matches!(t, DataType::Dictionary(_, v) if matches!(v.as_ref(), DataType::Utf8 | DataType::LargeUtf8));
            if !textual {
                return Err(Error::config(
                    &field,
                    format!(
                        "column `{column}` has type {t}; shares are for categorical columns                          (text, dictionary, integer or boolean)"
                    ),
                ));
            }
            idx.push(schema.index_of(column)?);
        }
        let agg = ShareAggregator::new(self.share_columns(), key_type.is_integer())
            .map_err(|e| Error::config("shares", e.to_string()))?;
        Ok(Some((agg, idx)))
    }

    fn reason_text(&self, reason: ExclusionReason) -> &'static str {
        match reason {
            ExclusionReason::AfterCutoff if self.as_of.is_some() => "after_as_of",
            ExclusionReason::AfterCutoff => "after_calibration_end",
            other => other.code(),
        }
    }
}

fn quarantine_schema(input: &SchemaRef) -> Result<SchemaRef> {
    if input.field_with_name("reason").is_ok() {
        return Err(Error::new(
            "the input already has a column named `reason`, which the quarantine output \
             adds; rename it upstream",
        ));
    }
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("reason", DataType::Utf8, false));
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        input.metadata().clone(),
    )))
}

impl Component for CustomerFeatures {
    const NAME: &'static str = "customer_features";
    const STAGE: Stage = Stage::Clean;

    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1)
            .inputs_doc(
                "transactions: one row per purchase with a customer key, a date and an amount",
            )
            .outputs(&[
                ("main", "one row per customer, sorted by key"),
                (
                    "quarantine",
                    "input rows left out of the features, with a `reason` column: null_key, \
                     null_date, null_amount, non_finite_amount, after_as_of or \
                     after_calibration_end",
                ),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        self.options(false)?;
        let [ki, ..] = self.columns(schema)?;
        self.shares(schema, schema.field(ki).data_type())?;
        Ok(Outputs::new()
            .port("main", self.main_schema(schema)?)
            .port("quarantine", quarantine_schema(schema)?))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let Some(input) = inputs.into_iter().next() else {
            return Err(Error::new("expected one input, got none"));
        };
        let table = input.value;
        let schema = table.schema();
        let [ki, di, ai] = self.columns(&schema)?;
        let options = self.options(true)?;
        let key_type = schema.field(ki).data_type().clone();
        let mut agg = FeatureAggregator::new(&self.key, &key_type, options)
            .map_err(|e| Error::config("key", e.to_string()))?;
        let q_schema = quarantine_schema(&schema)?;
        let main_schema = self.main_schema(&schema)?;
        let mut shares = self.shares(&schema, &key_type)?;
        let group_batches = ctx.threads() * 4;

        let mut quarantine: Vec<RecordBatch> = Vec::new();
        let mut group: Vec<RecordBatch> = Vec::new();
        let mut group_rows = 0usize;
        let mut rows_in = 0u64;
        let mut input = table.peekable();
        while let Some(next) = input.next() {
            let batch = next.map_err(|e| Error::new(format!("reading the input: {e}")))?;
            group_rows += batch.num_rows();
            group.push(batch);
            let last = input.peek().is_none();
            if !last && group_rows < GROUP_ROWS && group.len() < group_batches {
                continue;
            }
            if ctx.is_cancelled() {
                return Err(Error::new("cancelled"));
            }
            let cols: Vec<BatchColumns> = group
                .iter()
                .map(|b| BatchColumns {
                    key: b.column(ki).clone(),
                    date: b.column(di).clone(),
                    amount: b.column(ai).clone(),
                })
                .collect();
            let exclusions = ctx
                .pool()
                .install(|| agg.push_batches(&cols))
                .map_err(|e| Error::new(e.to_string()))?;
            for (batch, ex) in group.iter().zip(&exclusions) {
                if let Some((agg, idx)) = &mut shares {
                    let categories: Vec<ArrayRef> =
                        idx.iter().map(|&i| batch.column(i).clone()).collect();
                    agg.push(batch.column(ki), batch.column(ai), &categories, &ex.rows)
                        .map_err(|e| Error::new(e.to_string()))?;
                }
                if !ex.is_empty() {
                    quarantine.push(self.quarantine_batch(&q_schema, batch, ex)?);
                }
            }
            rows_in += group_rows as u64;
            ctx.progress(rows_in, 0, "rows");
            group.clear();
            group_rows = 0;
        }

        let out = ctx
            .pool()
            .install(|| agg.finish())
            .map_err(|e| Error::new(e.to_string()))?;
        let stats = out.stats;
        ctx.fact("rows_in", stats.rows_in);
        ctx.fact("rows_used", stats.rows_used);
        ctx.fact("rows_quarantined", stats.rows_excluded());
        ctx.fact("customers", out.batch.num_rows());
        segflow_sdk::tracing::info!(
            rows = stats.rows_in,
            customers = out.batch.num_rows(),
            quarantined = stats.rows_in - stats.rows_used,
            "aggregated transactions into per-customer features"
        );
        let mut reasons = serde_json::Map::new();
        for r in ExclusionReason::ALL {
            if stats.count(r) > 0 {
                reasons.insert(self.reason_text(r).into(), stats.count(r).into());
            }
        }
        ctx.fact("quarantine_reasons", reasons);
        if let Some(d) = self.as_of {
            ctx.fact("as_of", d.to_string());
        }
        if let Some(d) = self.calibration_end {
            ctx.fact("calibration_end", d.to_string());
        }
        if stats.after_cutoff > 0 {
            segflow_sdk::tracing::info!(
                rows = stats.after_cutoff,
                "transactions after the cutoff date were quarantined"
            );
        }

        let main = match shares {
            None => out.batch,
            Some((agg, _)) => {
                let mut columns = out.batch.columns().to_vec();
                columns.extend(
                    agg.finish(out.batch.column(0))
                        .map_err(|e| Error::new(e.to_string()))?,
                );
                RecordBatch::try_new(main_schema.clone(), columns)?
            }
        };
        let batches: Vec<RecordBatch> = (0..main.num_rows())
            .step_by(OUTPUT_BATCH_ROWS)
            .map(|o| main.slice(o, OUTPUT_BATCH_ROWS.min(main.num_rows() - o)))
            .collect();
        Ok(Outputs::new()
            .port("main", Table::from_batches(main_schema, batches))
            .port("quarantine", Table::from_batches(q_schema, quarantine)))
    }
}

impl CustomerFeatures {
    fn quarantine_batch(
        &self,
        schema: &SchemaRef,
        batch: &RecordBatch,
        ex: &Exclusions,
    ) -> Result<RecordBatch> {
        let rows = take_record_batch(batch, &UInt32Array::from(ex.rows.clone()))?;
        let reasons: ArrayRef = Arc::new(StringArray::from_iter_values(
            ex.reasons.iter().map(|&r| self.reason_text(r)),
        ));
        let mut columns = rows.columns().to_vec();
        columns.push(reasons);
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}
