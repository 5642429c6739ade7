//! The `pseudonymize` component: keyed hashing of identifiers, dropping of PII columns
//! and generalisation of quasi-identifiers.
//!
//! Nothing this component writes — output rows, facts, logs, errors — contains an input
//! value of a column it hashes, drops or generalises, or the key. That is why it has no
//! `quarantine` port (a rejected row would carry the very values this step removes) and
//! why its errors name rows, never values.

use segflow_ml::pseudo::{
    DatePart, Generalisation, PseudoError, Pseudonymizer, FULL_HEX_LENGTH, MIN_HEX_LENGTH,
    MIN_KEY_BYTES,
};
use segflow_sdk::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

fn default_key_env() -> String {
    "SEGFLOW_PSEUDO_KEY".to_string()
}

/// Pseudonymise personal data before it reaches analysis: replace identifier columns by
/// keyed pseudonyms (`hash`), remove columns (`drop`), and coarsen quasi-identifiers
/// (`generalise`: age to a band, postcode to a prefix, date to year or month, number
/// rounded). A pseudonym is the HMAC-SHA256 of the value under a secret key read from
/// the environment variable `key_env`, as lowercase hex (text is hashed as its UTF-8
/// bytes exactly as stored, an integer as its decimal text); the same key and value
/// give the same pseudonym in every run, so pseudonymised tables still join. Hashed and
/// generalised columns keep their place and name (hashed and most generalised columns
/// become utf8; `round` gives float64); nulls stay null. No original value of these
/// columns and never the key appear in the outputs, facts or logs; facts record which
/// columns were hashed, dropped and generalised, with counts and a key id (a
/// fingerprint that tells whether two runs used the same key). There is no
/// `quarantine` port. Rows are streamed batch by batch.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pseudonymize {
    /// Name of the environment variable holding the HMAC key (default
    /// `SEGFLOW_PSEUDO_KEY`). Its value is used as raw bytes and must be at least 16
    /// bytes long (e.g. `openssl rand -hex 32`); it is read at validation and at run
    /// time and never written anywhere. Needed only when `hash` names columns. Keep the
    /// key: another key gives other pseudonyms, which no longer join.
    #[serde(default = "default_key_env")]
    pub key_env: String,
    /// Identifier columns (text or integer) replaced by their pseudonyms.
    #[serde(default)]
    pub hash: Vec<String>,
    /// Hex characters kept of each pseudonym: 16 to 64 (default 64, the whole
    /// HMAC-SHA256). Shorter is easier to read; with 16 (64 bits) the chance that any two
    /// of 10 million distinct values share a pseudonym is about 3 in a million.
    #[serde(default)]
    pub length: Option<usize>,
    /// Text put before every pseudonym, e.g. `cus_`.
    #[serde(default)]
    pub prefix: String,
    /// Columns removed from the output (names, phone numbers, free text).
    #[serde(default)]
    pub drop: Vec<String>,
    /// Columns replaced by coarser values, each with one rule: e.g. `age: {band: 10}`,
    /// `postcode: {prefix: 3}`, `signup: {date: month}`, `income: {round: 1000}`.
    #[serde(default)]
    pub generalise: BTreeMap<String, GeneraliseConfig>,
}

/// One generalisation rule: exactly one of `band`, `edges`, `prefix`, `date`, `round`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneraliseConfig {
    /// Numbers (ages) to bands of this width: `{band: 10}` turns 34 into `30-39`
    /// (30 <= x < 40).
    #[serde(default)]
    pub band: Option<u32>,
    /// With `band`: values at or above this become `<top>+`, e.g. `{band: 10, top: 90}`
    /// gives `90+`.
    #[serde(default)]
    pub top: Option<i64>,
    /// Numbers to intervals between increasing integer edges: `[18, 25, 35, 50, 65]`
    /// gives `<18`, `18-24`, `25-34`, `35-49`, `50-64`, `65+`.
    #[serde(default)]
    pub edges: Option<Vec<i64>>,
    /// Text (postcodes) to its first N characters after removing whitespace:
    /// `{prefix: 3}` turns `SW1A 1AA` into `SW1`. A value shorter than N is kept whole.
    #[serde(default)]
    pub prefix: Option<usize>,
    /// Dates (date, timestamp or `YYYY-MM-DD` text) to `year` (`2024`) or `month`
    /// (`2024-03`).
    #[serde(default)]
    pub date: Option<DatePartConfig>,
    /// Numbers rounded to the nearest multiple of this step (halves away from zero);
    /// the column becomes float64.
    #[serde(default)]
    pub round: Option<f64>,
}

/// The part of a date kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatePartConfig {
    /// `2024`.
    Year,
    /// `2024-03`.
    Month,
}

