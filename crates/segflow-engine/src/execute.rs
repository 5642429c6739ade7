//! Running a [`Plan`]: topological layers in order, the steps of a layer in parallel on
//! rayon, each with its share of the thread budget.
//!
//! Tables stay Arrow end to end and are never copied: a port read by exactly one step is
//! handed to it as a live stream (so a collector's rows flow through the next step in
//! bounded memory) while a tee writes it to Parquet; a port read by several steps is
//! materialised once and shared by reference; a port nobody reads is streamed straight
//! to its file. A failing step marks its dependants skipped; independent branches finish.

use crate::cache::{Cache, EntryMeta, KeyMaterial, Lookup, PortEntry};
use crate::host::{
    hex, CallOptions, FactsHandle, Fingerprint, Observer, Redactor, RegistryServices,
};
use crate::spec::{Isolation, Stage};
use crate::store::{BackgroundWriter, PortDigest, PortWriter, RunDir};
use crate::validate::Plan;
use arrow::array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How to run a plan.
pub struct ExecOptions {
    /// Total threads for the run (`--threads`).
    pub threads: usize,
    /// Where outputs go; `None` runs without writing (benchmarks of the engine alone).
    pub run_dir: Option<RunDir>,
    pub observer: Arc<dyn Observer>,
    pub max_log_level: u32,
    pub cancel: Arc<AtomicBool>,
    /// The step cache (`None`: `--no-cache`, or no run directory).
    pub cache: Option<Cache>,
    /// Steps to run even when the cache holds their result (`--refresh STEP`).
    pub refresh: BTreeSet<String>,
    /// The finished steps of an earlier run to re-use (`--resume RUN_DIR`).
    pub resume: Option<Resume>,
}

impl ExecOptions {
    pub fn new(threads: usize, run_dir: Option<RunDir>, observer: Arc<dyn Observer>) -> Self {
        ExecOptions {
            threads,
            run_dir,
            observer,
            max_log_level: segflow_abi::LOG_INFO,
            cancel: Arc::new(AtomicBool::new(false)),
            cache: None,
            refresh: BTreeSet::new(),
            resume: None,
        }
    }
}

/// The finished steps of an earlier run, as its manifest recorded them.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub dir: PathBuf,
    /// Per step id: its key and its ports.
    pub steps: BTreeMap<String, (String, BTreeMap<String, PortEntry>)>,
}

/// What the step cache did for a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheUse {
    /// Outputs taken from the cache.
    Hit,
    /// Outputs taken from the run given to `--resume`.
    Reused,
    /// Ran, and its result was stored.
    Stored,
    /// Ran; not stored (see the note).
    Ran,
    /// No cache for this run (`--no-cache`).
    Off,
}

impl CacheUse {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheUse::Hit => "hit",
            CacheUse::Reused => "reused",
            CacheUse::Stored => "stored",
            CacheUse::Ran => "ran",
            CacheUse::Off => "off",
        }
    }
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
    Failed,
    Skipped,
}

impl StepStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }
}

/// What happened to one step, as recorded in the manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    pub id: String,
    pub stage: Stage,
    pub status: StepStatus,
    pub error: Option<String>,
    pub threads: usize,
    pub duration_ms: f64,
    pub write_ms: f64,
    pub rows_in: u64,
    pub rows: BTreeMap<String, u64>,
    pub facts: serde_json::Map<String, serde_json::Value>,
    /// When the step's `run` call started and returned (lazy outputs may stream later).
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub returned_at: Option<chrono::DateTime<chrono::Utc>>,
    pub cache: CacheUse,
    /// Why a step that ran was not looked up or not stored.
    pub cache_note: Option<String>,
    /// The step's cache key (also when it was not cached), when its inputs were known.
    pub cache_key: Option<String>,
    /// Per written port: rows, sha256 and size of its file.
    pub outputs: BTreeMap<String, PortEntry>,
    /// For a step that ran in a child process: what moving its tables cost.
    pub transfer: Option<crate::isolate::Transfer>,
}

/// What happened to a run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub steps: Vec<StepReport>,
    pub succeeded: bool,
}

type Timestamp = chrono::DateTime<chrono::Utc>;

#[derive(Default)]
struct StepState {
    status: Mutex<Option<(StepStatus, Option<String>)>>,
    run_ns: AtomicU64,
    stream_ns: AtomicU64,
    write_ns: AtomicU64,
    rows: Mutex<BTreeMap<String, u64>>,
    facts: Mutex<Option<Facts>>,
    threads: AtomicU64,
    times: Mutex<(Option<Timestamp>, Option<Timestamp>)>,
    /// sha256 and size of every port file written so far.
    digests: Mutex<BTreeMap<String, PortDigest>>,
    fingerprint: Mutex<Option<Fingerprint>>,
    key: Mutex<Option<String>>,
    cache: Mutex<Option<(CacheUse, Option<String>)>>,
    store_done: AtomicBool,
    transfer: Mutex<Option<crate::isolate::Transfer>>,
}

/// A step's facts: live from an in-process call (they may keep arriving while its
/// streams are read), or final from an isolated one.
enum Facts {
    Live(FactsHandle),
    Fixed(serde_json::Map<String, serde_json::Value>),
}

