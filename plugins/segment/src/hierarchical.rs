//! The `hierarchical` component.

use crate::features::{
    assignments_batch, assignments_head_fields, centre_columns, check_columns, cluster_label,
    matrix, model_head, model_head_fields, size_order, standardize,
};
use segflow_ml::hierarchical::{
    fit, Cut, HierarchicalError, HierarchicalModel, HierarchicalParams, Linkage, Merge,
};
use segflow_sdk::arrow::array::Float64Array;
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// How the distance between two groups of customers is measured when deciding which
/// two to merge next.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LinkageMethod {
    /// Merge the two groups whose union adds the least within-segment variance: compact
    /// segments of similar spread, like k-means (scikit-learn's default).
    #[default]
    Ward,
    /// The mean distance between the members of the two groups (UPGMA).
    Average,
    /// The largest distance between a member of one group and a member of the other:
    /// segments of bounded diameter.
    Complete,
}

impl LinkageMethod {
    fn linkage(self) -> Linkage {
        match self {
            LinkageMethod::Ward => Linkage::Ward,
            LinkageMethod::Average => Linkage::Average,
            LinkageMethod::Complete => Linkage::Complete,
        }
    }
}

/// Most rows `max_rows` may name: the tree keeps `4·max_rows²` bytes of distances (10
/// GB here).
pub const MAX_ROWS_LIMIT: usize = 50_000;
/// Clustered rows up to which the facts keep every merge of the dendrogram.
pub const FULL_DENDROGRAM_ROWS: usize = 1_000;

/// Agglomerative (hierarchical) clustering of customers on numeric features, with
/// Ward, average or complete linkage: every customer starts as its own group and the
/// two closest groups are merged until one is left; the tree is then cut into `k`
/// segments, or wherever merges become as far apart as `distance_threshold` (give
/// exactly one of the two). The same tree as scipy's `linkage` and the same segments
/// as scikit-learn's `AgglomerativeClustering`. Above `max_rows` rows a seeded sample of
/// `max_rows` rows is clustered and every other row joins the segment with the
/// nearest centre (the mean of its sampled members). Segments are numbered by size
/// (segment 0 is the largest); centres in `model` are in original units. The facts
/// keep the top of the dendrogram for the report.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hierarchical {
    /// Numeric columns to cluster on, e.g. `[recency_days, frequency, monetary_sum]`.
    pub features: Vec<String>,
    /// Column identifying the customer, carried into `assignments`.
    #[serde(default = "default_key")]
    pub key: String,
    /// Scale each feature to mean 0 and standard deviation 1 before clustering (so a
    /// feature in dollars does not outweigh one in days). A constant feature stays 0.
    #[serde(default = "yes")]
    pub standardize: bool,
    /// `ward` (default), `average` or `complete`.
    #[serde(default)]
    pub linkage: LinkageMethod,
    /// Number of segments: the tree is cut where it has `k` branches. Give this or
    /// `distance_threshold`.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub k: Option<usize>,
    /// Cut the tree at this linkage distance instead of at a fixed `k`: merges at a
    /// distance of `distance_threshold` or more are undone, so the number of segments
    /// follows the data (scikit-learn's `distance_threshold`). In the standardised
    /// space when `standardize` is on; the facts' `dendrogram` shows the distances.
    #[serde(default)]
    pub distance_threshold: Option<f64>,
    /// Above this many rows, the tree is built on a seeded uniform sample of
    /// `max_rows` rows and the other rows join the nearest segment centre. Memory is
    /// `4·max_rows²` bytes (400 MB at 10,000) and time grows with its square; at most
    /// 50,000.
    #[serde(default = "default_max_rows")]
    #[schemars(range(min = 2, max = 50000))]
    pub max_rows: usize,
    /// Seed of that sample: the same seed and data give the same segments.
    #[serde(default)]
    pub seed: u64,
}

