//! The `csv` component: CSV files, typed by declaration or inference, streamed.

use crate::files::{self, TextEncoding};
use chrono::format::{Item, StrftimeItems};
use chrono::NaiveDate;
use segflow_sdk::arrow::array::{Date32Array, Float64Array, StringArray};
use segflow_sdk::arrow::csv::reader::Format;
use segflow_sdk::arrow::csv::ReaderBuilder;
use segflow_sdk::arrow::datatypes::TimeUnit;
use segflow_sdk::arrow::error::ArrowError;
use segflow_sdk::ffi::HostHandle;
use segflow_sdk::prelude::*;
use segflow_sdk::schemars::{json_schema, Schema as JsonSchemaDoc, SchemaGenerator};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// Read CSV files: one file, or every file matching a glob pattern in sorted order (all
/// with the same header). Column types are declared under `columns` or inferred from
/// the first rows; ISO dates (YYYY-MM-DD) become Date32 columns. Files ending in `.gz`
/// or `.zst` are decompressed, legacy encodings converted to UTF-8, and the text decoded
/// in parallel blocks; the files are streamed batch by batch, never loaded whole.
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
    /// Fields are separated by runs of spaces or tabs, as in whitespace-aligned exports
    /// (e.g. the CDNOW files): blanks at the start and end of a line are ignored and
    /// each run of them between fields separates two fields. Quoted fields are not
    /// supported in this mode, and `delimiter` is not used.
    #[serde(default)]
    pub whitespace: bool,
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
    /// Text encoding of the files: `utf-8` (default; a byte-order mark is dropped),
    /// `utf-8-sig`, `gbk`, `latin-1` or `windows-1252`. The text is converted to UTF-8 as
    /// it is read.
    #[serde(default)]
    pub encoding: TextEncoding,
    /// Decimal separator of float columns: `"."` (default) or `","` (European style,
    /// `12,50` is 12.5; use it with `delimiter: ";"`). Thousands separators are not
    /// accepted.
    #[serde(default)]
    pub decimal: DecimalSeparator,
    /// What the step cache checks to tell whether the files changed: `metadata`
    /// (default: each file's path, size and modification time; a new file matching the
    /// glob counts) or `content` (also a SHA-256 of each file, which reads them whole).
    #[serde(default)]
    pub fingerprint: files::FingerprintMode,
}

