//! The `postgres` component: a table or a query from PostgreSQL, streamed through a
//! binary COPY or a server-side cursor, or the per-customer RFM features aggregated by
//! the server.

use segflow_ml::features::{FeatureAggregator, FeatureOptions};
use segflow_sdk::arrow::array::{
    BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int16Builder, Int32Builder,
    Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use segflow_sdk::arrow::datatypes::TimeUnit;
use segflow_sdk::arrow::error::ArrowError;
use segflow_sdk::config::IsoDate;
use segflow_sdk::ffi::HostHandle;
use segflow_sdk::prelude::*;
use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::Duration;

use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::{Client, NoTls};

/// Read rows from PostgreSQL: a whole table, or the result of a query with named
/// parameters. Rows stream in binary form (a binary COPY, or a server-side cursor for a
/// query with parameters) into Arrow batches, so tables larger than memory are fine. With `aggregate`, the server computes the per-customer RFM
/// features instead (the same columns and values as the `customer_features` component
/// with `as_of`), and only one row per customer crosses the network. The output schema
/// is asked from the server when the pipeline is validated, so a missing table or a bad
/// query is reported before anything runs. Connection failures that may pass (refused,
/// reset, too many connections) are retried with exponential backoff. The password of
/// the connection string never appears in messages or facts.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSource {
    /// Connection string, usually `${PG_DSN}` so the secret stays out of the YAML: a URL
    /// such as `postgresql://user:password@host:5432/db` or key=value pairs such as
    /// `host=db user=app password=... dbname=sales`. TLS is not supported (use
    /// `sslmode=disable` or `prefer`, or a local tunnel). A `connect_timeout` of 10
    /// seconds applies unless the string sets one.
    pub dsn: String,
    /// Table (or view) to read, optionally schema-qualified: `orders`, `sales.orders`,
    /// `"Mixed Case"`. Unquoted names are folded to lower case, as in SQL. Set exactly
    /// one of `table` and `query`.
    #[serde(default)]
    pub table: Option<String>,
    /// SQL query whose rows to read, with named parameters written `:name` (bound
    /// server-side from `params`; values are never pasted into the SQL). Set exactly one
    /// of `table` and `query`.
    #[serde(default)]
    pub query: Option<String>,
    /// Values of the query's `:name` parameters. Each value is sent as text and parsed by
    /// the server as the type the query needs (a number, a date, ...); every parameter
    /// must be used by the query and every `:name` must have a value.
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
    /// Rows per Arrow record batch (and per cursor fetch).
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub batch_size: usize,
    /// How many times a failed connection attempt is retried when the failure may pass
    /// (connection refused or reset, too many connections, server starting up), waiting
    /// 0.2 s, 0.4 s, 0.8 s, ... (at most 10 s) between attempts.
    #[serde(default = "default_retries")]
    #[schemars(range(max = 20))]
    pub retries: u32,
    /// Aggregate in the database: instead of the rows, return one row per customer with
    /// the RFM features of `customer_features` (same columns, types and values), computed
    /// by the server over the rows of `table` or `query`.
    #[serde(default)]
    pub aggregate: Option<Aggregate>,
    /// A cheap query whose result changes when the data read changes, such as `SELECT
    /// max(updated_at), count(*) FROM orders`. The step cache re-uses the step's result
    /// only while this query's rows are unchanged; without it the step is never cached.
    /// It runs in a read-only transaction over the same connection settings, without
    /// `params`, and must return at most 1000 rows.
    #[serde(default)]
    pub fingerprint_query: Option<String>,
}

use crate::param::ParamValue;

/// What to aggregate per customer, as the `customer_features` component's `key`, `date`,
/// `amount` and `as_of`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// Column holding the customer key: an integer (int2, int4, int8), text (text,
    /// varchar, bpchar) or uuid column.
    #[serde(default = "default_key")]
    pub key: String,
    /// Column holding the transaction date: date, timestamp, or timestamptz (the UTC date
    /// counts).
    #[serde(default = "default_date")]
    pub date: String,
    /// Column holding the amount: int2, int4, int8, float4, float8 or numeric.
    #[serde(default = "default_amount")]
    pub amount: String,
    /// Date the features are computed at (YYYY-MM-DD); later transactions are left out.
    pub as_of: IsoDate,
    /// Into how many parts to split the customers (by the key, or a hash of it): each
    /// part is aggregated whole by one of the server's parallel workers, side by side,
    /// and each reads the rows of `table` or `query` once. By default, the server's
    /// `max_parallel_workers_per_gather` (2 unless configured). With 1, or when the
    /// server would not run the parts in parallel (parallel query off, a query that is
    /// not parallel safe), one statement aggregates everything and the server chooses
    /// how to parallelise it. Set 1 for a costly `query`, which would run once per part.
    #[serde(default)]
    #[schemars(range(min = 1, max = 64))]
    pub partitions: Option<u32>,
    /// PostgreSQL settings for the aggregation, set for its transaction only
    /// (`set_config(name, value, true)`, as `SET LOCAL`; values are bound, never pasted
    /// into SQL): a map of setting name to value, e.g. `{work_mem: 64MB}`. With
    /// partitions, the collector sets `min_parallel_table_scan_size` and
    /// `min_parallel_index_scan_size` to their largest values (no parallel scans, so
    /// that each worker aggregates a part whole) unless this map names them; `null`
    /// leaves the server's value. A bad name or value fails validation naming
    /// `aggregate.settings.NAME`.
    #[serde(default)]
    pub settings: BTreeMap<String, ParamValue>,
}

fn default_batch_size() -> usize {
    65_536
}
fn default_retries() -> u32 {
    3
}
fn default_key() -> String {
    "customer_id".into()
}
fn default_date() -> String {
    "date".into()
}
fn default_amount() -> String {
    "amount".into()
}

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// The time zone of `timestamptz` columns: UTC written as an offset, which arrow-rs
/// understands without a time-zone database (segflow's Arrow build has none, so a named
/// zone such as "UTC" would fail in casts, e.g. in `customer_features`).
const UTC: &str = "+00:00";
/// Connection attempt time limit unless the DSN sets one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Settings of the aggregation's transaction with key partitions, unless
/// `aggregate.settings` names them: no parallel scans (the largest sizes allowed), so
/// that the planner runs each part whole in one worker under a Parallel Append, instead
/// of splitting every part across the workers and merging all its rows in the leader.
const PARTITIONED_SETTINGS: [(&str, &str); 2] = [
    ("min_parallel_table_scan_size", "715827882"),
    ("min_parallel_index_scan_size", "715827882"),
];
/// At most this many key partitions.
const MAX_PARTITIONS: u32 = 64;
/// Reasons a row is left out of the aggregation, in the order they are checked (the
/// codes of `customer_features`' quarantine).
const REASONS: [&str; 5] = [
    "null_key",
    "null_date",
    "null_amount",
    "non_finite_amount",
    "after_as_of",
];

// ---------------------------------------------------------------------------------------
// Secrets

/// The password in a DSN (URL or key=value form), if any, as written.
fn dsn_password(dsn: &str) -> Option<String> {
    let s = dsn.trim();
    if let Some(rest) = s
        .strip_prefix("postgresql://")
        .or_else(|| s.strip_prefix("postgres://"))
    {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let userinfo = &authority[..authority.rfind('@')?];
        let (_, pw) = userinfo.split_once(':')?;
        return (!pw.is_empty()).then(|| pw.to_string());
    }
    // key=value pairs; values may be single-quoted with \' and \\ escapes.
    let mut chars = s.char_indices().peekable();
    while let Some(&(start, _)) = chars.peek() {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let key_start = chars.peek().map_or(s.len(), |&(i, _)| i);
        while chars
            .next_if(|(_, c)| *c != '=' && !c.is_whitespace())
            .is_some()
        {}
        let key_end = chars.peek().map_or(s.len(), |&(i, _)| i);
        let key = &s[key_start..key_end];
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            if chars.peek().map(|&(i, _)| i) == Some(start) {
                chars.next();
            }
            continue;
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                value.push(c);
            }
        }
        if key == "password" && !value.is_empty() {
            return Some(value);
        }
    }
    None
}

