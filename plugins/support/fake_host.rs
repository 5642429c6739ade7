//! A minimal in-process segflow host for the plugin crates' tests.
//!
//! It drives a component through the real ABI v1 entry points (`plan`, `run`, and the
//! exported Arrow C streams), exactly as the engine does, and records what the plugin
//! hands back: output schemas, drained output tables, facts, progress and errors.
//! Included by path from each plugin crate's `tests/`; not part of any library.
#![allow(dead_code)]

use segflow_sdk::arrow::array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use segflow_sdk::arrow::datatypes::{Schema, SchemaRef};
use segflow_sdk::arrow::ffi::FFI_ArrowSchema;
use segflow_sdk::arrow::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use segflow_sdk::ffi::abi;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::Mutex;

/// What one `plan` or `run` call produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `abi::STATUS_*`.
    pub status: i32,
    /// Message and config field of a failed call.
    pub error: Option<(String, Option<String>)>,
    /// `plan`: the output schemas by port.
    pub schemas: Vec<(String, Schema)>,
    /// `run`: the drained output tables by port, or the stream error of a port.
    pub tables: Vec<(String, Result<Vec<RecordBatch>, String>)>,
    /// Merged facts.
    pub facts: serde_json::Map<String, serde_json::Value>,
    /// Number of progress reports.
    pub progress_calls: usize,
}

impl Outcome {
    /// The batches of `port`; panics (in the test) when the port is missing or failed.
    pub fn table(&self, port: &str) -> &[RecordBatch] {
        match self.tables.iter().find(|(p, _)| p == port) {
            Some((_, Ok(b))) => b,
            Some((_, Err(e))) => panic!("port {port} failed: {e}"),
            None => panic!(
                "no port {port}; have {:?}",
                self.tables.iter().map(|t| &t.0).collect::<Vec<_>>()
            ),
        }
    }
    /// Total rows of `port`.
    pub fn rows(&self, port: &str) -> usize {
        self.table(port).iter().map(RecordBatch::num_rows).sum()
    }
    pub fn schema(&self, port: &str) -> &Schema {
        &self
            .schemas
            .iter()
            .find(|(p, _)| p == port)
            .unwrap_or_else(|| panic!("no schema for port {port}"))
            .1
    }
    pub fn fact(&self, key: &str) -> &serde_json::Value {
        self.facts.get(key).unwrap_or_else(|| {
            panic!(
                "no fact {key}; have {:?}",
                self.facts.keys().collect::<Vec<_>>()
            )
        })
    }
    pub fn error_message(&self) -> String {
        self.error.as_ref().map(|e| e.0.clone()).unwrap_or_default()
    }
    pub fn error_field(&self) -> Option<String> {
        self.error.as_ref().and_then(|e| e.1.clone())
    }
}

#[derive(Default)]
struct State {
    error: Option<(String, Option<String>)>,
    schemas: Vec<(String, Schema)>,
    streams: Vec<(String, FFI_ArrowArrayStream)>,
    facts: serde_json::Map<String, serde_json::Value>,
    progress_calls: usize,
    /// Libraries whose components `run_component` may call.
    nested: Vec<abi::EntryFn>,
    run_info: Option<CString>,
}

/// What the fake host offers beyond the call itself: libraries for nested runs and a
/// `run_info` document.
#[derive(Default, Clone)]
pub struct Services {
    pub nested: Vec<abi::EntryFn>,
    pub run_info: Option<serde_json::Value>,
}

fn text(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

fn state(ctx: *mut c_void) -> std::sync::MutexGuard<'static, State> {
    let m = unsafe { &*(ctx as *const Mutex<State>) };
    m.lock().unwrap_or_else(|e| e.into_inner())
}

