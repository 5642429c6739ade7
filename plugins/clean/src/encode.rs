//! The `encode` component: one-hot, ordinal and frequency encoding of categorical
//! columns.
//!
//! One-hot output columns are fixed by the config, not by the data: the engine checks
//! every step's output against the schema its `plan` promised before any data is read,
//! and downstream steps (say `kmeans` with `features: [channel_web, ...]`) are checked
//! against those columns too. So `method: one_hot` takes an explicit `categories:` list;
//! values outside it share `<column>_other`. A new value in next month's data then shows
//! up in `other` and in the facts instead of silently changing the table's shape.

use crate::quarantine;
use segflow_ml::encode::{
    self, Categorical, EncodeError, Infrequent, MinFrequency, NullEncoding, OneHot, Ordinal,
    OrdinalOrder, UnknownOneHot, UnknownOrdinal, ValueCounts,
};
use segflow_sdk::arrow::array::Int8Array;
use segflow_sdk::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Most values listed per list in the facts (`other`, infrequent, top values).
const FACT_VALUES: usize = 50;

/// Encode categorical columns (text, dictionary-encoded text, integers or booleans) as
/// numbers for the segment stage.
/// `one_hot` adds an int8 0/1 column `<column>_<category>` per listed category (names
/// sanitised: characters other than letters, digits and `_` become `_`), plus
/// `<column>_other` for every other value and, with `nulls: category`, `<column>_null`;
/// the categories must be listed because the output columns must be known before any
/// data is read. `ordinal` adds an int64 code `<column>_ordinal` (0-based): the listed
/// order, or fitted in sorted order (as scikit-learn's `OrdinalEncoder`) or by
/// frequency, with `max_categories` / `min_frequency` folding rare categories into one
/// shared last code. `frequency` adds `<column>_count` (int64) or `<column>_share`
/// (float64, share of the non-null values, as pandas' `value_counts(normalize=True)`).
/// The original column is dropped unless `keep_original` is set; the new columns take
/// its place. Encodings are fitted on the whole input column. Facts record per column
/// the fitted mapping with counts and what went to `other`. No row is rejected: the
/// `quarantine` port is always empty. The whole input is held in memory.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Encode {
    /// Columns to encode, each with its method: e.g. `channel: {method: one_hot,
    /// categories: [web, store, app]}`, `tier: {method: ordinal, categories: [bronze,
    /// silver, gold]}`, `region: {method: frequency, as: share}`.
    pub columns: BTreeMap<String, EncodeColumn>,
}

/// How one column is encoded.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncodeColumn {
    /// `one_hot`, `ordinal` or `frequency`.
    pub method: EncodeMethod,
    /// `one_hot` (required): the categories with a column each, in output order.
    /// `ordinal`: the categories in code order (code 0 first); omit to fit the order on
    /// the data (see `order`). Text, or integers for an integer column.
    #[serde(default)]
    pub categories: Option<Vec<CategoryValue>>,
    /// `ordinal` without `categories`: `sorted` (default; ascending value, numeric for
    /// integer columns) or `frequency` (most frequent first, ties by value).
    #[serde(default)]
    pub order: Option<OrderConfig>,
    /// `ordinal` without `categories`: at most this many codes, the last shared by the
    /// rarest categories (scikit-learn's `max_categories`: when at least this many
    /// categories remain, the `max_categories − 1` most frequent keep their own code).
    #[serde(default)]
    pub max_categories: Option<usize>,
    /// `ordinal` without `categories`: categories seen fewer times than this share the
    /// last code; an integer is a count (`>= 1`), a fraction in (0, 1] a share of all
    /// rows (scikit-learn's `min_frequency`).
    #[serde(default)]
    pub min_frequency: Option<MinFrequencyConfig>,
    /// A value outside the listed `categories`: for `one_hot` `other` (default: set
    /// `<column>_other`), `ignore` (all columns 0, no `other` column) or `error` (the
    /// step fails naming the row); for `ordinal` `null` (default) or `error`.
    #[serde(default)]
    pub unknown: Option<UnknownConfig>,
    /// `one_hot` nulls: `zeros` (default: every column 0, as pandas' `get_dummies`) or
    /// `category` (a `<column>_null` column). Ordinal and frequency keep nulls null.
    #[serde(default)]
    pub nulls: Option<NullsConfig>,
    /// `frequency`: `count` (default, int64 `<column>_count`) or `share` (float64
    /// `<column>_share`).
    #[serde(default, rename = "as")]
    pub output: Option<FrequencyAs>,
    /// Keep the original column (before the encoded ones); default false.
    #[serde(default)]
    pub keep_original: bool,
}

