//! Resolving `path:` (a file or a glob) and counting the bytes read.

use segflow_sdk::{Error, Fingerprint, Result};
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

/// What the step cache checks to tell whether the files `path` names have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FingerprintMode {
    /// The path, size in bytes and modification time (nanoseconds) of every file `path`
    /// names, a glob's matches included (so a new matching file counts): cheap, and
    /// catches every ordinary write.
    #[default]
    Metadata,
    /// The path, size and SHA-256 of every file's bytes, without the modification time:
    /// reads the files whole each time the step is considered. A file written again
    /// with the same bytes (downloaded again, checked out by git, `touch`ed) keeps its
    /// cached result; a rewrite that keeps size and time (`cp -p`, `touch -r`, a coarse
    /// file-system clock) is still caught.
    Content,
}

/// The step-cache fingerprint of the files `path` names (see [`FingerprintMode`]).
/// `Never` when `path` names no readable file: the run then reports why.
pub fn fingerprint(path: &str, mode: FingerprintMode) -> Result<Fingerprint> {
    let files = match resolve(path) {
        Ok(f) => f,
        Err(e) => {
            return Ok(Fingerprint::Never(format!(
                "`path` names no readable file ({})",
                e.message()
            )))
        }
    };
    let mut described = Vec::with_capacity(files.len());
    for f in &files {
        let meta = match std::fs::metadata(f) {
            Ok(m) => m,
            Err(e) => {
                return Ok(Fingerprint::Never(format!(
                    "cannot read the metadata of `{}`: {e}",
                    show(f)
                )))
            }
        };
        let shown = std::path::absolute(f).unwrap_or_else(|_| f.clone());
        let mut entry = serde_json::json!({
            "path": show(&shown),
            "bytes": meta.len(),
        });
        if mode == FingerprintMode::Metadata {
            entry["mtime_ns"] = meta.modified().ok().map(mtime_ns).into();
        } else {
            match crate::sha256::file_hex(f) {
                Ok(h) => entry["sha256"] = h.into(),
                Err(e) => {
                    return Ok(Fingerprint::Never(format!(
                        "cannot read `{}` to hash it: {e}",
                        show(f)
                    )))
                }
            }
        }
        described.push(entry);
    }
    Ok(Fingerprint::Source(
        serde_json::json!({ "files": described }),
    ))
}

/// Nanoseconds since the Unix epoch (negative before it), saturating at i64's range
/// (the year 2262).
pub fn mtime_ns(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
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

/// The text encoding of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, schemars::JsonSchema)]
pub enum TextEncoding {
    /// UTF-8; a leading byte-order mark is detected and dropped.
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// UTF-8 that starts with a byte-order mark (as Excel writes it); the mark is
    /// dropped. Files without one are read as plain UTF-8.
    #[serde(rename = "utf-8-sig")]
    Utf8Sig,
    /// GBK (simplified Chinese, a superset of GB2312), decoded as GB18030.
    #[serde(rename = "gbk")]
    Gbk,
    /// ISO-8859-1: every byte is the Unicode code point of the same number.
    #[serde(rename = "latin-1")]
    Latin1,
    /// Windows-1252 (Western European Windows), e.g. `€` is byte 0x80.
    #[serde(rename = "windows-1252")]
    Windows1252,
    /// Mixed UTF-8 and Windows-1252, as in files stitched together from exports of
    /// different systems: valid UTF-8 is read as UTF-8, and each byte that is not part
    /// of a valid UTF-8 sequence is read as Windows-1252 (so Latin-1 `Zo\xEB` becomes
    /// `Zoë`). A warning gives the number of bytes read that way.
    #[serde(rename = "utf-8-or-windows-1252")]
    Utf8OrWindows1252,
}

impl TextEncoding {
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Utf8Sig => "utf-8-sig",
            TextEncoding::Gbk => "gbk",
            TextEncoding::Latin1 => "latin-1",
            TextEncoding::Windows1252 => "windows-1252",
            TextEncoding::Utf8OrWindows1252 => "utf-8-or-windows-1252",
        }
    }
}

