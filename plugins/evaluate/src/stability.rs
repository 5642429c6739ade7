//! The `stability` component.

use crate::common::{metrics_schema, Metrics};
use crate::inputs::{self, segmentation_name};
use crate::validity::default_key;
use segflow_ml::metrics::adjusted_rand_index;
use segflow_ml::stability::{
    best_jaccard, resample_indices, ClusterwiseStability, Resampling, StabilityError,
};
use segflow_sdk::arrow::array::{AsArray, Float64Array, Int32Array, Int64Array, UInt64Array};
use segflow_sdk::arrow::compute::{cast, take_record_batch};
use segflow_sdk::arrow::datatypes::Int64Type;
use segflow_sdk::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// How resamples are drawn.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// `fraction` of the customers, without replacement.
    #[default]
    Subsample,
    /// As many customers as there are, with replacement (duplicates go to the
    /// segmenter as repeated rows; the comparison uses each customer drawn once).
    Bootstrap,
}

/// Mean Jaccard below which Hennig (2007) says a segment should not be trusted.
const TRUST_BELOW: f64 = 0.6;

/// How stable a segmentation is under resampling: re-fit the segmenter on resampled
/// customers and compare the new segments with the original ones on the customers
/// drawn. Reports the adjusted Rand index (whole segmentation) and, per original
/// segment, the best Jaccard index against the re-fitted segments (Hennig 2007,
/// clusterwise stability, as R's `fpc::clusterboot`).
///
/// `needs:` the features table the segmenter was fitted on and the segmentation to
/// assess (that segmenter's `assignments`), joined on `key`. Each resample draws
/// customers of the segmentation (seeded, so the same seed gives the same output at
/// any thread count), runs `segmenter` with `with` on their feature rows through the
/// host — any loaded component, vendor segmenters included — and reads its
/// `assignments`. Resamples run one after another; the segmenter uses the step's
/// threads. Reading the mean Jaccard (Hennig): below 0.5 the segment dissolves, below
/// 0.6 it should not be trusted, 0.75 or more is stable, above 0.85 highly stable.
/// DBSCAN's noise (-1) is compared as a segment like any other.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stability {
    /// The segmenter to re-fit: a component name (`kmeans`) or `library/component`.
    /// Normally the component of the step whose `assignments` are assessed.
    pub segmenter: String,
    /// The segmenter's config, passed through unchanged (normally a copy of that
    /// step's `with:`). Its key column must be `key`.
    #[serde(default)]
    pub with: serde_json::Map<String, serde_json::Value>,
    /// Number of re-fits.
    #[serde(default = "default_resamples")]
    #[schemars(range(min = 1))]
    pub resamples: usize,
    /// `subsample` (default: `fraction` of the customers, without replacement) or
    /// `bootstrap` (with replacement).
    #[serde(default)]
    pub method: Method,
    /// With `subsample`: the share of customers drawn each time (greater than 0, less
    /// than 1). Default 0.8.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// Seed of the resampling.
    #[serde(default)]
    pub seed: u64,
    /// Column identifying the customer in the features and the segmentation.
    #[serde(default = "default_key")]
    pub key: String,
}

fn default_resamples() -> usize {
    20
}

fn resamples_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("resample", DataType::Int32, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("segments", DataType::Int32, false),
        Field::new("ari", DataType::Float64, false),
    ]))
}

/// Key values of a column, comparable across tables.
enum Keys {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
}

impl Keys {
    fn read(batch: &RecordBatch, key: &str, what: &str) -> Result<Keys> {
        let col = batch.column_by_name(key).ok_or_else(|| {
            Error::config(
                "key",
                format!("{what} has no key column `{key}`; set `key` (and the segmenter's `key` in `with:`) to the customer column"),
            )
        })?;
        if col.data_type().is_integer() {
            let c = cast(col, &DataType::Int64)?;
            let c = c.as_primitive::<Int64Type>();
            Ok(Keys::Int(c.iter().collect()))
        } else {
            let c = cast(col, &DataType::Utf8)?;
            let c = c.as_string::<i32>();
            Ok(Keys::Text(
                c.iter().map(|v| v.map(str::to_string)).collect(),
            ))
        }
    }
}

