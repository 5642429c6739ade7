//! The `validity` component, and the feature matrix and per-segmentation assessment
//! that `compare` reuses.

use crate::common::{metrics_schema, Metrics};
use crate::inputs::{self, is_numeric, Segmentation};
use segflow_ml::metrics::{self, MetricsError};
use segflow_ml::scale::{ScaleMethod, Scaler};
use segflow_sdk::prelude::*;

/// How the silhouette is computed: exactly below a size limit, on a seeded sample
/// above it (its cost grows with the square of the rows).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SilhouetteSampling {
    /// A segmentation with fewer customers than this gets the exact silhouette (every
    /// customer against every other); from this many on, a sample. `0` always samples.
    #[serde(default = "default_exact_below")]
    pub exact_below: usize,
    /// Customers in the sample, drawn uniformly without replacement; the sample's
    /// customers are compared with each other only, as scikit-learn's
    /// `silhouette_score(sample_size=...)`. When a segmentation has no more customers
    /// than this, the silhouette is exact.
    #[serde(default = "default_sample_size")]
    #[schemars(range(min = 2))]
    pub sample_size: usize,
    /// Seed of the sample: the same seed and data give the same silhouette.
    #[serde(default)]
    pub seed: u64,
}

impl Default for SilhouetteSampling {
    fn default() -> Self {
        SilhouetteSampling {
            exact_below: default_exact_below(),
            sample_size: default_sample_size(),
            seed: 0,
        }
    }
}

fn default_exact_below() -> usize {
    20_000
}
fn default_sample_size() -> usize {
    10_000
}
pub(crate) fn default_key() -> String {
    "customer_id".into()
}
pub(crate) fn yes() -> bool {
    true
}

impl SilhouetteSampling {
    pub(crate) fn check(&self, field: &str) -> Result<()> {
        if self.sample_size < 2 {
            return Err(Error::config(
                &format!("{field}.sample_size"),
                "the silhouette sample needs at least 2 customers",
            ));
        }
        Ok(())
    }
}

/// Internal validity of one or more segmentations, computed on numeric features:
/// silhouette, Calinski-Harabasz, Davies-Bouldin, and within- and between-segment
/// dispersion. Works for any segmentation — k-means, RFM grids, rule-based segments —
/// because it only needs each customer's segment and features.
///
/// `needs:` one per-customer features table (e.g. `customer_features`) and one or more
/// segmentations (segmenters' `assignments`), joined on `key`. Each segmentation is
/// assessed on its own customers. The values are scikit-learn's
/// (`silhouette_score`, `calinski_harabasz_score`, `davies_bouldin_score`, Euclidean
/// distance) on the features after z-scoring (`standardize`).
///
/// Caveats: a segmentation with a single segment (or one customer per segment) has no
/// silhouette, Calinski-Harabasz or Davies-Bouldin: they are null, with a warning.
/// DBSCAN's noise (`segment_id` -1) counts as one more segment, as scikit-learn treats
/// label -1; evaluate without it by filtering it out upstream. Customers with a missing
/// value in a listed feature are left out (counted in the facts, with a warning).
/// These indices reward compact, convex, well-separated groups; RFM and rule segments
/// are not built to maximise them, so compare like with like.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Validity {
    /// Column identifying the customer in the features and the segmentations.
    #[serde(default = "default_key")]
    pub key: String,
    /// Numeric (or Boolean, as 0/1) columns the metrics are computed on. Default: every
    /// numeric column of the features table except the key; of those, columns with a
    /// missing value are left out (with a warning). A listed column with missing
    /// values instead leaves those customers out.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Z-score every feature (mean 0, population standard deviation 1 over the
    /// customers of the features table with complete features, as scikit-learn's
    /// `StandardScaler`) before computing distances, so a feature in currency does not
    /// outweigh one in days. Turn it off only when the features already share a scale.
    #[serde(default = "yes")]
    pub standardize: bool,
    /// Exact or sampled silhouette.
    #[serde(default)]
    pub silhouette: SilhouetteSampling,
}

/// The features as a dense matrix over every row of the features table.
pub(crate) struct FeatureMatrix {
    /// The columns used.
    pub names: Vec<String>,
    /// Default columns left out because they have missing values.
    pub skipped: Vec<String>,
    pub d: usize,
    /// Row-major `rows × d`; rows that are not complete hold zeros.
    pub x: Vec<f64>,
    /// Whether each row has every feature (finite).
    pub complete: Vec<bool>,
}

