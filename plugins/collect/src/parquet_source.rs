//! The `parquet` component: Parquet files with an optional projection, streamed.

use crate::files;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use parquet::file::reader::{ChunkReader, Length};
use segflow_sdk::arrow::error::ArrowError;
use segflow_sdk::ffi::HostHandle;
use segflow_sdk::prelude::*;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Read Parquet files: one file, or every file matching a glob pattern in sorted order
/// (all with the same columns). The output schema comes from the file metadata; row
/// groups are streamed batch by batch.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParquetSource {
    /// File to read, or a glob pattern such as `data/part-*.parquet` (the matches are
    /// read in sorted order and must have the same columns). Relative paths are resolved
    /// from the working directory of `segflow`.
    pub path: String,
    /// Columns to read, in this order (default: all). Only these columns are read from
    /// disk.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Rows per record batch.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// What the step cache checks to tell whether the files changed: `metadata`
    /// (default: each file's path, size and modification time; a new file matching the
    /// glob counts) or `content` (also a SHA-256 of each file, which reads them whole).
    #[serde(default)]
    pub fingerprint: files::FingerprintMode,
}

fn default_batch_size() -> usize {
    65_536
}

struct Resolved {
    files: Vec<PathBuf>,
    /// Root column indices to read, in file order, and the output order over them.
    roots: Option<Vec<usize>>,
    reorder: Option<Vec<usize>>,
    output: SchemaRef,
}

fn open_builder(
    path: &PathBuf,
    counter: Option<Arc<AtomicU64>>,
) -> Result<ParquetRecordBatchReaderBuilder<CountingFile>, String> {
    let show = files::show(path);
    let file = File::open(path).map_err(|e| format!("cannot open `{show}`: {e}"))?;
    ParquetRecordBatchReaderBuilder::try_new(CountingFile {
        file,
        counter: counter.unwrap_or_default(),
    })
    .map_err(|e| format!("`{show}` is not a readable Parquet file: {e}"))
}

impl ParquetSource {
    fn resolve(&self) -> Result<Resolved> {
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "batch_size must be at least 1"));
        }
        let files = files::resolve(&self.path)?;
        let builder = open_builder(&files[0], None).map_err(|m| Error::config("path", m))?;
        let schema = builder.schema().clone();
        let Some(columns) = &self.columns else {
            return Ok(Resolved {
                files,
                roots: None,
                reorder: None,
                output: schema,
            });
        };
        if columns.is_empty() {
            return Err(Error::config("columns", "`columns` lists no column"));
        }
        let mut wanted = Vec::with_capacity(columns.len());
        for (i, name) in columns.iter().enumerate() {
            let Ok(idx) = schema.index_of(name) else {
                let have: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(Error::config(
                    "columns",
                    format!(
                        "column `{name}` (columns.{i}) is not in `{}`, which has: {}",
                        files::show(&files[0]),
                        have.join(", ")
                    ),
                ));
            };
            if wanted.contains(&idx) {
                return Err(Error::config(
                    "columns",
                    format!("column `{name}` is listed twice"),
                ));
            }
            wanted.push(idx);
        }
        let mut roots = wanted.clone();
        roots.sort_unstable();
        // Position of each wanted column within the file-ordered projection.
        let reorder: Vec<usize> = wanted
            .iter()
            .map(|w| roots.iter().position(|r| r == w).unwrap_or(0))
            .collect();
        let output = Arc::new(schema.project(&wanted)?);
        Ok(Resolved {
            files,
            roots: Some(roots),
            reorder: Some(reorder),
            output,
        })
    }
}

impl Component for ParquetSource {
    const NAME: &'static str = "parquet";
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
        ctx.fact("source", &self.path);
        ctx.fact("files", r.files.len());
        let output = r.output.clone();
        let stream = ParquetStream {
            resolved: r,
            batch_size: self.batch_size,
            next_file: 0,
            current: None,
            counter: Arc::new(AtomicU64::new(0)),
            rows: 0,
            total_rows: 0,
            handle: Some(ctx.handle()),
            finished: false,
        };
        Ok(Outputs::main(Table::from_iter(output, stream)))
    }
}

type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

struct ParquetStream {
    resolved: Resolved,
    batch_size: usize,
    next_file: usize,
    current: Option<BatchIter>,
    counter: Arc<AtomicU64>,
    rows: u64,
    total_rows: u64,
    handle: Option<HostHandle>,
    finished: bool,
}