impl GeneraliseConfig {
    fn rule(&self, name: &str) -> Result<Generalisation> {
        let at = format!("generalise.{name}");
        let given: Vec<&str> = [
            ("band", self.band.is_some()),
            ("edges", self.edges.is_some()),
            ("prefix", self.prefix.is_some()),
            ("date", self.date.is_some()),
            ("round", self.round.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| k)
        .collect();
        if given.len() != 1 {
            return Err(Error::config(
                &at,
                if given.is_empty() {
                    "give one rule: `band`, `edges`, `prefix`, `date` or `round`".to_string()
                } else {
                    format!("give one rule, not {}", given.join(" and "))
                },
            ));
        }
        if self.top.is_some() && self.band.is_none() {
            return Err(Error::config(
                &format!("{at}.top"),
                "`top` goes with `band`",
            ));
        }
        let bad = |f: &str, e: segflow_ml::pseudo::PseudoError| {
            Error::config(&format!("{at}.{f}"), e.to_string())
        };
        if let Some(w) = self.band {
            return Generalisation::band(w, self.top).map_err(|e| {
                let f = if self.top.is_some() && w > 0 {
                    "top"
                } else {
                    "band"
                };
                bad(f, e)
            });
        }
        if let Some(e) = &self.edges {
            return Generalisation::edges(e.clone()).map_err(|e| bad("edges", e));
        }
        if let Some(n) = self.prefix {
            return Generalisation::prefix(n).map_err(|e| bad("prefix", e));
        }
        if let Some(d) = self.date {
            return Ok(Generalisation::date(match d {
                DatePartConfig::Year => DatePart::Year,
                DatePartConfig::Month => DatePart::Month,
            }));
        }
        let step = self.round.expect("one rule is set");
        Generalisation::round(step).map_err(|e| bad("round", e))
    }
}

/// What a column becomes.
#[derive(Clone)]
enum Action {
    Keep,
    Hash,
    Drop,
    Generalise(Generalisation),
}

/// The checked config.
struct Checked {
    schema: SchemaRef,
    actions: Vec<Action>,
    hasher: Option<Pseudonymizer>,
}

impl Pseudonymize {
    /// Read and check the key; the error names the variable, never the value.
    fn key(&self) -> Result<Pseudonymizer> {
        let var = &self.key_env;
        if var.is_empty() || var.contains('=') || var.contains('\0') {
            return Err(Error::config(
                "key_env",
                "give the name of an environment variable, e.g. `SEGFLOW_PSEUDO_KEY`",
            ));
        }
        let key = match std::env::var_os(var) {
            None => {
                return Err(Error::config(
                    "key_env",
                    format!(
                        "environment variable `{var}` is not set; it must hold the secret \
                         key for `hash` (at least {MIN_KEY_BYTES} bytes, e.g. from \
                         `openssl rand -hex 32`). Keep the key: pseudonyms made with \
                         another key do not join"
                    ),
                ))
            }
            Some(k) => k,
        };
        let bytes = key.as_encoded_bytes();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(Error::config(
                "key_env",
                format!(
                    "the key in environment variable `{var}` is too short: it needs at \
                     least {MIN_KEY_BYTES} bytes (e.g. from `openssl rand -hex 32`)"
                ),
            ));
        }
        let length = self.length.unwrap_or(FULL_HEX_LENGTH);
        Pseudonymizer::new(bytes, length, &self.prefix).map_err(|e| {
            if self.length.is_some() && !(MIN_HEX_LENGTH..=FULL_HEX_LENGTH).contains(&length) {
                Error::config("length", e.to_string())
            } else {
                Error::config("key_env", format!("environment variable `{var}`: {e}"))
            }
        })
    }

