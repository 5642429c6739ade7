//! The `jsonl` component: newline-delimited JSON files, typed by declaration or
//! inference, streamed.

use crate::csv::Columns;
use crate::files::{self, TextEncoding};
use arrow_json::reader::{infer_json_schema_from_iterator, Decoder, ReaderBuilder};
use chrono::NaiveDate;
use segflow_sdk::arrow::error::ArrowError;
use segflow_sdk::ffi::HostHandle;
use segflow_sdk::prelude::*;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Read newline-delimited JSON (JSON Lines): one object per line, from one file or every
/// file matching a glob pattern in sorted order. Column types are declared under
/// `columns` or inferred from the first lines; `.gz` and `.zst` files are decompressed.
/// A malformed line is an error naming the file and line. Streamed batch by batch.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonlSource {
    /// File to read, or a glob pattern such as `data/events-*.jsonl.gz` (the matches are
    /// read in sorted order). Relative paths are resolved from the working directory of
    /// `segflow`.
    pub path: String,
    /// The columns to read and their types, as a list of `{name, type}` or a map
    /// `name: type`; types are int64, float64, utf8, bool, date (text `YYYY-MM-DD`) and
    /// timestamp (text such as `2024-05-01T10:30:00`). Other keys of the objects are
    /// skipped; a key missing from a line is null; numbers and booleans read into a utf8
    /// column become their JSON text. When absent, every key seen in the
    /// first `infer_rows` lines of the first file is read, with inferred types (text
    /// whose values are all `YYYY-MM-DD` becomes a date).
    #[serde(default)]
    pub columns: Option<Columns>,
    /// Lines of the first file read to infer column types (when `columns` is absent) and
    /// to check that declared columns exist.
    #[serde(default = "default_infer_rows")]
    #[schemars(range(min = 1))]
    pub infer_rows: usize,
    /// Rows per record batch.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// Text encoding of the files: `utf-8` (default), `utf-8-sig`, `gbk`, `latin-1` or
    /// `windows-1252`.
    #[serde(default)]
    pub encoding: TextEncoding,
    /// What the step cache checks to tell whether the files changed: `metadata`
    /// (default: each file's path, size and modification time; a new file matching the
    /// glob counts) or `content` (also a SHA-256 of each file, which reads them whole).
    #[serde(default)]
    pub fingerprint: files::FingerprintMode,
}

fn default_infer_rows() -> usize {
    1000
}
fn default_batch_size() -> usize {
    65_536
}

struct Resolved {
    files: Vec<PathBuf>,
    output: SchemaRef,
    inferred: bool,
}

fn is_iso_date(v: &serde_json::Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 10 && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok())
}

