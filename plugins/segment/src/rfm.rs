//! The `rfm` component.

use crate::features::{assignments_batch, assignments_head_fields, NUMERIC};
use segflow_ml::rfm::{self, Measure, RfmError, RfmParams, ScoreRule, SegmentMap, Ties};
use segflow_sdk::arrow::array::{Float64Array, Int32Array, Int64Array, StringArray};
use segflow_sdk::arrow::compute::cast;
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// How quantile scoring treats customers with equal values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TiesConfig {
    /// Rank equal values by row order (the input's order; `customer_features` sorts by
    /// key) and bin the ranks, as pandas `qcut(s.rank(method="first"), bins)`: every
    /// score holds the same number of customers (give or take one), but equal values
    /// can get different scores.
    #[default]
    First,
    /// Equal values share the bin of the first of them: equal values always get the
    /// same score, but scores can hold uneven numbers of customers (or none).
    Shared,
}

/// Fixed cut points per measure, in the measure's own units.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// `bins - 1` increasing cut points for recency, e.g. `[30, 90, 180, 365]` days:
    /// up to 30 scores 5, above 30 up to 90 scores 4, ..., above 365 scores 1.
    #[serde(default)]
    pub recency: Option<Vec<f64>>,
    /// `bins - 1` increasing cut points for frequency, e.g. `[1, 2, 4, 8]`: up to 1
    /// scores 1, above 1 up to 2 scores 2, ..., above 8 scores 5.
    #[serde(default)]
    pub frequency: Option<Vec<f64>>,
    /// `bins - 1` increasing cut points for monetary, e.g. `[50, 150, 500, 1500]`.
    #[serde(default)]
    pub monetary: Option<Vec<f64>>,
}

/// A segment of a custom map: a name and inclusive score ranges `[low, high]`. A range
/// left out matches any score; `fm` is the mean of F and M rounded half up.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentConfig {
    /// The segment's label in `assignments` (unique within the map).
    pub name: String,
    /// Recency score range, e.g. `[4, 5]`.
    #[serde(default)]
    pub r: Option<[u8; 2]>,
    /// Frequency score range.
    #[serde(default)]
    pub f: Option<[u8; 2]>,
    /// Monetary score range.
    #[serde(default)]
    pub m: Option<[u8; 2]>,
    /// Range of FM, the mean of the F and M scores rounded half up.
    #[serde(default)]
    pub fm: Option<[u8; 2]>,
}

/// RFM segmentation: recency, frequency and monetary scores of 1 to `bins` (higher is
/// better: the most recent customers get the top recency score) from equal-count
/// quantile bins as pandas `qcut(rank(method="first"))`, or from fixed `thresholds` so
/// that month-to-month runs stay comparable. Customers are then named by a segment map
/// on the scores: by default the 11-segment R × FM grid (Champions, Loyal, Potential
/// Loyalist, New Customers, Promising, Need Attention, About to Sleep, At Risk, Can't
/// Lose Them, Hibernating, Lost), or your own ordered list of score ranges where the
/// first match wins.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rfm {
    /// Column identifying the customer, carried into `assignments`.
    #[serde(default = "default_key")]
    pub key: String,
    /// Numeric column with the time since the last purchase (lower is better).
    #[serde(default = "default_recency")]
    pub recency: String,
    /// Numeric column with the number of purchases (higher is better).
    #[serde(default = "default_frequency")]
    pub frequency: String,
    /// Numeric column with the money spent (higher is better).
    #[serde(default = "default_monetary")]
    pub monetary: String,
    /// Scores per measure: 3, 4 or 5.
    #[serde(default = "default_bins")]
    #[schemars(range(min = 3, max = 5))]
    pub bins: u8,
    /// How quantile scoring treats equal values: `first` (by row order, equal-count
    /// bins) or `shared` (equal values share a bin).
    #[serde(default)]
    pub ties: TiesConfig,
    /// Fixed cut points instead of quantiles, per measure (measures left out use
    /// quantiles). A value equal to a cut point gets the lower bin.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// A custom segment map: an ordered list of `{name, r, f, m, fm}` score ranges, the
    /// first match wins. It must give every combination of scores a segment, or set
    /// `default`. Left out: the standard 11-segment grid.
    #[serde(default)]
    pub segments: Option<Vec<SegmentConfig>>,
    /// Segment for the score combinations no listed segment matches (only with
    /// `segments`).
    #[serde(default)]
    pub default: Option<String>,
}