fn default_key() -> String {
    "customer_id".into()
}
fn yes() -> bool {
    true
}
fn default_max_rows() -> usize {
    segflow_ml::hierarchical::DEFAULT_MAX_ROWS
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

impl Hierarchical {
    /// Plan-time checks; the cut.
    fn check(&self) -> Result<Cut> {
        for (i, f) in self.features.iter().enumerate() {
            if ["segment_id", "segment", "size"].contains(&f.as_str()) {
                return Err(Error::config(
                    &format!("features.{i}"),
                    format!(
                        "the feature `{f}` would clash with a column of `model`; rename it first"
                    ),
                ));
            }
        }
        if !(2..=MAX_ROWS_LIMIT).contains(&self.max_rows) {
            return Err(Error::config(
                "max_rows",
                format!(
                    "max_rows must be between 2 and {MAX_ROWS_LIMIT} (the tree keeps 4·max_rows² bytes of distances), got {}",
                    self.max_rows
                ),
            ));
        }
        let cut = match (self.k, self.distance_threshold) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "distance_threshold",
                    "give either k or distance_threshold, not both",
                ))
            }
            (None, None) => {
                return Err(Error::config(
                    "k",
                    "give k (the number of segments) or distance_threshold (where to cut the tree)",
                ))
            }
            (Some(k), None) => {
                if k == 0 {
                    return Err(Error::config("k", "k must be at least 1"));
                }
                if k > self.max_rows {
                    return Err(Error::config(
                        "k",
                        format!(
                            "k = {k} is more than max_rows = {}; the tree has at most max_rows leaves",
                            self.max_rows
                        ),
                    ));
                }
                Cut::K(k)
            }
            (None, Some(t)) => {
                if !t.is_finite() || t <= 0.0 {
                    return Err(Error::config(
                        "distance_threshold",
                        format!("distance_threshold must be a number above 0, got {t}"),
                    ));
                }
                Cut::Distance(t)
            }
        };
        Ok(cut)
    }
}

/// How many of the last merges the facts keep: all of them up to
/// [`FULL_DENDROGRAM_ROWS`] clustered rows, else the last `max(2k − 1, 50)`.
fn listed_merges(leaves: usize, k: usize) -> usize {
    let all = leaves.saturating_sub(1);
    if leaves <= FULL_DENDROGRAM_ROWS {
        all
    } else {
        all.min((2 * k).saturating_sub(1).max(50))
    }
}

/// The `dendrogram` fact: the last merges as `[a, b, distance, size]` (scipy's linkage
/// rows), what the unlisted nodes they refer to hold, and the node of each segment.
fn dendrogram_fact(m: &HierarchicalModel, segment_nodes: &[usize]) -> serde_json::Value {
    let leaves = m.clustered_rows();
    let listed = listed_merges(leaves, m.k);
    let first = m.merges.len() - listed;
    let row = |x: &Merge| serde_json::json!([x.a, x.b, x.distance, x.size]);
    let merges: Vec<serde_json::Value> = m.merges[first..].iter().map(row).collect();
    // Nodes below the listed merges: [node, rows under it, its merge distance].
    let mut below: Vec<serde_json::Value> = Vec::new();
    for x in &m.merges[first..] {
        for node in [x.a, x.b] {
            if node < leaves + first {
                let (size, dist) = if node < leaves {
                    (1, 0.0)
                } else {
                    let y = &m.merges[node - leaves];
                    (y.size, y.distance)
                };
                below.push(serde_json::json!([node, size, dist]));
            }
        }
    }
    let mut v = serde_json::json!({
        "leaves": leaves,
        "first_merge": first,
        "merges": merges,
        "subtrees": below,
        "segment_nodes": segment_nodes,
    });
    if listed == leaves.saturating_sub(1) {
        if let Some(s) = &m.sample {
            v["leaf_rows"] = serde_json::json!(s);
        }
    }
    v
}

impl Component for Hierarchical {
    const NAME: &'static str = "hierarchical";
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
                    "one row per segment: size and centre (the mean of its clustered rows) in original units",
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
        let cut = self.check()?;
        let batch = inputs.remove(0).value.concat()?;
        let d = self.features.len();
        let n = batch.num_rows();
        if n == 0 {
            return Err(Error::new(
                "the input has no rows to cluster; check the upstream step",
            ));
        }
        if let Cut::K(k) = cut {
            if k > n {
                return Err(Error::config(
                    "k",
                    format!("k = {k} but the input has only {n} rows; lower k or check the upstream step"),
                ));
            }
        }
        let mut x = matrix(&batch, &self.features)?;
        let scaling = self.standardize.then(|| standardize(&mut x, d));
        let params = HierarchicalParams::new(self.linkage.linkage(), cut)
            .and_then(|p| p.sample(self.max_rows, self.seed))
            .map_err(|e| Error::new(e.to_string()))?;
        let t = std::time::Instant::now();
        let model = ctx
            .pool()
            .install(|| fit(&x, d, &params))
            .map_err(|e| match e {
                HierarchicalError::KTooLarge { .. } => Error::config("k", e.to_string()),
                e => Error::new(e.to_string()),
            })?;
        let seconds = t.elapsed().as_secs_f64();
        let k = model.k;

        // Number segments by size, largest first (ties: the earlier cluster first).
        let sizes: Vec<i64> = model.sizes.iter().map(|&s| s as i64).collect();
        let (order, rank) = size_order(&sizes);
        let ids: Vec<i32> = model.labels.iter().map(|&l| rank[l as usize]).collect();
        let names: Vec<String> = ids.iter().map(|&r| cluster_label(r)).collect();
        let assignments = assignments_batch(
            assignments_schema,
            &batch,
            &self.key,
            ids,
            names,
            vec![Arc::new(Float64Array::from(model.distances.clone()))],
        )?;

