//! The `csv` component: CSV files, typed by declaration or inference, streamed.

use crate::files::{self, Counting};
use chrono::format::{Item, StrftimeItems};
use chrono::NaiveDate;
use segflow_sdk::arrow::array::{Date32Array, StringArray};
use segflow_sdk::arrow::csv::reader::Format;
use segflow_sdk::arrow::csv::ReaderBuilder;
use segflow_sdk::arrow::datatypes::TimeUnit;
use segflow_sdk::arrow::error::ArrowError;
use segflow_sdk::ffi::HostHandle;
use segflow_sdk::prelude::*;
use segflow_sdk::schemars::{json_schema, Schema as JsonSchemaDoc, SchemaGenerator};
use std::borrow::Cow;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Read CSV files: one file, or every file matching a glob pattern in sorted order (all
/// with the same header). Column types are declared under `columns` or inferred from
/// the first rows; ISO dates (YYYY-MM-DD) become Date32 columns. The files are streamed
/// batch by batch, never loaded whole.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvSource {
    /// File to read, or a glob pattern such as `data/orders-*.csv` (the matches are read
    /// in sorted order and must share one header). Relative paths are resolved from the
    /// working directory of `segflow`.
    pub path: String,
    /// Field delimiter: one ASCII character, such as `;` or `"\t"`.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Whether the first line of each file holds the column names. Without a header the
    /// columns are named `column_1`, `column_2`, ... unless `columns` names them.
    #[serde(default = "yes")]
    pub header: bool,
    /// The columns to read and their types, as a list of `{name, type}` or a map
    /// `name: type`; types are int64, float64, utf8, bool, date and timestamp. With a
    /// header, columns are picked by name (the others are skipped) and come out in this
    /// order; without one, they name the file's columns in order and must cover all of
    /// them. When absent, every column is read with types inferred from the first
    /// `infer_rows` rows of the first file.
    #[serde(default)]
    pub columns: Option<Columns>,
    /// chrono formats of date columns, tried in order, e.g. `["%d/%m/%Y"]`; the ISO
    /// format `%Y-%m-%d` is always accepted. With inferred types, a text column whose
    /// sampled values all parse with these formats becomes a date column.
    #[serde(default)]
    pub date_formats: Vec<String>,
    /// Rows of the first file read to infer column types (when `columns` is absent).
    #[serde(default = "default_infer_rows")]
    #[schemars(range(min = 1))]
    pub infer_rows: usize,
    /// Rows per record batch.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
}

fn default_delimiter() -> char {
    ','
}
fn yes() -> bool {
    true
}
fn default_infer_rows() -> usize {
    1000
}
fn default_batch_size() -> usize {
    65_536
}

/// The type of a declared CSV column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// 64-bit integer.
    Int64,
    /// 64-bit float.
    Float64,
    /// Text.
    Utf8,
    /// `true` / `false`.
    Bool,
    /// A calendar date (Date32): ISO `YYYY-MM-DD`, or one of `date_formats`.
    Date,
    /// A date and time (Timestamp, microseconds), such as `2024-05-01T10:30:00`;
    /// values with a UTC offset are converted to UTC.
    Timestamp,
}

impl ColumnType {
    fn data_type(self) -> DataType {
        match self {
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }
}

/// One declared column.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Column name (the header name when the file has a header).
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
}

/// Declared columns, written as a list of `{name, type}` or a map `name: type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns(pub Vec<ColumnSpec>);

