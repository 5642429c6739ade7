//! The `clv` component: customer lifetime value from BG/NBD and Gamma-Gamma.

use crate::common::{metrics_schema, Metrics};
use crate::inputs::{self, is_numeric, is_segmentation, segmentation_name, Segmentation};
use segflow_ml::clv::{self, ClvError, ClvOptions, FitOptions, History, Summary, TimeUnit};
use segflow_sdk::arrow::array::{Float64Array, Int32Array, Int64Array, StringArray};
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// Customer lifetime value: fits the BG/NBD model of repeat purchases and the
/// Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005) by maximum
/// likelihood, as the Python `lifetimes` package does, and gives every customer their
/// expected purchases over `horizon`, the probability that they are still active
/// (`p_alive`), their expected spend per purchase and their discounted CLV; then sums
/// and averages those per segment of every segmentation given. With a holdout period
/// it also compares predicted with actual holdout purchases (mean absolute error, and
/// by calibration frequency) to show how far the model can be trusted.
///
/// `needs:` one per-customer table with the lifetimes calibration summary, from
/// `customer_features` with `calibration_end` (weeks or days: set `time_unit` to the
/// same unit), and zero or more segmentations (segmenters' `assignments`) joined on
/// `key`. With both `calibration_end` and `as_of`, the columns `frequency_cal`,
/// `recency_cal`, `T_cal`, `monetary_value_cal` are used, and `frequency_holdout` /
/// `duration_holdout` give the holdout check; with `calibration_end` alone, the plain
/// `frequency`, `recency`, `T`, `monetary_value`. Customers whose summary is null
/// (first purchase after `calibration_end`) are not modelled: their predictions are
/// null and they are left out of the segment figures.
///
/// CLV follows lifetimes' `customer_lifetime_value`: the sum over months i = 1 ..
/// `clv.months` of expected spend per purchase × expected purchases during month i ÷
/// (1 + `clv.discount_rate`)^i, a month being 30 days, 4.345 weeks, 1 month or 720
/// hours of `time_unit`. See docs/evaluate-clv.md.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Clv {
    /// Column identifying the customer in the features and the segmentations.
    #[serde(default = "default_key")]
    pub key: String,
    /// Repeat purchase periods (lifetimes' `frequency`, a whole number ≥ 0). Default:
    /// `frequency_cal` when the table has it, else `frequency`.
    #[serde(default)]
    pub frequency: Option<String>,
    /// Age at the last purchase, in `time_unit` (0 without a repeat purchase). Default:
    /// `recency_cal` when the table has `frequency_cal`, else `recency`.
    #[serde(default)]
    pub recency: Option<String>,
    /// Age at the end of the calibration period, in `time_unit`. Default: `T_cal` when
    /// the table has `frequency_cal`, else `T`.
    #[serde(default, rename = "T")]
    pub t: Option<String>,
    /// Mean value of the repeat purchases (must be > 0 for every customer with
    /// frequency > 0). Default: `monetary_value_cal` when the table has
    /// `frequency_cal`, else `monetary_value`.
    #[serde(default)]
    pub monetary_value: Option<String>,
    /// Compare predictions with the holdout period when the table has the holdout
    /// columns (`holdout_frequency` and `holdout_duration`). `false` leaves the holdout
    /// figures out.
    #[serde(default = "yes")]
    pub holdout: bool,
    /// Purchase periods in the holdout period (actual). Default: `frequency_holdout`.
    #[serde(default = "default_holdout_frequency")]
    pub holdout_frequency: String,
    /// Length of the holdout period in `time_unit` (the predictions' horizon there).
    /// Default: `duration_holdout`.
    #[serde(default = "default_holdout_duration")]
    pub holdout_duration: String,
    /// Unit of recency, T and the holdout duration: `days` (default, as
    /// `customer_features`), `weeks`, `months` or `hours` (lifetimes' `freq` "D", "W",
    /// "M", "H", also accepted). Sets the month length of the CLV sum and the default
    /// `horizon`.
    #[serde(default)]
    pub time_unit: TimeUnitConfig,
    /// Horizon of `expected_purchases`, in `time_unit`. Default: one year (365 days,
    /// 52 weeks, 12 months, 8760 hours).
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub horizon: Option<f64>,
    /// How CLV is discounted.
    #[serde(default)]
    pub clv: ClvConfig,
    /// L2 penalty on the model parameters (lifetimes' `penalizer_coef`); 0 is plain
    /// maximum likelihood. A small value (0.001–0.1) steadies fits on small or odd data.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub penalizer: f64,
    /// Iteration limit of each fit; a fit that does not converge is an error.
    #[serde(default = "default_max_iterations")]
    #[schemars(range(min = 1))]
    pub max_iterations: usize,
    /// Calibration frequency buckets of the holdout check: 0, 1, ... up to
    /// `holdout_buckets − 1`, and `holdout_buckets` or more (metric names
    /// `holdout_calibration_f<b>_...`, the last `f<b>plus`).
    #[serde(default = "default_buckets")]
    #[schemars(range(min = 1, max = 100))]
    pub holdout_buckets: u32,
}