/// Encoding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EncodeMethod {
    /// A 0/1 column per listed category, plus `other`.
    OneHot,
    /// An integer code per category.
    Ordinal,
    /// The value's count or share.
    Frequency,
}

/// A listed category: text, an integer or a boolean.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CategoryValue {
    /// A boolean category of a boolean column.
    Bool(bool),
    /// An integer category (matched against the decimal text of integer columns).
    Int(i64),
    /// Not accepted: categories are text or integers.
    Float(f64),
    /// A text category.
    Text(String),
}

/// Order of fitted ordinal codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderConfig {
    /// Ascending value.
    Sorted,
    /// Most frequent first.
    Frequency,
}

/// A minimum frequency: a count or a share of rows.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MinFrequencyConfig {
    /// At least this many rows.
    Count(u64),
    /// At least this share of all rows.
    Share(f64),
}

/// What to do with a value outside the listed categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnknownConfig {
    /// one_hot: set the `<column>_other` column.
    Other,
    /// one_hot: all columns 0.
    Ignore,
    /// ordinal: null.
    Null,
    /// Fail the step, naming the row.
    Error,
}

/// One-hot encoding of nulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NullsConfig {
    /// Every column 0.
    Zeros,
    /// A `<column>_null` column.
    Category,
}

/// Output of frequency encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FrequencyAs {
    /// The value's count (int64).
    Count,
    /// The value's share of the non-null values (float64).
    Share,
}