impl<'de> Deserialize<'de> for Columns {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Columns;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of {name, type} or a map of column name to type")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Columns, A::Error> {
                let mut out = Vec::new();
                while let Some(spec) = seq.next_element::<ColumnSpec>()? {
                    out.push(spec);
                }
                Ok(Columns(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Columns, A::Error> {
                let mut out = Vec::new();
                while let Some((name, ty)) = map.next_entry::<String, ColumnType>()? {
                    out.push(ColumnSpec { name, ty });
                }
                Ok(Columns(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Columns {
    fn schema_name() -> Cow<'static, str> {
        "CsvColumns".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> JsonSchemaDoc {
        let spec = generator.subschema_for::<ColumnSpec>();
        let ty = generator.subschema_for::<ColumnType>();
        json_schema!({
            "description": "Columns as a list of {name, type} or a map name: type.",
            "oneOf": [
                {"type": "array", "items": spec},
                {"type": "object", "additionalProperties": ty}
            ]
        })
    }
}

/// Everything `plan` and `run` need, worked out from the config and the first file.
struct Resolved {
    files: Vec<PathBuf>,
    /// Names of the first file's columns.
    header_names: Vec<String>,
    /// All file columns with the types the CSV decoder parses them as.
    file_schema: SchemaRef,
    /// File column indices of the output columns, in output order.
    projection: Vec<usize>,
    /// Output columns parsed as text and converted to dates with `formats`.
    date_from_text: Vec<bool>,
    formats: Vec<String>,
    output: SchemaRef,
    inferred: bool,
}

impl CsvSource {
    fn validate(&self) -> Result<u8> {
        if !self.delimiter.is_ascii() {
            return Err(Error::config(
                "delimiter",
                format!(
                    "the delimiter must be one ASCII character, got `{}`",
                    self.delimiter
                ),
            ));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "batch_size must be at least 1"));
        }
        if self.infer_rows == 0 {
            return Err(Error::config("infer_rows", "infer_rows must be at least 1"));
        }
        for (i, f) in self.date_formats.iter().enumerate() {
            if f.is_empty() || StrftimeItems::new(f).any(|it| matches!(it, Item::Error)) {
                return Err(Error::config(
                    &format!("date_formats.{i}"),
                    format!("`{f}` is not a valid chrono format (e.g. `%d/%m/%Y`)"),
                ));
            }
        }
        Ok(self.delimiter as u8)
    }

    fn format(&self, delimiter: u8) -> Format {
        Format::default()
            .with_header(self.header)
            .with_delimiter(delimiter)
    }

    fn formats(&self) -> Vec<String> {
        let mut f = self.date_formats.clone();
        if !f.iter().any(|x| x == "%Y-%m-%d") {
            f.push("%Y-%m-%d".into());
        }
        f
    }

    fn resolve(&self) -> Result<Resolved> {
        let delimiter = self.validate()?;
        let files = files::resolve(&self.path)?;
        let first = &files[0];
        let open = || {
            File::open(first).map_err(|e| {
                Error::config("path", format!("cannot open `{}`: {e}", files::show(first)))
            })
        };
        let format = self.format(delimiter);
        let (inferred_schema, _) = format
            .infer_schema(open()?, Some(self.infer_rows))
            .map_err(|e| Error::new(format!("reading `{}`: {e}", files::show(first))))?;
        let header_names: Vec<String> = inferred_schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if header_names.is_empty() {
            return Err(Error::config(
                "path",
                format!(
                    "`{}` is empty: it has no header and no rows",
                    files::show(first)
                ),
            ));
        }
        let formats = self.formats();
        let custom_dates = !self.date_formats.is_empty();

        match &self.columns {
            Some(Columns(specs)) => {
                if specs.is_empty() {
                    return Err(Error::config("columns", "`columns` lists no column"));
                }
                let mut seen = std::collections::HashSet::new();
                for s in specs {
                    if !seen.insert(s.name.as_str()) {
                        return Err(Error::config(
                            "columns",
                            format!("column `{}` is declared twice", s.name),
                        ));
                    }
                }
                let mut file_types = vec![DataType::Utf8; header_names.len()];
                let mut names = header_names.clone();
                let mut projection = Vec::with_capacity(specs.len());
                if self.header {
                    for s in specs {
                        let Some(i) = header_names.iter().position(|h| h == &s.name) else {
                            return Err(Error::config(
                                "columns",
                                format!(
                                    "column `{}` is not in the header of `{}`, which has: {}",
                                    s.name,
                                    files::show(first),
                                    header_names.join(", ")
                                ),
                            ));
                        };
                        projection.push(i);
                    }
                } else {
                    if specs.len() != header_names.len() {
                        return Err(Error::config(
                            "columns",
                            format!(
                                "`{}` has {} columns but `columns` declares {}; without a header \
                                 the declared columns name the file's columns in order",
                                files::show(first),
                                header_names.len(),
                                specs.len()
                            ),
                        ));
                    }
                    for (i, s) in specs.iter().enumerate() {
                        names[i] = s.name.clone();
                        projection.push(i);
                    }
                }
                let mut date_from_text = Vec::with_capacity(specs.len());
                for (s, &i) in specs.iter().zip(&projection) {
                    let text_date = s.ty == ColumnType::Date && custom_dates;
                    file_types[i] = if text_date {
                        DataType::Utf8
                    } else {
                        s.ty.data_type()
                    };
                    date_from_text.push(text_date);
                }
                let file_schema = Arc::new(Schema::new(
                    names
                        .iter()
                        .zip(file_types)
                        .map(|(n, t)| Field::new(n, t, true))
                        .collect::<Vec<_>>(),
                ));
                let output = Arc::new(Schema::new(
                    specs
                        .iter()
                        .map(|s| Field::new(&s.name, s.ty.data_type(), true))
                        .collect::<Vec<_>>(),
                ));
                Ok(Resolved {
                    files,
                    header_names,
                    file_schema,
                    projection,
                    date_from_text,
                    formats,
                    output,
                    inferred: false,
                })
            }
            None => {
                let fields: Vec<Field> = inferred_schema
                    .fields()
                    .iter()
                    .map(|f| {
                        let t = match f.data_type() {
                            DataType::Null => DataType::Utf8,
                            t => t.clone(),
                        };
                        Field::new(f.name(), t, true)
                    })
                    .collect();
                let file_schema = Arc::new(Schema::new(fields));
                let mut date_from_text = vec![false; header_names.len()];
                if custom_dates {
                    date_from_text =
                        self.sample_text_dates(&file_schema, open()?, delimiter, &formats)?;
                }
                let output = Arc::new(Schema::new(
                    file_schema
                        .fields()
                        .iter()
                        .zip(&date_from_text)
                        .map(|(f, &d)| {
                            let t = if d {
                                DataType::Date32
                            } else {
                                f.data_type().clone()
                            };
                            Field::new(f.name(), t, true)
                        })
                        .collect::<Vec<_>>(),
                ));
                Ok(Resolved {
                    files,
                    projection: (0..header_names.len()).collect(),
                    header_names,
                    file_schema,
                    date_from_text,
                    formats,
                    output,
                    inferred: true,
                })
            }
        }
    }

    /// Which text columns of the first `infer_rows` rows hold only dates in `formats`.
    fn sample_text_dates(
        &self,
        schema: &SchemaRef,
        file: File,
        delimiter: u8,
        formats: &[String],
    ) -> Result<Vec<bool>> {
        let mut reader = ReaderBuilder::new(schema.clone())
            .with_format(self.format(delimiter))
            .with_batch_size(self.infer_rows)
            .build(file)?;
        let Some(batch) = reader.next().transpose()? else {
            return Ok(vec![false; schema.fields().len()]);
        };
        Ok(batch
            .columns()
            .iter()
            .map(|c| {
                c.data_type() == &DataType::Utf8
                    && c.null_count() < c.len()
                    && c.as_any().downcast_ref::<StringArray>().is_some_and(|s| {
                        s.iter().flatten().all(|v| parse_date(v, formats).is_some())
                    })
            })
            .collect())
    }
}

fn parse_date(s: &str, formats: &[String]) -> Option<i32> {
    let s = s.trim();
    formats
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
        .map(|d| (d - NaiveDate::default()).num_days() as i32)
}

impl Component for CsvSource {
    const NAME: &'static str = "csv";
    const STAGE: Stage = Stage::Collect;

    fn ports() -> Ports {
        Ports::new(Stage::Collect, 0, 0)
            .outputs(&[("main", "the rows of the files, in file order")])
    }

    fn plan(&self, _inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::main(self.resolve()?.output))
    }

    fn run(&self, _inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let r = self.resolve()?;
        let delimiter = self.validate()?;
        ctx.fact("source", &self.path);
        ctx.fact("files", r.files.len());
        let output = r.output.clone();
        let stream = CsvStream {
            total_bytes: files::total_size(&r.files),
            resolved: r,
            format: self.format(delimiter),
            header: self.header,
            batch_size: self.batch_size,
            infer_rows: self.infer_rows,
            next_file: 0,
            current: None,
            counter: Arc::new(AtomicU64::new(0)),
            rows: 0,
            handle: Some(ctx.handle()),
            finished: false,
        };
        Ok(Outputs::main(Table::from_iter(output, stream)))
    }
}

type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

struct Current {
    path: PathBuf,
    reader: BatchIter,
    /// Data rows read from this file so far.
    rows: u64,
}

/// Reads the files one after the other, lazily.
struct CsvStream {
    resolved: Resolved,
    format: Format,
    header: bool,
    batch_size: usize,
    infer_rows: usize,
    next_file: usize,
    current: Option<Current>,
    counter: Arc<AtomicU64>,
    total_bytes: u64,
    rows: u64,
    handle: Option<HostHandle>,
    finished: bool,
}

fn external(msg: String) -> ArrowError {
    ArrowError::ExternalError(msg.into())
}

impl CsvStream {
    fn open(&self, path: &PathBuf) -> Result<BatchIter, ArrowError> {
        let show = files::show(path);
        let r = &self.resolved;
        if self.next_file > 0 {
            let f = File::open(path).map_err(|e| external(format!("cannot open `{show}`: {e}")))?;
            let (s, _) = self
                .format
                .infer_schema(f, Some(0))
                .map_err(|e| external(format!("reading `{show}`: {e}")))?;
            let names: Vec<&String> = s.fields().iter().map(|f| f.name()).collect();
            let want: Vec<&String> = r.header_names.iter().collect();
            if names != want {
                return Err(external(format!(
                    "`{show}` has the columns [{}], but `{}` has [{}]: every file matched by \
                     `path` must have the same columns",
                    names
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    files::show(&r.files[0]),
                    r.header_names.join(", ")
                )));
            }
        }
        let f = File::open(path).map_err(|e| external(format!("cannot open `{show}`: {e}")))?;
        let counting = Counting {
            inner: f,
            counter: self.counter.clone(),
        };
        let reader = ReaderBuilder::new(r.file_schema.clone())
            .with_format(self.format.clone())
            .with_batch_size(self.batch_size)
            .with_projection(r.projection.clone())
            .build(counting)?;
        Ok(Box::new(reader))
    }

    fn convert(&self, batch: RecordBatch, cur: &Current) -> Result<RecordBatch, ArrowError> {
        let r = &self.resolved;
        if !r.date_from_text.iter().any(|&d| d) {
            return RecordBatch::try_new(r.output.clone(), batch.columns().to_vec());
        }
        let mut cols = batch.columns().to_vec();
        for (i, col) in cols.iter_mut().enumerate() {
            if !r.date_from_text[i] {
                continue;
            }
            let text = col
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| external("internal: a date column was not read as text".into()))?;
            let mut out = Vec::with_capacity(text.len());
            for (row, v) in text.iter().enumerate() {
                match v {
                    None => out.push(None),
                    Some(s) if s.trim().is_empty() => out.push(None),
                    Some(s) => match parse_date(s, &r.formats) {
                        Some(d) => out.push(Some(d)),
                        None => {
                            let line = cur.rows + row as u64 + 1 + u64::from(self.header);
                            return Err(external(format!(
                                "`{}` line {line}, column `{}`: `{s}` matches none of the date \
                                 formats {}",
                                files::show(&cur.path),
                                r.output.field(i).name(),
                                r.formats.join(", ")
                            )));
                        }
                    },
                }
            }
            *col = Arc::new(Date32Array::from(out));
        }
        RecordBatch::try_new(r.output.clone(), cols)
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(h) = self.handle {
            h.fact("rows", self.rows);
            h.fact("bytes_read", self.counter.load(Ordering::Relaxed));
        }
    }
}

impl Iterator for CsvStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        loop {
            if let Some(mut cur) = self.current.take() {
                match cur.reader.next() {
                    Some(Ok(batch)) => {
                        let n = batch.num_rows() as u64;
                        let out = self.convert(batch, &cur);
                        cur.rows += n;
                        self.rows += n;
                        self.current = Some(cur);
                        if let Some(h) = self.handle {
                            h.progress(
                                self.counter.load(Ordering::Relaxed),
                                self.total_bytes,
                                "bytes",
                            );
                        }
                        if out.is_err() {
                            self.finished = true;
                        }
                        return Some(out);
                    }
                    Some(Err(e)) => {
                        self.finished = true;
                        let hint = if self.resolved.inferred {
                            format!(
                                " (column types were inferred from the first {} rows of `{}`: \
                                 declare them under `columns`, or raise `infer_rows`)",
                                self.infer_rows,
                                files::show(&self.resolved.files[0])
                            )
                        } else {
                            String::new()
                        };
                        return Some(Err(external(format!(
                            "reading `{}`: {e}{hint}",
                            files::show(&cur.path)
                        ))));
                    }
                    None => {}
                }
            }
            if self.next_file >= self.resolved.files.len() {
                self.finish();
                return None;
            }
            let path = self.resolved.files[self.next_file].clone();
            match self.open(&path) {
                Ok(reader) => {
                    self.next_file += 1;
                    self.current = Some(Current {
                        path,
                        reader,
                        rows: 0,
                    });
                }
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