fn default_key() -> String {
    "customer_id".into()
}
fn default_recency() -> String {
    "recency_days".into()
}
fn default_frequency() -> String {
    "frequency".into()
}
fn default_monetary() -> String {
    "monetary_sum".into()
}
fn default_bins() -> u8 {
    5
}

/// A numeric column as `f64`; a null or non-finite value is an error naming the config
/// `field` that chose the column, and the row.
pub(crate) fn numeric_column(batch: &RecordBatch, name: &str, field: &str) -> Result<Vec<f64>> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| Error::config(field, format!("column `{name}` is missing")))?;
    let col = cast(col, &DataType::Float64)?;
    let col = col
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| Error::new("cast to Float64 failed"))?;
    let mut out = Vec::with_capacity(col.len());
    for i in 0..col.len() {
        if col.is_null(i) || !col.value(i).is_finite() {
            let what = if col.is_null(i) {
                "null".to_string()
            } else {
                col.value(i).to_string()
            };
            return Err(Error::config(
                field,
                format!("column `{name}` is {what} at row {i}; this segmenter needs complete, finite values (add an `impute` or `validate` step before this one)"),
            ));
        }
        out.push(col.value(i));
    }
    Ok(out)
}

fn assignments_schema(key: &Field) -> SchemaRef {
    let mut fields = assignments_head_fields(key);
    fields.extend([
        Field::new("r_score", DataType::Int32, false),
        Field::new("f_score", DataType::Int32, false),
        Field::new("m_score", DataType::Int32, false),
        Field::new("fm_score", DataType::Int32, false),
        Field::new("rfm_score", DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(fields))
}

const RANGE_PARTS: [&str; 4] = ["r", "f", "m", "fm"];

fn model_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
    ];
    for p in RANGE_PARTS {
        fields.push(Field::new(format!("{p}_low"), DataType::Int32, true));
        fields.push(Field::new(format!("{p}_high"), DataType::Int32, true));
    }
    fields.push(Field::new("size", DataType::Int64, false));
    fields.push(Field::new("share", DataType::Float64, true));
    for m in Measure::ALL {
        fields.push(Field::new(
            format!("{}_min", m.name()),
            DataType::Float64,
            true,
        ));
        fields.push(Field::new(
            format!("{}_max", m.name()),
            DataType::Float64,
            true,
        ));
    }
    Arc::new(Schema::new(fields))
}

fn thresholds_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("measure", DataType::Utf8, false),
        Field::new("score", DataType::Int32, false),
        Field::new("method", DataType::Utf8, false),
        Field::new("lower", DataType::Float64, true),
        Field::new("upper", DataType::Float64, true),
        Field::new("customers", DataType::Int64, false),
        Field::new("min", DataType::Float64, true),
        Field::new("max", DataType::Float64, true),
    ]))
}