/// Decode `%XX` escapes (URL passwords), leaving anything else as it is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes the DSN's password (as written, and percent-decoded) from messages.
#[derive(Debug, Clone, Default)]
struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    fn new(dsn: &str) -> Self {
        let mut secrets = Vec::new();
        if let Some(pw) = dsn_password(dsn) {
            let decoded = percent_decode(&pw);
            if decoded != pw && !decoded.is_empty() {
                secrets.push(decoded);
            }
            secrets.push(pw);
        }
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    fn clean(&self, msg: &str) -> String {
        let mut out = msg.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }
}

/// Where the DSN points, for messages: `host:port/dbname` (never the password).
fn describe_target(config: &postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                postgres::config::Host::Tcp(h) => h.clone(),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            };
            match config
                .get_ports()
                .get(i)
                .or_else(|| config.get_ports().first())
            {
                Some(p) => format!("{host}:{p}"),
                None => format!("{host}:5432"),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_string()
    } else {
        hosts.join(",")
    };
    match config.get_dbname() {
        Some(db) => format!("{hosts}/{db}"),
        None => hosts,
    }
}

/// A PostgreSQL error as one readable message: the server's message with its detail and
/// hint, or the client error with its causes.
fn pg_message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut m = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            m.push_str(&format!(" ({d})"));
        }
        if let Some(h) = db.hint() {
            m.push_str(&format!(" (hint: {h})"));
        }
        return m;
    }
    let mut m = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        m.push_str(&format!(": {s}"));
        source = s.source();
    }
    m
}

/// Whether a connection failure may pass if tried again.
fn is_transient(e: &postgres::Error) -> bool {
    if let Some(db) = e.as_db_error() {
        use postgres::error::SqlState;
        let code = db.code();
        return code == &SqlState::TOO_MANY_CONNECTIONS
            || code == &SqlState::CANNOT_CONNECT_NOW
            || code == &SqlState::ADMIN_SHUTDOWN
            || code == &SqlState::CRASH_SHUTDOWN;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | NotConnected
                    | TimedOut
                    | BrokenPipe
                    | UnexpectedEof
                    | Interrupted
            );
        }
        source = s.source();
    }
    false
}

// ---------------------------------------------------------------------------------------
// Query building

/// Quote an identifier for SQL.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table name as SQL: dot-separated parts, each an unquoted identifier (folded to lower
/// case by the server) or a double-quoted one.
fn table_sql(table: &str) -> Result<String, String> {
    let t = table.trim();
    if t.is_empty() {
        return Err("the table name is empty".into());
    }
    let mut parts = Vec::new();
    let mut chars = t.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        part.push('"');
                    } else {
                        closed = true;
                        break;
                    }
                } else {
                    part.push(c);
                }
            }
            if !closed || part.is_empty() {
                return Err(format!("`{t}` has an unterminated or empty quoted name"));
            }
            parts.push(quote_ident(&part));
        } else {
            while let Some(c) = chars.next_if(|c| *c != '.') {
                part.push(c);
            }
            let ok = part
                .chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && part
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
            if !ok {
                return Err(format!(
                    "`{t}` is not a table name: write `table` or `schema.table`, with \
                     double quotes around names that hold other characters"
                ));
            }
            parts.push(part);
        }
        match chars.next() {
            None => break,
            Some('.') => {}
            Some(_) => {
                return Err(format!(
                    "`{t}` is not a table name: parts must be separated by `.`"
                ))
            }
        }
    }
    if parts.len() > 3 {
        return Err(format!("`{t}` has too many parts"));
    }
    Ok(parts.join("."))
}

/// Replace the `:name` parameters of `query` with `$1..$n` (the same name gets the same
/// number), skipping string literals, quoted identifiers, dollar-quoted strings,
/// comments and `::` casts. Returns the SQL and the names in parameter order.
fn translate_params(query: &str) -> (String, Vec<String>) {
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    let mut copied = 0;
    let ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c >= 0x80;
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                // E'...' strings honour backslash escapes.
                let escapes = i > 0 && (b[i - 1] == b'E' || b[i - 1] == b'e');
                i += 1;
                while i < b.len() {
                    if escapes && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'"' => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'"' {
                        if b.get(i + 1) == Some(&b'"') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'$' if i == 0 || !ident_char(b[i - 1]) => {
                // $tag$ ... $tag$ (the tag may be empty); `$1` is a positional parameter.
                if b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
                    i += 1;
                    continue;
                }
                let mut j = i + 1;
                while j < b.len() && ident_char(b[j]) {
                    j += 1;
                }
                if j < b.len() && b[j] == b'$' {
                    let tag = &query[i..=j];
                    match query[j + 1..].find(tag) {
                        Some(end) => i = j + 1 + end + tag.len(),
                        None => i = b.len(),
                    }
                } else {
                    i += 1;
                }
            }
            b':' if b.get(i + 1) == Some(&b':') => i += 2,
            b':' if b.get(i + 1).is_some_and(|&c| ident_start(c))
                && (i == 0 || b[i - 1] != b':') =>
            {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && ident_char(b[j]) {
                    j += 1;
                }
                let name = &query[start..j];
                let n = match names.iter().position(|x| x == name) {
                    Some(p) => p + 1,
                    None => {
                        names.push(name.to_string());
                        names.len()
                    }
                };
                out.push_str(&query[copied..i]);
                out.push_str(&format!("${n}"));
                copied = j;
                i = j;
            }
            _ => i += 1,
        }
    }
    out.push_str(&query[copied.min(query.len())..]);
    (out, names)
}

/// A parameter sent in text format: the server parses it as the type it needs.
#[derive(Debug)]
struct TextParam(Option<String>);

impl ToSql for TextParam {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            Some(s) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }
    fn accepts(_ty: &Type) -> bool {
        true
    }
    fn encode_format(&self, _ty: &Type) -> postgres::types::Format {
        postgres::types::Format::Text
    }
    postgres::types::to_sql_checked!();
}

