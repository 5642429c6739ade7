//! Running a step's component in a child process (`isolation: process`, `--isolate`).
//!
//! The host starts `segflow plugin-host` (the same binary, a hidden subcommand), writes
//! a JSON [`Request`] and then every input as an Arrow IPC stream to the child's stdin
//! (on a writer thread, so a large input never deadlocks against the output), and reads
//! the child's answer from its stdout: each output port as an Arrow IPC stream, then the
//! facts, or an error. What moving the tables cost is reported as a [`Transfer`]. The
//! child's log events arrive on its stderr as tagged JSON lines and go to the step's
//! observer; any other stderr text is kept (the tail explains a crash) and forwarded as
//! log lines.
//!
//! A crash of the child (a signal, an abort, a stack overflow, an allocation failure
//! under `memory_limit`) or a `timeout` becomes a step error that names the cause; the
//! host and the other branches carry on. The child is always waited for (no zombies).
//!
//! Frames on the child's stdout: a tag byte, then for `P` a `u32` LE length and the port
//! name followed by one Arrow IPC stream; for `M` the same name followed by the `u64` LE
//! offset and length of the port's Arrow IPC stream in the answer file; for `F` (facts)
//! and `E` (error) a `u32` LE length and JSON; `B` (no payload) says the component
//! returned and its outputs follow; `D` ends a successful answer.
//!
//! On Linux the tables do not cross the pipes, which then carry only frames. Inputs:
//! the host writes each input's IPC stream into a memfd (the input file) in page-aligned
//! regions of about 1 MiB and announces each on stdin with an `S` frame (`u64` LE offset
//! and length; `Z` ends an input); the child maps a region, decodes its batches in
//! place, and punches the region out of the file once its arrays are dropped, so a
//! streamed input is never held whole. Outputs: the child writes each port's IPC
//! stream into a second memfd (the answer file) and sends `M` frames; once the answer
//! is complete the host seals the file against writes and maps it, so the batches it
//! decodes point into the child's bytes instead of being copied out of a pipe. Where
//! there is no memfd, both directions fall back to the pipes.
//!
//! The host does not wait for the child's exit (tearing down its address space) once
//! the answer is complete; a reaper thread collects it.

use crate::host::{CallError, CallOptions, Component, Observer, Streams};
use arrow::array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow::datatypes::SchemaRef;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use segflow_abi as abi;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// What the host asks the child to run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// The library holding the component.
    pub library: PathBuf,
    /// Every library the host loaded (for the component's `run_component` calls).
    pub libraries: Vec<PathBuf>,
    /// The component's name in its library.
    pub component: String,
    pub config: serde_json::Value,
    /// Input names, in the order their streams follow the request.
    pub inputs: Vec<String>,
    pub threads: u32,
    pub step_id: String,
    pub max_log_level: u32,
    pub run_info: Option<String>,
    /// The descriptor of the answer file the child writes output tables to (Linux);
    /// `None`: they follow on the protocol channel.
    #[serde(default)]
    pub answer_fd: Option<i32>,
    /// The descriptor of the input file the host writes input tables to (Linux), with
    /// `S`/`Z` frames on stdin saying where; `None`: they follow on stdin as streams.
    #[serde(default)]
    pub input_fd: Option<i32>,
}

/// A step's limits, as enforced on its process.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Wall-clock limit and the text it was written as (`30s`).
    pub timeout: Option<(Duration, String)>,
    /// Address-space limit in bytes (RLIMIT_AS) and its text (`512MiB`).
    pub memory: Option<(u64, String)>,
}

/// The outputs of an isolated run, materialised in the host.
pub struct IsolatedOutput {
    pub ports: Streams,
    pub facts: serde_json::Map<String, serde_json::Value>,
    pub transfer: Transfer,
}

/// What moving the step's tables between the processes cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Transfer {
    /// Bytes of Arrow IPC sent to the child (every input).
    pub bytes_in: u64,
    /// Bytes of Arrow IPC the child answered with (every output port).
    pub bytes_out: u64,
    /// Milliseconds from starting the child until its last input was sent (includes
    /// the time upstream steps took to produce the inputs).
    pub send_ms: f64,
    /// Of `send_ms`, the milliseconds spent encoding and writing the inputs (without
    /// the waits for upstream steps to produce them).
    pub send_busy_ms: f64,
    /// Milliseconds from the component's return in the child to its outputs decoded
    /// in the host.
    pub answer_ms: f64,
    /// Whether outputs came through a mapped answer file (else inline on a pipe).
    pub mapped: bool,
}

/// Tag of the child's log lines on stderr.
pub const LOG_TAG: &str = "\u{1e}segflow-isolate ";

static HOST_PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Use `program plugin-host` as the child instead of this executable (for embedders and
/// tests whose executable is not `segflow`). Only the first call has an effect.
pub fn set_host_program(program: PathBuf) {
    let _ = HOST_PROGRAM.set(program);
}

fn host_program() -> Result<PathBuf, String> {
    if let Some(p) = HOST_PROGRAM.get() {
        return Ok(p.clone());
    }
    std::env::current_exe().map_err(|e| format!("cannot find the segflow executable: {e}"))
}

fn call_error(message: String) -> CallError {
    CallError {
        message,
        field: None,
        panicked: false,
    }
}

/// Passes `inner`'s batches on, adding up the time spent waiting for them.
struct TimedReader<'a> {
    inner: &'a mut (dyn RecordBatchReader + Send),
    waited: Duration,
}

impl Iterator for TimedReader<'_> {
    type Item = Result<RecordBatch, arrow::error::ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        let t = Instant::now();
        let item = self.inner.next();
        self.waited += t.elapsed();
        item
    }
}

impl RecordBatchReader for TimedReader<'_> {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

/// Write one frame: tag, `u32` LE length, payload.
pub fn write_frame(w: &mut impl Write, tag: u8, payload: &[u8]) -> std::io::Result<()> {
    w.write_all(&[tag])?;
    w.write_all(&(payload.len() as u32).to_le_bytes())?;
    w.write_all(payload)
}

fn read_len_payload(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// Write `reader` as one Arrow IPC stream.
pub fn write_stream(w: &mut impl Write, reader: &mut dyn RecordBatchReader) -> Result<u64, String> {
    let schema = reader.schema();
    let mut sw = StreamWriter::try_new(w, &schema).map_err(|e| e.to_string())?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                // End the stream properly, so the reader stays in step with the frames
                // that follow (the error travels separately).
                let _ = sw.finish();
                return Err(e.to_string());
            }
        };
        rows += batch.num_rows() as u64;
        sw.write(&batch).map_err(|e| e.to_string())?;
    }
    sw.finish().map_err(|e| e.to_string())?;
    Ok(rows)
}