impl Rfm {
    fn columns(&self) -> [(Measure, &str, &'static str); 3] {
        [
            (Measure::Recency, self.recency.as_str(), "recency"),
            (Measure::Frequency, self.frequency.as_str(), "frequency"),
            (Measure::Monetary, self.monetary.as_str(), "monetary"),
        ]
    }

    fn params(&self) -> Result<RfmParams> {
        if !(rfm::MIN_BINS..=rfm::MAX_BINS).contains(&self.bins) {
            return Err(Error::config(
                "bins",
                format!("bins must be 3, 4 or 5, got {}", self.bins),
            ));
        }
        let mut p = RfmParams::new(self.bins).ties(match self.ties {
            TiesConfig::First => Ties::First,
            TiesConfig::Shared => Ties::Shared,
        });
        for (m, cuts) in [
            (Measure::Recency, &self.thresholds.recency),
            (Measure::Frequency, &self.thresholds.frequency),
            (Measure::Monetary, &self.thresholds.monetary),
        ] {
            if let Some(c) = cuts {
                rfm::check_cuts(m, c, self.bins).map_err(|e| {
                    Error::config(&format!("thresholds.{}", m.name()), e.to_string())
                })?;
                p = p.thresholds(m, c.clone());
            }
        }
        Ok(p)
    }

    fn map(&self) -> Result<SegmentMap> {
        let Some(list) = &self.segments else {
            if self.default.is_some() {
                return Err(Error::config(
                    "default",
                    "`default` names the segment for scores that no listed segment matches, so it needs `segments:`; the standard map already names every combination",
                ));
            }
            return SegmentMap::standard(self.bins)
                .map_err(|e| Error::config("bins", e.to_string()));
        };
        let rules = list
            .iter()
            .map(|s| ScoreRule {
                name: s.name.clone(),
                r: s.r.map(|[a, b]| (a, b)),
                f: s.f.map(|[a, b]| (a, b)),
                m: s.m.map(|[a, b]| (a, b)),
                fm: s.fm.map(|[a, b]| (a, b)),
            })
            .collect();
        SegmentMap::custom(rules, self.default.clone(), self.bins).map_err(|e| match e {
            RfmError::Segment {
                index,
                field,
                message,
            } => {
                if index == list.len() {
                    Error::config("default", message)
                } else {
                    Error::config(&format!("segments.{index}.{field}"), message)
                }
            }
            RfmError::NoSegments => Error::config(
                "segments",
                "list at least one segment, or leave `segments` out for the standard map",
            ),
            RfmError::DefaultClash(_) => Error::config("default", e.to_string()),
            other => Error::config("segments", other.to_string()),
        })
    }
}

impl Component for Rfm {
    const NAME: &'static str = "rfm";
    const STAGE: Stage = Stage::Segment;

