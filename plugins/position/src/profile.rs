//! The `profile` component.

use crate::inputs::{self, is_numeric, is_text, segmentation_name, Segmentation};
use crate::profiles::{self, float64, CATEGORY_STATS, FEATURE_STATS};
use segflow_ml::profile::{self as prof, ValueShare};
use segflow_sdk::arrow::array::{Int32Array, Int64Array, StringArray};
use segflow_sdk::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Segment profiles: one row per segment of every segmentation given, with its size and
/// share of customers, its share of revenue, the mean, median and standard deviation of
/// every feature with an index and a z-score against the whole base, and the most
/// common and most over-represented value of every category with its lift.
///
/// `needs:` one per-customer features table (e.g. `customer_features`) and one or more
/// segmentations (any segmenter's `assignments`), joined on `key`. The base of a
/// segmentation is its customers. Definitions: `index = 100 × segment mean / base
/// mean` (null when the base mean is 0); `z = (segment mean − base mean) / base
/// standard deviation` (sample, null for a constant feature); a category value's
/// `share` is the share of the segment's customers with it, or for mix columns
/// (`channel_share_web`, ...) the segment's mean share, and `lift = segment share /
/// base share`. Nulls are left out of a feature's statistics.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Column identifying the customer in the features and the segmentations.
    #[serde(default = "default_key")]
    pub key: String,
    /// Numeric (or Boolean, as 0/1) columns to profile. Default: every numeric and
    /// Boolean column of the features table except the key and mix columns
    /// (`<c>_share_<v>`, profiled as categories).
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Column summed for `revenue` and `revenue_share` (a segment's share of the
    /// segmentation's total). Set to `null` when the features have no spend column.
    #[serde(default = "default_revenue")]
    pub revenue: Option<String>,
    /// Categorical attributes to profile: text columns (e.g. `region`), or the prefix
    /// `c` of mix columns `c_share_<value>` from `customer_features`' `shares:` (e.g.
    /// `channel`). Default: every text column except the key, and every mix prefix.
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    /// Least share of a segment a category value must hold to be its `distinctive`
    /// value (so a value held by a handful of customers does not win on lift alone).
    #[serde(default = "default_min_share")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_share: f64,
    /// Column with each customer's lifetime value (e.g. predicted CLV): adds
    /// `clv_mean`, `clv_total` and `clv_share`.
    #[serde(default)]
    pub clv: Option<String>,
    /// Column with each customer's churn probability or 0/1 churn flag: adds
    /// `churn_rate`, its mean over the segment.
    #[serde(default)]
    pub churn: Option<String>,
    /// An earlier period of a segmentation, to measure growth and stability:
    /// `segmentation: needs-reference`, e.g. `{segments: segments_q3}` with
    /// `segments_q3` also in `needs:`. Adds `customers_previous` (customers with the
    /// same segment label then), `growth` (customers / customers_previous − 1) and
    /// `stability` (share of the earlier segment's customers still in it; those no
    /// longer in the base count as gone). Segments are matched by label.
    #[serde(default)]
    pub previous: BTreeMap<String, String>,
}

fn default_key() -> String {
    "customer_id".into()
}
fn default_revenue() -> Option<String> {
    Some("monetary_sum".into())
}
fn default_min_share() -> f64 {
    0.05
}

/// A categorical attribute and where its values come from.
#[derive(Debug, Clone)]
enum Category {
    /// A text column.
    Column(String),
    /// Mix columns `prefix_share_<value>`: (value, column name).
    Mix(String, Vec<(String, String)>),
}

impl Category {
    fn name(&self) -> &str {
        match self {
            Category::Column(c) | Category::Mix(c, _) => c,
        }
    }
}

/// Mix column groups of a schema: prefix → [(value, column)], in column order.
fn mix_groups(schema: &Schema) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for f in schema.fields() {
        if !is_numeric(f.data_type()) {
            continue;
        }
        if let Some((prefix, value)) = f.name().split_once("_share_") {
            if !prefix.is_empty() && !value.is_empty() {
                out.entry(prefix.to_string())
                    .or_default()
                    .push((value.to_string(), f.name().clone()));
            }
        }
    }
    out
}