/// Read one Arrow IPC stream to its end marker, leaving `r` just after it.
pub fn read_stream(r: &mut impl Read) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    let reader = StreamReader::try_new(r, None).map_err(|e| e.to_string())?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok((schema, batches))
}

/// Child side: the answer file the host handed over (`Request::answer_fd`).
pub struct AnswerFile {
    w: BufWriter<std::fs::File>,
    at: u64,
}

impl AnswerFile {
    /// # Safety
    /// `fd` must be an open descriptor this process owns and nothing else uses.
    pub unsafe fn from_raw_fd(fd: i32) -> Self {
        use std::os::fd::FromRawFd;
        AnswerFile {
            w: BufWriter::with_capacity(1 << 20, std::fs::File::from_raw_fd(fd)),
            at: 0,
        }
    }
}

/// Writes through to `inner`, counting bytes.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    bytes: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(buf)?;
        self.bytes += buf.len() as u64;
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Streams in the answer file start on this boundary, so the arrays the host decodes
/// in place keep Arrow's alignment.
const ANSWER_ALIGN: u64 = 64;

/// Child side: send output port `name`, into the answer file when there is one (with
/// an `M` frame on `out` saying where), else inline as a `P` frame.
pub fn write_port(
    out: &mut impl Write,
    file: Option<&mut AnswerFile>,
    name: &str,
    reader: &mut dyn RecordBatchReader,
) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let Some(f) = file else {
        write_frame(out, b'P', name.as_bytes()).map_err(io)?;
        return write_stream(out, reader).map(|_| ());
    };
    let pad = (ANSWER_ALIGN - f.at % ANSWER_ALIGN) % ANSWER_ALIGN;
    f.w.write_all(&[0u8; ANSWER_ALIGN as usize][..pad as usize])
        .map_err(io)?;
    f.at += pad;
    let mut w = Counting {
        inner: &mut f.w,
        bytes: 0,
    };
    let written = write_stream(&mut w, reader);
    let len = w.bytes;
    let start = f.at;
    f.at += len;
    written?;
    // The host reads the file once the answer is done; nothing may stay buffered.
    f.w.flush().map_err(io)?;
    write_frame(out, b'M', name.as_bytes()).map_err(io)?;
    out.write_all(&start.to_le_bytes()).map_err(io)?;
    out.write_all(&len.to_le_bytes()).map_err(io)
}

/// Child side, once the answer is flushed: close every channel to the host (so it sees
/// the end of stderr at once) and leave without unloading libraries or freeing the
/// step's tables; the kernel reclaims the address space while the host carries on.
pub fn exit_now(protocol_fd: i32) -> ! {
    // SAFETY: closing descriptors and `_exit` are plain system calls; nothing runs
    // afterwards that could use the closed descriptors.
    unsafe {
        libc::close(protocol_fd);
        libc::close(0);
        libc::close(1);
        libc::close(2);
        libc::_exit(0)
    }
}

/// Child side: read the request that starts stdin.
pub fn read_request(r: &mut impl Read) -> Result<Request, String> {
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag)
        .map_err(|e| format!("cannot read the request: {e}"))?;
    if tag[0] != b'R' {
        return Err("the input does not start with a request".into());
    }
    let bytes = read_len_payload(r).map_err(|e| format!("cannot read the request: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("the request is not valid: {e}"))
}

/// Child side: the inputs that follow the request, from `input_file` when the host
/// gave one (`Request::input_fd`), else inline on `r`. All but the last are read into
/// memory (the component may read them in any order); the last one streams.
pub fn read_inputs<R: Read + Send + 'static>(
    mut r: R,
    names: &[String],
    input_file: Option<std::fs::File>,
) -> Result<Streams, String> {
    let file = input_file.map(Arc::new);
    let mut out: Streams = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let fail = |e: String| format!("cannot read input `{name}`: {e}");
        if i + 1 == names.len() {
            out.push((name.clone(), open_input(r, file.as_ref()).map_err(fail)?));
            break;
        }
        let reader = open_input(&mut r, file.as_ref()).map_err(fail)?;
        let schema = reader.schema();
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(e.to_string()))?;
        out.push((
            name.clone(),
            Box::new(RecordBatchIterator::new(
                batches.into_iter().map(Ok),
                schema,
            )),
        ));
    }
    Ok(out)
}

/// Child side: the next input, mapped from `file` as `S` frames on `r` announce it, or
/// (without a file) as an IPC stream on `r` itself.
fn open_input<'a, R: Read + Send + 'a>(
    r: R,
    file: Option<&Arc<std::fs::File>>,
) -> Result<Box<dyn RecordBatchReader + Send + 'a>, String> {
    #[cfg(target_os = "linux")]
    if let Some(file) = file {
        return Ok(Box::new(MappedStream::open(r, file.clone())?));
    }
    let _ = file;
    Ok(Box::new(
        StreamReader::try_new(r, None).map_err(|e| e.to_string())?,
    ))
}

/// Host side: the input file regions grow to about this size before the child is told
/// of them, so tiny batches do not cost a mapping each.
#[cfg(target_os = "linux")]
const INPUT_REGION: u64 = 1 << 20;

