//! An example vendor plugin for segflow, built out of tree against `segflow-sdk` only:
//! the `lookalike` segment component.
//!
//! Given per-customer features and a *seed* (the customers you already like: a segment
//! of an upstream segmentation, or a boolean column), it scores every other customer by
//! how close they are to the seed and labels the closest ones `lookalike`.
//!
//! Method:
//! 1. Each feature is standardised over all rows (z = (x - mean) / std; a constant
//!    feature is left out of the distance; a missing value counts as the mean, z = 0).
//! 2. A non-member's *distance* is the mean Euclidean distance (in z units) to its `k`
//!    nearest seed members (k-NN, exact); `k: 0` means the distance to the seed centroid
//!    instead. Its *score* is `1 / (1 + distance)`, in (0, 1], higher is more alike.
//! 3. Non-members in the top `top_share` by score (or, with `min_score`, those scoring at
//!    least that) are `lookalike` (segment_id 1), the rest `other` (2). Seed members are
//!    `seed` (0) with score 1 and distance 0.

use segflow_sdk::arrow::array::{Array, BooleanArray, Float64Array, Int32Array, StringArray};
use segflow_sdk::arrow::compute::cast;
use segflow_sdk::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;

/// Lookalike scoring: rank the customers outside a seed group by their similarity to it
/// (mean distance to the `k` nearest seed members in standardised feature space) and
/// label the most similar `lookalike`. Inputs: the features table, and either the
/// assignments of an upstream segmentation (`needs: [features, seg.assignments]`, with
/// `seed:` naming the segment) or a boolean `seed_column` in the features table.
#[derive(Debug, Deserialize, JsonSchema)]
// The SDK re-exports serde and schemars: point the derives at them, so the crate needs
// no dependency besides segflow-sdk.
#[serde(crate = "segflow_sdk::serde", deny_unknown_fields)]
#[schemars(crate = "segflow_sdk::schemars")]
pub struct Lookalike {
    /// Column identifying the customer (in both inputs).
    #[serde(default = "default_key")]
    pub key: String,
    /// Numeric feature columns that define similarity.
    #[schemars(length(min = 1))]
    pub features: Vec<String>,
    /// With two inputs: the `segment` label in the second input's assignments whose
    /// members are the seed.
    #[serde(default)]
    pub seed: Option<String>,
    /// With one input: a Boolean column of the features table, true for seed members.
    #[serde(default)]
    pub seed_column: Option<String>,
    /// Nearest seed members averaged per customer; 0 = distance to the seed centroid.
    #[serde(default = "default_k")]
    pub k: usize,
    /// Share of non-members labelled `lookalike`, the highest scores first.
    #[serde(default = "default_top_share")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub top_share: f64,
    /// Label non-members scoring at least this `lookalike` instead of using `top_share`.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_score: Option<f64>,
}

fn default_key() -> String {
    "customer_id".into()
}
fn default_k() -> usize {
    5
}
fn default_top_share() -> f64 {
    0.1
}

/// Segment ids and labels of the `assignments` port.
pub const SEED: (i32, &str) = (0, "seed");
pub const LOOKALIKE: (i32, &str) = (1, "lookalike");
pub const OTHER: (i32, &str) = (2, "other");

/// The result of [`score`]: per row its distance and score (seed members: 0 and 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub distance: Vec<f64>,
    pub score: Vec<f64>,
}

/// Standardise `columns` (one `Vec` per feature, `None` = missing) in place into z
/// scores; returns each feature's (mean, std). Constant features get std 0 and z 0.
pub fn standardise(columns: &[Vec<Option<f64>>]) -> (Vec<Vec<f64>>, Vec<(f64, f64)>) {
    let mut z = Vec::with_capacity(columns.len());
    let mut stats = Vec::with_capacity(columns.len());
    for col in columns {
        let vals: Vec<f64> = col
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let n = vals.len().max(1) as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let std = var.sqrt();
        stats.push((mean, std));
        z.push(
            col.iter()
                .map(|v| match v {
                    Some(v) if v.is_finite() && std > 0.0 => (v - mean) / std,
                    _ => 0.0,
                })
                .collect(),
        );
    }
    (z, stats)
}