    fn check(&self, schema: &SchemaRef) -> Result<Checked> {
        if self.hash.is_empty() && self.drop.is_empty() && self.generalise.is_empty() {
            return Err(Error::config(
                "",
                "name at least one column under `hash`, `drop` or `generalise`",
            ));
        }
        if let Some(l) = self.length {
            if !(MIN_HEX_LENGTH..=FULL_HEX_LENGTH).contains(&l) {
                return Err(Error::config(
                    "length",
                    format!("length must be between {MIN_HEX_LENGTH} and {FULL_HEX_LENGTH} hex characters, got {l}"),
                ));
            }
        }
        if self.hash.is_empty() && (self.length.is_some() || !self.prefix.is_empty()) {
            let f = if self.length.is_some() {
                "length"
            } else {
                "prefix"
            };
            return Err(Error::config(
                f,
                "`length` and `prefix` shape pseudonyms: name columns under `hash`",
            ));
        }
        let mut actions = vec![Action::Keep; schema.fields().len()];
        // Which config field claimed each column first, for the overlap messages.
        let mut claimed: HashMap<String, String> = HashMap::new();
        let mut claim = |name: &str, field: &str| -> Result<usize> {
            let f = require_column(schema, name, field, &[])?;
            let i = schema.index_of(f.name())?;
            if let Some(prev) = claimed.insert(name.to_string(), field.to_string()) {
                let what = |f: &str| f.split('.').next().unwrap_or(f).to_string();
                return Err(Error::config(
                    field,
                    if what(&prev) == what(field) {
                        format!("column `{name}` is named twice under `{}`", what(field))
                    } else {
                        format!(
                            "column `{name}` is already under `{}`; a column may be only one \
                             of hashed, dropped or generalised",
                            what(&prev)
                        )
                    },
                ));
            }
            Ok(i)
        };
        for (k, name) in self.hash.iter().enumerate() {
            let field = format!("hash.{k}");
            let i = claim(name, &field)?;
            let dt = schema.field(i).data_type();
            if !Pseudonymizer::accepts(dt) {
                return Err(Error::config(
                    &field,
                    format!(
                        "column `{name}` has type {dt}; `hash` takes text or integer columns \
                         (cast identifiers upstream)"
                    ),
                ));
            }
            actions[i] = Action::Hash;
        }
        for (k, name) in self.drop.iter().enumerate() {
            let i = claim(name, &format!("drop.{k}"))?;
            actions[i] = Action::Drop;
        }
        for (name, g) in &self.generalise {
            let field = format!("generalise.{name}");
            let i = claim(name, &field)?;
            let rule = g.rule(name)?;
            let dt = schema.field(i).data_type();
            if !rule.accepts(dt) {
                return Err(Error::config(
                    &field,
                    format!(
                        "column `{name}` has type {dt}; `{}` takes {}",
                        rule.name(),
                        rule.expects()
                    ),
                ));
            }
            actions[i] = Action::Generalise(rule);
        }
        let hasher = if self.hash.is_empty() {
            None
        } else {
            Some(self.key()?)
        };
        let mut fields = Vec::new();
        for (f, a) in schema.fields().iter().zip(&actions) {
            match a {
                Action::Keep => fields.push(f.as_ref().clone()),
                Action::Hash => fields.push(Field::new(f.name(), DataType::Utf8, true)),
                Action::Drop => {}
                Action::Generalise(g) => fields.push(Field::new(f.name(), g.output_type(), true)),
            }
        }
        if fields.is_empty() {
            return Err(Error::config(
                "drop",
                "every column would be dropped; keep at least one",
            ));
        }
        Ok(Checked {
            schema: Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
            actions,
            hasher,
        })
    }
}

/// Counts for the facts; never a value.
#[derive(Default)]
struct Tally {
    rows: u64,
    /// Per input column index: non-null values processed, nulls.
    values: HashMap<usize, (u64, u64)>,
    /// Per generalised column index: rows per output value (for the smallest group).
    groups: HashMap<usize, HashMap<String, u64>>,
}

/// The lazy output stream.
struct Stream {
    input: Table,
    schema: SchemaRef,
    input_schema: SchemaRef,
    actions: Vec<Action>,
    hasher: Option<Pseudonymizer>,
    handle: HostHandle,
    tally: Tally,
    config: Pseudonymize,
    done: bool,
}

impl Stream {
    fn convert(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        // Errors name the 0-based input row, counted over all batches.
        let offset = self.tally.rows as usize;
        let located = |e: PseudoError| match e {
            PseudoError::BadValue { row, what } => PseudoError::BadValue {
                row: row + offset,
                what,
            },
            e => e,
        };
        self.tally.rows += batch.num_rows() as u64;
        for (i, (a, c)) in self.actions.iter().zip(batch.columns()).enumerate() {
            let name = self.input_schema.field(i).name();
            let out: ArrayRef = match a {
                Action::Keep => {
                    columns.push(c.clone());
                    continue;
                }
                Action::Drop => continue,
                Action::Hash => {
                    let h = self.hasher.as_ref().expect("a key when hashing");
                    Arc::new(h.hash_array(c).map_err(|e| {
                        Error::new(format!("hashing column `{name}`: {}", located(e)))
                    })?)
                }
                Action::Generalise(g) => {
                    let out = g.apply(c).map_err(|e| {
                        Error::new(format!(
                            "generalising column `{name}` ({}): input {}",
                            g.name(),
                            located(e)
                        ))
                    })?;
                    if let Some(s) = out
                        .as_any()
                        .downcast_ref::<segflow_sdk::arrow::array::StringArray>()
                    {
                        let groups = self.tally.groups.entry(i).or_default();
                        for v in s.iter().flatten() {
                            *groups.entry(v.to_string()).or_insert(0) += 1;
                        }
                    }
                    out
                }
            };
            let t = self.tally.values.entry(i).or_default();
            t.0 += (c.len() - c.null_count()) as u64;
            t.1 += c.null_count() as u64;
            columns.push(out);
        }
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }

