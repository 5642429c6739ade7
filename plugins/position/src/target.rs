//! The `target` component.

use crate::inputs::is_numeric;
use crate::profiles::{self, float64, head_fields, Profiles};
use segflow_ml::targeting::{self, Constraints, Segment, TargetingError, Weights};
use segflow_sdk::arrow::array::{BooleanArray, Int32Array, Int64Array, StringArray};
use segflow_sdk::prelude::*;
use std::collections::BTreeSet;
use std::sync::Arc;

/// How much each attractiveness criterion counts. Each weight is a number >= 0; a
/// criterion left out (or 0) is not used and gets no output columns. Weights that do
/// not sum to 1 are divided by their sum (with a warning and the fact
/// `weights_normalised: true`). When `weights` is left out entirely the defaults are
/// `size: 0.3, value: 0.5, accessibility: 0.2` if `accessibility` names a column, and
/// `size: 0.4, value: 0.6` otherwise.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CriterionWeights {
    /// 可衡量性 (measurable): the segment's size, scored on `customer_share`.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub size: Option<f64>,
    /// 可盈利性 (profitable): the segment's value, scored on the column named by
    /// `value` (default `revenue_share`).
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub value: Option<f64>,
    /// Growth since an earlier period, scored on the profiles' `growth` column, which
    /// the profile step writes when given `previous:`.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub growth: Option<f64>,
    /// 穩定性 (stable): the share of the earlier period's customers still in the
    /// segment, scored on the profiles' `stability` column (profile step's `previous:`).
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub stability: Option<f64>,
    /// 可進入性 (accessible): the share of the segment that can be reached, scored on
    /// the column named by `accessibility`.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub accessibility: Option<f64>,
}

/// Choose target segments: score every segment of each segmentation on weighted
/// attractiveness criteria — size (可衡量性), value (可盈利性), accessibility (可進入性),
/// stability (穩定性) and growth — rank them and choose the best under size
/// constraints. Reads the `profiles` port of a `profile` step.
///
/// Each criterion's raw value is min–max normalised across the segments of one
/// segmentation to 0..1 (the best segment scores 1, the worst 0). When every segment
/// has the same value, each scores 1.0: a criterion that does not tell segments apart
/// penalises none of them (so a single segment scores the sum of its weights). A
/// missing (null) raw value scores 0 and is reported in the log and the `nulls` fact.
/// The score is Σ weight × normalised value. Segments are ranked by score (ties: the
/// larger segment first, then the lower `segment_id`) and chosen in rank order unless
/// excluded, below `min_customers` or `min_share`, scoring 0, or beyond `max_targets`;
/// every row says why in `reason`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Weight of each criterion: `size`, `value`, `growth`, `stability`,
    /// `accessibility`. Default: size 0.3, value 0.5, accessibility 0.2 when
    /// `accessibility` is set, else size 0.4, value 0.6. Given weights replace the
    /// defaults entirely (criteria left out weigh 0).
    #[serde(default)]
    pub weights: Option<CriterionWeights>,
    /// Profiles column holding each segment's value, higher is better: `revenue_share`
    /// (default), or with the profile step's `clv:` setting `clv_share` or `clv_total`.
    #[serde(default = "default_value")]
    pub value: String,
    /// Profiles column holding the share of each segment that can be reached (0..1),
    /// e.g. `email_consent_mean` or `channel_share_app_mean` (a profiled feature `f`'s
    /// mean is the column `f_mean`). A value outside 0..1 is a run error.
    #[serde(default)]
    pub accessibility: Option<String>,
    /// Segments with fewer customers are never chosen.
    #[serde(default)]
    pub min_customers: u64,
    /// Segments with a smaller share of their segmentation's customers (0..1) are never
    /// chosen; a share equal to it is allowed.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_share: f64,
    /// Choose at most this many segments per segmentation (default: no limit).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_targets: Option<usize>,
    /// Segment labels never chosen (reason "excluded in config"), e.g. a segment
    /// already served by another programme.
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn default_value() -> String {
    "revenue_share".into()
}

/// The criteria, in output order.
const CRITERIA: [&str; 5] = ["size", "value", "growth", "stability", "accessibility"];

/// A criterion in use: its name, its raw column and the weight as given.
#[derive(Debug, Clone)]
struct Criterion {
    name: &'static str,
    column: String,
    weight: f64,
}

impl Target {
    /// The weights as given (or defaulted), one per criterion in [`CRITERIA`] order.
    fn given_weights(&self) -> [f64; 5] {
        match &self.weights {
            Some(w) => {
                [w.size, w.value, w.growth, w.stability, w.accessibility].map(|v| v.unwrap_or(0.0))
            }
            None if self.accessibility.is_some() => [0.3, 0.5, 0.0, 0.0, 0.2],
            None => [0.4, 0.6, 0.0, 0.0, 0.0],
        }
    }