unsafe extern "C" fn log(_: *mut c_void, _: u32, _: *const c_char, _: *const c_char) {}
unsafe extern "C" fn progress(ctx: *mut c_void, _: u64, _: u64, _: *const c_char) {
    state(ctx).progress_calls += 1;
}
unsafe extern "C" fn is_cancelled(_: *mut c_void) -> u32 {
    0
}
unsafe extern "C" fn set_error(ctx: *mut c_void, message: *const c_char, field: *const c_char) {
    let field = (!field.is_null()).then(|| text(field));
    state(ctx).error = Some((text(message), field));
}
unsafe extern "C" fn emit_schema(
    ctx: *mut c_void,
    port: *const c_char,
    schema: *mut abi::ArrowSchema,
) -> i32 {
    let ffi = unsafe { FFI_ArrowSchema::from_raw(schema as *mut FFI_ArrowSchema) };
    match Schema::try_from(&ffi) {
        Ok(s) => {
            state(ctx).schemas.push((text(port), s));
            0
        }
        Err(_) => 1,
    }
}
unsafe extern "C" fn emit_stream(
    ctx: *mut c_void,
    port: *const c_char,
    stream: *mut abi::ArrowArrayStream,
) -> i32 {
    let s = unsafe { FFI_ArrowArrayStream::from_raw(stream as *mut FFI_ArrowArrayStream) };
    state(ctx).streams.push((text(port), s));
    0
}
unsafe extern "C" fn emit_facts(ctx: *mut c_void, json: *const c_char) {
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_str(&text(json)) {
        state(ctx).facts.extend(m);
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn run_component(
    ctx: *mut c_void,
    name: *const c_char,
    config: *const c_char,
    inputs: *const abi::SegflowStreamInput,
    n_inputs: usize,
    sink: *mut c_void,
    emit: abi::EmitPortFn,
    fail: abi::FailFn,
) -> i32 {
    let (nested, threads) = {
        let st = state(ctx);
        (st.nested.clone(), 1)
    };
    let name = text(name);
    let found = nested.iter().find_map(|e| {
        let lib = unsafe { &*e() };
        let comps = unsafe { std::slice::from_raw_parts(lib.components, lib.n_components) };
        comps.iter().find(|c| text(c.name) == name)
    });
    let Some(comp) = found else {
        let m = CString::new(format!("no component {name}")).unwrap();
        unsafe { fail(sink, m.as_ptr()) };
        return 1;
    };
    let inner = Mutex::new(State {
        nested: nested.clone(),
        ..Default::default()
    });
    let step = CString::new("nested").unwrap();
    let h = host(&inner, threads, &step);
    let status = unsafe { (comp.run)(&h, config, inputs, n_inputs) };
    let mut st = inner.into_inner().unwrap_or_else(|e| e.into_inner());
    if status != abi::STATUS_OK {
        let m = CString::new(st.error.map(|e| e.0).unwrap_or_default()).unwrap_or_default();
        unsafe { fail(sink, m.as_ptr()) };
        return 1;
    }
    for (port, mut stream) in std::mem::take(&mut st.streams) {
        let p = CString::new(port).unwrap();
        unsafe {
            emit(
                sink,
                p.as_ptr(),
                &mut stream as *mut FFI_ArrowArrayStream as *mut abi::ArrowArrayStream,
            )
        };
    }
    0
}

fn host(ctx: &Mutex<State>, threads: u32, step: &CStr) -> abi::SegflowHost {
    let (nested, run_info) = {
        let st = ctx.lock().unwrap_or_else(|e| e.into_inner());
        (
            !st.nested.is_empty(),
            st.run_info
                .as_ref()
                .map_or(std::ptr::null(), |c| c.as_ptr()),
        )
    };
    abi::SegflowHost {
        struct_size: std::mem::size_of::<abi::SegflowHost>() as u32,
        threads,
        max_log_level: abi::LOG_INFO,
        step_id: step.as_ptr(),
        ctx: ctx as *const Mutex<State> as *mut c_void,
        log,
        progress,
        is_cancelled,
        set_error,
        emit_schema,
        emit_stream,
        emit_facts,
        run_info,
        run_component: nested.then_some(run_component as abi::RunComponentFn),
    }
}

fn component(entry: abi::EntryFn, name: &str) -> &'static abi::SegflowComponent {
    let lib = unsafe { &*entry() };
    assert_eq!(lib.abi_version, abi::ABI_VERSION);
    let comps = unsafe { std::slice::from_raw_parts(lib.components, lib.n_components) };
    comps
        .iter()
        .find(|c| text(c.name) == name)
        .unwrap_or_else(|| panic!("no component {name}"))
}

/// The JSON Schema of a component's config.
pub fn config_schema(entry: abi::EntryFn, name: &str) -> serde_json::Value {
    serde_json::from_str(&text(component(entry, name).config_schema)).expect("schema json")
}

/// The names of the library's components.
pub fn component_names(entry: abi::EntryFn) -> Vec<String> {
    let lib = unsafe { &*entry() };
    let comps = unsafe { std::slice::from_raw_parts(lib.components, lib.n_components) };
    comps.iter().map(|c| text(c.name)).collect()
}

/// Call `plan` of component `name` with `config` and input schemas.
pub fn plan(
    entry: abi::EntryFn,
    name: &str,
    config: serde_json::Value,
    inputs: &[(&str, SchemaRef)],
) -> Outcome {
    let comp = component(entry, name);
    let ctx = Mutex::new(State::default());
    let step = CString::new("test_step").unwrap();
    let h = host(&ctx, 1, &step);
    let cfg = CString::new(config.to_string()).unwrap();
    let names: Vec<CString> = inputs
        .iter()
        .map(|(n, _)| CString::new(*n).unwrap())
        .collect();
    let schemas: Vec<FFI_ArrowSchema> = inputs
        .iter()
        .map(|(_, s)| FFI_ArrowSchema::try_from(s.as_ref()).unwrap())
        .collect();
    let ffi_inputs: Vec<abi::SegflowSchemaInput> = names
        .iter()
        .zip(&schemas)
        .map(|(n, s)| abi::SegflowSchemaInput {
            name: n.as_ptr(),
            schema: s as *const FFI_ArrowSchema as *const abi::ArrowSchema,
        })
        .collect();
    let status = unsafe { (comp.plan)(&h, cfg.as_ptr(), ffi_inputs.as_ptr(), ffi_inputs.len()) };
    let st = ctx.into_inner().unwrap_or_else(|e| e.into_inner());
    Outcome {
        status,
        error: st.error,
        schemas: st.schemas,
        ..Default::default()
    }
}

/// Call `run` of component `name` with `threads`, `config` and input tables, then drain
/// every output stream (facts emitted while draining are captured too).
pub fn run(
    entry: abi::EntryFn,
    name: &str,
    config: serde_json::Value,
    threads: u32,
    inputs: Vec<(&str, SchemaRef, Vec<RecordBatch>)>,
) -> Outcome {
    run_with(entry, name, config, threads, inputs, Services::default())
}

/// [`run`] with nested-run libraries and a `run_info` document.
pub fn run_with(
    entry: abi::EntryFn,
    name: &str,
    config: serde_json::Value,
    threads: u32,
    inputs: Vec<(&str, SchemaRef, Vec<RecordBatch>)>,
    services: Services,
) -> Outcome {
    let comp = component(entry, name);
    let ctx = Mutex::new(State {
        nested: services.nested,
        run_info: services
            .run_info
            .map(|v| CString::new(v.to_string()).unwrap()),
        ..Default::default()
    });
    let step = CString::new("test_step").unwrap();
    let h = host(&ctx, threads, &step);
    let cfg = CString::new(config.to_string()).unwrap();
    let names: Vec<CString> = inputs
        .iter()
        .map(|(n, _, _)| CString::new(*n).unwrap())
        .collect();
    let mut streams: Vec<FFI_ArrowArrayStream> = inputs
        .into_iter()
        .map(|(_, schema, batches)| {
            let reader: Box<dyn RecordBatchReader + Send> = Box::new(RecordBatchIterator::new(
                batches.into_iter().map(Ok),
                schema,
            ));
            FFI_ArrowArrayStream::new(reader)
        })
        .collect();
    let ffi_inputs: Vec<abi::SegflowStreamInput> = names
        .iter()
        .zip(streams.iter_mut())
        .map(|(n, s)| abi::SegflowStreamInput {
            name: n.as_ptr(),
            stream: s as *mut FFI_ArrowArrayStream as *mut abi::ArrowArrayStream,
        })
        .collect();
    let status = unsafe { (comp.run)(&h, cfg.as_ptr(), ffi_inputs.as_ptr(), ffi_inputs.len()) };
    let outputs = std::mem::take(&mut state(h.ctx).streams);
    let mut tables = Vec::new();
    for (port, stream) in outputs {
        let drained = match RecordBatchStreamReader::try_new(stream) {
            Ok(reader) => reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        tables.push((port, drained));
    }
    drop(streams);
    let st = ctx.into_inner().unwrap_or_else(|e| e.into_inner());
    Outcome {
        status,
        error: st.error,
        tables,
        facts: st.facts,
        progress_calls: st.progress_calls,
        ..Default::default()
    }
}

/// The whole table of `port` as one batch.
pub fn table(o: &Outcome, port: &str) -> RecordBatch {
    let b = o.table(port);
    segflow_sdk::arrow::compute::concat_batches(&b[0].schema(), b).unwrap()
}

/// A numeric column as `f64` (null as `None`).
pub fn col(b: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    use segflow_sdk::arrow::array::{Array, AsArray};
    let c = segflow_sdk::arrow::compute::cast(
        b.column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}")),
        &segflow_sdk::arrow::datatypes::DataType::Float64,
    )
    .unwrap();
    let c = c.as_primitive::<segflow_sdk::arrow::datatypes::Float64Type>();
    (0..c.len())
        .map(|i| (!c.is_null(i)).then(|| c.value(i)))
        .collect()
}

/// A text column (null as `None`).
pub fn strings(b: &RecordBatch, name: &str) -> Vec<Option<String>> {
    use segflow_sdk::arrow::array::{Array, AsArray};
    let c = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let c = c.as_string::<i32>();
    (0..c.len())
        .map(|i| (!c.is_null(i)).then(|| c.value(i).to_string()))
        .collect()
}

/// Equal to 1e-12, nulls in the same places.
pub fn assert_close(got: &[Option<f64>], want: &[Option<f64>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        match (g, w) {
            (Some(g), Some(w)) => assert!((g - w).abs() < 1e-12, "{what}: {got:?} vs {want:?}"),
            (None, None) => {}
            _ => panic!("{what}: {got:?} vs {want:?}"),
        }
    }
}
