//! The `minibatch_kmeans` component: k-means for inputs too large to hold in memory.
//!
//! The input is read once, as a stream. The first `fit_rows` rows are buffered (their
//! Arrow batches and their feature matrix); the standardisation and the mini-batch
//! k-means model are fitted on them; then the `assignments` stream is produced lazily:
//! first the buffered rows, then every later input batch as the host pulls it, each
//! labelled with the fixed centres. Memory is bounded by the buffered rows, whatever
//! the length of the input.

use crate::features::{
    assignments_head_fields, centre_columns, check_columns, cluster_label, label_sizes, model_head,
    model_head_fields, size_order, standardize,
};
use crate::kmeans::InitMethod;
use segflow_ml::kmeans::{Init, Nearest};
use segflow_ml::minibatch::{fit, MiniBatchParams};
use segflow_sdk::arrow::array::{Float64Array, Int32Array, StringArray};
use segflow_sdk::arrow::compute::cast;
use segflow_sdk::arrow::error::ArrowError;
use segflow_sdk::prelude::*;
use segflow_sdk::HostHandle;
use std::sync::Arc;

/// Mini-batch k-means (Sculley 2010; scikit-learn's `MiniBatchKMeans`) for inputs past
/// memory or over about 10M rows: the same outputs as `kmeans`, but the input is
/// streamed. The model is learnt from the first `fit_rows` rows (k-means++ starts, then
/// `batch_size`-row mini-batches with per-centre learning rates, early stopping on the
/// smoothed inertia), then every row is assigned to the nearest of the fixed centres as
/// it streams through. The first `fit_rows` rows must be representative: shuffle
/// upstream if the input is sorted. Deterministic for a seed and input whatever the
/// thread count and batching. Segments are numbered by their size among the fitted rows
/// (segment 0 is the largest); standardisation, when on, is fitted on those rows too.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MiniBatchKMeans {
    /// Number of segments.
    #[schemars(range(min = 1))]
    pub k: usize,
    /// Numeric columns to cluster on, e.g. `[recency_days, frequency, monetary_sum]`.
    pub features: Vec<String>,
    /// Column identifying the customer, carried into `assignments`.
    #[serde(default = "default_key")]
    pub key: String,
    /// Scale each feature to mean 0 and standard deviation 1 (computed on the fitted
    /// rows) before clustering. A constant feature stays 0.
    #[serde(default = "yes")]
    pub standardize: bool,
    /// Rows read first and learnt from (all rows when the input is shorter). They are
    /// held in memory (about `8 × features` bytes per row plus the input's own columns);
    /// the rest of the input streams through.
    #[serde(default = "default_fit_rows")]
    #[schemars(range(min = 1))]
    pub fit_rows: usize,
    /// Rows per mini-batch.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// Most passes over the fitted rows (steps = `max_epochs × fit_rows / batch_size`).
    #[serde(default = "default_max_epochs")]
    #[schemars(range(min = 1))]
    pub max_epochs: usize,
    /// Stop after this many consecutive mini-batches without improvement of the
    /// smoothed inertia; `null` turns the rule off.
    #[serde(default = "default_no_improvement")]
    pub max_no_improvement: Option<usize>,
    /// Stop when a mini-batch moves the centres by at most `tol` × the mean feature
    /// variance (squared); 0 turns the rule off.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub tol: f64,
    /// Centres that received fewer than this fraction of the largest centre's rows are
    /// moved to random rows of the current mini-batch; 0 turns it off.
    #[serde(default = "default_ratio")]
    #[schemars(range(min = 0.0))]
    pub reassignment_ratio: f64,
    /// Starting centres.
    #[serde(default)]
    pub init: InitMethod,
    /// Initialisations (each on `init_size` random rows); the one with the lowest
    /// inertia on another `init_size` rows wins.
    #[serde(default = "default_n_init")]
    #[schemars(range(min = 1))]
    pub n_init: usize,
    /// Rows drawn for each initialisation; default `3 × batch_size` (at least `3k`).
    #[serde(default)]
    pub init_size: Option<usize>,
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
fn default_fit_rows() -> usize {
    1_000_000
}
fn default_batch_size() -> usize {
    1024
}
fn default_max_epochs() -> usize {
    100
}
fn default_no_improvement() -> Option<usize> {
    Some(10)
}
fn default_ratio() -> f64 {
    0.01
}
fn default_n_init() -> usize {
    3
}