        let mut cols = model_head(&order, &sizes);
        cols.extend(centre_columns(
            &order,
            &model.centroids,
            d,
            scaling.as_ref(),
        ));
        let model_batch = RecordBatch::try_new(model_schema(&self.features), cols)?;

        let leaves = model.clustered_rows();
        let kept = leaves - k; // merges kept by the cut
        let threshold_range = [
            kept.checked_sub(1).map(|j| model.merges[j].distance),
            model.merges.get(kept).map(|m| m.distance),
        ];
        let segment_nodes: Vec<usize> = order.iter().map(|&j| model.cluster_nodes[j]).collect();
        ctx.fact("k", k);
        ctx.fact("features", &self.features);
        ctx.fact("linkage", model.linkage.name());
        match cut {
            Cut::K(_) => ctx.fact("cut", "k"),
            Cut::Distance(t) => {
                ctx.fact("cut", "distance_threshold");
                ctx.fact("distance_threshold", t);
            }
        }
        ctx.fact("threshold_range", threshold_range);
        ctx.fact("rows", n);
        ctx.fact("sample_rows", leaves);
        ctx.fact("sampled", model.sample.is_some());
        ctx.fact(
            "sizes",
            order.iter().map(|&j| model.sizes[j]).collect::<Vec<_>>(),
        );
        if let Some(sample) = &model.sample {
            let mut fit_sizes = vec![0usize; k];
            for &i in sample {
                fit_sizes[rank[model.labels[i] as usize] as usize] += 1;
            }
            ctx.fact("sample_sizes", fit_sizes);
            ctx.fact("seed", self.seed);
        }
        ctx.fact("dendrogram", dendrogram_fact(&model, &segment_nodes));
        if let Some((mean, sd)) = &scaling {
            ctx.fact("standardize", serde_json::json!({"mean": mean, "std": sd}));
        }
        if matches!(cut, Cut::Distance(_)) && k > 100 {
            segflow_sdk::tracing::warn!(
                k,
                "distance_threshold gives {k} segments; raise it for fewer (see the facts' threshold_range and dendrogram)"
            );
        }
        segflow_sdk::tracing::info!(
            k,
            linkage = model.linkage.name(),
            sample_rows = leaves,
            seconds,
            "hierarchical clustering fitted"
        );
        Ok(Outputs::new()
            .port("assignments", Table::from_batch(assignments))
            .port("model", Table::from_batch(model_batch)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Hierarchical {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn config_defaults_and_checks() {
        let h = parse(serde_json::json!({"k": 4, "features": ["a"]}));
        assert_eq!(h.linkage, LinkageMethod::Ward);
        assert_eq!((h.max_rows, h.seed, h.standardize), (10_000, 0, true));
        assert_eq!(h.check().unwrap(), Cut::K(4));
        let h = parse(
            serde_json::json!({"distance_threshold": 2.5, "features": ["a"], "linkage": "complete"}),
        );
        assert_eq!(h.check().unwrap(), Cut::Distance(2.5));
        let field = |v| parse(v).check().unwrap_err().field().map(str::to_string);
        assert_eq!(
            field(serde_json::json!({"features": ["a"]})).as_deref(),
            Some("k")
        );
        assert_eq!(
            field(serde_json::json!({"k": 2, "distance_threshold": 1.0, "features": ["a"]}))
                .as_deref(),
            Some("distance_threshold")
        );
        assert_eq!(
            field(serde_json::json!({"distance_threshold": 0.0, "features": ["a"]})).as_deref(),
            Some("distance_threshold")
        );
        assert_eq!(
            field(serde_json::json!({"k": 0, "features": ["a"]})).as_deref(),
            Some("k")
        );
        assert_eq!(
            field(serde_json::json!({"k": 20, "max_rows": 10, "features": ["a"]})).as_deref(),
            Some("k")
        );
        assert_eq!(
            field(serde_json::json!({"k": 2, "max_rows": 60000, "features": ["a"]})).as_deref(),
            Some("max_rows")
        );
        assert_eq!(
            field(serde_json::json!({"k": 2, "features": ["size"]})).as_deref(),
            Some("features.0")
        );
        assert!(serde_json::from_value::<Hierarchical>(
            serde_json::json!({"k": 2, "features": ["a"], "linkage": "single"})
        )
        .is_err());
    }

    #[test]
    fn dendrogram_listing() {
        assert_eq!(listed_merges(1, 1), 0);
        assert_eq!(listed_merges(1000, 3), 999);
        assert_eq!(listed_merges(1001, 3), 50);
        assert_eq!(listed_merges(5000, 40), 79);
    }
}
