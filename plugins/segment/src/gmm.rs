//! The `gmm` component.

use crate::features::{
    assignments_batch, assignments_head_fields, check_columns, cluster_label, label_sizes, matrix,
    model_head, model_head_fields, size_order, standardize,
};
use crate::k_choice::{check_k, default_k_range, KChoice};
use segflow_ml::gmm::{self, Covariance, GmmModel, GmmParams, InfoCriterion};
use segflow_sdk::arrow::array::{Float64Array, StringArray};
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// The shape of each segment's covariance.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CovarianceType {
    /// A full covariance matrix per segment: tilted ellipsoids (features may correlate
    /// differently in each segment). `k·d(d+1)/2` parameters.
    #[default]
    Full,
    /// Per-feature variances only: axis-aligned ellipsoids. `k·d` parameters; cheaper
    /// and steadier with many features or small segments.
    Diag,
}

/// What chooses k when `k: auto`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GmmCriterion {
    /// The lowest Bayesian information criterion (favours fewer segments).
    #[default]
    Bic,
    /// The lowest Akaike information criterion.
    Aic,
}

/// Gaussian mixture model of customers on numeric features, fitted by EM from k-means
/// starts (best of `n_init`), with full or diagonal covariances — scikit-learn's
/// `GaussianMixture` conventions. Soft segments: each customer gets the most probable
/// segment and that probability. Deterministic for a seed whatever the thread count.
/// Segments are numbered by size (segment 0 is the largest); means and covariances in
/// `model` are in the features' original units even when `standardize` is on. With
/// `k: auto` every k of `k_range` is fitted and the lowest BIC (or AIC) wins.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gmm {
    /// Number of segments (mixture components), or `auto` to choose it from `k_range`
    /// by `k_criterion`.
    pub k: KChoice,
    /// Numeric columns to model, e.g. `[recency_days, frequency, monetary_sum]`.
    pub features: Vec<String>,
    /// Column identifying the customer, carried into `assignments`.
    #[serde(default = "default_key")]
    pub key: String,
    /// Scale each feature to mean 0 and standard deviation 1 before fitting. A constant
    /// feature stays 0 (its variance is then `reg_covar`).
    #[serde(default = "yes")]
    pub standardize: bool,
    /// `full` (default) or `diag` covariance per segment.
    #[serde(default)]
    pub covariance: CovarianceType,
    /// EM runs from different k-means starts; the highest final log-likelihood bound
    /// wins.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub n_init: usize,
    /// Most EM iterations per run.
    #[serde(default = "default_max_iter")]
    #[schemars(range(min = 1))]
    pub max_iter: usize,
    /// Stop when the mean log-likelihood per row changes by less than this.
    #[serde(default = "default_tol")]
    #[schemars(range(min = 0.0))]
    pub tol: f64,
    /// Added to the diagonal of every covariance (in the standardised space when
    /// `standardize` is on) so it stays invertible.
    #[serde(default = "default_reg_covar")]
    #[schemars(range(min = 0.0))]
    pub reg_covar: f64,
    /// Random seed: the same seed and data give the same segments.
    #[serde(default)]
    pub seed: u64,
    /// With `k: auto`: the smallest and largest k tried, `[low, high]`, 1 <= low <
    /// high.
    #[serde(default = "default_k_range")]
    pub k_range: [usize; 2],
    /// With `k: auto`: `bic` (default) or `aic`, lowest wins.
    #[serde(default)]
    pub k_criterion: GmmCriterion,
}

fn default_key() -> String {
    "customer_id".into()
}
fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn default_max_iter() -> usize {
    100
}
fn default_tol() -> f64 {
    1e-3
}
fn default_reg_covar() -> f64 {
    1e-6
}

fn assignments_schema(key: &Field) -> SchemaRef {
    let mut fields = assignments_head_fields(key);
    fields.push(Field::new("probability", DataType::Float64, false));
    Arc::new(Schema::new(fields))
}

fn variance_column(feature: &str) -> String {
    format!("{feature}_variance")
}

