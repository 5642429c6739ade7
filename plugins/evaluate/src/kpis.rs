//! The `kpis` component: business KPIs per segment.

use crate::common::Metrics;
use crate::inputs::{self, is_numeric, is_text, segmentation_name};
use segflow_sdk::arrow::array::{Float64Array, Int32Array, Int64Array, StringArray};
use segflow_sdk::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Days in an average month (365.25 / 12), for `arpu`.
const DAYS_PER_MONTH: f64 = 30.4375;

/// Business KPIs per segment: size and share, revenue and revenue share, purchase
/// frequency, average order value, repeat rate, churn and retention, revenue per
/// customer, ARPU and the Pareto share (revenue from a segment's top 20% of customers),
/// and with `previous:` the growth of each segment since an earlier period.
///
/// `needs:` one per-customer features table (e.g. `customer_features`) and one or more
/// segmentations (any segmenter's `assignments`), joined on `key`; plus the earlier
/// segmentations named in `previous:`. Every segmentation gets one row per segment in
/// `kpis`, and the same figures in the long `metrics` table (with the whole
/// segmentation's values under a null `segment`).
///
/// Definitions, per segment (nulls in a column are left out of that column's figures):
/// `customer_share = customers / customers of the segmentation`; `revenue` = sum of the
/// revenue column, `revenue_share` = its share of the segmentation's revenue (null when
/// that total is not positive); `purchase_frequency` = mean of the transactions column
/// (transactions per customer); `average_order_value = revenue / transactions`;
/// `repeat_rate` = share of customers whose `frequency` (distinct purchase days) is at
/// least 2; `revenue_per_customer = revenue / customers`; `arpu` = revenue per customer
/// per month of the observation period (`period_days / 30.4375` months);
/// `pareto_share` = share of the segment's revenue from its top `ceil(top_share ×
/// customers)` customers by revenue.
///
/// Churn and retention (`retention_rate = 1 − churn_rate`) come from the first source
/// that applies: (1) `lifecycle:` names a lifecycle segmentation among the inputs: the
/// share of the segment's customers whose stage is churned; (2) the features have a
/// holdout column (`holdout:`, by default `frequency_holdout` from `customer_features`
/// with `calibration_end`): retention is the share of customers who bought in the
/// holdout period (holdout frequency > 0); (3) the features have a recency column
/// (`recency:`, by default `recency_days`): churned means no purchase for more than
/// `churn_after_days`. Otherwise both are null. The source used is the fact
/// `churn_source`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Kpis {
    /// Column identifying the customer in the features and the segmentations.
    #[serde(default = "default_key")]
    pub key: String,
    /// Column with each customer's revenue over the period (summed for `revenue`).
    /// Set to `null` when the features have no spend column: the revenue KPIs are then
    /// null.
    #[serde(default = "default_revenue")]
    pub revenue: Option<String>,
    /// Column with each customer's number of transactions (orders), for
    /// `purchase_frequency` and `average_order_value`; `null` to leave them out.
    #[serde(default = "default_transactions")]
    pub transactions: Option<String>,
    /// Column with each customer's number of distinct purchase days, for `repeat_rate`
    /// (share with at least 2); `null` to leave it out. Note: the lifetimes-style
    /// `frequency` of a calibration summary counts *repeat* days, so there a repeat
    /// customer has 1 or more; point this at `customer_features`' `frequency`.
    #[serde(default = "default_frequency")]
    pub frequency: Option<String>,
    /// Name (step id) of a lifecycle segmentation among the inputs, e.g. the
    /// `lifecycle` segmenter's step: churn is the share of a segment's customers in its
    /// churned stage. Takes precedence over the holdout and recency sources.
    #[serde(default)]
    pub lifecycle: Option<String>,
    /// Label of the churned stage in the `lifecycle:` segmentation. Default: customers
    /// whose `stage` column is `churned` when the segmentation has one (the `lifecycle`
    /// segmenter writes it, whatever the labels), else the segment labelled `churned`.
    #[serde(default)]
    pub churned_label: Option<String>,
    /// Holdout purchase column: retention is the share of customers with a value > 0
    /// (customers with a null value are left out). Default: `frequency_holdout` when
    /// the features have it. Used when `lifecycle:` is not set.
    #[serde(default)]
    pub holdout: Option<String>,
    /// Days-since-last-purchase column for the recency churn rule. Default:
    /// `recency_days` when the features have it. Used when neither `lifecycle:` nor a
    /// holdout column applies.
    #[serde(default)]
    pub recency: Option<String>,
    /// A customer whose recency is greater than this many days counts as churned (the
    /// recency rule only).
    #[serde(default = "default_churn_after")]
    #[schemars(range(min = 0.0))]
    pub churn_after_days: f64,
    /// Length of the observation period in days, for `arpu`. Default: the longest
    /// `tenure` in the features (the span from the earliest first purchase to the
    /// features' `as_of`).
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub period_days: Option<f64>,
    /// Tenure column (days since the first purchase) used to infer `period_days`.
    #[serde(default = "default_tenure")]
    pub tenure: String,
    /// Share of a segment's customers counted as its top customers in `pareto_share`.
    #[serde(default = "default_top_share")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub top_share: f64,
    /// An earlier period of a segmentation, to measure growth:
    /// `segmentation: needs-reference`, e.g. `{segments: segments_q3}` with
    /// `segments_q3` also in `needs:`. Adds `customers_previous` (customers with the
    /// same segment label then) and `growth` (`customers / customers_previous − 1`).
    /// Segments are matched by label.
    #[serde(default)]
    pub previous: BTreeMap<String, String>,
}