/// Replace characters other than letters, digits and `_` by `_`.
fn sanitise(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The checked plan of one column.
enum Plan {
    OneHot {
        encoder: OneHot,
        /// Output column names in [`OneHot::labels`] order.
        names: Vec<String>,
    },
    Ordinal {
        listed: Option<Ordinal>,
        order: OrdinalOrder,
        infrequent: Infrequent,
        unknown: UnknownOrdinal,
        name: String,
    },
    Frequency {
        share: bool,
        name: String,
    },
}

impl Plan {
    fn fields(&self) -> Vec<Field> {
        match self {
            Plan::OneHot { names, .. } => names
                .iter()
                .map(|n| Field::new(n, DataType::Int8, false))
                .collect(),
            Plan::Ordinal { name, .. } => vec![Field::new(name, DataType::Int64, true)],
            Plan::Frequency { share, name } => vec![Field::new(
                name,
                if *share {
                    DataType::Float64
                } else {
                    DataType::Int64
                },
                true,
            )],
        }
    }
}

impl EncodeColumn {
    fn listed(&self, at: &str, data_type: &DataType) -> Result<Option<Vec<String>>> {
        let Some(cats) = &self.categories else {
            return Ok(None);
        };
        let integer = match data_type {
            DataType::Dictionary(_, v) => v.is_integer(),
            d => d.is_integer(),
        };
        let mut out = Vec::with_capacity(cats.len());
        for (i, c) in cats.iter().enumerate() {
            let here = format!("{at}.categories.{i}");
            let text = match c {
                CategoryValue::Bool(b) => b.to_string(),
                CategoryValue::Int(n) => n.to_string(),
                CategoryValue::Float(x) => {
                    return Err(Error::config(
                        &here,
                        format!("categories are text or integers, not {x}"),
                    ))
                }
                CategoryValue::Text(t) => t.clone(),
            };
            if text.is_empty() {
                return Err(Error::config(
                    &here,
                    "a category may not be empty (nulls are handled by `nulls`)",
                ));
            }
            if integer && text.parse::<i128>().is_err() {
                return Err(Error::config(
                    &here,
                    format!("`{text}` can never match: the column holds integers"),
                ));
            }
            if data_type == &DataType::Boolean && text != "true" && text != "false" {
                return Err(Error::config(
                    &here,
                    format!("`{text}` can never match: the column is boolean"),
                ));
            }
            out.push(text);
        }
        Ok(Some(out))
    }

    fn not_for(&self, at: &str, what: &str, set: bool, why: &str) -> Result<()> {
        if set {
            return Err(Error::config(&format!("{at}.{what}"), why.to_string()));
        }
        Ok(())
    }

    fn plan(&self, name: &str, data_type: &DataType) -> Result<Plan> {
        let at = format!("columns.{name}");
        let listed = self.listed(&at, data_type)?;
        let bad = |f: &str, e: EncodeError| Error::config(&format!("{at}.{f}"), e.to_string());
        match self.method {
            EncodeMethod::OneHot => {
                let Some(categories) = listed else {
                    return Err(Error::config(
                        &at,
                        format!(
                            "method `one_hot` needs `categories:`, the values that get a \
                             column each (e.g. `categories: [web, store, app]`); every other \
                             value goes to `{name}_other`. The output columns must be known \
                             before any data is read, so they cannot come from the data; a \
                             `method: frequency` step lists the values with their counts \
                             in its facts"
                        ),
                    ));
                };
                let why = "for `one_hot` the listed `categories` are the cap: every other \
                           value goes to `other`";
                self.not_for(&at, "max_categories", self.max_categories.is_some(), why)?;
                self.not_for(&at, "min_frequency", self.min_frequency.is_some(), why)?;
                self.not_for(
                    &at,
                    "order",
                    self.order.is_some(),
                    "`order` is for `ordinal`",
                )?;
                self.not_for(&at, "as", self.output.is_some(), "`as` is for `frequency`")?;
                let unknown = match self.unknown {
                    None | Some(UnknownConfig::Other) => UnknownOneHot::Other,
                    Some(UnknownConfig::Ignore) => UnknownOneHot::Ignore,
                    Some(UnknownConfig::Error) => UnknownOneHot::Error,
                    Some(UnknownConfig::Null) => {
                        return Err(Error::config(
                            &format!("{at}.unknown"),
                            "one_hot takes `unknown: other`, `ignore` or `error`",
                        ))
                    }
                };
                let nulls = match self.nulls {
                    None | Some(NullsConfig::Zeros) => NullEncoding::Zeros,
                    Some(NullsConfig::Category) => NullEncoding::Category,
                };
                let encoder =
                    OneHot::listed(categories, unknown, nulls).map_err(|e| bad("categories", e))?;
                let mut names = Vec::new();
                let mut seen: BTreeMap<String, String> = BTreeMap::new();
                for l in encoder.labels() {
                    let (label, what) = match l {
                        encode::OneHotLabel::Category(c) => {
                            (sanitise(&c), format!("category `{c}`"))
                        }
                        encode::OneHotLabel::Other => ("other".into(), "the `other` column".into()),
                        encode::OneHotLabel::Null => ("null".into(), "the `null` column".into()),
                    };
                    let col = format!("{name}_{label}");
                    if let Some(prev) = seen.insert(col.clone(), what.clone()) {
                        return Err(Error::config(
                            &format!("{at}.categories"),
                            format!(
                                "{prev} and {what} would both be written as column `{col}`; \
                                 rename a category upstream{}",
                                if label == "other" || label == "null" {
                                    " or set `unknown: ignore` / `nulls: zeros`"
                                } else {
                                    ""
                                }
                            ),
                        ));
                    }
                    names.push(col);
                }
                Ok(Plan::OneHot { encoder, names })
            }
            EncodeMethod::Ordinal => {
                self.not_for(
                    &at,
                    "nulls",
                    self.nulls.is_some(),
                    "ordinal codes keep nulls null",
                )?;
                self.not_for(&at, "as", self.output.is_some(), "`as` is for `frequency`")?;
                let unknown = match self.unknown {
                    None | Some(UnknownConfig::Null) => UnknownOrdinal::Null,
                    Some(UnknownConfig::Error) => UnknownOrdinal::Error,
                    Some(_) => {
                        return Err(Error::config(
                            &format!("{at}.unknown"),
                            "ordinal takes `unknown: null` or `error`",
                        ))
                    }
                };
                let listed = match listed {
                    Some(cats) => {
                        let why = "with listed `categories` the list is the whole code book; \
                                   omit `categories` to fit the order on the data";
                        self.not_for(&at, "order", self.order.is_some(), why)?;
                        self.not_for(&at, "max_categories", self.max_categories.is_some(), why)?;
                        self.not_for(&at, "min_frequency", self.min_frequency.is_some(), why)?;
                        Some(Ordinal::listed(cats, unknown).map_err(|e| bad("categories", e))?)
                    }
                    None => {
                        self.not_for(
                            &at,
                            "unknown",
                            self.unknown.is_some(),
                            "a fitted order knows every value: `unknown` is for listed \
                             `categories`",
                        )?;
                        None
                    }
                };
                let min_frequency = self.min_frequency.map(|m| match m {
                    MinFrequencyConfig::Count(c) => MinFrequency::Count(c),
                    MinFrequencyConfig::Share(s) => MinFrequency::Share(s),
                });
                let infrequent =
                    Infrequent::new(self.max_categories, min_frequency).map_err(|e| {
                        let f = match &e {
                            EncodeError::BadParameter { name, .. } => *name,
                            _ => "max_categories",
                        };
                        bad(f, e)
                    })?;
                Ok(Plan::Ordinal {
                    listed,
                    order: match self.order {
                        None | Some(OrderConfig::Sorted) => OrdinalOrder::Sorted,
                        Some(OrderConfig::Frequency) => OrdinalOrder::Frequency,
                    },
                    infrequent,
                    unknown,
                    name: format!("{name}_ordinal"),
                })
            }
            EncodeMethod::Frequency => {
                let why = "frequency encoding takes only `as` and `keep_original`";
                for (f, set) in [
                    ("categories", self.categories.is_some()),
                    ("order", self.order.is_some()),
                    ("max_categories", self.max_categories.is_some()),
                    ("min_frequency", self.min_frequency.is_some()),
                    ("unknown", self.unknown.is_some()),
                    ("nulls", self.nulls.is_some()),
                ] {
                    self.not_for(&at, f, set, why)?;
                }
                let share = self.output == Some(FrequencyAs::Share);
                Ok(Plan::Frequency {
                    share,
                    name: format!("{name}_{}", if share { "share" } else { "count" }),
                })
            }
        }
    }
}

impl Encode {
    /// Check the config against `schema`: the output schema and each column's plan.
    fn check(&self, schema: &SchemaRef) -> Result<(SchemaRef, BTreeMap<String, Plan>)> {
        if self.columns.is_empty() {
            return Err(Error::config(
                "columns",
                "name at least one column to encode",
            ));
        }
        let mut plans = BTreeMap::new();
        for (name, c) in &self.columns {
            let at = format!("columns.{name}");
            let f = require_column(schema, name, &at, &[])?;
            if !encode::is_categorical(f.data_type()) {
                return Err(Error::config(
                    &at,
                    format!(
                        "column `{name}` has type {}; encode takes text, dictionary-encoded \
                         text, integer or boolean columns (bin numbers first)",
                        f.data_type()
                    ),
                ));
            }
            plans.insert(name.clone(), c.plan(name, f.data_type())?);
        }
        let kept = |f: &Field| self.columns.get(f.name()).is_none_or(|c| c.keep_original);
        // Every input column that stays, so a generated name may clash with none of them.
        let mut owner: BTreeMap<String, String> = schema
            .fields()
            .iter()
            .filter(|f| kept(f))
            .map(|f| (f.name().clone(), "the input".to_string()))
            .collect();
        let mut fields = Vec::new();
        for f in schema.fields() {
            if kept(f) {
                fields.push(f.as_ref().clone());
            }
            if let Some(p) = plans.get(f.name()) {
                for nf in p.fields() {
                    if let Some(prev) = owner.insert(nf.name().clone(), f.name().clone()) {
                        return Err(Error::config(
                            &format!("columns.{}", f.name()),
                            format!(
                                "encoding `{}` writes column `{}`, which {} already has; \
                                 rename one of them upstream",
                                f.name(),
                                nf.name(),
                                if prev == "the input" {
                                    "the input".to_string()
                                } else {
                                    format!("the encoding of `{prev}`")
                                }
                            ),
                        ));
                    }
                    fields.push(nf);
                }
            }
        }
        let out = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        Ok((out, plans))
    }
}

fn value_list(values: &[(&str, u64)]) -> serde_json::Value {
    values
        .iter()
        .take(FACT_VALUES)
        .map(|(v, n)| serde_json::json!({"value": v, "count": n}))
        .collect()
}

impl Component for Encode {
    const NAME: &'static str = "encode";
    const STAGE: Stage = Stage::Clean;

    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1)
            .inputs_doc("any table with categorical (text, integer or boolean) columns")
            .outputs(&[
                (
                    "main",
                    "the input with each encoded column replaced by (or, with \
                     `keep_original`, followed by) its encoding",
                ),
                ("quarantine", "always empty: encoding rejects no row"),
            ])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        Ok(Outputs::new()
            .port("main", self.check(schema)?.0)
            .port("quarantine", quarantine::schema(schema)?))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let Some(input) = inputs.into_iter().next() else {
            return Err(Error::new("expected one input, got none"));
        };
        let schema = input.value.schema();
        let (out_schema, plans) = self.check(&schema)?;
        let q_schema = quarantine::schema(&schema)?;
        let batch = input.value.concat()?;
        let n = batch.num_rows();
        let mut encoded: BTreeMap<&str, Vec<ArrayRef>> = BTreeMap::new();
        let mut facts = serde_json::Map::new();
        for (name, plan) in &plans {
            let i = schema.index_of(name)?;
            let column = Categorical::new(batch.column(i))
                .map_err(|e| Error::new(format!("column `{name}`: {e}")))?;
            let counts = ValueCounts::of(&column);
            let fail = |e: EncodeError| Error::new(format!("column `{name}`: {e}"));
            let mut f = serde_json::Map::new();
            let arrays: Vec<ArrayRef> = match plan {
                Plan::OneHot { encoder, names } => {
                    let cols: Vec<Int8Array> = encoder.transform(&column).map_err(fail)?;
                    f.insert("method".into(), "one_hot".into());
                    f.insert(
                        "categories".into(),
                        encoder
                            .categories()
                            .iter()
                            .zip(names)
                            .map(|(c, col)| {
                                serde_json::json!({"value": c, "column": col, "count": counts.count(c)})
                            })
                            .collect::<Vec<_>>()
                            .into(),
                    );
                    let outside = encoder.outside(&counts);
                    let outside_rows: u64 = outside.iter().map(|(_, c)| c).sum();
                    f.insert(
                        "other".into(),
                        serde_json::json!({
                            "column": encoder.has_other().then(|| format!("{name}_other")),
                            "count": outside_rows,
                            "distinct": outside.len(),
                            "values": value_list(&outside),
                            "truncated": outside.len() > FACT_VALUES,
                        }),
                    );
                    f.insert("nulls".into(), counts.nulls.into());
                    cols.into_iter().map(|a| Arc::new(a) as ArrayRef).collect()
                }
                Plan::Ordinal {
                    listed,
                    order,
                    infrequent,
                    unknown,
                    ..
                } => {
                    let enc = match listed {
                        Some(l) => l.clone(),
                        None => Ordinal::fit(&counts, *order, infrequent, *unknown),
                    };
                    let codes = enc.transform(&column).map_err(fail)?;
                    f.insert("method".into(), "ordinal".into());
                    f.insert(
                        "order".into(),
                        match (listed.is_some(), order) {
                            (true, _) => "listed",
                            (false, OrdinalOrder::Sorted) => "sorted",
                            (false, OrdinalOrder::Frequency) => "frequency",
                        }
                        .into(),
                    );
                    f.insert("max_categories".into(), infrequent.max_categories().into());
                    f.insert(
                        "min_frequency".into(),
                        match infrequent.min_frequency() {
                            None => serde_json::Value::Null,
                            Some(MinFrequency::Count(c)) => c.into(),
                            Some(MinFrequency::Share(s)) => s.into(),
                        },
                    );
                    f.insert(
                        "categories".into(),
                        enc.categories()
                            .iter()
                            .enumerate()
                            .map(|(code, c)| {
                                serde_json::json!({"value": c, "code": code, "count": counts.count(c)})
                            })
                            .collect::<Vec<_>>()
                            .into(),
                    );
                    let rare: Vec<(&str, u64)> = enc
                        .infrequent()
                        .iter()
                        .map(|c| (c.as_str(), counts.count(c)))
                        .collect();
                    f.insert(
                        "other".into(),
                        serde_json::json!({
                            "code": (!rare.is_empty()).then_some(enc.categories().len()),
                            "count": rare.iter().map(|(_, c)| c).sum::<u64>(),
                            "distinct": rare.len(),
                            "values": value_list(&rare),
                            "truncated": rare.len() > FACT_VALUES,
                        }),
                    );
                    let unknown_rows: u64 = counts
                        .values
                        .iter()
                        .filter(|(v, _)| enc.code(v).is_none())
                        .map(|(_, c)| c)
                        .sum();
                    f.insert("unknown".into(), unknown_rows.into());
                    f.insert("nulls".into(), counts.nulls.into());
                    vec![Arc::new(codes) as ArrayRef]
                }
                Plan::Frequency { share, .. } => {
                    f.insert("method".into(), "frequency".into());
                    f.insert("as".into(), if *share { "share" } else { "count" }.into());
                    f.insert("distinct".into(), counts.distinct().into());
                    f.insert("non_null".into(), counts.non_null().into());
                    f.insert("nulls".into(), counts.nulls.into());
                    let top: Vec<(&str, u64)> = counts
                        .values
                        .iter()
                        .map(|(v, c)| (v.as_str(), *c))
                        .collect();
                    f.insert("top".into(), value_list(&top));
                    if *share {
                        vec![Arc::new(encode::frequency_share(&column, &counts)) as ArrayRef]
                    } else {
                        vec![Arc::new(encode::frequency_count(&column, &counts)) as ArrayRef]
                    }
                }
            };
            f.insert(
                "columns".into(),
                plan.fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect::<Vec<_>>()
                    .into(),
            );
            f.insert(
                "kept_original".into(),
                self.columns[name.as_str()].keep_original.into(),
            );
            facts.insert(name.clone(), f.into());
            encoded.insert(name.as_str(), arrays);
        }
        let dropped: BTreeSet<&str> = self
            .columns
            .iter()
            .filter(|(_, c)| !c.keep_original)
            .map(|(n, _)| n.as_str())
            .collect();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(out_schema.fields().len());
        for (f, c) in schema.fields().iter().zip(batch.columns()) {
            if !dropped.contains(f.name().as_str()) {
                columns.push(c.clone());
            }
            if let Some(a) = encoded.remove(f.name().as_str()) {
                columns.extend(a);
            }
        }
        let main = RecordBatch::try_new(out_schema, columns)?;
        ctx.fact("rows_in", n);
        ctx.fact("rows_out", n);
        ctx.fact("rows_quarantined", 0);
        ctx.fact("encoded", facts);
        Ok(Outputs::new().port("main", Table::from_batch(main)).port(
            "quarantine",
            Table::from_batch(RecordBatch::new_empty(q_schema)),
        ))
    }
}