#[cfg(target_os = "linux")]
fn page_size() -> u64 {
    // SAFETY: plain libc query.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// Host side: write `reader` as one Arrow IPC stream into the input file at `*at` (a
/// page boundary), in regions of whole messages, each announced on `pipe` by an `S`
/// frame (offset and length) once its bytes are in the file; `Z` ends the input.
/// Returns the bytes written.
#[cfg(target_os = "linux")]
fn send_mapped(
    pipe: &mut impl Write,
    file: &std::fs::File,
    at: &mut u64,
    reader: &mut dyn RecordBatchReader,
) -> Result<u64, String> {
    let page = page_size();
    let mut buffered = BufWriter::with_capacity(1 << 20, file);
    let base = *at;
    let counting = Counting {
        inner: &mut buffered,
        bytes: 0,
    };
    let schema = reader.schema();
    let mut sw = StreamWriter::try_new(counting, &schema).map_err(|e| e.to_string())?;
    let mut region = base;
    let mut emit = |sw: &mut StreamWriter<Counting<'_, BufWriter<&std::fs::File>>>,
                    region: &mut u64|
     -> Result<(), String> {
        let end = base + sw.get_ref().bytes;
        if end == *region {
            return Ok(());
        }
        // The next region starts on a page, so the child can map it, and give it back
        // whole, on its own. The padding is in the file before the child hears of it.
        let pad = (page - end % page) % page;
        sw.get_mut()
            .write_all(&vec![0u8; pad as usize])
            .map_err(|e| e.to_string())?;
        sw.flush().map_err(|e| e.to_string())?;
        pipe.write_all(b"S").map_err(|e| e.to_string())?;
        pipe.write_all(&region.to_le_bytes())
            .map_err(|e| e.to_string())?;
        pipe.write_all(&(end - *region).to_le_bytes())
            .map_err(|e| e.to_string())?;
        pipe.flush().map_err(|e| e.to_string())?;
        *region = end + pad;
        Ok(())
    };
    let mut failed = None;
    for batch in &mut *reader {
        match batch {
            Ok(b) => {
                sw.write(&b).map_err(|e| e.to_string())?;
                if base + sw.get_ref().bytes - region >= INPUT_REGION {
                    emit(&mut sw, &mut region)?;
                }
            }
            Err(e) => {
                failed = Some(e.to_string());
                break;
            }
        }
    }
    if failed.is_none() {
        // The end-of-stream marker also lets the decoder finish a schema-only stream
        // (it acts on a message once bytes follow it).
        sw.finish().map_err(|e| e.to_string())?;
    }
    emit(&mut sw, &mut region)?;
    let bytes = sw.get_ref().bytes;
    *at = base + bytes;
    *at += (page - *at % page) % page;
    if let Some(e) = failed {
        // Stop here: the child sees its input end without `Z`, and the upstream step's
        // failure is reported as the cause.
        return Err(e);
    }
    pipe.write_all(b"Z").map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Child side: an input table whose IPC stream lies in regions of the input file,
/// mapped as they are announced and decoded in place. A region is unmapped, and its
/// memory given back, when the last array pointing into it is dropped.
#[cfg(target_os = "linux")]
struct MappedStream<R: Read> {
    pipe: R,
    file: Arc<std::fs::File>,
    decoder: arrow_ipc::reader::StreamDecoder,
    rest: arrow::buffer::Buffer,
    schema: SchemaRef,
    /// A batch decoded while looking for the schema (they can share a region).
    pending: Option<RecordBatch>,
    done: bool,
}

#[cfg(target_os = "linux")]
impl<R: Read> MappedStream<R> {
    fn open(pipe: R, file: Arc<std::fs::File>) -> Result<Self, String> {
        let mut s = MappedStream {
            pipe,
            file,
            decoder: arrow_ipc::reader::StreamDecoder::new(),
            rest: arrow::buffer::Buffer::from_vec(Vec::<u8>::new()),
            schema: Arc::new(arrow::datatypes::Schema::empty()),
            pending: None,
            done: false,
        };
        loop {
            if let Some(schema) = s.decoder.schema() {
                s.schema = schema;
                return Ok(s);
            }
            if !s.rest.is_empty() {
                s.pending = s.decoder.decode(&mut s.rest).map_err(|e| e.to_string())?;
                continue;
            }
            if !s.next_region()? {
                return Err("the input ended before its schema".into());
            }
        }
    }

    /// Map the next announced region into `rest`; false at the input's end.
    fn next_region(&mut self) -> Result<bool, String> {
        let mut tag = [0u8; 1];
        self.pipe
            .read_exact(&mut tag)
            .map_err(|e| format!("the input broke off: {e}"))?;
        match tag[0] {
            b'S' => {
                let mut at = [0u8; 16];
                self.pipe
                    .read_exact(&mut at)
                    .map_err(|e| format!("the input broke off: {e}"))?;
                let offset = u64::from_le_bytes(at[..8].try_into().expect("8 bytes"));
                let len = u64::from_le_bytes(at[8..].try_into().expect("8 bytes"));
                use std::os::fd::AsRawFd;
                let fd = self.file.as_raw_fd();
                self.rest = map_shared(fd, offset, len, Some(self.file.clone()))
                    .map_err(|e| format!("cannot map the input file: {e}"))?;
                Ok(true)
            }
            b'Z' => Ok(false),
            other => Err(format!("unexpected input frame tag {other:#04x}")),
        }
    }
}

#[cfg(target_os = "linux")]
impl<R: Read> Iterator for MappedStream<R> {
    type Item = Result<RecordBatch, arrow::error::ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(batch) = self.pending.take() {
            return Some(Ok(batch));
        }
        loop {
            if !self.rest.is_empty() {
                match self.decoder.decode(&mut self.rest) {
                    Ok(Some(batch)) => return Some(Ok(batch)),
                    Ok(None) => continue,
                    Err(e) => {
                        self.done = true;
                        self.rest = arrow::buffer::Buffer::from_vec(Vec::<u8>::new());
                        return Some(Err(e));
                    }
                }
            }
            if self.done {
                return None;
            }
            match self.next_region() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(arrow::error::ArrowError::IpcError(e)));
                }
            }
        }
    }
}

#[cfg(target_os = "linux")]
impl<R: Read> RecordBatchReader for MappedStream<R> {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// A read-only shared mapping of a file; on drop it is unmapped and, for a region of
/// the input file, its pages are punched out of the file, so a streamed input never
/// sits in memory whole.
#[cfg(target_os = "linux")]
struct Mapping {
    addr: usize,
    len: usize,
    /// The input file and the region's offset in it.
    punch: Option<(Arc<std::fs::File>, u64)>,
}

#[cfg(target_os = "linux")]
impl Drop for Mapping {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: `addr..addr+len` is a mapping this struct made and alone owns; the
        // host never writes a region of the input file again once it announced it.
        unsafe {
            libc::munmap(self.addr as *mut libc::c_void, self.len);
            if let Some((file, offset)) = &self.punch {
                // Through the padding to the next page: a partly punched page stays.
                let page = page_size() as usize;
                libc::fallocate(
                    file.as_raw_fd(),
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    *offset as libc::off_t,
                    self.len.div_ceil(page) as libc::off_t * page as libc::off_t,
                );
            }
        }
    }
}