fn default_key() -> String {
    "customer_id".into()
}
fn default_revenue() -> Option<String> {
    Some("monetary_sum".into())
}
fn default_transactions() -> Option<String> {
    Some("n_transactions".into())
}
fn default_frequency() -> Option<String> {
    Some("frequency".into())
}
fn default_tenure() -> String {
    "tenure_days".into()
}
fn default_churn_after() -> f64 {
    365.0
}
fn default_top_share() -> f64 {
    0.2
}

const DEFAULT_HOLDOUT: &str = "frequency_holdout";
const DEFAULT_RECENCY: &str = "recency_days";

/// Where churn comes from.
#[derive(Debug, Clone, PartialEq)]
enum ChurnSource {
    Lifecycle(String),
    Holdout(String),
    Recency(String),
    None,
}

impl ChurnSource {
    fn fact(&self, after: f64) -> serde_json::Value {
        match self {
            ChurnSource::Lifecycle(s) => {
                serde_json::json!({"kind": "lifecycle", "segmentation": s})
            }
            ChurnSource::Holdout(c) => serde_json::json!({"kind": "holdout", "column": c}),
            ChurnSource::Recency(c) => {
                serde_json::json!({"kind": "recency", "column": c, "churn_after_days": after})
            }
            ChurnSource::None => serde_json::json!({"kind": "none"}),
        }
    }
}

/// The KPI columns after `segmentation, segment_id, segment, customers`, in order.
const KPI_COLUMNS: [&str; 13] = [
    "customer_share",
    "revenue",
    "revenue_share",
    "transactions",
    "purchase_frequency",
    "average_order_value",
    "repeat_rate",
    "churn_rate",
    "retention_rate",
    "revenue_per_customer",
    "arpu",
    "pareto_share",
    "growth",
];

/// The KPIs of one group of customers.
#[derive(Debug, Clone, Default)]
struct Group {
    customers: i64,
    revenue: Option<f64>,
    transactions: Option<f64>,
    purchase_frequency: Option<f64>,
    average_order_value: Option<f64>,
    repeat_rate: Option<f64>,
    churn_rate: Option<f64>,
    revenue_per_customer: Option<f64>,
    arpu: Option<f64>,
    pareto_share: Option<f64>,
}