/// The decimal separator of float columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
pub enum DecimalSeparator {
    /// `12.50`
    #[default]
    #[serde(rename = ".")]
    Point,
    /// `12,50`
    #[serde(rename = ",")]
    Comma,
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
    pub(crate) fn data_type(self) -> DataType {
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
    /// How each output column is converted after decoding.
    conv: Vec<Conv>,
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

    /// The text of a file as the CSV decoder reads it: whitespace-aligned fields made
    /// delimited when `whitespace` is set.
    fn fields(&self, reader: Box<dyn Read + Send>, delimiter: u8) -> Box<dyn Read + Send> {
        if self.whitespace {
            Box::new(files::WhitespaceFields::new(reader, delimiter))
        } else {
            reader
        }
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
            files::open_text(first, self.encoding, None)
                .map(|r| self.fields(r, delimiter))
                .map_err(|e| {
                    Error::config("path", format!("cannot open `{}`: {e}", files::show(first)))
                })
        };
        let format = self.format(delimiter);
        let (inferred_schema, _) = format
            .infer_schema(open()?, Some(self.infer_rows))
            .map_err(|e| {
                Error::config(
                    "path",
                    format!(
                        "reading `{}`: {e}; check `delimiter` and `encoding`, and that the file \
                         is CSV text",
                        files::show(first)
                    ),
                )
            })?;
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
                let mut conv = Vec::with_capacity(specs.len());
                for (s, &i) in specs.iter().zip(&projection) {
                    let c = if s.ty == ColumnType::Date && custom_dates {
                        Conv::DateText
                    } else if s.ty == ColumnType::Float64 && self.decimal == DecimalSeparator::Comma
                    {
                        Conv::DecimalComma
                    } else {
                        Conv::None
                    };
                    file_types[i] = if c == Conv::None {
                        s.ty.data_type()
                    } else {
                        DataType::Utf8
                    };
                    conv.push(c);
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
                    conv,
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
                let mut conv = vec![Conv::None; header_names.len()];
                if custom_dates || self.decimal == DecimalSeparator::Comma {
                    conv = self.sample_text_columns(&file_schema, open()?, delimiter, &formats)?;
                }
                let output = Arc::new(Schema::new(
                    file_schema
                        .fields()
                        .iter()
                        .zip(&conv)
                        .map(|(f, c)| {
                            let t = match c {
                                Conv::DateText => DataType::Date32,
                                Conv::DecimalComma => DataType::Float64,
                                Conv::None => f.data_type().clone(),
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
                    conv,
                    formats,
                    output,
                    inferred: true,
                })
            }
        }
    }

    /// How each text column of the first `infer_rows` rows converts: to dates when every
    /// value parses with `formats` (and `date_formats` is set), to floats when every value
    /// is a decimal-comma number (and `decimal` is `,`).
    fn sample_text_columns(
        &self,
        schema: &SchemaRef,
        file: Box<dyn Read + Send>,
        delimiter: u8,
        formats: &[String],
    ) -> Result<Vec<Conv>> {
        let mut reader = ReaderBuilder::new(schema.clone())
            .with_format(self.format(delimiter))
            .with_batch_size(self.infer_rows)
            .build(file)?;
        let Some(batch) = reader.next().transpose()? else {
            return Ok(vec![Conv::None; schema.fields().len()]);
        };
        let dates = !self.date_formats.is_empty();
        let comma = self.decimal == DecimalSeparator::Comma;
        Ok(batch
            .columns()
            .iter()
            .map(|c| {
                let Some(s) = c.as_any().downcast_ref::<StringArray>() else {
                    return Conv::None;
                };
                if c.null_count() == c.len() {
                    return Conv::None;
                }
                let all = |f: &dyn Fn(&str) -> bool| s.iter().flatten().all(f);
                if dates && all(&|v| parse_date(v, formats).is_some()) {
                    Conv::DateText
                } else if comma && all(&|v| parse_decimal_comma(v).is_some()) {
                    Conv::DecimalComma
                } else {
                    Conv::None
                }
            })
            .collect())
    }
}

/// How a decoded column becomes its output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    /// As decoded.
    None,
    /// Text parsed with the date formats into Date32.
    DateText,
    /// Text with a decimal comma parsed into Float64.
    DecimalComma,
}

/// `12,50` → 12.5 (also `-3`, `1e3`, `,5`); `None` when it is not such a number.
fn parse_decimal_comma(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || s.contains('.') || s.matches(',').count() > 1 {
        return None;
    }
    s.replacen(',', ".", 1).parse::<f64>().ok()
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

    fn fingerprint(&self) -> Result<Fingerprint> {
        files::fingerprint(&self.path, self.fingerprint)
    }

    fn plan(&self, _inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::main(self.resolve()?.output))
    }

    fn run(&self, _inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let r = self.resolve()?;
        let delimiter = self.validate()?;
        ctx.fact("source", &self.path);
        ctx.fact("files", r.files.len());
        let threads = ctx.threads();
        // The stream outlives `run`, so it owns its pool (sized to the step's budget).
        let pool = if threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("segflow-csv-{i}"))
                    .build()
                    .map_err(|e| Error::new(format!("starting worker threads: {e}")))?,
            )
        } else {
            None
        };
        let output = r.output.clone();
        let hint = if r.inferred {
            format!(
                " (column types were inferred from the first {} rows of `{}`: declare them \
                 under `columns`, or raise `infer_rows`)",
                self.infer_rows,
                files::show(&r.files[0])
            )
        } else {
            String::new()
        };
        let rows_per_block = self.batch_size * BLOCK_ROWS.div_ceil(self.batch_size);
        let stream = CsvStream {
            total_bytes: files::total_size(&r.files),
            shared: Arc::new(Shared {
                file_schema: r.file_schema.clone(),
                projection: r.projection.clone(),
                output: r.output.clone(),
                conv: r.conv.clone(),
                formats: r.formats.clone(),
                batch_size: self.batch_size,
                format: self.format(delimiter).with_header(false),
                header: self.header,
                hint,
            }),
            header_format: self.format(delimiter).with_header(true),
            resolved: r,
            delimiter,
            whitespace: self.whitespace,
            encoding: self.encoding,
            rows_per_block,
            window: if pool.is_some() { threads * 2 } else { 1 },
            pool,
            next_file: 0,
            splitter: None,
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            counter: Arc::new(AtomicU64::new(0)),
            rows: 0,
            handle: Some(ctx.handle()),
            finished: false,
        };
        Ok(Outputs::main(Table::from_iter(output, stream)))
    }
}