impl ParamValue {
    fn to_param(&self) -> TextParam {
        TextParam(match self {
            ParamValue::Bool(b) => Some(b.to_string()),
            ParamValue::Int(i) => Some(i.to_string()),
            ParamValue::Float(f) => Some(f.to_string()),
            ParamValue::Text(s) => Some(s.clone()),
            ParamValue::Null(()) => None,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Types

/// How a column is decoded from PostgreSQL's binary format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Uuid,
    Json,
    Jsonb,
    Date,
    Timestamp,
    TimestampTz,
}

impl Kind {
    fn of(ty: &Type) -> Option<Kind> {
        Some(match *ty {
            Type::BOOL => Kind::Bool,
            Type::INT2 => Kind::Int2,
            Type::INT4 => Kind::Int4,
            Type::INT8 => Kind::Int8,
            Type::FLOAT4 => Kind::Float4,
            Type::FLOAT8 => Kind::Float8,
            Type::NUMERIC => Kind::Numeric,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => Kind::Text,
            Type::UUID => Kind::Uuid,
            Type::JSON => Kind::Json,
            Type::JSONB => Kind::Jsonb,
            Type::DATE => Kind::Date,
            Type::TIMESTAMP => Kind::Timestamp,
            Type::TIMESTAMPTZ => Kind::TimestampTz,
            _ => return None,
        })
    }

    fn data_type(self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::Int2 => DataType::Int16,
            Kind::Int4 => DataType::Int32,
            Kind::Int8 => DataType::Int64,
            Kind::Float4 => DataType::Float32,
            Kind::Float8 | Kind::Numeric => DataType::Float64,
            Kind::Text | Kind::Uuid | Kind::Json | Kind::Jsonb => DataType::Utf8,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        }
    }
}

const SUPPORTED_TYPES: &str = "bool, int2, int4, int8, float4, float8, numeric, text, varchar, \
                               bpchar, name, uuid, json, jsonb, date, timestamp, timestamptz";

/// The raw binary value of a column, whatever its type.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }
    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// Decode a binary `numeric` to the nearest f64 (as the server's `numeric::float8`).
fn numeric_to_f64(raw: &[u8]) -> std::result::Result<f64, String> {
    let bad = || "malformed numeric value".to_string();
    let word = |i: usize| -> std::result::Result<u16, String> {
        raw.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(bad)
    };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16 as i32;
    let sign = word(4)?;
    match sign {
        0xC000 => return Ok(f64::NAN),
        0xD000 => return Ok(f64::INFINITY),
        0xF000 => return Ok(f64::NEG_INFINITY),
        0x0000 | 0x4000 => {}
        _ => return Err(bad()),
    }
    if ndigits == 0 {
        return Ok(0.0);
    }
    // digits are base 10000; the first has weight `weight`.
    let mut s = String::with_capacity(ndigits * 4 + 8);
    if sign == 0x4000 {
        s.push('-');
    }
    for k in 0..ndigits {
        let d = word(8 + 2 * k)?;
        if d > 9999 {
            return Err(bad());
        }
        s.push_str(&format!("{d:04}"));
    }
    let exp = (weight + 1 - ndigits as i32) * 4;
    s.push_str(&format!("e{exp}"));
    s.parse::<f64>().map_err(|_| bad())
}

fn text(b: &[u8]) -> std::result::Result<&str, String> {
    std::str::from_utf8(b).map_err(|_| "text that is not valid UTF-8".to_string())
}

fn uuid_text(b: &[u8]) -> std::result::Result<String, String> {
    if b.len() != 16 {
        return Err("malformed uuid value".into());
    }
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{x:02x}"));
    }
    Ok(s)
}

/// One column being filled.
enum Builder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Str(StringBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
}

fn fixed<const N: usize>(raw: &[u8]) -> std::result::Result<[u8; N], String> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()))
}