fn assignments_schema(key: &Field) -> SchemaRef {
    let mut fields = assignments_head_fields(key);
    fields.push(Field::new("distance", DataType::Float64, false));
    Arc::new(Schema::new(fields))
}

fn model_schema(features: &[String]) -> SchemaRef {
    let mut fields = model_head_fields();
    fields.extend(
        features
            .iter()
            .map(|f| Field::new(f, DataType::Float64, false)),
    );
    Arc::new(Schema::new(fields))
}

/// Append the feature columns of `batch` to the row-major matrix `out`. `first_row` is
/// the batch's first row in the whole input, for error messages.
fn append_matrix(
    batch: &RecordBatch,
    features: &[String],
    first_row: usize,
    out: &mut Vec<f64>,
) -> std::result::Result<(), String> {
    let n = batch.num_rows();
    let d = features.len();
    let base = out.len();
    out.resize(base + n * d, 0.0);
    for (j, name) in features.iter().enumerate() {
        let col: ArrayRef = batch
            .column_by_name(name)
            .ok_or_else(|| format!("column `{name}` is missing"))?
            .clone();
        let col = cast(&col, &DataType::Float64).map_err(|e| e.to_string())?;
        let col = col
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or("cast to Float64 failed")?;
        for i in 0..n {
            let v = col.value(i);
            if col.is_null(i) || !v.is_finite() {
                let what = if col.is_null(i) {
                    "null".to_string()
                } else {
                    v.to_string()
                };
                return Err(format!(
                    "column `{name}` is {what} at row {}; segmenters need complete, finite features (add an `impute` or `validate` step before this one)",
                    first_row + i
                ));
            }
            out[base + i * d + j] = v;
        }
    }
    Ok(())
}

impl Component for MiniBatchKMeans {
    const NAME: &'static str = "minibatch_kmeans";
    const STAGE: Stage = Stage::Segment;

    fn ports() -> Ports {
        Ports::new(Stage::Segment, 1, 1)
            .inputs_doc("one row per customer with numeric features; streamed, any length")
            .outputs(&[
                (
                    "assignments",
                    "key, segment_id, segment, distance to the segment centre (streamed)",
                ),
                (
                    "model",
                    "one row per segment: size among the fitted rows and centre in original units",
                ),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        check_columns(schema, &self.key, &self.features)?;
        if self.fit_rows < self.k {
            return Err(Error::config(
                "fit_rows",
                format!(
                    "fit_rows = {} is fewer than k = {}; learn from at least k rows",
                    self.fit_rows, self.k
                ),
            ));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "batch_size must be at least 1"));
        }
        let key = schema.field_with_name(&self.key)?.clone();
        Ok(Outputs::new()
            .port("assignments", assignments_schema(&key))
            .port("model", model_schema(&self.features)))
    }