/// Rows per decoding block (rounded up to a multiple of `batch_size`): about 1.5 MB of
/// typical transaction rows, large enough to amortise a task, small enough to keep every
/// thread busy and memory bounded.
const BLOCK_ROWS: usize = 65_536;

/// Bytes read from the text stream at a time while looking for record boundaries.
const READ_CHUNK: usize = 1 << 20;

fn external(msg: String) -> ArrowError {
    ArrowError::ExternalError(msg.into())
}

/// What the decoding workers need; shared by every block.
struct Shared {
    file_schema: SchemaRef,
    projection: Vec<usize>,
    output: SchemaRef,
    conv: Vec<Conv>,
    formats: Vec<String>,
    batch_size: usize,
    /// The CSV format without a header (blocks never hold one).
    format: Format,
    header: bool,
    /// Appended to decoding errors when the types were inferred.
    hint: String,
}

/// A run of whole records of one file.
struct Block {
    data: Vec<u8>,
    path: Arc<str>,
    /// Data records of the file before this block.
    first_row: u64,
}

/// Cuts a text stream into blocks of `rows` records. A newline ends a record only outside
/// quoted fields, with the CSV decoder's quoting rules: a quote opens a quoted field only
/// at the start of a field (elsewhere it is a literal character), and inside one a
/// doubled quote `""` stands for a quote. So quoted fields may hold newlines. Blocks
/// depend only on the data, never on the thread count.
struct Splitter {
    reader: Box<dyn Read + Send>,
    path: Arc<str>,
    delimiter: u8,
    /// Starts at a record boundary.
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned.
    scan: usize,
    in_quotes: bool,
    /// Records completed in `buf[..scan]`.
    records: usize,
    eof: bool,
    /// Data records handed out so far.
    rows_out: u64,
}

impl Splitter {
    fn new(reader: Box<dyn Read + Send>, path: Arc<str>, delimiter: u8) -> Self {
        Splitter {
            reader,
            path,
            delimiter,
            buf: Vec::new(),
            scan: 0,
            in_quotes: false,
            records: 0,
            eof: false,
            rows_out: 0,
        }
    }

    /// Scan `buf` from `scan`; the end of the `rows`-th record when found.
    fn find_cut(&mut self, rows: usize) -> Option<usize> {
        while let Some(i) = memchr::memchr2(b'\n', b'"', &self.buf[self.scan..]) {
            let p = self.scan + i;
            if self.buf[p] == b'\n' {
                self.scan = p + 1;
                if !self.in_quotes {
                    self.records += 1;
                    if self.records == rows {
                        return Some(self.scan);
                    }
                }
            } else if self.in_quotes {
                match self.buf.get(p + 1) {
                    // A doubled quote: a literal quote inside the field.
                    Some(b'"') => self.scan = p + 2,
                    Some(_) => {
                        self.in_quotes = false;
                        self.scan = p + 1;
                    }
                    // Whether it is doubled shows in the next read.
                    None if !self.eof => return None,
                    None => {
                        self.in_quotes = false;
                        self.scan = p + 1;
                    }
                }
            } else {
                let field_start = p == 0
                    || matches!(self.buf[p - 1], b'\n' | b'\r')
                    || self.buf[p - 1] == self.delimiter;
                self.in_quotes = field_start;
                self.scan = p + 1;
            }
        }
        self.scan = self.buf.len();
        None
    }