    /// Check the weights and constraints; return the criteria with a non-zero weight
    /// and the checked weights over them.
    fn criteria(&self) -> Result<(Vec<Criterion>, Weights)> {
        let given = self.given_weights();
        for (name, w) in CRITERIA.iter().zip(given) {
            if !w.is_finite() || w < 0.0 {
                return Err(Error::config(
                    &format!("weights.{name}"),
                    format!("the weight is {w}; weights must be numbers >= 0 (use 0, or leave the criterion out, to ignore it)"),
                ));
            }
        }
        let used: Vec<Criterion> = CRITERIA
            .iter()
            .zip(given)
            .filter(|(_, w)| *w > 0.0)
            .map(|(&name, weight)| Criterion {
                name,
                column: match name {
                    "size" => "customer_share".to_string(),
                    "value" => self.value.clone(),
                    "accessibility" => self.accessibility.clone().unwrap_or_default(),
                    other => other.to_string(),
                },
                weight,
            })
            .collect();
        let weights = Weights::new(used.iter().map(|c| (c.name, c.weight))).map_err(|e| {
            match e {
                TargetingError::NoCriteria | TargetingError::AllZero => Error::config(
                    "weights",
                    "every weight is 0, so no segment could score above another; give at least one of size, value, growth, stability, accessibility a positive weight",
                ),
                TargetingError::BadWeight { ref criterion, .. } => {
                    Error::config(&format!("weights.{criterion}"), e.to_string())
                }
                other => Error::config("weights", other.to_string()),
            }
        })?;
        self.constraints().check().map_err(|e| match e {
            TargetingError::BadMinShare(_) => Error::config("min_share", e.to_string()),
            TargetingError::ZeroMaxTargets => Error::config("max_targets", e.to_string()),
            other => Error::new(other.to_string()),
        })?;
        Ok((used, weights))
    }

    fn constraints(&self) -> Constraints {
        Constraints {
            min_customers: self.min_customers,
            min_share: self.min_share,
            max_targets: self.max_targets,
            exclude: self.exclude.clone(),
        }
    }

