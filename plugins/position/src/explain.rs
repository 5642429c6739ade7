//! The `explain` component.

use crate::inputs::{self, is_numeric};
use crate::profiles::{float64, head_fields};
use segflow_ml::cart::{self, CartParams};
use segflow_sdk::arrow::array::{Int32Array, Int64Array, StringArray};
use segflow_sdk::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;

/// Most rows `max_rows` may name (the tree compares splits exactly up to this size).
const MAX_ROWS_LIMIT: usize = 10_000_000;

/// Segments explained as rules: for every segmentation given, a shallow decision tree
/// (CART, Gini impurity, as scikit-learn's `DecisionTreeClassifier`) that predicts each
/// customer's segment from the features, in the features' own units, read as one rule
/// per leaf: `recency_days <= 30 and frequency > 6` → `Champions`.
///
/// `needs:` one per-customer features table (e.g. `customer_features`) and one or more
/// segmentations (any segmenter's `assignments`), joined on `key`. Each split is the
/// feature and threshold that best separate the segments; the threshold is the
/// shortest decimal between the two observed values it falls between (`recency_days
/// <= 30` rather than `34.5` between 30 and 39; scikit-learn takes the midpoint, which splits the data
/// the same way), and a rule's conditions on one feature are merged into one range
/// (`frequency > 2 and frequency <= 6`), so a rule can be pasted into a `rules`
/// segmenter as it is. A row of `rules` is one leaf: the segment the leaf
/// predicts, its rule, how many customers it holds, its `precision` (share of them
/// really in that segment) and `recall` (share of the segment's customers it holds).
/// The segment of a leaf is its most frequent segment, so a segment may have several
/// rules, or none when it is never the majority anywhere.
///
/// `fidelity` (a fact per segmentation) is the share of customers whose segment the
/// tree predicts right, over all customers even when the tree is fitted on a sample;
/// below 0.8 a warning says the rules describe the segments only roughly (allow a
/// deeper tree, or accept that the segmenter draws boundaries that no few thresholds
/// follow). A segmentation with a single segment gets one rule, `true`, covering
/// everyone, with fidelity 1. A constant feature is never used. A customer with a
/// missing (null or NaN) or infinite feature is an error: fill the gaps first with
/// an `impute` step, or leave the feature out.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Explain {
    /// Column identifying the customer in the features and the segmentations.
    #[serde(default = "default_key")]
    pub key: String,
    /// Numeric (or Boolean, as 0/1) columns the rules may use. Default: every numeric
    /// and Boolean column of the features table except the key.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Most conditions in a rule (the depth of the tree), 1 to 6. A deeper tree follows
    /// the segments more closely with longer rules and more of them (up to 2^depth per
    /// segmentation).
    #[serde(default = "default_depth")]
    #[schemars(range(min = 1, max = 6))]
    pub depth: usize,
    /// Fewest customers a rule may cover, as a share of the customers the tree is fitted
    /// on (at least one customer), from 0 to 0.5. It keeps rules from describing a
    /// handful of customers.
    #[serde(default = "default_min_leaf_share")]
    #[schemars(range(min = 0.0, max = 0.5))]
    pub min_leaf_share: f64,
    /// Most customers a tree is fitted on. A larger segmentation is fitted on a random
    /// sample of `max_rows` customers (drawn with `seed`), and its `customers`,
    /// `precision`, `recall` and `fidelity` are still counted over all customers.
    #[serde(default = "default_max_rows")]
    #[schemars(range(min = 10, max = 10_000_000))]
    pub max_rows: usize,
    /// Seed of the sample drawn above `max_rows`; the same seed gives the same rules.
    #[serde(default)]
    pub seed: u64,
}

fn default_key() -> String {
    "customer_id".into()
}
fn default_depth() -> usize {
    3
}
fn default_min_leaf_share() -> f64 {
    0.01
}
fn default_max_rows() -> usize {
    200_000
}