/// Map `len` bytes of `fd` at `offset` (a page boundary) read-only, as an Arrow buffer
/// that keeps the mapping alive.
#[cfg(target_os = "linux")]
fn map_shared(
    fd: i32,
    offset: u64,
    len: u64,
    punch: Option<Arc<std::fs::File>>,
) -> std::io::Result<arrow::buffer::Buffer> {
    if len == 0 {
        return Ok(arrow::buffer::Buffer::from_vec(Vec::<u8>::new()));
    }
    // SAFETY: a fresh read-only mapping of bytes whose writer has finished with them.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len as usize,
            libc::PROT_READ,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd,
            offset as libc::off_t,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    let mapping = Arc::new(Mapping {
        addr: addr as usize,
        len: len as usize,
        punch: punch.map(|f| (f, offset)),
    });
    let ptr = std::ptr::NonNull::new(addr as *mut u8).expect("mmap does not return null");
    // SAFETY: the mapping is `len` readable bytes and lives as long as `mapping`.
    Ok(unsafe { arrow::buffer::Buffer::from_custom_allocation(ptr, len as usize, mapping) })
}

/// Child side: move the protocol off file descriptor 1, so text a plugin prints to
/// stdout goes to stderr instead of corrupting the answer. Returns the protocol channel.
pub fn protocol_stdout() -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain descriptor calls on descriptors this process owns.
    unsafe {
        let fd = libc::dup(1);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) < 0 || libc::dup2(2, 1) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(std::fs::File::from_raw_fd(fd))
    }
}

/// Child side: sends the component's log events and progress to the host as tagged
/// JSON lines on stderr.
pub struct StderrObserver;

impl StderrObserver {
    fn line(v: serde_json::Value) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{LOG_TAG}{v}");
    }
}

impl Observer for StderrObserver {
    fn log(&self, _step: &str, level: u32, target: &str, message: &str) {
        Self::line(serde_json::json!({"log": level, "target": target, "message": message}));
    }
    fn progress(&self, _step: &str, done: u64, total: u64, unit: &str) {
        Self::line(serde_json::json!({"progress": done, "total": total, "unit": unit}));
    }
}

/// An output port as the child answered it.
enum PortData {
    /// Read from the protocol channel.
    Inline(SchemaRef, Vec<RecordBatch>, u64),
    /// Where its IPC stream lies in the answer file: offset and length.
    InFile(u64, u64),
}

/// What the host read from the child's stdout.
#[derive(Default)]
struct Answer {
    ports: Vec<(String, PortData)>,
    /// When the component's outputs began to arrive (`B`, or the first port).
    first_port: Option<Instant>,
    facts: serde_json::Map<String, serde_json::Value>,
    error: Option<CallError>,
    done: bool,
    /// The answer broke off (the child died, or wrote something unreadable).
    broken: Option<String>,
}

fn read_answer(r: &mut impl Read) -> Answer {
    let mut a = Answer::default();
    loop {
        let mut tag = [0u8; 1];
        match r.read_exact(&mut tag) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return a,
            Err(e) => {
                a.broken = Some(e.to_string());
                return a;
            }
        }
        if matches!(tag[0], b'B' | b'P' | b'M') && a.first_port.is_none() {
            a.first_port = Some(Instant::now());
        }
        let step = match tag[0] {
            b'B' => Ok(()),
            b'P' => read_len_payload(r)
                .map_err(|e| e.to_string())
                .and_then(|name| {
                    let name = String::from_utf8_lossy(&name).into_owned();
                    let mut counted = CountingRead { inner: r, bytes: 0 };
                    let (schema, batches) = read_stream(&mut counted)?;
                    let bytes = counted.bytes;
                    a.ports
                        .push((name, PortData::Inline(schema, batches, bytes)));
                    Ok(())
                }),
            b'M' => read_len_payload(r)
                .and_then(|name| {
                    let mut at = [0u8; 16];
                    r.read_exact(&mut at)?;
                    let offset = u64::from_le_bytes(at[..8].try_into().expect("8 bytes"));
                    let len = u64::from_le_bytes(at[8..].try_into().expect("8 bytes"));
                    let name = String::from_utf8_lossy(&name).into_owned();
                    a.ports.push((name, PortData::InFile(offset, len)));
                    Ok(())
                })
                .map_err(|e| e.to_string()),
            b'F' => read_len_payload(r)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
                .map(|f| a.facts = f),
            b'E' => read_len_payload(r)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string())
                })
                .map(|v| {
                    a.error = Some(CallError {
                        message: v["message"].as_str().unwrap_or("").to_string(),
                        field: v["field"].as_str().map(str::to_string),
                        panicked: v["panicked"].as_bool().unwrap_or(false),
                    })
                }),
            b'D' => {
                a.done = true;
                return a;
            }
            other => Err(format!("unexpected frame tag {other:#04x}")),
        };
        if let Err(e) = step {
            a.broken = Some(e);
            return a;
        }
    }
}

/// Reads through `inner`, counting bytes.
struct CountingRead<'a, R: Read> {
    inner: &'a mut R,
    bytes: u64,
}

impl<R: Read> Read for CountingRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// The whole answer file as one Arrow buffer. The file is sealed first, so the child
/// (still alive, or a stray copy of it) can no longer change bytes the host has
/// validated; when sealing is refused (someone mapped it writable) the bytes are
/// copied instead.
#[cfg(target_os = "linux")]
fn answer_buffer(file: &std::fs::File) -> std::io::Result<arrow::buffer::Buffer> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len() as usize;
    if len == 0 {
        return Ok(arrow::buffer::Buffer::from_vec(Vec::<u8>::new()));
    }
    let fd = file.as_raw_fd();
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: plain descriptor calls on a descriptor we own.
    let sealed = unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) } == 0;
    if !sealed {
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, 0)?;
        return Ok(arrow::buffer::Buffer::from_vec(bytes));
    }
    // The size can no longer change, so the mapping stays valid.
    map_shared(fd, 0, len as u64, None)
}

/// Decode one Arrow IPC stream held in `buf`; arrays point into `buf` (validated,
/// not copied) where it is aligned.
fn decode_stream(mut buf: arrow::buffer::Buffer) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    let mut decoder = arrow_ipc::reader::StreamDecoder::new();
    let mut batches = Vec::new();
    while !buf.is_empty() {
        if let Some(batch) = decoder.decode(&mut buf).map_err(|e| e.to_string())? {
            batches.push(batch);
        }
    }
    decoder.finish().map_err(|e| e.to_string())?;
    let schema = decoder
        .schema()
        .ok_or_else(|| "the stream has no schema".to_string())?;
    Ok((schema, batches))
}