/// The re-fitted label of each drawn row (`None`: the segmenter left it out).
fn refit_labels(
    features_keys: &Keys,
    drawn_rows: &[usize],
    assignments: &RecordBatch,
    key: &str,
    segmenter: &str,
) -> Result<Vec<Option<i32>>> {
    let what = format!("the `assignments` of `{segmenter}`");
    let ids = assignments.column_by_name("segment_id").ok_or_else(|| {
        Error::new(format!(
            "{what} have no `segment_id` column; `segmenter` must be a segment-stage component"
        ))
    })?;
    let ids = cast(ids, &DataType::Int32)?;
    let ids: &Int32Array = ids.as_primitive();
    let keys = Keys::read(assignments, key, &what)?;
    // Segmenters write one row per input row, in order: then no lookup is needed.
    let positional = assignments.num_rows() == drawn_rows.len()
        && match (features_keys, &keys) {
            (Keys::Int(f), Keys::Int(a)) => drawn_rows.iter().zip(a).all(|(&r, k)| f[r] == *k),
            (Keys::Text(f), Keys::Text(a)) => drawn_rows.iter().zip(a).all(|(&r, k)| f[r] == *k),
            _ => false,
        };
    if positional {
        return Ok(ids.iter().collect());
    }
    Ok(match (features_keys, &keys) {
        (Keys::Int(f), Keys::Int(a)) => {
            let mut m: HashMap<i64, Option<i32>> = HashMap::new();
            for (k, id) in a.iter().zip(ids.iter()) {
                if let Some(k) = k {
                    m.entry(*k).or_insert(id);
                }
            }
            drawn_rows
                .iter()
                .map(|&r| f[r].and_then(|k| m.get(&k).copied().flatten()))
                .collect()
        }
        (Keys::Text(f), Keys::Text(a)) => {
            let mut m: HashMap<&str, Option<i32>> = HashMap::new();
            for (k, id) in a.iter().zip(ids.iter()) {
                if let Some(k) = k {
                    m.entry(k.as_str()).or_insert(id);
                }
            }
            drawn_rows
                .iter()
                .map(|&r| f[r].as_deref().and_then(|k| m.get(k).copied().flatten()))
                .collect()
        }
        _ => {
            return Err(Error::config(
                "key",
                format!(
                    "{what} have a key `{key}` of another kind (integer vs text) than the features"
                ),
            ))
        }
    })
}

impl Stability {
    fn resampling(&self) -> Result<Resampling> {
        match (self.method, self.fraction) {
            (Method::Bootstrap, Some(_)) => Err(Error::config(
                "fraction",
                "`fraction` applies to `method: subsample` only; a bootstrap draws as many customers as there are, with replacement",
            )),
            (Method::Bootstrap, None) => Ok(Resampling::Bootstrap),
            (Method::Subsample, f) => {
                let f = f.unwrap_or(0.8);
                Resampling::subsample(f).map_err(|e| Error::config("fraction", e.to_string()))
            }
        }
    }

    fn check(&self) -> Result<Resampling> {
        if self.segmenter.trim().is_empty() {
            return Err(Error::config(
                "segmenter",
                "name the segmenter to re-fit, e.g. `kmeans` (the component of the step whose assignments are assessed)",
            ));
        }
        if self.resamples == 0 {
            return Err(Error::config("resamples", "resamples must be at least 1"));
        }
        self.resampling()
    }

    /// Turn a failed nested run into an error that says where to look.
    fn nested_error(&self, resample: usize, customers: usize, msg: &str) -> Error {
        let s = &self.segmenter;
        // The host's words for a component it cannot find (engine and test host).
        let unknown = msg.contains("no loaded library has a component")
            || msg.starts_with("no component")
            || msg.contains("is ambiguous");
        if unknown {
            Error::config(
                "segmenter",
                format!(
                    "stability cannot run segmenter `{s}`: {msg}. Set `segmenter:` to a loaded segment component (see `segflow plugins list`), e.g. `kmeans`, or `library/component` when two libraries have it"
                ),
            )
        } else {
            Error::config(
                "with",
                format!(
                    "re-fitting `{s}` on resample {} of {} ({customers} customers) failed: {msg}. `with:` is passed to `{s}` unchanged; check it against that component's config (normally a copy of the segmenting step's `with:`)",
                    resample + 1,
                    self.resamples
                ),
            )
        }
    }
}