impl Facts {
    fn get(&self) -> serde_json::Map<String, serde_json::Value> {
        match self {
            Facts::Live(f) => f.get(),
            Facts::Fixed(m) => m.clone(),
        }
    }
}

impl StepState {
    fn fail(&self, message: String) {
        let mut st = self.status.lock().unwrap();
        // The first failure is the cause; keep it.
        if !matches!(&*st, Some((StepStatus::Failed, _))) {
            *st = Some((StepStatus::Failed, Some(message)));
        }
    }
    fn status(&self) -> Option<StepStatus> {
        self.status.lock().unwrap().as_ref().map(|s| s.0.clone())
    }
}

thread_local! {
    /// Nanoseconds this thread has spent inside tees, to attribute time to the step
    /// that did the work rather than to the step that pulled the stream.
    static IN_TEE_NS: Cell<u64> = const { Cell::new(0) };
}

/// Counts, times and writes a step's output port as it is read.
struct Tee {
    inner: Box<dyn RecordBatchReader + Send>,
    schema: SchemaRef,
    writer: Option<BackgroundWriter>,
    rows: u64,
    port: String,
    state: Arc<StepState>,
    done: bool,
    cancel: Arc<AtomicBool>,
}

impl Tee {
    fn finish(&mut self) {
        self.done = true;
        self.state
            .rows
            .lock()
            .unwrap()
            .insert(self.port.clone(), self.rows);
        if let Some(w) = self.writer.take() {
            let t = Instant::now();
            match w.finish() {
                Ok(d) => {
                    self.state
                        .digests
                        .lock()
                        .unwrap()
                        .insert(self.port.clone(), d);
                }
                Err(e) => self.state.fail(e),
            }
            self.state
                .write_ns
                .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }
}

impl Iterator for Tee {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let before = IN_TEE_NS.with(Cell::get);
        let t0 = Instant::now();
        let item = self.inner.next();
        let t1 = Instant::now();
        let nested = IN_TEE_NS.with(Cell::get) - before;
        let own = ((t1 - t0).as_nanos() as u64).saturating_sub(nested);
        self.state.stream_ns.fetch_add(own, Ordering::Relaxed);
        let out = match item {
            Some(Ok(batch)) => {
                self.rows += batch.num_rows() as u64;
                if let Some(w) = &mut self.writer {
                    if let Err(e) = w.write(&batch) {
                        self.writer = None;
                        self.state.fail(e.clone());
                        self.done = true;
                        return Some(Err(ArrowError::IoError(
                            e.clone(),
                            std::io::Error::other(e),
                        )));
                    }
                }
                Some(Ok(batch))
            }
            Some(Err(e)) => {
                self.writer = None;
                self.done = true;
                self.state.fail(format!(
                    "output port `{}` failed while streaming: {e}",
                    self.port
                ));
                Some(Err(e))
            }
            None => {
                self.finish();
                None
            }
        };
        let t2 = Instant::now();
        self.state
            .write_ns
            .fetch_add((t2 - t1).as_nanos() as u64, Ordering::Relaxed);
        IN_TEE_NS.with(|c| c.set(before + (t2 - t0).as_nanos() as u64));
        out
    }
}

impl RecordBatchReader for Tee {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        // A consumer that stopped early still leaves a complete output file behind.
        while !self.done && !self.cancel.load(Ordering::Relaxed) {
            if self.next().is_none() {
                break;
            }
        }
    }
}

/// An input read on another thread (an isolated step's writer): adds the time upstream
/// tees spent on that thread to `ns`.
struct Attributed {
    inner: Box<dyn RecordBatchReader + Send>,
    ns: Arc<AtomicU64>,
}

impl Iterator for Attributed {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        let before = IN_TEE_NS.with(Cell::get);
        let item = self.inner.next();
        self.ns.fetch_add(
            IN_TEE_NS.with(Cell::get).saturating_sub(before),
            Ordering::Relaxed,
        );
        item
    }
}

impl RecordBatchReader for Attributed {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

enum Slot {
    /// Read by exactly one step: handed over as a live stream.
    Stream(Mutex<Option<Box<dyn RecordBatchReader + Send>>>),
    /// Read by several steps: materialised once, shared by reference.
    Shared(SchemaRef, Arc<Vec<RecordBatch>>),
    /// Taken from the cache or an earlier run: each step that reads it opens the file
    /// (steps that are cached themselves never do).
    File(PathBuf, SchemaRef),
}

/// Replace secrets in every string of a JSON value.
fn redact_json(v: serde_json::Value, redact: &Redactor) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(redact.apply(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| redact_json(x, redact)).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, x)| (redact.apply(&k), redact_json(x, redact)))
                .collect(),
        ),
        other => other,
    }
}