/// The host's copy of the child's output ports, decoded.
fn collect_ports(
    ports: Vec<(String, PortData)>,
    file: Option<&std::fs::File>,
) -> Result<(Streams, u64), String> {
    let mut whole: Option<arrow::buffer::Buffer> = None;
    let mut out: Streams = Vec::with_capacity(ports.len());
    let mut bytes = 0u64;
    for (name, data) in ports {
        let (schema, batches) = match data {
            PortData::Inline(schema, batches, n) => {
                bytes += n;
                (schema, batches)
            }
            PortData::InFile(offset, len) => {
                #[cfg(target_os = "linux")]
                if whole.is_none() {
                    let f = file.ok_or("the child answered in a file it was not given")?;
                    whole = Some(
                        answer_buffer(f)
                            .map_err(|e| format!("cannot read the answer file: {e}"))?,
                    );
                }
                let buf = whole
                    .as_ref()
                    .ok_or("the child answered in a file it was not given")?;
                let end = offset.checked_add(len).filter(|&e| e <= buf.len() as u64);
                if end.is_none() {
                    return Err(format!(
                        "output port `{name}` lies outside the answer file ({len} bytes at {offset}, the file has {})",
                        buf.len()
                    ));
                }
                bytes += len;
                decode_stream(buf.slice_with_length(offset as usize, len as usize))
                    .map_err(|e| format!("output port `{name}`: {e}"))?
            }
        };
        out.push((
            name,
            Box::new(RecordBatchIterator::new(
                batches.into_iter().map(Ok),
                schema,
            )) as Box<dyn RecordBatchReader + Send>,
        ));
    }
    let _ = file;
    Ok((out, bytes))
}

/// The child's stderr: tagged lines go to the observer, others are kept (the last few)
/// and forwarded as log lines.
#[derive(Default)]
struct StderrTail {
    lines: VecDeque<String>,
    stack_overflow: bool,
    alloc_failed: Option<String>,
}

fn pump_stderr(
    r: impl Read,
    step: &str,
    observer: &Arc<dyn Observer>,
    max_level: u32,
    redact: &crate::host::Redactor,
) -> StderrTail {
    let mut tail = StderrTail::default();
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(json) = line.strip_prefix(LOG_TAG) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
                if let Some(level) = v["log"].as_u64() {
                    observer.log(
                        step,
                        level as u32,
                        v["target"].as_str().unwrap_or(""),
                        &redact.apply(v["message"].as_str().unwrap_or("")),
                    );
                } else if let Some(done) = v["progress"].as_u64() {
                    observer.progress(
                        step,
                        done,
                        v["total"].as_u64().unwrap_or(0),
                        v["unit"].as_str().unwrap_or(""),
                    );
                }
                continue;
            }
        }
        // Blank lines, and the runtime's hint to set RUST_BACKTRACE (the child inherits
        // segflow's environment), say nothing about the step.
        if line.trim().is_empty() || line.starts_with("note: run with `RUST_BACKTRACE") {
            continue;
        }
        if line.contains("has overflowed its stack") {
            tail.stack_overflow = true;
        }
        if line.contains("memory allocation of") && line.contains("failed") {
            tail.alloc_failed = Some(line.to_string());
        }
        if max_level >= abi::LOG_INFO {
            observer.log(step, abi::LOG_INFO, "stderr", &redact.apply(line));
        }
        if tail.lines.len() == 8 {
            tail.lines.pop_front();
        }
        tail.lines.push_back(line.to_string());
    }
    tail
}

/// The conventional name and a plain description of a signal.
pub fn signal_name(sig: i32) -> (&'static str, &'static str) {
    match sig {
        libc::SIGSEGV => ("SIGSEGV", "a segmentation fault"),
        libc::SIGABRT => ("SIGABRT", "an abort"),
        libc::SIGBUS => ("SIGBUS", "a bus error"),
        libc::SIGFPE => ("SIGFPE", "an arithmetic exception"),
        libc::SIGILL => ("SIGILL", "an illegal instruction"),
        libc::SIGKILL => ("SIGKILL", "being killed"),
        libc::SIGTERM => ("SIGTERM", "being terminated"),
        libc::SIGINT => ("SIGINT", "an interrupt"),
        libc::SIGPIPE => ("SIGPIPE", "a broken pipe"),
        libc::SIGXCPU => ("SIGXCPU", "exceeding its CPU time limit"),
        libc::SIGSYS => ("SIGSYS", "a bad system call"),
        _ => ("an unknown signal", "an unknown signal"),
    }
}

/// Why the child ended without an answer, as one paragraph.
fn crash_message(
    status: ExitStatus,
    tail: &StderrTail,
    limits: &Limits,
    component: &str,
    broken: Option<&str>,
) -> String {
    let last = if tail.lines.is_empty() {
        String::new()
    } else {
        format!(
            " Its last output: {}",
            tail.lines.iter().cloned().collect::<Vec<_>>().join(" | ")
        )
    };
    let bug = format!("This is a bug in `{component}` or a library it calls: report it to the plugin's vendor with the step's config and input");
    if let Some(line) = &tail.alloc_failed {
        let what = line
            .find("memory allocation of")
            .map_or(line.as_str(), |i| &line[i..]);
        return match &limits.memory {
            Some((_, text)) => format!(
                "exceeded its memory_limit of {text}: `{component}` ran out of address space in its isolated process ({what}); raise `memory_limit:` or give the step less data. segflow and the other steps carried on."
            ),
            None => format!(
                "ran out of memory in its isolated process: `{component}` could not allocate ({what}); give the step less data or run on a machine with more memory. segflow and the other steps carried on."
            ),
        };
    }
    if tail.stack_overflow {
        return format!(
            "crashed with a stack overflow (SIGABRT) in its isolated process while running `{component}`; segflow and the other steps carried on. This usually means unbounded recursion. {bug}.{last}"
        );
    }
    if let Some(sig) = status.signal() {
        let (name, desc) = signal_name(sig);
        if sig == libc::SIGKILL {
            let limit = match &limits.memory {
                Some((_, text)) => format!(" (its memory_limit is {text})"),
                None => String::new(),
            };
            return format!(
                "was killed (SIGKILL) in its isolated process while running `{component}` — likely out of memory (the kernel's OOM killer) or memory_limit{limit}; segflow and the other steps carried on. Give the step less data, set a lower `memory_limit:` so it fails cleanly, or run on a machine with more memory.{last}"
            );
        }
        return format!(
            "crashed with {desc} ({name}) in its isolated process while running `{component}`; segflow and the other steps carried on. {bug}.{last}"
        );
    }
    let how = match status.code() {
        Some(0) => "exited (status 0) without answering".to_string(),
        Some(c) => format!("exited with status {c} before answering"),
        None => "ended before answering".to_string(),
    };
    let broken = broken
        .map(|b| format!(" (the answer broke off: {b})"))
        .unwrap_or_default();
    format!(
        "its isolated process {how}{broken} while running `{component}`; segflow and the other steps carried on. {bug}.{last}"
    )
}

