//! The `dbscan` component.

use crate::features::{
    assignments_batch, assignments_head_fields, centre_columns, check_columns, cluster_label,
    matrix, model_head_fields, size_order, standardize,
};
use segflow_ml::dbscan::{fit, k_distances, DbscanParams, KDistances};
use segflow_sdk::arrow::array::{BooleanArray, Float64Array, Int32Array, Int64Array, StringArray};
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// The `segment_id` of noise rows.
pub const NOISE_ID: i32 = -1;
/// The `segment` label of noise rows.
pub const NOISE: &str = "noise";
/// Points of the k-distance curve kept in the facts (and given to Kneedle).
const CURVE_POINTS: usize = 101;

/// Density-based clustering (DBSCAN, scikit-learn's definitions): a customer with at
/// least `min_samples` customers (itself included) within distance `eps` is a core
/// customer; core customers within `eps` of each other share a segment, together with
/// the customers within `eps` of them; everyone else is noise, the segment `noise`
/// with `segment_id` −1. The number of segments follows the data, segments may have
/// any shape, and outliers are not forced into a segment. The same segments as
/// scikit-learn's `DBSCAN`. Segments are numbered by size (segment 0 is the largest).
/// The facts hold the k-distance curve (each customer's distance to its
/// `min_samples`-th nearest neighbour) with a suggested `eps` at its knee.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dbscan {
    /// Numeric columns to cluster on, e.g. `[recency_days, frequency, monetary_sum]`.
    pub features: Vec<String>,
    /// Column identifying the customer, carried into `assignments`.
    #[serde(default = "default_key")]
    pub key: String,
    /// Scale each feature to mean 0 and standard deviation 1 before clustering; `eps`
    /// is then in standard deviations. A constant feature stays 0.
    #[serde(default = "yes")]
    pub standardize: bool,
    /// The neighbourhood radius (Euclidean, in the standardised space when
    /// `standardize` is on). The facts' `k_distance.suggested_eps` is a starting value.
    pub eps: f64,
    /// Neighbours within `eps`, the customer itself included, that make a core
    /// customer (scikit-learn's default 5). Larger values make denser, fewer segments
    /// and more noise.
    #[serde(default = "default_min_samples")]
    #[schemars(range(min = 1))]
    pub min_samples: usize,
    /// Refuse inputs with more rows than this: the cost grows faster than the rows
    /// (with the density, and steeply with many features). Use `minibatch_kmeans` for
    /// larger inputs, or sample them upstream.
    #[serde(default = "default_max_rows")]
    #[schemars(range(min = 1))]
    pub max_rows: usize,
    /// Rows whose k-distance the facts' curve is computed for (a fixed-seed uniform
    /// sample, each measured against all rows; all rows when there are fewer). 0
    /// skips the curve.
    #[serde(default = "default_k_distance_sample")]
    pub k_distance_sample: usize,
}

fn default_key() -> String {
    "customer_id".into()
}
fn yes() -> bool {
    true
}
fn default_min_samples() -> usize {
    5
}
fn default_max_rows() -> usize {
    1_000_000
}
fn default_k_distance_sample() -> usize {
    20_000
}

fn assignments_schema(key: &Field) -> SchemaRef {
    let mut fields = assignments_head_fields(key);
    fields.push(Field::new("core", DataType::Boolean, false));
    fields.push(Field::new("distance", DataType::Float64, true));
    Arc::new(Schema::new(fields))
}

fn model_schema(features: &[String]) -> SchemaRef {
    let mut fields = model_head_fields();
    fields.push(Field::new("core_rows", DataType::Int64, false));
    fields.extend(
        features
            .iter()
            .map(|f| Field::new(f, DataType::Float64, false)),
    );
    Arc::new(Schema::new(fields))
}

impl Dbscan {
    fn check(&self) -> Result<DbscanParams> {
        for (i, f) in self.features.iter().enumerate() {
            if ["segment_id", "segment", "size", "core_rows"].contains(&f.as_str()) {
                return Err(Error::config(
                    &format!("features.{i}"),
                    format!(
                        "the feature `{f}` would clash with a column of `model`; rename it first"
                    ),
                ));
            }
        }
        if self.max_rows == 0 {
            return Err(Error::config("max_rows", "max_rows must be at least 1"));
        }
        if self.min_samples == 0 {
            return Err(Error::config(
                "min_samples",
                "min_samples must be at least 1 (the customer itself counts)",
            ));
        }
        DbscanParams::new(self.eps, self.min_samples).map_err(|_| {
            Error::config(
                "eps",
                format!("eps must be a number above 0, got {}", self.eps),
            )
        })
    }
}