    fn facts(&self) {
        let counts = |i: usize| self.tally.values.get(&i).copied().unwrap_or((0, 0));
        let mut hashed = serde_json::Map::new();
        let mut dropped = Vec::new();
        let mut generalised = serde_json::Map::new();
        for (i, a) in self.actions.iter().enumerate() {
            let name = self.input_schema.field(i).name().clone();
            let (values, nulls) = counts(i);
            match a {
                Action::Keep => {}
                Action::Hash => {
                    hashed.insert(name, serde_json::json!({"values": values, "nulls": nulls}));
                }
                Action::Drop => dropped.push(name),
                Action::Generalise(g) => {
                    let rule = &self.config.generalise[&name];
                    let mut f = serde_json::to_value(GeneraliseFacts::from(rule))
                        .unwrap_or(serde_json::Value::Null);
                    if let serde_json::Value::Object(m) = &mut f {
                        m.insert("method".into(), g.name().into());
                        m.insert("values".into(), values.into());
                        m.insert("nulls".into(), nulls.into());
                        if let Some(groups) = self.tally.groups.get(&i) {
                            m.insert("groups".into(), groups.len().into());
                            m.insert(
                                "smallest_group".into(),
                                groups.values().min().copied().into(),
                            );
                        }
                    }
                    generalised.insert(name, f);
                }
            }
        }
        self.handle.fact("rows_in", self.tally.rows);
        self.handle.fact("rows_out", self.tally.rows);
        self.handle.fact("hashed", hashed);
        self.handle.fact("dropped", dropped);
        self.handle.fact("generalised", generalised);
        if let Some(h) = &self.hasher {
            self.handle.fact(
                "pseudonyms",
                serde_json::json!({
                    "algorithm": "HMAC-SHA256",
                    "key_env": self.config.key_env,
                    "key_id": h.key_id(),
                    "length": h.length(),
                    "prefix": self.config.prefix,
                }),
            );
        }
    }
}

/// The parameters of a rule, for the facts.
#[derive(serde::Serialize)]
struct GeneraliseFacts {
    #[serde(skip_serializing_if = "Option::is_none")]
    band: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    edges: Option<Vec<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    round: Option<f64>,
}

impl From<&GeneraliseConfig> for GeneraliseFacts {
    fn from(g: &GeneraliseConfig) -> Self {
        GeneraliseFacts {
            band: g.band,
            top: g.top,
            edges: g.edges.clone(),
            prefix: g.prefix,
            date: g.date.map(|d| match d {
                DatePartConfig::Year => "year",
                DatePartConfig::Month => "month",
            }),
            round: g.round,
        }
    }
}

impl Iterator for Stream {
    type Item = Result<RecordBatch, segflow_sdk::arrow::error::ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.input.next() {
            Some(Ok(b)) => match self.convert(b) {
                Ok(out) => Some(Ok(out)),
                Err(e) => {
                    self.done = true;
                    Some(Err(segflow_sdk::arrow::error::ArrowError::ExternalError(
                        e.to_string().into(),
                    )))
                }
            },
            Some(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            None => {
                self.done = true;
                self.facts();
                None
            }
        }
    }
}

impl Component for Pseudonymize {
    const NAME: &'static str = "pseudonymize";
    const STAGE: Stage = Stage::Clean;

    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1)
            .inputs_doc("any table")
            .outputs(&[(
                "main",
                "the input with hashed and generalised columns replaced and dropped \
                 columns removed",
            )])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        Ok(Outputs::main(self.check(schema)?.schema))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let Some(input) = inputs.into_iter().next() else {
            return Err(Error::new("expected one input, got none"));
        };
        let input_schema = input.value.schema();
        let checked = self.check(&input_schema)?;
        if let Some(h) = &checked.hasher {
            segflow_sdk::tracing::debug!(
                "pseudonymising {} column(s) with the key from `{}` (key id {})",
                self.hash.len(),
                self.key_env,
                h.key_id()
            );
        }
        let schema = checked.schema.clone();
        let stream = Stream {
            input: input.value,
            schema: schema.clone(),
            input_schema,
            actions: checked.actions,
            hasher: checked.hasher,
            handle: ctx.handle(),
            tally: Tally::default(),
            config: self.clone(),
            done: false,
        };
        Ok(Outputs::main(Table::from_iter(schema, stream)))
    }
}
