//! The C side of the SDK: library descriptors, entry-point shims and stream export.
//! Used by [`export_plugin!`](crate::export_plugin); not meant to be called directly.

pub use segflow_abi as abi;

use crate::log::RouteGuard;
use crate::{parse_config, Component, Context, Error, Named, Result, Table};
use arrow::array::{RecordBatch, RecordBatchReader};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ffi::FFI_ArrowSchema;
use arrow::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

pub(crate) fn cstr_to_string(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the host passes NUL-terminated strings valid for the call.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).expect("NUL bytes were replaced")
}

thread_local! {
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Depth of entry-point calls on this thread; their panics become step errors.
    static IN_ENTRY_POINT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// `catch_unwind` for an entry point: while `f` runs, the panic hook keeps quiet
/// (the panic becomes the step's error message instead).
fn guarded<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    IN_ENTRY_POINT.with(|d| d.set(d.get() + 1));
    let out = catch_unwind(AssertUnwindSafe(f));
    IN_ENTRY_POINT.with(|d| d.set(d.get() - 1));
    out
}

/// Remember where a panic happened so the step error can say so. Installed once.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let loc = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            PANIC_LOCATION.with(|p| *p.borrow_mut() = loc);
            // Panics outside an entry point or the step's pool threads are not the
            // plugin's to report (e.g. a test linking the plugin as a library).
            let in_plugin = IN_ENTRY_POINT.with(|d| d.get() > 0)
                || std::thread::current()
                    .name()
                    .is_some_and(|n| n.starts_with("segflow-plugin-"));
            if !in_plugin || std::env::var_os("SEGFLOW_PLUGIN_PANIC_TRACE").is_some() {
                previous(info);
            }
        }));
    });
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let msg = if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    };
    match PANIC_LOCATION.with(|p| p.borrow_mut().take()) {
        Some(loc) => format!("{msg} (at {loc})"),
        None => msg,
    }
}

/// Owns the descriptor and every string it points to, for the life of the library.
pub struct LibraryHolder {
    descriptor: abi::SegflowLibrary,
    _strings: Vec<CString>,
    _components: Vec<abi::SegflowComponent>,
}

// SAFETY: the holder is immutable after construction; the raw pointers only point into
// memory it owns.
unsafe impl Send for LibraryHolder {}
unsafe impl Sync for LibraryHolder {}

/// One component's descriptor with the strings it points to.
pub struct ComponentHolder {
    strings: Vec<CString>,
    component: abi::SegflowComponent,
}

impl LibraryHolder {
    pub fn new(name: &str, version: &str, components: Vec<ComponentHolder>) -> Self {
        install_panic_hook();
        let mut strings = vec![cstring(name), cstring(version), cstring(crate::SDK_VERSION)];
        let mut descs = Vec::with_capacity(components.len());
        for c in components {
            strings.extend(c.strings);
            descs.push(c.component);
        }
        let descriptor = abi::SegflowLibrary {
            abi_version: abi::ABI_VERSION,
            struct_size: std::mem::size_of::<abi::SegflowLibrary>() as u32,
            name: strings[0].as_ptr(),
            version: strings[1].as_ptr(),
            sdk_version: strings[2].as_ptr(),
            n_components: descs.len(),
            components: descs.as_ptr(),
        };
        LibraryHolder {
            descriptor,
            _strings: strings,
            _components: descs,
        }
    }

    pub fn descriptor(&self) -> *const abi::SegflowLibrary {
        &self.descriptor
    }
}

