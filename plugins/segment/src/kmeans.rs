//! The `kmeans` component.

use crate::features::{
    assignments_batch, assignments_head_fields, centre_columns, check_columns, cluster_label,
    label_sizes, matrix, model_head, model_head_fields, size_order, standardize,
};
use crate::k_choice::{check_k, default_k_range, KChoice};
use segflow_ml::autok::{select_k, AutoKParams, Criterion, Selection};
use segflow_ml::kmeans::{fit, Algorithm, Init, KMeansParams};
use segflow_sdk::arrow::array::Float64Array;
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

/// How k-means iterates; every choice gives the same segments from the same start.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KMeansAlgorithm {
    /// Hamerly for k > 16 (or k > 8 with 64+ features), else Lloyd: the faster of the
    /// two as measured.
    #[default]
    Auto,
    /// Every row against every centre, every iteration.
    Lloyd,
    /// Hamerly's bounds: one upper and one lower bound per row skip rows whose centre
    /// cannot have changed. Pays off with many centres.
    Hamerly,
    /// Elkan's bounds: a lower bound per row and centre (`8·k` bytes per row).
    Elkan,
}

impl KMeansAlgorithm {
    fn algorithm(self) -> Algorithm {
        match self {
            KMeansAlgorithm::Auto => Algorithm::Auto,
            KMeansAlgorithm::Lloyd => Algorithm::Lloyd,
            KMeansAlgorithm::Hamerly => Algorithm::Hamerly,
            KMeansAlgorithm::Elkan => Algorithm::Elkan,
        }
    }
}

/// k-means clustering of customers on numeric features (Lloyd's algorithm, k-means++
/// starts, best of `n_init` restarts). Deterministic for a seed whatever the thread
/// count. Segments are numbered by size: segment 0 is the largest. Centres in `model`
/// are in the features' original units even when `standardize` is on. With `k: auto`
/// the number of segments is chosen from `k_range` by `k_criterion`, on a sample of
/// `k_sample` rows; the facts hold the whole curve and the reason.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KMeans {
    /// Number of segments, or `auto` to choose it from `k_range` by `k_criterion`.
    pub k: KChoice,
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
    /// Iteration: `lloyd`, `hamerly` or `elkan` (distance bounds skip rows whose centre
    /// cannot change: the same segments, faster with many centres), or `auto` (Hamerly
    /// for k > 16, or k > 8 with 64+ features; else Lloyd).
    #[serde(default)]
    pub algorithm: KMeansAlgorithm,
    /// Random seed: the same seed and data give the same segments.
    #[serde(default)]
    pub seed: u64,
    /// With `k: auto`: the smallest and largest k tried, `[low, high]` (low at least
    /// 2; 1 allowed for `elbow` and `gap`).
    #[serde(default = "default_k_range")]
    pub k_range: [usize; 2],
    /// With `k: auto`: what chooses k. `silhouette` (highest), `calinski_harabasz`
    /// (highest), `davies_bouldin` (lowest), `elbow` (the knee of the inertia curve,
    /// Kneedle) or `gap` (the gap statistic, Tibshirani et al. 2001).
    #[serde(default)]
    pub k_criterion: KCriterion,
    /// With `k: auto`: each candidate k is fitted and scored on a seeded uniform sample
    /// of this many rows (all rows when there are fewer); the chosen k is then fitted on
    /// all rows.
    #[serde(default = "default_k_sample")]
    #[schemars(range(min = 2))]
    pub k_sample: usize,
    /// With `k: auto`: the silhouette, whose cost grows with the square of the rows, is
    /// computed on this many rows of that sample (one seeded subset for every k, as
    /// scikit-learn's `silhouette_score(sample_size=)`).
    #[serde(default = "default_k_silhouette_sample")]
    #[schemars(range(min = 2))]
    pub k_silhouette_sample: usize,
    /// With `k_criterion: gap`: uniform reference data sets per k (B).
    #[serde(default = "default_gap_references")]
    #[schemars(range(min = 1))]
    pub k_gap_references: usize,
}

