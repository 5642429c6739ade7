//! The `compare` component.

use crate::common::{metrics_schema, Metrics};
use crate::inputs::{self, is_numeric, Segmentation};
use crate::validity::{
    assess, default_key, feature_matrix, push_metrics, resolve_features, yes, SilhouetteSampling,
};
use segflow_ml::metrics::{adjusted_rand_index, normalized_mutual_info};
use segflow_sdk::arrow::array::{Float64Array, Int64Array, StringArray};
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// Several segmentations of the same customers side by side: how much they agree
/// (adjusted Rand index and normalized mutual information for every pair, and a
/// crosstab of each pair), how valid each is (silhouette, Calinski-Harabasz,
/// Davies-Bouldin on the features, as `validity` computes them), and — with `value` —
/// which one separates customer value best.
///
/// `needs:` one per-customer features table and two or more segmentations, joined on
/// `key`. A pair is compared on the customers both segmentations contain (with a
/// warning when they differ). Value separation of a segmentation: with `v` the value of
/// its customers (those with a value), `m` their mean and `m_g`, `n_g` each segment's
/// mean and size, `value_between_variance = Σ n_g (m_g − m)² / N` (the
/// customer-weighted variance of the segment means), `value_total_variance = Σ (v −
/// m)² / N`, and `value_eta_squared` their ratio, the share of the value's variance
/// the segments explain (0 to 1). The segmentation with the highest eta² is the fact
/// `best_value_separation`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    /// Column identifying the customer in the features and the segmentations.
    #[serde(default = "default_key")]
    pub key: String,
    /// Numeric columns the validity metrics are computed on (as `validity`'s
    /// `features`). Default: every numeric column except the key, less those with
    /// missing values.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Z-score the features before computing distances (as `validity`).
    #[serde(default = "yes")]
    pub standardize: bool,
    /// Exact or sampled silhouette (as `validity`).
    #[serde(default)]
    pub silhouette: SilhouetteSampling,
    /// A numeric column of the features holding each customer's value (e.g. a CLV or
    /// `monetary_sum`): adds value separation and the fact `best_value_separation`.
    #[serde(default)]
    pub value: Option<String>,
}

fn pairs_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("segmentation_a", DataType::Utf8, false),
        Field::new("segmentation_b", DataType::Utf8, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("ari", DataType::Float64, true),
        Field::new("nmi", DataType::Float64, true),
    ]))
}

fn crosstab_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("segmentation_a", DataType::Utf8, false),
        Field::new("segment_a", DataType::Utf8, false),
        Field::new("segmentation_b", DataType::Utf8, false),
        Field::new("segment_b", DataType::Utf8, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("share_of_a", DataType::Float64, true),
        Field::new("share_of_b", DataType::Float64, true),
    ]))
}

/// Value separation of one segmentation.
#[derive(Debug, Clone, Default)]
struct ValueSeparation {
    between: Option<f64>,
    total: Option<f64>,
    eta_squared: Option<f64>,
    /// Per segment (in `segments` order).
    means: Vec<Option<f64>>,
}

fn value_separation(seg: &Segmentation, value: &[Option<f64>]) -> ValueSeparation {
    let k = seg.segments.len();
    let pos = seg.positions();
    let mut sums = vec![0.0; k];
    let mut counts = vec![0usize; k];
    let mut vals = Vec::with_capacity(seg.rows.len());
    for (&r, &p) in seg.rows.iter().zip(&pos) {
        if let Some(v) = value[r].filter(|v| v.is_finite()) {
            sums[p] += v;
            counts[p] += 1;
            vals.push(v);
        }
    }
    let means: Vec<Option<f64>> = (0..k)
        .map(|p| (counts[p] > 0).then(|| sums[p] / counts[p] as f64))
        .collect();
    let n = vals.len();
    if n == 0 {
        return ValueSeparation {
            means,
            ..Default::default()
        };
    }
    let m = vals.iter().sum::<f64>() / n as f64;
    let total = vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64;
    let between = means
        .iter()
        .zip(&counts)
        .filter_map(|(mg, &c)| mg.map(|mg| c as f64 * (mg - m) * (mg - m)))
        .sum::<f64>()
        / n as f64;
    ValueSeparation {
        between: Some(between),
        total: Some(total),
        eta_squared: (total > 0.0).then(|| between / total),
        means,
    }
}

#[derive(Default)]
struct PairRows {
    a: Vec<String>,
    b: Vec<String>,
    customers: Vec<i64>,
    ari: Vec<Option<f64>>,
    nmi: Vec<Option<f64>>,
}