/// How a file is compressed, from its name: `.gz` (gzip) or `.zst` (zstd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn of(path: &Path) -> Compression {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("gz") => Compression::Gzip,
            Some(e) if e.eq_ignore_ascii_case("zst") => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// Open `path` as a stream of UTF-8 text: decompressed by extension (`.gz`, `.zst`),
/// decoded from `encoding`, with a leading UTF-8 byte-order mark removed. The bytes taken
/// from the file (compressed size) are added to `counter` when given.
pub fn open_text(
    path: &Path,
    encoding: TextEncoding,
    counter: Option<Arc<AtomicU64>>,
) -> std::io::Result<Box<dyn Read + Send>> {
    let file = std::fs::File::open(path)?;
    let raw: Box<dyn Read + Send> = match counter {
        Some(counter) => Box::new(Counting {
            inner: file,
            counter,
        }),
        None => Box::new(file),
    };
    let show = show(path);
    let decompressed: Box<dyn Read + Send> = match Compression::of(path) {
        Compression::None => raw,
        Compression::Gzip => Box::new(Annotate {
            inner: flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(
                1 << 16,
                raw,
            )),
            what: format!("`{show}` is not valid gzip data (the name ends in .gz)"),
        }),
        Compression::Zstd => Box::new(Annotate {
            inner: zstd::stream::read::Decoder::new(raw)?,
            what: format!("`{show}` is not valid zstd data (the name ends in .zst)"),
        }),
    };
    Ok(match encoding {
        TextEncoding::Utf8 | TextEncoding::Utf8Sig => Box::new(SkipBom::new(decompressed)),
        TextEncoding::Latin1 => Box::new(Transcode::new(decompressed, None, encoding, show)),
        TextEncoding::Gbk => Box::new(Transcode::new(
            decompressed,
            Some(encoding_rs::GBK.new_decoder()),
            encoding,
            show,
        )),
        TextEncoding::Windows1252 => Box::new(Transcode::new(
            decompressed,
            Some(encoding_rs::WINDOWS_1252.new_decoder()),
            encoding,
            show,
        )),
        TextEncoding::Utf8OrWindows1252 => {
            Box::new(Utf8Fallback::new(SkipBom::new(decompressed), show))
        }
    })
}

/// Turns whitespace-aligned text into delimited text: on every line, leading and
/// trailing spaces and tabs are dropped and each run of them inside becomes one
/// `delimiter` byte (`  00004 0001 19970101  2   29.33` → `00004,0001,19970101,2,29.33`).
pub struct WhitespaceFields<R> {
    inner: R,
    delimiter: u8,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out.
    pos: usize,
    /// Inside a line, a run of blanks is pending (written only if a field follows).
    pending_gap: bool,
    /// No field has started on the current line yet.
    line_start: bool,
    eof: bool,
}

impl<R: Read> WhitespaceFields<R> {
    pub fn new(inner: R, delimiter: u8) -> Self {
        WhitespaceFields {
            inner,
            delimiter,
            buf: Vec::new(),
            pos: 0,
            pending_gap: false,
            line_start: true,
            eof: false,
        }
    }
}

