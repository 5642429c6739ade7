//! The `map` component.

use crate::inputs::is_numeric;
use crate::profiles::{self, float64, Profiles};
use segflow_ml::pca::{self, PcaError, PcaParams};
use segflow_sdk::arrow::array::{Int32Array, Int64Array, StringArray};
use segflow_sdk::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// A positioning map: every segment as a point on two axes, sized by its customers and
/// carrying a value (revenue share by default) for the bubble, ready for a bubble chart.
///
/// `needs:` the `profiles` port of a `profile` step. Every segmentation in it is mapped
/// on its own. The axes are either
///
/// - **two features** (`x` and `y`): each segment sits at its mean of the two features
///   (the `<f>_mean` columns), in the features' own units; or
/// - **a PCA** (the default): the first two principal components of the segments'
///   standardised means (the `<f>_z` columns) over `features`. Segments that are alike
///   on those features end up close together. Each axis is named after its two or three
///   largest loadings with their signs, e.g. `PC1: +monetary_sum +frequency
///   −recency_days` (a segment far along it buys more, more often and more recently).
///   A feature whose z-score is the same (or null) for every segment carries no
///   information and is left out with a warning. A PCA needs at least two segments;
///   with exactly two, the map is a line (PC2 is 0 for both). Signs are fixed so that
///   each component's largest loading is positive.
///
/// Outputs: `map` (one row per segment: `x`, `y`, `customers`, `customer_share` and
/// `value`) and `loadings` (one row per feature and segmentation: its loadings `pc1`,
/// `pc2`; with `x`/`y`, the two axis features with loading 1 on their own axis and 0 on
/// the other). Facts, under `segmentations.<name>`: `axes` (`method`, `x`, `y`: the
/// axis names), `explained_variance_ratio` (PC1 and PC2's shares of the variance; null
/// with `x`/`y`), the `features` used and those `dropped`, and a `note` when the map is
/// degenerate.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Map {
    /// Feature for the horizontal axis: each segment's mean of it (`<x>_mean`). Set
    /// together with `y`; leave both out for a PCA map.
    #[serde(default)]
    pub x: Option<String>,
    /// Feature for the vertical axis: each segment's mean of it (`<y>_mean`). Set
    /// together with `x`; leave both out for a PCA map.
    #[serde(default)]
    pub y: Option<String>,
    /// PCA only: the profiled features whose standardised segment means (`<f>_z`) the
    /// components are computed from. Default: every feature in the profiles.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// PCA only (ignored with `x`/`y`): weight each segment by its customers. Off by
    /// default, so every segment counts once: a positioning map is about how segments
    /// differ, and weighting would let one or two large segments decide the axes while
    /// the small segments that are often the interesting ones (a high-value niche) are
    /// squeezed into a corner. Turn on to make the axes follow the typical customer.
    #[serde(default)]
    pub weighted: bool,
    /// Numeric profiles column written to `value`, for the bubbles' colour or size,
    /// e.g. `revenue_share` (default), `clv_total`, `churn_rate` or `monetary_sum_mean`.
    #[serde(default = "default_value")]
    pub value: String,
}

fn default_value() -> String {
    "revenue_share".into()
}

/// How the axes are made.
#[derive(Debug, Clone)]
enum Mode {
    /// The segment means of two features.
    Axes { x: String, y: String },
    /// A PCA over the z-scores of these features.
    Pca { features: Vec<String> },
}

fn map_schema() -> SchemaRef {
    let mut fields = profiles::head_fields();
    fields.extend([
        Field::new("x", DataType::Float64, false),
        Field::new("y", DataType::Float64, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("customer_share", DataType::Float64, true),
        Field::new("value", DataType::Float64, true),
    ]);
    Arc::new(Schema::new(fields))
}

fn loadings_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("segmentation", DataType::Utf8, false),
        Field::new("feature", DataType::Utf8, false),
        Field::new("pc1", DataType::Float64, false),
        Field::new("pc2", DataType::Float64, false),
    ]))
}

fn unknown_feature(field: &str, name: &str, available: &[String]) -> Error {
    Error::config(
        field,
        format!(
            "feature `{name}` is not in the profiles (no `{name}_mean`, `{name}_z`, ... columns); the profiled features are: {}. Use one of them, or add `{name}` to the `features:` of the `profile` step",
            if available.is_empty() {
                "(none)".to_string()
            } else {
                available.join(", ")
            }
        ),
    )
}