impl JsonlSource {
    fn resolve(&self) -> Result<Resolved> {
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "batch_size must be at least 1"));
        }
        if self.infer_rows == 0 {
            return Err(Error::config("infer_rows", "infer_rows must be at least 1"));
        }
        let files = files::resolve(&self.path)?;
        let first = &files[0];
        let show = files::show(first);
        let reader = files::open_text(first, self.encoding, None)
            .map_err(|e| Error::config("path", format!("cannot open `{show}`: {e}")))?;
        let mut lines = BufReader::with_capacity(1 << 16, reader);
        let mut values = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        let mut line = Vec::new();
        let mut line_no = 0u64;
        while values.len() < self.infer_rows {
            line.clear();
            let n = lines
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::config("path", format!("reading `{show}`: {e}")))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(&line).map_err(|e| {
                Error::config(
                    "path",
                    format!("`{show}`:{line_no}: not valid JSON: {e}; each line must hold one JSON object"),
                )
            })?;
            let Some(obj) = v.as_object() else {
                return Err(Error::config(
                    "path",
                    format!("`{show}`:{line_no}: the line holds a JSON {} where an object `{{...}}` is expected", kind_of(&v)),
                ));
            };
            for k in obj.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
            values.push(v);
        }
        if values.is_empty() {
            return Err(Error::config(
                "path",
                format!(
                    "`{show}` is empty: it holds no JSON object, so there are no columns to read"
                ),
            ));
        }
        match &self.columns {
            Some(Columns(specs)) => {
                if specs.is_empty() {
                    return Err(Error::config("columns", "`columns` lists no column"));
                }
                for (i, s) in specs.iter().enumerate() {
                    if specs[..i].iter().any(|o| o.name == s.name) {
                        return Err(Error::config(
                            "columns",
                            format!("column `{}` is declared twice", s.name),
                        ));
                    }
                    if !keys.contains(&s.name) {
                        return Err(Error::config(
                            "columns",
                            format!(
                                "column `{}` is in none of the first {} lines of `{show}`, \
                                 whose objects have the keys: {}",
                                s.name,
                                values.len(),
                                keys.join(", ")
                            ),
                        ));
                    }
                }
                let output = Arc::new(Schema::new(
                    specs
                        .iter()
                        .map(|s| Field::new(&s.name, s.ty.data_type(), true))
                        .collect::<Vec<_>>(),
                ));
                Ok(Resolved {
                    files,
                    output,
                    inferred: false,
                })
            }
            None => {
                let schema = infer_json_schema_from_iterator(values.iter().map(Ok))
                    .map_err(|e| Error::config("path", format!("reading `{show}`: {e}")))?;
                let fields: Vec<Field> = schema
                    .fields()
                    .iter()
                    .map(|f| {
                        let t = match f.data_type() {
                            DataType::Null => DataType::Utf8,
                            DataType::Utf8
                                if values.iter().all(|v| {
                                    v.get(f.name())
                                        .is_none_or(|x| x.is_null() || is_iso_date(x))
                                }) =>
                            {
                                DataType::Date32
                            }
                            t => t.clone(),
                        };
                        Field::new(f.name(), t, true)
                    })
                    .collect();
                Ok(Resolved {
                    files,
                    output: Arc::new(Schema::new(fields)),
                    inferred: true,
                })
            }
        }
    }
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

impl Component for JsonlSource {
    const NAME: &'static str = "jsonl";
    const STAGE: Stage = Stage::Collect;

    fn ports() -> Ports {
        Ports::new(Stage::Collect, 0, 0)
            .outputs(&[("main", "one row per JSON line, in file order")])
    }

    fn fingerprint(&self) -> Result<Fingerprint> {
        files::fingerprint(&self.path, self.fingerprint)
    }

    fn plan(&self, _inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::main(self.resolve()?.output))
    }

    fn run(&self, _inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let r = self.resolve()?;
        ctx.fact("source", &self.path);
        ctx.fact("files", r.files.len());
        let output = r.output.clone();
        let hint = if r.inferred {
            format!(
                " (column types were inferred from the first {} lines of `{}`: declare them \
                 under `columns`, or raise `infer_rows`)",
                self.infer_rows,
                files::show(&r.files[0])
            )
        } else {
            String::new()
        };
        let stream = JsonlStream {
            total_bytes: files::total_size(&r.files),
            resolved: r,
            cfg: self.clone(),
            hint,
            next_file: 0,
            current: None,
            counter: Arc::new(AtomicU64::new(0)),
            rows: 0,
            handle: ctx.handle(),
            finished: false,
        };
        Ok(Outputs::main(Table::from_iter(output, stream)))
    }
}

fn external(msg: String) -> ArrowError {
    ArrowError::ExternalError(msg.into())
}

/// The file being read.
struct Current {
    path: String,
    lines: BufReader<Box<dyn Read + Send>>,
    line_no: u64,
    decoder: Decoder,
    /// The text of the rows in the decoder, to name the line of a value error.
    pending: Vec<u8>,
    pending_lines: Vec<(u64, usize, usize)>,
    eof: bool,
}

struct JsonlStream {
    resolved: Resolved,
    cfg: JsonlSource,
    hint: String,
    next_file: usize,
    current: Option<Current>,
    counter: Arc<AtomicU64>,
    total_bytes: u64,
    rows: u64,
    handle: HostHandle,
    finished: bool,
}