/// What the plan resolved from the config and the features schema.
struct Resolved {
    features: Vec<String>,
    categories: Vec<Category>,
}

impl Profile {
    fn resolve(&self, schema: &Schema) -> Result<Resolved> {
        let mixes = mix_groups(schema);
        let mix_columns: Vec<&str> = mixes.values().flatten().map(|(_, c)| c.as_str()).collect();
        let features = match &self.features {
            Some(list) => {
                for (i, f) in list.iter().enumerate() {
                    let field = inputs::feature_field(schema, &self.key, i, f)?;
                    if !is_numeric(field.data_type()) {
                        return Err(Error::config(
                            &format!("features.{i}"),
                            format!(
                                "column `{f}` is {}, not numeric; list it under `categories:` to profile it as a category",
                                field.data_type()
                            ),
                        ));
                    }
                }
                list.clone()
            }
            None => inputs::numeric_columns(schema, &self.key, &mix_columns),
        };
        let mut seen = std::collections::HashSet::new();
        for (i, f) in features.iter().enumerate() {
            if !seen.insert(f) {
                return Err(Error::config(
                    &format!("features.{i}"),
                    format!("`{f}` is listed twice"),
                ));
            }
        }
        let categories = match &self.categories {
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, c)| match schema.field_with_name(c) {
                    Ok(f) if is_text(f.data_type()) => Ok(Category::Column(c.clone())),
                    Ok(f) => Err(Error::config(
                        &format!("categories.{i}"),
                        format!("column `{c}` is {}, not text; profile it under `features:` instead", f.data_type()),
                    )),
                    Err(_) => match mixes.get(c) {
                        Some(cols) => Ok(Category::Mix(c.clone(), cols.clone())),
                        None => Err(Error::config(
                            &format!("categories.{i}"),
                            format!(
                                "the features table has neither a text column `{c}` nor mix columns `{c}_share_<value>`; categories available: {}",
                                default_categories(schema, &self.key, &mixes)
                                    .iter()
                                    .map(|c| c.name().to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )),
                    },
                })
                .collect::<Result<Vec<_>>>()?,
            None => default_categories(schema, &self.key, &mixes),
        };
        for (field, col) in [
            ("revenue", &self.revenue),
            ("clv", &self.clv),
            ("churn", &self.churn),
        ] {
            if let Some(c) = col {
                let f = schema.field_with_name(c).map_err(|_| {
                    let hint = if field == "revenue" {
                        "; set `revenue:` to the spend column, or `revenue: null` when there is none"
                    } else {
                        ""
                    };
                    Error::config(
                        field,
                        format!("the features table has no column `{c}`{hint}"),
                    )
                })?;
                if !is_numeric(f.data_type()) {
                    return Err(Error::config(
                        field,
                        format!("column `{c}` is {}, not numeric", f.data_type()),
                    ));
                }
            }
        }
        Ok(Resolved {
            features,
            categories,
        })
    }

    fn output_schema(&self, r: &Resolved) -> SchemaRef {
        let mut fields = profiles::head_fields();
        fields.push(Field::new("customers", DataType::Int64, false));
        fields.push(Field::new("customer_share", DataType::Float64, false));
        fields.push(Field::new("revenue", DataType::Float64, true));
        fields.push(Field::new("revenue_share", DataType::Float64, true));
        let f64f = |n: &str| Field::new(n, DataType::Float64, true);
        if self.clv.is_some() {
            fields.extend(["clv_mean", "clv_total", "clv_share"].map(f64f));
        }
        if self.churn.is_some() {
            fields.push(f64f("churn_rate"));
        }
        if !self.previous.is_empty() {
            fields.push(Field::new("customers_previous", DataType::Int64, true));
            fields.push(f64f("growth"));
            fields.push(f64f("stability"));
        }
        for f in &r.features {
            for s in FEATURE_STATS {
                fields.push(f64f(&format!("{f}_{s}")));
            }
        }
        for c in &r.categories {
            for s in CATEGORY_STATS {
                let name = format!("{}_{s}", c.name());
                fields.push(if s.ends_with("share") || s.ends_with("lift") {
                    f64f(&name)
                } else {
                    Field::new(name, DataType::Utf8, true)
                });
            }
        }
        Arc::new(Schema::new(fields))
    }
}