    /// The next `rows` records (fewer at the end of the input), or `None` at the end.
    fn next_records(&mut self, rows: usize) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(cut) = self.find_cut(rows) {
                let rest = self.buf.split_off(cut);
                let block = std::mem::replace(&mut self.buf, rest);
                self.scan = 0;
                self.records = 0;
                return Ok(Some(block));
            }
            if self.eof {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                self.scan = 0;
                self.records = 0;
                self.in_quotes = false;
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
            let old = self.buf.len();
            self.buf.resize(old + READ_CHUNK, 0);
            let n = loop {
                match self.reader.read(&mut self.buf[old..]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            };
            self.buf.truncate(old + n);
            self.eof = n == 0;
        }
    }
}

/// A block being decoded, decoded, or an error to report in its place.
enum Pending {
    Running(Receiver<Result<Vec<RecordBatch>, ArrowError>>),
    Done(Result<Vec<RecordBatch>, ArrowError>),
}

/// Reads the files one after the other, lazily: the calling thread cuts the text into
/// blocks of whole records, the pool decodes up to `window` blocks ahead, and batches
/// come out in input order.
struct CsvStream {
    resolved: Resolved,
    shared: Arc<Shared>,
    header_format: Format,
    delimiter: u8,
    whitespace: bool,
    encoding: TextEncoding,
    rows_per_block: usize,
    window: usize,
    pool: Option<rayon::ThreadPool>,
    next_file: usize,
    splitter: Option<Splitter>,
    pending: VecDeque<Pending>,
    ready: VecDeque<RecordBatch>,
    counter: Arc<AtomicU64>,
    total_bytes: u64,
    rows: u64,
    handle: Option<HostHandle>,
    finished: bool,
}

impl CsvStream {
    /// Open file `next_file`, check its header, and make it the current input.
    fn open_next(&mut self) -> Result<(), ArrowError> {
        let r = &self.resolved;
        let path = &r.files[self.next_file];
        let show = files::show(path);
        let reader = files::open_text(path, self.encoding, Some(self.counter.clone()))
            .map_err(|e| external(format!("cannot open `{show}`: {e}")))?;
        let reader: Box<dyn Read + Send> = if self.whitespace {
            Box::new(files::WhitespaceFields::new(reader, self.delimiter))
        } else {
            reader
        };
        let mut splitter = Splitter::new(reader, show.clone().into(), self.delimiter);
        if self.shared.header {
            let head = splitter
                .next_records(1)
                .map_err(|e| external(format!("reading `{show}`: {e}")))?
                .unwrap_or_default();
            if self.next_file > 0 {
                let (s, _) = self
                    .header_format
                    .infer_schema(head.as_slice(), Some(0))
                    .map_err(|e| external(format!("reading `{show}`: {e}")))?;
                let names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
                if names != r.header_names {
                    return Err(external(format!(
                        "`{show}` has the columns [{}], but `{}` has [{}]: every file matched \
                         by `path` must have the same columns",
                        names.join(", "),
                        files::show(&r.files[0]),
                        r.header_names.join(", ")
                    )));
                }
            }
        }
        self.next_file += 1;
        self.splitter = Some(splitter);
        Ok(())
    }

    /// The next block of the input, opening files as needed; `None` at the end.
    fn next_block(&mut self) -> Result<Option<Block>, ArrowError> {
        loop {
            if let Some(sp) = self.splitter.as_mut() {
                let data = sp
                    .next_records(self.rows_per_block)
                    .map_err(|e| external(format!("reading `{}`: {e}", sp.path)))?;
                if let Some(data) = data {
                    let block = Block {
                        data,
                        path: sp.path.clone(),
                        first_row: sp.rows_out,
                    };
                    sp.rows_out += self.rows_per_block as u64;
                    return Ok(Some(block));
                }
                self.splitter = None;
            }
            if self.next_file >= self.resolved.files.len() {
                return Ok(None);
            }
            self.open_next()?;
        }
    }

