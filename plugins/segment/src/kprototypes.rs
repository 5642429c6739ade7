//! The `kprototypes` component.

use crate::features::{
    assignments_batch, assignments_head_fields, centre_columns, cluster_label, label_sizes, matrix,
    model_head, model_head_fields, size_order, standardize, NUMERIC,
};
use segflow_ml::kprototypes::{
    encode_categorical, fit, Categories, KPrototypesError, KPrototypesInit, KPrototypesParams,
    MixedData,
};
use segflow_sdk::arrow::array::{Float64Array, StringArray};
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// How k-prototypes picks its starting prototypes.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KPrototypesInitMethod {
    /// Cao et al. (2009): categorical prototypes from the densest rows, spread apart
    /// (deterministic); numeric part drawn around the means. `kmodes`' default.
    #[default]
    Cao,
    /// Huang (1998): categorical values sampled by frequency, moved to the closest
    /// distinct rows; numeric part drawn around the means.
    Huang,
}

/// k-prototypes clustering of customers on mixed numeric and categorical features
/// (Huang 1997/1998), for tables where region or channel matter: a segment's
/// prototype is the mean of its numeric features and the mode (most frequent value)
/// of each categorical one, and a customer's cost to a prototype is the squared
/// distance on the numeric features plus `gamma` times the number of categorical
/// features that differ. As the Python `kmodes` package's `KPrototypes` (Cao or Huang
/// starts, Huang's online updates, best of `n_init` runs by total cost). Deterministic
/// for a seed whatever the thread count. Segments are numbered by size (segment 0 is
/// the largest); numeric centres in `model` are in original units even when
/// `standardize` is on.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KPrototypes {
    /// Number of segments. When the input has only `d <= k` distinct rows, each
    /// distinct row becomes a segment (`k` in the facts says how many).
    #[schemars(range(min = 1))]
    pub k: usize,
    /// Numeric columns, e.g. `[recency_days, frequency, monetary_sum]`.
    pub numeric: Vec<String>,
    /// Categorical columns (text, dictionary, integer or boolean), e.g. `[region,
    /// channel]`. Compared by equality: a value either matches the prototype's or not.
    pub categorical: Vec<String>,
    /// Column identifying the customer, carried into `assignments`.
    #[serde(default = "default_key")]
    pub key: String,
    /// Scale each numeric feature to mean 0 and standard deviation 1 before
    /// clustering. A constant feature stays 0.
    #[serde(default = "yes")]
    pub standardize: bool,
    /// Weight of one categorical mismatch against squared numeric distance (in the
    /// standardised space when `standardize` is on). Left out: 0.5 × the mean standard
    /// deviation of the numeric features (0.5 when standardised), as `kmodes`; 1 when
    /// every numeric feature is constant. Higher makes the categorical features weigh
    /// more.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub gamma: Option<f64>,
    /// Starting prototypes: `cao` or `huang`.
    #[serde(default)]
    pub init: KPrototypesInitMethod,
    /// Runs from different starts; the lowest total cost wins.
    #[serde(default = "default_n_init")]
    #[schemars(range(min = 1))]
    pub n_init: usize,
    /// Most passes over the rows per run.
    #[serde(default = "default_max_iter")]
    #[schemars(range(min = 1))]
    pub max_iter: usize,
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
fn default_n_init() -> usize {
    10
}
fn default_max_iter() -> usize {
    100
}