    fn run(&self, mut inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let mut input = inputs.remove(0).value;
        let in_schema = input.schema();
        let key_field = in_schema.field_with_name(&self.key)?.clone();
        let d = self.features.len();
        let k = self.k;

        // The rows to learn from: exactly the first `fit_rows` (a batch straddling the
        // boundary is split), so the model does not depend on the upstream batching.
        let mut head: Vec<RecordBatch> = Vec::new();
        let mut pending: Option<RecordBatch> = None;
        let mut x: Vec<f64> = Vec::new();
        let mut rows = 0usize;
        while rows < self.fit_rows {
            let Some(b) = input.next() else { break };
            let b = b?;
            let take = b.num_rows().min(self.fit_rows - rows);
            let part = b.slice(0, take);
            if take < b.num_rows() {
                pending = Some(b.slice(take, b.num_rows() - take));
            }
            append_matrix(&part, &self.features, rows, &mut x).map_err(Error::new)?;
            rows += take;
            head.push(part);
        }
        if rows == 0 {
            return Err(Error::new(
                "the input has no rows, so there is nothing to segment; check the upstream step",
            ));
        }
        if rows < k {
            return Err(Error::config(
                "k",
                format!(
                    "k = {k} but the input has only {rows} rows; lower k or check the upstream step"
                ),
            ));
        }
        let scaling = self.standardize.then(|| standardize(&mut x, d));
        let params = MiniBatchParams::new(k)
            .batch_size(self.batch_size)
            .max_epochs(self.max_epochs)
            .max_no_improvement(self.max_no_improvement)
            .tol(self.tol)
            .reassignment_ratio(self.reassignment_ratio)
            .init(match self.init {
                InitMethod::KMeansPlusPlus => Init::KMeansPlusPlus,
                InitMethod::Random => Init::Random,
            })
            .n_init(self.n_init)
            .init_size(self.init_size)
            .seed(self.seed);
        let t = std::time::Instant::now();
        let model = ctx
            .pool()
            .install(|| fit(&x, d, &params))
            .map_err(|e| Error::new(e.to_string()))?;

        // Number segments by size among the fitted rows, largest first (ties: lower
        // original index first).
        let fit_sizes = label_sizes(&model.labels, k);
        let empty = fit_sizes.iter().filter(|&&s| s == 0).count();
        if empty > 0 {
            segflow_sdk::tracing::warn!(
                empty,
                k,
                "{empty} of the {k} segments got none of the fitted rows: the input has fewer distinct rows than k; lower k"
            );
        }
        let (order, rank) = size_order(&fit_sizes);

        // The fitted rows' squared distances, before their matrix is dropped.
        let head_sq: Vec<f64> = x
            .chunks_exact(d)
            .zip(&model.labels)
            .map(|(row, &j)| {
                let c = &model.centroids[j as usize * d..(j as usize + 1) * d];
                row.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum()
            })
            .collect();
        drop(x);

        // Centres back in original units.
        let mut cols = model_head(&order, &fit_sizes);
        cols.extend(centre_columns(
            &order,
            &model.centroids,
            d,
            scaling.as_ref(),
        ));
        let model_batch = RecordBatch::try_new(model_schema(&self.features), cols)?;

        ctx.fact("k", k);
        ctx.fact("features", &self.features);
        ctx.fact("fit_rows", rows);
        ctx.fact("fit_inertia", model.inertia);
        ctx.fact("init_inertia", &model.init_inertia);
        ctx.fact("n_steps", model.n_steps);
        ctx.fact("n_epochs", model.n_epochs);
        ctx.fact("converged", model.converged);
        ctx.fact("ewa_inertia", model.ewa_inertia);
        ctx.fact("n_reassigned", model.n_reassigned);
        ctx.fact(
            "fit_sizes",
            order.iter().map(|&j| fit_sizes[j]).collect::<Vec<_>>(),
        );
        if let Some((mean, sd)) = &scaling {
            ctx.fact("standardize", serde_json::json!({"mean": mean, "std": sd}));
        }
        segflow_sdk::tracing::info!(
            k,
            fit_rows = rows,
            steps = model.n_steps,
            inertia = model.inertia,
            seconds = t.elapsed().as_secs_f64(),
            "mini-batch k-means fitted; assigning the stream"
        );

        let mut labels = model.labels.into_iter();
        let mut sq = head_sq.into_iter();
        let head: Vec<(RecordBatch, Vec<u32>, Vec<f64>)> = head
            .into_iter()
            .map(|b| {
                let n = b.num_rows();
                let l: Vec<u32> = labels.by_ref().take(n).collect();
                let s: Vec<f64> = sq.by_ref().take(n).collect();
                (b, l, s)
            })
            .collect();
        let stream = Assign {
            head: head.into_iter(),
            pending,
            rest: Some(input),
            nearest: Nearest::new(&model.centroids, k, d),
            rank,
            scaling,
            features: self.features.clone(),
            key: self.key.clone(),
            schema: assignments_schema(&key_field),
            host: ctx.handle(),
            rows: 0,
            sizes: vec![0; k],
            inertia: 0.0,
            x: Vec::new(),
        };
        let schema = stream.schema.clone();
        Ok(Outputs::new()
            .port("assignments", Table::from_iter(schema, stream))
            .port("model", Table::from_batch(model_batch)))
    }
}