/// Score every row against the seed rows (`is_seed`), on z-scored features
/// (`z[feature][row]`): mean distance to the `k` nearest seed members (0: to the seed
/// centroid), score `1 / (1 + distance)`.
pub fn score(z: &[Vec<f64>], is_seed: &[bool], k: usize) -> Scores {
    let n = is_seed.len();
    let seeds: Vec<usize> = (0..n).filter(|&i| is_seed[i]).collect();
    let dist = |a: usize, point: &dyn Fn(usize) -> f64| -> f64 {
        z.iter()
            .enumerate()
            .map(|(f, col)| (col[a] - point(f)).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let centroid: Vec<f64> = z
        .iter()
        .map(|col| seeds.iter().map(|&s| col[s]).sum::<f64>() / seeds.len().max(1) as f64)
        .collect();
    let mut distance = vec![0.0; n];
    let mut nearest: Vec<f64> = Vec::with_capacity(k);
    for i in 0..n {
        if is_seed[i] {
            continue;
        }
        distance[i] = if k == 0 || seeds.is_empty() {
            dist(i, &|f| centroid[f])
        } else {
            // The k smallest distances, kept sorted (k is small).
            nearest.clear();
            for &s in &seeds {
                let d = dist(i, &|f| z[f][s]);
                if nearest.len() < k || d < nearest[nearest.len() - 1] {
                    let at = nearest.partition_point(|&x| x <= d);
                    nearest.insert(at, d);
                    nearest.truncate(k);
                }
            }
            nearest.iter().sum::<f64>() / nearest.len() as f64
        };
    }
    let score = distance.iter().map(|d| 1.0 / (1.0 + d)).collect();
    Scores { distance, score }
}

/// Label rows: seed members `seed`; non-members `lookalike` when their score is at least
/// `min_score`, or (without it) when they are in the top `top_share` of non-members by
/// score (ties broken by row order); else `other`.
pub fn label(scores: &[f64], is_seed: &[bool], top_share: f64, min_score: Option<f64>) -> Vec<i32> {
    let mut ids: Vec<i32> = is_seed
        .iter()
        .map(|&s| if s { SEED.0 } else { OTHER.0 })
        .collect();
    match min_score {
        Some(t) => {
            for (i, id) in ids.iter_mut().enumerate() {
                if !is_seed[i] && scores[i] >= t {
                    *id = LOOKALIKE.0;
                }
            }
        }
        None => {
            let mut rest: Vec<usize> = (0..scores.len()).filter(|&i| !is_seed[i]).collect();
            rest.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            let take = (top_share.clamp(0.0, 1.0) * rest.len() as f64).round() as usize;
            for &i in &rest[..take] {
                ids[i] = LOOKALIKE.0;
            }
        }
    }
    ids
}

const NUMERIC: &[DataType] = &[
    DataType::Float64,
    DataType::Float32,
    DataType::Int64,
    DataType::Int32,
    DataType::Int16,
    DataType::Int8,
    DataType::UInt64,
    DataType::UInt32,
    DataType::UInt16,
    DataType::UInt8,
];

fn model_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("feature", DataType::Utf8, false),
        Field::new("mean", DataType::Float64, false),
        Field::new("std", DataType::Float64, false),
        Field::new("seed_mean", DataType::Float64, true),
    ]))
}

impl Lookalike {
    fn check(&self, inputs: &[Named<SchemaRef>]) -> Result<SchemaRef> {
        let features = &inputs
            .first()
            .ok_or_else(|| Error::new("needs the features table as its first input"))?
            .value;
        let key = require_column(features, &self.key, "key", &[])?.clone();
        if self.features.is_empty() {
            return Err(Error::config(
                "features",
                "list at least one feature column",
            ));
        }
        for (i, f) in self.features.iter().enumerate() {
            require_column(features, f, &format!("features.{i}"), NUMERIC)?;
        }
        if !(0.0..=1.0).contains(&self.top_share) {
            return Err(Error::config("top_share", "must be between 0 and 1"));
        }
        match (inputs.len(), &self.seed, &self.seed_column) {
            (2, Some(_), None) => {
                let seg = &inputs[1].value;
                require_column(seg, &self.key, "key", &[])?;
                require_column(seg, "segment", "seed", &[DataType::Utf8])?;
            }
            (1, None, Some(col)) => {
                require_column(features, col, "seed_column", &[DataType::Boolean])?;
            }
            (2, _, _) => {
                return Err(Error::config(
                    "seed",
                    "with two inputs (features, assignments) set `seed:` to the segment label whose members are the seed, and not `seed_column`",
                ))
            }
            _ => {
                return Err(Error::config(
                    "seed_column",
                    "with one input set `seed_column:` to a Boolean column marking the seed members (or add an upstream segmentation's assignments as the second input and set `seed:`)",
                ))
            }
        }
        Ok(Arc::new(Schema::new(vec![
            key,
            Field::new("segment_id", DataType::Int32, false),
            Field::new("segment", DataType::Utf8, false),
            Field::new("score", DataType::Float64, false),
            Field::new("distance", DataType::Float64, false),
        ])))
    }
}