impl<R: Read> Read for WhitespaceFields<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() && !self.eof {
            let mut chunk = [0u8; 1 << 16];
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                self.eof = true;
                break;
            }
            self.buf.clear();
            self.pos = 0;
            for &b in &chunk[..n] {
                match b {
                    b' ' | b'\t' => self.pending_gap = !self.line_start,
                    b'\r' => {}
                    b'\n' => {
                        self.buf.push(b'\n');
                        self.pending_gap = false;
                        self.line_start = true;
                    }
                    _ => {
                        if self.pending_gap {
                            self.buf.push(self.delimiter);
                            self.pending_gap = false;
                        }
                        self.line_start = false;
                        self.buf.push(b);
                    }
                }
            }
        }
        let n = (self.buf.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads UTF-8, taking every byte outside a valid UTF-8 sequence as Windows-1252.
struct Utf8Fallback<R> {
    inner: R,
    path: String,
    /// Undecoded input; may end in an incomplete UTF-8 sequence.
    input: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
    /// Bytes read as Windows-1252 so far.
    fallback_bytes: u64,
}

impl<R: Read> Utf8Fallback<R> {
    fn new(inner: R, path: String) -> Self {
        Utf8Fallback {
            inner,
            path,
            input: Vec::with_capacity(TRANSCODE_CHUNK + 4),
            out: Vec::with_capacity(TRANSCODE_CHUNK * 3),
            out_pos: 0,
            eof: false,
            fallback_bytes: 0,
        }
    }

    fn refill(&mut self) -> std::io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        while self.out.is_empty() && !(self.eof && self.input.is_empty()) {
            if !self.eof {
                let start = self.input.len();
                self.input.resize(start + TRANSCODE_CHUNK, 0);
                let n = self.inner.read(&mut self.input[start..])?;
                self.input.truncate(start + n);
                self.eof = n == 0;
            }
            let mut at = 0;
            while at < self.input.len() {
                match std::str::from_utf8(&self.input[at..]) {
                    Ok(valid) => {
                        self.out.extend_from_slice(valid.as_bytes());
                        at = self.input.len();
                    }
                    Err(e) => {
                        let good = at + e.valid_up_to();
                        self.out.extend_from_slice(&self.input[at..good]);
                        match e.error_len() {
                            // an incomplete sequence at the end: wait for more input
                            None if !self.eof => {
                                at = good;
                                break;
                            }
                            bad => {
                                let bad = bad.unwrap_or(self.input.len() - good);
                                for &b in &self.input[good..good + bad] {
                                    let (c, _) = encoding_rs::WINDOWS_1252
                                        .decode_without_bom_handling(std::slice::from_ref(&b));
                                    self.out.extend_from_slice(c.as_bytes());
                                }
                                self.fallback_bytes += bad as u64;
                                at = good + bad;
                            }
                        }
                    }
                }
            }
            self.input.drain(..at);
        }
        if self.eof && self.input.is_empty() && self.out.is_empty() && self.fallback_bytes > 0 {
            segflow_sdk::tracing::warn!(
                file = %self.path,
                bytes = self.fallback_bytes,
                "bytes that are not valid UTF-8 were read as Windows-1252"
            );
            self.fallback_bytes = 0;
        }
        Ok(())
    }
}

impl<R: Read> Read for Utf8Fallback<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.out_pos == self.out.len() {
            self.refill()?;
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// Prefixes the errors of a decompressor with what was being read.
struct Annotate<R> {
    inner: R,
    what: String,
}

impl<R: Read> Read for Annotate<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", self.what)))
    }
}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Drops a leading UTF-8 byte-order mark.
struct SkipBom<R> {
    inner: R,
    head: [u8; 3],
    head_len: usize,
    head_pos: usize,
    checked: bool,
}

impl<R: Read> SkipBom<R> {
    fn new(inner: R) -> Self {
        SkipBom {
            inner,
            head: [0; 3],
            head_len: 0,
            head_pos: 0,
            checked: false,
        }
    }
}

impl<R: Read> Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.checked {
            while self.head_len < 3 {
                let n = self.inner.read(&mut self.head[self.head_len..])?;
                if n == 0 {
                    break;
                }
                self.head_len += n;
            }
            self.checked = true;
            if self.head_len == 3 && self.head == BOM {
                self.head_len = 0;
            }
        }
        if self.head_pos < self.head_len {
            let n = (self.head_len - self.head_pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.head_pos..self.head_pos + n]);
            self.head_pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// Decodes a legacy encoding to UTF-8 as it is read. Bytes that are not valid in the