fn default_categories(
    schema: &Schema,
    key: &str,
    mixes: &BTreeMap<String, Vec<(String, String)>>,
) -> Vec<Category> {
    let mut out: Vec<Category> = schema
        .fields()
        .iter()
        .filter(|f| f.name() != key && is_text(f.data_type()))
        .map(|f| Category::Column(f.name().clone()))
        .collect();
    out.extend(
        mixes
            .iter()
            .filter(|(p, _)| schema.field_with_name(p).is_err())
            .map(|(p, cols)| Category::Mix(p.clone(), cols.clone())),
    );
    out
}

impl Component for Profile {
    const NAME: &'static str = "profile";
    const STAGE: Stage = Stage::Position;

    fn ports() -> Ports {
        Ports::new(Stage::Position, 2, usize::MAX)
            .inputs_doc("one per-customer features table (e.g. customer_features) and one or more segmentations (segmenters' assignments), joined on the key; plus the earlier periods named in `previous:`")
            .outputs(&[
                ("profiles", "one row per segment of every segmentation: size, revenue share, per-feature mean/median/std/index/z, top and distinctive category values with lift"),
                ("categories", "long table: every category value per segment with share, base share and lift"),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let (current, roles, _) = inputs::plan_previous(&self.previous, inputs, &self.key)?;
        let resolved = self.resolve(&current[roles.features].value)?;
        Ok(Outputs::new()
            .port("profiles", self.output_schema(&resolved))
            .port("categories", categories_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let (current, earlier) = inputs::split_previous(&self.previous, inputs)?;
        let mut earlier_labels: HashMap<String, HashMap<String, String>> = HashMap::new();
        for e in earlier {
            let name = e.name.clone();
            let batch = e.value.concat()?;
            earlier_labels.insert(name.clone(), inputs::key_labels(&batch, &self.key, &name)?);
        }
        let joined = inputs::join(current, &self.key)?;
        let resolved = self.resolve(&joined.features.schema())?;
        let schema = self.output_schema(&resolved);
        let f = &joined.features;
        let feature_values: Vec<Vec<Option<f64>>> = resolved
            .features
            .iter()
            .enumerate()
            .map(|(i, c)| inputs::numeric(f, c, &format!("features.{i}")))
            .collect::<Result<_>>()?;
        let column = |c: &Option<String>, field: &str| {
            c.as_ref().map(|c| inputs::numeric(f, c, field)).transpose()
        };
        let revenue = column(&self.revenue, "revenue")?;
        let clv = column(&self.clv, "clv")?;
        let churn = column(&self.churn, "churn")?;
        let cat_values: Vec<CategoryValues> = resolved
            .categories
            .iter()
            .map(|c| -> Result<CategoryValues> {
                Ok(match c {
                    Category::Column(col) => {
                        CategoryValues::Text(inputs::text(f, col, "categories")?)
                    }
                    Category::Mix(_, cols) => CategoryValues::Mix(
                        cols.iter()
                            .map(|(v, col)| Ok((v.clone(), inputs::numeric(f, col, "categories")?)))
                            .collect::<Result<_>>()?,
                    ),
                })
            })
            .collect::<Result<_>>()?;
        let key_text = if self.previous.is_empty() {
            Vec::new()
        } else {
            key_strings(f, &self.key)?
        };

        let mut rows = RowsBuilder::default();
        let mut long = LongBuilder::default();
        let mut seg_facts = serde_json::Map::new();
        for seg in &joined.segmentations {
            let k = seg.segments.len();
            let group = seg.positions();
            let n = group.len();
            let take = |v: &[Option<f64>]| seg.rows.iter().map(|&r| v[r]).collect::<Vec<_>>();
            let mut sizes = vec![0i64; k];
            for &g in &group {
                sizes[g] += 1;
            }
            let (rev, rev_total) = match &revenue {
                Some(v) => {
                    let (per, total) = prof::sums(&take(v), &group, k);
                    (Some(per), total)
                }
                None => (None, 0.0),
            };
            if revenue.is_some() && rev_total <= 0.0 {
                segflow_sdk::tracing::warn!(
                    segmentation = %seg.name,
                    total = rev_total,
                    "the total revenue is not positive, so revenue shares are null"
                );
            }
            let clv_stats = clv.as_ref().map(|v| {
                let taken = take(v);
                let (per, total) = prof::sums(&taken, &group, k);
                let means = prof::feature(&taken, &group, k);
                (per, total, means)
            });
            let churn_stats = churn.as_ref().map(|v| prof::feature(&take(v), &group, k));
            let previous = self
                .previous
                .get(&seg.name)
                .map(|r| {
                    let labels = earlier_labels
                        .iter()
                        .find(|(n, _)| *n == r || segmentation_name(n) == *r)
                        .map(|(_, l)| l)
                        .ok_or_else(|| {
                            Error::config(&format!("previous.{}", seg.name), "missing input")
                        })?;
                    Ok::<_, Error>(previous_stats(seg, &key_text, labels))
                })
                .transpose()?;
            // features are independent: profile them in parallel (the result does not
            // depend on the thread count)
            let feats: Vec<prof::FeatureProfile> = ctx.pool().install(|| {
                use rayon::prelude::*;
                feature_values
                    .par_iter()
                    .map(|v| prof::feature(&take(v), &group, k))
                    .collect()
            });
            let cats: Vec<Vec<ValueShare>> = cat_values
                .iter()
                .map(|c| match c {
                    CategoryValues::Text(v) => {
                        let vals: Vec<Option<&str>> =
                            seg.rows.iter().map(|&r| v[r].as_deref()).collect();
                        prof::category(&vals, &group, k)
                    }
                    CategoryValues::Mix(cols) => {
                        let taken: Vec<(String, Vec<Option<f64>>)> = cols
                            .iter()
                            .map(|(name, v)| (name.clone(), take(v)))
                            .collect();
                        prof::mix(&taken, &group, k)
                    }
                })
                .collect();
            for (g, (id, label)) in seg.segments.iter().enumerate() {
                rows.head(&seg.name, *id, label, sizes[g], n);
                let share = |x: f64, total: f64| (total > 0.0).then(|| x / total);
                match &rev {
                    Some(per) => {
                        rows.revenue.push(Some(per[g]));
                        rows.revenue_share.push(share(per[g], rev_total));
                    }
                    None => {
                        rows.revenue.push(None);
                        rows.revenue_share.push(None);
                    }
                }
                let mut extra: Vec<Option<f64>> = Vec::new();
                if let Some((per, total, means)) = &clv_stats {
                    extra.extend([means.groups[g].mean, Some(per[g]), share(per[g], *total)]);
                }
                if let Some(c) = &churn_stats {
                    extra.push(c.groups[g].mean);
                }
                rows.extra.push(extra);
                rows.previous.push(previous.as_ref().map(|p| p[g]));
                let mut stats = Vec::with_capacity(feats.len() * FEATURE_STATS.len());
                for fp in &feats {
                    let s = fp.groups[g];
                    stats.extend([s.mean, s.median, s.std, fp.index[g], fp.z[g]]);
                }
                rows.stats.push(stats);
                let mut cstats = Vec::new();
                for (c, shares) in resolved.categories.iter().zip(&cats) {
                    let top = prof::top(shares, g);
                    let dist = prof::distinctive(shares, g, self.min_share);
                    cstats.push((
                        top.map(|v| v.value.clone()),
                        top.map(|v| v.shares[g]),
                        top.and_then(|v| v.lifts[g]),
                        dist.map(|v| v.value.clone()),
                        dist.map(|v| v.shares[g]),
                        dist.and_then(|v| v.lifts[g]),
                    ));
                    for v in shares {
                        long.push(&seg.name, *id, label, c.name(), v, g);
                    }
                }
                rows.cats.push(cstats);
            }
            let mut sf = serde_json::Map::new();
            sf.insert("customers".into(), n.into());
            sf.insert("segments".into(), k.into());
            if revenue.is_some() {
                sf.insert("revenue_total".into(), rev_total.into());
            }
            for (name, fp) in resolved.features.iter().zip(&feats) {
                if fp.base.std.is_none_or(|s| s == 0.0) {
                    segflow_sdk::tracing::warn!(
                        segmentation = %seg.name,
                        feature = %name,
                        "the feature is constant over the base, so its z-scores are null"
                    );
                }
            }
            sf.insert(
                "base".into(),
                resolved
                    .features
                    .iter()
                    .zip(&feats)
                    .map(|(name, fp)| {
                        (
                            name.clone(),
                            serde_json::json!({"mean": fp.base.mean, "median": fp.base.median, "std": fp.base.std, "count": fp.base.count}),
                        )
                    })
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            );
            if k == 1 {
                segflow_sdk::tracing::warn!(
                    segmentation = %seg.name,
                    "the segmentation has one segment, so every index is 100 and every z-score 0"
                );
            }
            seg_facts.insert(seg.name.clone(), sf.into());
        }
        ctx.fact("features", &resolved.features);
        ctx.fact(
            "categories",
            resolved
                .categories
                .iter()
                .map(|c| c.name().to_string())
                .collect::<Vec<_>>(),
        );
        ctx.fact("segmentations", seg_facts);
        let profiles = rows.finish(schema, self, &resolved)?;
        let categories = long.finish()?;
        segflow_sdk::tracing::info!(segments = profiles.num_rows(), "segments profiled");
        Ok(Outputs::new()
            .port("profiles", Table::from_batch(profiles))
            .port("categories", Table::from_batch(categories)))
    }
}

enum CategoryValues {
    Text(Vec<Option<String>>),
    Mix(Vec<(String, Vec<Option<f64>>)>),
}

/// The key of every row as text (for matching an earlier period's segmentation).
fn key_strings(batch: &RecordBatch, key: &str) -> Result<Vec<String>> {
    Ok(inputs::text(batch, key, "key")?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// Per segment: (customers with the label in the earlier period, of them still in it).
fn previous_stats(
    seg: &Segmentation,
    keys: &[String],
    earlier: &HashMap<String, String>,
) -> Vec<(i64, i64)> {
    let pos: HashMap<&str, usize> = seg
        .segments
        .iter()
        .enumerate()
        .map(|(p, (_, l))| (l.as_str(), p))
        .collect();
    let mut now: HashMap<&str, &str> = HashMap::with_capacity(seg.rows.len());
    let labels: Vec<&str> = seg
        .ids
        .iter()
        .map(|id| {
            seg.segments
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, l)| l.as_str())
                .unwrap_or("")
        })
        .collect();
    for (&r, l) in seg.rows.iter().zip(&labels) {
        now.insert(keys[r].as_str(), l);
    }
    let mut out = vec![(0i64, 0i64); seg.segments.len()];
    for (k, l) in earlier {
        if let Some(&p) = pos.get(l.as_str()) {
            out[p].0 += 1;
            if now.get(k.as_str()) == Some(&l.as_str()) {
                out[p].1 += 1;
            }
        }
    }
    out
}

fn categories_schema() -> SchemaRef {
    let mut fields = profiles::head_fields();
    fields.extend([
        Field::new("category", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
        Field::new("share", DataType::Float64, false),
        Field::new("base_share", DataType::Float64, false),
        Field::new("lift", DataType::Float64, true),
    ]);
    Arc::new(Schema::new(fields))
}

type CatStats = (
    Option<String>,
    Option<f64>,
    Option<f64>,
    Option<String>,
    Option<f64>,
    Option<f64>,
);

#[derive(Default)]
struct RowsBuilder {
    segmentation: Vec<String>,
    id: Vec<i32>,
    label: Vec<String>,
    customers: Vec<i64>,
    customer_share: Vec<f64>,
    revenue: Vec<Option<f64>>,
    revenue_share: Vec<Option<f64>>,
    extra: Vec<Vec<Option<f64>>>,
    previous: Vec<Option<(i64, i64)>>,
    stats: Vec<Vec<Option<f64>>>,
    cats: Vec<Vec<CatStats>>,
}

impl RowsBuilder {
    fn head(&mut self, seg: &str, id: i32, label: &str, size: i64, n: usize) {
        self.segmentation.push(seg.to_string());
        self.id.push(id);
        self.label.push(label.to_string());
        self.customers.push(size);
        self.customer_share
            .push(if n > 0 { size as f64 / n as f64 } else { 0.0 });
    }

    fn finish(self, schema: SchemaRef, cfg: &Profile, r: &Resolved) -> Result<RecordBatch> {
        let rows = self.id.len();
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(self.segmentation)),
            Arc::new(Int32Array::from(self.id)),
            Arc::new(StringArray::from(self.label)),
            Arc::new(Int64Array::from(self.customers.clone())),
            float64(self.customer_share.into_iter().map(Some).collect()),
            float64(self.revenue),
            float64(self.revenue_share),
        ];
        let n_extra = 3 * cfg.clv.is_some() as usize + cfg.churn.is_some() as usize;
        for j in 0..n_extra {
            cols.push(float64(self.extra.iter().map(|e| e[j]).collect()));
        }
        if !cfg.previous.is_empty() {
            cols.push(Arc::new(Int64Array::from(
                self.previous
                    .iter()
                    .map(|p| p.map(|p| p.0))
                    .collect::<Vec<_>>(),
            )));
            cols.push(float64(
                self.previous
                    .iter()
                    .zip(&self.customers)
                    .map(|(p, &now)| {
                        p.and_then(|(before, _)| {
                            (before > 0).then(|| now as f64 / before as f64 - 1.0)
                        })
                    })
                    .collect(),
            ));
            cols.push(float64(
                self.previous
                    .iter()
                    .map(|p| {
                        p.and_then(|(before, kept)| {
                            (before > 0).then(|| kept as f64 / before as f64)
                        })
                    })
                    .collect(),
            ));
        }
        for j in 0..r.features.len() * FEATURE_STATS.len() {
            cols.push(float64(self.stats.iter().map(|s| s[j]).collect()));
        }
        for c in 0..r.categories.len() {
            let get = |i: usize| -> &CatStats { &self.cats[i][c] };
            cols.push(Arc::new(StringArray::from(
                (0..rows).map(|i| get(i).0.clone()).collect::<Vec<_>>(),
            )));
            cols.push(float64((0..rows).map(|i| get(i).1).collect()));
            cols.push(float64((0..rows).map(|i| get(i).2).collect()));
            cols.push(Arc::new(StringArray::from(
                (0..rows).map(|i| get(i).3.clone()).collect::<Vec<_>>(),
            )));
            cols.push(float64((0..rows).map(|i| get(i).4).collect()));
            cols.push(float64((0..rows).map(|i| get(i).5).collect()));
        }
        Ok(RecordBatch::try_new(schema, cols)?)
    }
}

#[derive(Default)]
struct LongBuilder {
    segmentation: Vec<String>,
    id: Vec<i32>,
    label: Vec<String>,
    category: Vec<String>,
    value: Vec<String>,
    share: Vec<f64>,
    base: Vec<f64>,
    lift: Vec<Option<f64>>,
}

impl LongBuilder {
    fn push(&mut self, seg: &str, id: i32, label: &str, category: &str, v: &ValueShare, g: usize) {
        self.segmentation.push(seg.to_string());
        self.id.push(id);
        self.label.push(label.to_string());
        self.category.push(category.to_string());
        self.value.push(v.value.clone());
        self.share.push(v.shares[g]);
        self.base.push(v.base_share);
        self.lift.push(v.lifts[g]);
    }

    fn finish(self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            categories_schema(),
            vec![
                Arc::new(StringArray::from(self.segmentation)),
                Arc::new(Int32Array::from(self.id)),
                Arc::new(StringArray::from(self.label)),
                Arc::new(StringArray::from(self.category)),
                Arc::new(StringArray::from(self.value)),
                float64(self.share.into_iter().map(Some).collect()),
                float64(self.base.into_iter().map(Some).collect()),
                float64(self.lift),
            ],
        )?)
    }
}