/// CLV discounting, as lifetimes' `customer_lifetime_value(time, discount_rate)`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClvConfig {
    /// Months of future purchases counted.
    #[serde(default = "default_months")]
    #[schemars(range(min = 1, max = 1200))]
    pub months: u32,
    /// Discount rate per month (0.01 is about 12.7% a year).
    #[serde(default = "default_discount")]
    #[schemars(range(min = 0.0))]
    pub discount_rate: f64,
}

impl Default for ClvConfig {
    fn default() -> Self {
        ClvConfig {
            months: default_months(),
            discount_rate: default_discount(),
        }
    }
}

/// Unit of the calibration summary's durations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnitConfig {
    /// Days (lifetimes "D"; a month is 30 days).
    #[default]
    #[serde(alias = "D")]
    Days,
    /// Weeks (lifetimes "W"; a month is 4.345 weeks).
    #[serde(alias = "W")]
    Weeks,
    /// Months (lifetimes "M").
    #[serde(alias = "M")]
    Months,
    /// Hours (lifetimes "H"; a month is 720 hours).
    #[serde(alias = "H")]
    Hours,
}

impl TimeUnitConfig {
    fn unit(self) -> TimeUnit {
        match self {
            TimeUnitConfig::Days => TimeUnit::Days,
            TimeUnitConfig::Weeks => TimeUnit::Weeks,
            TimeUnitConfig::Months => TimeUnit::Months,
            TimeUnitConfig::Hours => TimeUnit::Hours,
        }
    }
    fn name(self) -> &'static str {
        match self {
            TimeUnitConfig::Days => "days",
            TimeUnitConfig::Weeks => "weeks",
            TimeUnitConfig::Months => "months",
            TimeUnitConfig::Hours => "hours",
        }
    }
}

fn default_key() -> String {
    "customer_id".into()
}
fn yes() -> bool {
    true
}
fn default_holdout_frequency() -> String {
    "frequency_holdout".into()
}
fn default_holdout_duration() -> String {
    "duration_holdout".into()
}
fn default_max_iterations() -> usize {
    500
}
fn default_buckets() -> u32 {
    6
}
fn default_months() -> u32 {
    12
}
fn default_discount() -> f64 {
    0.01
}

/// Name under which the customers are reported when no segmentation is given.
const ALL: &str = "all";

/// Per-customer output columns after the key and the segmentation labels.
const PREDICTIONS: [&str; 4] = [
    "expected_purchases",
    "p_alive",
    "expected_average_value",
    "clv",
];
const HOLDOUT_COLUMNS: [&str; 2] = ["holdout_predicted", "holdout_actual"];

/// The columns the plan resolved.
#[derive(Debug, Clone)]
struct Columns {
    frequency: String,
    recency: String,
    t: String,
    monetary: String,
    /// (holdout frequency, holdout duration) when the holdout check runs.
    holdout: Option<(String, String)>,
}