/// The lazy `assignments` stream: the fitted rows, then the rest of the input.
struct Assign {
    head: std::vec::IntoIter<(RecordBatch, Vec<u32>, Vec<f64>)>,
    pending: Option<RecordBatch>,
    rest: Option<Table>,
    nearest: Nearest,
    rank: Vec<i32>,
    scaling: Option<(Vec<f64>, Vec<f64>)>,
    features: Vec<String>,
    key: String,
    schema: SchemaRef,
    host: HostHandle,
    rows: u64,
    /// Rows per segment (by segment id) and the inertia so far, row by row in order.
    sizes: Vec<i64>,
    inertia: f64,
    /// Scratch matrix for one batch.
    x: Vec<f64>,
}

impl Assign {
    fn emit(
        &mut self,
        batch: &RecordBatch,
        labels: &[u32],
        sq: &[f64],
    ) -> std::result::Result<RecordBatch, ArrowError> {
        let n = batch.num_rows();
        let mut ids = Vec::with_capacity(n);
        let mut names = Vec::with_capacity(n);
        let mut dist = Vec::with_capacity(n);
        for (&l, &s) in labels.iter().zip(sq) {
            let r = self.rank[l as usize];
            ids.push(r);
            names.push(cluster_label(r));
            dist.push(s.sqrt());
            self.sizes[r as usize] += 1;
            self.inertia += s;
        }
        self.rows += n as u64;
        self.host.progress(self.rows, 0, "rows");
        let key = batch
            .column_by_name(&self.key)
            .ok_or_else(|| ArrowError::SchemaError(format!("column `{}` is missing", self.key)))?
            .clone();
        RecordBatch::try_new(
            self.schema.clone(),
            vec![
                key,
                Arc::new(Int32Array::from(ids)),
                Arc::new(StringArray::from(names)),
                Arc::new(Float64Array::from(dist)),
            ],
        )
    }

    /// Label a batch that was not among the fitted rows.
    fn assign(&mut self, batch: RecordBatch) -> std::result::Result<RecordBatch, ArrowError> {
        let d = self.features.len();
        let mut x = std::mem::take(&mut self.x);
        x.clear();
        append_matrix(&batch, &self.features, self.rows as usize, &mut x)
            .map_err(ArrowError::ComputeError)?;
        if let Some((mean, sd)) = &self.scaling {
            for row in x.chunks_exact_mut(d) {
                for ((v, m), s) in row.iter_mut().zip(mean).zip(sd) {
                    *v = (*v - m) / s;
                }
            }
        }
        let n = batch.num_rows();
        let mut labels = vec![0u32; n];
        let mut sq = vec![0.0; n];
        self.nearest.assign(&x, &mut labels, &mut sq);
        self.x = x;
        self.emit(&batch, &labels, &sq)
    }

    fn finish(&mut self) {
        self.host.fact("rows", self.rows);
        self.host.fact("inertia", self.inertia);
        self.host.fact("sizes", &self.sizes);
        segflow_sdk::tracing::info!(
            rows = self.rows,
            inertia = self.inertia,
            "mini-batch k-means: every row assigned"
        );
    }
}

impl Iterator for Assign {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some((b, l, s)) = self.head.next() {
            return Some(self.emit(&b, &l, &s));
        }
        if let Some(b) = self.pending.take() {
            return Some(self.assign(b));
        }
        let rest = self.rest.as_mut()?;
        loop {
            match rest.next() {
                Some(Ok(b)) if b.num_rows() == 0 => continue,
                Some(Ok(b)) => return Some(self.assign(b)),
                Some(Err(e)) => return Some(Err(e)),
                None => {
                    self.rest = None;
                    self.finish();
                    return None;
                }
            }
        }
    }
}