    /// Check that the profiles provide every column the config needs.
    fn check_columns(
        &self,
        schema: &Schema,
        used: &[Criterion],
        features: &[String],
    ) -> Result<()> {
        let have = |c: &str| {
            schema
                .field_with_name(c)
                .ok()
                .map(|f| f.data_type().clone())
        };
        let numeric = |field: &str, col: &str, t: DataType| -> Result<()> {
            if is_numeric(&t) {
                Ok(())
            } else {
                Err(Error::config(
                    field,
                    format!(
                        "profiles column `{col}` has type {t}; a criterion needs a numeric column"
                    ),
                ))
            }
        };
        let feature_means = || {
            if features.is_empty() {
                "the profiles have no profiled features".to_string()
            } else {
                format!(
                    "the profiled features' means are: {}",
                    features
                        .iter()
                        .map(|f| format!("{f}_mean"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        // Columns named in the config are checked whether or not their weight is 0.
        match have(&self.value) {
            Some(t) => numeric("value", &self.value, t)?,
            None => {
                let hint = if self.value.starts_with("clv") {
                    "the `clv_*` columns come from the profile step's `clv:` setting"
                } else if self.value.starts_with("churn") {
                    "`churn_rate` comes from the profile step's `churn:` setting (and lower churn is better, so it is not a value)"
                } else {
                    "use `revenue_share` (default), `revenue`, or with the profile step's `clv:` setting `clv_share` or `clv_total`"
                };
                return Err(Error::config(
                    "value",
                    format!(
                        "profiles column `{}` is not in the input; {hint}",
                        self.value
                    ),
                ));
            }
        }
        if let Some(a) = &self.accessibility {
            match have(a) {
                Some(t) => numeric("accessibility", a, t)?,
                None => {
                    return Err(Error::config(
                        "accessibility",
                        format!(
                            "profiles column `{a}` is not in the input; name a column holding the reachable share of each segment (a feature `f`'s mean is `f_mean`); {}",
                            feature_means()
                        ),
                    ))
                }
            }
        }
        for c in used {
            match c.name {
                "accessibility" if self.accessibility.is_none() => {
                    return Err(Error::config(
                        "weights.accessibility",
                        format!(
                            "accessibility has a weight but no column: set `accessibility:` to a profiles column holding the reachable share of each segment, e.g. `email_consent_mean`; {}",
                            feature_means()
                        ),
                    ));
                }
                "growth" | "stability" => match have(&c.column) {
                    Some(t) => numeric(&format!("weights.{}", c.name), &c.column, t)?,
                    None => {
                        return Err(Error::config(
                            &format!("weights.{}", c.name),
                            format!(
                                "{} needs the profile step's `previous:` setting, which writes the `{}` column, and these profiles have none; set `previous:` on the profile step or give {} a weight of 0",
                                c.name, c.column, c.name
                            ),
                        ))
                    }
                },
                _ => {}
            }
        }
        Ok(())
    }

    fn schema(used: &[Criterion]) -> SchemaRef {
        let mut fields = head_fields();
        fields.push(Field::new("rank", DataType::Int32, false));
        fields.push(Field::new("score", DataType::Float64, false));
        for c in used {
            fields.push(Field::new(c.name, DataType::Float64, true));
            fields.push(Field::new(
                format!("{}_score", c.name),
                DataType::Float64,
                false,
            ));
            fields.push(Field::new(
                format!("{}_points", c.name),
                DataType::Float64,
                false,
            ));
        }
        fields.push(Field::new("customers", DataType::Int64, false));
        fields.push(Field::new("customer_share", DataType::Float64, true));
        fields.push(Field::new("chosen", DataType::Boolean, false));
        fields.push(Field::new("reason", DataType::Utf8, false));
        Arc::new(Schema::new(fields))
    }
}

/// The output rows, column by column.
#[derive(Default)]
struct Columns {
    segmentation: Vec<String>,
    segment_id: Vec<i32>,
    segment: Vec<String>,
    rank: Vec<i32>,
    score: Vec<f64>,
    raw: Vec<Vec<Option<f64>>>,
    normalised: Vec<Vec<f64>>,
    points: Vec<Vec<f64>>,
    customers: Vec<i64>,
    customer_share: Vec<Option<f64>>,
    chosen: Vec<bool>,
    reason: Vec<String>,
}

impl Component for Target {
    const NAME: &'static str = "target";
    const STAGE: Stage = Stage::Position;

    fn ports() -> Ports {
        Ports::new(Stage::Position, 1, 1)
            .inputs_doc("the profiles port of a profile step")
            .outputs(&[(
                "targets",
                "one row per segment: rank, score, per weighted criterion the raw value, its 0..1 score and its points, size, chosen and the reason",
            )])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let input = match inputs {
            [one] => one,
            _ => {
                return Err(Error::new(format!(
                    "target takes one input, the profiles port of a profile step, got {}",
                    inputs.len()
                )))
            }
        };
        let features = profiles::check(&input.value, &input.name)?;
        let (used, _) = self.criteria()?;
        self.check_columns(&input.value, &used, &features)?;
        Ok(Outputs::new().port("targets", Self::schema(&used)))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let (used, weights) = self.criteria()?;
        let p = Profiles::read(inputs)?;
        self.check_columns(&p.batch.schema(), &used, &p.features)?;
        let ids = p.ids()?;
        let labels = p.labels()?;
        let customers = p.customers()?;
        let share = p.f64("customer_share")?;
        let raw: Vec<Vec<Option<f64>>> = used
            .iter()
            .map(|c| p.f64(&c.column))
            .collect::<Result<_>>()?;
        let constraints = self.constraints();

        if weights.was_normalised() {
            segflow_sdk::tracing::warn!(
                sum = weights.given_sum(),
                "target: the weights sum to {} rather than 1, so each was divided by the sum",
                weights.given_sum()
            );
            ctx.fact("weights_normalised", true);
        }
        ctx.fact(
            "weights",
            used.iter()
                .zip(weights.values())
                .map(|(c, w)| (c.name.to_string(), serde_json::json!(w)))
                .collect::<serde_json::Map<_, _>>(),
        );

        let mut out = Columns {
            raw: vec![Vec::new(); used.len()],
            normalised: vec![Vec::new(); used.len()],
            points: vec![Vec::new(); used.len()],
            ..Default::default()
        };
        let mut chosen_fact = serde_json::Map::new();
        let mut nulls_fact = Vec::new();
        let mut matched_excludes = BTreeSet::new();
        for (name, rows) in &p.groups {
            let total: i64 = rows.iter().map(|&r| customers[r].max(0)).sum();
            let mut segments = Vec::with_capacity(rows.len());
            for &r in rows {
                if let Some(ai) = used.iter().position(|c| c.name == "accessibility") {
                    if let Some(v) = raw[ai][r].filter(|v| !(0.0..=1.0).contains(v)) {
                        return Err(Error::config(
                            "accessibility",
                            format!(
                                "segment `{}` (id {}) of segmentation `{name}` has {} = {v}, but accessibility must be a share of the segment between 0 and 1; name a share column such as `email_consent_mean`",
                                labels[r], ids[r], used[ai].column
                            ),
                        ));
                    }
                }
                if self.exclude.contains(&labels[r]) {
                    matched_excludes.insert(labels[r].clone());
                }
                segments.push(Segment {
                    segment_id: ids[r],
                    label: labels[r].clone(),
                    customers: customers[r],
                    share: share[r].unwrap_or(if total > 0 {
                        customers[r].max(0) as f64 / total as f64
                    } else {
                        0.0
                    }),
                    raw: raw.iter().map(|col| col[r]).collect(),
                });
            }
            let sel = targeting::select(&segments, &weights, &constraints)
                .map_err(|e| Error::new(format!("segmentation `{name}`: {e}")))?;
            // Nulls, reported once per criterion.
            for (ci, c) in used.iter().enumerate() {
                let missing: Vec<&str> = sel
                    .nulls
                    .iter()
                    .filter(|(_, k)| *k == ci)
                    .map(|(i, _)| segments[*i].label.as_str())
                    .collect();
                if missing.is_empty() {
                    continue;
                }
                segflow_sdk::tracing::warn!(
                    "target: segmentation `{name}`: `{}` ({}) is null for {}; each scores 0 on {}",
                    c.column,
                    c.name,
                    missing.join(", "),
                    c.name
                );
                for m in missing {
                    nulls_fact.push(serde_json::json!({
                        "segmentation": name, "segment": m, "criterion": c.name, "column": c.column,
                    }));
                }
            }
            let chosen: Vec<String> = sel
                .chosen()
                .into_iter()
                .map(|i| segments[i].label.clone())
                .collect();
            if chosen.is_empty() && !segments.is_empty() {
                let reasons: BTreeSet<&str> = sel
                    .rows
                    .iter()
                    .map(|r| r.reason.split(':').next().unwrap_or(""))
                    .collect();
                segflow_sdk::tracing::warn!(
                    "target: no segment of segmentation `{name}` was chosen ({}); see the `reason` column, and loosen min_customers / min_share / exclude if that is not intended",
                    reasons.into_iter().collect::<Vec<_>>().join("; ")
                );
            }
            chosen_fact.insert(name.clone(), serde_json::json!(chosen));
            for row in &sel.rows {
                let r = rows[row.index];
                out.segmentation.push(name.clone());
                out.segment_id.push(ids[r]);
                out.segment.push(labels[r].clone());
                out.rank.push(i32::try_from(row.rank).unwrap_or(i32::MAX));
                out.score.push(row.score);
                for (ci, col) in raw.iter().enumerate() {
                    out.raw[ci].push(col[r]);
                    out.normalised[ci].push(row.normalised[ci]);
                    out.points[ci].push(row.points[ci]);
                }
                out.customers.push(customers[r]);
                out.customer_share.push(share[r]);
                out.chosen.push(row.decision.is_chosen());
                out.reason.push(row.reason.clone());
            }
        }
        if p.groups.is_empty() {
            segflow_sdk::tracing::warn!(
                "target: the profiles table is empty, so there is nothing to target"
            );
        }
        for e in &self.exclude {
            if !matched_excludes.contains(e) {
                segflow_sdk::tracing::warn!(
                    "target: `exclude` names `{e}`, which is not a segment label of any segmentation"
                );
            }
        }
        ctx.fact("chosen", chosen_fact);
        if !nulls_fact.is_empty() {
            ctx.fact("nulls", nulls_fact);
        }

        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(out.segmentation)),
            Arc::new(Int32Array::from(out.segment_id)),
            Arc::new(StringArray::from(out.segment)),
            Arc::new(Int32Array::from(out.rank)),
            float64(out.score.into_iter().map(Some).collect()),
        ];
        for ((raw, norm), points) in out.raw.into_iter().zip(out.normalised).zip(out.points) {
            cols.push(float64(raw));
            cols.push(float64(norm.into_iter().map(Some).collect()));
            cols.push(float64(points.into_iter().map(Some).collect()));
        }
        cols.push(Arc::new(Int64Array::from(out.customers)));
        cols.push(float64(out.customer_share));
        cols.push(Arc::new(BooleanArray::from(out.chosen)));
        cols.push(Arc::new(StringArray::from(out.reason)));
        let batch = RecordBatch::try_new(Self::schema(&used), cols)?;
        Ok(Outputs::new().port("targets", Table::from_batch(batch)))
    }
}