impl Builder {
    fn new(kind: Kind, cap: usize) -> Builder {
        match kind {
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(cap)),
            Kind::Int2 => Builder::I16(Int16Builder::with_capacity(cap)),
            Kind::Int4 => Builder::I32(Int32Builder::with_capacity(cap)),
            Kind::Int8 => Builder::I64(Int64Builder::with_capacity(cap)),
            Kind::Float4 => Builder::F32(Float32Builder::with_capacity(cap)),
            Kind::Float8 | Kind::Numeric => Builder::F64(Float64Builder::with_capacity(cap)),
            Kind::Text | Kind::Uuid | Kind::Json | Kind::Jsonb => {
                Builder::Str(StringBuilder::with_capacity(cap, cap * 8))
            }
            Kind::Date => Builder::Date(Date32Builder::with_capacity(cap)),
            Kind::Timestamp => Builder::Ts(TimestampMicrosecondBuilder::with_capacity(cap)),
            Kind::TimestampTz => {
                Builder::Ts(TimestampMicrosecondBuilder::with_capacity(cap).with_timezone(UTC))
            }
        }
    }

    fn push(&mut self, kind: Kind, v: Option<&[u8]>) -> std::result::Result<(), String> {
        let Some(raw) = v else {
            match self {
                Builder::Bool(b) => b.append_null(),
                Builder::I16(b) => b.append_null(),
                Builder::I32(b) => b.append_null(),
                Builder::I64(b) => b.append_null(),
                Builder::F32(b) => b.append_null(),
                Builder::F64(b) => b.append_null(),
                Builder::Str(b) => b.append_null(),
                Builder::Date(b) => b.append_null(),
                Builder::Ts(b) => b.append_null(),
            }
            return Ok(());
        };

        match (self, kind) {
            (Builder::Bool(b), _) => b.append_value(fixed::<1>(raw)?[0] != 0),
            (Builder::I16(b), _) => b.append_value(i16::from_be_bytes(fixed(raw)?)),
            (Builder::I32(b), _) => b.append_value(i32::from_be_bytes(fixed(raw)?)),
            (Builder::I64(b), _) => b.append_value(i64::from_be_bytes(fixed(raw)?)),
            (Builder::F32(b), _) => b.append_value(f32::from_be_bytes(fixed(raw)?)),
            (Builder::F64(b), Kind::Numeric) => b.append_value(numeric_to_f64(raw)?),
            (Builder::F64(b), _) => b.append_value(f64::from_be_bytes(fixed(raw)?)),
            (Builder::Str(b), Kind::Uuid) => b.append_value(uuid_text(raw)?),
            (Builder::Str(b), Kind::Jsonb) => match raw.split_first() {
                Some((1, rest)) => b.append_value(text(rest)?),
                _ => return Err("jsonb in an unknown binary version".into()),
            },
            (Builder::Str(b), _) => b.append_value(text(raw)?),
            (Builder::Date(b), _) => {
                let d = i32::from_be_bytes(fixed(raw)?);
                if d == i32::MAX || d == i32::MIN {
                    return Err("an infinite date, which Arrow cannot hold".into());
                }
                let days = d
                    .checked_add(PG_EPOCH_DAYS)
                    .ok_or("a date out of Arrow's range")?;
                b.append_value(days);
            }
            (Builder::Ts(b), _) => {
                let t = i64::from_be_bytes(fixed(raw)?);
                if t == i64::MAX || t == i64::MIN {
                    return Err("an infinite timestamp, which Arrow cannot hold".into());
                }
                let micros = t
                    .checked_add(PG_EPOCH_MICROS)
                    .ok_or("a timestamp out of Arrow's range")?;
                b.append_value(micros);
            }
        }
        Ok(())
    }

    fn finish(self) -> ArrayRef {
        match self {
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::I16(mut b) => Arc::new(b.finish()),
            Builder::I32(mut b) => Arc::new(b.finish()),
            Builder::I64(mut b) => Arc::new(b.finish()),
            Builder::F32(mut b) => Arc::new(b.finish()),
            Builder::F64(mut b) => Arc::new(b.finish()),
            Builder::Str(mut b) => Arc::new(b.finish()),
            Builder::Date(mut b) => Arc::new(b.finish()),
            Builder::Ts(mut b) => Arc::new(b.finish()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Planning

/// What `plan` and `run` work out from the config and the server.
struct Resolved {
    /// The SQL whose rows are streamed, with `$n` parameters.
    sql: String,
    /// Parameter values in `$n` order.
    params: Vec<TextParam>,
    /// Decoding of each result column.
    kinds: Vec<Kind>,
    /// The output schema.
    output: SchemaRef,
    /// With `aggregate`: the index of the trailing `reason` column the output leaves out.
    reason_column: Option<usize>,
    /// With `aggregate`: the settings of its transaction (name, value, set by the user).
    settings: Vec<(String, String, bool)>,
    /// With `aggregate`: the key partitions of its SQL (1: none).
    partitions: u32,
}

/// The connection string and its redactor.
struct Dsn {
    config: postgres::Config,
    redactor: Redactor,
    target: String,
}

impl PostgresSource {
    /// Which config field names the rows read: `table` or `query`.
    fn source_field(&self) -> &'static str {
        if self.table.is_some() {
            "table"
        } else {
            "query"
        }
    }

    fn dsn(&self) -> Result<Dsn> {
        let redactor = Redactor::new(&self.dsn);
        if self.dsn.trim().is_empty() {
            return Err(Error::config(
                "dsn",
                "the connection string is empty (is the variable in `${...}` set?)",
            ));
        }
        let mut config: postgres::Config = self.dsn.parse().map_err(|e: postgres::Error| {
            Error::config(
                "dsn",
                redactor.clean(&format!(
                    "not a PostgreSQL connection string ({}); write a URL such as \
                     postgresql://user:password@host:5432/db or key=value pairs",
                    pg_message(&e)
                )),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let target = redactor.clean(&describe_target(&config));
        Ok(Dsn {
            config,
            redactor,
            target,
        })
    }

    /// Connect, retrying transient failures; returns the client and the retries used.
    fn connect(&self, dsn: &Dsn) -> Result<(Client, u32)> {
        let mut attempt = 0u32;
        loop {
            match dsn.config.connect(NoTls) {
                Ok(c) => return Ok((c, attempt)),
                Err(e) if attempt < self.retries && is_transient(&e) => {
                    let wait = Duration::from_millis(200u64 << attempt.min(6))
                        .min(Duration::from_secs(10));
                    segflow_sdk::tracing::warn!(
                        attempt = attempt + 1,
                        wait_ms = wait.as_millis() as u64,
                        "connecting to PostgreSQL at {} failed ({}); retrying",
                        dsn.target,
                        dsn.redactor.clean(&pg_message(&e))
                    );
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                Err(e) => {
                    let tries = if attempt > 0 {
                        format!(" after {} attempts", attempt + 1)
                    } else {
                        String::new()
                    };
                    return Err(Error::config(
                        "dsn",
                        dsn.redactor.clean(&format!(
                            "cannot connect to PostgreSQL at {}{tries}: {}",
                            dsn.target,
                            pg_message(&e)
                        )),
                    ));
                }
            }
        }
    }

    /// The SQL of the rows read and the parameter values, in `$n` order.
    fn base_sql(&self) -> Result<(String, Vec<TextParam>)> {
        match (&self.table, &self.query) {
            (Some(_), Some(_)) => Err(Error::config(
                "query",
                "set either `table` or `query`, not both",
            )),
            (None, None) => Err(Error::config(
                "table",
                "set `table` (a table to read) or `query` (an SQL query)",
            )),
            (Some(t), None) => {
                if !self.params.is_empty() {
                    return Err(Error::config(
                        "params",
                        "`params` are the values of a `query`'s :name parameters; a `table` \
                         takes none",
                    ));
                }
                let name = table_sql(t).map_err(|m| Error::config("table", m))?;
                Ok((format!("SELECT * FROM {name}"), Vec::new()))
            }
            (None, Some(q)) => {
                let q = q.trim().trim_end_matches(';').trim_end();
                if q.is_empty() {
                    return Err(Error::config("query", "the query is empty"));
                }
                let (sql, names) = translate_params(q);
                let mut params = Vec::with_capacity(names.len());
                for n in &names {
                    match self.params.get(n) {
                        Some(v) => params.push(v.to_param()),
                        None => {
                            return Err(Error::config(
                                "query",
                                format!(
                                    "the query uses the parameter :{n}, which `params` does \
                                     not set{}",
                                    if self.params.is_empty() {
                                        String::new()
                                    } else {
                                        format!(
                                            " (it sets: {})",
                                            self.params
                                                .keys()
                                                .map(String::as_str)
                                                .collect::<Vec<_>>()
                                                .join(", ")
                                        )
                                    }
                                ),
                            ))
                        }
                    }
                }
                if let Some(unused) = self.params.keys().find(|k| !names.contains(k)) {
                    return Err(Error::config(
                        &format!("params.{unused}"),
                        format!("the query has no :{unused} parameter"),
                    ));
                }
                Ok((sql, params))
            }
        }
    }

    /// An error of the server about the rows' SQL, naming the config field.
    fn sql_error(&self, dsn: &Dsn, e: &postgres::Error) -> Error {
        let what = match &self.table {
            Some(t) => format!("reading table `{t}`"),
            None => "running the query".to_string(),
        };
        Error::config(
            self.source_field(),
            dsn.redactor
                .clean(&format!("{what} on {}: {}", dsn.target, pg_message(e))),
        )
    }

    fn resolve(&self, client: &mut Client, dsn: &Dsn) -> Result<Resolved> {
        if self.batch_size == 0 || self.batch_size > i32::MAX as usize {
            return Err(Error::config(
                "batch_size",
                "batch_size must be between 1 and 2147483647",
            ));
        }
        let (base, params) = self.base_sql()?;
        let stmt = client.prepare(&base).map_err(|e| self.sql_error(dsn, &e))?;
        let mut kinds = Vec::with_capacity(stmt.columns().len());
        let mut fields = Vec::with_capacity(stmt.columns().len());
        for c in stmt.columns() {
            let Some(kind) = Kind::of(c.type_()) else {
                return Err(Error::config(
                    self.source_field(),
                    format!(
                        "column `{}` has the PostgreSQL type {}, which this collector cannot \
                         read; cast it in a `query` (e.g. `{}::text`). Supported: {SUPPORTED_TYPES}",
                        c.name(),
                        c.type_(),
                        quote_ident(c.name())
                    ),
                ));
            };
            if fields.iter().any(|f: &Field| f.name() == c.name()) {
                return Err(Error::config(
                    self.source_field(),
                    format!(
                        "two columns are named `{}`: give them distinct names (AS ...)",
                        c.name()
                    ),
                ));
            }
            kinds.push(kind);
            fields.push(Field::new(c.name(), kind.data_type(), true));
        }
        if fields.is_empty() {
            return Err(Error::config(
                self.source_field(),
                "the statement returns no columns (is it a SELECT?)",
            ));
        }
        let Some(agg) = &self.aggregate else {
            return Ok(Resolved {
                sql: base,
                params,
                kinds,
                output: Arc::new(Schema::new(fields)),
                reason_column: None,
                settings: Vec::new(),
                partitions: 1,
            });
        };

        // Aggregate: check the three columns, then build the SQL.
        let find = |name: &str, field: &str| -> Result<Kind> {
            fields
                .iter()
                .position(|f| f.name() == name)
                .map(|i| kinds[i])
                .ok_or_else(|| {
                    Error::config(
                        field,
                        format!(
                            "column `{name}` is not among the {} columns: {}",
                            if self.table.is_some() {
                                "table's"
                            } else {
                                "query's"
                            },
                            fields
                                .iter()
                                .map(|f| f.name().as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })
        };
        let key_kind = find(&agg.key, "aggregate.key")?;
        let date_kind = find(&agg.date, "aggregate.date")?;
        let amount_kind = find(&agg.amount, "aggregate.amount")?;
        // Text keys group and sort byte-wise (as segflow sorts) in one sort; equality is
        // the same in every deterministic collation.
        let collate = match key_kind {
            Kind::Int2 | Kind::Int4 | Kind::Int8 | Kind::Uuid => "",
            Kind::Text => " COLLATE \"C\"",
            other => {
                return Err(Error::config(
                    "aggregate.key",
                    format!(
                        "column `{}` is {:?}; the key must be an integer, text or uuid column",
                        agg.key, other
                    ),
                ))
            }
        };
        let k = quote_ident(&agg.key);
        let d = quote_ident(&agg.date);
        let a = quote_ident(&agg.amount);
        let day = match date_kind {
            Kind::Date => d,
            Kind::Timestamp => format!("{d}::date"),
            Kind::TimestampTz => format!("({d} AT TIME ZONE 'UTC')::date"),
            _ => {
                return Err(Error::config(
                    "aggregate.date",
                    format!(
                        "column `{}` is not a date, timestamp or timestamptz column",
                        agg.date
                    ),
                ))
            }
        };
        if !matches!(
            amount_kind,
            Kind::Int2 | Kind::Int4 | Kind::Int8 | Kind::Float4 | Kind::Float8 | Kind::Numeric
        ) {
            return Err(Error::config(
                "aggregate.amount",
                format!(
                    "column `{}` is not a numeric column (int2, int4, int8, float4, float8, \
                     numeric)",
                    agg.amount
                ),
            ));
        }
        // The as_of date is a validated YYYY-MM-DD, safe to write as a literal.
        let as_of = format!("DATE '{}'", agg.as_of);
        let rows = format!(
            "(SELECT {k}{collate} AS k, {day} AS d, {a}::float8 AS a \
               FROM ({base}) AS segflow_src) AS t"
        );
        // Finite: NaN compares above every number in PostgreSQL, so it fails `< Infinity`.
        let finite = "a > '-Infinity'::float8 AND a < 'Infinity'::float8";
        // Each row gets the first of the REASONS that applies, or NULL when it is used.
        let reason = format!(
            "CASE \
               WHEN k IS NOT NULL AND d IS NOT NULL AND a IS NOT NULL AND {finite} \
                 AND d <= {as_of} THEN NULL \
               WHEN k IS NULL THEN 'null_key' \
               WHEN d IS NULL THEN 'null_date' \
               WHEN a IS NULL THEN 'null_amount' \
               WHEN {finite} THEN 'after_as_of' \
               ELSE 'non_finite_amount' END"
        );
        let part_of = match key_kind {
            Kind::Text => "hashtext(k)",
            Kind::Uuid => "uuid_hash(k)",
            _ => "k",
        };
        // Grouped by key and reason in one pass: the used rows of a customer form the
        // group whose reason is NULL; the left-out rows form groups of their own (the
        // null keys one per reason), of which only the row count is read.
        let group = |filter: String| {
            format!(
                "SELECT k, min(d), max(d), ({as_of} - max(d))::int8, count(DISTINCT d)::int8, \
                   count(*)::int8, sum(a), sum(a) / count(*)::float8, \
                   ({as_of} - min(d))::int8, \
                   CASE WHEN count(DISTINCT d) > 1 \
                     THEN (max(d) - min(d))::float8 / (count(DISTINCT d) - 1) END AS gap, \
                   reason \
                 FROM (SELECT k, d, a, {reason} AS reason FROM {rows}{filter}) AS v \
                 GROUP BY k, reason"
            )
        };
        let sql_for = |parts: u32| {
            if parts <= 1 {
                return format!("{} ORDER BY k, reason NULLS FIRST", group(String::new()));
            }
            let branches: Vec<String> = (0..parts)
                .map(|i| {
                    group(format!(
                        " WHERE coalesce(abs({part_of} % {parts}), 0) = {i}"
                    ))
                })
                .collect();
            format!(
                "SELECT * FROM ({}) AS u ORDER BY k, reason NULLS FIRST",
                branches.join(" UNION ALL ")
            )
        };

        let parts = match agg.partitions {
            Some(n) if !(1..=MAX_PARTITIONS).contains(&n) => {
                return Err(Error::config(
                    "aggregate.partitions",
                    format!("partitions must be between 1 and {MAX_PARTITIONS}"),
                ))
            }
            Some(n) => n,
            None => {
                // The server's own parallelism, as the user's settings leave it.
                let mut t = client.transaction().map_err(|e| self.sql_error(dsn, &e))?;
                self.apply_settings(&mut t, dsn, &self.aggregate_settings(agg, 1))?;
                let n: String = t
                    .query_one(
                        "SELECT current_setting('max_parallel_workers_per_gather')",
                        &[],
                    )
                    .map_err(|e| self.sql_error(dsn, &e))?
                    .get(0);
                n.trim()
                    .parse::<u32>()
                    .unwrap_or(0)
                    .clamp(1, MAX_PARTITIONS)
            }
        };
        let param_refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let mut tries = vec![1];
        if parts > 1 {
            tries.insert(0, parts);
        }
        for parts in tries {
            let sql = sql_for(parts);
            let settings = self.aggregate_settings(agg, parts);
            let mut t = client.transaction().map_err(|e| self.sql_error(dsn, &e))?;
            self.apply_settings(&mut t, dsn, &settings)?;
            if parts > 1 {
                // Only worth it when the parts run side by side, under one Gather with a
                // Parallel Append: otherwise one statement.
                let plan: Vec<String> = t
                    .query(&format!("EXPLAIN {sql}"), &param_refs)
                    .map_err(|e| self.sql_error(dsn, &e))?
                    .iter()
                    .filter_map(|row| row.try_get::<_, String>(0).ok())
                    .collect();
                let has = |node: &str| plan.iter().filter(|l| l.contains(node)).count();
                if has("Parallel Append") == 0 || has("Gather") != 1 {
                    continue;
                }
            }
            let stmt = t.prepare(&sql).map_err(|e| self.sql_error(dsn, &e))?;
            let mut agg_kinds: Vec<Kind> = Vec::with_capacity(11);
            for c in stmt.columns() {
                agg_kinds.push(Kind::of(c.type_()).ok_or_else(|| {
                    Error::new(format!(
                        "internal: the aggregation returned column `{}` of type {}",
                        c.name(),
                        c.type_()
                    ))
                })?);
            }
            let options = FeatureOptions {
                as_of: Some(agg.as_of.days()),
                ..Default::default()
            };
            let output =
                FeatureAggregator::output_schema_for(&agg.key, &key_kind.data_type(), &options)
                    .map_err(|e| Error::config("aggregate.key", e.to_string()))?;
            if agg_kinds.len() != output.fields().len() + 1 {
                return Err(Error::new(
                    "internal: the aggregation returned an unexpected number of columns",
                ));
            }
            return Ok(Resolved {
                sql,
                params,
                reason_column: Some(agg_kinds.len() - 1),
                kinds: agg_kinds,
                output,
                settings,
                partitions: parts,
            });
        }
        unreachable!("one partition is always tried")
    }

    /// The settings of the aggregation's transaction with `parts` partitions: the
    /// collector's own that `aggregate.settings` does not name, then the user's (but
    /// those set to `null`), as (name, value, whether the user set it).
    fn aggregate_settings(&self, agg: &Aggregate, parts: u32) -> Vec<(String, String, bool)> {
        let own: &[(&str, &str)] = if parts > 1 {
            &PARTITIONED_SETTINGS
        } else {
            &[]
        };
        let mut all: Vec<(String, String, bool)> = own
            .iter()
            .filter(|(name, _)| !agg.settings.contains_key(*name))
            .map(|&(name, value)| (name.to_string(), value.to_string(), false))
            .collect();
        for (name, value) in &agg.settings {
            if let Some(value) = value.to_param().0 {
                all.push((name.clone(), value, true));
            }
        }
        all
    }

    /// Set `settings` for the rest of the transaction.
    fn apply_settings(
        &self,
        t: &mut postgres::Transaction<'_>,
        dsn: &Dsn,
        settings: &[(String, String, bool)],
    ) -> Result<()> {
        for (name, value, by_user) in settings {
            set_local(t, name, value).map_err(|e| {
                let own = if *by_user {
                    ""
                } else {
                    " (the collector sets it; write `null` for it in `aggregate.settings` \
                     to leave the server's value)"
                };
                Error::config(
                    &format!("aggregate.settings.{name}"),
                    dsn.redactor.clean(&format!(
                        "setting `{name}` to `{value}` on {}{own}: {}",
                        dsn.target,
                        pg_message(&e)
                    )),
                )
            })?;
        }
        Ok(())
    }

    /// Connect and resolve, as `plan` and `run` both do.
    fn open(&self) -> Result<(Client, Dsn, Resolved, u32)> {
        let dsn = self.dsn()?;
        let (mut client, retries) = self.connect(&dsn)?;
        let resolved = self.resolve(&mut client, &dsn)?;
        Ok((client, dsn, resolved, retries))
    }
}

/// `SET LOCAL name = value`, with both bound.
fn set_local(
    t: &mut postgres::Transaction<'_>,
    name: &str,
    value: &str,
) -> std::result::Result<(), postgres::Error> {
    t.execute("SELECT set_config($1, $2, true)", &[&name, &value])
        .map(|_| ())
}

impl Component for PostgresSource {
    const NAME: &'static str = "postgres";
    const STAGE: Stage = Stage::Collect;

    fn ports() -> Ports {
        Ports::new(Stage::Collect, 0, 0).outputs(&[(
            "main",
            "the rows of the table or query; with `aggregate`, one row per customer, sorted \
             by key",
        )])
    }

    /// The `fingerprint_query`'s rows, every value as the server's text (NULL as null).
    fn fingerprint(&self) -> Result<Fingerprint> {
        use crate::sqlite::{FINGERPRINT_MAX_ROWS, NO_FINGERPRINT_QUERY};
        let Some(q) = &self.fingerprint_query else {
            return Ok(Fingerprint::Never(NO_FINGERPRINT_QUERY.into()));
        };
        let dsn = self.dsn()?;
        let fail = |m: String| {
            Error::config(
                "fingerprint_query",
                dsn.redactor
                    .clean(&format!("the fingerprint_query `{q}` failed: {m}")),
            )
        };
        let (mut client, _) = self.connect(&dsn).map_err(|e| fail(e.to_string()))?;
        let mut t = client
            .build_transaction()
            .read_only(true)
            .start()
            .map_err(|e| fail(pg_message(&e)))?;
        let messages = t.simple_query(q).map_err(|e| fail(pg_message(&e)))?;
        let mut rows = Vec::new();
        for m in messages {
            if let postgres::SimpleQueryMessage::Row(r) = m {
                if rows.len() == FINGERPRINT_MAX_ROWS {
                    return Err(fail(format!(
                        "it returned more than {FINGERPRINT_MAX_ROWS} rows; summarise the data \
                         (e.g. `SELECT max(updated_at), count(*) FROM orders`)"
                    )));
                }
                rows.push(serde_json::Value::Array(
                    (0..r.len())
                        .map(|i| r.get(i).map_or(serde_json::Value::Null, |v| v.into()))
                        .collect(),
                ));
            }
        }
        let _ = t.rollback();
        Ok(Fingerprint::Source(
            serde_json::json!({"query": q, "rows": rows}),
        ))
    }

    fn plan(&self, _inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let (_client, _dsn, resolved, _) = self.open()?;
        Ok(Outputs::main(resolved.output))
    }

    fn run(&self, _inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let (client, dsn, resolved, retries) = self.open()?;
        ctx.fact(
            "source",
            match &self.table {
                Some(t) => t.as_str(),
                None => "query",
            },
        );
        ctx.fact("retries", retries);
        if let Some(agg) = &self.aggregate {
            ctx.fact("mode", "aggregate");
            ctx.fact("as_of", agg.as_of.to_string());
            ctx.fact("partitions", resolved.partitions);
        }
        let output = resolved.output.clone();
        let (tx, rx) = sync_channel::<Message>(1);
        let job = Fetch {
            batch_size: self.batch_size,
            redactor: dsn.redactor.clone(),
            what: match &self.table {
                Some(t) => format!("reading table `{t}`"),
                None => "running the query".into(),
            },
            resolved,
        };
        std::thread::Builder::new()
            .name("segflow-postgres".into())
            .spawn(move || job.run(client, tx))
            .map_err(|e| Error::new(format!("starting the reader thread: {e}")))?;
        let stream = PgStream {
            rx,
            handle: ctx.handle(),
            finished: false,
            rows: 0,
            aggregate: self.aggregate.is_some(),
        };
        Ok(Outputs::main(Table::from_iter(output, stream)))
    }
}

// ---------------------------------------------------------------------------------------
// Streaming

/// What the reader thread sends.
enum Message {
    Batch(RecordBatch),
    Error(String),
    Done(Summary),
}

#[derive(Debug, Default)]
struct Summary {
    rows: u64,
    bytes: u64,
    /// Aggregate mode: rows left out per reason.
    excluded: BTreeMap<String, u64>,
    /// Aggregate mode: rows aggregated.
    used: u64,
}

/// The reader thread's job: fetch `batch_size` rows at a time from a cursor.
struct Fetch {
    batch_size: usize,
    redactor: Redactor,
    what: String,
    resolved: Resolved,
}

impl Fetch {
    fn run(self, mut client: Client, tx: std::sync::mpsc::SyncSender<Message>) {
        // Binary COPY is the fastest way out of the server, but it takes no parameters;
        // a query with parameters goes through a cursor, the aggregation through one
        // unlimited execution (so that the server may run it in parallel).
        let result = if let Some(reason_column) = self.resolved.reason_column {
            self.fetch_aggregate(&mut client, &tx, reason_column)
        } else if self.resolved.params.is_empty() {
            self.fetch_copy(&mut client, &tx)
        } else {
            self.fetch(&mut client, &tx)
        };
        let out = match result {
            Ok(summary) => Message::Done(summary),
            Err(e) => Message::Error(self.redactor.clean(&e)),
        };
        // The consumer may be gone (the step was cancelled): nothing to do then.
        let _ = tx.send(out);
    }

    /// Stream the rows with `COPY (...) TO STDOUT (FORMAT binary)`.
    fn fetch_copy(
        &self,
        client: &mut Client,
        tx: &std::sync::mpsc::SyncSender<Message>,
    ) -> std::result::Result<Summary, String> {
        use std::io::Read;
        let r = &self.resolved;
        let copy = client
            .copy_out(&format!("COPY ({}) TO STDOUT (FORMAT binary)", r.sql))
            .map_err(|e| format!("{}: {}", self.what, pg_message(&e)))?;
        let mut rd = std::io::BufReader::with_capacity(1 << 17, copy);
        let io = |e: std::io::Error| {
            // The server's error (e.g. a failing expression) arrives as the read error.
            let msg = match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<postgres::Error>())
            {
                Some(pe) => pg_message(pe),
                None => e.to_string(),
            };
            format!("{}: {msg}", self.what)
        };
        let mut header = [0u8; 19];
        rd.read_exact(&mut header).map_err(io)?;
        if &header[..11] != b"PGCOPY\n\xff\r\n\0" {
            return Err(format!(
                "{}: the server sent no binary COPY header",
                self.what
            ));
        }
        let ext = u32::from_be_bytes([header[15], header[16], header[17], header[18]]);
        std::io::copy(&mut (&mut rd).take(u64::from(ext)), &mut std::io::sink()).map_err(io)?;
        let ncols = r.kinds.len();
        let mut summary = Summary::default();
        let mut buf: Vec<u8> = Vec::new();
        let mut word = [0u8; 4];
        loop {
            let mut builders: Vec<Builder> = r
                .kinds
                .iter()
                .map(|k| Builder::new(*k, self.batch_size))
                .collect();
            let mut n = 0usize;
            let mut done = false;
            while n < self.batch_size {
                rd.read_exact(&mut word[..2]).map_err(io)?;
                let fields = i16::from_be_bytes([word[0], word[1]]);
                if fields == -1 {
                    done = true;
                    break;
                }
                if usize::try_from(fields).ok() != Some(ncols) {
                    return Err(format!(
                        "{}: a COPY row has {fields} fields, expected {ncols}",
                        self.what
                    ));
                }
                for (i, b) in builders.iter_mut().enumerate() {
                    rd.read_exact(&mut word).map_err(io)?;
                    let len = i32::from_be_bytes(word);
                    let value = if len < 0 {
                        None
                    } else {
                        buf.resize(len as usize, 0);
                        rd.read_exact(&mut buf).map_err(io)?;
                        summary.bytes += len as u64;
                        Some(buf.as_slice())
                    };
                    b.push(r.kinds[i], value).map_err(|m| {
                        format!(
                            "{}: column `{}`, row {}: {m}",
                            self.what,
                            r.output.field(i).name(),
                            summary.rows + 1
                        )
                    })?;
                }
                n += 1;
                summary.rows += 1;
            }
            if n > 0 {
                let columns: Vec<ArrayRef> = builders.into_iter().map(Builder::finish).collect();
                let batch = RecordBatch::try_new(r.output.clone(), columns)
                    .map_err(|e| format!("{}: {e}", self.what))?;
                if tx.send(Message::Batch(batch)).is_err() {
                    return Ok(summary);
                }
            }
            if done {
                break;
            }
        }
        // Read to the end so the COPY completes and any late server error surfaces.
        std::io::copy(&mut rd, &mut std::io::sink()).map_err(io)?;
        Ok(summary)
    }

    /// Stream the rows through a cursor (a portal fetched `batch_size` rows at a time).
    fn fetch(
        &self,
        client: &mut Client,
        tx: &std::sync::mpsc::SyncSender<Message>,
    ) -> std::result::Result<Summary, String> {
        let r = &self.resolved;
        let pg = |e: postgres::Error| format!("{}: {}", self.what, pg_message(&e));
        let mut t = client
            .build_transaction()
            .read_only(true)
            .start()
            .map_err(pg)?;
        let params: Vec<&(dyn ToSql + Sync)> =
            r.params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let stmt = t.prepare(&r.sql).map_err(pg)?;
        self.check_columns(&stmt)?;
        let portal = t.bind(&stmt, &params).map_err(pg)?;
        let mut summary = Summary::default();
        let max_rows = i32::try_from(self.batch_size).unwrap_or(i32::MAX);
        loop {
            let mut batch = Rows::new(self, r);
            {
                use postgres::fallible_iterator::FallibleIterator;
                let mut rows = t.query_portal_raw(&portal, max_rows).map_err(pg)?;
                while let Some(row) = rows.next().map_err(pg)? {
                    batch.push(&row, &mut summary)?;
                }
            }
            let n = batch.len();
            if n > 0 && tx.send(Message::Batch(batch.finish()?)).is_err() {
                // The consumer stopped reading; the transaction is rolled back.
                return Ok(summary);
            }
            if n < self.batch_size {
                break;
            }
        }
        t.commit().map_err(pg)?;
        Ok(summary)
    }

    /// Fail when the prepared statement's columns are not those planned.
    fn check_columns(&self, stmt: &postgres::Statement) -> std::result::Result<(), String> {
        let kinds = &self.resolved.kinds;
        if stmt.columns().len() != kinds.len()
            || stmt
                .columns()
                .iter()
                .zip(kinds)
                .any(|(c, k)| Kind::of(c.type_()) != Some(*k))
        {
            return Err(format!(
                "{}: the columns changed since the pipeline was planned; run it again",
                self.what
            ));
        }
        Ok(())
    }

    /// The aggregation: stream the per-customer rows, and count the left-out rows that
    /// come as groups with a reason.
    fn fetch_aggregate(
        &self,
        client: &mut Client,
        tx: &std::sync::mpsc::SyncSender<Message>,
        reason_column: usize,
    ) -> std::result::Result<Summary, String> {
        use postgres::fallible_iterator::FallibleIterator;
        let r = &self.resolved;
        let pg = |e: postgres::Error| format!("{}: {}", self.what, pg_message(&e));
        let count = |row: &postgres::Row| -> std::result::Result<u64, String> {
            // Column 5 is the group's row count (n_transactions).
            Ok(match row.try_get::<_, Option<Raw>>(5).map_err(pg)? {
                Some(Raw(b)) => i64::from_be_bytes(fixed(b)?).max(0) as u64,
                None => 0,
            })
        };
        let params: Vec<&(dyn ToSql + Sync)> =
            r.params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let mut t = client
            .build_transaction()
            .read_only(true)
            .start()
            .map_err(pg)?;
        for (name, value, _) in &r.settings {
            set_local(&mut t, name, value)
                .map_err(|e| format!("setting `{name}` to `{value}`: {}", pg_message(&e)))?;
        }
        let stmt = t.prepare(&r.sql).map_err(pg)?;
        self.check_columns(&stmt)?;
        // One execution without a row limit: PostgreSQL runs a parallel plan only for a
        // statement run to completion, never for a portal fetched a batch at a time. The
        // rows still stream: they are read as the batches are consumed.
        let cancel = t.cancel_token();
        let mut rows = t.query_raw(&stmt, params.iter().copied()).map_err(pg)?;
        let mut summary = Summary::default();
        let mut batch = Rows::new(self, r);
        while let Some(row) = rows.next().map_err(pg)? {
            if let Some(Raw(reason)) = row.try_get::<_, Option<Raw>>(reason_column).map_err(pg)? {
                *summary
                    .excluded
                    .entry(String::from_utf8_lossy(reason).into_owned())
                    .or_default() += count(&row)?;
                continue;
            }
            summary.used += count(&row)?;
            batch.push(&row, &mut summary)?;
            if batch.len() == self.batch_size {
                let full = std::mem::replace(&mut batch, Rows::new(self, r));
                if tx.send(Message::Batch(full.finish()?)).is_err() {
                    // The consumer stopped reading: stop the server rather than drain
                    // the remaining rows.
                    let _ = cancel.cancel_query(NoTls);
                    return Ok(summary);
                }
            }
        }
        drop(rows);
        if batch.len() > 0 && tx.send(Message::Batch(batch.finish()?)).is_err() {
            return Ok(summary);
        }
        t.commit().map_err(pg)?;
        Ok(summary)
    }
}

/// Rows being gathered into one Arrow batch.
struct Rows<'a> {
    fetch: &'a Fetch,
    resolved: &'a Resolved,
    builders: Vec<Builder>,
    len: usize,
}

impl<'a> Rows<'a> {
    fn new(fetch: &'a Fetch, resolved: &'a Resolved) -> Self {
        Rows {
            fetch,
            resolved,
            // Not the aggregation's trailing `reason` column.
            builders: resolved
                .kinds
                .iter()
                .take(resolved.output.fields().len())
                .map(|k| Builder::new(*k, fetch.batch_size))
                .collect(),
            len: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Decode one row into the builders.
    fn push(
        &mut self,
        row: &postgres::Row,
        summary: &mut Summary,
    ) -> std::result::Result<(), String> {
        let r = self.resolved;
        let what = &self.fetch.what;
        for (i, b) in self.builders.iter_mut().enumerate() {
            let v: Option<Raw> = row
                .try_get(i)
                .map_err(|e| format!("{what}: {}", pg_message(&e)))?;
            summary.bytes += v.as_ref().map_or(0, |Raw(x)| x.len() as u64);
            b.push(r.kinds[i], v.map(|Raw(x)| x)).map_err(|m| {
                format!(
                    "{what}: column `{}`, row {}: {m}",
                    r.output.field(i).name(),
                    summary.rows + 1
                )
            })?;
        }
        summary.rows += 1;
        self.len += 1;
        Ok(())
    }

    fn finish(self) -> std::result::Result<RecordBatch, String> {
        let columns: Vec<ArrayRef> = self.builders.into_iter().map(Builder::finish).collect();
        RecordBatch::try_new(self.resolved.output.clone(), columns)
            .map_err(|e| format!("{}: {e}", self.fetch.what))
    }
}

/// The lazy output: batches from the reader thread; facts when it is done.
struct PgStream {
    rx: Receiver<Message>,
    handle: HostHandle,
    finished: bool,
    rows: u64,
    aggregate: bool,
}

impl Iterator for PgStream {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.rx.recv() {
            Ok(Message::Batch(b)) => {
                self.rows += b.num_rows() as u64;
                self.handle.progress(self.rows, 0, "rows");
                Some(Ok(b))
            }
            Ok(Message::Error(m)) => {
                self.finished = true;
                Some(Err(ArrowError::ExternalError(m.into())))
            }
            Ok(Message::Done(s)) => {
                self.finished = true;
                let h = self.handle;
                h.fact("rows", s.rows);
                h.fact("bytes_read", s.bytes);
                if self.aggregate {
                    let excluded: u64 = s.excluded.values().sum();
                    h.fact("customers", s.rows);
                    h.fact("rows_in", s.used + excluded);
                    h.fact("rows_used", s.used);
                    h.fact("rows_excluded", excluded);
                    let mut reasons = serde_json::Map::new();
                    for r in REASONS {
                        if let Some(&n) = s.excluded.get(r) {
                            if n > 0 {
                                reasons.insert(r.into(), n.into());
                            }
                        }
                    }
                    h.fact("excluded_reasons", reasons);
                }
                None
            }
            Err(_) => {
                self.finished = true;
                Some(Err(ArrowError::ExternalError(
                    "the PostgreSQL reader thread stopped unexpectedly".into(),
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found_in_both_dsn_forms() {
        assert_eq!(
            dsn_password("postgresql://u:s3cr%40t@h:5432/db").as_deref(),
            Some("s3cr%40t")
        );
        assert_eq!(dsn_password("postgres://u@h/db"), None);
        assert_eq!(
            dsn_password("host=h user=u password=hunter2 dbname=d").as_deref(),
            Some("hunter2")
        );
        assert_eq!(
            dsn_password("host=h password = 'a b\\'c' user=u").as_deref(),
            Some("a b'c")
        );
        let r = Redactor::new("postgresql://u:s3cr%40t@h/db");
        assert_eq!(r.clean("x s3cr@t y s3cr%40t"), "x *** y ***");
    }

    #[test]
    fn named_parameters_become_positional() {
        let (sql, names) = translate_params(
            "SELECT a::int, ':x', \"col:y\", $$ :z $$ FROM t -- :c\n WHERE a = :a AND b > :b \
             /* :q */ AND c = :a",
        );
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(
            sql,
            "SELECT a::int, ':x', \"col:y\", $$ :z $$ FROM t -- :c\n WHERE a = $1 AND b > $2 \
             /* :q */ AND c = $1"
        );
        let (sql, names) = translate_params("SELECT E'\\' :no' , :yes");
        assert_eq!(names, vec!["yes"]);
        assert_eq!(sql, "SELECT E'\\' :no' , $1");
    }

    #[test]
    fn params_of_every_kind_parse() {
        let c: PostgresSource = segflow_sdk::parse_config(
            r#"{"dsn": "x", "query": "SELECT :a", "params":
                {"a": null, "b": 1, "c": 1.5, "d": "2024-01-01", "e": true}}"#,
        )
        .unwrap();
        assert_eq!(c.params["a"], ParamValue::Null(()));
        assert_eq!(c.params["b"], ParamValue::Int(1));
        assert_eq!(c.params["c"], ParamValue::Float(1.5));
        assert_eq!(c.params["d"], ParamValue::Text("2024-01-01".into()));
        assert_eq!(c.params["e"], ParamValue::Bool(true));
        assert_eq!(c.batch_size, 65_536);
        assert_eq!(c.retries, 3);
        let bad = segflow_sdk::parse_config::<PostgresSource>(r#"{"dsn": "x", "tabel": "t"}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn aggregate_options_parse() {
        let c: PostgresSource = segflow_sdk::parse_config(
            r#"{"dsn": "x", "table": "t", "aggregate": {"as_of": "2025-01-01",
                "partitions": 4, "settings": {"work_mem": "64MB", "jit": false,
                "max_parallel_workers_per_gather": 4, "parallel_tuple_cost": null}}}"#,
        )
        .unwrap();
        let agg = c.aggregate.as_ref().unwrap();
        assert_eq!(agg.partitions, Some(4));
        assert_eq!(agg.key, "customer_id");
        // The collector's own settings come first, but those the user names; a null
        // value sets nothing.
        let settings = c.aggregate_settings(agg, 4);
        let names: Vec<(&str, &str)> = settings
            .iter()
            .map(|(n, v, _)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("min_parallel_table_scan_size", "715827882"),
                ("min_parallel_index_scan_size", "715827882"),
                ("jit", "false"),
                ("max_parallel_workers_per_gather", "4"),
                ("work_mem", "64MB"),
            ]
        );
        assert_eq!(c.aggregate_settings(agg, 1).len(), 3);
        let c: PostgresSource = segflow_sdk::parse_config(
            r#"{"dsn": "x", "table": "t", "aggregate": {"as_of": "2025-01-01",
                "settings": {"min_parallel_table_scan_size": null}}}"#,
        )
        .unwrap();
        let agg = c.aggregate.as_ref().unwrap();
        assert_eq!(agg.partitions, None);
        assert_eq!(
            c.aggregate_settings(agg, 2),
            vec![(
                "min_parallel_index_scan_size".to_string(),
                "715827882".to_string(),
                false
            )]
        );
    }

    #[test]
    fn table_names_are_checked() {
        assert_eq!(table_sql("orders").unwrap(), "orders");
        assert_eq!(table_sql("sales.Orders").unwrap(), "sales.Orders");
        assert_eq!(table_sql("\"My \"\"T\"\"\"").unwrap(), "\"My \"\"T\"\"\"");
        assert!(table_sql("orders; DROP TABLE x").is_err());
        assert!(table_sql("a.b.c.d").is_err());
    }

    #[test]
    fn numerics_decode_to_the_nearest_float() {
        // 1234.5 = digits [1234, 5000], weight 0, dscale 1
        let raw = [0, 2, 0, 0, 0, 0, 0, 1, 0x04, 0xD2, 0x13, 0x88];
        assert_eq!(numeric_to_f64(&raw).unwrap(), 1234.5);
        // -0.01 = digits [100], weight -1
        let raw = [0, 1, 0xFF, 0xFF, 0x40, 0, 0, 2, 0, 100];
        assert_eq!(numeric_to_f64(&raw).unwrap(), -0.01);
        assert!(numeric_to_f64(&[0, 0, 0, 0, 0xC0, 0, 0, 0])
            .unwrap()
            .is_nan());
    }
}