impl Component for Stability {
    const NAME: &'static str = "stability";
    const STAGE: Stage = Stage::Evaluate;

    fn ports() -> Ports {
        Ports::new(Stage::Evaluate, 2, 2)
            .inputs_doc("the features table the segmenter was fitted on and the segmentation to assess (its assignments), joined on the key")
            .outputs(&[
                ("metrics", "long table: resamples, customers, ari_mean, ari_std, ari_min; per segment jaccard_mean, jaccard_min, jaccard_dissolved, jaccard_recovered"),
                ("resamples", "one row per re-fit: resample, customers compared, segments found, ari"),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let roles = inputs::roles(inputs, |s: &SchemaRef| s.clone(), &self.key)?;
        one_segmentation(&roles, inputs)?;
        self.check()?;
        Ok(Outputs::new()
            .port("metrics", metrics_schema())
            .port("resamples", resamples_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let method = self.check()?;
        let roles = inputs::roles(&inputs, |t: &Table| t.schema(), &self.key)?;
        one_segmentation(&roles, &inputs)?;
        let features_name = inputs[roles.features].name.clone();
        let joined = inputs::join(inputs, &self.key)?;
        let seg = &joined.segmentations[0];
        let features = &joined.features;
        let fkeys = Keys::read(features, &self.key, "the features table")?;
        let pos = seg.positions();
        let k = seg.segments.len();
        let m = seg.rows.len();
        let config = serde_json::Value::Object(self.with.clone());

        let mut stab = ClusterwiseStability::new(k);
        let mut aris = Vec::with_capacity(self.resamples);
        let mut out_customers = Vec::with_capacity(self.resamples);
        let mut out_segments = Vec::with_capacity(self.resamples);
        let mut left_out_total = 0usize;
        for r in 0..self.resamples {
            if ctx.is_cancelled() {
                return Err(Error::new("stopped: the run was cancelled"));
            }
            let drawn = resample_indices(m, method, self.seed, r as u64).map_err(|e| match e {
                StabilityError::TooFewRows { .. } => Error::new(format!(
                    "segmentation `{}` has {m} customer(s): {e}; assess a larger segmentation",
                    seg.name
                )),
                e => Error::config("fraction", e.to_string()),
            })?;
            let rows: Vec<usize> = drawn.iter().map(|&p| seg.rows[p]).collect();
            let subset = take_record_batch(
                features,
                &UInt64Array::from(rows.iter().map(|&x| x as u64).collect::<Vec<_>>()),
            )?;
            let ports = ctx
                .run_component(
                    &self.segmenter,
                    &config,
                    vec![Named {
                        name: features_name.clone(),
                        value: Table::from_batch(subset),
                    }],
                )
                .map_err(|e| self.nested_error(r, drawn.len(), e.message()))?;
            let names: Vec<String> = ports.iter().map(|p| p.name.clone()).collect();
            let assignments = ports
                .into_iter()
                .find(|p| p.name == "assignments")
                .ok_or_else(|| {
                    Error::config(
                        "segmenter",
                        format!(
                            "`{}` returned no `assignments` port (it returned: {}); `segmenter` must be a segment-stage component",
                            self.segmenter,
                            names.join(", ")
                        ),
                    )
                })?
                .value
                .concat()?;
            let refit = refit_labels(&fkeys, &rows, &assignments, &self.key, &self.segmenter)?;

            // Each customer once (bootstrap duplicates are adjacent), with both labels.
            let mut orig = Vec::with_capacity(drawn.len());
            let mut new = Vec::with_capacity(drawn.len());
            let mut prev = None;
            for (&p, l) in drawn.iter().zip(&refit) {
                if prev == Some(p) {
                    continue;
                }
                prev = Some(p);
                match l {
                    Some(l) => {
                        orig.push(pos[p] as u32);
                        new.push(*l);
                    }
                    None => left_out_total += 1,
                }
            }
            if orig.is_empty() {
                return Err(Error::new(format!(
                    "`{}` assigned none of the {} customers of resample {} to a segment; check its `assignments` and the `key`",
                    self.segmenter,
                    drawn.len(),
                    r + 1
                )));
            }
            let ari = adjusted_rand_index(&orig, &new).map_err(|e| Error::new(e.to_string()))?;
            let jac = best_jaccard(&orig, &new, k).map_err(|e| Error::new(e.to_string()))?;
            stab.add(&jac);
            let mut distinct = new.clone();
            distinct.sort_unstable();
            distinct.dedup();
            aris.push(ari);
            out_customers.push(orig.len() as i64);
            out_segments.push(distinct.len() as i32);
            ctx.progress((r + 1) as u64, self.resamples as u64, "resamples");
        }
        if left_out_total > 0 {
            segflow_sdk::tracing::warn!(
                customers = left_out_total,
                "the re-fitted assignments left some drawn customers out; they are not compared"
            );
        }

        let n = aris.len() as f64;
        let mean = aris.iter().sum::<f64>() / n;
        let std = (aris.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / n).sqrt();
        let min = aris.iter().copied().fold(f64::INFINITY, f64::min);
        let name = seg.name.as_str();
        let mut metrics = Metrics::default();
        metrics.push(name, "resamples", Some(n));
        metrics.push(name, "customers", Some(m as f64));
        metrics.push(name, "ari_mean", Some(mean));
        metrics.push(name, "ari_std", Some(std));
        metrics.push(name, "ari_min", Some(min));
        let summary = stab.summary();
        let mut jaccard = serde_json::Map::new();
        let mut untrusted = Vec::new();
        for ((_, label), s) in seg.segments.iter().zip(&summary) {
            let l = Some(label.as_str());
            metrics.push_segment(name, "jaccard_mean", l, s.mean);
            metrics.push_segment(name, "jaccard_min", l, s.min);
            metrics.push_segment(name, "jaccard_dissolved", l, s.dissolved);
            metrics.push_segment(name, "jaccard_recovered", l, s.recovered);
            metrics.push_segment(name, "jaccard_resamples", l, Some(s.resamples as f64));
            jaccard.insert(label.clone(), s.mean.into());
            if s.mean.is_some_and(|j| j < TRUST_BELOW) {
                untrusted.push(label.clone());
            }
        }
        if !untrusted.is_empty() {
            segflow_sdk::tracing::warn!(
                segmentation = name,
                segments = %untrusted.join(", "),
                "mean Jaccard below {TRUST_BELOW}: these segments do not survive resampling and should not be trusted (Hennig 2007)"
            );
        }
        ctx.fact("segmentation", name);
        ctx.fact("segmenter", &self.segmenter);
        ctx.fact(
            "method",
            match self.method {
                Method::Subsample => "subsample",
                Method::Bootstrap => "bootstrap",
            },
        );
        if let Resampling::Subsample { fraction } = method {
            ctx.fact("fraction", fraction);
        }
        ctx.fact("resamples", self.resamples);
        ctx.fact("seed", self.seed);
        ctx.fact("ari_mean", mean);
        ctx.fact("ari_std", std);
        ctx.fact("ari_min", min);
        ctx.fact("jaccard_mean", jaccard);
        ctx.fact("unstable_segments", untrusted);

        let resamples = RecordBatch::try_new(
            resamples_schema(),
            vec![
                Arc::new(Int32Array::from_iter_values(0..self.resamples as i32)),
                Arc::new(Int64Array::from(out_customers)),
                Arc::new(Int32Array::from(out_segments)),
                Arc::new(Float64Array::from(aris)),
            ],
        )?;
        Ok(Outputs::new()
            .port("metrics", Table::from_batch(metrics.finish()?))
            .port("resamples", Table::from_batch(resamples)))
    }
}

fn one_segmentation<T>(roles: &inputs::Roles, inputs: &[Named<T>]) -> Result<()> {
    if roles.segmentations.len() != 1 {
        let names: Vec<String> = roles
            .segmentations
            .iter()
            .map(|&i| format!("`{}`", segmentation_name(&inputs[i].name)))
            .collect();
        return Err(Error::new(format!(
            "stability assesses one segmentation, re-fitted with one segmenter, but `needs:` has {} ({}); use one stability step per segmentation",
            names.len(),
            names.join(", ")
        )));
    }
    Ok(())
}