impl Map {
    /// Check the config against a profiles schema and its features.
    fn resolve(&self, schema: &Schema, available: &[String]) -> Result<Mode> {
        let v = self.value.as_str();
        match schema.field_with_name(v) {
            Ok(f) if is_numeric(f.data_type()) => {}
            Ok(f) => {
                return Err(Error::config(
                    "value",
                    format!(
                        "column `{v}` is {}, but the bubble value must be numeric (e.g. revenue_share, clv_total, customers)",
                        f.data_type()
                    ),
                ))
            }
            Err(_) => {
                let numeric: Vec<&str> = schema
                    .fields()
                    .iter()
                    .filter(|f| is_numeric(f.data_type()) && f.name() != "segment_id")
                    .map(|f| f.name().as_str())
                    .collect();
                return Err(Error::config(
                    "value",
                    format!(
                        "column `{v}` is not in the profiles; numeric columns are: {}",
                        numeric.join(", ")
                    ),
                ));
            }
        }
        match (&self.x, &self.y) {
            (Some(x), Some(y)) => {
                if self.features.is_some() {
                    return Err(Error::config(
                        "features",
                        "`features` chooses the features of a PCA map, but `x` and `y` are set, which place the segments on two features' means; remove `features` or remove `x` and `y`",
                    ));
                }
                for (field, f) in [("x", x), ("y", y)] {
                    if !available.contains(f) {
                        return Err(unknown_feature(field, f, available));
                    }
                }
                if x == y {
                    return Err(Error::config(
                        "y",
                        format!("`x` and `y` are both `{x}`; choose two different features"),
                    ));
                }
                Ok(Mode::Axes {
                    x: x.clone(),
                    y: y.clone(),
                })
            }
            (Some(_), None) => Err(Error::config(
                "y",
                "`x` is set but `y` is not; set both to place the segments on two features, or neither for a PCA map",
            )),
            (None, Some(_)) => Err(Error::config(
                "x",
                "`y` is set but `x` is not; set both to place the segments on two features, or neither for a PCA map",
            )),
            (None, None) => {
                let features = match &self.features {
                    None => {
                        if available.is_empty() {
                            return Err(Error::new(
                                "the profiles have no features (no `<f>_mean` ... `<f>_z` columns), so there is nothing to map; give the `profile` step numeric `features:`",
                            ));
                        }
                        available.to_vec()
                    }
                    Some(list) => {
                        if list.is_empty() {
                            return Err(Error::config(
                                "features",
                                "the list is empty; name at least one profiled feature, or leave `features` out to use all of them",
                            ));
                        }
                        for (i, f) in list.iter().enumerate() {
                            if !available.contains(f) {
                                return Err(unknown_feature(
                                    &format!("features.{i}"),
                                    f,
                                    available,
                                ));
                            }
                            if list[..i].contains(f) {
                                return Err(Error::config(
                                    &format!("features.{i}"),
                                    format!("`{f}` is listed twice; list each feature once"),
                                ));
                            }
                        }
                        list.clone()
                    }
                };
                Ok(Mode::Pca { features })
            }
        }
    }
}

/// One segmentation's map.
struct SegMap {
    x: Vec<f64>,
    y: Vec<f64>,
    /// (feature, pc1, pc2).
    loadings: Vec<(String, f64, f64)>,
    facts: serde_json::Map<String, serde_json::Value>,
}

/// The segments of a segmentation, for messages.
struct Segments<'a> {
    name: &'a str,
    rows: &'a [usize],
    ids: &'a [i32],
    labels: &'a [String],
}

impl Segments<'_> {
    fn describe(&self, i: usize) -> String {
        let r = self.rows[i];
        format!(
            "segment `{}` (segment_id {}) of segmentation `{}`",
            self.labels[r], self.ids[r], self.name
        )
    }

    /// The values of a column for these segments; a null or infinite value is an error.
    fn values(&self, col: &[Option<f64>], column: &str, what: &str) -> Result<Vec<f64>> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, &r)| match col[r] {
                Some(v) if v.is_finite() => Ok(v),
                other => Err(Error::new(format!(
                    "{} has {} `{column}`, so it cannot be placed on the map; {what}",
                    self.describe(i),
                    match other {
                        Some(v) => format!("an infinite value ({v}) in"),
                        None => "a null".to_string(),
                    }
                ))),
            })
            .collect()
    }
}