/// The per-customer columns, by features row.
struct Columns {
    revenue: Option<Vec<Option<f64>>>,
    transactions: Option<Vec<Option<f64>>>,
    frequency: Option<Vec<Option<f64>>>,
    /// Whether each customer has churned (`None`: unknown).
    churned: Option<Vec<Option<bool>>>,
    /// Months of the observation period, for ARPU.
    months: Option<f64>,
    top_share: f64,
}

fn sum_mean(values: &[Option<f64>], rows: &[usize]) -> (f64, usize) {
    let mut s = 0.0;
    let mut n = 0;
    for &r in rows {
        if let Some(v) = values[r] {
            s += v;
            n += 1;
        }
    }
    (s, n)
}

impl Columns {
    fn group(&self, rows: &[usize]) -> Group {
        let n = rows.len();
        let mut g = Group {
            customers: n as i64,
            ..Default::default()
        };
        let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        if let Some(rev) = &self.revenue {
            let (total, _) = sum_mean(rev, rows);
            g.revenue = Some(total);
            g.revenue_per_customer = ratio(total, n as f64);
            g.arpu = match (g.revenue_per_customer, self.months) {
                (Some(r), Some(m)) => ratio(r, m),
                _ => None,
            };
            g.pareto_share = pareto_share(rev, rows, self.top_share);
        }
        if let Some(tx) = &self.transactions {
            let (total, count) = sum_mean(tx, rows);
            g.transactions = Some(total);
            g.purchase_frequency = ratio(total, count as f64);
            if let Some(rev) = g.revenue {
                g.average_order_value = ratio(rev, total);
            }
        }
        if let Some(freq) = &self.frequency {
            let (mut repeat, mut count) = (0usize, 0usize);
            for &r in rows {
                if let Some(f) = freq[r] {
                    count += 1;
                    repeat += (f >= 2.0) as usize;
                }
            }
            g.repeat_rate = ratio(repeat as f64, count as f64);
        }
        if let Some(ch) = &self.churned {
            let (mut churned, mut count) = (0usize, 0usize);
            for &r in rows {
                if let Some(c) = ch[r] {
                    count += 1;
                    churned += c as usize;
                }
            }
            g.churn_rate = ratio(churned as f64, count as f64);
        }
        g
    }
}

/// Share of the group's revenue from its top `ceil(top × n)` customers by revenue (`n`
/// customers with a revenue value); null when the group's revenue is not positive.
fn pareto_share(revenue: &[Option<f64>], rows: &[usize], top: f64) -> Option<f64> {
    let mut v: Vec<f64> = rows.iter().filter_map(|&r| revenue[r]).collect();
    let total: f64 = v.iter().sum();
    if v.is_empty() || total <= 0.0 {
        return None;
    }
    let k = ((top * v.len() as f64).ceil() as usize).clamp(1, v.len());
    // the k largest, summed in descending order (deterministic)
    v.sort_by(|a, b| b.total_cmp(a));
    Some(v[..k].iter().sum::<f64>() / total)
}