/// The data types a categorical column may have.
fn categorical_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean
    ) || t.is_integer()
        || matches!(t, DataType::Dictionary(_, v) if v.is_integer() || matches!(v.as_ref(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
}

fn assignments_schema(key: &Field) -> SchemaRef {
    let mut fields = assignments_head_fields(key);
    fields.push(Field::new("cost", DataType::Float64, false));
    Arc::new(Schema::new(fields))
}

fn model_schema(numeric: &[String], categorical: &[String]) -> SchemaRef {
    let mut fields = model_head_fields();
    fields.extend(
        numeric
            .iter()
            .map(|f| Field::new(f, DataType::Float64, false)),
    );
    fields.extend(
        categorical
            .iter()
            .map(|f| Field::new(f, DataType::Utf8, false)),
    );
    Arc::new(Schema::new(fields))
}

impl KPrototypes {
    /// Config checks that need no schema.
    fn check(&self) -> Result<()> {
        if self.k == 0 {
            return Err(Error::config("k", "k must be at least 1"));
        }
        if self.numeric.is_empty() {
            return Err(Error::config(
                "numeric",
                "list at least one numeric column (with categorical columns only, every customer's distance is a count of mismatches: use `rules` or one-hot encode and use `kmeans`)",
            ));
        }
        if self.categorical.is_empty() {
            return Err(Error::config(
                "categorical",
                "list at least one categorical column, or use `kmeans` for numeric features only",
            ));
        }
        if let Some(g) = self.gamma {
            if !g.is_finite() || g < 0.0 {
                return Err(Error::config(
                    "gamma",
                    format!("gamma must be a finite number >= 0, got {g}"),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        let all = self
            .numeric
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("numeric.{i}"), c))
            .chain(
                self.categorical
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (format!("categorical.{i}"), c)),
            );
        for (field, c) in all {
            if ["segment_id", "segment", "size"].contains(&c.as_str()) {
                return Err(Error::config(
                    &field,
                    format!(
                        "the column `{c}` would clash with a column of `model`; rename it first"
                    ),
                ));
            }
            if !seen.insert(c.clone()) {
                return Err(Error::config(
                    &field,
                    format!("the column `{c}` is listed twice; list each feature once, as numeric or as categorical"),
                ));
            }
        }
        Ok(())
    }

    fn check_schema(&self, schema: &SchemaRef) -> Result<()> {
        require_column(schema, &self.key, "key", &[])?;
        for (i, f) in self.numeric.iter().enumerate() {
            require_column(schema, f, &format!("numeric.{i}"), NUMERIC)?;
        }
        for (i, c) in self.categorical.iter().enumerate() {
            let field = format!("categorical.{i}");
            let f = require_column(schema, c, &field, &[])?;
            if !categorical_type(f.data_type()) {
                return Err(Error::config(
                    &field,
                    format!(
                        "column `{c}` has type {}; categorical features must be text, dictionary, integer or boolean columns (bin a numeric column first, or list it under `numeric`)",
                        f.data_type()
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Component for KPrototypes {
    const NAME: &'static str = "kprototypes";
    const STAGE: Stage = Stage::Segment;

    fn ports() -> Ports {
        Ports::new(Stage::Segment, 1, 1)
            .inputs_doc("one row per customer with numeric and categorical features")
            .outputs(&[
                (
                    "assignments",
                    "key, segment_id, segment, cost (the customer's dissimilarity to the segment's prototype)",
                ),
                (
                    "model",
                    "one row per segment: size, numeric centres in original units, and the mode of each categorical feature",
                ),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        self.check()?;
        self.check_schema(schema)?;
        let key = schema.field_with_name(&self.key)?.clone();
        Ok(Outputs::new()
            .port("assignments", assignments_schema(&key))
            .port("model", model_schema(&self.numeric, &self.categorical)))
    }

    fn run(&self, mut inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        self.check()?;
        let batch = inputs.remove(0).value.concat()?;
        let n = batch.num_rows();
        let p = self.numeric.len();
        let m = self.categorical.len();
        if n == 0 {
            return Err(Error::new(
                "the input has no rows, so there is nothing to segment; check the upstream step",
            ));
        }
        if n < self.k {
            return Err(Error::config(
                "k",
                format!(
                    "k = {} but the input has only {n} rows; lower k or check the upstream step",
                    self.k
                ),
            ));
        }
        // Numeric matrix (errors name the column and row; the field is `numeric.i`).
        let mut x = matrix(&batch, &self.numeric).map_err(|e| {
            let msg = e.message().to_string();
            match e.field().and_then(|f| f.strip_prefix("features.")) {
                Some(i) => Error::config(&format!("numeric.{i}"), msg),
                None => e,
            }
        })?;
        let scaling = self.standardize.then(|| standardize(&mut x, p));
        // Categorical codes, row-major.
        let mut cats: Vec<Categories> = Vec::with_capacity(m);
        for (i, c) in self.categorical.iter().enumerate() {
            let col = batch
                .column_by_name(c)
                .ok_or_else(|| Error::config("categorical", format!("column `{c}` is missing")))?;
            let e = encode_categorical(col.as_ref()).map_err(|e| {
                Error::config(&format!("categorical.{i}"), format!("column `{c}`: {e}"))
            })?;
            cats.push(e);
        }
        let mut codes = vec![0u32; n * m];
        for (b, cat) in cats.iter().enumerate() {
            for (i, &v) in cat.codes.iter().enumerate() {
                codes[i * m + b] = v;
            }
        }
        let params = KPrototypesParams::new(self.k)
            .gamma(self.gamma)
            .init(match self.init {
                KPrototypesInitMethod::Cao => KPrototypesInit::Cao,
                KPrototypesInitMethod::Huang => KPrototypesInit::Huang,
            })
            .n_init(self.n_init)
            .max_iter(self.max_iter)
            .seed(self.seed);
        let t = std::time::Instant::now();
        let data = MixedData::new(&x, p, &codes, m);
        let model = ctx
            .pool()
            .install(|| fit(&data, &params))
            .map_err(|e| match e {
                KPrototypesError::NoStart { .. } => Error::config("k", e.to_string()),
                e => Error::new(e.to_string()),
            })?;
        let k = model.k;

        // Number segments by size, largest first (ties: lower original index first).
        let sizes = label_sizes(&model.labels, k);
        let (order, rank) = size_order(&sizes);
        let ids: Vec<i32> = model.labels.iter().map(|&l| rank[l as usize]).collect();
        let names: Vec<String> = ids.iter().map(|&r| cluster_label(r)).collect();
        let assignments = assignments_batch(
            assignments_schema,
            &batch,
            &self.key,
            ids,
            names,
            vec![Arc::new(Float64Array::from(model.row_cost.clone()))],
        )?;

        let mut cols = model_head(&order, &sizes);
        cols.extend(centre_columns(&order, &model.numeric, p, scaling.as_ref()));
        for (b, cat) in cats.iter().enumerate() {
            let vals: Vec<&str> = order
                .iter()
                .map(|&j| cat.values[model.categorical[j * m + b] as usize].as_str())
                .collect();
            cols.push(Arc::new(StringArray::from(vals)));
        }
        let model_batch =
            RecordBatch::try_new(model_schema(&self.numeric, &self.categorical), cols)?;

        ctx.fact("k", k);
        ctx.fact("numeric", &self.numeric);
        ctx.fact("categorical", &self.categorical);
        ctx.fact("gamma", model.gamma);
        ctx.fact("gamma_source", model.gamma_source.name());
        ctx.fact("cost", model.cost);
        ctx.fact("cost_per_init", &model.cost_per_init);
        ctx.fact("n_iter", model.n_iter);
        ctx.fact("converged", model.converged);
        ctx.fact("n_iter_per_init", &model.n_iter_per_init);
        ctx.fact("epoch_costs", &model.epoch_costs);
        ctx.fact(
            "init",
            match self.init {
                KPrototypesInitMethod::Cao => "cao",
                KPrototypesInitMethod::Huang => "huang",
            },
        );
        ctx.fact("sizes", order.iter().map(|&j| sizes[j]).collect::<Vec<_>>());
        ctx.fact(
            "categories",
            self.categorical
                .iter()
                .zip(&cats)
                .map(|(c, cat)| (c.clone(), serde_json::json!(cat.values.len())))
                .collect::<serde_json::Map<_, _>>(),
        );
        if let Some(d) = model.distinct_rows {
            ctx.fact("distinct_rows", d);
            if d < self.k {
                segflow_sdk::tracing::warn!(
                    k = self.k,
                    distinct_rows = d,
                    "the input has only {d} distinct rows, fewer than k = {}: each is a segment",
                    self.k
                );
            }
        }
        if let Some((mean, sd)) = &scaling {
            ctx.fact("standardize", serde_json::json!({"mean": mean, "std": sd}));
        }
        if model.gamma_source == segflow_ml::kprototypes::GammaSource::ConstantNumeric {
            segflow_sdk::tracing::warn!(
                "every numeric feature is constant, so the default gamma would be 0 and ignore the categorical features; gamma 1 is used"
            );
        }
        segflow_sdk::tracing::info!(
            k,
            gamma = model.gamma,
            cost = model.cost,
            iterations = model.n_iter,
            seconds = t.elapsed().as_secs_f64(),
            "k-prototypes fitted"
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
        let c: KPrototypes = serde_json::from_value(serde_json::json!({
            "k": 3, "numeric": ["a"], "categorical": ["region"]
        }))
        .unwrap();
        assert_eq!((c.n_init, c.max_iter, c.seed), (10, 100, 0));
        assert_eq!(c.init, KPrototypesInitMethod::Cao);
        assert!(c.standardize && c.gamma.is_none());
        c.check().unwrap();
        let bad = |v: serde_json::Value| {
            serde_json::from_value::<KPrototypes>(v)
                .unwrap()
                .check()
                .unwrap_err()
                .field()
                .map(str::to_string)
        };
        assert_eq!(
            bad(serde_json::json!({"k": 3, "numeric": [], "categorical": ["r"]})).as_deref(),
            Some("numeric")
        );
        assert_eq!(
            bad(serde_json::json!({"k": 3, "numeric": ["a"], "categorical": []})).as_deref(),
            Some("categorical")
        );
        assert_eq!(
            bad(serde_json::json!({"k": 3, "numeric": ["a"], "categorical": ["a"]})).as_deref(),
            Some("categorical.0")
        );
        assert_eq!(
            bad(serde_json::json!({"k": 3, "numeric": ["size"], "categorical": ["r"]})).as_deref(),
            Some("numeric.0")
        );
        assert_eq!(
            bad(serde_json::json!({"k": 0, "numeric": ["a"], "categorical": ["r"]})).as_deref(),
            Some("k")
        );
        assert!(serde_json::from_value::<KPrototypes>(serde_json::json!({
            "k": 3, "numeric": ["a"], "categorical": ["r"], "init": "random"
        }))
        .is_err());
    }
}