fn model_schema(features: &[String]) -> SchemaRef {
    let mut fields = model_head_fields();
    fields.push(Field::new("weight", DataType::Float64, false));
    fields.extend(
        features
            .iter()
            .map(|f| Field::new(f, DataType::Float64, false)),
    );
    fields.extend(
        features
            .iter()
            .map(|f| Field::new(variance_column(f), DataType::Float64, false)),
    );
    fields.push(Field::new("covariance", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

impl Gmm {
    fn check(&self) -> Result<[usize; 2]> {
        for (i, f) in self.features.iter().enumerate() {
            let v = variance_column(f);
            if self.features.contains(&v)
                || ["segment_id", "segment", "size", "weight", "covariance"].contains(&f.as_str())
            {
                return Err(Error::config(
                    &format!("features.{i}"),
                    format!(
                        "the feature `{f}` would clash with a column of `model`; rename it first"
                    ),
                ));
            }
        }
        check_k(self.k, self.k_range, 1, self.criterion().name())
    }

    fn criterion(&self) -> InfoCriterion {
        match self.k_criterion {
            GmmCriterion::Bic => InfoCriterion::Bic,
            GmmCriterion::Aic => InfoCriterion::Aic,
        }
    }

    fn params(&self, k: usize) -> GmmParams {
        GmmParams::new(k)
            .covariance(match self.covariance {
                CovarianceType::Full => Covariance::Full,
                CovarianceType::Diag => Covariance::Diag,
            })
            .n_init(self.n_init)
            .max_iter(self.max_iter)
            .tol(self.tol)
            .reg_covar(self.reg_covar)
            .seed(self.seed)
    }

    /// Fit the fixed k, or every k of the range keeping the best by BIC/AIC.
    fn fit(&self, x: &[f64], d: usize, n: usize, ctx: &mut Context) -> Result<GmmModel> {
        let [lo, hi] = self.check()?;
        let err = |e: gmm::GmmError| Error::new(e.to_string());
        if let Some(k) = self.k.fixed() {
            if n < k {
                return Err(Error::config(
                    "k",
                    format!("k = {k} but the input has only {n} rows; lower k or check the upstream step"),
                ));
            }
            let p = self.params(k);
            return ctx.pool().install(|| gmm::fit(x, d, &p)).map_err(err);
        }
        if n < hi {
            return Err(Error::config(
                "k_range",
                format!("k_range goes up to {hi} but the input has only {n} rows; lower the top of k_range"),
            ));
        }
        let c = self.criterion();
        let p = self.params(lo);
        let (model, curve) = ctx
            .pool()
            .install(|| gmm::select_k(x, d, &p, lo, hi, c))
            .map_err(err)?;
        let best = match c {
            InfoCriterion::Bic => model.bic(),
            InfoCriterion::Aic => model.aic(),
        };
        let reason = format!(
            "lowest {} ({best:.1}) of k = {lo}..{hi}, each fitted on all {n} rows",
            c.name().to_uppercase()
        );
        segflow_sdk::tracing::info!(chosen = model.k, criterion = c.name(), "auto-k: {reason}");
        ctx.fact(
            "k_selection",
            serde_json::json!({
                "criterion": c.name(),
                "curve": curve.iter().map(|p| serde_json::json!({
                    "k": p.k,
                    "bic": p.bic,
                    "aic": p.aic,
                    "log_likelihood": p.log_likelihood,
                    "converged": p.converged,
                })).collect::<Vec<_>>(),
                "chosen": model.k,
                "reason": reason,
            }),
        );
        Ok(model)
    }
}

impl Component for Gmm {
    const NAME: &'static str = "gmm";
    const STAGE: Stage = Stage::Segment;

    fn ports() -> Ports {
        Ports::new(Stage::Segment, 1, 1)
            .inputs_doc("one row per customer with numeric features, e.g. customer_features")
            .outputs(&[
                (
                    "assignments",
                    "key, segment_id, segment, probability (the membership probability of that segment)",
                ),
                (
                    "model",
                    "one row per segment: size, weight, mean and variance of each feature in original units, and the covariance matrix as JSON",
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
        let batch = inputs.remove(0).value.concat()?;
        let d = self.features.len();
        let n = batch.num_rows();
        if n == 0 {
            return Err(Error::new(
                "the input has no rows, so there is nothing to segment; check the upstream step",
            ));
        }
        let mut x = matrix(&batch, &self.features)?;
        let scaling = self.standardize.then(|| standardize(&mut x, d));
        let model = self.fit(&x, d, n, ctx)?;
        let k = model.k;

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

        let ids: Vec<i32> = model.labels.iter().map(|&l| rank[l as usize]).collect();
        let names: Vec<String> = ids.iter().map(|&r| cluster_label(r)).collect();
        let assignments = assignments_batch(
            assignments_schema,
            &batch,
            &self.key,
            ids,
            names,
            vec![Arc::new(Float64Array::from(model.probability.clone()))],
        )?;

        // Parameters back in original units: mean·sd + mean, covariance·sd_a·sd_b.
        let (shift, scale) = match &scaling {
            Some((m, s)) => (m.clone(), s.clone()),
            None => (vec![0.0; d], vec![1.0; d]),
        };
        let cov = |j: usize, a: usize, b: usize| -> f64 {
            let v = match model.covariance {
                Covariance::Full => model.covariances[j * d * d + a * d + b],
                Covariance::Diag if a == b => model.covariances[j * d + a],
                Covariance::Diag => 0.0,
            };
            v * scale[a] * scale[b]
        };
        let mut cols = model_head(&order, &sizes);
        cols.push(Arc::new(Float64Array::from(
            order.iter().map(|&j| model.weights[j]).collect::<Vec<_>>(),
        )));
        for f in 0..d {
            cols.push(Arc::new(Float64Array::from(
                order
                    .iter()
                    .map(|&j| model.means[j * d + f] * scale[f] + shift[f])
                    .collect::<Vec<_>>(),
            )));
        }
        for f in 0..d {
            cols.push(Arc::new(Float64Array::from(
                order.iter().map(|&j| cov(j, f, f)).collect::<Vec<_>>(),
            )));
        }
        let matrices: Vec<String> = order
            .iter()
            .map(|&j| {
                let m: Vec<Vec<f64>> = (0..d)
                    .map(|a| (0..d).map(|b| cov(j, a, b)).collect())
                    .collect();
                serde_json::to_string(&m).unwrap_or_default()
            })
            .collect();
        cols.push(Arc::new(StringArray::from(matrices)));
        let model_batch = RecordBatch::try_new(model_schema(&self.features), cols)?;

        ctx.fact("k", k);
        ctx.fact("features", &self.features);
        ctx.fact("covariance", model.covariance.name());
        ctx.fact("bic", model.bic());
        ctx.fact("aic", model.aic());
        ctx.fact("log_likelihood", model.log_likelihood());
        ctx.fact("mean_log_likelihood", model.mean_log_likelihood);
        ctx.fact("lower_bound", model.lower_bound);
        ctx.fact("lower_bound_per_init", &model.lower_bound_per_init);
        ctx.fact("n_parameters", model.n_parameters());
        ctx.fact("converged", model.converged);
        ctx.fact("n_iter", model.n_iter);
        ctx.fact("sizes", order.iter().map(|&j| sizes[j]).collect::<Vec<_>>());
        ctx.fact(
            "weights",
            order.iter().map(|&j| model.weights[j]).collect::<Vec<_>>(),
        );
        ctx.fact(
            "mean_probability",
            model.probability.iter().sum::<f64>() / n.max(1) as f64,
        );
        if let Some((mean, sd)) = &scaling {
            ctx.fact("standardize", serde_json::json!({"mean": mean, "std": sd}));
        }
        if !model.converged {
            segflow_sdk::tracing::warn!(
                max_iter = self.max_iter,
                "EM did not converge; raise max_iter or tol, or check for degenerate features"
            );
        }
        segflow_sdk::tracing::info!(
            k,
            bic = model.bic(),
            iterations = model.n_iter,
            "Gaussian mixture fitted"
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
        let g: Gmm = serde_json::from_value(serde_json::json!({
            "k": "auto", "features": ["a", "b"]
        }))
        .unwrap();
        assert_eq!(g.covariance, CovarianceType::Full);
        assert_eq!(
            (g.n_init, g.max_iter, g.tol, g.reg_covar),
            (1, 100, 1e-3, 1e-6)
        );
        assert_eq!(g.check().unwrap(), [2, 12]);
        let g: Gmm = serde_json::from_value(serde_json::json!({
            "k": 3, "features": ["a", "a_variance"], "covariance": "diag"
        }))
        .unwrap();
        assert_eq!(g.check().unwrap_err().field(), Some("features.0"));
        assert!(serde_json::from_value::<Gmm>(serde_json::json!({
            "k": 3, "features": ["a"], "covariance": "tied"
        }))
        .is_err());
    }
}