/// Canonical JSON (keys sorted) for hashing.
fn canonical(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String((*k).clone()),
                        canonical(&m[*k])
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// sha256 of a step's effective config (secrets included only through the hash).
pub fn config_hash(config: &serde_json::Value) -> String {
    hex(&Sha256::digest(canonical(config).as_bytes()))
}

fn budgets(threads: usize, width: usize) -> Vec<usize> {
    let base = (threads / width.max(1)).max(1);
    let extra = if threads > width { threads % width } else { 0 };
    (0..width).map(|i| base + usize::from(i < extra)).collect()
}

/// Run `plan`. Outputs go to `opts.run_dir` when set.
pub fn execute(plan: &Plan, opts: &ExecOptions) -> RunReport {
    let n = plan.steps.len();
    let states: Vec<Arc<StepState>> = (0..n).map(|_| Arc::new(StepState::default())).collect();
    let slots: Vec<Mutex<BTreeMap<String, Slot>>> =
        (0..n).map(|_| Mutex::new(BTreeMap::new())).collect();
    let consumers = plan.consumers();
    let redact = Arc::new(Redactor::new(plan.spec.secrets()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .thread_name(|i| format!("segflow-step-{i}"))
        .build()
        .expect("building the step thread pool");

    for layer in &plan.layers {
        let budget = budgets(opts.threads.max(1), layer.len());
        pool.install(|| {
            layer
                .par_iter()
                .zip(budget.par_iter())
                .for_each(|(&i, &threads)| {
                    run_step(plan, i, threads, opts, &states, &slots, &consumers, &redact);
                })
        });
        store_finished(plan, opts, &states, &redact);
    }
    // Dropping the remaining streams drains them to their files.
    drop(slots);
    store_finished(plan, opts, &states, &redact);

    let mut reports = Vec::with_capacity(n);
    for (i, step) in plan.steps.iter().enumerate() {
        let st = &states[i];
        let (status, error) = st
            .status
            .lock()
            .unwrap()
            .clone()
            .unwrap_or((StepStatus::Skipped, Some("not run".into())));
        let facts = st
            .facts
            .lock()
            .unwrap()
            .take()
            .map(|f| f.get())
            .unwrap_or_default();
        let facts = match redact_json(serde_json::Value::Object(facts), &redact) {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("an object stays an object"),
        };
        let (started_at, returned_at) = *st.times.lock().unwrap();
        let rows = st.rows.lock().unwrap().clone();
        let rows_in = step
            .inputs
            .iter()
            .map(|inp| {
                states[inp.producer]
                    .rows
                    .lock()
                    .unwrap()
                    .get(&inp.port)
                    .copied()
                    .unwrap_or(0)
            })
            .sum();
        let ns = st.run_ns.load(Ordering::Relaxed) + st.stream_ns.load(Ordering::Relaxed);
        let (cache, cache_note) = st.cache.lock().unwrap().clone().unwrap_or((
            if opts.cache.is_some() {
                CacheUse::Ran
            } else {
                CacheUse::Off
            },
            None,
        ));
        let key = st
            .key
            .lock()
            .unwrap()
            .clone()
            .or_else(|| step_key(plan, i, &states));
        let digests = st.digests.lock().unwrap().clone();
        let outputs = digests
            .into_iter()
            .map(|(port, d)| {
                let rows = rows.get(&port).copied().unwrap_or(0);
                (
                    port,
                    PortEntry {
                        rows,
                        sha256: d.sha256,
                        bytes: d.bytes,
                    },
                )
            })
            .collect();
        reports.push(StepReport {
            id: step.spec.id.clone(),
            stage: step.spec.stage,
            status,
            error: error.map(|e| redact.apply(&e)),
            threads: st.threads.load(Ordering::Relaxed) as usize,
            duration_ms: ns as f64 / 1e6,
            write_ms: st.write_ns.load(Ordering::Relaxed) as f64 / 1e6,
            rows_in,
            rows,
            facts,
            started_at,
            returned_at,
            cache,
            cache_note,
            cache_key: key,
            outputs,
            transfer: *st.transfer.lock().unwrap(),
        });
    }
    if let Some(dir) = &opts.run_dir {
        for r in &reports {
            if r.status != StepStatus::Skipped {
                let path = Path::new("steps").join(&r.id).join("facts.json");
                if let Err(e) = dir.write_json(&path, &serde_json::Value::Object(r.facts.clone())) {
                    tracing::error!(step = r.id, "cannot write facts.json: {e}");
                }
            }
        }
    }
    let succeeded = reports.iter().all(|r| r.status == StepStatus::Succeeded);
    RunReport {
        steps: reports,
        succeeded,
    }
}

#[allow(clippy::too_many_arguments)]
fn run_step(
    plan: &Plan,
    i: usize,
    threads: usize,
    opts: &ExecOptions,
    states: &[Arc<StepState>],
    slots: &[Mutex<BTreeMap<String, Slot>>],
    consumers: &std::collections::HashMap<(usize, String), usize>,
    redact: &Arc<Redactor>,
) {
    let step = &plan.steps[i];
    let id = &step.spec.id;
    let state = &states[i];
    let span = tracing::info_span!("step", component = %step.component.qualified_name());
    let _enter = span.enter();

    // Skip when an upstream step failed or was skipped.
    for inp in &step.inputs {
        if let Some(s @ (StepStatus::Failed | StepStatus::Skipped)) = states[inp.producer].status()
        {
            let why = format!(
                "upstream step `{}` {}",
                plan.steps[inp.producer].spec.id,
                if s == StepStatus::Failed {
                    "failed"
                } else {
                    "was skipped"
                }
            );
            *state.status.lock().unwrap() = Some((StepStatus::Skipped, Some(why.clone())));
            opts.observer.step_finished(id, "skipped", Some(&why));
            return;
        }
    }
    if opts.cancel.load(Ordering::Relaxed) {
        *state.status.lock().unwrap() = Some((StepStatus::Skipped, Some("cancelled".into())));
        return;
    }
    state.threads.store(threads as u64, Ordering::Relaxed);
    opts.observer.step_started(id, threads);

    let mut call = CallOptions::new(id);
    call.threads = threads as u32;
    call.max_log_level = opts.max_log_level;
    call.observer = opts.observer.clone();
    call.cancel = opts.cancel.clone();
    call.redact = redact.clone();

    // The key is worked out even without a cache: the manifest records it, so that a
    // later `--resume` can tell which finished steps still apply.
    if opts.run_dir.is_some() {
        let t0 = Instant::now();
        let fingerprint = step.component.fingerprint(&call, &step.spec.with);
        *state.fingerprint.lock().unwrap() = Some(fingerprint);
        let key = step_key(plan, i, states);
        *state.key.lock().unwrap() = key.clone();
        if let Some(key) = key {
            let reused = reuse(plan, i, &key, opts, states, slots, consumers);
            state
                .run_ns
                .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
            if let Some(how) = reused {
                *state.status.lock().unwrap() = Some((StepStatus::Succeeded, None));
                opts.observer.step_finished(id, how, None);
                return;
            }
        } else if opts.cache.is_some() {
            *state.cache.lock().unwrap() = Some((
                CacheUse::Ran,
                Some("not looked up: an input was still streaming from a step that ran".into()),
            ));
        }
    }

    let mut inputs: Vec<(String, Box<dyn RecordBatchReader + Send>)> = Vec::new();
    for inp in &step.inputs {
        let map = slots[inp.producer].lock().unwrap();
        let reader: Option<Box<dyn RecordBatchReader + Send>> = match map.get(&inp.port) {
            Some(Slot::Stream(m)) => m.lock().unwrap().take(),
            Some(Slot::Shared(schema, batches)) => Some(Box::new(RecordBatchIterator::new(
                batches.as_ref().clone().into_iter().map(Ok),
                schema.clone(),
            ))),
            Some(Slot::File(path, schema)) => match open_port_file(path, schema) {
                Ok(r) => Some(r),
                Err(e) => {
                    let msg = format!(
                        "input `{}`: cannot read `{}`: {e}",
                        inp.name,
                        path.display()
                    );
                    state.fail(msg.clone());
                    opts.observer.step_finished(id, "failed", Some(&msg));
                    return;
                }
            },
            None => None,
        };
        match reader {
            Some(r) => inputs.push((inp.name.clone(), r)),
            None => {
                let msg = format!(
                    "input `{}` is not available: step `{}` did not produce port `{}`",
                    inp.name, plan.steps[inp.producer].spec.id, inp.port
                );
                state.fail(msg.clone());
                opts.observer.step_finished(id, "failed", Some(&msg));
                return;
            }
        }
    }

    call.services = Some(Arc::new(RegistryServices {
        registry: plan.registry.clone(),
    }));
    if step.spec.stage == Stage::Evaluate {
        call.run_info = Some(run_info(plan, states, redact).to_string());
    }

    let before = IN_TEE_NS.with(Cell::get);
    let t0 = Instant::now();
    state.times.lock().unwrap().0 = Some(chrono::Utc::now());
    // Time upstream tees spend producing an isolated step's inputs on its writer thread
    // belongs to the upstream steps, as it does when a step reads in-process.
    let upstream_ns = Arc::new(AtomicU64::new(0));
    let result = if step.spec.isolation == Isolation::Process {
        let inputs = inputs
            .into_iter()
            .map(|(n, r)| {
                let r: Box<dyn RecordBatchReader + Send> = Box::new(Attributed {
                    inner: r,
                    ns: upstream_ns.clone(),
                });
                (n, r)
            })
            .collect();
        let limits = crate::isolate::Limits {
            timeout: step
                .spec
                .timeout
                .as_ref()
                .map(|l| (l.value, l.text.clone())),
            memory: step
                .spec
                .memory_limit
                .as_ref()
                .map(|l| (l.value, l.text.clone())),
        };
        let libraries = plan
            .registry
            .libraries
            .iter()
            .map(|l| l.path.clone())
            .collect();
        crate::isolate::run(
            &step.component,
            libraries,
            &call,
            &step.spec.with,
            inputs,
            &limits,
        )
        .map(|o| {
            *state.transfer.lock().unwrap() = Some(o.transfer);
            (o.ports, Facts::Fixed(o.facts))
        })
    } else {
        step.component
            .run(&call, &step.spec.with, inputs)
            .map(|o| (o.ports, Facts::Live(o.facts)))
    };
    state.times.lock().unwrap().1 = Some(chrono::Utc::now());
    let elapsed = t0.elapsed().as_nanos() as u64;
    let nested = IN_TEE_NS.with(Cell::get) - before + upstream_ns.load(Ordering::Relaxed);
    state
        .run_ns
        .fetch_add(elapsed.saturating_sub(nested), Ordering::Relaxed);

    let output = match result {
        Ok(o) => o,
        Err(e) => {
            // An upstream stream that broke is the cause; say so.
            let upstream = step.inputs.iter().find_map(|inp| {
                let st = states[inp.producer].status.lock().unwrap();
                match &*st {
                    Some((StepStatus::Failed, m)) => Some(format!(
                        "upstream step `{}` failed: {}",
                        plan.steps[inp.producer].spec.id,
                        m.clone().unwrap_or_default()
                    )),
                    _ => None,
                }
            });
            let msg = match upstream {
                Some(u) => u,
                None => e.message.clone(),
            };
            let msg = redact.apply(&msg);
            state.fail(msg.clone());
            opts.observer.step_finished(id, "failed", Some(&msg));
            return;
        }
    };
    let (ports, facts) = output;
    *state.facts.lock().unwrap() = Some(facts);

    let mut emitted: BTreeMap<String, Box<dyn RecordBatchReader + Send>> =
        ports.into_iter().collect();
    let mut my_slots = BTreeMap::new();
    let mut failure: Option<String> = None;
    for (port, planned) in &step.outputs {
        let Some(reader) = emitted.remove(port) else {
            failure.get_or_insert(format!(
                "the component planned output port `{port}` but did not produce it"
            ));
            continue;
        };
        let schema = reader.schema();
        if !same_columns(&schema, planned) {
            failure.get_or_insert(format!(
                "output port `{port}` has columns [{}], but the component's plan promised [{}]; this is a bug in `{}`",
                describe(&schema),
                describe(planned),
                step.component.qualified_name()
            ));
            continue;
        }
        let writer =
            match &opts.run_dir {
                Some(_) if !step.spec.persist => None,
                Some(dir) => match dir.step_dir(id).map_err(|e| e.to_string()).and_then(|d| {
                    PortWriter::create(d.join(format!("{port}.parquet")), schema.clone())
                }) {
                    Ok(w) => Some(BackgroundWriter::spawn(w)),
                    Err(e) => {
                        failure.get_or_insert(e);
                        continue;
                    }
                },
                None => None,
            };
        let tee = Tee {
            inner: reader,
            schema: schema.clone(),
            writer,
            rows: 0,
            port: port.clone(),
            state: state.clone(),
            done: false,
            cancel: opts.cancel.clone(),
        };
        let readers = consumers.get(&(i, port.clone())).copied().unwrap_or(0);
        if is_report_port(step, port, &schema) {
            let mut tee = tee;
            let mut batches = Vec::new();
            for b in tee.by_ref() {
                match b {
                    Ok(b) => batches.push(b),
                    Err(_) => break,
                }
            }
            if let Some(dir) = &opts.run_dir {
                if let Err(e) = write_report(dir, id, &batches) {
                    failure.get_or_insert(e);
                }
            }
            if readers > 0 {
                my_slots.insert(port.clone(), Slot::Shared(schema, Arc::new(batches)));
            }
            continue;
        }
        match readers {
            1 => {
                my_slots.insert(port.clone(), Slot::Stream(Mutex::new(Some(Box::new(tee)))));
            }
            0 => {
                let mut tee = tee;
                for b in tee.by_ref() {
                    if b.is_err() {
                        break;
                    }
                }
            }
            _ => {
                let mut tee = tee;
                let mut batches = Vec::new();
                for b in tee.by_ref() {
                    match b {
                        Ok(b) => batches.push(b),
                        Err(_) => break,
                    }
                }
                my_slots.insert(port.clone(), Slot::Shared(schema, Arc::new(batches)));
            }
        }
    }
    if let Some(f) = failure {
        state.fail(f);
    }
    *slots[i].lock().unwrap() = my_slots;
    let mut st = state.status.lock().unwrap();
    if st.is_none() {
        *st = Some((StepStatus::Succeeded, None));
    }
    let (status, msg) = st.clone().expect("set above");
    drop(st);
    opts.observer
        .step_finished(id, status.as_str(), msg.as_deref());
}

/// The content identity of input `inp` of a step: the sha256 of the port's file, or,
/// for a port that is never written (`persist: false`), its producer's key and the port
/// — only when that key pins the producer's output down (it is not `cache: false` and
/// its fingerprint is not "never": a database read without a fingerprint query says
/// nothing about the data it returned).
fn input_identity(
    plan: &Plan,
    states: &[Arc<StepState>],
    inp: &crate::validate::PlannedInput,
) -> Option<String> {
    let st = &states[inp.producer];
    if let Some(d) = st.digests.lock().unwrap().get(&inp.port) {
        return Some(format!("sha256:{}", d.sha256));
    }
    let producer = &plan.steps[inp.producer].spec;
    let pinned = !matches!(
        &*st.fingerprint.lock().unwrap(),
        Some(Fingerprint::Never(_)) | None
    );
    if !producer.persist && producer.cache && pinned {
        let key = st.key.lock().unwrap().clone()?;
        return Some(format!("step:{key}/{}", inp.port));
    }
    None
}

/// The cache key of step `i`, when every input's identity is known.
fn step_key(plan: &Plan, i: usize, states: &[Arc<StepState>]) -> Option<String> {
    let step = &plan.steps[i];
    let fingerprint = states[i].fingerprint.lock().unwrap().clone()?;
    let inputs = step
        .inputs
        .iter()
        .map(|inp| input_identity(plan, states, inp).map(|h| (inp.name.clone(), h)))
        .collect::<Option<Vec<_>>>()?;
    let c = &step.component;
    // Evaluate steps may run any loaded component (`run_component`).
    let libraries = if step.spec.stage == Stage::Evaluate {
        let mut l: Vec<String> = plan
            .registry
            .libraries
            .iter()
            .map(|l| format!("{}:{}", l.name, l.sha256()))
            .collect();
        l.sort();
        l
    } else {
        Vec::new()
    };
    let material = KeyMaterial {
        format: crate::cache::FORMAT,
        segflow_version: env!("CARGO_PKG_VERSION").to_string(),
        abi_version: segflow_abi::ABI_VERSION,
        component: c.qualified_name(),
        component_version: c.version.clone(),
        library_sha256: c.library.sha256().to_string(),
        config_hash: config_hash(&step.spec.with),
        fingerprint: match fingerprint {
            Fingerprint::Pure => None,
            Fingerprint::Source(v) => Some(v),
            Fingerprint::Never(_) => Some(serde_json::json!({"never": true})),
        },
        inputs,
        libraries,
    };
    Some(material.key())
}

/// Why step `i`'s result may not be stored (or looked up), if it may not.
fn not_cacheable(plan: &Plan, i: usize, states: &[Arc<StepState>]) -> Option<String> {
    let step = &plan.steps[i];
    if !step.spec.cache {
        return Some("`cache: false`".into());
    }
    if !step.spec.persist {
        return Some("`persist: false`: its outputs are never written to disk".into());
    }
    match &*states[i].fingerprint.lock().unwrap() {
        Some(Fingerprint::Never(why)) => Some(why.clone()),
        _ => None,
    }
}

/// Try to finish step `i` from `--resume`'s run or the cache. Returns the status word
/// for the progress output when it did.
fn reuse(
    plan: &Plan,
    i: usize,
    key: &str,
    opts: &ExecOptions,
    states: &[Arc<StepState>],
    slots: &[Mutex<BTreeMap<String, Slot>>],
    consumers: &std::collections::HashMap<(usize, String), usize>,
) -> Option<&'static str> {
    let step = &plan.steps[i];
    let id = &step.spec.id;
    let state = &states[i];
    if let Some(resume) = &opts.resume {
        if let Some((k, ports)) = resume.steps.get(id) {
            if k == key {
                let dir = resume.dir.join("steps").join(id);
                let files: Option<BTreeMap<String, (PathBuf, PortEntry)>> = ports
                    .iter()
                    .map(|(p, e)| {
                        let path = dir.join(format!("{p}.parquet"));
                        let d = crate::cache::file_digest(&path).ok()?;
                        (d.sha256 == e.sha256 && d.bytes == e.bytes)
                            .then(|| (p.clone(), (path, e.clone())))
                    })
                    .collect();
                let facts = std::fs::read(dir.join("facts.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                match (files, facts) {
                    (Some(files), Some(serde_json::Value::Object(facts))) => {
                        match adopt(plan, i, files, facts, opts, state, slots, consumers) {
                            Ok(()) => {
                                *state.cache.lock().unwrap() = Some((
                                    CacheUse::Reused,
                                    Some(format!("from {}", resume.dir.display())),
                                ));
                                return Some("reused");
                            }
                            Err(e) => tracing::warn!(step = id, "cannot re-use the earlier run's outputs: {e}"),
                        }
                    }
                    _ => tracing::warn!(
                        step = id,
                        "the earlier run's outputs changed since it finished; running the step again"
                    ),
                }
            }
        }
    }
    let cache = opts.cache.as_ref()?;
    if let Some(why) = not_cacheable(plan, i, states) {
        *state.cache.lock().unwrap() = Some((CacheUse::Ran, Some(format!("not cached: {why}"))));
        return None;
    }
    if opts.refresh.contains(id) {
        *state.cache.lock().unwrap() = Some((CacheUse::Ran, Some("--refresh".into())));
        return None;
    }
    match cache.lookup(key) {
        Lookup::Hit(hit) => {
            let files = hit
                .meta
                .ports
                .iter()
                .map(|(p, e)| (p.clone(), (hit.port_path(p), e.clone())))
                .collect();
            match adopt(
                plan,
                i,
                files,
                hit.facts.clone(),
                opts,
                state,
                slots,
                consumers,
            ) {
                Ok(()) => {
                    *state.cache.lock().unwrap() = Some((CacheUse::Hit, None));
                    Some("cached")
                }
                Err(e) => {
                    tracing::warn!(step = id, "cannot use the cached result: {e}");
                    *state.cache.lock().unwrap() =
                        Some((CacheUse::Ran, Some(format!("cached result unusable: {e}"))));
                    None
                }
            }
        }
        Lookup::Miss => None,
        Lookup::Damaged(why) => {
            tracing::warn!(
                step = id,
                "the cached result was damaged ({why}); removed it and running the step"
            );
            *state.cache.lock().unwrap() = Some((
                CacheUse::Ran,
                Some(format!("cached result was damaged and removed: {why}")),
            ));
            None
        }
    }
}

/// Finish step `i` with earlier outputs: link each port file into the run directory and
/// hand readers of it to the steps that read it.
#[allow(clippy::too_many_arguments)]
fn adopt(
    plan: &Plan,
    i: usize,
    files: BTreeMap<String, (PathBuf, PortEntry)>,
    facts: serde_json::Map<String, serde_json::Value>,
    opts: &ExecOptions,
    state: &Arc<StepState>,
    slots: &[Mutex<BTreeMap<String, Slot>>],
    consumers: &std::collections::HashMap<(usize, String), usize>,
) -> Result<(), String> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let step = &plan.steps[i];
    let dir = opts
        .run_dir
        .as_ref()
        .ok_or("no run directory")?
        .step_dir(&step.spec.id)
        .map_err(|e| e.to_string())?;
    // Check everything before touching the run directory.
    for (port, planned) in &step.outputs {
        let (src, _) = files
            .get(port)
            .ok_or_else(|| format!("it has no port `{port}`"))?;
        let f = std::fs::File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| e.to_string())?;
        if !same_columns(b.schema(), planned) {
            return Err(format!("port `{port}` has other columns than planned"));
        }
    }
    let mut my_slots = BTreeMap::new();
    for (port, planned) in &step.outputs {
        let (src, entry) = &files[port];
        let dest = dir.join(format!("{port}.parquet"));
        crate::cache::link_or_copy(src, &dest)
            .map_err(|e| format!("cannot place {}: {e}", dest.display()))?;
        state.rows.lock().unwrap().insert(port.clone(), entry.rows);
        state.digests.lock().unwrap().insert(
            port.clone(),
            PortDigest {
                sha256: entry.sha256.clone(),
                bytes: entry.bytes,
            },
        );
        if consumers.contains_key(&(i, port.clone())) {
            my_slots.insert(port.clone(), Slot::File(dest, planned.clone()));
        }
    }
    *state.facts.lock().unwrap() = Some(Facts::Fixed(facts));
    *slots[i].lock().unwrap() = my_slots;
    Ok(())
}

/// A reader of a port file written earlier, with the planned schema.
fn open_port_file(
    path: &Path,
    schema: &SchemaRef,
) -> Result<Box<dyn RecordBatchReader + Send>, String> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.with_batch_size(1 << 16).build())
        .map_err(|e| e.to_string())?;
    Ok(Box::new(ParquetPort {
        inner: reader,
        schema: schema.clone(),
    }))
}