/// The `k_distance` fact.
fn k_distance_fact(kd: &KDistances, eps: f64) -> serde_json::Value {
    let q = |p: f64| kd.quantile(p);
    let knee = kd.knee(CURVE_POINTS);
    serde_json::json!({
        "k": kd.k,
        "rows": kd.sorted.len(),
        "of_rows": kd.rows,
        "quantiles": {
            "0": q(0.0), "0.1": q(0.1), "0.25": q(0.25), "0.5": q(0.5), "0.75": q(0.75),
            "0.9": q(0.9), "0.95": q(0.95), "0.99": q(0.99), "1": q(1.0),
        },
        "curve": kd.curve(CURVE_POINTS).iter().map(|p| [p.0, p.1]).collect::<Vec<_>>(),
        "suggested_eps": knee.map(|k| k.eps),
        "knee_share": knee.map(|k| k.fraction),
        "knee_found": knee.map(|k| k.found),
        "core_share_at_eps": kd.fraction_within(eps),
    })
}

impl Component for Dbscan {
    const NAME: &'static str = "dbscan";
    const STAGE: Stage = Stage::Segment;

    fn ports() -> Ports {
        Ports::new(Stage::Segment, 1, 1)
            .inputs_doc("one row per customer with numeric features, e.g. customer_features")
            .outputs(&[
                (
                    "assignments",
                    "key, segment_id (−1 for noise), segment (`noise` for noise), core (a core customer or not), distance to the segment centre (null for noise)",
                ),
                (
                    "model",
                    "one row per segment and one for noise (segment_id −1): size, core rows, and the mean of each feature in original units",
                ),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        check_columns(schema, &self.key, &self.features)?;
        self.check()?;
        let key = schema.field_with_name(&self.key)?.clone();
        Ok(Outputs::new()
            .port("assignments", assignments_schema(&key))
            .port("model", model_schema(&self.features)))
    }

    fn run(&self, mut inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let params = self.check()?;
        let batch = inputs.remove(0).value.concat()?;
        let d = self.features.len();
        let n = batch.num_rows();
        if n == 0 {
            return Err(Error::new(
                "the input has no rows to cluster; check the upstream step",
            ));
        }
        if n > self.max_rows {
            return Err(Error::config(
                "max_rows",
                format!(
                    "the input has {n} rows, more than max_rows = {}; DBSCAN's cost grows faster than the rows. Use `minibatch_kmeans` for inputs this large, cluster a sample (filter or sample the rows upstream), or raise max_rows if the time is acceptable (docs/segment-dbscan.md has measured times)",
                    self.max_rows
                ),
            ));
        }
        let mut x = matrix(&batch, &self.features)?;
        let scaling = self.standardize.then(|| standardize(&mut x, d));
        let t = std::time::Instant::now();
        let res = ctx
            .pool()
            .install(|| fit(&x, d, &params))
            .map_err(|e| Error::new(e.to_string()))?;
        let seconds = t.elapsed().as_secs_f64();
        let k = res.n_clusters;

        // Centres (means) of the clusters and of the noise, in the clustering space.
        let mut sums = vec![0.0; (k + 1) * d];
        let mut sizes = vec![0usize; k + 1];
        let mut cores = vec![0usize; k + 1];
        let slot = |l: i32| if l < 0 { k } else { l as usize };
        for (i, &l) in res.labels.iter().enumerate() {
            let s = slot(l);
            sizes[s] += 1;
            cores[s] += usize::from(res.core[i]);
            for (c, v) in sums[s * d..(s + 1) * d]
                .iter_mut()
                .zip(&x[i * d..(i + 1) * d])
            {
                *c += v;
            }
        }
        let centres: Vec<f64> = sums
            .chunks_exact(d)
            .zip(&sizes)
            .flat_map(|(c, &m)| c.iter().map(move |v| v / m.max(1) as f64))
            .collect();

        // Number clusters by size, largest first (ties: scikit-learn's order).
        let (order, rank) = size_order(&sizes[..k]);
        let id_of = |l: i32| if l < 0 { NOISE_ID } else { rank[l as usize] };
        let name_of = |id: i32| {
            if id == NOISE_ID {
                NOISE.to_string()
            } else {
                cluster_label(id)
            }
        };
        let ids: Vec<i32> = res.labels.iter().map(|&l| id_of(l)).collect();
        let names: Vec<String> = ids.iter().map(|&i| name_of(i)).collect();
        let dist: Vec<Option<f64>> = res
            .labels
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                (l >= 0).then(|| {
                    let c = &centres[l as usize * d..(l as usize + 1) * d];
                    x[i * d..(i + 1) * d]
                        .iter()
                        .zip(c)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                        .sqrt()
                })
            })
            .collect();
        let assignments = assignments_batch(
            assignments_schema,
            &batch,
            &self.key,
            ids,
            names,
            vec![
                Arc::new(BooleanArray::from(res.core.clone())),
                Arc::new(Float64Array::from(dist)),
            ],
        )?;

        // Model: clusters by id, then the noise row when there is noise.
        let mut rows: Vec<(i32, usize)> = order
            .iter()
            .enumerate()
            .map(|(r, &j)| (r as i32, j))
            .collect();
        if sizes[k] > 0 {
            rows.push((NOISE_ID, k));
        }
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| name_of(r.0)).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| sizes[r.1] as i64).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| cores[r.1] as i64).collect::<Vec<_>>(),
            )),
        ];
        let slots: Vec<usize> = rows.iter().map(|r| r.1).collect();
        cols.extend(centre_columns(&slots, &centres, d, scaling.as_ref()));
        let model_batch = RecordBatch::try_new(model_schema(&self.features), cols)?;

        let core_rows = res.core.iter().filter(|&&c| c).count();
        let noise = sizes[k];
        ctx.fact("k", k);
        ctx.fact("features", &self.features);
        ctx.fact("eps", self.eps);
        ctx.fact("min_samples", self.min_samples);
        ctx.fact("rows", n);
        ctx.fact("noise_rows", noise);
        ctx.fact("noise_share", noise as f64 / n as f64);
        ctx.fact("core_rows", core_rows);
        ctx.fact("border_rows", n - noise - core_rows);
        ctx.fact("noise_segment_id", NOISE_ID);
        ctx.fact("sizes", order.iter().map(|&j| sizes[j]).collect::<Vec<_>>());
        if let Some((mean, sd)) = &scaling {
            ctx.fact("standardize", serde_json::json!({"mean": mean, "std": sd}));
        }
        let t = std::time::Instant::now();
        let kd = if self.k_distance_sample == 0 {
            serde_json::Value::Null
        } else {
            match ctx
                .pool()
                .install(|| k_distances(&x, d, self.min_samples, self.k_distance_sample, 0))
            {
                Ok(kd) => k_distance_fact(&kd, self.eps),
                Err(e) => {
                    segflow_sdk::tracing::warn!("no k-distance curve: {e}");
                    serde_json::Value::Null
                }
            }
        };
        let kd_seconds = t.elapsed().as_secs_f64();
        let suggested = kd.get("suggested_eps").and_then(|v| v.as_f64());
        ctx.fact("k_distance", kd);
        if k == 0 {
            segflow_sdk::tracing::warn!(
                eps = self.eps,
                min_samples = self.min_samples,
                suggested_eps = suggested,
                "every row is noise: no row has min_samples neighbours within eps; raise eps or lower min_samples (see the k_distance fact)"
            );
        } else if noise * 2 > n {
            segflow_sdk::tracing::warn!(
                noise_rows = noise,
                suggested_eps = suggested,
                "more than half the rows are noise; raise eps or lower min_samples (see the k_distance fact)"
            );
        }
        segflow_sdk::tracing::info!(
            clusters = k,
            noise_rows = noise,
            seconds,
            k_distance_seconds = kd_seconds,
            "DBSCAN fitted"
        );
        Ok(Outputs::new()
            .port("assignments", Table::from_batch(assignments))
            .port("model", Table::from_batch(model_batch)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_checks() {
        let c: Dbscan =
            serde_json::from_value(serde_json::json!({"eps": 0.4, "features": ["a"]})).unwrap();
        assert_eq!(
            (
                c.min_samples,
                c.max_rows,
                c.k_distance_sample,
                c.standardize
            ),
            (5, 1_000_000, 20_000, true)
        );
        assert!(c.check().is_ok());
        let field = |v: serde_json::Value| {
            serde_json::from_value::<Dbscan>(v)
                .unwrap()
                .check()
                .unwrap_err()
                .field()
                .map(str::to_string)
        };
        assert_eq!(
            field(serde_json::json!({"eps": 0.0, "features": ["a"]})).as_deref(),
            Some("eps")
        );
        assert_eq!(
            field(serde_json::json!({"eps": 1.0, "min_samples": 0, "features": ["a"]})).as_deref(),
            Some("min_samples")
        );
        assert_eq!(
            field(serde_json::json!({"eps": 1.0, "max_rows": 0, "features": ["a"]})).as_deref(),
            Some("max_rows")
        );
        assert_eq!(
            field(serde_json::json!({"eps": 1.0, "features": ["core_rows"]})).as_deref(),
            Some("features.0")
        );
        // eps is required.
        assert!(serde_json::from_value::<Dbscan>(serde_json::json!({"features": ["a"]})).is_err());
    }
}
