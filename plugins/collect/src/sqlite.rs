//! The `sqlite` component: a SQLite table or query, streamed into Arrow batches.

use chrono::{NaiveDate, NaiveDateTime};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Statement};
use segflow_sdk::arrow::array::{
    ArrayBuilder, BinaryBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use segflow_sdk::arrow::datatypes::TimeUnit;
use segflow_sdk::arrow::error::ArrowError;
use segflow_sdk::ffi::HostHandle;
use segflow_sdk::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// Read a SQLite database: every row of a `table`, or the rows of a `query` with named
/// `params` bound safely. Column types come from the declared column types (INTEGER →
/// int64, REAL → float64, TEXT → utf8, BLOB → binary; DATE → date and DATETIME /
/// TIMESTAMP → timestamp when the stored text parses); rows are streamed batch by batch.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqliteSource {
    /// The database file. It is opened read-only; relative paths are resolved from the
    /// working directory of `segflow`.
    pub path: String,
    /// A table (or view) to read whole. Give `table` or `query`, not both.
    #[serde(default)]
    pub table: Option<String>,
    /// A SELECT statement to run, e.g. `SELECT * FROM orders WHERE date >= :since`.
    /// Give `table` or `query`, not both.
    #[serde(default)]
    pub query: Option<String>,
    /// Values of the query's named parameters, e.g. `{since: "2024-01-01"}` for
    /// `:since` (also `@since` or `$since`). Values are bound, never pasted into the SQL.
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
    /// Rows read at planning time to type columns that have no declared type (such as
    /// expressions in a query) and to check that DATE / DATETIME text parses.
    #[serde(default = "default_infer_rows")]
    #[schemars(range(min = 1))]
    pub infer_rows: usize,
    /// Rows per record batch.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// A cheap query whose result changes when the data read changes, such as `SELECT
    /// max(updated_at), count(*) FROM orders`. The step cache re-uses the step's result
    /// only while this query's rows and the database file's size and modification time
    /// are unchanged; without it the step is never cached. It runs read-only, without
    /// `params`, and must return at most 1000 rows.
    #[serde(default)]
    pub fingerprint_query: Option<String>,
}

use crate::param::ParamValue;

/// Why a database collector without `fingerprint_query` is never cached.
pub(crate) const NO_FINGERPRINT_QUERY: &str = "no `fingerprint_query`: a database collector is cached only when it can tell whether the data changed";

/// Most rows a `fingerprint_query` may return: it should summarise the data, not copy it.
pub(crate) const FINGERPRINT_MAX_ROWS: usize = 1000;

fn default_infer_rows() -> usize {
    100
}
fn default_batch_size() -> usize {
    65_536
}

/// The Arrow type a column is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Text,
    Blob,
    Date,
    Timestamp,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Text => DataType::Utf8,
            Kind::Blob => DataType::Binary,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }
}

/// The kind a declared column type maps to, following SQLite's affinity rules, with
/// DATE / DATETIME / TIMESTAMP as candidates for dates. `None`: no declared type.
fn declared_kind(decl: &str) -> Option<Kind> {
    let d = decl.to_ascii_uppercase();
    if d.contains("INT") {
        Some(Kind::Int)
    } else if d.contains("DATETIME") || d.contains("TIMESTAMP") {
        Some(Kind::Timestamp)
    } else if d.contains("DATE") {
        Some(Kind::Date)
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        Some(Kind::Text)
    } else if d.contains("BLOB") {
        Some(Kind::Blob)
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        Some(Kind::Float)
    } else if d.trim().is_empty() {
        None
    } else {
        // NUMERIC, DECIMAL, BOOLEAN, ...: numeric affinity.
        Some(Kind::Float)
    }
}

fn parse_date(s: &str) -> Option<i32> {
    let s = s.trim();
    let d = NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok()?;
    if s.len() > 10 && parse_timestamp(s).is_none() {
        return None;
    }
    Some((d - NaiveDate::default()).num_days() as i32)
}

fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
}