/// Build the descriptor of component `C`.
pub fn describe<C: Component>(library_version: &str) -> ComponentHolder {
    let schema = schemars::schema_for!(C);
    let description = C::DESCRIPTION
        .map(str::to_string)
        .or_else(|| {
            schema
                .get("description")
                .and_then(|d| d.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let schema_json = serde_json::to_string(&schema).expect("a JSON Schema serialises");
    let ports_json = C::ports().to_json().to_string();
    let strings = vec![
        cstring(C::NAME),
        cstring(C::VERSION.unwrap_or(library_version)),
        cstring(&description),
        cstring(&schema_json),
        cstring(&ports_json),
    ];
    let component = abi::SegflowComponent {
        struct_size: std::mem::size_of::<abi::SegflowComponent>() as u32,
        stage: C::STAGE.to_abi(),
        name: strings[0].as_ptr(),
        version: strings[1].as_ptr(),
        description: strings[2].as_ptr(),
        config_schema: strings[3].as_ptr(),
        ports: strings[4].as_ptr(),
        plan: plan_shim::<C>,
        run: run_shim::<C>,
        fingerprint: Some(fingerprint_shim::<C>),
    };
    ComponentHolder { strings, component }
}

fn set_error(host: &abi::SegflowHost, err: &Error) {
    let msg = cstring(err.message());
    let field = err.field().map(cstring);
    // SAFETY: callbacks are valid for the call; the host copies the strings.
    unsafe {
        (host.set_error)(
            host.ctx,
            msg.as_ptr(),
            field.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
        )
    };
}

fn finish(host: &abi::SegflowHost, outcome: std::thread::Result<Result<()>>) -> i32 {
    match outcome {
        Ok(Ok(())) => abi::STATUS_OK,
        Ok(Err(e)) => {
            set_error(host, &e);
            if unsafe { (host.is_cancelled)(host.ctx) } != 0 {
                abi::STATUS_CANCELLED
            } else {
                abi::STATUS_ERROR
            }
        }
        Err(payload) => {
            let msg = format!("the component panicked: {}", panic_message(payload));
            set_error(host, &Error::new(msg));
            abi::STATUS_PANIC
        }
    }
}

/// # Safety
/// Called by the host through the component vtable with valid pointers.
pub unsafe extern "C" fn plan_shim<C: Component>(
    host: *const abi::SegflowHost,
    config_json: *const c_char,
    inputs: *const abi::SegflowSchemaInput,
    n_inputs: usize,
) -> i32 {
    let _route = RouteGuard::set(host);
    let h = &*host;
    let outcome = guarded(|| -> Result<()> {
        let config: C = parse_config(&cstr_to_string(config_json))?;
        let mut named = Vec::with_capacity(n_inputs);
        for i in 0..n_inputs {
            let input = &*inputs.add(i);
            let ffi = &*(input.schema as *const FFI_ArrowSchema);
            let schema = Schema::try_from(ffi)
                .map_err(|e| Error::new(format!("reading input schema: {e}")))?;
            named.push(Named {
                name: cstr_to_string(input.name),
                value: Arc::new(schema),
            });
        }
        let outputs = config.plan(&named)?;
        for out in outputs.0 {
            let mut ffi = FFI_ArrowSchema::try_from(out.value.as_ref())?;
            let port = cstring(&out.name);
            let rc = (h.emit_schema)(
                h.ctx,
                port.as_ptr(),
                &mut ffi as *mut FFI_ArrowSchema as *mut abi::ArrowSchema,
            );
            if rc != 0 {
                return Err(Error::new(format!(
                    "the host refused output port `{}`",
                    out.name
                )));
            }
        }
        Ok(())
    });
    finish(h, outcome)
}

/// # Safety
/// Called by the host through the component vtable with valid pointers.
pub unsafe extern "C" fn fingerprint_shim<C: Component>(
    host: *const abi::SegflowHost,
    config_json: *const c_char,
) -> i32 {
    let _route = RouteGuard::set(host);
    let h = &*host;
    let outcome = guarded(|| -> Result<()> {
        let config: C = parse_config(&cstr_to_string(config_json))?;
        let answer = match config.fingerprint()? {
            crate::Fingerprint::Pure => serde_json::json!({"pure": true}),
            crate::Fingerprint::Source(v) => serde_json::json!({"source": v}),
            crate::Fingerprint::Never(why) => serde_json::json!({"never": why}),
        };
        if let serde_json::Value::Object(m) = answer {
            emit_facts(host, &m);
        }
        Ok(())
    });
    finish(h, outcome)
}

/// # Safety
/// Called by the host through the component vtable with valid pointers.
pub unsafe extern "C" fn run_shim<C: Component>(
    host: *const abi::SegflowHost,
    config_json: *const c_char,
    inputs: *const abi::SegflowStreamInput,
    n_inputs: usize,
) -> i32 {
    let _route = RouteGuard::set(host);
    let h = &*host;
    let outcome = guarded(|| -> Result<()> {
        let config: C = parse_config(&cstr_to_string(config_json))?;
        let mut named = Vec::with_capacity(n_inputs);
        for i in 0..n_inputs {
            let input = &*inputs.add(i);
            let reader =
                RecordBatchStreamReader::from_raw(input.stream as *mut FFI_ArrowArrayStream)
                    .map_err(|e| Error::new(format!("reading input stream: {e}")))?;
            named.push(Named {
                name: cstr_to_string(input.name),
                value: Table::from_reader(Box::new(reader)),
            });
        }
        let mut ctx = Context::new(host);
        let outputs = config.run(named, &mut ctx)?;
        emit_facts(ctx.host_ptr(), &ctx.take_facts());
        for out in outputs.0 {
            let reader = GuardedReader {
                inner: out.value.into_reader(),
                host: host as usize,
            };
            let mut ffi = FFI_ArrowArrayStream::new(Box::new(reader));
            let port = cstring(&out.name);
            let rc = (h.emit_stream)(
                h.ctx,
                port.as_ptr(),
                &mut ffi as *mut FFI_ArrowArrayStream as *mut abi::ArrowArrayStream,
            );
            if rc != 0 {
                return Err(Error::new(format!(
                    "the host refused output port `{}`",
                    out.name
                )));
            }
        }
        Ok(())
    });
    finish(h, outcome)
}

/// What a nested call handed back.
#[derive(Default)]
struct NestedSink {
    ports: Vec<Named<Table>>,
    error: Option<String>,
}

unsafe extern "C" fn nested_emit(
    sink: *mut std::ffi::c_void,
    port: *const c_char,
    stream: *mut abi::ArrowArrayStream,
) {
    let sink = &mut *(sink as *mut NestedSink);
    if stream.is_null() {
        return;
    }
    let ffi = std::ptr::replace(
        stream as *mut FFI_ArrowArrayStream,
        FFI_ArrowArrayStream::empty(),
    );
    match RecordBatchStreamReader::try_new(ffi) {
        Ok(r) => sink.ports.push(Named {
            name: cstr_to_string(port),
            value: Table::from_reader(Box::new(r)),
        }),
        Err(e) => {
            sink.error.get_or_insert(format!(
                "output port `{}` of the nested call is not a readable stream: {e}",
                cstr_to_string(port)
            ));
        }
    }
}

unsafe extern "C" fn nested_fail(sink: *mut std::ffi::c_void, message: *const c_char) {
    let sink = &mut *(sink as *mut NestedSink);
    sink.error = Some(cstr_to_string(message));
}

pub(crate) fn run_component(
    host: &abi::SegflowHost,
    name: &str,
    config: &serde_json::Value,
    inputs: Vec<Named<Table>>,
) -> Result<Vec<Named<Table>>> {
    let call = match (host.has_run_services(), host.run_component) {
        (true, Some(f)) => f,
        _ => {
            return Err(Error::new(format!(
                "this segflow host cannot run another component (`{name}`) from inside a step; upgrade segflow"
            )))
        }
    };
    let names: Vec<CString> = inputs.iter().map(|i| cstring(&i.name)).collect();
    let mut streams: Vec<FFI_ArrowArrayStream> = inputs
        .into_iter()
        .map(|i| FFI_ArrowArrayStream::new(i.value.into_reader()))
        .collect();
    let raw: Vec<abi::SegflowStreamInput> = names
        .iter()
        .zip(streams.iter_mut())
        .map(|(n, s)| abi::SegflowStreamInput {
            name: n.as_ptr(),
            stream: s as *mut FFI_ArrowArrayStream as *mut abi::ArrowArrayStream,
        })
        .collect();
    let cname = cstring(name);
    let cconfig = cstring(&config.to_string());
    let mut sink = NestedSink::default();
    // SAFETY: every pointer lives until the call returns; the host moves the streams
    // out (whatever it leaves is released when `streams` drops).
    let status = unsafe {
        call(
            host.ctx,
            cname.as_ptr(),
            cconfig.as_ptr(),
            raw.as_ptr(),
            raw.len(),
            &mut sink as *mut NestedSink as *mut std::ffi::c_void,
            nested_emit,
            nested_fail,
        )
    };
    drop(streams);
    match (status, sink.error) {
        (0, None) => Ok(sink.ports),
        (_, Some(e)) => Err(Error::new(e)),
        (s, None) => Err(Error::new(format!(
            "running `{name}` failed (status {s}) without saying why"
        ))),
    }
}

pub(crate) fn emit_facts(
    host: *const abi::SegflowHost,
    facts: &serde_json::Map<String, serde_json::Value>,
) {
    if facts.is_empty() {
        return;
    }
    let json = cstring(&serde_json::Value::Object(facts.clone()).to_string());
    // SAFETY: the host keeps its struct alive for the step's life.
    unsafe { ((*host).emit_facts)((*host).ctx, json.as_ptr()) };
}

pub(crate) fn report_progress(host: *const abi::SegflowHost, done: u64, total: u64, unit: &str) {
    let unit = cstring(unit);
    // SAFETY: as above.
    unsafe { ((*host).progress)((*host).ctx, done, total, unit.as_ptr()) };
}

/// A handle a lazily produced stream can keep to report facts and progress after `run`
/// has returned (the host keeps accepting them until the step's outputs are drained).
#[derive(Clone, Copy)]
pub struct HostHandle(usize);

impl HostHandle {
    pub fn fact(&self, key: &str, value: impl serde::Serialize) {
        let mut m = serde_json::Map::new();
        m.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
        );
        emit_facts(self.0 as *const abi::SegflowHost, &m);
    }
    pub fn progress(&self, done: u64, total: u64, unit: &str) {
        report_progress(self.0 as *const abi::SegflowHost, done, total, unit);
    }
}

impl Context {
    /// A handle for lazy streams (see [`HostHandle`]).
    pub fn handle(&self) -> HostHandle {
        HostHandle(self.host_ptr() as usize)
    }
}

/// Wraps an exported stream so a panic while producing a batch becomes a stream error,
/// and the plugin's logs during `next()` reach the host.
struct GuardedReader {
    inner: Box<dyn RecordBatchReader + Send>,
    host: usize,
}

impl Iterator for GuardedReader {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        let _route = RouteGuard::set(self.host as *const abi::SegflowHost);
        match guarded(|| self.inner.next()) {
            Ok(item) => item,
            Err(payload) => Some(Err(ArrowError::ExternalError(
                format!("the component panicked: {}", panic_message(payload)).into(),
            ))),
        }
    }
}

impl RecordBatchReader for GuardedReader {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

/// Export the plugin entry point `segflow_plugin_v1` for a list of components.
///
/// ```ignore
/// segflow_sdk::export_plugin!(name: "acme", components: [Lookalike, KMedoids]);
/// ```
/// The library version defaults to the crate's `CARGO_PKG_VERSION`; pass
/// `version: "1.2.3"` to set it.
#[macro_export]
macro_rules! export_plugin {
    (name: $name:expr, components: [$($c:ty),* $(,)?] $(,)?) => {
        $crate::export_plugin!(name: $name, version: env!("CARGO_PKG_VERSION"), components: [$($c),*]);
    };
    (name: $name:expr, version: $version:expr, components: [$($c:ty),* $(,)?] $(,)?) => {
        /// The segflow plugin entry point (ABI v1).
        #[unsafe(no_mangle)]
        pub extern "C" fn segflow_plugin_v1() -> *const $crate::ffi::abi::SegflowLibrary {
            static LIBRARY: ::std::sync::OnceLock<::std::option::Option<$crate::ffi::LibraryHolder>> =
                ::std::sync::OnceLock::new();
            LIBRARY
                .get_or_init(|| {
                    ::std::panic::catch_unwind(|| {
                        $crate::ffi::LibraryHolder::new(
                            $name,
                            $version,
                            ::std::vec![$($crate::ffi::describe::<$c>($version)),*],
                        )
                    })
                    .ok()
                })
                .as_ref()
                .map_or(::std::ptr::null(), |l| l.descriptor())
        }
    };
}