/// What chooses k when `k: auto`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KCriterion {
    /// The highest mean silhouette coefficient.
    #[default]
    Silhouette,
    /// The highest Calinski-Harabasz index (variance ratio).
    CalinskiHarabasz,
    /// The lowest Davies-Bouldin index.
    DaviesBouldin,
    /// The knee of the inertia curve (Kneedle, Satopää et al. 2011).
    Elbow,
    /// The gap statistic (Tibshirani, Walther & Hastie 2001).
    Gap,
}

impl KCriterion {
    fn criterion(self) -> Criterion {
        match self {
            KCriterion::Silhouette => Criterion::Silhouette,
            KCriterion::CalinskiHarabasz => Criterion::CalinskiHarabasz,
            KCriterion::DaviesBouldin => Criterion::DaviesBouldin,
            KCriterion::Elbow => Criterion::Elbow,
            KCriterion::Gap => Criterion::Gap,
        }
    }
}

fn default_k_sample() -> usize {
    20_000
}
fn default_k_silhouette_sample() -> usize {
    10_000
}
fn default_gap_references() -> usize {
    10
}

impl KMeans {
    /// Plan-time checks of `k` and the auto-k settings.
    fn check_k(&self) -> Result<[usize; 2]> {
        let c = self.k_criterion.criterion();
        let min_low = if matches!(c, Criterion::Elbow | Criterion::Gap) {
            1
        } else {
            2
        };
        if self.k_sample < 2 {
            return Err(Error::config("k_sample", "k_sample must be at least 2"));
        }
        if self.k_silhouette_sample < 2 {
            return Err(Error::config(
                "k_silhouette_sample",
                "k_silhouette_sample must be at least 2",
            ));
        }
        if self.k_gap_references == 0 {
            return Err(Error::config(
                "k_gap_references",
                "k_gap_references must be at least 1",
            ));
        }
        check_k(self.k, self.k_range, min_low, c.name())
    }

    /// The number of segments: the fixed `k`, or the one auto-k chooses on `x`.
    fn choose_k(
        &self,
        x: &[f64],
        d: usize,
        base: &KMeansParams,
        ctx: &mut Context,
    ) -> Result<usize> {
        let [lo, hi] = self.check_k()?;
        if let Some(k) = self.k.fixed() {
            return Ok(k);
        }
        let params = AutoKParams {
            k_min: lo,
            k_max: hi,
            criterion: self.k_criterion.criterion(),
            sample: self.k_sample,
            silhouette_sample: self.k_silhouette_sample,
            gap_references: self.k_gap_references,
            kmeans: base.clone(),
        };
        let t = std::time::Instant::now();
        let sel = ctx
            .pool()
            .install(|| select_k(x, d, &params))
            .map_err(|e| match e {
                segflow_ml::autok::AutoKError::TooFewRows { .. } => Error::config(
                    "k_range",
                    format!("{e}; lower the top of k_range or check the upstream step"),
                ),
                e => Error::new(e.to_string()),
            })?;
        segflow_sdk::tracing::info!(
            chosen = sel.chosen,
            criterion = sel.criterion.name(),
            sample_rows = sel.sample_rows,
            seconds = t.elapsed().as_secs_f64(),
            "auto-k: {}",
            sel.reason
        );
        ctx.fact("k_selection", selection_fact(&sel));
        Ok(sel.chosen)
    }
}