struct Resolved {
    kinds: Vec<Kind>,
    output: SchemaRef,
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl SqliteSource {
    fn open(&self) -> Result<Connection> {
        let p = Path::new(&self.path);
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(Error::config(
                    "path",
                    format!(
                        "`{}` is a directory; name the SQLite database file",
                        self.path
                    ),
                ))
            }
            Err(e) => {
                return Err(Error::config(
                    "path",
                    format!(
                        "cannot open `{}`: {e} (relative paths are resolved from {})",
                        self.path,
                        std::env::current_dir()
                            .map(|d| d.display().to_string())
                            .unwrap_or_else(|_| "the current directory".into())
                    ),
                ))
            }
        }
        let conn = Connection::open_with_flags(
            p,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Error::config("path", format!("cannot open `{}`: {e}", self.path)))?;
        // Reading the schema fails on a file that is not a database.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| {
            Error::config(
                "path",
                format!("`{}` is not a readable SQLite database: {e}", self.path),
            )
        })?;
        Ok(conn)
    }

    fn sql(&self) -> Result<(String, &'static str)> {
        match (&self.table, &self.query) {
            (Some(t), None) => {
                if !self.params.is_empty() {
                    return Err(Error::config(
                        "params",
                        "`params` only applies to a `query`; remove it or use `query`",
                    ));
                }
                Ok((format!("SELECT * FROM {}", quote_ident(t)), "table"))
            }
            (None, Some(q)) => Ok((q.clone(), "query")),
            (Some(_), Some(_)) => Err(Error::config(
                "query",
                "give either `table` or `query`, not both",
            )),
            (None, None) => Err(Error::config(
                "table",
                "name a `table` to read, or give a `query`",
            )),
        }
    }

    fn prepare<'c>(&self, conn: &'c Connection) -> Result<Statement<'c>> {
        let (sql, field) = self.sql()?;
        let mut stmt = conn.prepare(&sql).map_err(|e| {
            let msg = match (&self.table, e.to_string()) {
                (Some(t), m) if m.contains("no such table") => {
                    let tables: Vec<String> = conn
                        .prepare(
                            "SELECT name FROM sqlite_master WHERE type IN ('table','view') \
                             ORDER BY name",
                        )
                        .and_then(|mut s| {
                            s.query_map([], |r| r.get::<_, String>(0))?
                                .collect::<rusqlite::Result<Vec<_>>>()
                        })
                        .unwrap_or_default();
                    format!(
                        "`{}` has no table `{t}`; it has: {}",
                        self.path,
                        if tables.is_empty() {
                            "(no tables)".into()
                        } else {
                            tables.join(", ")
                        }
                    )
                }
                (_, m) => format!("SQLite cannot prepare the {field}: {m}"),
            };
            Error::config(field, msg)
        })?;
        if !stmt.readonly() {
            return Err(Error::config(
                "query",
                "the query would change the database; give a SELECT statement",
            ));
        }
        for (name, v) in &self.params {
            let idx = [":", "@", "$"]
                .iter()
                .find_map(|p| {
                    stmt.parameter_index(&format!(
                        "{p}{}",
                        name.trim_start_matches([':', '@', '$'])
                    ))
                    .ok()
                    .flatten()
                })
                .ok_or_else(|| {
                    Error::config(
                        &format!("params.{name}"),
                        format!("the query has no parameter `:{name}`"),
                    )
                })?;
            let r = match v {
                ParamValue::Bool(b) => stmt.raw_bind_parameter(idx, i64::from(*b)),
                ParamValue::Int(i) => stmt.raw_bind_parameter(idx, *i),
                ParamValue::Float(f) => stmt.raw_bind_parameter(idx, *f),
                ParamValue::Text(s) => stmt.raw_bind_parameter(idx, s.as_str()),
                ParamValue::Null(()) => stmt.raw_bind_parameter(idx, rusqlite::types::Null),
            };
            r.map_err(|e| Error::config(&format!("params.{name}"), e.to_string()))?;
        }
        for i in 1..=stmt.parameter_count() {
            let bound = stmt.parameter_name(i).is_some_and(|n| {
                self.params
                    .keys()
                    .any(|k| k.trim_start_matches([':', '@', '$']) == &n[1..])
            });
            if !bound {
                return Err(Error::config(
                    "params",
                    format!(
                        "the query's parameter {} has no value: add it under `params` (only \
                         named parameters such as `:since` are supported)",
                        stmt.parameter_name(i).unwrap_or("?")
                    ),
                ));
            }
        }
        Ok(stmt)
    }

    fn resolve(&self) -> Result<Resolved> {
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "batch_size must be at least 1"));
        }
        if self.infer_rows == 0 {
            return Err(Error::config("infer_rows", "infer_rows must be at least 1"));
        }
        let conn = self.open()?;
        let mut stmt = self.prepare(&conn)?;
        let cols = stmt.columns();
        let names: Vec<String> = cols.iter().map(|c| c.name().to_string()).collect();
        let mut kinds: Vec<Option<Kind>> = cols
            .iter()
            .map(|c| c.decl_type().and_then(declared_kind))
            .collect();
        // Sample rows: the storage class types undeclared columns; DATE / DATETIME columns
        // stay dates only while their text parses.
        let mut seen: Vec<Option<Kind>> = vec![None; names.len()];
        let mut date_ok = vec![true; names.len()];
        let mut rows = stmt.raw_query();
        let mut n = 0;
        while n < self.infer_rows {
            let Some(row) = rows
                .next()
                .map_err(|e| Error::new(format!("reading `{}`: {e}", self.path)))?
            else {
                break;
            };
            for i in 0..names.len() {
                let v = row
                    .get_ref(i)
                    .map_err(|e| Error::new(format!("reading `{}`: {e}", self.path)))?;
                let class = match v {
                    ValueRef::Null => None,
                    ValueRef::Integer(_) => Some(Kind::Int),
                    ValueRef::Real(_) => Some(Kind::Float),
                    ValueRef::Text(_) => Some(Kind::Text),
                    ValueRef::Blob(_) => Some(Kind::Blob),
                };
                seen[i] = match (seen[i], class) {
                    (None, c) => c,
                    (Some(Kind::Int), Some(Kind::Float)) => Some(Kind::Float),
                    (s, _) => s,
                };
                let ok = match (kinds[i], v) {
                    (Some(Kind::Date), ValueRef::Text(t)) => {
                        std::str::from_utf8(t).ok().and_then(parse_date).is_some()
                    }
                    (Some(Kind::Timestamp), ValueRef::Text(t)) => std::str::from_utf8(t)
                        .ok()
                        .and_then(parse_timestamp)
                        .is_some(),
                    (Some(Kind::Date | Kind::Timestamp), ValueRef::Null) => true,
                    (Some(Kind::Date | Kind::Timestamp), _) => false,
                    _ => true,
                };
                date_ok[i] &= ok;
            }
            n += 1;
        }
        drop(rows);
        for i in 0..names.len() {
            kinds[i] = match kinds[i] {
                Some(Kind::Date | Kind::Timestamp) if !date_ok[i] => Some(Kind::Text),
                Some(k) => Some(k),
                None => Some(seen[i].unwrap_or(Kind::Text)),
            };
        }
        let kinds: Vec<Kind> = kinds.into_iter().map(|k| k.unwrap_or(Kind::Text)).collect();
        let output = Arc::new(Schema::new(
            names
                .iter()
                .zip(&kinds)
                .map(|(n, k)| Field::new(n, k.data_type(), true))
                .collect::<Vec<_>>(),
        ));
        Ok(Resolved { kinds, output })
    }
}