impl Kpis {
    /// Check the columns and decide the churn source.
    fn resolve(&self, features: &Schema, segmentations: &[String]) -> Result<ChurnSource> {
        if !(0.0..=1.0).contains(&self.top_share) || self.top_share == 0.0 {
            return Err(Error::config(
                "top_share",
                format!(
                    "top_share must be in (0, 1], got {}; 0.2 is the Pareto 80/20 share",
                    self.top_share
                ),
            ));
        }
        if !self.churn_after_days.is_finite() || self.churn_after_days < 0.0 {
            return Err(Error::config(
                "churn_after_days",
                format!(
                    "churn_after_days must be a number of days >= 0, got {}",
                    self.churn_after_days
                ),
            ));
        }
        if let Some(p) = self.period_days {
            if !p.is_finite() || p <= 0.0 {
                return Err(Error::config(
                    "period_days",
                    format!("period_days must be a positive number of days, got {p}"),
                ));
            }
        }
        let numeric_col = |field: &str, c: &str, hint: &str| -> Result<()> {
            let f = features.field_with_name(c).map_err(|_| {
                Error::config(
                    field,
                    format!(
                        "the features table has no column `{c}`{hint}; its numeric columns are {}",
                        inputs::numeric_columns(features, &self.key, &[]).join(", ")
                    ),
                )
            })?;
            if !is_numeric(f.data_type()) {
                return Err(Error::config(
                    field,
                    format!("column `{c}` is {}, not numeric", f.data_type()),
                ));
            }
            Ok(())
        };
        for (field, col) in [
            ("revenue", &self.revenue),
            ("transactions", &self.transactions),
            ("frequency", &self.frequency),
        ] {
            if let Some(c) = col {
                numeric_col(
                    field,
                    c,
                    &format!(" (set `{field}:` to the right column, or `{field}: null` to leave its KPIs out)"),
                )?;
            }
        }
        if self.period_days.is_none() && self.revenue.is_some() {
            if let Ok(f) = features.field_with_name(&self.tenure) {
                if !is_numeric(f.data_type()) {
                    return Err(Error::config(
                        "tenure",
                        format!("column `{}` is {}, not numeric", self.tenure, f.data_type()),
                    ));
                }
            }
        }
        if let Some(l) = &self.lifecycle {
            if !segmentations.contains(l) {
                return Err(Error::config(
                    "lifecycle",
                    format!(
                        "`{l}` is not a segmentation of this step (they are: {}); add the lifecycle step's assignments to `needs:` and name its step id here",
                        segmentations.join(", ")
                    ),
                ));
            }
            if let Some(h) = &self.holdout {
                numeric_col("holdout", h, "")?;
            }
            if let Some(r) = &self.recency {
                numeric_col("recency", r, "")?;
            }
            return Ok(ChurnSource::Lifecycle(l.clone()));
        }
        if self.churned_label.is_some() {
            return Err(Error::config(
                "churned_label",
                "churned_label names the churned stage of the `lifecycle:` segmentation; set `lifecycle:` too, or remove it",
            ));
        }
        if let Some(h) = &self.holdout {
            numeric_col("holdout", h, "")?;
            return Ok(ChurnSource::Holdout(h.clone()));
        }
        if features.field_with_name(DEFAULT_HOLDOUT).is_ok() {
            numeric_col("holdout", DEFAULT_HOLDOUT, "")?;
            return Ok(ChurnSource::Holdout(DEFAULT_HOLDOUT.into()));
        }
        if let Some(r) = &self.recency {
            numeric_col("recency", r, "")?;
            return Ok(ChurnSource::Recency(r.clone()));
        }
        if features.field_with_name(DEFAULT_RECENCY).is_ok() {
            numeric_col("recency", DEFAULT_RECENCY, "")?;
            return Ok(ChurnSource::Recency(DEFAULT_RECENCY.into()));
        }
        Ok(ChurnSource::None)
    }

    fn output_schema(&self) -> SchemaRef {
        let mut fields = vec![
            Field::new("segmentation", DataType::Utf8, false),
            Field::new("segment_id", DataType::Int32, false),
            Field::new("segment", DataType::Utf8, false),
            Field::new("customers", DataType::Int64, false),
        ];
        for c in &KPI_COLUMNS[..KPI_COLUMNS.len() - 1] {
            fields.push(Field::new(*c, DataType::Float64, true));
        }
        if !self.previous.is_empty() {
            fields.push(Field::new("customers_previous", DataType::Int64, true));
            fields.push(Field::new("growth", DataType::Float64, true));
        }
        Arc::new(Schema::new(fields))
    }

    /// The current inputs' roles and the names of their segmentations.
    fn check_inputs(&self, inputs: &[Named<SchemaRef>]) -> Result<ChurnSource> {
        let (current, roles, names) = inputs::plan_previous(&self.previous, inputs, &self.key)?;
        self.resolve(&current[roles.features].value, &names)
    }
}

impl Component for Kpis {
    const NAME: &'static str = "kpis";
    const STAGE: Stage = Stage::Evaluate;