fn rules_schema() -> SchemaRef {
    let mut fields = head_fields();
    fields.extend([
        Field::new("rule", DataType::Utf8, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("precision", DataType::Float64, true),
        Field::new("recall", DataType::Float64, true),
        Field::new("depth", DataType::Int32, false),
    ]);
    Arc::new(Schema::new(fields))
}

impl Explain {
    fn check(&self) -> Result<()> {
        if !(1..=6).contains(&self.depth) {
            return Err(Error::config(
                "depth",
                format!(
                    "depth must be between 1 and 6 (rules of at most 6 conditions), got {}",
                    self.depth
                ),
            ));
        }
        if !(0.0..=0.5).contains(&self.min_leaf_share) {
            return Err(Error::config(
                "min_leaf_share",
                format!(
                    "min_leaf_share must be between 0 and 0.5 (a share of the customers), got {}",
                    self.min_leaf_share
                ),
            ));
        }
        if !(10..=MAX_ROWS_LIMIT).contains(&self.max_rows) {
            return Err(Error::config(
                "max_rows",
                format!(
                    "max_rows must be between 10 and {MAX_ROWS_LIMIT}, got {}",
                    self.max_rows
                ),
            ));
        }
        Ok(())
    }

    /// The feature columns, checked against the features table's schema.
    fn resolve(&self, schema: &Schema) -> Result<Vec<String>> {
        let features = match &self.features {
            Some(list) => {
                if list.is_empty() {
                    return Err(Error::config(
                        "features",
                        format!(
                            "the list is empty; name at least one numeric column, e.g. {}, or leave `features` out to use them all",
                            inputs::numeric_columns(schema, &self.key, &[]).join(", ")
                        ),
                    ));
                }
                for (i, f) in list.iter().enumerate() {
                    let field = inputs::feature_field(schema, &self.key, i, f)?;
                    if f == &self.key {
                        return Err(Error::config(
                            &format!("features.{i}"),
                            format!("`{f}` is the key; rules on customer ids explain nothing, leave it out"),
                        ));
                    }
                    if !is_numeric(field.data_type()) {
                        return Err(Error::config(
                            &format!("features.{i}"),
                            format!(
                                "column `{f}` is {}, not numeric; encode it first (the `encode` step makes 0/1 columns of a category) or leave it out",
                                field.data_type()
                            ),
                        ));
                    }
                }
                list.clone()
            }
            None => inputs::numeric_columns(schema, &self.key, &[]),
        };
        if features.is_empty() {
            return Err(Error::config(
                "features",
                format!(
                    "the features table has no numeric column besides the key `{}`; give this step a per-customer table with numeric features (e.g. customer_features)",
                    self.key
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (i, f) in features.iter().enumerate() {
            if !seen.insert(f) {
                return Err(Error::config(
                    &format!("features.{i}"),
                    format!("`{f}` is listed twice"),
                ));
            }
        }
        Ok(features)
    }
}

/// One output row before sorting.
struct Row {
    segmentation: String,
    segment_id: i32,
    segment: String,
    rule: String,
    customers: i64,
    precision: Option<f64>,
    recall: Option<f64>,
    depth: i32,
    leaf: usize,
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The key of row `r` of the features table, for messages.
fn key_at(batch: &RecordBatch, key: &str, r: usize) -> String {
    inputs::text(batch, key, "key")
        .ok()
        .and_then(|v| v.get(r).cloned().flatten())
        .unwrap_or_else(|| format!("at row {r}"))
}

impl Component for Explain {
    const NAME: &'static str = "explain";
    const STAGE: Stage = Stage::Position;

    fn ports() -> Ports {
        Ports::new(Stage::Position, 2, usize::MAX)
            .inputs_doc("one per-customer features table (e.g. customer_features) and one or more segmentations (segmenters' assignments), joined on the key")
            .outputs(&[(
                "rules",
                "one row per leaf of each segmentation's decision tree: the segment it predicts, the rule (conditions on the features), customers, precision, recall and depth",
            )])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        self.check()?;
        let roles = inputs::roles(inputs, |s: &SchemaRef| s.clone(), &self.key)?;
        self.resolve(&inputs[roles.features].value)?;
        Ok(Outputs::new().port("rules", rules_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        self.check()?;
        let joined = inputs::join(inputs, &self.key)?;
        let batch = &joined.features;
        let features = self.resolve(&batch.schema())?;
        let d = features.len();
        let names: Vec<&str> = features.iter().map(String::as_str).collect();
        let columns: Vec<Vec<Option<f64>>> = features
            .iter()
            .enumerate()
            .map(|(i, c)| inputs::numeric(batch, c, &format!("features.{i}")))
            .collect::<Result<_>>()?;

        let mut rows: Vec<Row> = Vec::new();
        let mut seg_facts = serde_json::Map::new();
        let total = joined.segmentations.len();
        for (done, seg) in joined.segmentations.iter().enumerate() {
            let n = seg.rows.len();
            if n == 0 {
                return Err(Error::new(format!(
                    "segmentation `{}` has no customers, so there is nothing to explain; check that the segmenter's input is not empty",
                    seg.name
                )));
            }
            // The features of the segmentation's customers, row-major.
            let mut x = vec![0.0; n * d];
            for (j, col) in columns.iter().enumerate() {
                let bad: Vec<usize> = seg
                    .rows
                    .iter()
                    .enumerate()
                    .filter(|(_, &r)| !col[r].is_some_and(f64::is_finite))
                    .map(|(i, _)| i)
                    .collect();
                if let Some(&first) = bad.first() {
                    let r = seg.rows[first];
                    let what = match col[r] {
                        None => "null (or NaN)".to_string(),
                        Some(v) => format!("{v}"),
                    };
                    let message = format!(
                            "feature `{}` is missing or not finite for {} of the {n} customers of segmentation `{}` (the first is customer {}, whose value is {what}); the tree needs a value for every customer: fill the gaps with an `impute` step before this one, or leave `{}` out of `features:`",
                            features[j],
                            bad.len(),
                            seg.name,
                            key_at(batch, &self.key, r),
                            features[j]
                        );
                    return Err(match self.features {
                        Some(_) => Error::config(&format!("features.{j}"), message),
                        None => Error::new(message),
                    });
                }
                for (i, &r) in seg.rows.iter().enumerate() {
                    x[i * d + j] = col[r].unwrap_or(0.0);
                }
            }
            let k = seg.segments.len();
            let labels: Vec<u32> = seg.positions().into_iter().map(|p| p as u32).collect();

            // Fit on everyone, or on a seeded sample above max_rows.
            let sample = (n > self.max_rows)
                .then(|| segflow_ml::metrics::sample_indices(n, self.max_rows, self.seed));
            let (fx, fy) = match &sample {
                Some(idx) => (
                    idx.iter()
                        .flat_map(|&i| x[i * d..(i + 1) * d].iter().copied())
                        .collect::<Vec<_>>(),
                    idx.iter().map(|&i| labels[i]).collect::<Vec<_>>(),
                ),
                None => (Vec::new(), Vec::new()),
            };
            let (fit_x, fit_y) = match &sample {
                Some(_) => (&fx[..], &fy[..]),
                None => (&x[..], &labels[..]),
            };
            let n_fit = fit_y.len();
            let min_leaf = ((self.min_leaf_share * n_fit as f64) - 1e-9)
                .ceil()
                .max(1.0) as usize;
            let params = CartParams::new()
                .max_depth(self.depth)
                .min_samples_leaf(min_leaf);
            let fail = |e: cart::CartError| {
                Error::new(format!(
                    "segmentation `{}`: the decision tree failed: {e}",
                    seg.name
                ))
            };
            let tree = ctx
                .pool()
                .install(|| cart::fit(fit_x, d, fit_y, k, &params))
                .map_err(fail)?;
            let leaf_of = ctx.pool().install(|| tree.apply(&x, d)).map_err(fail)?;

            // Counts over all customers.
            let mut size = vec![0usize; k];
            let mut predicted = vec![0usize; k];
            let mut hits = vec![0usize; k];
            let mut in_leaf = vec![0usize; tree.nodes.len()];
            let mut right_in_leaf = vec![0usize; tree.nodes.len()];
            for (i, &leaf) in leaf_of.iter().enumerate() {
                let (truth, pred) = (labels[i] as usize, tree.nodes[leaf].class() as usize);
                size[truth] += 1;
                predicted[pred] += 1;
                in_leaf[leaf] += 1;
                if truth == pred {
                    hits[truth] += 1;
                    right_in_leaf[leaf] += 1;
                }
            }
            let fidelity = hits.iter().sum::<usize>() as f64 / n as f64;

            let name = seg.name.clone();
            for rule in tree.rules() {
                let c = rule.class as usize;
                let (id, label) = &seg.segments[c];
                rows.push(Row {
                    segmentation: name.clone(),
                    segment_id: *id,
                    segment: label.clone(),
                    rule: rule.text(&names),
                    customers: in_leaf[rule.node] as i64,
                    precision: ratio(right_in_leaf[rule.node], in_leaf[rule.node]),
                    recall: ratio(right_in_leaf[rule.node], size[c]),
                    depth: rule.depth as i32,
                    leaf: rule.node,
                });
            }

            let importance: serde_json::Map<String, serde_json::Value> = features
                .iter()
                .zip(tree.feature_importances())
                .map(|(f, v)| (f.clone(), serde_json::json!(v)))
                .collect();
            let per_segment: Vec<serde_json::Value> = seg
                .segments
                .iter()
                .enumerate()
                .map(|(c, (id, label))| {
                    serde_json::json!({
                        "segment_id": id,
                        "segment": label,
                        "customers": size[c],
                        "predicted": predicted[c],
                        "precision": ratio(hits[c], predicted[c]),
                        "recall": ratio(hits[c], size[c]),
                    })
                })
                .collect();
            seg_facts.insert(
                name.clone(),
                serde_json::json!({
                    "fidelity": fidelity,
                    "per_segment": per_segment,
                    "feature_importance": importance,
                    "depth": tree.depth(),
                    "leaves": tree.n_leaves(),
                    "rows": n,
                    "rows_fitted": n_fit,
                    "min_samples_leaf": min_leaf,
                }),
            );
            if k == 1 {
                segflow_sdk::tracing::info!(
                    segmentation = %name,
                    "the segmentation has one segment, so its rule is `true`"
                );
            } else if fidelity < 0.8 {
                segflow_sdk::tracing::warn!(
                    segmentation = %name,
                    fidelity,
                    depth = self.depth,
                    "the tree predicts only {:.1}% of the segments right, so the rules describe the segments only roughly; a larger `depth` may help, or the segments follow no few thresholds on these features",
                    fidelity * 100.0
                );
            }
            segflow_sdk::tracing::info!(
                segmentation = %name,
                fidelity,
                leaves = tree.n_leaves(),
                rows_fitted = n_fit,
                "segments explained"
            );
            ctx.progress(done as u64 + 1, total as u64, "segmentations");
            if ctx.is_cancelled() {
                return Err(Error::new("cancelled"));
            }
        }

        rows.sort_by(|a, b| {
            a.segmentation
                .cmp(&b.segmentation)
                .then(a.segment_id.cmp(&b.segment_id))
                .then(b.customers.cmp(&a.customers))
                .then(a.leaf.cmp(&b.leaf))
        });
        let out = RecordBatch::try_new(
            rules_schema(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.segmentation.as_str()),
                )),
                Arc::new(Int32Array::from_iter_values(
                    rows.iter().map(|r| r.segment_id),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.segment.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.rule.as_str()),
                )),
                Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|r| r.customers),
                )),
                float64(rows.iter().map(|r| r.precision).collect()),
                float64(rows.iter().map(|r| r.recall).collect()),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.depth))),
            ],
        )?;
        ctx.fact("features", &features);
        ctx.fact("segmentations", seg_facts);
        Ok(Outputs::new().port("rules", Table::from_batch(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<Explain> {
        segflow_sdk::parse_config(&v.to_string())
    }

    #[test]
    fn defaults() {
        let e = parse(serde_json::json!({})).unwrap();
        assert_eq!(e.key, "customer_id");
        assert_eq!((e.depth, e.max_rows, e.seed), (3, 200_000, 0));
        assert_eq!(e.min_leaf_share, 0.01);
        assert!(e.features.is_none());
        assert!(e.check().is_ok());
    }

    #[test]
    fn bad_settings_name_their_field() {
        for (cfg, field) in [
            (serde_json::json!({"depth": 0}), "depth"),
            (serde_json::json!({"depth": 7}), "depth"),
            (serde_json::json!({"min_leaf_share": 0.6}), "min_leaf_share"),
            (
                serde_json::json!({"min_leaf_share": -0.1}),
                "min_leaf_share",
            ),
            (serde_json::json!({"max_rows": 5}), "max_rows"),
        ] {
            let e = parse(cfg).unwrap().check().unwrap_err();
            assert_eq!(e.field(), Some(field));
        }
        assert!(parse(serde_json::json!({"deep": 3})).is_err());
    }
}