impl Component for SqliteSource {
    const NAME: &'static str = "sqlite";
    const STAGE: Stage = Stage::Collect;

    fn ports() -> Ports {
        Ports::new(Stage::Collect, 0, 0).outputs(&[(
            "main",
            "the rows of the table or query, in the order SQLite returns them",
        )])
    }

    /// The `fingerprint_query`'s rows and the size and modification time of the database
    /// file (and of its `-wal` file, where writes land first in WAL mode).
    fn fingerprint(&self) -> Result<Fingerprint> {
        let Some(q) = &self.fingerprint_query else {
            return Ok(Fingerprint::Never(NO_FINGERPRINT_QUERY.into()));
        };
        let fail = |m: String| {
            Error::config(
                "fingerprint_query",
                format!("the fingerprint_query `{q}` failed: {m}"),
            )
        };
        let conn = self.open().map_err(|e| fail(e.to_string()))?;
        let mut stmt = conn.prepare(q).map_err(|e| fail(e.to_string()))?;
        if !stmt.readonly() {
            return Err(fail(
                "it would change the database; give a SELECT statement".into(),
            ));
        }
        let n = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| fail(e.to_string()))? {
            if out.len() == FINGERPRINT_MAX_ROWS {
                return Err(fail(format!(
                    "it returned more than {FINGERPRINT_MAX_ROWS} rows; summarise the data \
                     (e.g. `SELECT max(updated_at), count(*) FROM orders`)"
                )));
            }
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                let v = row.get_ref(i).map_err(|e| fail(e.to_string()))?;
                values.push(match v {
                    ValueRef::Null => serde_json::Value::Null,
                    ValueRef::Integer(i) => i.into(),
                    ValueRef::Real(f) => serde_json::Number::from_f64(f)
                        .map_or_else(|| f.to_string().into(), serde_json::Value::Number),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                    ValueRef::Blob(b) => b
                        .iter()
                        .map(|x| format!("{x:02x}"))
                        .collect::<String>()
                        .into(),
                });
            }
            out.push(serde_json::Value::Array(values));
        }
        let stat = |p: &Path| {
            std::fs::metadata(p).ok().map(|m| {
                serde_json::json!({
                    "bytes": m.len(),
                    "mtime_ns": m.modified().ok().map(crate::files::mtime_ns),
                })
            })
        };
        let file = Path::new(&self.path);
        let wal = Path::new(&format!("{}-wal", self.path)).to_path_buf();
        Ok(Fingerprint::Source(serde_json::json!({
            "query": q,
            "rows": out,
            "file": stat(file),
            "wal": stat(&wal),
        })))
    }

    fn plan(&self, _inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::main(self.resolve()?.output))
    }

    fn run(&self, _inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let r = self.resolve()?;
        ctx.fact("source", &self.path);
        if let Some(t) = &self.table {
            ctx.fact("table", t);
        }
        ctx.fact(
            "bytes",
            std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
        );
        let output = r.output.clone();
        // A connection cannot be shared with the host's thread, and a lazy stream cannot
        // borrow it: a producer thread owns it and sends at most two batches ahead.
        let (tx, rx) = sync_channel::<Result<RecordBatch, ArrowError>>(2);
        let cfg = self.clone();
        let handle = ctx.handle();
        std::thread::Builder::new()
            .name("segflow-sqlite".into())
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    produce(&cfg, &r, &tx)
                }));
                let err = match result {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => e,
                    Err(_) => ArrowError::ExternalError(
                        format!("reading `{}` failed unexpectedly (a panic)", cfg.path).into(),
                    ),
                };
                let _ = tx.send(Err(err));
            })
            .map_err(|e| Error::new(format!("starting the SQLite reader thread: {e}")))?;
        let stream = SqliteStream {
            rx,
            rows: 0,
            handle,
            finished: false,
        };
        Ok(Outputs::main(Table::from_iter(output, stream)))
    }
}