/// An axis name from its largest loadings, e.g. `PC1: +monetary_sum +frequency
/// −recency_days`: the two largest by absolute value, and the third when it is at least
/// half the largest.
fn axis_name(pc: &str, features: &[String], loadings: &[f64]) -> String {
    let mut order: Vec<usize> = (0..features.len())
        .filter(|&j| loadings[j].abs() > 1e-9)
        .collect();
    order.sort_by(|&a, &b| {
        loadings[b]
            .abs()
            .total_cmp(&loadings[a].abs())
            .then(a.cmp(&b))
    });
    let keep = match order.as_slice() {
        [first, _, third, ..] if loadings[*third].abs() >= 0.5 * loadings[*first].abs() => 3,
        _ => 2,
    };
    let terms: Vec<String> = order
        .iter()
        .take(keep)
        .map(|&j| {
            let sign = if loadings[j] < 0.0 { '−' } else { '+' };
            format!("{sign}{}", features[j])
        })
        .collect();
    if terms.is_empty() {
        format!("{pc}: none")
    } else {
        format!("{pc}: {}", terms.join(" "))
    }
}

/// Is a column of z-scores constant (all equal up to rounding)?
fn constant(v: &[f64]) -> bool {
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        });
    hi - lo <= 1e-12 * hi.abs().max(lo.abs()).max(1.0)
}

impl Map {
    fn pca_map(
        &self,
        seg: &Segments,
        features: &[String],
        z: &HashMap<String, Vec<Option<f64>>>,
        customers: &[i64],
    ) -> Result<SegMap> {
        let k = seg.rows.len();
        if k < 2 {
            return Err(Error::new(format!(
                "segmentation `{}` has {k} segment, but a PCA map needs at least two segments to find axes on which they differ; map it with `x:` and `y:` (two features' means) instead, or leave it out of the profiles",
                seg.name
            )));
        }
        let mut used = Vec::new();
        let mut dropped = Vec::new();
        let mut columns = Vec::new();
        for f in features {
            let col = &z[f];
            let column = format!("{f}_z");
            if seg.rows.iter().all(|&r| col[r].is_none()) {
                dropped.push(f.clone());
                continue;
            }
            let vals = seg.values(
                col,
                &column,
                &format!("leave `{f}` out of `features:`, or fill its missing values before profiling (e.g. with an `impute` step)"),
            )?;
            if constant(&vals) {
                dropped.push(f.clone());
                continue;
            }
            used.push(f.clone());
            columns.push(vals);
        }
        for f in &dropped {
            segflow_sdk::tracing::warn!(
                segmentation = %seg.name,
                feature = %f,
                "feature `{f}` has the same z-score (or none) in every segment of `{}`, so it cannot separate them and is left out of the PCA",
                seg.name
            );
        }
        if used.is_empty() {
            return Err(Error::new(format!(
                "no feature differs between the segments of segmentation `{}` (constant or null z-scores: {}), so a PCA map has no axes; map other features, or use `x:` and `y:`",
                seg.name,
                dropped.join(", ")
            )));
        }
        let d = used.len();
        let mut data = Vec::with_capacity(k * d);
        for i in 0..k {
            data.extend(columns.iter().map(|c| c[i]));
        }
        // Two segments (or one feature) span a line: one component, PC2 is 0.
        let nc = 2.min(k - 1).min(d);
        let mut params = PcaParams::new(nc);
        if self.weighted {
            params = params.weights(seg.rows.iter().map(|&r| customers[r] as f64).collect());
        }
        let fit = pca::fit(&data, d, &params).map_err(|e| match e {
            PcaError::TooFewPoints { .. } => Error::config(
                "weighted",
                format!(
                    "segmentation `{}` has fewer than two segments with customers, so a weighted PCA has no spread to find; set `weighted: false`",
                    seg.name
                ),
            ),
            e => Error::new(format!("PCA of segmentation `{}`: {e}", seg.name)),
        })?;
        let coord = |i: usize, c: usize| {
            if c < nc {
                fit.coordinates[i * nc + c]
            } else {
                0.0
            }
        };
        let loading = |c: usize, j: usize| if c < nc { fit.loading(c, j) } else { 0.0 };
        let pc1: Vec<f64> = (0..d).map(|j| loading(0, j)).collect();
        let pc2: Vec<f64> = (0..d).map(|j| loading(1, j)).collect();
        let ratio = |c: usize| fit.explained_variance_ratio.get(c).copied().unwrap_or(0.0);
        let mut facts = serde_json::Map::new();
        facts.insert(
            "axes".into(),
            serde_json::json!({
                "method": "pca",
                "x": axis_name("PC1", &used, &pc1),
                "y": axis_name("PC2", &used, &pc2),
            }),
        );
        facts.insert(
            "explained_variance_ratio".into(),
            serde_json::json!([ratio(0), ratio(1)]),
        );
        facts.insert("weighted".into(), self.weighted.into());
        facts.insert("features".into(), serde_json::json!(used));
        facts.insert("dropped".into(), serde_json::json!(dropped));
        if nc < 2 {
            let why = if k == 2 {
                "the segmentation has two segments"
            } else {
                "only one feature differs between the segments"
            };
            let note = format!("{why}, so the map is a line: PC2 (y) is 0 for every segment");
            segflow_sdk::tracing::warn!(segmentation = %seg.name, "{note}");
            facts.insert("note".into(), note.into());
        }
        Ok(SegMap {
            x: (0..k).map(|i| coord(i, 0)).collect(),
            y: (0..k).map(|i| coord(i, 1)).collect(),
            loadings: used
                .into_iter()
                .enumerate()
                .map(|(j, f)| (f, pc1[j], pc2[j]))
                .collect(),
            facts,
        })
    }