    fn ports() -> Ports {
        Ports::new(Stage::Segment, 1, 1)
            .inputs_doc("one row per customer with recency, frequency and monetary columns, e.g. customer_features")
            .outputs(&[
                (
                    "assignments",
                    "key, segment_id, segment, r_score, f_score, m_score, fm_score, rfm_score (text such as \"545\")",
                ),
                (
                    "model",
                    "one row per segment: score ranges (null for the default), size, share, and the members' value ranges in original units",
                ),
                (
                    "thresholds",
                    "one row per measure and score: the interval (lower, upper] in original units, method (quantile or fixed), customers, observed min and max",
                ),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        let key = require_column(schema, &self.key, "key", &[])?.clone();
        for (_, column, field) in self.columns() {
            require_column(schema, column, field, NUMERIC)?;
        }
        self.params()?;
        self.map()?;
        Ok(Outputs::new()
            .port("assignments", assignments_schema(&key))
            .port("model", model_schema())
            .port("thresholds", thresholds_schema()))
    }

    fn run(&self, mut inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let params = self.params()?;
        let map = self.map()?;
        let batch = inputs.remove(0).value.concat()?;
        let n = batch.num_rows();
        let mut values = Vec::with_capacity(3);
        for (_, column, field) in self.columns() {
            values.push(numeric_column(&batch, column, field)?);
        }
        let s = rfm::score(&values[0], &values[1], &values[2], &params)
            .map_err(|e| Error::new(e.to_string()))?;
        let names = map.names();
        let k = names.len();

        let mut ids = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        let mut text = Vec::with_capacity(n);
        let mut size = vec![0i64; k];
        let mut vmin = vec![[f64::INFINITY; 3]; k];
        let mut vmax = vec![[f64::NEG_INFINITY; 3]; k];
        for i in 0..n {
            let (r, f, m) = (
                s.recency.scores[i],
                s.frequency.scores[i],
                s.monetary.scores[i],
            );
            let id = map.assign(r, f, m);
            ids.push(id as i32);
            labels.push(names[id]);
            text.push(format!("{r}{f}{m}"));
            size[id] += 1;
            for (j, v) in values.iter().enumerate() {
                vmin[id][j] = vmin[id][j].min(v[i]);
                vmax[id][j] = vmax[id][j].max(v[i]);
            }
        }
        let score_col = |v: &[u8]| -> ArrayRef {
            Arc::new(Int32Array::from(
                v.iter().map(|&x| x as i32).collect::<Vec<_>>(),
            ))
        };
        let assignments = assignments_batch(
            assignments_schema,
            &batch,
            &self.key,
            ids,
            labels,
            vec![
                score_col(&s.recency.scores),
                score_col(&s.frequency.scores),
                score_col(&s.monetary.scores),
                score_col(&s.fm),
                Arc::new(StringArray::from(text)),
            ],
        )?;

        // The model: one row per segment (the default last).
        let rules = map.rules();
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from((0..k as i32).collect::<Vec<_>>())),
            Arc::new(StringArray::from(names.clone())),
        ];
        for p in RANGE_PARTS {
            let range = |id: usize| rules.get(id).map(|r| r.range(p, map.bins()));
            cols.push(Arc::new(Int32Array::from(
                (0..k)
                    .map(|id| range(id).map(|x| x.0 as i32))
                    .collect::<Vec<_>>(),
            )));
            cols.push(Arc::new(Int32Array::from(
                (0..k)
                    .map(|id| range(id).map(|x| x.1 as i32))
                    .collect::<Vec<_>>(),
            )));
        }
        cols.push(Arc::new(Int64Array::from(size.clone())));
        cols.push(Arc::new(Float64Array::from(
            size.iter()
                .map(|&c| (n > 0).then(|| c as f64 / n as f64))
                .collect::<Vec<_>>(),
        )));
        for j in 0..3 {
            let pick = |v: &[[f64; 3]]| -> ArrayRef {
                Arc::new(Float64Array::from(
                    (0..k)
                        .map(|id| (size[id] > 0).then(|| v[id][j]))
                        .collect::<Vec<_>>(),
                ))
            };
            cols.push(pick(&vmin));
            cols.push(pick(&vmax));
        }
        let model = RecordBatch::try_new(model_schema(), cols)?;

        // Thresholds in original units, per measure and score.
        let mut t_measure = Vec::new();
        let mut t_score = Vec::new();
        let mut t_method = Vec::new();
        let mut t_lower = Vec::new();
        let mut t_upper = Vec::new();
        let mut t_count = Vec::new();
        let mut t_min = Vec::new();
        let mut t_max = Vec::new();
        let mut facts_thresholds = serde_json::Map::new();
        for ms in s.measures() {
            let method = if ms.fixed { "fixed" } else { "quantile" };
            for st in &ms.per_score {
                t_measure.push(ms.measure.name());
                t_score.push(st.score as i32);
                t_method.push(method);
                t_lower.push(st.lower);
                t_upper.push(st.upper);
                t_count.push(st.count as i64);
                t_min.push(st.min);
                t_max.push(st.max);
            }
            facts_thresholds.insert(
                ms.measure.name().to_string(),
                serde_json::json!({"method": method, "cuts": ms.cuts}),
            );
        }
        let thresholds = RecordBatch::try_new(
            thresholds_schema(),
            vec![
                Arc::new(StringArray::from(t_measure)),
                Arc::new(Int32Array::from(t_score)),
                Arc::new(StringArray::from(t_method)),
                Arc::new(Float64Array::from(t_lower)),
                Arc::new(Float64Array::from(t_upper)),
                Arc::new(Int64Array::from(t_count)),
                Arc::new(Float64Array::from(t_min)),
                Arc::new(Float64Array::from(t_max)),
            ],
        )?;

        let unreachable: Vec<&str> = map.unreachable().into_iter().map(|i| names[i]).collect();
        if !unreachable.is_empty() {
            segflow_sdk::tracing::warn!(
                segments = ?unreachable,
                "these segments can never match: earlier segments take all their score combinations"
            );
        }
        ctx.fact("customers", n);
        ctx.fact("bins", self.bins);
        ctx.fact(
            "ties",
            match self.ties {
                TiesConfig::First => "first",
                TiesConfig::Shared => "shared",
            },
        );
        ctx.fact(
            "map",
            if self.segments.is_some() {
                "custom"
            } else {
                "standard"
            },
        );
        ctx.fact("thresholds", facts_thresholds);
        ctx.fact(
            "sizes",
            names
                .iter()
                .zip(&size)
                .map(|(name, c)| (name.to_string(), serde_json::json!(c)))
                .collect::<serde_json::Map<_, _>>(),
        );
        ctx.fact("unreachable_segments", &unreachable);
        segflow_sdk::tracing::info!(customers = n, bins = self.bins, "RFM scored");
        Ok(Outputs::new()
            .port("assignments", Table::from_batch(assignments))
            .port("model", Table::from_batch(model))
            .port("thresholds", Table::from_batch(thresholds)))
    }
}