/// Which input is the summary table and which are segmentations; unlike
/// `inputs::roles`, no segmentation at all is fine (then the one input is the table).
fn roles<T>(
    inputs: &[Named<T>],
    schema_of: impl Fn(&T) -> SchemaRef,
    key: &str,
) -> Result<inputs::Roles> {
    if inputs.iter().any(|i| is_segmentation(&schema_of(&i.value))) {
        return inputs::roles(inputs, schema_of, key);
    }
    match inputs {
        [one] => {
            let schema = schema_of(&one.value);
            require_column(&schema, key, "key", &[])?;
            Ok(inputs::Roles {
                features: 0,
                segmentations: vec![],
            })
        }
        _ => Err(Error::new(format!(
            "expected one per-customer summary table (e.g. customer_features with calibration_end) and zero or more segmentations in `needs:`, got {} tables none of which is a segmentation ({})",
            inputs.len(),
            inputs
                .iter()
                .map(|i| format!("`{}`", i.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

impl Clv {
    fn horizon(&self) -> f64 {
        self.horizon
            .unwrap_or_else(|| self.time_unit.unit().per_year())
    }

    fn clv_options(&self) -> Result<ClvOptions> {
        let o = ClvOptions {
            months: self.clv.months,
            discount_rate: self.clv.discount_rate,
            time_unit: self.time_unit.unit(),
        };
        o.validate()
            .map_err(|e| Error::config("clv", e.to_string()))?;
        Ok(o)
    }

    fn check_config(&self) -> Result<()> {
        if let Some(h) = self.horizon {
            if !(h.is_finite() && h >= 0.0) {
                return Err(Error::config(
                    "horizon",
                    format!("horizon is {h}; give a number of time units >= 0"),
                ));
            }
        }
        if !(self.penalizer.is_finite() && self.penalizer >= 0.0) {
            return Err(Error::config(
                "penalizer",
                format!("penalizer is {}; it must be a number >= 0", self.penalizer),
            ));
        }
        if !(self.clv.discount_rate.is_finite() && self.clv.discount_rate >= 0.0) {
            return Err(Error::config(
                "clv.discount_rate",
                format!(
                    "discount_rate is {}; give a monthly rate >= 0 such as 0.01",
                    self.clv.discount_rate
                ),
            ));
        }
        if self.clv.months == 0 {
            return Err(Error::config("clv.months", "months must be at least 1"));
        }
        if self.max_iterations == 0 {
            return Err(Error::config("max_iterations", "must be at least 1"));
        }
        if self.holdout_buckets == 0 {
            return Err(Error::config("holdout_buckets", "must be at least 1"));
        }
        self.clv_options()?;
        Ok(())
    }

    /// Resolve the summary columns against the table's schema.
    fn columns(&self, schema: &Schema) -> Result<Columns> {
        let cal = schema.field_with_name("frequency_cal").is_ok();
        let pick = |set: &Option<String>, plain: &str| -> String {
            set.clone().unwrap_or_else(|| {
                if cal {
                    format!("{plain}_cal")
                } else {
                    plain.to_string()
                }
            })
        };
        let cols = [
            ("frequency", pick(&self.frequency, "frequency")),
            ("recency", pick(&self.recency, "recency")),
            ("T", pick(&self.t, "T")),
            (
                "monetary_value",
                pick(&self.monetary_value, "monetary_value"),
            ),
        ];
        for (field, name) in &cols {
            let f = schema.field_with_name(name).map_err(|_| {
                Error::config(
                    field,
                    format!(
                        "the summary table has no column `{name}`; clv needs the lifetimes calibration summary (frequency, recency, T, monetary_value): add `calibration_end` to customer_features (and `time_unit`), or set `{field}:` to the column that holds it. Columns: {}",
                        schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            if !is_numeric(f.data_type()) || f.data_type() == &DataType::Boolean {
                return Err(Error::config(
                    field,
                    format!("column `{name}` is {}, not a number", f.data_type()),
                ));
            }
        }
        let holdout = if self.holdout {
            let hf = schema.field_with_name(&self.holdout_frequency).ok();
            let hd = schema.field_with_name(&self.holdout_duration).ok();
            match (hf, hd) {
                (Some(a), Some(b)) => {
                    for (field, f) in [("holdout_frequency", a), ("holdout_duration", b)] {
                        if !is_numeric(f.data_type()) || f.data_type() == &DataType::Boolean {
                            return Err(Error::config(
                                field,
                                format!("column `{}` is {}, not a number", f.name(), f.data_type()),
                            ));
                        }
                    }
                    Some((self.holdout_frequency.clone(), self.holdout_duration.clone()))
                }
                (Some(_), None) => {
                    return Err(Error::config(
                        "holdout_duration",
                        format!(
                            "the table has the holdout purchases `{}` but no holdout length `{}`; set `holdout_duration:` or `holdout: false`",
                            self.holdout_frequency, self.holdout_duration
                        ),
                    ))
                }
                _ => None,
            }
        } else {
            None
        };
        let [f, r, t, m] = cols.map(|c| c.1);
        Ok(Columns {
            frequency: f,
            recency: r,
            t,
            monetary: m,
            holdout,
        })
    }

    /// The three output schemas.
    fn schemas(
        &self,
        features: &Schema,
        names: &[String],
        holdout: bool,
    ) -> Result<(SchemaRef, SchemaRef)> {
        let key = features
            .field_with_name(&self.key)
            .map_err(|_| Error::config("key", format!("column `{}` is missing", self.key)))?;
        let mut fields = vec![Field::new(&self.key, key.data_type().clone(), false)];
        let mut taken: Vec<&str> = vec![&self.key];
        taken.extend(PREDICTIONS);
        if holdout {
            taken.extend(HOLDOUT_COLUMNS);
        }
        for n in names {
            if taken.contains(&n.as_str()) {
                return Err(Error::new(format!(
                    "segmentation `{n}` would name a column of `customers` that is already taken (the key or a prediction); rename the segmentation's step"
                )));
            }
            fields.push(Field::new(n, DataType::Utf8, true));
        }
        for c in PREDICTIONS {
            fields.push(Field::new(c, DataType::Float64, true));
        }
        if holdout {
            for c in HOLDOUT_COLUMNS {
                fields.push(Field::new(c, DataType::Float64, true));
            }
        }
        let customers = Arc::new(Schema::new(fields));
        let mut seg = vec![
            Field::new("segmentation", DataType::Utf8, false),
            Field::new("segment_id", DataType::Int32, false),
            Field::new("segment", DataType::Utf8, false),
            Field::new("customers", DataType::Int64, false),
            Field::new("customers_modelled", DataType::Int64, false),
        ];
        for c in SEGMENT_FLOATS {
            seg.push(Field::new(c, DataType::Float64, true));
        }
        if holdout {
            for c in SEGMENT_HOLDOUT {
                seg.push(Field::new(c, DataType::Float64, true));
            }
        }
        Ok((customers, Arc::new(Schema::new(seg))))
    }
}

/// Float columns of `segments`.
const SEGMENT_FLOATS: [&str; 8] = [
    "clv_total",
    "clv_mean",
    "clv_share",
    "expected_purchases_total",
    "expected_purchases_mean",
    "p_alive_mean",
    "expected_average_value_mean",
    "expected_value_total",
];
/// Holdout columns of `segments`.
const SEGMENT_HOLDOUT: [&str; 5] = [
    "holdout_customers",
    "holdout_predicted",
    "holdout_actual",
    "holdout_predicted_mean",
    "holdout_actual_mean",
];

/// One customer's (expected_purchases, p_alive, expected_average_value, clv) and
/// (predicted, actual) holdout purchases.
type RowPrediction = ([f64; 4], Option<(f64, f64)>);

/// The fitted models' predictions for every row of the table (None: not modelled).
struct Predicted {
    /// expected_purchases, p_alive, expected_average_value, clv per row.
    values: Vec<Option<[f64; 4]>>,
    /// (predicted, actual) holdout purchases per row.
    holdout: Vec<Option<(f64, f64)>>,
    /// Calibration frequency per row.
    frequency: Vec<Option<f64>>,
}

/// Sums over a set of rows.
#[derive(Default, Clone)]
struct Agg {
    customers: usize,
    modelled: usize,
    clv: f64,
    purchases: f64,
    p_alive: f64,
    value: f64,
    /// expected_purchases × expected_average_value summed.
    expected_value: f64,
    holdout_n: usize,
    holdout_pred: f64,
    holdout_actual: f64,
    holdout_abs: f64,
}

impl Agg {
    fn add(&mut self, p: &Predicted, row: usize) {
        self.customers += 1;
        if let Some([e, a, v, c]) = p.values[row] {
            self.modelled += 1;
            self.clv += c;
            self.purchases += e;
            self.p_alive += a;
            self.value += v;
            self.expected_value += e * v;
        }
        if let Some((pr, ac)) = p.holdout[row] {
            self.holdout_n += 1;
            self.holdout_pred += pr;
            self.holdout_actual += ac;
            self.holdout_abs += (pr - ac).abs();
        }
    }

    fn mean(sum: f64, n: usize) -> Option<f64> {
        (n > 0).then(|| sum / n as f64)
    }

    fn clv_mean(&self) -> Option<f64> {
        Self::mean(self.clv, self.modelled)
    }

    fn holdout_mae(&self) -> Option<f64> {
        Self::mean(self.holdout_abs, self.holdout_n)
    }
}

/// One segmentation's segments: (id, label, aggregate).
struct SegmentRows {
    name: String,
    segments: Vec<(i32, String, Agg)>,
    total: Agg,
    /// Rows (of the table) of the segmentation's customers.
    rows: Vec<usize>,
}

fn aggregate(seg: &Segmentation, p: &Predicted) -> SegmentRows {
    let pos = seg.positions();
    let mut aggs = vec![Agg::default(); seg.segments.len()];
    let mut total = Agg::default();
    for (i, &row) in seg.rows.iter().enumerate() {
        aggs[pos[i]].add(p, row);
        total.add(p, row);
    }
    SegmentRows {
        name: seg.name.clone(),
        segments: seg
            .segments
            .iter()
            .zip(aggs)
            .map(|((id, label), a)| (*id, label.clone(), a))
            .collect(),
        total,
        rows: seg.rows.clone(),
    }
}

/// Turn a model error into a step error that names the customer and the columns.
fn explain(e: ClvError, rows: &[usize], keys: &[String], cols: &Columns) -> Error {
    let who = |row: usize| {
        let r = rows.get(row).copied().unwrap_or(row);
        format!(
            "customer {} (row {r})",
            keys.get(r).cloned().unwrap_or_default()
        )
    };
    let col = |c: &str| match c {
        "frequency" => cols.frequency.clone(),
        "recency" => cols.recency.clone(),
        "T" => cols.t.clone(),
        "monetary_value" => cols.monetary.clone(),
        other => other.to_string(),
    };
    let msg = match e {
        ClvError::Negative { column, row, value } => format!(
            "{} has {} = {value}; it cannot be negative. Check the calibration summary upstream (customer_features writes it with `calibration_end`)",
            who(row),
            col(column)
        ),
        ClvError::NonFinite { column, row, value } => format!(
            "{} has {} = {value}; every value must be a finite number",
            who(row),
            col(column)
        ),
        ClvError::NonInteger { row, value } => format!(
            "{} has {} = {value}; the frequency counts repeat purchase periods and must be a whole number (is `frequency:` pointing at the right column?)",
            who(row),
            cols.frequency
        ),
        ClvError::RecencyAfterT { row, recency, t } => format!(
            "{} has {} = {recency} > {} = {t}; the last purchase cannot come after the end of the calibration period: both must be measured from the first purchase in the same time unit",
            who(row),
            cols.recency,
            cols.t
        ),
        ClvError::RecencyWithoutRepeat { row, recency } => format!(
            "{} has {} = {recency} but {} = 0; without a repeat purchase recency must be 0 (lifetimes' convention)",
            who(row),
            cols.recency,
            cols.frequency
        ),
        ClvError::NonPositiveMonetary {
            row,
            frequency,
            value,
        } => format!(
            "{} has {} = {frequency} repeat purchases but {} = {value}; Gamma-Gamma needs a positive mean spend for every repeat customer (refunds can make it 0 or negative): filter such customers or transactions upstream",
            who(row),
            cols.frequency,
            cols.monetary
        ),
        ClvError::NoRepeatCustomers => format!(
            "no customer has a repeat purchase ({} is 0 for everyone): the Gamma-Gamma spend model learns from repeat purchases only, and BG/NBD cannot tell purchase rates from drop-out without them; use a longer calibration period (a later `calibration_end`)",
            cols.frequency
        ),
        ClvError::ZeroAge => format!(
            "every customer has {} = 0: the calibration period ends on everyone's first purchase day; move `calibration_end` later",
            cols.t
        ),
        ClvError::Empty => "no customer has a calibration summary (every summary value is null); check `calibration_end` upstream".to_string(),
        ClvError::NotConverged {
            model,
            iterations,
            gradient_norm,
        } => format!(
            "the {model} fit did not converge in {iterations} iterations (largest gradient component {gradient_norm:e}); raise `max_iterations`, or add a small `penalizer` (e.g. 0.001) to steady the fit"
        ),
        other => other.to_string(),
    };
    Error::new(msg)
}

impl Component for Clv {
    const NAME: &'static str = "clv";
    const STAGE: Stage = Stage::Evaluate;

    fn ports() -> Ports {
        Ports::new(Stage::Evaluate, 1, usize::MAX)
            .inputs_doc("one per-customer table with the lifetimes calibration summary (customer_features with calibration_end), and zero or more segmentations (segmenters' assignments) joined on the key")
            .outputs(&[
                ("customers", "one row per customer of the summary table: key, the segment label in each segmentation, expected_purchases (over `horizon`), p_alive, expected_average_value, clv; with a holdout: holdout_predicted and holdout_actual"),
                ("segments", "one row per segment of every segmentation (or one `all` row without segmentations): customers, customers_modelled, clv_total, clv_mean, clv_share, expected_purchases_total/_mean, p_alive_mean, expected_average_value_mean, expected_value_total; with a holdout: holdout_customers, holdout_predicted, holdout_actual and their means"),
                ("metrics", "long table (segmentation, metric, segment, value): the segments' figures per segment; per segmentation clv_total, clv_mean, customers_modelled and, with a holdout, holdout_mae, holdout_predicted_total, holdout_actual_total and holdout_calibration_f<b>_predicted / _actual / _customers by calibration frequency"),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        self.check_config()?;
        let roles = roles(inputs, |s: &SchemaRef| s.clone(), &self.key)?;
        let schema = &inputs[roles.features].value;
        let cols = self.columns(schema)?;
        let names: Vec<String> = roles
            .segmentations
            .iter()
            .map(|&i| segmentation_name(&inputs[i].name))
            .collect();
        let (customers, segments) = self.schemas(schema, &names, cols.holdout.is_some())?;
        Ok(Outputs::new()
            .port("customers", customers)
            .port("segments", segments)
            .port("metrics", metrics_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        self.check_config()?;
        let role = roles(&inputs, |t: &Table| t.schema(), &self.key)?;
        let fname = inputs[role.features].name.clone();
        let (features, segmentations) = if role.segmentations.is_empty() {
            let mut inputs = inputs;
            let t = inputs.remove(0);
            (t.value.concat()?, vec![])
        } else {
            let j = inputs::join(inputs, &self.key)?;
            (j.features, j.segmentations)
        };
        let cols = self.columns(&features.schema())?;
        let names: Vec<String> = segmentations.iter().map(|s| s.name.clone()).collect();
        let (customers_schema, segments_schema) =
            self.schemas(&features.schema(), &names, cols.holdout.is_some())?;
        let n = features.num_rows();

        let f = inputs::numeric(&features, &cols.frequency, "frequency")?;
        let r = inputs::numeric(&features, &cols.recency, "recency")?;
        let t = inputs::numeric(&features, &cols.t, "T")?;
        let m = inputs::numeric(&features, &cols.monetary, "monetary_value")?;
        let keys = inputs::text(&features, &self.key, "key")?
            .into_iter()
            .map(|k| k.unwrap_or_default())
            .collect::<Vec<_>>();
        // Modelled: a complete summary (the spend only matters with repeat purchases).
        let rows: Vec<usize> = (0..n)
            .filter(|&i| match (f[i], r[i], t[i]) {
                (Some(x), Some(_), Some(_)) => x == 0.0 || m[i].is_some(),
                _ => false,
            })
            .collect();
        let partial = (0..n)
            .filter(|&i| {
                let present = [f[i], r[i], t[i]].iter().filter(|v| v.is_some()).count();
                present > 0 && present < 3
            })
            .count();
        if partial > 0 {
            segflow_sdk::tracing::warn!(
                customers = partial,
                "customers with an incomplete calibration summary (some of frequency, recency, T null) are not modelled"
            );
        }
        if rows.is_empty() {
            return Err(Error::new(format!(
                "no customer of `{fname}` has a complete calibration summary ({}, {}, {} all non-null); customer_features writes it with `calibration_end` (null only for customers whose first purchase is after it)",
                cols.frequency, cols.recency, cols.t
            )));
        }
        let xf: Vec<f64> = rows.iter().map(|&i| f[i].unwrap_or(0.0)).collect();
        let xr: Vec<f64> = rows.iter().map(|&i| r[i].unwrap_or(0.0)).collect();
        let xt: Vec<f64> = rows.iter().map(|&i| t[i].unwrap_or(0.0)).collect();
        let xm: Vec<f64> = rows.iter().map(|&i| m[i].unwrap_or(0.0)).collect();
        let err = |e: ClvError| explain(e, &rows, &keys, &cols);
        let summary = Summary::new(&xf, &xr, &xt).map_err(err)?;
        let options = FitOptions {
            penalizer: self.penalizer,
            max_iterations: self.max_iterations,
            ..FitOptions::default()
        };
        // Gamma-Gamma first: its input checks (repeat customers, positive spend) give
        // clearer errors than a BG/NBD fit on data without repeat purchases would.
        let gg = clv::fit_gamma_gamma(&xf, &xm, &options).map_err(err)?;
        let bg = clv::fit_bgnbd(&summary, &options).map_err(err)?;

        let hold = match &cols.holdout {
            Some((hf, hd)) => Some((
                inputs::numeric(&features, hf, "holdout_frequency")?,
                inputs::numeric(&features, hd, "holdout_duration")?,
            )),
            None => None,
        };
        let horizon = self.horizon();
        let clv_options = self.clv_options()?;
        let (bgp, ggp) = (bg.params, gg.params);
        let per_row: Vec<(usize, Result<RowPrediction>)> = ctx.pool().install(|| {
            use rayon::prelude::*;
            rows.par_iter()
                .enumerate()
                .map(|(j, &i)| {
                    let h = History {
                        frequency: xf[j],
                        recency: xr[j],
                        t: xt[j],
                        monetary_value: xm[j],
                    };
                    let res = clv::predict(&bgp, &ggp, &h, horizon, &clv_options)
                        .map_err(|e| Error::new(format!("customer {}: {e}", keys[i])))
                        .and_then(|p| {
                            let holdout = match &hold {
                                Some((hf, hd)) => match (hf[i], hd[i]) {
                                    (Some(actual), Some(d)) if d >= 0.0 => Some((
                                        bgp.conditional_expected_purchases(
                                            d,
                                            h.frequency,
                                            h.recency,
                                            h.t,
                                        )
                                        .map_err(|e| {
                                            Error::new(format!("customer {}: {e}", keys[i]))
                                        })?,
                                        actual,
                                    )),
                                    _ => None,
                                },
                                None => None,
                            };
                            Ok((
                                [
                                    p.expected_purchases,
                                    p.p_alive,
                                    p.expected_average_value,
                                    p.clv,
                                ],
                                holdout,
                            ))
                        });
                    (i, res)
                })
                .collect()
        });
        let mut predicted = Predicted {
            values: vec![None; n],
            holdout: vec![None; n],
            frequency: f.clone(),
        };
        for (i, res) in per_row {
            let (v, h) = res?;
            predicted.values[i] = Some(v);
            predicted.holdout[i] = h;
        }

        // customers
        let mut columns: Vec<ArrayRef> = vec![features
            .column_by_name(&self.key)
            .cloned()
            .ok_or_else(|| Error::config("key", format!("column `{}` is missing", self.key)))?];
        for seg in &segmentations {
            let mut labels: Vec<Option<&str>> = vec![None; n];
            let pos = seg.positions();
            for (k, &row) in seg.rows.iter().enumerate() {
                labels[row] = Some(seg.segments[pos[k]].1.as_str());
            }
            columns.push(Arc::new(StringArray::from(labels)));
        }
        for c in 0..4 {
            columns.push(Arc::new(Float64Array::from(
                predicted
                    .values
                    .iter()
                    .map(|v| v.map(|v| v[c]))
                    .collect::<Vec<_>>(),
            )));
        }
        if cols.holdout.is_some() {
            columns.push(Arc::new(Float64Array::from(
                predicted
                    .holdout
                    .iter()
                    .map(|h| h.map(|h| h.0))
                    .collect::<Vec<_>>(),
            )));
            columns.push(Arc::new(Float64Array::from(
                predicted
                    .holdout
                    .iter()
                    .map(|h| h.map(|h| h.1))
                    .collect::<Vec<_>>(),
            )));
        }
        let customers = RecordBatch::try_new(customers_schema, columns)?;

        // segments and metrics
        let groups: Vec<SegmentRows> = if segmentations.is_empty() {
            let mut total = Agg::default();
            for row in 0..n {
                total.add(&predicted, row);
            }
            vec![SegmentRows {
                name: ALL.into(),
                segments: vec![(0, ALL.into(), total.clone())],
                total,
                rows: (0..n).collect(),
            }]
        } else {
            segmentations
                .iter()
                .map(|s| aggregate(s, &predicted))
                .collect()
        };
        let with_holdout = cols.holdout.is_some();
        let segments = segments_batch(&groups, segments_schema, with_holdout)?;
        let metrics = metrics_batch(&groups, &predicted, with_holdout, self.holdout_buckets)?;

        // facts
        let all = {
            let mut a = Agg::default();
            for row in 0..n {
                a.add(&predicted, row);
            }
            a
        };
        ctx.fact(
            "bgnbd",
            serde_json::json!({
                "r": bgp.r, "alpha": bgp.alpha, "a": bgp.a, "b": bgp.b,
                "log_likelihood": bg.log_likelihood,
                "iterations": bg.iterations, "converged": bg.converged, "customers": bg.customers,
            }),
        );
        ctx.fact(
            "gamma_gamma",
            serde_json::json!({
                "p": ggp.p, "q": ggp.q, "v": ggp.v,
                "log_likelihood": gg.log_likelihood,
                "iterations": gg.iterations, "converged": gg.converged, "customers": gg.customers,
                "frequency_monetary_correlation": correlation(&xf, &xm),
            }),
        );
        ctx.fact("time_unit", self.time_unit.name());
        ctx.fact("horizon", horizon);
        ctx.fact(
            "clv_settings",
            serde_json::json!({"months": self.clv.months, "discount_rate": self.clv.discount_rate}),
        );
        ctx.fact("customers", n);
        ctx.fact("customers_modelled", rows.len());
        ctx.fact("clv_total", all.clv);
        if with_holdout {
            ctx.fact(
                "holdout",
                serde_json::json!({
                    "customers": all.holdout_n,
                    "mae": all.holdout_mae(),
                    "predicted_total": all.holdout_pred,
                    "actual_total": all.holdout_actual,
                }),
            );
        }
        segflow_sdk::tracing::info!(
            customers = rows.len(),
            r = bgp.r,
            alpha = bgp.alpha,
            a = bgp.a,
            b = bgp.b,
            p = ggp.p,
            q = ggp.q,
            v = ggp.v,
            "fitted BG/NBD and Gamma-Gamma"
        );
        Ok(Outputs::new()
            .port("customers", Table::from_batch(customers))
            .port("segments", Table::from_batch(segments))
            .port("metrics", Table::from_batch(metrics)))
    }
}

/// Pearson correlation (None when undefined) of frequency and spend among repeat
/// customers: Gamma-Gamma assumes it is near 0.
fn correlation(x: &[f64], m: &[f64]) -> Option<f64> {
    let pairs: Vec<(f64, f64)> = x
        .iter()
        .zip(m)
        .filter(|(x, _)| **x > 0.0)
        .map(|(a, b)| (*a, *b))
        .collect();
    let n = pairs.len() as f64;
    if pairs.len() < 2 {
        return None;
    }
    let (mx, mm) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in pairs {
        sxy += (a - mx) * (b - mm);
        sxx += (a - mx) * (a - mx);
        syy += (b - mm) * (b - mm);
    }
    let d = (sxx * syy).sqrt();
    (d > 0.0).then(|| sxy / d)
}

fn segments_batch(groups: &[SegmentRows], schema: SchemaRef, holdout: bool) -> Result<RecordBatch> {
    let mut segmentation = Vec::new();
    let mut ids = Vec::new();
    let mut labels = Vec::new();
    let mut customers = Vec::new();
    let mut modelled = Vec::new();
    let mut floats: Vec<Vec<Option<f64>>> = vec![Vec::new(); SEGMENT_FLOATS.len()];
    let mut hold: Vec<Vec<Option<f64>>> = vec![Vec::new(); SEGMENT_HOLDOUT.len()];
    for g in groups {
        for (id, label, a) in &g.segments {
            segmentation.push(g.name.clone());
            ids.push(*id);
            labels.push(label.clone());
            customers.push(a.customers as i64);
            modelled.push(a.modelled as i64);
            let some = a.modelled > 0;
            let vals = [
                some.then_some(a.clv),
                a.clv_mean(),
                (g.total.clv != 0.0 && some).then(|| a.clv / g.total.clv),
                some.then_some(a.purchases),
                Agg::mean(a.purchases, a.modelled),
                Agg::mean(a.p_alive, a.modelled),
                Agg::mean(a.value, a.modelled),
                some.then_some(a.expected_value),
            ];
            for (c, v) in floats.iter_mut().zip(vals) {
                c.push(v);
            }
            let hs = a.holdout_n > 0;
            let hv = [
                Some(a.holdout_n as f64),
                hs.then_some(a.holdout_pred),
                hs.then_some(a.holdout_actual),
                Agg::mean(a.holdout_pred, a.holdout_n),
                Agg::mean(a.holdout_actual, a.holdout_n),
            ];
            for (c, v) in hold.iter_mut().zip(hv) {
                c.push(v);
            }
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(segmentation)),
        Arc::new(Int32Array::from(ids)),
        Arc::new(StringArray::from(labels)),
        Arc::new(Int64Array::from(customers)),
        Arc::new(Int64Array::from(modelled)),
    ];
    for c in floats {
        columns.push(Arc::new(Float64Array::from(c)));
    }
    if holdout {
        for c in hold {
            columns.push(Arc::new(Float64Array::from(c)));
        }
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn metrics_batch(
    groups: &[SegmentRows],
    p: &Predicted,
    holdout: bool,
    buckets: u32,
) -> Result<RecordBatch> {
    let mut out = Metrics::default();
    for g in groups {
        let s = g.name.as_str();
        for (_, label, a) in &g.segments {
            let l = Some(label.as_str());
            out.push_segment(s, "customers", l, Some(a.customers as f64));
            out.push_segment(s, "customers_modelled", l, Some(a.modelled as f64));
            out.push_segment(s, "clv_total", l, (a.modelled > 0).then_some(a.clv));
            out.push_segment(s, "clv_mean", l, a.clv_mean());
            out.push_segment(
                s,
                "clv_share",
                l,
                (g.total.clv != 0.0 && a.modelled > 0).then(|| a.clv / g.total.clv),
            );
            out.push_segment(
                s,
                "expected_purchases_mean",
                l,
                Agg::mean(a.purchases, a.modelled),
            );
            out.push_segment(s, "p_alive_mean", l, Agg::mean(a.p_alive, a.modelled));
            out.push_segment(
                s,
                "expected_average_value_mean",
                l,
                Agg::mean(a.value, a.modelled),
            );
            if holdout {
                out.push_segment(
                    s,
                    "holdout_predicted_mean",
                    l,
                    Agg::mean(a.holdout_pred, a.holdout_n),
                );
                out.push_segment(
                    s,
                    "holdout_actual_mean",
                    l,
                    Agg::mean(a.holdout_actual, a.holdout_n),
                );
                out.push_segment(s, "holdout_mae", l, a.holdout_mae());
            }
        }
        let t = &g.total;
        out.push(s, "customers", Some(t.customers as f64));
        out.push(s, "customers_modelled", Some(t.modelled as f64));
        out.push(s, "clv_total", (t.modelled > 0).then_some(t.clv));
        out.push(s, "clv_mean", t.clv_mean());
        if holdout {
            out.push(s, "holdout_customers", Some(t.holdout_n as f64));
            out.push(s, "holdout_mae", t.holdout_mae());
            out.push(
                s,
                "holdout_predicted_total",
                (t.holdout_n > 0).then_some(t.holdout_pred),
            );
            out.push(
                s,
                "holdout_actual_total",
                (t.holdout_n > 0).then_some(t.holdout_actual),
            );
            // Calibration: mean predicted vs actual holdout purchases by calibration
            // frequency (lifetimes' plot_calibration_purchases_vs_holdout_purchases).
            let nb = buckets as usize + 1;
            let mut sums = vec![(0usize, 0.0, 0.0); nb];
            for &row in &g.rows {
                if let (Some((pr, ac)), Some(x)) = (p.holdout[row], p.frequency[row]) {
                    let b = (x.max(0.0) as usize).min(buckets as usize);
                    sums[b].0 += 1;
                    sums[b].1 += pr;
                    sums[b].2 += ac;
                }
            }
            for (b, (k, pr, ac)) in sums.into_iter().enumerate() {
                let name = if b == buckets as usize {
                    format!("f{b}plus")
                } else {
                    format!("f{b}")
                };
                out.push(
                    s,
                    &format!("holdout_calibration_{name}_predicted"),
                    Agg::mean(pr, k),
                );
                out.push(
                    s,
                    &format!("holdout_calibration_{name}_actual"),
                    Agg::mean(ac, k),
                );
                out.push(
                    s,
                    &format!("holdout_calibration_{name}_customers"),
                    Some(k as f64),
                );
            }
        }
    }
    out.finish()
}