/// A port read back from its Parquet file, presented with the planned schema (the file
/// may carry other metadata).
struct ParquetPort {
    inner: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    schema: SchemaRef,
}

impl Iterator for ParquetPort {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|r| {
            r.and_then(|b| RecordBatch::try_new(self.schema.clone(), b.columns().to_vec()))
        })
    }
}

impl RecordBatchReader for ParquetPort {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Store every step that ran, succeeded and whose ports are all written, once.
fn store_finished(plan: &Plan, opts: &ExecOptions, states: &[Arc<StepState>], redact: &Redactor) {
    let (Some(cache), Some(run_dir)) = (&opts.cache, &opts.run_dir) else {
        return;
    };
    for (i, step) in plan.steps.iter().enumerate() {
        let st = &states[i];
        if st.store_done.load(Ordering::Relaxed) || st.status() != Some(StepStatus::Succeeded) {
            continue;
        }
        if matches!(
            st.cache.lock().unwrap().as_ref().map(|c| c.0),
            Some(CacheUse::Hit | CacheUse::Reused)
        ) {
            st.store_done.store(true, Ordering::Relaxed);
            continue;
        }
        if let Some(why) = not_cacheable(plan, i, states) {
            st.store_done.store(true, Ordering::Relaxed);
            *st.cache.lock().unwrap() = Some((CacheUse::Ran, Some(format!("not cached: {why}"))));
            continue;
        }
        let digests = st.digests.lock().unwrap().clone();
        if step.outputs.iter().any(|(p, _)| !digests.contains_key(p)) {
            continue; // a port is still being read
        }
        let key = {
            let mut k = st.key.lock().unwrap();
            if k.is_none() {
                *k = step_key(plan, i, states);
            }
            k.clone()
        };
        let Some(key) = key else {
            continue;
        };
        st.store_done.store(true, Ordering::Relaxed);
        let rows = st.rows.lock().unwrap().clone();
        let facts = st
            .facts
            .lock()
            .unwrap()
            .as_ref()
            .map(|f| f.get())
            .unwrap_or_default();
        let facts = match redact_json(serde_json::Value::Object(facts), redact) {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("an object stays an object"),
        };
        let dir = run_dir.root().join("steps").join(&step.spec.id);
        let ports: BTreeMap<String, PortEntry> = step
            .outputs
            .iter()
            .map(|(p, _)| {
                let d = &digests[p];
                (
                    p.clone(),
                    PortEntry {
                        rows: rows.get(p).copied().unwrap_or(0),
                        sha256: d.sha256.clone(),
                        bytes: d.bytes,
                    },
                )
            })
            .collect();
        let files: Vec<(String, PathBuf)> = ports
            .keys()
            .map(|p| (p.clone(), dir.join(format!("{p}.parquet"))))
            .collect();
        let c = &step.component;
        let meta = EntryMeta {
            format: crate::cache::FORMAT,
            key: key.clone(),
            segflow_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            pipeline: plan.spec.name.clone(),
            step: step.spec.id.clone(),
            component: c.qualified_name(),
            component_version: c.version.clone(),
            library_sha256: c.library.sha256().to_string(),
            config_hash: config_hash(&step.spec.with),
            ports,
            facts_sha256: String::new(),
        };
        if opts.refresh.contains(&step.spec.id) {
            cache.remove(&key);
        }
        // Keep why it ran (not looked up, damaged entry, --refresh) next to "stored".
        let why_ran = st.cache.lock().unwrap().as_ref().and_then(|c| c.1.clone());
        let outcome = match cache.store(&meta, &files, &facts) {
            Ok(true) => (CacheUse::Stored, why_ran),
            Ok(false) => (
                CacheUse::Stored,
                Some("another run stored the same result first".into()),
            ),
            Err(e) => {
                tracing::warn!(
                    step = step.spec.id,
                    "cannot store the step's result in the cache: {e}"
                );
                (CacheUse::Ran, Some(format!("not stored: {e}")))
            }
        };
        *st.cache.lock().unwrap() = Some(outcome);
    }
}

/// The run so far, for components that report on it (the ABI's `run_info`): the
/// pipeline, and per step its stage, component, inputs, status, time, rows per port
/// and facts (steps that have not finished have a null status).
fn run_info(plan: &Plan, states: &[Arc<StepState>], redact: &Redactor) -> serde_json::Value {
    let steps: Vec<serde_json::Value> = plan
        .steps
        .iter()
        .zip(states)
        .map(|(step, st)| {
            let status = st.status.lock().unwrap().clone();
            let facts = st
                .facts
                .lock()
                .unwrap()
                .as_ref()
                .map(|f| serde_json::Value::Object(f.get()))
                .unwrap_or(serde_json::Value::Null);
            let ns = st.run_ns.load(Ordering::Relaxed) + st.stream_ns.load(Ordering::Relaxed);
            serde_json::json!({
                "id": step.spec.id,
                "stage": step.spec.stage,
                "component": step.component.qualified_name(),
                "needs": step.inputs.iter().map(|i| serde_json::json!({
                    "name": i.name,
                    "step": plan.steps[i.producer].spec.id,
                    "port": i.port,
                })).collect::<Vec<_>>(),
                "status": status.as_ref().map(|s| s.0.as_str()),
                "cached": matches!(st.cache.lock().unwrap().as_ref().map(|c| c.0), Some(CacheUse::Hit | CacheUse::Reused)),
                "error": status.and_then(|s| s.1),
                "duration_ms": ns as f64 / 1e6,
                "rows": *st.rows.lock().unwrap(),
                "facts": facts,
            })
        })
        .collect();
    redact_json(
        serde_json::json!({
            "pipeline": plan.spec.name,
            "description": plan.spec.description,
            "steps": steps,
        }),
        redact,
    )
}

/// An evaluate step's `report` port with a text `html` column: the run's HTML report.
fn is_report_port(step: &crate::validate::PlannedStep, port: &str, schema: &SchemaRef) -> bool {
    step.spec.stage == Stage::Evaluate
        && port == "report"
        && schema
            .field_with_name("html")
            .is_ok_and(|f| f.data_type() == &arrow::datatypes::DataType::Utf8)
}

/// Write the `html` of a report port to `report.html` at the top of the run directory
/// (`report-<step>.html` when another step of the run already wrote one).
fn write_report(dir: &RunDir, step: &str, batches: &[RecordBatch]) -> Result<(), String> {
    use arrow::array::{Array, AsArray};
    let mut html = String::new();
    for b in batches {
        if let Some(col) = b.column_by_name("html") {
            let col = col.as_string::<i32>();
            for i in 0..col.len() {
                if !col.is_null(i) {
                    html.push_str(col.value(i));
                }
            }
        }
    }
    let mut path = dir.root().join("report.html");
    if path.exists() {
        path = dir.root().join(format!("report-{step}.html"));
    }
    crate::store::write_atomic(&path, html.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn same_columns(a: &SchemaRef, b: &SchemaRef) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields().iter())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

fn describe(s: &SchemaRef) -> String {
    s.fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_split_threads_deterministically() {
        assert_eq!(budgets(2, 1), vec![2]);
        assert_eq!(budgets(2, 3), vec![1, 1, 1]);
        assert_eq!(budgets(5, 2), vec![3, 2]);
    }

    #[test]
    fn config_hash_ignores_key_order() {
        let a = serde_json::json!({"k": 3, "cols": ["a", "b"], "x": {"p": 1, "q": 2}});
        let b = serde_json::json!({"x": {"q": 2, "p": 1}, "cols": ["a", "b"], "k": 3});
        assert_eq!(config_hash(&a), config_hash(&b));
        assert_ne!(config_hash(&a), config_hash(&serde_json::json!({"k": 4})));
    }
}