/// Batches decoded ahead of the consumer.
const PREFETCH_BATCHES: usize = 8;

/// Decode on a thread of its own, up to [`PREFETCH_BATCHES`] ahead, so that reading
/// and decompressing the file overlaps with the work of the step that consumes it.
/// Batches keep their order.
fn prefetch(batches: BatchIter) -> Result<BatchIter, ArrowError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(PREFETCH_BATCHES);
    std::thread::Builder::new()
        .name("segflow-plugin-parquet".into())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for b in batches {
                    // the consumer has gone: stop reading
                    if tx.send(b).is_err() {
                        return;
                    }
                }
            }));
            if outcome.is_err() {
                // never end the stream silently: the consumer must see the rows stop
                let _ = tx.send(Err(external(
                    "the Parquet decoder panicked (a corrupt or unsupported file?)".into(),
                )));
            }
        })
        .map_err(|e| external(format!("cannot start the Parquet reader thread: {e}")))?;
    Ok(Box::new(rx.into_iter()))
}

fn external(msg: String) -> ArrowError {
    ArrowError::ExternalError(msg.into())
}

impl ParquetStream {
    fn open(&mut self, path: &PathBuf) -> Result<BatchIter, ArrowError> {
        let r = &self.resolved;
        let mut builder = open_builder(path, Some(self.counter.clone())).map_err(external)?;
        self.total_rows += builder.metadata().file_metadata().num_rows().max(0) as u64;
        if let Some(roots) = &r.roots {
            let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
            builder = builder.with_projection(mask);
        }
        let reader = builder
            .with_batch_size(self.batch_size)
            .build()
            .map_err(|e| external(format!("reading `{}`: {e}", files::show(path))))?;
        let got = reader_schema_fields(&reader, r.reorder.as_deref());
        let want: Vec<(String, DataType)> = r
            .output
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        if got != want {
            return Err(external(format!(
                "`{}` has the columns [{}], but `{}` has [{}]: every file matched by `path` \
                 must have the same columns and types",
                files::show(path),
                describe(&got),
                files::show(&r.files[0]),
                describe(&want)
            )));
        }
        let output = r.output.clone();
        let reorder = r.reorder.clone();
        let show = files::show(path);
        let batches = reader.map(move |b| {
            let b = b.map_err(|e| external(format!("reading `{show}`: {e}")))?;
            let cols = match &reorder {
                Some(order) => order.iter().map(|&i| b.column(i).clone()).collect(),
                None => b.columns().to_vec(),
            };
            RecordBatch::try_new(output.clone(), cols)
        });
        prefetch(Box::new(batches))
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

fn reader_schema_fields(
    reader: &parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    reorder: Option<&[usize]>,
) -> Vec<(String, DataType)> {
    use segflow_sdk::arrow::array::RecordBatchReader;
    let s = reader.schema();
    let idx: Vec<usize> = match reorder {
        Some(o) => o.to_vec(),
        None => (0..s.fields().len()).collect(),
    };
    idx.iter()
        .filter_map(|&i| s.fields().get(i))
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect()
}

fn describe(cols: &[(String, DataType)]) -> String {
    cols.iter()
        .map(|(n, t)| format!("{n}: {t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Iterator for ParquetStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        loop {
            if let Some(reader) = self.current.as_mut() {
                match reader.next() {
                    Some(Ok(batch)) => {
                        self.rows += batch.num_rows() as u64;
                        if let Some(h) = self.handle {
                            h.progress(self.rows, self.total_rows, "rows");
                        }
                        return Some(Ok(batch));
                    }
                    Some(Err(e)) => {
                        // already names the file (see `open`)
                        self.finished = true;
                        return Some(Err(e));
                    }
                    None => self.current = None,
                }
            }
            if self.next_file >= self.resolved.files.len() {
                self.finish();
                return None;
            }
            let path = self.resolved.files[self.next_file].clone();
            self.next_file += 1;
            match self.open(&path) {
                Ok(reader) => self.current = Some(reader),
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// A file that counts the bytes the Parquet reader takes from it.
struct CountingFile {
    file: File,
    counter: Arc<AtomicU64>,
}

impl Length for CountingFile {
    fn len(&self) -> u64 {
        self.file.len()
    }
}

impl ChunkReader for CountingFile {
    type T = files::Counting<BufReader<File>>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(files::Counting {
            inner: self.file.get_read(start)?,
            counter: self.counter.clone(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let b = self.file.get_bytes(start, length)?;
        self.counter.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b)
    }
}