/// encoding are an error naming the file and the byte offset (nothing is replaced
/// silently).
struct Transcode<R> {
    inner: R,
    /// `None`: ISO-8859-1, decoded directly.
    decoder: Option<encoding_rs::Decoder>,
    encoding: TextEncoding,
    path: String,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
    done: bool,
    /// Input bytes decoded so far.
    offset: u64,
}

const TRANSCODE_CHUNK: usize = 1 << 16;

impl<R: Read> Transcode<R> {
    fn new(
        inner: R,
        decoder: Option<encoding_rs::Decoder>,
        encoding: TextEncoding,
        path: String,
    ) -> Self {
        Transcode {
            inner,
            decoder,
            encoding,
            path,
            input: vec![0; TRANSCODE_CHUNK],
            in_start: 0,
            in_end: 0,
            out: Vec::with_capacity(TRANSCODE_CHUNK * 3 + 16),
            out_pos: 0,
            eof: false,
            done: false,
            offset: 0,
        }
    }

    /// Decode the next piece of input into `out`.
    fn refill(&mut self) -> std::io::Result<()> {
        if self.in_start == self.in_end && !self.eof {
            let n = self.inner.read(&mut self.input)?;
            self.in_start = 0;
            self.in_end = n;
            self.eof = n == 0;
        }
        let src = &self.input[self.in_start..self.in_end];
        self.out.clear();
        self.out_pos = 0;
        match &mut self.decoder {
            None => {
                for &b in src {
                    if b < 0x80 {
                        self.out.push(b);
                    } else {
                        self.out.push(0xC0 | (b >> 6));
                        self.out.push(0x80 | (b & 0x3F));
                    }
                }
                self.offset += src.len() as u64;
                self.in_start = self.in_end;
                if self.eof {
                    self.done = true;
                }
            }
            Some(decoder) => {
                self.out.resize(TRANSCODE_CHUNK * 3 + 16, 0);
                let (result, read, written) =
                    decoder.decode_to_utf8_without_replacement(src, &mut self.out, self.eof);
                self.out.truncate(written);
                self.in_start += read;
                self.offset += read as u64;
                match result {
                    encoding_rs::DecoderResult::InputEmpty => {
                        if self.eof {
                            self.done = true;
                        }
                    }
                    encoding_rs::DecoderResult::OutputFull => {}
                    encoding_rs::DecoderResult::Malformed(bad, _) => {
                        let at = self.offset.saturating_sub(u64::from(bad));
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "`{}` byte {at}: bytes that are not valid {} text; check \
                                 `encoding`",
                                self.path,
                                self.encoding.name()
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Transcode<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.out_pos < self.out.len() {
                let n = (self.out.len() - self.out_pos).min(buf.len());
                buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            self.refill()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_fields_become_delimited() {
        let text = "  00004 0001 19970101  2   29.33\r\n\t7\t\t8 \n\n 9";
        let mut out = String::new();
        WhitespaceFields::new(text.as_bytes(), b',')
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "00004,0001,19970101,2,29.33\n7,8\n\n9");
    }

    /// Hands out its bytes `step` at a time, to cut UTF-8 sequences at every boundary.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn utf8_with_windows_1252_fallback() {
        // UTF-8 "Zoë 王 €", then Latin-1 "Zoë" (0xEB), a Windows-1252 euro (0x80), and a
        // truncated UTF-8 sequence at the very end.
        let mut bytes = "Zoë 王 €,".as_bytes().to_vec();
        bytes.extend_from_slice(b"Zo\xEB,\x80,\xE7\x8E");
        for step in [1, 2, 3, 7, 1 << 16] {
            let mut out = String::new();
            Utf8Fallback::new(
                Trickle {
                    bytes: &bytes,
                    step,
                },
                "t".into(),
            )
            .read_to_string(&mut out)
            .unwrap();
            assert_eq!(out, "Zoë 王 €,Zoë,€,ç\u{17d}", "step {step}");
        }
    }
}