/// The feature list of a config, checked against the features schema.
pub(crate) fn resolve_features(
    schema: &Schema,
    key: &str,
    features: &Option<Vec<String>>,
) -> Result<Vec<String>> {
    match features {
        Some(list) => {
            if list.is_empty() {
                return Err(Error::config(
                    "features",
                    "list at least one numeric column, or leave `features` out to use every numeric column",
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for (i, f) in list.iter().enumerate() {
                let field = inputs::feature_field(schema, key, i, f)?;
                if !is_numeric(field.data_type()) {
                    return Err(Error::config(
                        &format!("features.{i}"),
                        format!(
                            "column `{f}` is {}, not numeric; the metrics need numeric features (encode it first, e.g. with `encode`)",
                            field.data_type()
                        ),
                    ));
                }
                if !seen.insert(f) {
                    return Err(Error::config(
                        &format!("features.{i}"),
                        format!("`{f}` is listed twice"),
                    ));
                }
            }
            Ok(list.clone())
        }
        None => {
            let cols = inputs::numeric_columns(schema, key, &[]);
            if cols.is_empty() {
                return Err(Error::config(
                    "features",
                    format!(
                        "the features table has no numeric column besides the key `{key}`; the metrics need numeric features"
                    ),
                ));
            }
            Ok(cols)
        }
    }
}

/// Read the features into a matrix, dropping default columns with missing values and
/// z-scoring when asked.
pub(crate) fn feature_matrix(
    batch: &RecordBatch,
    names: Vec<String>,
    explicit: bool,
    standardize: bool,
) -> Result<FeatureMatrix> {
    let n = batch.num_rows();
    let mut cols: Vec<Vec<Option<f64>>> = Vec::with_capacity(names.len());
    let mut used = Vec::with_capacity(names.len());
    let mut skipped = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let mut c = inputs::numeric(batch, &name, &format!("features.{i}"))?;
        for v in c.iter_mut() {
            if v.is_some_and(|x| !x.is_finite()) {
                *v = None;
            }
        }
        if !explicit && c.iter().any(Option::is_none) {
            skipped.push(name);
            continue;
        }
        cols.push(c);
        used.push(name);
    }
    if !skipped.is_empty() {
        segflow_sdk::tracing::warn!(
            columns = %skipped.join(", "),
            "left out of the validity features because they have missing values; list `features:` to choose (customers with a missing value are then left out)"
        );
    }
    if used.is_empty() {
        return Err(Error::config(
            "features",
            format!(
                "every numeric column of the features table has missing values ({}); list `features:` explicitly (customers with a missing value are left out) or impute first",
                skipped.join(", ")
            ),
        ));
    }
    let d = used.len();
    let complete: Vec<bool> = (0..n)
        .map(|r| cols.iter().all(|c| c[r].is_some()))
        .collect();
    let mut x = vec![0.0; n * d];
    for (j, c) in cols.iter().enumerate() {
        let scaler = if standardize {
            let vals: Vec<f64> = c
                .iter()
                .zip(&complete)
                .filter_map(|(v, &ok)| if ok { *v } else { None })
                .collect();
            if vals.is_empty() {
                None
            } else {
                Some(
                    Scaler::fit(ScaleMethod::zscore(), &vals)
                        .map_err(|e| Error::new(format!("z-scoring `{}`: {e}", used[j])))?,
                )
            }
        } else {
            None
        };
        for r in 0..n {
            if complete[r] {
                let v = c[r].unwrap_or(0.0);
                x[r * d + j] = scaler.as_ref().map_or(v, |s| s.transform(v));
            }
        }
    }
    Ok(FeatureMatrix {
        names: used,
        skipped,
        d,
        x,
        complete,
    })
}

/// One segment's figures, in the order of `Segmentation::segments`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SegmentValidity {
    pub customers: usize,
    pub silhouette: Option<f64>,
    pub within: Option<f64>,
}

/// One segmentation's figures.
#[derive(Debug, Clone, Default)]
pub(crate) struct Assessment {
    /// Customers assessed (complete features).
    pub customers: usize,
    /// Customers of the segmentation left out for missing features.
    pub left_out: usize,
    /// Segments among the assessed customers.
    pub segments: usize,
    pub silhouette: Option<f64>,
    /// Customers the silhouette was computed on.
    pub silhouette_rows: Option<usize>,
    pub silhouette_sampled: bool,
    pub calinski_harabasz: Option<f64>,
    pub davies_bouldin: Option<f64>,
    pub within: Option<f64>,
    pub between: Option<f64>,
    pub per_segment: Vec<SegmentValidity>,
}

impl Assessment {
    pub(crate) fn facts(&self) -> serde_json::Value {
        serde_json::json!({
            "customers": self.customers,
            "left_out": self.left_out,
            "segments": self.segments,
            "silhouette": self.silhouette,
            "silhouette_rows": self.silhouette_rows,
            "silhouette_sampled": self.silhouette_sampled,
            "calinski_harabasz": self.calinski_harabasz,
            "davies_bouldin": self.davies_bouldin,
            "within_dispersion": self.within,
            "between_dispersion": self.between,
        })
    }
}

fn metric_error(seg: &str, e: MetricsError) -> Error {
    Error::new(format!(
        "computing the validity of segmentation `{seg}` failed: {e}"
    ))
}

/// Assess one segmentation on the features (call inside the step's pool).
pub(crate) fn assess(
    m: &FeatureMatrix,
    seg: &Segmentation,
    sil: &SilhouetteSampling,
) -> Result<Assessment> {
    let d = m.d;
    let k_all = seg.segments.len();
    let pos = seg.positions();
    let mut x = Vec::with_capacity(seg.rows.len() * d);
    let mut labels: Vec<u32> = Vec::with_capacity(seg.rows.len());
    for (&r, &p) in seg.rows.iter().zip(&pos) {
        if m.complete[r] {
            x.extend_from_slice(&m.x[r * d..(r + 1) * d]);
            labels.push(p as u32);
        }
    }
    let n = labels.len();
    let mut a = Assessment {
        customers: n,
        left_out: seg.rows.len() - n,
        per_segment: vec![SegmentValidity::default(); k_all],
        ..Default::default()
    };
    if a.left_out > 0 {
        segflow_sdk::tracing::warn!(
            segmentation = %seg.name,
            left_out = a.left_out,
            "customers with a missing feature value are left out of the validity metrics"
        );
    }
    if n == 0 {
        segflow_sdk::tracing::warn!(
            segmentation = %seg.name,
            "no customer of the segmentation has complete features, so its validity metrics are null"
        );
        return Ok(a);
    }
    let summary = metrics::summarize(&x, d, &labels).map_err(|e| metric_error(&seg.name, e))?;
    a.segments = summary.k();
    let disp = summary.dispersion();
    a.within = Some(disp.within);
    a.between = Some(disp.between);
    for (c, &label) in summary.labels.iter().enumerate() {
        let s = &mut a.per_segment[label as usize];
        s.customers = summary.counts[c] as usize;
        s.within = Some(summary.within_ss[c]);
    }
    let undefined = |what: &str| {
        segflow_sdk::tracing::warn!(
            segmentation = %seg.name,
            segments = a.segments,
            customers = n,
            "{what} needs between 2 and customers − 1 segments, so it is null"
        );
    };
    match summary.calinski_harabasz() {
        Ok(v) => a.calinski_harabasz = Some(v),
        Err(MetricsError::Clusters { .. }) => undefined("the Calinski-Harabasz index"),
        Err(e) => return Err(metric_error(&seg.name, e)),
    }
    match summary.davies_bouldin() {
        Ok(v) => a.davies_bouldin = Some(v),
        Err(MetricsError::Clusters { .. }) => undefined("the Davies-Bouldin index"),
        Err(e) => return Err(metric_error(&seg.name, e)),
    }

    // Silhouette: exact below the limit, else on a seeded sample.
    let sampled = n >= sil.exact_below && sil.sample_size < n;
    let (sx, sl): (std::borrow::Cow<[f64]>, std::borrow::Cow<[u32]>) = if sampled {
        let idx = metrics::sample_indices(n, sil.sample_size, sil.seed);
        let mut sx = Vec::with_capacity(idx.len() * d);
        let mut sl = Vec::with_capacity(idx.len());
        for &i in &idx {
            sx.extend_from_slice(&x[i * d..(i + 1) * d]);
            sl.push(labels[i]);
        }
        (sx.into(), sl.into())
    } else {
        (x.as_slice().into(), labels.as_slice().into())
    };
    a.silhouette_sampled = sampled;
    a.silhouette_rows = Some(sl.len());
    match metrics::silhouette_samples(&sx, d, &sl) {
        Ok(s) => {
            a.silhouette = Some(chunked_mean(&s));
            let mut sums = vec![0.0; k_all];
            let mut counts = vec![0usize; k_all];
            for (&l, &v) in sl.iter().zip(&s) {
                sums[l as usize] += v;
                counts[l as usize] += 1;
            }
            for (p, seg_v) in a.per_segment.iter_mut().enumerate() {
                seg_v.silhouette = (counts[p] > 0).then(|| sums[p] / counts[p] as f64);
            }
        }
        Err(MetricsError::Clusters { .. }) => {
            if sampled && a.segments >= 2 {
                segflow_sdk::tracing::warn!(
                    segmentation = %seg.name,
                    sample = sl.len(),
                    "the silhouette sample holds fewer than 2 segments, so the silhouette is null; raise `silhouette.sample_size`"
                );
            } else {
                undefined("the silhouette");
            }
        }
        Err(e) => return Err(metric_error(&seg.name, e)),
    }
    Ok(a)
}

/// Mean in fixed chunks, in order (deterministic, accurate).
fn chunked_mean(v: &[f64]) -> f64 {
    let parts: Vec<f64> = v.chunks(4096).map(|c| c.iter().sum()).collect();
    parts.iter().sum::<f64>() / v.len() as f64
}

/// Write one segmentation's assessment into `metrics`; per-segment rows when asked.
pub(crate) fn push_metrics(
    out: &mut Metrics,
    seg: &Segmentation,
    a: &Assessment,
    per_segment: bool,
) {
    let name = seg.name.as_str();
    let opt = |v: Option<usize>| v.map(|x| x as f64);
    out.push(name, "customers", Some(a.customers as f64));
    out.push(name, "segments", Some(a.segments as f64));
    out.push(name, "silhouette", a.silhouette);
    out.push(name, "silhouette_rows", opt(a.silhouette_rows));
    out.push(name, "calinski_harabasz", a.calinski_harabasz);
    out.push(name, "davies_bouldin", a.davies_bouldin);
    out.push(name, "within_dispersion", a.within);
    out.push(name, "between_dispersion", a.between);
    if per_segment {
        for ((_, label), s) in seg.segments.iter().zip(&a.per_segment) {
            let l = Some(label.as_str());
            out.push_segment(name, "customers", l, Some(s.customers as f64));
            out.push_segment(name, "silhouette", l, s.silhouette);
            out.push_segment(name, "within_dispersion", l, s.within);
        }
    }
}

impl Component for Validity {
    const NAME: &'static str = "validity";
    const STAGE: Stage = Stage::Evaluate;

    fn ports() -> Ports {
        Ports::new(Stage::Evaluate, 2, usize::MAX)
            .inputs_doc("one per-customer features table (e.g. customer_features) and one or more segmentations (segmenters' assignments), joined on the key")
            .outputs(&[(
                "metrics",
                "long table (segmentation, metric, segment, value): per segmentation customers, segments, silhouette, silhouette_rows, calinski_harabasz, davies_bouldin, within_dispersion, between_dispersion; per segment customers, silhouette, within_dispersion",
            )])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let roles = inputs::roles(inputs, |s: &SchemaRef| s.clone(), &self.key)?;
        resolve_features(&inputs[roles.features].value, &self.key, &self.features)?;
        self.silhouette.check("silhouette")?;
        Ok(Outputs::new().port("metrics", metrics_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        self.silhouette.check("silhouette")?;
        let joined = inputs::join(inputs, &self.key)?;
        let names = resolve_features(&joined.features.schema(), &self.key, &self.features)?;
        let m = feature_matrix(
            &joined.features,
            names,
            self.features.is_some(),
            self.standardize,
        )?;
        let mut out = Metrics::default();
        let mut facts = serde_json::Map::new();
        for seg in &joined.segmentations {
            let a = ctx.pool().install(|| assess(&m, seg, &self.silhouette))?;
            push_metrics(&mut out, seg, &a, true);
            facts.insert(seg.name.clone(), a.facts());
        }
        ctx.fact("features", &m.names);
        if !m.skipped.is_empty() {
            ctx.fact("features_skipped", &m.skipped);
        }
        ctx.fact("standardize", self.standardize);
        ctx.fact("segmentations", facts);
        Ok(Outputs::new().port("metrics", Table::from_batch(out.finish()?)))
    }
}