/// An empty memfd (close-on-exec), or `None` where there is none (the tables then
/// cross the pipes).
#[cfg(target_os = "linux")]
fn memfd(name: &std::ffi::CStr, sealable: bool) -> Option<std::fs::File> {
    use std::os::fd::FromRawFd;
    let flags = libc::MFD_CLOEXEC | if sealable { libc::MFD_ALLOW_SEALING } else { 0 };
    // SAFETY: plain system call; the descriptor is owned by the returned File.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    // SAFETY: a fresh descriptor nothing else owns.
    (fd >= 0).then(|| unsafe { std::fs::File::from_raw_fd(fd) })
}

#[cfg(not(target_os = "linux"))]
fn memfd(_name: &std::ffi::CStr, _sealable: bool) -> Option<std::fs::File> {
    None
}

/// Run `component` in a child process on `inputs`, with `limits`. Outputs are
/// materialised in the host.
pub fn run(
    component: &Component,
    libraries: Vec<PathBuf>,
    opts: &CallOptions,
    config: &serde_json::Value,
    inputs: Streams,
    limits: &Limits,
) -> Result<IsolatedOutput, CallError> {
    use std::os::fd::AsRawFd;
    let name = component.qualified_name();
    let answer_out = memfd(c"segflow-answer", true);
    let answer_fd = answer_out.as_ref().map(|f| f.as_raw_fd());
    let input_file = memfd(c"segflow-input", false);
    let input_fd = input_file.as_ref().map(|f| f.as_raw_fd());
    let request = Request {
        library: component.library.path.clone(),
        libraries,
        component: component.name.clone(),
        config: config.clone(),
        inputs: inputs.iter().map(|(n, _)| n.clone()).collect(),
        threads: opts.threads.max(1),
        step_id: opts.step_id.clone(),
        max_log_level: opts.max_log_level,
        run_info: opts.run_info.clone(),
        answer_fd,
        input_fd,
    };
    let request = serde_json::to_vec(&request)
        .map_err(|e| call_error(format!("cannot encode the isolated request: {e}")))?;
    let program = host_program().map_err(call_error)?;
    let mut cmd = Command::new(&program);
    cmd.arg("plugin-host")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group: Ctrl-C in the terminal reaches segflow, which cancels the
    // run and stops the child itself (instead of the child dying of SIGINT mid-step).
    cmd.process_group(0);
    let memory = limits.memory.as_ref().map(|(bytes, _)| libc::rlimit {
        rlim_cur: *bytes as libc::rlim_t,
        rlim_max: *bytes as libc::rlim_t,
    });
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // If segflow dies (even of SIGKILL), so does the child.
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if let Some(lim) = &memory {
                if libc::setrlimit(libc::RLIMIT_AS, lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // The memfds are close-on-exec so that no other child inherits them;
            // this one must.
            for fd in [answer_fd, input_fd].into_iter().flatten() {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        call_error(format!(
            "cannot start its isolated process `{} plugin-host`: {e}; check that the segflow executable is still in place{}",
            program.display(),
            match &limits.memory {
                Some((_, t)) => format!(" and that memory_limit ({t}) leaves room to start it"),
                None => String::new(),
            }
        ))
    })?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(call_error("its isolated process has no pipes".into()));
    };

    // Bigger pipes (64 KiB by default) mean fewer wake-ups when tables cross them.
    #[cfg(target_os = "linux")]
    {
        for fd in [stdin.as_raw_fd(), stdout.as_raw_fd()] {
            // SAFETY: a valid descriptor we own; failure just keeps the default size.
            unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20) };
        }
    }
    let writer = std::thread::Builder::new()
        .name("segflow-isolate-in".into())
        .spawn(move || -> Result<(u64, Duration, Duration), String> {
            let begun = Instant::now();
            let mut w = BufWriter::with_capacity(1 << 20, stdin);
            write_frame(&mut w, b'R', &request).map_err(|e| e.to_string())?;
            // Let the child load its library while the first input batch is produced.
            w.flush().map_err(|e| e.to_string())?;
            let mut bytes = 0;
            let mut waited = Duration::ZERO;
            #[cfg_attr(not(target_os = "linux"), allow(unused_mut, unused_variables))]
            let mut at = 0;
            for (_, mut reader) in inputs {
                let mut timed = TimedReader {
                    inner: reader.as_mut(),
                    waited: Duration::ZERO,
                };
                let sent = match &input_file {
                    #[cfg(target_os = "linux")]
                    Some(file) => send_mapped(&mut w, file, &mut at, &mut timed),
                    _ => {
                        let mut counted = Counting {
                            inner: &mut w,
                            bytes: 0,
                        };
                        write_stream(&mut counted, &mut timed).map(|_| counted.bytes)
                    }
                };
                waited += timed.waited;
                bytes += sent?;
            }
            w.flush().map_err(|e| e.to_string())?;
            Ok((bytes, started.elapsed(), begun.elapsed() - waited))
        });
    // The reader says when the answer is complete: the host need not wait for the
    // child's exit then.
    let (answered, answer_done) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::Builder::new()
        .name("segflow-isolate-out".into())
        .spawn(move || {
            let a = read_answer(&mut BufReader::with_capacity(1 << 20, stdout));
            let _ = answered.send(());
            a
        });
    let (step, observer, max_level, redact) = (
        opts.step_id.clone(),
        opts.observer.clone(),
        opts.max_log_level,
        opts.redact.clone(),
    );
    let errors = std::thread::Builder::new()
        .name("segflow-isolate-err".into())
        .spawn(move || pump_stderr(stderr, &step, &observer, max_level, &redact));

    // Wait for the answer or the child's end, killing it at the deadline or on cancel.
    let mut timed_out = false;
    let mut cancelled = false;
    let mut answer: Option<Answer> = None;
    let mut reader = reader.ok();
    let status = loop {
        if answer.is_none() {
            use std::sync::mpsc::RecvTimeoutError;
            match answer_done.recv_timeout(Duration::from_millis(20)) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                    answer = Some(
                        reader
                            .take()
                            .and_then(|h| h.join().ok())
                            .unwrap_or_default(),
                    );
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        if answer.as_ref().is_some_and(|a| a.done || a.error.is_some()) {
            // Complete: the child only closes its channels and exits now.
            break None;
        }
        match child.try_wait() {
            Ok(Some(status)) => break Some(Ok(status)),
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                break Some(child.wait().map_err(|_| e));
            }
        }
        let over = limits
            .timeout
            .as_ref()
            .is_some_and(|(t, _)| started.elapsed() >= *t);
        if over || opts.cancel.load(Ordering::Relaxed) {
            timed_out = over;
            cancelled = !over;
            let _ = child.kill();
            break Some(child.wait());
        }
        if answer.is_some() {
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    if status.is_none() {
        // Collect the exit in the background (no zombie), or here if no thread starts.
        // (Should no thread start, the exited child stays a zombie until segflow ends.)
        let mut child = child;
        let _ = std::thread::Builder::new()
            .name("segflow-isolate-reap".into())
            .spawn(move || {
                let _ = child.wait();
            });
    }
    let answer = match answer {
        Some(a) => a,
        None => reader
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default(),
    };
    let tail = match errors {
        Ok(h) => h.join().unwrap_or_default(),
        Err(_) => StderrTail::default(),
    };
    let wrote = match writer {
        Ok(h) => h.join().unwrap_or(Ok((0, Duration::ZERO, Duration::ZERO))),
        Err(e) => Err(e.to_string()),
    };

    if timed_out {
        let (_, text) = limits.timeout.as_ref().expect("timed out with a timeout");
        return Err(call_error(format!(
            "exceeded its timeout of {text}: `{name}` was still running in its isolated process, which segflow killed (SIGKILL); raise `timeout:` or give the step less work. The other steps carried on."
        )));
    }
    if cancelled {
        return Err(call_error(
            "cancelled: its isolated process was stopped".into(),
        ));
    }
    if let Some(e) = answer.error {
        return Err(e);
    }
    if answer.done {
        let first_port = answer.first_port;
        let mapped = answer
            .ports
            .iter()
            .any(|(_, d)| matches!(d, PortData::InFile(..)));
        let (ports, bytes_out) = collect_ports(answer.ports, answer_out.as_ref()).map_err(|e| {
            call_error(format!(
                "its isolated process answered with unreadable output: {e}. This is a bug in segflow; report it with the step's config"
            ))
        })?;
        let (bytes_in, sent, busy) =
            wrote
                .as_ref()
                .copied()
                .unwrap_or((0, Duration::ZERO, Duration::ZERO));
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        return Ok(IsolatedOutput {
            ports,
            facts: answer.facts,
            transfer: Transfer {
                bytes_in,
                bytes_out,
                send_ms: ms(sent),
                send_busy_ms: ms(busy),
                answer_ms: first_port.map_or(0.0, |t| ms(t.elapsed())),
                mapped,
            },
        });
    }
    let status = status
        .expect("an incomplete answer is waited for")
        .map_err(|e| {
            call_error(format!(
                "lost track of its isolated process while running `{name}`: {e}"
            ))
        })?;
    // An input that could not be read (an upstream stream broke) is the cause when the
    // child simply saw its stdin end early.
    if let Err(e) = &wrote {
        if status.signal().is_none() && !e.contains("Broken pipe") {
            return Err(call_error(format!(
                "could not send its inputs to its isolated process: {e}"
            )));
        }
    }
    Err(call_error(crash_message(
        status,
        &tail,
        limits,
        &name,
        answer.broken.as_deref(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..n))]).unwrap()
    }

    #[test]
    fn streams_follow_each_other_on_one_pipe() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b'R', b"{}").unwrap();
        for n in [3, 5] {
            let b = batch(n);
            let mut r = RecordBatchIterator::new(vec![Ok(b.clone())], b.schema());
            write_stream(&mut buf, &mut r).unwrap();
        }
        let mut cur = std::io::Cursor::new(buf);
        assert!(
            read_request(&mut cur).is_err(),
            "`{{}}` lacks the request's fields"
        );
        let inputs = read_inputs(cur, &["a".into(), "b".into()], None).unwrap();
        let rows: Vec<usize> = inputs
            .into_iter()
            .map(|(_, r)| r.map(|b| b.unwrap().num_rows()).sum())
            .collect();
        assert_eq!(rows, vec![3, 5]);
    }

    #[test]
    fn answers_and_crashes_are_read() {
        let mut buf = Vec::new();
        buf.push(b'P');
        buf.extend_from_slice(&4u32.to_le_bytes());
        buf.extend_from_slice(b"main");
        let b = batch(4);
        write_stream(
            &mut buf,
            &mut RecordBatchIterator::new(vec![Ok(b.clone())], b.schema()),
        )
        .unwrap();
        write_frame(&mut buf, b'F', br#"{"k":3}"#).unwrap();
        buf.push(b'D');
        let a = read_answer(&mut buf.as_slice());
        assert!(a.done && a.broken.is_none());
        assert_eq!(a.ports[0].0, "main");
        assert_eq!(a.facts["k"], 3);

        let status = ExitStatus::from_raw(libc::SIGSEGV);
        let msg = crash_message(
            status,
            &StderrTail::default(),
            &Limits::default(),
            "t/c",
            None,
        );
        assert!(msg.contains("segmentation fault (SIGSEGV)"), "{msg}");
        let tail = StderrTail {
            alloc_failed: Some("memory allocation of 1024 bytes failed".into()),
            ..Default::default()
        };
        let limits = Limits {
            memory: Some((1 << 29, "512MiB".into())),
            timeout: None,
        };
        let msg = crash_message(
            ExitStatus::from_raw(libc::SIGABRT),
            &tail,
            &limits,
            "t/c",
            None,
        );
        assert!(msg.contains("exceeded its memory_limit of 512MiB"), "{msg}");
        let msg = crash_message(
            ExitStatus::from_raw(libc::SIGKILL),
            &StderrTail::default(),
            &limits,
            "t/c",
            None,
        );
        assert!(
            msg.contains("killed (SIGKILL)") && msg.contains("likely out of memory"),
            "{msg}"
        );
        let msg = crash_message(
            ExitStatus::from_raw(3 << 8),
            &StderrTail::default(),
            &Limits::default(),
            "t/c",
            Some("unexpected frame tag 0x41"),
        );
        assert!(msg.contains("exited with status 3"), "{msg}");
    }

    fn rows_of(inputs: Streams) -> Vec<(String, Vec<i64>)> {
        inputs
            .into_iter()
            .map(|(name, r)| {
                let values = r
                    .flat_map(|b| {
                        let b = b.unwrap();
                        let col = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                        col.values().to_vec()
                    })
                    .collect();
                (name, values)
            })
            .collect()
    }

    /// Inputs written into a memfd in regions (`S`/`Z` frames) come back intact: an
    /// input of many batches spanning several regions, an empty one, and the streamed
    /// last one; every region is punched out of the file once its arrays are dropped.
    #[cfg(target_os = "linux")]
    #[test]
    fn mapped_inputs_round_trip() {
        use std::os::unix::fs::MetadataExt;
        let file = memfd(c"test-input", false).unwrap();
        let mut pipe = Vec::new();
        let mut at = 0u64;
        // 40 batches of 8192 i64 = 2.6 MB: three 1 MiB regions.
        let big: Vec<RecordBatch> = (0..40).map(|_| batch(8192)).collect();
        let schema = big[0].schema();
        let mut sent = 0;
        for batches in [big.clone(), vec![], vec![batch(7), batch(0), batch(2)]] {
            let mut r = RecordBatchIterator::new(batches.into_iter().map(Ok), schema.clone());
            sent += send_mapped(&mut pipe, &file, &mut at, &mut r).unwrap();
        }
        assert!(sent > 40 * 8192 * 8, "{sent}");
        let regions = pipe.iter().filter(|&&t| t == b'S').count();
        assert!(regions >= 5, "{regions} regions");
        let allocated = |f: &std::fs::File| f.metadata().unwrap().blocks() * 512;
        assert!(allocated(&file) >= sent, "the file holds the inputs");

        let names: Vec<String> = ["big", "empty", "last"].map(String::from).into();
        let copy = file.try_clone().unwrap();
        let inputs = read_inputs(std::io::Cursor::new(pipe), &names, Some(copy)).unwrap();
        let got = rows_of(inputs);
        let expect_big: Vec<i64> = (0..40).flat_map(|_| 0..8192).collect();
        assert_eq!(got[0], ("big".to_string(), expect_big));
        assert_eq!(got[1], ("empty".to_string(), vec![]));
        assert_eq!(
            got[2],
            ("last".to_string(), vec![0, 1, 2, 3, 4, 5, 6, 0, 1])
        );
        assert_eq!(allocated(&file), 0, "every region was given back");
    }

    /// An input whose upstream fails stops without `Z`; the child reports it broke off.
    #[cfg(target_os = "linux")]
    #[test]
    fn mapped_input_that_breaks_off_is_an_error() {
        let file = memfd(c"test-input", false).unwrap();
        let mut pipe = Vec::new();
        let mut at = 0u64;
        let b = batch(5);
        let items = vec![
            Ok(b.clone()),
            Err(arrow::error::ArrowError::ComputeError(
                "upstream died".into(),
            )),
        ];
        let mut r = RecordBatchIterator::new(items, b.schema());
        let err = send_mapped(&mut pipe, &file, &mut at, &mut r).unwrap_err();
        assert!(err.contains("upstream died"), "{err}");
        let copy = file.try_clone().unwrap();
        let inputs = read_inputs(std::io::Cursor::new(pipe), &["x".into()], Some(copy)).unwrap();
        let (_, reader) = inputs.into_iter().next().unwrap();
        let results: Vec<_> = reader.collect();
        assert_eq!(results[0].as_ref().unwrap().num_rows(), 5);
        let err = results[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("the input broke off"), "{err}");
    }

    /// Ports written into the answer file are read back in the host from a sealed
    /// mapping; a port that points outside the file is refused, not trusted.
    #[cfg(target_os = "linux")]
    #[test]
    fn answer_file_round_trip() {
        let host_copy = memfd(c"test-answer", true).unwrap();
        use std::os::fd::IntoRawFd;
        // SAFETY: a fresh duplicate descriptor handed over to the AnswerFile.
        let mut answer =
            unsafe { AnswerFile::from_raw_fd(host_copy.try_clone().unwrap().into_raw_fd()) };
        let mut frames = Vec::new();
        frames.push(b'B');
        for (name, n) in [("main", 5), ("quarantine", 0), ("third", 3)] {
            let b = batch(n);
            let mut r = RecordBatchIterator::new(vec![Ok(b.clone())], b.schema());
            write_port(&mut frames, Some(&mut answer), name, &mut r).unwrap();
        }
        frames.push(b'D');
        let a = read_answer(&mut frames.as_slice());
        assert!(a.done && a.broken.is_none() && a.first_port.is_some());
        let offsets: Vec<u64> = a
            .ports
            .iter()
            .map(|(_, d)| match d {
                PortData::InFile(offset, _) => *offset,
                PortData::Inline(..) => panic!("inline port"),
            })
            .collect();
        assert!(offsets.iter().all(|o| o % ANSWER_ALIGN == 0), "{offsets:?}");
        let (ports, bytes) = collect_ports(a.ports, Some(&host_copy)).unwrap();
        assert!(bytes > 0);
        assert_eq!(
            rows_of(ports),
            vec![
                ("main".to_string(), vec![0, 1, 2, 3, 4]),
                ("quarantine".to_string(), vec![]),
                ("third".to_string(), vec![0, 1, 2]),
            ]
        );
        // Sealed: the child can no longer change what the host decoded.
        use std::io::Write as _;
        let mut w = &host_copy;
        assert!(w.write_all(b"x").is_err(), "the answer file is sealed");

        let mut frames = Vec::new();
        frames.push(b'M');
        frames.extend_from_slice(&4u32.to_le_bytes());
        frames.extend_from_slice(b"main");
        frames.extend_from_slice(&0u64.to_le_bytes());
        frames.extend_from_slice(&u64::MAX.to_le_bytes());
        frames.push(b'D');
        let a = read_answer(&mut frames.as_slice());
        let err = collect_ports(a.ports, Some(&host_copy)).err().unwrap();
        assert!(err.contains("lies outside the answer file"), "{err}");
    }
}