/// The `k_selection` fact.
fn selection_fact(s: &Selection) -> serde_json::Value {
    let curve: Vec<serde_json::Value> = s
        .curve
        .iter()
        .map(|p| {
            let mut v = serde_json::json!({
                "k": p.k,
                "inertia": p.inertia,
                "silhouette": p.silhouette,
                "calinski_harabasz": p.calinski_harabasz,
                "davies_bouldin": p.davies_bouldin,
            });
            if let (Some(g), Some(sd)) = (p.gap, p.gap_s) {
                v["gap"] = g.into();
                v["gap_s"] = sd.into();
            }
            v
        })
        .collect();
    serde_json::json!({
        "criterion": s.criterion.name(),
        "curve": curve,
        "chosen": s.chosen,
        "reason": s.reason,
        "sample_rows": s.sample_rows,
        "silhouette_rows": s.silhouette_rows,
        "rows": s.rows,
    })
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
        self.check_k()?;
        let key = schema.field_with_name(&self.key)?.clone();
        Ok(Outputs::new()
            .port("assignments", assignments_schema(&key))
            .port("model", model_schema(&self.features)))
    }

    fn run(&self, mut inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let batch = inputs.remove(0).value.concat()?;
        let d = self.features.len();
        let n = batch.num_rows();
        if n == 0 {
            return Err(Error::new(
                "the input has no rows, so there is nothing to segment; check the upstream step",
            ));
        }
        if let Some(k) = self.k.fixed().filter(|&k| n < k) {
            return Err(Error::config(
                "k",
                format!(
                    "k = {k} but the input has only {n} rows; lower k or check the upstream step"
                ),
            ));
        }
        let mut x = matrix(&batch, &self.features)?;
        let scaling = self.standardize.then(|| standardize(&mut x, d));
        let mut params = KMeansParams::new(1)
            .init(match self.init {
                InitMethod::KMeansPlusPlus => Init::KMeansPlusPlus,
                InitMethod::Random => Init::Random,
            })
            .n_init(self.n_init)
            .max_iter(self.max_iter)
            .tol(self.tol)
            .seed(self.seed)
            .algorithm(self.algorithm.algorithm());
        let k = self.choose_k(&x, d, &params, ctx)?;
        params.k = k;
        let model = ctx
            .pool()
            .install(|| fit(&x, d, &params))
            .map_err(|e| Error::new(e.to_string()))?;

        // Number segments by size, largest first (ties: lower original index first).
        let sizes = label_sizes(&model.labels, k);
        let empty = sizes.iter().filter(|&&s| s == 0).count();
        if empty > 0 {
            segflow_sdk::tracing::warn!(
                empty,
                k,
                "{empty} of the {k} segments got no customer: the input has fewer distinct rows than k; lower k"
            );
        }
        let (order, rank) = size_order(&sizes);

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
            names.push(cluster_label(rank[l as usize]));
            dist.push(sq.sqrt());
        }
        let assignments = assignments_batch(
            assignments_schema,
            &batch,
            &self.key,
            ids,
            names,
            vec![Arc::new(Float64Array::from(dist))],
        )?;

        // Centres back in original units.
        let mut cols = model_head(&order, &sizes);
        cols.extend(centre_columns(
            &order,
            &model.centroids,
            d,
            scaling.as_ref(),
        ));
        let model_batch = RecordBatch::try_new(model_schema(&self.features), cols)?;

        ctx.fact("k", k);
        ctx.fact("features", &self.features);
        ctx.fact("inertia", model.inertia);
        ctx.fact("inertia_per_init", &model.inertia_per_init);
        ctx.fact("n_iter", model.n_iter);
        ctx.fact("converged", model.converged);
        ctx.fact("n_iter_per_init", &model.n_iter_per_init);
        ctx.fact("converged_per_init", &model.converged_per_init);
        ctx.fact("algorithm", model.algorithm.name());
        ctx.fact("sizes", order.iter().map(|&j| sizes[j]).collect::<Vec<_>>());
        if let Some((mean, sd)) = &scaling {
            ctx.fact("standardize", serde_json::json!({"mean": mean, "std": sd}));
        }
        segflow_sdk::tracing::info!(
            k = k,
            inertia = model.inertia,
            iterations = model.n_iter,
            "k-means fitted"
        );
        Ok(Outputs::new()
            .port("assignments", Table::from_batch(assignments))
            .port("model", Table::from_batch(model_batch)))
    }
}
