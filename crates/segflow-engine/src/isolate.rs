//! Running a step's component in a child process (`isolation: process`, `--isolate`).
//!
//! The host starts `segflow plugin-host` (the same binary, a hidden subcommand), writes
//! a JSON [`Request`] and then every input as an Arrow IPC stream to the child's stdin
//! (on a writer thread, so a large input never deadlocks against the output), and reads
//! the child's answer from its stdout: each output port as an Arrow IPC stream, then the
//! facts, or an error. The child's log events arrive on its stderr as tagged JSON lines
//! and go to the step's observer; any other stderr text is kept (the tail explains a
//! crash) and forwarded as log lines.
//!
//! A crash of the child (a signal, an abort, a stack overflow, an allocation failure
//! under `memory_limit`) or a `timeout` becomes a step error that names the cause; the
//! host and the other branches carry on. The child is always waited for (no zombies).
//!
//! Frames on the child's stdout: a tag byte, then for `P` a `u32` LE length and the port
//! name followed by one Arrow IPC stream; for `F` (facts) and `E` (error) a `u32` LE
//! length and JSON; `D` ends a successful answer.

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

/// Child side: the inputs that follow the request. All but the last are read into
/// memory (the component may read them in any order); the last one streams.
pub fn read_inputs<R: Read + Send + 'static>(
    mut r: R,
    names: &[String],
) -> Result<Streams, String> {
    let mut out: Streams = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if i + 1 == names.len() {
            let reader = StreamReader::try_new(r, None)
                .map_err(|e| format!("cannot read input `{name}`: {e}"))?;
            out.push((name.clone(), Box::new(reader)));
            break;
        }
        let (schema, batches) =
            read_stream(&mut r).map_err(|e| format!("cannot read input `{name}`: {e}"))?;
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

/// What the host read from the child's stdout.
#[derive(Default)]
struct Answer {
    ports: Vec<(String, SchemaRef, Vec<RecordBatch>)>,
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
        let step = match tag[0] {
            b'P' => read_len_payload(r)
                .map_err(|e| e.to_string())
                .and_then(|name| {
                    let name = String::from_utf8_lossy(&name).into_owned();
                    read_stream(r).map(|(s, b)| a.ports.push((name, s, b)))
                }),
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
    let name = component.qualified_name();
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
            Ok(())
        });
    }
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
        use std::os::fd::AsRawFd;
        for fd in [stdin.as_raw_fd(), stdout.as_raw_fd()] {
            // SAFETY: a valid descriptor we own; failure just keeps the default size.
            unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20) };
        }
    }
    let writer = std::thread::Builder::new()
        .name("segflow-isolate-in".into())
        .spawn(move || -> Result<(), String> {
            let mut w = BufWriter::with_capacity(1 << 20, stdin);
            write_frame(&mut w, b'R', &request).map_err(|e| e.to_string())?;
            // Let the child load its library while the first input batch is produced.
            w.flush().map_err(|e| e.to_string())?;
            for (_, mut reader) in inputs {
                write_stream(&mut w, reader.as_mut())?;
            }
            w.flush().map_err(|e| e.to_string())
        });
    // The reader says when the answer is complete: the child exits right after, so the
    // wait below need not poll slowly.
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

    // Wait for the child, killing it at the deadline or on cancel.
    let start = Instant::now();
    let mut timed_out = false;
    let mut cancelled = false;
    let mut answer_in = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                break child.wait().map_err(|_| e);
            }
        }
        let over = limits
            .timeout
            .as_ref()
            .is_some_and(|(t, _)| start.elapsed() >= *t);
        if over || opts.cancel.load(Ordering::Relaxed) {
            timed_out = over;
            cancelled = !over;
            let _ = child.kill();
            break child.wait();
        }
        if answer_in {
            std::thread::sleep(Duration::from_millis(1));
        } else {
            use std::sync::mpsc::RecvTimeoutError;
            match answer_done.recv_timeout(Duration::from_millis(20)) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => answer_in = true,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    };
    let answer = match reader {
        Ok(h) => h.join().unwrap_or_default(),
        Err(_) => Answer::default(),
    };
    let tail = match errors {
        Ok(h) => h.join().unwrap_or_default(),
        Err(_) => StderrTail::default(),
    };
    let wrote = match writer {
        Ok(h) => h.join().unwrap_or(Ok(())),
        Err(e) => Err(e.to_string()),
    };
    let status = status.map_err(|e| {
        call_error(format!(
            "lost track of its isolated process while running `{name}`: {e}"
        ))
    })?;

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
    if answer.done && status.success() {
        return Ok(IsolatedOutput {
            ports: answer
                .ports
                .into_iter()
                .map(|(n, schema, batches)| {
                    (
                        n,
                        Box::new(RecordBatchIterator::new(
                            batches.into_iter().map(Ok),
                            schema,
                        )) as Box<dyn RecordBatchReader + Send>,
                    )
                })
                .collect(),
            facts: answer.facts,
        });
    }
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
        let inputs = read_inputs(cur, &["a".into(), "b".into()]).unwrap();
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
}
