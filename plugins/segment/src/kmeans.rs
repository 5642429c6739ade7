//! The `kmeans` component.

use crate::features::{check_columns, matrix, standardize};
use segflow_ml::kmeans::{fit, Init, KMeansParams};
use segflow_sdk::arrow::array::{Float64Array, Int32Array, Int64Array, StringArray};
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// How k-means picks its starting centres.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum InitMethod {
    /// Greedy k-means++ (spread-out starting centres; scikit-learn's default).
    #[default]
    KMeansPlusPlus,
    /// k distinct rows at random.
    Random,
}

/// k-means clustering of customers on numeric features (Lloyd's algorithm, k-means++
/// starts, best of `n_init` restarts). Deterministic for a seed whatever the thread
/// count. Segments are numbered by size: segment 0 is the largest. Centres in `model`
/// are in the features' original units even when `standardize` is on.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KMeans {
    /// Number of segments.
    #[schemars(range(min = 1))]
    pub k: usize,
    /// Numeric columns to cluster on, e.g. `[recency_days, frequency, monetary_sum]`.
    pub features: Vec<String>,
    /// Column identifying the customer, carried into `assignments`.
    #[serde(default = "default_key")]
    pub key: String,
    /// Scale each feature to mean 0 and standard deviation 1 before clustering (so a
    /// feature in dollars does not outweigh one in days). A constant feature stays 0.
    #[serde(default = "yes")]
    pub standardize: bool,
    /// Starting centres.
    #[serde(default)]
    pub init: InitMethod,
    /// Restarts from different starting centres; the lowest inertia wins.
    #[serde(default = "default_n_init")]
    #[schemars(range(min = 1))]
    pub n_init: usize,
    /// Most Lloyd iterations per restart.
    #[serde(default = "default_max_iter")]
    #[schemars(range(min = 1))]
    pub max_iter: usize,
    /// Stop when the squared centre shift is at most `tol` times the mean feature
    /// variance (scikit-learn's convention).
    #[serde(default = "default_tol")]
    #[schemars(range(min = 0.0))]
    pub tol: f64,
    /// Random seed: the same seed and data give the same segments.
    #[serde(default)]
    pub seed: u64,
}

fn default_key() -> String {
    "customer_id".into()
}
fn yes() -> bool {
    true
}
fn default_n_init() -> usize {
    10
}
fn default_max_iter() -> usize {
    300
}
fn default_tol() -> f64 {
    1e-4
}

fn assignments_schema(key: &Field) -> SchemaRef {
    Arc::new(Schema::new(vec![
        key.clone(),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("distance", DataType::Float64, false),
    ]))
}

fn model_schema(features: &[String]) -> SchemaRef {
    let mut fields = vec![
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("size", DataType::Int64, false),
    ];
    fields.extend(
        features
            .iter()
            .map(|f| Field::new(f, DataType::Float64, false)),
    );
    Arc::new(Schema::new(fields))
}

impl Component for KMeans {
    const NAME: &'static str = "kmeans";
    const STAGE: Stage = Stage::Segment;

    fn ports() -> Ports {
        Ports::new(Stage::Segment, 1, 1)
            .inputs_doc("one row per customer with numeric features, e.g. customer_features")
            .outputs(&[
                (
                    "assignments",
                    "key, segment_id, segment, distance to the segment centre",
                ),
                (
                    "model",
                    "one row per segment: size and centre in original units",
                ),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        check_columns(schema, &self.key, &self.features)?;
        let key = schema.field_with_name(&self.key)?.clone();
        Ok(Outputs::new()
            .port("assignments", assignments_schema(&key))
            .port("model", model_schema(&self.features)))
    }

    fn run(&self, mut inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let batch = inputs.remove(0).value.concat()?;
        let d = self.features.len();
        let n = batch.num_rows();
        if n < self.k {
            return Err(Error::config(
                "k",
                format!(
                    "k = {} but the input has only {n} rows; lower k or check the upstream step",
                    self.k
                ),
            ));
        }
        let mut x = matrix(&batch, &self.features)?;
        let scaling = self.standardize.then(|| standardize(&mut x, d));
        let params = KMeansParams::new(self.k)
            .init(match self.init {
                InitMethod::KMeansPlusPlus => Init::KMeansPlusPlus,
                InitMethod::Random => Init::Random,
            })
            .n_init(self.n_init)
            .max_iter(self.max_iter)
            .tol(self.tol)
            .seed(self.seed);
        let model = ctx
            .pool()
            .install(|| fit(&x, d, &params))
            .map_err(|e| Error::new(e.to_string()))?;

        // Number segments by size, largest first (ties: lower original index first).
        let mut sizes = vec![0i64; self.k];
        for &l in &model.labels {
            sizes[l as usize] += 1;
        }
        let mut order: Vec<usize> = (0..self.k).collect();
        order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
        let mut rank = vec![0i32; self.k];
        for (r, &j) in order.iter().enumerate() {
            rank[j] = r as i32;
        }
        let label = |r: i32| format!("cluster_{r}");

        let mut ids = Vec::with_capacity(n);
        let mut names = Vec::with_capacity(n);
        let mut dist = Vec::with_capacity(n);
        for (i, &l) in model.labels.iter().enumerate() {
            let c = &model.centroids[l as usize * d..(l as usize + 1) * d];
            let sq: f64 = x[i * d..(i + 1) * d]
                .iter()
                .zip(c)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            ids.push(rank[l as usize]);
            names.push(label(rank[l as usize]));
            dist.push(sq.sqrt());
        }
        let key_field = batch.schema().field_with_name(&self.key)?.clone();
        let key_col = batch
            .column_by_name(&self.key)
            .ok_or_else(|| Error::config("key", format!("column `{}` is missing", self.key)))?
            .clone();
        let assignments = RecordBatch::try_new(
            assignments_schema(&key_field),
            vec![
                key_col,
                Arc::new(Int32Array::from(ids)),
                Arc::new(StringArray::from(names)),
                Arc::new(Float64Array::from(dist)),
            ],
        )?;

        // Centres back in original units.
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from((0..self.k as i32).collect::<Vec<_>>())),
            Arc::new(StringArray::from(
                (0..self.k as i32).map(label).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                order.iter().map(|&j| sizes[j]).collect::<Vec<_>>(),
            )),
        ];
        for f in 0..d {
            let vals: Vec<f64> = order
                .iter()
                .map(|&j| {
                    let v = model.centroids[j * d + f];
                    match &scaling {
                        Some((mean, sd)) => v * sd[f] + mean[f],
                        None => v,
                    }
                })
                .collect();
            cols.push(Arc::new(Float64Array::from(vals)));
        }
        let model_batch = RecordBatch::try_new(model_schema(&self.features), cols)?;

        ctx.fact("k", self.k);
        ctx.fact("features", &self.features);
        ctx.fact("inertia", model.inertia);
        ctx.fact("inertia_per_init", &model.inertia_per_init);
        ctx.fact("n_iter", model.n_iter);
        ctx.fact("converged", model.converged);
        ctx.fact("sizes", order.iter().map(|&j| sizes[j]).collect::<Vec<_>>());
        if let Some((mean, sd)) = &scaling {
            ctx.fact("standardize", serde_json::json!({"mean": mean, "std": sd}));
        }
        segflow_sdk::tracing::info!(
            k = self.k,
            inertia = model.inertia,
            iterations = model.n_iter,
            "k-means fitted"
        );
        Ok(Outputs::new()
            .port("assignments", Table::from_batch(assignments))
            .port("model", Table::from_batch(model_batch)))
    }
}