impl JsonlStream {
    fn decoder(&self, batch_size: usize) -> Result<Decoder, ArrowError> {
        ReaderBuilder::new(self.resolved.output.clone())
            .with_batch_size(batch_size)
            .with_coerce_primitive(true)
            .build_decoder()
    }

    fn open(&mut self) -> Result<Current, ArrowError> {
        let path = &self.resolved.files[self.next_file];
        let show = files::show(path);
        let reader = files::open_text(path, self.cfg.encoding, Some(self.counter.clone()))
            .map_err(|e| external(format!("cannot open `{show}`: {e}")))?;
        Ok(Current {
            path: show,
            lines: BufReader::with_capacity(1 << 16, reader),
            line_no: 0,
            decoder: self.decoder(self.cfg.batch_size)?,
            pending: Vec::new(),
            pending_lines: Vec::new(),
            eof: false,
        })
    }

    /// Decode lines until a batch is full or the file ends, then flush.
    fn next_batch(&mut self, cur: &mut Current) -> Result<Option<RecordBatch>, ArrowError> {
        let mut line = Vec::new();
        while !cur.eof && cur.decoder.len() < self.cfg.batch_size {
            line.clear();
            let n = cur
                .lines
                .read_until(b'\n', &mut line)
                .map_err(|e| external(format!("reading `{}`: {e}", cur.path)))?;
            if n == 0 {
                cur.eof = true;
                break;
            }
            cur.line_no += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let at = |m: String| external(format!("`{}`:{}: {m}", cur.path, cur.line_no));
            let mut off = 0;
            while off < line.len() {
                let used = cur.decoder.decode(&line[off..]).map_err(|e| {
                    at(format!(
                        "not valid JSON ({e}); each line must hold one JSON object"
                    ))
                })?;
                off += used;
                if used == 0 {
                    return Err(at(
                        "the line holds more JSON values than fit; write one object per line"
                            .into(),
                    ));
                }
            }
            if cur.decoder.has_partial_record() {
                return Err(at(
                    "the line ends inside a JSON value; each line must hold one complete JSON object".into(),
                ));
            }
            let start = cur.pending.len();
            cur.pending.extend_from_slice(&line);
            cur.pending_lines
                .push((cur.line_no, start, cur.pending.len()));
        }
        let flushed = cur.decoder.flush();
        let result = match flushed {
            Ok(b) => Ok(b),
            Err(e) => Err(self.locate(cur, e)),
        };
        cur.pending.clear();
        cur.pending_lines.clear();
        result
    }

    /// Find the line of the batch whose value failed to convert.
    fn locate(&self, cur: &Current, e: ArrowError) -> ArrowError {
        for &(line_no, start, end) in &cur.pending_lines {
            let Ok(mut d) = self.decoder(1) else { break };
            let r = d.decode(&cur.pending[start..end]).and_then(|_| d.flush());
            if let Err(e) = r {
                return external(format!("`{}`:{line_no}: {e}{}", cur.path, self.hint));
            }
        }
        external(format!("reading `{}`: {e}{}", cur.path, self.hint))
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.handle.fact("rows", self.rows);
        self.handle
            .fact("bytes_read", self.counter.load(Ordering::Relaxed));
    }
}

impl Iterator for JsonlStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        loop {
            if let Some(mut cur) = self.current.take() {
                match self.next_batch(&mut cur) {
                    Ok(Some(batch)) => {
                        self.rows += batch.num_rows() as u64;
                        self.current = Some(cur);
                        self.handle.progress(
                            self.counter.load(Ordering::Relaxed),
                            self.total_bytes,
                            "bytes",
                        );
                        return Some(Ok(batch));
                    }
                    Ok(None) if !cur.eof => {
                        self.current = Some(cur);
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.finished = true;
                        return Some(Err(e));
                    }
                }
            }
            if self.next_file >= self.resolved.files.len() {
                self.finish();
                return None;
            }
            match self.open() {
                Ok(cur) => {
                    self.next_file += 1;
                    self.current = Some(cur);
                }
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