#[derive(Default)]
struct CrossRows {
    seg_a: Vec<String>,
    a: Vec<String>,
    seg_b: Vec<String>,
    b: Vec<String>,
    customers: Vec<i64>,
    share_a: Vec<Option<f64>>,
    share_b: Vec<Option<f64>>,
}

/// Compare segmentations `a` and `b` on their common customers.
fn compare_pair(
    a: &Segmentation,
    b: &Segmentation,
    rows: usize,
    pairs: &mut PairRows,
    cross: &mut CrossRows,
) -> Result<serde_json::Value> {
    let (ka, kb) = (a.segments.len(), b.segments.len());
    let mut of_a = vec![u32::MAX; rows];
    for (&r, &p) in a.rows.iter().zip(&a.positions()) {
        of_a[r] = p as u32;
    }
    let mut la = Vec::with_capacity(b.rows.len());
    let mut lb = Vec::with_capacity(b.rows.len());
    for (&r, &p) in b.rows.iter().zip(&b.positions()) {
        if of_a[r] != u32::MAX {
            la.push(of_a[r]);
            lb.push(p as u32);
        }
    }
    let n = la.len();
    if n < a.rows.len() || n < b.rows.len() {
        segflow_sdk::tracing::warn!(
            a = %a.name,
            b = %b.name,
            common = n,
            customers_a = a.rows.len(),
            customers_b = b.rows.len(),
            "the two segmentations cover different customers; they are compared on the customers both contain"
        );
    }
    let (ari, nmi) = if n == 0 {
        segflow_sdk::tracing::warn!(a = %a.name, b = %b.name, "the two segmentations have no customer in common, so ARI and NMI are null");
        (None, None)
    } else {
        let ari = adjusted_rand_index(&la, &lb).map_err(|e| Error::new(e.to_string()))?;
        let nmi = normalized_mutual_info(&la, &lb).map_err(|e| Error::new(e.to_string()))?;
        (Some(ari), Some(nmi))
    };
    pairs.a.push(a.name.clone());
    pairs.b.push(b.name.clone());
    pairs.customers.push(n as i64);
    pairs.ari.push(ari);
    pairs.nmi.push(nmi);

    let mut cells = vec![0i64; ka * kb];
    let (mut size_a, mut size_b) = (vec![0i64; ka], vec![0i64; kb]);
    for (&x, &y) in la.iter().zip(&lb) {
        cells[x as usize * kb + y as usize] += 1;
        size_a[x as usize] += 1;
        size_b[y as usize] += 1;
    }
    for (i, (_, label_a)) in a.segments.iter().enumerate() {
        for (j, (_, label_b)) in b.segments.iter().enumerate() {
            let c = cells[i * kb + j];
            cross.seg_a.push(a.name.clone());
            cross.a.push(label_a.clone());
            cross.seg_b.push(b.name.clone());
            cross.b.push(label_b.clone());
            cross.customers.push(c);
            cross
                .share_a
                .push((size_a[i] > 0).then(|| c as f64 / size_a[i] as f64));
            cross
                .share_b
                .push((size_b[j] > 0).then(|| c as f64 / size_b[j] as f64));
        }
    }
    Ok(serde_json::json!({"a": a.name, "b": b.name, "customers": n, "ari": ari, "nmi": nmi}))
}

impl Compare {
    fn check(&self, schema: &Schema) -> Result<()> {
        resolve_features(schema, &self.key, &self.features)?;
        self.silhouette.check("silhouette")?;
        if let Some(v) = &self.value {
            let f = schema.field_with_name(v).map_err(|_| {
                Error::config(
                    "value",
                    format!(
                        "the features table has no column `{v}`; its numeric columns are {}",
                        inputs::numeric_columns(schema, &self.key, &[]).join(", ")
                    ),
                )
            })?;
            if !is_numeric(f.data_type()) {
                return Err(Error::config(
                    "value",
                    format!("column `{v}` is {}, not numeric", f.data_type()),
                ));
            }
        }
        Ok(())
    }
}

fn need_two(n: usize) -> Result<()> {
    if n < 2 {
        return Err(Error::new(format!(
            "compare needs at least two segmentations in `needs:` (got {n}); add another segmenter's assignments, or use `validity` for one"
        )));
    }
    Ok(())
}

impl Component for Compare {
    const NAME: &'static str = "compare";
    const STAGE: Stage = Stage::Evaluate;