/// Run the statement and send its rows as batches; stops when the receiver is gone.
fn produce(
    cfg: &SqliteSource,
    r: &Resolved,
    tx: &std::sync::mpsc::SyncSender<Result<RecordBatch, ArrowError>>,
) -> Result<(), ArrowError> {
    let ext = |m: String| ArrowError::ExternalError(m.into());
    let conn = cfg.open().map_err(|e| ext(e.to_string()))?;
    let mut stmt = cfg.prepare(&conn).map_err(|e| ext(e.to_string()))?;
    debug_assert_eq!(stmt.column_count(), r.kinds.len());
    let mut rows = stmt.raw_query();
    let mut builders = new_builders(&r.kinds, cfg.batch_size);
    let mut n = 0usize;
    let mut row_no = 0u64;
    loop {
        let row = rows
            .next()
            .map_err(|e| ext(format!("reading `{}`: {e}", cfg.path)))?;
        let Some(row) = row else { break };
        row_no += 1;
        for (i, (b, k)) in builders.iter_mut().zip(&r.kinds).enumerate() {
            let v = row
                .get_ref(i)
                .map_err(|e| ext(format!("reading `{}`: {e}", cfg.path)))?;
            append(b.as_mut(), *k, v).map_err(|m| {
                ext(format!(
                    "`{}` row {row_no}, column `{}`: {m}; cast it in a `query` (e.g. \
                     `CAST({} AS TEXT)`)",
                    cfg.path,
                    r.output.field(i).name(),
                    quote_ident(r.output.field(i).name())
                ))
            })?;
        }
        n += 1;
        if n == cfg.batch_size {
            let batch = finish(&r.output, &mut builders)?;
            if tx.send(Ok(batch)).is_err() {
                return Ok(());
            }
            n = 0;
        }
    }
    if n > 0 {
        let batch = finish(&r.output, &mut builders)?;
        let _ = tx.send(Ok(batch));
    }
    Ok(())
}

fn new_builders(kinds: &[Kind], cap: usize) -> Vec<Box<dyn ArrayBuilder>> {
    let cap = cap.min(65_536);
    kinds
        .iter()
        .map(|k| -> Box<dyn ArrayBuilder> {
            match k {
                Kind::Int => Box::new(Int64Builder::with_capacity(cap)),
                Kind::Float => Box::new(Float64Builder::with_capacity(cap)),
                Kind::Text => Box::new(StringBuilder::with_capacity(cap, cap * 8)),
                Kind::Blob => Box::new(BinaryBuilder::with_capacity(cap, cap * 8)),
                Kind::Date => Box::new(Date32Builder::with_capacity(cap)),
                Kind::Timestamp => Box::new(TimestampMicrosecondBuilder::with_capacity(cap)),
            }
        })
        .collect()
}