    /// Keep up to `window` blocks in flight.
    fn fill(&mut self) -> bool {
        let mut more = true;
        while self.pending.len() < self.window {
            match self.next_block() {
                Ok(Some(block)) => {
                    let shared = self.shared.clone();
                    match &self.pool {
                        Some(pool) => {
                            let (tx, rx) = sync_channel(1);
                            pool.spawn(move || {
                                let r =
                                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                        decode_block(&shared, &block)
                                    }))
                                    .unwrap_or_else(|_| {
                                        Err(external(format!(
                                            "decoding `{}` failed unexpectedly (a worker panicked)",
                                            block.path
                                        )))
                                    });
                                let _ = tx.send(r);
                            });
                            self.pending.push_back(Pending::Running(rx));
                        }
                        None => self
                            .pending
                            .push_back(Pending::Done(decode_block(&shared, &block))),
                    }
                }
                Ok(None) => {
                    more = false;
                    break;
                }
                Err(e) => {
                    self.pending.push_back(Pending::Done(Err(e)));
                    more = false;
                    break;
                }
            }
        }
        more
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
        loop {
            if let Some(batch) = self.ready.pop_front() {
                self.rows += batch.num_rows() as u64;
                if let Some(h) = self.handle {
                    h.progress(
                        self.counter.load(Ordering::Relaxed),
                        self.total_bytes,
                        "bytes",
                    );
                }
                return Some(Ok(batch));
            }
            if self.finished {
                return None;
            }
            self.fill();
            let Some(front) = self.pending.pop_front() else {
                self.finish();
                return None;
            };
            let result = match front {
                Pending::Done(r) => r,
                Pending::Running(rx) => rx.recv().unwrap_or_else(|_| {
                    Err(external(
                        "a CSV decoding worker stopped unexpectedly".into(),
                    ))
                }),
            };
            match result {
                Ok(batches) => self.ready.extend(batches),
                Err(e) => {
                    self.finished = true;
                    self.pending.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Add `add` to every line number in an arrow-csv message (`line N`), which counts from
/// the start of the block, so it counts from the start of the file.
fn shift_lines(msg: &str, add: u64) -> String {
    let mut out = String::with_capacity(msg.len() + 8);
    let mut rest = msg;
    while let Some(i) = rest.find("line ") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<u64>() {
            Ok(n) if digits > 0 => out.push_str(&(n + add).to_string()),
            _ => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// Decode one block into batches of `batch_size` rows and convert their columns.
fn decode_block(shared: &Shared, block: &Block) -> Result<Vec<RecordBatch>, ArrowError> {
    // arrow-csv numbers a block's records from 1: shift to the file's line numbers.
    let shift = block.first_row + u64::from(shared.header);
    let fail = |e: ArrowError| {
        let msg = match e {
            ArrowError::CsvError(m) | ArrowError::ParseError(m) => m,
            other => other.to_string(),
        };
        external(format!(
            "reading `{}`: {}{}",
            block.path,
            shift_lines(&msg, shift),
            shared.hint
        ))
    };
    let mut decoder = ReaderBuilder::new(shared.file_schema.clone())
        .with_format(shared.format.clone())
        .with_batch_size(shared.batch_size)
        .with_projection(shared.projection.clone())
        .build_decoder();
    let data = block.data.as_slice();
    let mut off = 0;
    let mut row = block.first_row;
    let mut out = Vec::new();
    loop {
        loop {
            let n = decoder.decode(&data[off..]).map_err(fail)?;
            off += n;
            if n == 0 || decoder.capacity() == 0 {
                break;
            }
        }
        match decoder.flush().map_err(fail)? {
            Some(batch) => {
                let n = batch.num_rows() as u64;
                out.push(convert(shared, batch, &block.path, row)?);
                row += n;
            }
            None => break,
        }
    }
    Ok(out)
}

/// Apply the column conversions (text dates, decimal commas) to a decoded batch whose
/// first row is data row `first_row` (0-based) of `path`.
fn convert(
    shared: &Shared,
    batch: RecordBatch,
    path: &str,
    first_row: u64,
) -> Result<RecordBatch, ArrowError> {
    if shared.conv.iter().all(|c| *c == Conv::None) {
        return RecordBatch::try_new(shared.output.clone(), batch.columns().to_vec());
    }
    let line = |row: usize| first_row + row as u64 + 1 + u64::from(shared.header);
    let mut cols = batch.columns().to_vec();
    for (i, col) in cols.iter_mut().enumerate() {
        let conv = shared.conv[i];
        if conv == Conv::None {
            continue;
        }
        let text = col
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| external("internal: a converted column was not read as text".into()))?;
        let name = shared.output.field(i).name();
        match conv {
            Conv::DateText => {
                let mut out = Vec::with_capacity(text.len());
                for (row, v) in text.iter().enumerate() {
                    match v {
                        None => out.push(None),
                        Some(s) if s.trim().is_empty() => out.push(None),
                        Some(s) => match parse_date(s, &shared.formats) {
                            Some(d) => out.push(Some(d)),
                            None => {
                                return Err(external(format!(
                                    "`{path}` line {}, column `{name}`: `{s}` matches none of \
                                     the date formats {}",
                                    line(row),
                                    shared.formats.join(", ")
                                )))
                            }
                        },
                    }
                }
                *col = Arc::new(Date32Array::from(out));
            }
            Conv::DecimalComma => {
                let mut out = Vec::with_capacity(text.len());
                for (row, v) in text.iter().enumerate() {
                    match v {
                        None => out.push(None),
                        Some(s) if s.trim().is_empty() => out.push(None),
                        Some(s) => match parse_decimal_comma(s) {
                            Some(x) => out.push(Some(x)),
                            None => {
                                return Err(external(format!(
                                    "`{path}` line {}, column `{name}`: `{s}` is not a number \
                                     written with a decimal comma (`decimal: \",\"`, e.g. \
                                     `12,50`; thousands separators are not accepted)",
                                    line(row)
                                )))
                            }
                        },
                    }
                }
                *col = Arc::new(Float64Array::from(out));
            }
            Conv::None => {}
        }
    }
    RecordBatch::try_new(shared.output.clone(), cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes `step` at a time, so record and quote boundaries fall across
    /// reads.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn split(text: &str, rows: usize, step: usize) -> Vec<String> {
        let reader = Trickle {
            data: text.as_bytes().to_vec(),
            pos: 0,
            step,
        };
        let mut sp = Splitter::new(Box::new(reader), "t.csv".into(), b',');
        let mut out = Vec::new();
        while let Some(b) = sp.next_records(rows).unwrap() {
            out.push(String::from_utf8(b).unwrap());
        }
        out
    }

    #[test]
    fn splitter_cuts_only_between_records() {
        let text = "1,\"a\nb\",x\n2,\"say \"\"hi\"\"\n\",y\r\n3,5\" tall,z\n4,\"\"\"\",w\n5,last,v";
        for step in [1, 2, 3, 7, 1000] {
            assert_eq!(
                split(text, 1, step),
                [
                    "1,\"a\nb\",x\n",
                    "2,\"say \"\"hi\"\"\n\",y\r\n",
                    "3,5\" tall,z\n",
                    "4,\"\"\"\",w\n",
                    "5,last,v"
                ],
                "step {step}"
            );
            assert_eq!(split(text, 2, step).len(), 3, "step {step}");
        }
        assert!(split("", 1, 1).is_empty());
        assert!(split("\n\n", 5, 1).is_empty());
    }

    #[test]
    fn shift_lines_moves_every_line_number() {
        assert_eq!(
            shift_lines(
                "incorrect number of fields for line 3, expected 3 got 2",
                10
            ),
            "incorrect number of fields for line 13, expected 3 got 2"
        );
        assert_eq!(
            shift_lines("no numbers here: line x", 5),
            "no numbers here: line x"
        );
    }

    #[test]
    fn decimal_comma_values() {
        assert_eq!(parse_decimal_comma("12,50"), Some(12.5));
        assert_eq!(parse_decimal_comma(" -0,75 "), Some(-0.75));
        assert_eq!(parse_decimal_comma("3"), Some(3.0));
        assert_eq!(parse_decimal_comma("1.234,5"), None);
        assert_eq!(parse_decimal_comma("1,2,3"), None);
        assert_eq!(parse_decimal_comma("abc"), None);
    }
}