fn as_strings(col: &dyn Array) -> Result<Vec<Option<String>>> {
    let s = cast(&col.slice(0, col.len()), &DataType::Utf8)?;
    let s = s
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::new("key column could not be read as text"))?;
    Ok(s.iter().map(|v| v.map(str::to_string)).collect())
}

impl Component for Lookalike {
    const NAME: &'static str = "lookalike";
    const STAGE: Stage = Stage::Segment;

    fn ports() -> Ports {
        Ports::new(Stage::Segment, 1, 2)
            .inputs_doc("the features table; optionally an upstream segmentation's assignments")
            .outputs(&[
                (
                    "assignments",
                    "key, segment_id, segment (seed/lookalike/other), score, distance",
                ),
                (
                    "model",
                    "per feature: mean and std used to standardise, and the seed's mean",
                ),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let assignments = self.check(inputs)?;
        Ok(Outputs::new()
            .port("assignments", assignments)
            .port("model", model_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let schemas: Vec<Named<SchemaRef>> = inputs
            .iter()
            .map(|t| Named {
                name: t.name.clone(),
                value: t.value.schema(),
            })
            .collect();
        let out_schema = self.check(&schemas)?;
        let mut inputs = inputs.into_iter();
        let batch = inputs
            .next()
            .map(|t| t.value.concat())
            .transpose()?
            .ok_or_else(|| Error::new("no input"))?;
        let n = batch.num_rows();
        let key = batch
            .column_by_name(&self.key)
            .ok_or_else(|| Error::config("key", "missing"))?
            .clone();
        let is_seed: Vec<bool> = if let Some(col) = &self.seed_column {
            let c = batch
                .column_by_name(col)
                .ok_or_else(|| Error::config("seed_column", "missing"))?;
            let b = c
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| Error::config("seed_column", "is not Boolean"))?;
            (0..n).map(|i| b.is_valid(i) && b.value(i)).collect()
        } else {
            let seed = self.seed.as_deref().unwrap_or_default();
            let seg = inputs
                .next()
                .map(|t| t.value.concat())
                .transpose()?
                .ok_or_else(|| Error::new("no assignments input"))?;
            let seg_keys = as_strings(
                seg.column_by_name(&self.key)
                    .ok_or_else(|| Error::config("key", "missing in assignments"))?
                    .as_ref(),
            )?;
            let labels = seg
                .column_by_name("segment")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
                .ok_or_else(|| {
                    Error::config("seed", "the assignments have no Utf8 `segment` column")
                })?;
            let members: HashSet<String> = seg_keys
                .into_iter()
                .zip(labels.iter())
                .filter(|(_, l)| *l == Some(seed))
                .filter_map(|(k, _)| k)
                .collect();
            if members.is_empty() {
                let mut have: Vec<&str> = labels
                    .iter()
                    .flatten()
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                have.sort();
                return Err(Error::config(
                    "seed",
                    format!(
                        "no customer is in segment `{seed}`; the assignments have: {}",
                        have.join(", ")
                    ),
                ));
            }
            as_strings(key.as_ref())?
                .into_iter()
                .map(|k| k.is_some_and(|k| members.contains(&k)))
                .collect()
        };
        let seeds = is_seed.iter().filter(|&&s| s).count();
        if seeds == 0 {
            return Err(Error::config(
                "seed_column",
                "no row is marked as a seed member",
            ));
        }
        let mut columns = Vec::with_capacity(self.features.len());
        for f in &self.features {
            let c = cast(
                batch
                    .column_by_name(f)
                    .ok_or_else(|| Error::config("features", format!("`{f}` missing")))?,
                &DataType::Float64,
            )?;
            let c = c
                .as_any()
                .downcast_ref::<Float64Array>()
                .cloned()
                .ok_or_else(|| Error::new("cast failed"))?;
            columns.push(c.iter().collect::<Vec<_>>());
        }
        let (z, stats) = standardise(&columns);
        let scores = score(&z, &is_seed, self.k);
        let ids = label(&scores.score, &is_seed, self.top_share, self.min_score);
        let names: Vec<&str> = ids
            .iter()
            .map(|&i| [SEED.1, LOOKALIKE.1, OTHER.1][i as usize])
            .collect();
        let lookalikes = ids.iter().filter(|&&i| i == LOOKALIKE.0).count();
        ctx.fact("seed_members", seeds);
        ctx.fact("lookalikes", lookalikes);
        ctx.fact("scored", n - seeds);
        segflow_sdk::tracing::info!(
            seeds,
            lookalikes,
            "scored {} customers against the seed",
            n - seeds
        );
        let assignments = RecordBatch::try_new(
            out_schema,
            vec![
                key,
                Arc::new(Int32Array::from(ids)),
                Arc::new(StringArray::from(names)),
                Arc::new(Float64Array::from(scores.score)),
                Arc::new(Float64Array::from(scores.distance)),
            ],
        )?;
        let seed_means: Vec<Option<f64>> = columns
            .iter()
            .map(|col| {
                let v: Vec<f64> = col
                    .iter()
                    .zip(&is_seed)
                    .filter(|(_, s)| **s)
                    .filter_map(|(v, _)| *v)
                    .collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            })
            .collect();
        let model = RecordBatch::try_new(
            model_schema(),
            vec![
                Arc::new(StringArray::from(self.features.clone())),
                Arc::new(Float64Array::from(
                    stats.iter().map(|s| s.0).collect::<Vec<_>>(),
                )),
                Arc::new(Float64Array::from(
                    stats.iter().map(|s| s.1).collect::<Vec<_>>(),
                )),
                Arc::new(Float64Array::from(seed_means)),
            ],
        )?;
        Ok(Outputs::new()
            .port("assignments", Table::from_batch(assignments))
            .port("model", Table::from_batch(model)))
    }
}

segflow_sdk::export_plugin!(name: "lookalike", components: [Lookalike]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardise_gives_zero_mean_unit_std_and_ignores_constants() {
        let (z, stats) = standardise(&[
            vec![Some(1.0), Some(2.0), Some(3.0), None],
            vec![Some(5.0); 4],
        ]);
        assert_eq!(stats[0].0, 2.0);
        assert!((z[0][0] + z[0][2]).abs() < 1e-12 && z[0][1] == 0.0 && z[0][3] == 0.0);
        assert!(z[1].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn nearest_rows_to_the_seed_score_highest() {
        // One feature: seed at 0 and 1; candidates at 2, 5 and 10.
        let z = vec![vec![0.0, 1.0, 2.0, 5.0, 10.0]];
        let seed = [true, true, false, false, false];
        let k1 = score(&z, &seed, 1);
        assert_eq!(k1.distance, vec![0.0, 0.0, 1.0, 4.0, 9.0]);
        assert_eq!(k1.score[2], 0.5);
        let k2 = score(&z, &seed, 2);
        assert_eq!(k2.distance[2], 1.5);
        let centroid = score(&z, &seed, 0);
        assert_eq!(centroid.distance[2], 1.5);
        assert_eq!(centroid.distance[4], 9.5);
        // More neighbours than seed members: all of them.
        assert_eq!(score(&z, &seed, 10).distance[2], 1.5);
    }

    #[test]
    fn labels_by_top_share_or_threshold() {
        let s = [1.0, 0.9, 0.5, 0.2, 0.1];
        let seed = [true, false, false, false, false];
        let by_share = label(&s, &seed, 0.5, None);
        assert_eq!(by_share, vec![0, 1, 1, 2, 2]);
        assert_eq!(label(&s, &seed, 0.0, None), vec![0, 2, 2, 2, 2]);
        assert_eq!(label(&s, &seed, 1.0, Some(0.4)), vec![0, 1, 1, 2, 2]);
    }

    #[test]
    fn plan_checks_columns_and_seed_settings() {
        let features: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Int64, false),
            Field::new("x", DataType::Float64, true),
            Field::new("vip", DataType::Boolean, true),
        ]));
        let one = [Named {
            name: "f".into(),
            value: features.clone(),
        }];
        let cfg = |j: &str| -> Lookalike { segflow_sdk::serde_json::from_str(j).unwrap() };
        let ok = cfg(r#"{"features":["x"],"seed_column":"vip"}"#)
            .plan(&one)
            .unwrap();
        assert_eq!(ok.0[0].value.field(3).name(), "score");
        let err = cfg(r#"{"features":["y"],"seed_column":"vip"}"#)
            .plan(&one)
            .unwrap_err();
        assert!(
            err.message().contains("`y` is not in the input"),
            "{}",
            err.message()
        );
        let err = cfg(r#"{"features":["x"],"seed":"vip"}"#)
            .plan(&one)
            .unwrap_err();
        assert!(err.message().contains("seed_column"), "{}", err.message());
    }
}