fn finish(
    schema: &SchemaRef,
    builders: &mut [Box<dyn ArrayBuilder>],
) -> Result<RecordBatch, ArrowError> {
    let cols: Vec<ArrayRef> = builders.iter_mut().map(|b| b.finish()).collect();
    RecordBatch::try_new(schema.clone(), cols)
}

fn downcast<T: 'static>(b: &mut dyn ArrayBuilder) -> Result<&mut T, String> {
    b.as_any_mut()
        .downcast_mut::<T>()
        .ok_or_else(|| "internal: builder of the wrong type".to_string())
}

fn text(t: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(t).map_err(|_| "text that is not valid UTF-8".to_string())
}

/// Append one SQLite value to the builder of a column of kind `k`. SQLite columns may
/// hold values of any storage class: lossless conversions are made, others are errors.
fn append(b: &mut dyn ArrayBuilder, k: Kind, v: ValueRef<'_>) -> Result<(), String> {
    match k {
        Kind::Int => {
            let b = downcast::<Int64Builder>(b)?;
            match v {
                ValueRef::Null => b.append_null(),
                ValueRef::Integer(i) => b.append_value(i),
                ValueRef::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                    b.append_value(f as i64)
                }
                ValueRef::Text(t) => match text(t)?.trim().parse::<i64>() {
                    Ok(i) => b.append_value(i),
                    Err(_) => return Err(format!("`{}` is not an integer", text(t)?)),
                },
                other => return Err(format!("{} is not an integer", describe(other))),
            }
        }
        Kind::Float => {
            let b = downcast::<Float64Builder>(b)?;
            match v {
                ValueRef::Null => b.append_null(),
                ValueRef::Integer(i) => b.append_value(i as f64),
                ValueRef::Real(f) => b.append_value(f),
                ValueRef::Text(t) => match text(t)?.trim().parse::<f64>() {
                    Ok(f) => b.append_value(f),
                    Err(_) => return Err(format!("`{}` is not a number", text(t)?)),
                },
                other => return Err(format!("{} is not a number", describe(other))),
            }
        }
        Kind::Text => {
            let b = downcast::<StringBuilder>(b)?;
            match v {
                ValueRef::Null => b.append_null(),
                ValueRef::Integer(i) => b.append_value(i.to_string()),
                ValueRef::Real(f) => b.append_value(f.to_string()),
                ValueRef::Text(t) | ValueRef::Blob(t) => b.append_value(text(t)?),
            }
        }
        Kind::Blob => {
            let b = downcast::<BinaryBuilder>(b)?;
            match v {
                ValueRef::Null => b.append_null(),
                ValueRef::Blob(t) | ValueRef::Text(t) => b.append_value(t),
                ValueRef::Integer(i) => b.append_value(i.to_string()),
                ValueRef::Real(f) => b.append_value(f.to_string()),
            }
        }
        Kind::Date => {
            let b = downcast::<Date32Builder>(b)?;
            match v {
                ValueRef::Null => b.append_null(),
                ValueRef::Text(t) => match parse_date(text(t)?) {
                    Some(d) => b.append_value(d),
                    None => return Err(format!("`{}` is not a date YYYY-MM-DD", text(t)?)),
                },
                other => return Err(format!("{} is not a date", describe(other))),
            }
        }
        Kind::Timestamp => {
            let b = downcast::<TimestampMicrosecondBuilder>(b)?;
            match v {
                ValueRef::Null => b.append_null(),
                ValueRef::Text(t) => match parse_timestamp(text(t)?) {
                    Some(us) => b.append_value(us),
                    None => {
                        return Err(format!(
                            "`{}` is not a date-time YYYY-MM-DD HH:MM:SS",
                            text(t)?
                        ))
                    }
                },
                other => return Err(format!("{} is not a date-time", describe(other))),
            }
        }
    }
    Ok(())
}

fn describe(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => format!("the integer {i}"),
        ValueRef::Real(f) => format!("the number {f}"),
        ValueRef::Text(_) => "text".into(),
        ValueRef::Blob(b) => format!("a {}-byte blob", b.len()),
    }
}

/// Receives the producer thread's batches and records facts at the end.
struct SqliteStream {
    rx: Receiver<Result<RecordBatch, ArrowError>>,
    rows: u64,
    handle: HostHandle,
    finished: bool,
}

impl Iterator for SqliteStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.rx.recv() {
            Ok(Ok(batch)) => {
                self.rows += batch.num_rows() as u64;
                self.handle.progress(self.rows, 0, "rows");
                Some(Ok(batch))
            }
            Ok(Err(e)) => {
                self.finished = true;
                Some(Err(e))
            }
            Err(_) => {
                self.finished = true;
                self.handle.fact("rows", self.rows);
                None
            }
        }
    }
}