    fn ports() -> Ports {
        Ports::new(Stage::Evaluate, 2, usize::MAX)
            .inputs_doc("one per-customer features table (e.g. customer_features) and one or more segmentations (segmenters' assignments), joined on the key; plus the earlier periods named in `previous:`")
            .outputs(&[
                ("kpis", "one row per segment of every segmentation: customers, revenue and its share, purchase frequency, average order value, repeat rate, churn and retention, revenue per customer, ARPU, Pareto share (and growth with `previous:`)"),
                ("metrics", "long table (segmentation, metric, segment, value): the same KPIs, with the whole segmentation's values under a null segment"),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        self.check_inputs(inputs)?;
        Ok(Outputs::new()
            .port("kpis", self.output_schema())
            .port("metrics", crate::common::metrics_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let schemas: Vec<Named<SchemaRef>> = inputs
            .iter()
            .map(|i| Named {
                name: i.name.clone(),
                value: i.value.schema(),
            })
            .collect();
        let source = self.check_inputs(&schemas)?;
        let (mut current, earlier) = inputs::split_previous(&self.previous, inputs)?;
        let mut earlier_labels: Vec<(String, HashMap<String, String>)> = Vec::new();
        for e in earlier {
            let name = e.name.clone();
            let batch = e.value.concat()?;
            earlier_labels.push((name.clone(), inputs::key_labels(&batch, &self.key, &name)?));
        }
        // The lifecycle segmentation's churned flag per row, read before the join.
        let mut lifecycle_flags: Option<Vec<bool>> = None;
        if let ChurnSource::Lifecycle(l) = &source {
            if let Some(pos) = current.iter().position(|i| {
                segmentation_name(&i.name) == *l && inputs::is_segmentation(&i.value.schema())
            }) {
                let inp = current.remove(pos);
                let batch = inp.value.concat()?;
                lifecycle_flags = Some(self.churned_flags(&batch, &inp.name)?);
                current.insert(
                    pos,
                    Named {
                        name: inp.name,
                        value: Table::from_batch(batch),
                    },
                );
            }
        }
        let joined = inputs::join(current, &self.key)?;
        let f = &joined.features;
        let n_rows = f.num_rows();
        let column = |c: &Option<String>, field: &str| {
            c.as_ref().map(|c| inputs::numeric(f, c, field)).transpose()
        };
        let churned: Option<Vec<Option<bool>>> = match &source {
            ChurnSource::Lifecycle(l) => {
                let seg = joined
                    .segmentations
                    .iter()
                    .find(|s| &s.name == l)
                    .ok_or_else(|| Error::config("lifecycle", format!("`{l}` is not an input")))?;
                let flags = lifecycle_flags.unwrap_or_default();
                let mut out = vec![None; n_rows];
                for (i, &r) in seg.rows.iter().enumerate() {
                    out[r] = flags.get(i).copied();
                }
                Some(out)
            }
            ChurnSource::Holdout(c) => Some(
                inputs::numeric(f, c, "holdout")?
                    .into_iter()
                    .map(|v| v.map(|h| h <= 0.0))
                    .collect(),
            ),
            ChurnSource::Recency(c) => Some(
                inputs::numeric(f, c, "recency")?
                    .into_iter()
                    .map(|v| v.map(|d| d > self.churn_after_days))
                    .collect(),
            ),
            ChurnSource::None => {
                segflow_sdk::tracing::warn!(
                    "no churn source: set `lifecycle:`, or give features with `frequency_holdout` or `recency_days`; churn_rate and retention_rate are null"
                );
                None
            }
        };
        let period_days = match (self.period_days, &self.revenue) {
            (Some(p), _) => Some(p),
            (None, Some(_)) if f.schema().field_with_name(&self.tenure).is_ok() => {
                let max = inputs::numeric(f, &self.tenure, "tenure")?
                    .into_iter()
                    .flatten()
                    .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
                match max {
                    Some(m) if m > 0.0 => Some(m),
                    _ => {
                        segflow_sdk::tracing::warn!(
                            "the longest tenure is not positive, so the observation period is unknown and arpu is null; set `period_days:`"
                        );
                        None
                    }
                }
            }
            (None, Some(_)) => {
                segflow_sdk::tracing::warn!(
                    tenure = %self.tenure,
                    "the features have no tenure column to infer the observation period from, so arpu is null; set `period_days:`"
                );
                None
            }
            (None, None) => None,
        };
        let cols = Columns {
            revenue: column(&self.revenue, "revenue")?,
            transactions: column(&self.transactions, "transactions")?,
            frequency: column(&self.frequency, "frequency")?,
            churned,
            months: period_days.map(|d| d / DAYS_PER_MONTH),
            top_share: self.top_share,
        };

        let mut rows = Rows::default();
        let mut metrics = Metrics::default();
        let mut seg_facts = serde_json::Map::new();
        for seg in &joined.segmentations {
            let k = seg.segments.len();
            let pos = seg.positions();
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
            for (&g, &r) in pos.iter().zip(&seg.rows) {
                members[g].push(r);
            }
            // segments are independent: compute them in parallel (same result at any
            // thread count)
            let groups: Vec<Group> = ctx.pool().install(|| {
                use rayon::prelude::*;
                members.par_iter().map(|m| cols.group(m)).collect()
            });
            let base = cols.group(&seg.rows);
            let previous = match self.previous.get(&seg.name) {
                Some(r) => {
                    let labels = earlier_labels
                        .iter()
                        .find(|(n, _)| n == r || segmentation_name(n) == *r)
                        .map(|(_, l)| l)
                        .ok_or_else(|| {
                            Error::config(&format!("previous.{}", seg.name), "missing input")
                        })?;
                    let mut counts: HashMap<&str, i64> = HashMap::new();
                    for l in labels.values() {
                        *counts.entry(l.as_str()).or_default() += 1;
                    }
                    Some(
                        seg.segments
                            .iter()
                            .map(|(_, l)| counts.get(l.as_str()).copied().unwrap_or(0))
                            .collect::<Vec<i64>>(),
                    )
                }
                None => None,
            };
            if cols.revenue.is_some() && base.revenue.is_none_or(|r| r <= 0.0) {
                segflow_sdk::tracing::warn!(
                    segmentation = %seg.name,
                    "the total revenue is not positive, so revenue shares are null"
                );
            }
            for (g, (id, label)) in seg.segments.iter().enumerate() {
                let kp = &groups[g];
                let prev = previous.as_ref().map(|p| p[g]);
                let growth =
                    prev.and_then(|p| (p > 0).then(|| kp.customers as f64 / p as f64 - 1.0));
                let values = kpi_values(kp, &base, growth);
                for (name, v) in KPI_COLUMNS.iter().zip(&values) {
                    if *name == "growth" && previous.is_none() {
                        continue;
                    }
                    metrics.push_segment(&seg.name, name, Some(label), *v);
                }
                metrics.push_segment(
                    &seg.name,
                    "customers",
                    Some(label),
                    Some(kp.customers as f64),
                );
                if let Some(p) = prev {
                    metrics.push_segment(
                        &seg.name,
                        "customers_previous",
                        Some(label),
                        Some(p as f64),
                    );
                }
                rows.push(&seg.name, *id, label, kp.customers, values, prev);
            }
            let base_values = kpi_values(&base, &base, None);
            metrics.push(&seg.name, "customers", Some(base.customers as f64));
            metrics.push(&seg.name, "segments", Some(k as f64));
            for (name, v) in KPI_COLUMNS.iter().zip(&base_values) {
                if matches!(*name, "customer_share" | "revenue_share" | "growth") {
                    continue;
                }
                metrics.push(&seg.name, name, *v);
            }
            let mut sf = serde_json::Map::new();
            sf.insert("customers".into(), base.customers.into());
            sf.insert("segments".into(), k.into());
            for (name, v) in KPI_COLUMNS.iter().zip(&base_values) {
                if matches!(*name, "customer_share" | "revenue_share" | "growth") {
                    continue;
                }
                sf.insert((*name).into(), serde_json::json!(v));
            }
            seg_facts.insert(seg.name.clone(), sf.into());
        }
        ctx.fact("churn_source", source.fact(self.churn_after_days));
        ctx.fact("period_days", period_days);
        ctx.fact("segmentations", seg_facts);
        let kpis = rows.finish(self.output_schema(), !self.previous.is_empty())?;
        segflow_sdk::tracing::info!(segments = kpis.num_rows(), "segment KPIs computed");
        Ok(Outputs::new()
            .port("kpis", Table::from_batch(kpis))
            .port("metrics", Table::from_batch(metrics.finish()?)))
    }
}

impl Kpis {
    /// Whether each row of the lifecycle segmentation is in its churned stage.
    fn churned_flags(&self, batch: &RecordBatch, name: &str) -> Result<Vec<bool>> {
        let stage_col = batch
            .schema()
            .field_with_name("stage")
            .ok()
            .filter(|f| is_text(f.data_type()))
            .is_some();
        let (column, wanted) = match (&self.churned_label, stage_col) {
            (Some(l), _) => ("segment", l.as_str()),
            (None, true) => ("stage", "churned"),
            (None, false) => ("segment", "churned"),
        };
        let values = inputs::text(batch, column, "lifecycle")?;
        let flags: Vec<bool> = values
            .iter()
            .map(|v| v.as_deref() == Some(wanted))
            .collect();
        if !flags.iter().any(|&b| b) {
            segflow_sdk::tracing::warn!(
                segmentation = %name,
                column,
                value = wanted,
                "no customer of the lifecycle segmentation is churned (no `{column}` equal to `{wanted}`); if the churned stage has another label, set `churned_label:`"
            );
        }
        Ok(flags)
    }
}

/// The values of [`KPI_COLUMNS`] for a group, with shares against `base`.
fn kpi_values(g: &Group, base: &Group, growth: Option<f64>) -> Vec<Option<f64>> {
    let share = |x: Option<f64>, total: Option<f64>| match (x, total) {
        (Some(x), Some(t)) if t > 0.0 => Some(x / t),
        _ => None,
    };
    vec![
        share(Some(g.customers as f64), Some(base.customers as f64)),
        g.revenue,
        share(g.revenue, base.revenue),
        g.transactions,
        g.purchase_frequency,
        g.average_order_value,
        g.repeat_rate,
        g.churn_rate,
        g.churn_rate.map(|c| 1.0 - c),
        g.revenue_per_customer,
        g.arpu,
        g.pareto_share,
        growth,
    ]
}

#[derive(Default)]
struct Rows {
    segmentation: Vec<String>,
    id: Vec<i32>,
    label: Vec<String>,
    customers: Vec<i64>,
    values: Vec<Vec<Option<f64>>>,
    previous: Vec<Option<i64>>,
}

impl Rows {
    fn push(
        &mut self,
        seg: &str,
        id: i32,
        label: &str,
        customers: i64,
        values: Vec<Option<f64>>,
        previous: Option<i64>,
    ) {
        self.segmentation.push(seg.to_string());
        self.id.push(id);
        self.label.push(label.to_string());
        self.customers.push(customers);
        self.values.push(values);
        self.previous.push(previous);
    }

    fn finish(self, schema: SchemaRef, with_previous: bool) -> Result<RecordBatch> {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(self.segmentation)),
            Arc::new(Int32Array::from(self.id)),
            Arc::new(StringArray::from(self.label)),
            Arc::new(Int64Array::from(self.customers)),
        ];
        let col = |j: usize| -> ArrayRef {
            Arc::new(Float64Array::from(
                self.values
                    .iter()
                    .map(|v| v[j].filter(|x| !x.is_nan()))
                    .collect::<Vec<_>>(),
            ))
        };
        for j in 0..KPI_COLUMNS.len() - 1 {
            cols.push(col(j));
        }
        if with_previous {
            cols.push(Arc::new(Int64Array::from(self.previous.clone())));
            cols.push(col(KPI_COLUMNS.len() - 1));
        }
        Ok(RecordBatch::try_new(schema, cols)?)
    }
}
