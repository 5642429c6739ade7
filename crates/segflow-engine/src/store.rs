//! The run directory: `manifest.json`, `steps/<id>/<port>.parquet`, `steps/<id>/facts.json`.
//!
//! Every file is written under a temporary name in its final directory and renamed into
//! place once complete, so a crash never leaves a half-written file that looks finished.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Write `bytes` to `path` atomically (temp file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_name(path);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Whether port files are flushed to disk (fsync) before they are renamed into place.
static SYNC_OUTPUTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Flush every port file to disk before it is renamed into place (`segflow run
/// --fsync`). Off by default: the temp-file-and-rename already means a killed process
/// never leaves a file that looks complete; the flush guards against losing a finished
/// run to a power cut or an OS crash, and costs about 0.3 s per 100 MB written.
/// The small files (manifest, facts) are always flushed.
pub fn set_sync_outputs(on: bool) {
    SYNC_OUTPUTS.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// A run directory being written.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
    /// `(runs/<name>, <timestamp>)` when the directory was chosen by default, so
    /// `latest` can be pointed at it once the run is over.
    latest: Option<(PathBuf, String)>,
}

impl RunDir {
    /// `out`, or `runs/<name>/<UTC timestamp>`.
    ///
    /// An `out` that holds an earlier run is cleared first, so no stale output survives
    /// to look like part of this run; a non-empty directory that is not a run directory
    /// is refused rather than mixed into.
    pub fn create(out: Option<&Path>, pipeline_name: &str) -> std::io::Result<RunDir> {
        let (root, latest) = match out {
            Some(p) => {
                prepare_out_dir(p)?;
                (p.to_path_buf(), None)
            }
            None => {
                let base = Path::new("runs").join(pipeline_name);
                std::fs::create_dir_all(&base)?;
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
                let mut n = 0;
                loop {
                    let name = if n == 0 {
                        stamp.clone()
                    } else {
                        format!("{stamp}-{n}")
                    };
                    let dir = base.join(&name);
                    match std::fs::create_dir(&dir) {
                        Ok(()) => break (dir, Some((base, name))),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        std::fs::create_dir_all(root.join("steps"))?;
        Ok(RunDir { root, latest })
    }

    /// Point `runs/<name>/latest` at this run (called when the run is over).
    pub fn publish_latest(&self) -> std::io::Result<()> {
        match &self.latest {
            Some((base, name)) => point_latest(base, name),
            None => Ok(()),
        }
    }

    /// The run directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn step_dir(&self, step: &str) -> std::io::Result<PathBuf> {
        let d = self.root.join("steps").join(step);
        std::fs::create_dir_all(&d)?;
        Ok(d)
    }

    pub fn write_json(&self, rel: &Path, value: &serde_json::Value) -> std::io::Result<()> {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
        text.push(b'\n');
        write_atomic(&path, &text)
    }
}

fn prepare_out_dir(p: &Path) -> std::io::Result<()> {
    if !p.exists() {
        return std::fs::create_dir_all(p);
    }
    if !p.is_dir() {
        return Err(std::io::Error::other(format!(
            "`{}` exists and is not a directory",
            p.display()
        )));
    }
    let empty = std::fs::read_dir(p)?.next().is_none();
    if empty {
        return Ok(());
    }
    if !p.join("manifest.json").exists() {
        return Err(std::io::Error::other(format!(
            "`{}` is not empty and does not hold an earlier segflow run; refusing to mix this run into it",
            p.display()
        )));
    }
    for name in ["manifest.json", "report.html"] {
        let f = p.join(name);
        if f.exists() {
            std::fs::remove_file(f)?;
        }
    }
    if p.join("steps").exists() {
        std::fs::remove_dir_all(p.join("steps"))?;
    }
    Ok(())
}

/// Point `base/latest` at `name` (a relative symlink, replaced atomically).
fn point_latest(base: &Path, name: &str) -> std::io::Result<()> {
    let link = base.join("latest");
    #[cfg(unix)]
    {
        let tmp = base.join(format!(".latest.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(name, &tmp)?;
        std::fs::rename(&tmp, &link)
    }
    #[cfg(not(unix))]
    {
        write_atomic(&link, name.as_bytes())
    }
}

/// A finished port file: its sha256 (the port's content hash for the step cache) and
/// size, computed while it was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortDigest {
    pub sha256: String,
    pub bytes: u64,
}

/// Hashes the bytes on their way to the file, so a port's digest costs no second read.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes one port's Parquet file under a temporary name; `finish` renames it into place.
pub struct PortWriter {
    path: PathBuf,
    tmp: PathBuf,
    writer: Option<ArrowWriter<HashingWriter<BufWriter<File>>>>,
}

impl PortWriter {
    pub fn create(path: PathBuf, schema: SchemaRef) -> Result<PortWriter, String> {
        let tmp = temp_name(&path);
        let file =
            File::create(&tmp).map_err(|e| format!("cannot create `{}`: {e}", tmp.display()))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("segflow {}", env!("CARGO_PKG_VERSION")))
            .build();
        let sink = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let writer = ArrowWriter::try_new(sink, schema, Some(props))
            .map_err(|e| format!("cannot start Parquet file `{}`: {e}", path.display()))?;
        Ok(PortWriter {
            path,
            tmp,
            writer: Some(writer),
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        match &mut self.writer {
            Some(w) => w
                .write(batch)
                .map_err(|e| format!("writing `{}`: {e}", self.path.display())),
            None => Ok(()),
        }
    }

    pub fn finish(mut self) -> Result<PortDigest, String> {
        let Some(w) = self.writer.take() else {
            return Err(format!("`{}` was already finished", self.path.display()));
        };
        let hashing = w
            .into_inner()
            .map_err(|e| format!("finishing `{}`: {e}", self.path.display()))?;
        let digest = PortDigest {
            sha256: crate::host::hex(&hashing.hasher.finalize()),
            bytes: hashing.bytes,
        };
        let file = hashing
            .inner
            .into_inner()
            .map_err(|e| format!("flushing `{}`: {}", self.path.display(), e.error()))?;
        if SYNC_OUTPUTS.load(std::sync::atomic::Ordering::Relaxed) {
            file.sync_all()
                .map_err(|e| format!("syncing `{}`: {e}", self.path.display()))?;
        }
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|e| format!("renaming `{}` into place: {e}", self.path.display()))?;
        Ok(digest)
    }
}

impl Drop for PortWriter {
    fn drop(&mut self) {
        // Not finished: leave nothing that looks complete.
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

enum WriterMsg {
    Batch(RecordBatch),
    Finish,
}

/// A [`PortWriter`] on its own thread, so Parquet encoding overlaps with the steps that
/// read the port. Batches are shared by reference (no copy); the channel is bounded, so
/// memory stays bounded when the writer is slower than the reader.
pub struct BackgroundWriter {
    tx: Option<std::sync::mpsc::SyncSender<WriterMsg>>,
    handle: Option<std::thread::JoinHandle<Result<PortDigest, String>>>,
}

impl BackgroundWriter {
    pub fn spawn(writer: PortWriter) -> BackgroundWriter {
        let (tx, rx) = std::sync::mpsc::sync_channel::<WriterMsg>(4);
        let handle = std::thread::Builder::new()
            .name("segflow-writer".into())
            .spawn(move || {
                let mut writer = writer;
                for msg in rx {
                    match msg {
                        WriterMsg::Batch(b) => writer.write(&b)?,
                        WriterMsg::Finish => return writer.finish(),
                    }
                }
                // The sender went away without `Finish`: the port is incomplete, and
                // dropping the writer removes its temporary file.
                Err("the port was abandoned before it was complete".into())
            })
            .expect("spawning a writer thread");
        BackgroundWriter {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Queue a batch. Fails when the writer has already failed.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(WriterMsg::Batch(batch.clone())).is_ok());
        if sent {
            Ok(())
        } else {
            Err(self
                .join()
                .err()
                .unwrap_or_else(|| "the Parquet writer stopped".into()))
        }
    }

    /// Write the footer and rename the file into place.
    pub fn finish(mut self) -> Result<PortDigest, String> {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(WriterMsg::Finish);
        }
        self.join()
    }

    fn join(&mut self) -> Result<PortDigest, String> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err("the Parquet writer thread panicked".into())),
            None => Err("the Parquet writer already stopped".into()),
        }
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        // Abandoned: close the channel without `Finish` and wait for the cleanup.
        let _ = self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_finished_port_is_renamed_into_place() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("main.parquet");
        let mut w =
            BackgroundWriter::spawn(PortWriter::create(path.clone(), batch().schema()).unwrap());
        w.write(&batch()).unwrap();
        w.write(&batch()).unwrap();
        w.finish().unwrap();
        assert_eq!(files(tmp.path()), vec!["main.parquet"]);
    }

    #[test]
    fn an_abandoned_port_leaves_nothing_that_looks_complete() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("main.parquet");
        let mut w = BackgroundWriter::spawn(PortWriter::create(path, batch().schema()).unwrap());
        w.write(&batch()).unwrap();
        drop(w);
        assert!(files(tmp.path()).is_empty(), "{:?}", files(tmp.path()));
    }

    #[test]
    fn out_dir_reuse_clears_an_earlier_run_and_refuses_other_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("run");
        let dir = RunDir::create(Some(&out), "p").unwrap();
        dir.write_json(Path::new("manifest.json"), &serde_json::json!({}))
            .unwrap();
        std::fs::write(dir.step_dir("old").unwrap().join("main.parquet"), b"stale").unwrap();
        RunDir::create(Some(&out), "p").unwrap();
        assert!(!out.join("steps/old").exists());
        assert!(!out.join("manifest.json").exists());

        let other = tmp.path().join("photos");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("cat.jpg"), b"meow").unwrap();
        let err = RunDir::create(Some(&other), "p").unwrap_err();
        assert!(err.to_string().contains("refusing"), "{err}");
        assert!(other.join("cat.jpg").exists());
    }
}
