//! Resolving `path:` (a file or a glob) and counting the bytes read.

use segflow_sdk::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The files named by `path`: the file itself, or the matches of a glob pattern in
/// sorted order. Errors name the config field `path`.
pub fn resolve(path: &str) -> Result<Vec<PathBuf>> {
    if path.trim().is_empty() {
        return Err(Error::config("path", "`path` is empty"));
    }
    let is_pattern = path.contains(['*', '?', '[']);
    if !is_pattern {
        let p = PathBuf::from(path);
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(vec![p]),
            Ok(_) => Err(Error::config(
                "path",
                format!("`{path}` is a directory; name a file or a glob such as `{path}/*.csv`"),
            )),
            Err(e) => Err(Error::config(
                "path",
                format!(
                    "cannot open `{path}`: {e} (relative paths are resolved from {})",
                    cwd()
                ),
            )),
        };
    }
    let entries = glob::glob(path)
        .map_err(|e| Error::config("path", format!("`{path}` is not a valid glob pattern: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let p = entry
            .map_err(|e| Error::config("path", format!("reading a match of `{path}`: {e}")))?;
        if p.is_file() {
            files.push(p);
        }
    }
    if files.is_empty() {
        return Err(Error::config(
            "path",
            format!(
                "no file matches `{path}` (relative paths are resolved from {})",
                cwd()
            ),
        ));
    }
    files.sort();
    Ok(files)
}

fn cwd() -> String {
    std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "the current directory".into())
}

/// Total size of `files` in bytes (0 for files whose size cannot be read).
pub fn total_size(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Shows a path in messages.
pub fn show(p: &Path) -> String {
    p.display().to_string()
}

/// A reader that adds the bytes it reads to a shared counter.
pub struct Counting<R> {
    pub inner: R,
    pub counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