    fn ports() -> Ports {
        Ports::new(Stage::Evaluate, 3, usize::MAX)
            .inputs_doc("one per-customer features table and two or more segmentations of the same customers, joined on the key")
            .outputs(&[
                ("metrics", "long table: per segmentation customers, segments, silhouette, silhouette_rows, calinski_harabasz, davies_bouldin, within/between_dispersion; with `value`: value_between_variance, value_total_variance, value_eta_squared, and value_mean per segment"),
                ("pairs", "one row per pair of segmentations: segmentation_a, segmentation_b, customers in common, ari, nmi"),
                ("crosstab", "customers of every segment of a in every segment of b, per pair: segmentation_a, segment_a, segmentation_b, segment_b, customers, share_of_a, share_of_b"),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let roles = inputs::roles(inputs, |s: &SchemaRef| s.clone(), &self.key)?;
        need_two(roles.segmentations.len())?;
        self.check(&inputs[roles.features].value)?;
        Ok(Outputs::new()
            .port("metrics", metrics_schema())
            .port("pairs", pairs_schema())
            .port("crosstab", crosstab_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let joined = inputs::join(inputs, &self.key)?;
        need_two(joined.segmentations.len())?;
        let schema = joined.features.schema();
        self.check(&schema)?;
        let names = resolve_features(&schema, &self.key, &self.features)?;
        let fm = feature_matrix(
            &joined.features,
            names,
            self.features.is_some(),
            self.standardize,
        )?;
        let value = self
            .value
            .as_ref()
            .map(|v| inputs::numeric(&joined.features, v, "value"))
            .transpose()?;

        let mut metrics = Metrics::default();
        let mut validity_facts = serde_json::Map::new();
        let mut eta = serde_json::Map::new();
        let mut best: Option<(&str, f64)> = None;
        for seg in &joined.segmentations {
            let a = ctx.pool().install(|| assess(&fm, seg, &self.silhouette))?;
            push_metrics(&mut metrics, seg, &a, false);
            validity_facts.insert(seg.name.clone(), a.facts());
            if let Some(v) = &value {
                let s = value_separation(seg, v);
                let name = seg.name.as_str();
                metrics.push(name, "value_between_variance", s.between);
                metrics.push(name, "value_total_variance", s.total);
                metrics.push(name, "value_eta_squared", s.eta_squared);
                for ((_, label), m) in seg.segments.iter().zip(&s.means) {
                    metrics.push_segment(name, "value_mean", Some(label), *m);
                }
                eta.insert(seg.name.clone(), s.eta_squared.into());
                if let Some(e) = s.eta_squared {
                    if best.is_none_or(|(_, b)| e > b) {
                        best = Some((name, e));
                    }
                }
            }
        }

        let rows = joined.features.num_rows();
        let mut pairs = PairRows::default();
        let mut cross = CrossRows::default();
        let mut pair_facts = Vec::new();
        let segs = &joined.segmentations;
        for i in 0..segs.len() {
            for j in i + 1..segs.len() {
                pair_facts.push(compare_pair(
                    &segs[i], &segs[j], rows, &mut pairs, &mut cross,
                )?);
            }
        }

        ctx.fact("features", &fm.names);
        if !fm.skipped.is_empty() {
            ctx.fact("features_skipped", &fm.skipped);
        }
        ctx.fact("standardize", self.standardize);
        ctx.fact("segmentations", validity_facts);
        ctx.fact("pairs", pair_facts);
        if let Some(v) = &self.value {
            ctx.fact("value", v);
            ctx.fact("value_eta_squared", eta);
            ctx.fact("best_value_separation", best.map(|(n, _)| n));
            match best {
                Some((n, e)) => segflow_sdk::tracing::info!(
                    segmentation = n,
                    eta_squared = e,
                    "`{n}` separates `{v}` best"
                ),
                None => segflow_sdk::tracing::warn!(
                    "no segmentation has a defined value separation (no customer with a `{v}` value, or it is constant)"
                ),
            }
        }

        let pairs_batch = RecordBatch::try_new(
            pairs_schema(),
            vec![
                Arc::new(StringArray::from(pairs.a)),
                Arc::new(StringArray::from(pairs.b)),
                Arc::new(Int64Array::from(pairs.customers)),
                Arc::new(Float64Array::from(pairs.ari)),
                Arc::new(Float64Array::from(pairs.nmi)),
            ],
        )?;
        let cross_batch = RecordBatch::try_new(
            crosstab_schema(),
            vec![
                Arc::new(StringArray::from(cross.seg_a)),
                Arc::new(StringArray::from(cross.a)),
                Arc::new(StringArray::from(cross.seg_b)),
                Arc::new(StringArray::from(cross.b)),
                Arc::new(Int64Array::from(cross.customers)),
                Arc::new(Float64Array::from(cross.share_a)),
                Arc::new(Float64Array::from(cross.share_b)),
            ],
        )?;
        Ok(Outputs::new()
            .port("metrics", Table::from_batch(metrics.finish()?))
            .port("pairs", Table::from_batch(pairs_batch))
            .port("crosstab", Table::from_batch(cross_batch)))
    }
}