    fn axes_map(
        &self,
        seg: &Segments,
        x: &str,
        y: &str,
        means: &HashMap<String, Vec<Option<f64>>>,
    ) -> Result<SegMap> {
        let what = "choose a feature every segment has a mean of, or fill its missing values before profiling";
        let xs = seg.values(&means[x], &format!("{x}_mean"), what)?;
        let ys = seg.values(&means[y], &format!("{y}_mean"), what)?;
        let mut facts = serde_json::Map::new();
        facts.insert(
            "axes".into(),
            serde_json::json!({"method": "features", "x": format!("{x}_mean"), "y": format!("{y}_mean")}),
        );
        facts.insert("explained_variance_ratio".into(), serde_json::Value::Null);
        facts.insert("features".into(), serde_json::json!([x, y]));
        facts.insert("dropped".into(), serde_json::json!([]));
        Ok(SegMap {
            x: xs,
            y: ys,
            loadings: vec![(x.to_string(), 1.0, 0.0), (y.to_string(), 0.0, 1.0)],
            facts,
        })
    }
}

impl Component for Map {
    const NAME: &'static str = "map";
    const STAGE: Stage = Stage::Position;

    fn ports() -> Ports {
        Ports::new(Stage::Position, 1, 1)
            .inputs_doc("the `profiles` port of a `profile` step")
            .outputs(&[
                (
                    "map",
                    "one row per segment: segmentation, segment_id, segment, x, y (PC1/PC2 scores, or two features' means), customers, customer_share, value (the bubble value)",
                ),
                (
                    "loadings",
                    "one row per feature and segmentation: feature, pc1, pc2 (with x/y: the two axis features, loading 1 on their own axis)",
                ),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        let features = profiles::check(schema, &inputs[0].name)?;
        self.resolve(schema, &features)?;
        Ok(Outputs::new()
            .port("map", map_schema())
            .port("loadings", loadings_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let p = Profiles::read(inputs)?;
        let mode = self.resolve(&p.batch.schema(), &p.features)?;
        let ids = p.ids()?;
        let labels = p.labels()?;
        let customers = p.customers()?;
        let customer_share = p.f64("customer_share")?;
        let value = p.f64(&self.value)?;
        let (suffix, names): (&str, Vec<String>) = match &mode {
            Mode::Axes { x, y } => ("mean", vec![x.clone(), y.clone()]),
            Mode::Pca { features } => ("z", features.clone()),
        };
        let columns: HashMap<String, Vec<Option<f64>>> = names
            .iter()
            .map(|f| Ok((f.clone(), p.f64(&format!("{f}_{suffix}"))?)))
            .collect::<Result<_>>()?;

        let mut out = MapRows::default();
        let mut loadings = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut seg_facts = serde_json::Map::new();
        for (name, rows) in &p.groups {
            let seg = Segments {
                name,
                rows,
                ids: &ids,
                labels: &labels,
            };
            let m = match &mode {
                Mode::Axes { x, y } => self.axes_map(&seg, x, y, &columns)?,
                Mode::Pca { features } => self.pca_map(&seg, features, &columns, &customers)?,
            };
            if rows.iter().all(|&r| value[r].is_none()) {
                segflow_sdk::tracing::warn!(
                    segmentation = %name,
                    "`{}` is null for every segment of `{name}`, so the map's `value` is empty; set `value:` to another column (e.g. customers or monetary_sum_mean)",
                    self.value
                );
            }
            for (i, &r) in rows.iter().enumerate() {
                out.segmentation.push(name.clone());
                out.segment_id.push(ids[r]);
                out.segment.push(labels[r].clone());
                out.x.push(m.x[i]);
                out.y.push(m.y[i]);
                out.customers.push(customers[r]);
                out.customer_share.push(customer_share[r]);
                out.value.push(value[r]);
            }
            for (f, a, b) in m.loadings {
                loadings.0.push(name.clone());
                loadings.1.push(f);
                loadings.2.push(a);
                loadings.3.push(b);
            }
            seg_facts.insert(name.clone(), m.facts.into());
        }
        ctx.fact(
            "method",
            match mode {
                Mode::Axes { .. } => "features",
                Mode::Pca { .. } => "pca",
            },
        );
        ctx.fact("value", &self.value);
        ctx.fact("segmentations", seg_facts);
        let n = out.x.len();
        let map = RecordBatch::try_new(
            map_schema(),
            vec![
                Arc::new(StringArray::from(out.segmentation)),
                Arc::new(Int32Array::from(out.segment_id)),
                Arc::new(StringArray::from(out.segment)),
                float64(out.x.into_iter().map(Some).collect()),
                float64(out.y.into_iter().map(Some).collect()),
                Arc::new(Int64Array::from(out.customers)),
                float64(out.customer_share),
                float64(out.value),
            ],
        )?;
        let loadings = RecordBatch::try_new(
            loadings_schema(),
            vec![
                Arc::new(StringArray::from(loadings.0)),
                Arc::new(StringArray::from(loadings.1)),
                float64(loadings.2.into_iter().map(Some).collect()),
                float64(loadings.3.into_iter().map(Some).collect()),
            ],
        )?;
        segflow_sdk::tracing::info!(segments = n, "segments mapped");
        Ok(Outputs::new()
            .port("map", Table::from_batch(map))
            .port("loadings", Table::from_batch(loadings)))
    }
}

/// The columns of the `map` port.
#[derive(Default)]
struct MapRows {
    segmentation: Vec<String>,
    segment_id: Vec<i32>,
    segment: Vec<String>,
    x: Vec<f64>,
    y: Vec<f64>,
    customers: Vec<i64>,
    customer_share: Vec<Option<f64>>,
    value: Vec<Option<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn axis_names_list_two_or_three_largest_loadings_with_signs() {
        let f = names(&["recency_days", "frequency", "monetary_sum", "tenure_days"]);
        assert_eq!(
            axis_name("PC1", &f, &[-0.5, 0.55, 0.6, 0.1]),
            "PC1: +monetary_sum +frequency −recency_days"
        );
        // The third is left out when below half the largest.
        assert_eq!(
            axis_name("PC2", &f, &[0.2, -0.1, 0.9, -0.4]),
            "PC2: +monetary_sum −tenure_days"
        );
        assert_eq!(axis_name("PC2", &f, &[0.0; 4]), "PC2: none");
        assert_eq!(axis_name("PC1", &f[..1], &[1.0]), "PC1: +recency_days");
    }

    #[test]
    fn constant_columns_are_detected_up_to_rounding() {
        assert!(constant(&[0.0, 0.0, 0.0]));
        assert!(constant(&[1e-17, -1e-17]));
        assert!(!constant(&[0.0, 1e-6]));
    }
}
