//! The plugin host: finding plugin libraries, loading them over ABI v1, and calling
//! their components' `plan` and `run` across the C boundary.
//!
//! Libraries are never unloaded (a component's streams and callbacks may outlive any
//! single call, and unloading Rust cdylibs is unsound in general). The library's sha256
//! is recorded for the manifest and for pinning.

use crate::spec::Stage;
use arrow::array::{RecordBatch, RecordBatchReader};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ffi::FFI_ArrowSchema;
use arrow::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use segflow_abi as abi;
use sha2::{Digest, Sha256};
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// File extension of shared libraries on this platform.
pub const LIB_EXTENSION: &str = std::env::consts::DLL_EXTENSION;

/// A loaded plugin library.
#[derive(Debug)]
pub struct Library {
    pub name: String,
    pub version: String,
    pub sdk_version: String,
    pub path: PathBuf,
    /// sha256 of the file, computed on first use (only libraries a run uses need it).
    sha256: std::sync::OnceLock<String>,
}

impl Library {
    /// sha256 of the library file as loaded (hex). Computed once, on first use.
    pub fn sha256(&self) -> &str {
        self.sha256.get_or_init(|| match std::fs::read(&self.path) {
            Ok(bytes) => hex(&Sha256::digest(&bytes)),
            Err(e) => format!("unreadable: {e}"),
        })
    }
}

/// What a component declares about its ports.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PortsDecl {
    pub inputs: InputsDecl,
    pub outputs: Vec<OutputDecl>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InputsDecl {
    pub min: usize,
    pub max: Option<usize>,
    #[serde(default)]
    pub doc: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OutputDecl {
    pub name: String,
    #[serde(default)]
    pub doc: String,
}

/// A component of a loaded library.
#[derive(Debug)]
pub struct Component {
    pub library: Arc<Library>,
    pub name: String,
    pub stage: Stage,
    pub version: String,
    pub description: String,
    pub config_schema: serde_json::Value,
    pub ports: PortsDecl,
    plan_fn: abi::PlanFn,
    run_fn: abi::RunFn,
    fingerprint_fn: Option<abi::FingerprintFn>,
}

/// What a step's result depends on besides its config and inputs (the ABI's
/// `fingerprint`, or the host's default for components that predate it).
#[derive(Debug, Clone, PartialEq)]
pub enum Fingerprint {
    Pure,
    Source(serde_json::Value),
    Never(String),
}

impl Component {
    /// `library/component`.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.library.name, self.name)
    }
}

/// Why a library was not loaded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refusal {
    pub path: PathBuf,
    pub reason: String,
    /// True when the file is simply not a segflow plugin (no entry symbol).
    pub not_a_plugin: bool,
}

/// Where plugin libraries are looked for, in order.
#[derive(Debug, Clone, Default)]
pub struct SearchPath {
    /// Directories scanned for libraries.
    pub dirs: Vec<PathBuf>,
    /// Library files named explicitly: a failure to load one is an error.
    pub files: Vec<PathBuf>,
    /// Everything added with [`SearchPath::add`], to report paths that do not exist.
    explicit: Vec<PathBuf>,
}

impl SearchPath {
    /// The executable's directory, then `SEGFLOW_PLUGIN_PATH`, then `--plugin-path`.
    pub fn standard(cli_dirs: &[PathBuf]) -> SearchPath {
        let mut sp = SearchPath::default();
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|p| p.canonicalize().ok())
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            sp.dirs.push(dir);
        }
        if let Some(v) = std::env::var_os("SEGFLOW_PLUGIN_PATH") {
            for p in std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()) {
                if !p.is_dir() {
                    tracing::warn!(path = %p.display(), "SEGFLOW_PLUGIN_PATH names a directory that does not exist");
                }
                sp.dirs.push(p);
            }
        }
        for p in cli_dirs {
            sp.add(p.clone());
        }
        sp
    }

    /// Directories or files named on the command line or in the pipeline that do not exist.
    pub fn missing(&self) -> Vec<&Path> {
        self.explicit
            .iter()
            .filter(|p| !p.exists())
            .map(PathBuf::as_path)
            .collect()
    }

    /// Add a directory, or a library file.
    pub fn add(&mut self, p: PathBuf) {
        self.explicit.push(p.clone());
        if p.is_file() {
            self.files.push(p);
        } else {
            self.dirs.push(p);
        }
    }
}

/// Every loaded library and component, and the files that were refused.
#[derive(Debug, Default)]
pub struct Registry {
    pub libraries: Vec<Arc<Library>>,
    pub components: Vec<Arc<Component>>,
    pub refused: Vec<Refusal>,
}

/// A library file that was named explicitly and could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct LoadError {
    pub path: PathBuf,
    pub reason: String,
}

impl Registry {
    /// Load everything on `search`. Directory entries that fail to load are recorded in
    /// `refused`; explicitly named files that fail are errors.
    pub fn discover(search: &SearchPath) -> Result<Registry, LoadError> {
        let mut reg = Registry::default();
        let mut seen: Vec<PathBuf> = Vec::new();
        for dir in &search.dirs {
            // A directory other users can write could gain or swap libraries: skip it.
            if let Some(reason) = crate::lock::untrusted_dir(dir) {
                tracing::warn!(path = %dir.display(), "refused plugin directory: {reason}");
                reg.refused.push(Refusal {
                    path: dir.clone(),
                    reason,
                    not_a_plugin: false,
                });
                continue;
            }
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == LIB_EXTENSION) && p.is_file())
                .collect();
            files.sort();
            for f in files {
                let canon = f.canonicalize().unwrap_or(f.clone());
                if seen.contains(&canon) {
                    continue;
                }
                seen.push(canon);
                if let Err(e) = reg.load_file(&f) {
                    let not_a_plugin = e.reason.contains("does not export");
                    if !not_a_plugin {
                        tracing::warn!(path = %f.display(), "refused plugin library: {}", e.reason);
                    }
                    reg.refused.push(Refusal {
                        path: f,
                        reason: e.reason,
                        not_a_plugin,
                    });
                }
            }
        }
        for f in &search.files {
            let canon = f.canonicalize().unwrap_or(f.clone());
            if seen.contains(&canon) {
                continue;
            }
            seen.push(canon);
            reg.load_file(f)?;
        }
        Ok(reg)
    }

    /// Load one library file and register its components.
    pub fn load_file(&mut self, path: &Path) -> Result<Arc<Library>, LoadError> {
        let err = |reason: String| LoadError {
            path: path.to_path_buf(),
            reason,
        };
        if let Err(e) = std::fs::metadata(path) {
            return Err(err(format!(
                "cannot read plugin library `{}`: {e}",
                path.display()
            )));
        }
        // Refuse code other users could have replaced (Unix permission bits).
        if let Some(reason) = crate::lock::untrusted_library(path) {
            return Err(err(reason));
        }
        // SAFETY: loading a library runs its initialisers; plugin libraries are trusted
        // code the user chose to put on the plugin path.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| {
            err(format!(
                "cannot load plugin library `{}`: {}. Is it a shared library built for this platform?",
                path.display(),
                error_chain(&e)
            ))
        })?;
        // Never unloaded: components' streams and callbacks may outlive any one call.
        let lib: &'static libloading::Library = Box::leak(Box::new(lib));
        let entry: libloading::Symbol<abi::EntryFn> = unsafe { lib.get(abi::ENTRY_SYMBOL) }
            .map_err(|_| {
                err(format!(
                    "`{}` does not export the segflow entry point `segflow_plugin_v1`, so it is not a segflow plugin library. Build it with segflow-sdk's `export_plugin!`, or remove it from the plugin path.",
                    path.display()
                ))
            })?;
        // SAFETY: the symbol has the ABI v1 entry signature by contract; the descriptor's
        // first field is read before anything else.
        let desc = unsafe { entry() };
        if desc.is_null() {
            return Err(err(format!(
                "plugin library `{}` returned no descriptor from `segflow_plugin_v1` (it failed while describing itself)",
                path.display()
            )));
        }
        let abi_version = unsafe { std::ptr::read(desc as *const u32) };
        if abi_version != abi::ABI_VERSION {
            return Err(err(format!(
                "plugin library `{}` was built for segflow plugin ABI v{abi_version}, but this segflow speaks ABI v{}. Rebuild the plugin against a segflow-sdk that targets ABI v{}, or use a segflow release that speaks v{abi_version}.",
                path.display(),
                abi::ABI_VERSION,
                abi::ABI_VERSION
            )));
        }
        // Read only what the plugin's descriptor actually holds.
        let size = unsafe { std::ptr::read((desc as *const u32).add(1)) } as usize;
        if size < std::mem::size_of::<abi::SegflowLibrary>() {
            return Err(err(format!(
                "plugin library `{}` has a library descriptor of {size} bytes, smaller than ABI v1's {} bytes; it was built by an incompatible SDK",
                path.display(),
                std::mem::size_of::<abi::SegflowLibrary>()
            )));
        }
        let desc = unsafe { &*desc };
        let library = Arc::new(Library {
            name: cstr(desc.name),
            version: cstr(desc.version),
            sdk_version: cstr(desc.sdk_version),
            path: path.to_path_buf(),
            sha256: std::sync::OnceLock::new(),
        });
        let mut components = Vec::new();
        // The array's stride is the plugin's component size (its first field), which a
        // later minor version may have grown: step by it, and read only the fields this
        // host knows.
        let stride = if desc.n_components > 0 && !desc.components.is_null() {
            unsafe { std::ptr::read(desc.components as *const u32) as usize }
        } else {
            std::mem::size_of::<abi::SegflowComponent>()
        };
        for i in 0..desc.n_components {
            let c = unsafe {
                &*((desc.components as *const u8).add(i * stride) as *const abi::SegflowComponent)
            };
            if c.struct_size as usize != stride {
                return Err(err(format!(
                    "component {i} in `{}` has a descriptor of {} bytes but the first has {stride}; every component descriptor of a library must have the same size",
                    path.display(),
                    c.struct_size
                )));
            }
            if (c.struct_size as usize) < abi::SegflowComponent::V1_0_SIZE {
                return Err(err(format!(
                    "component {i} in `{}` has a descriptor of {} bytes, smaller than ABI v1's {} bytes",
                    path.display(),
                    c.struct_size,
                    abi::SegflowComponent::V1_0_SIZE
                )));
            }
            let name = cstr(c.name);
            let stage = Stage::from_abi(c.stage).ok_or_else(|| {
                err(format!(
                    "component `{name}` in `{}` declares an unknown stage number {}",
                    path.display(),
                    c.stage
                ))
            })?;
            let config_schema: serde_json::Value = serde_json::from_str(&cstr(c.config_schema))
                .map_err(|e| {
                    err(format!(
                        "component `{name}` in `{}` has an invalid config JSON Schema: {e}",
                        path.display()
                    ))
                })?;
            let ports: PortsDecl = serde_json::from_str(&cstr(c.ports)).map_err(|e| {
                err(format!(
                    "component `{name}` in `{}` has an invalid port declaration: {e}",
                    path.display()
                ))
            })?;
            components.push(Arc::new(Component {
                library: library.clone(),
                name,
                stage,
                version: cstr(c.version),
                description: cstr(c.description),
                config_schema,
                ports,
                plan_fn: c.plan,
                run_fn: c.run,
                fingerprint_fn: if c.has_fingerprint() {
                    c.fingerprint
                } else {
                    None
                },
            }));
        }
        self.libraries.push(library.clone());
        self.components.extend(components);
        Ok(library)
    }

    /// Find a component by `name` or `library/name`.
    pub fn resolve(&self, name: &str) -> Resolution {
        let (lib, comp) = match name.split_once('/') {
            Some((l, c)) => (Some(l), c),
            None => (None, name),
        };
        let matches: Vec<&Arc<Component>> = self
            .components
            .iter()
            .filter(|c| c.name == comp && lib.is_none_or(|l| c.library.name == l))
            .collect();
        match matches.len() {
            0 => Resolution::Missing,
            1 => Resolution::Found(matches[0].clone()),
            _ => Resolution::Ambiguous(matches.into_iter().cloned().collect()),
        }
    }
}

pub enum Resolution {
    Found(Arc<Component>),
    Missing,
    Ambiguous(Vec<Arc<Component>>),
}

fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// An error and its sources, joined: libloading keeps the loader's reason in `source()`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A component's error, with the config field it names (if any).
#[derive(Debug, Clone)]
pub struct CallError {
    pub message: String,
    pub field: Option<String>,
    pub panicked: bool,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Receives a step's log events and progress.
pub trait Observer: Send + Sync {
    fn log(&self, step: &str, level: u32, target: &str, message: &str);
    fn progress(&self, step: &str, done: u64, total: u64, unit: &str);
    /// A step started running with `threads` threads.
    fn step_started(&self, _step: &str, _threads: usize) {}
    /// A step's `run` returned (its lazy outputs may still be streaming).
    fn step_finished(&self, _step: &str, _status: &str, _message: Option<&str>) {}
}

/// An observer that forwards plugin logs to `tracing` and ignores progress.
pub struct TracingObserver;

impl Observer for TracingObserver {
    fn log(&self, step: &str, level: u32, target: &str, message: &str) {
        forward_log(step, level, target, message);
    }
    fn progress(&self, _: &str, _: u64, _: u64, _: &str) {}
}

/// Emit a plugin's log event as a host `tracing` event tagged with the step.
pub fn forward_log(step: &str, level: u32, target: &str, message: &str) {
    match level {
        abi::LOG_ERROR => tracing::error!(step, plugin_target = target, "{message}"),
        abi::LOG_WARN => tracing::warn!(step, plugin_target = target, "{message}"),
        abi::LOG_INFO => tracing::info!(step, plugin_target = target, "{message}"),
        abi::LOG_DEBUG => tracing::debug!(step, plugin_target = target, "{message}"),
        _ => tracing::trace!(step, plugin_target = target, "{message}"),
    }
}

/// Host-side state of one plan or run call. It lives as long as any stream the call
/// produced, because lazy streams keep calling back (logs, facts, progress).
struct CallState {
    threads: u32,
    max_log_level: u32,
    step_id: CString,
    step: String,
    observer: Arc<dyn Observer>,
    cancel: Arc<AtomicBool>,
    redact: Arc<Redactor>,
    error: Mutex<Option<CallError>>,
    schemas: Mutex<Vec<(String, Schema)>>,
    streams: Mutex<Vec<(String, FFI_ArrowArrayStream)>>,
    facts: Mutex<serde_json::Map<String, serde_json::Value>>,
    allowed_ports: Vec<String>,
    run_info: Option<CString>,
    services: Option<Arc<dyn HostServices>>,
}

/// Named Arrow streams: a call's inputs or outputs.
pub type Streams = Vec<(String, Box<dyn RecordBatchReader + Send>)>;

/// What the host offers a running component beyond its own call: a description of the
/// run so far, and running another loaded component (ABI `run_info`/`run_component`).
pub trait HostServices: Send + Sync {
    /// Run component `name` (`name` or `library/name`) with `config` on `inputs`, as
    /// part of the calling step; returns its output ports.
    fn run_component(
        &self,
        caller: &CallOptions,
        name: &str,
        config: &serde_json::Value,
        inputs: Streams,
    ) -> Result<Streams, String>;
}

/// [`HostServices`] backed by a registry of loaded components.
pub struct RegistryServices {
    pub registry: Arc<Registry>,
}

impl HostServices for RegistryServices {
    fn run_component(
        &self,
        caller: &CallOptions,
        name: &str,
        config: &serde_json::Value,
        inputs: Streams,
    ) -> Result<Streams, String> {
        let component = match self.registry.resolve(name) {
            Resolution::Found(c) => c,
            Resolution::Missing => {
                return Err(format!(
                    "no loaded library has a component `{name}` (see `segflow plugins list`)"
                ))
            }
            Resolution::Ambiguous(cs) => {
                return Err(format!(
                    "`{name}` is ambiguous: {}; qualify it as `library/{name}`",
                    cs.iter()
                        .map(|c| c.qualified_name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        };
        let mut opts = caller.clone();
        opts.step_id = format!("{}/{}", caller.step_id, component.name);
        opts.run_info = None;
        let out = component
            .run(&opts, config, inputs)
            .map_err(|e| format!("`{}` failed: {}", component.qualified_name(), e.message))?;
        Ok(out.ports)
    }
}

/// The `SegflowHost` struct handed to the plugin plus the state it points at.
pub struct CallHandle {
    host: abi::SegflowHost,
    state: Box<CallState>,
}

// SAFETY: the raw pointers in `host` point into `state`, which is owned by the handle
// and synchronised by mutexes.
unsafe impl Send for CallHandle {}
unsafe impl Sync for CallHandle {}

/// Replaces secrets (values read from the environment) in text shown to users.
#[derive(Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(mut secrets: Vec<String>) -> Self {
        secrets.retain(|s| s.len() >= 3);
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

unsafe extern "C" fn cb_log(
    ctx: *mut c_void,
    level: u32,
    target: *const c_char,
    message: *const c_char,
) {
    let st = &*(ctx as *const CallState);
    let msg = st.redact.apply(&cstr(message));
    st.observer.log(&st.step, level, &cstr(target), &msg);
}

unsafe extern "C" fn cb_progress(ctx: *mut c_void, done: u64, total: u64, unit: *const c_char) {
    let st = &*(ctx as *const CallState);
    st.observer.progress(&st.step, done, total, &cstr(unit));
}

unsafe extern "C" fn cb_is_cancelled(ctx: *mut c_void) -> u32 {
    let st = &*(ctx as *const CallState);
    st.cancel.load(Ordering::Relaxed) as u32
}

unsafe extern "C" fn cb_set_error(ctx: *mut c_void, message: *const c_char, field: *const c_char) {
    let st = &*(ctx as *const CallState);
    let field = (!field.is_null()).then(|| cstr(field));
    *st.error.lock().unwrap() = Some(CallError {
        message: st.redact.apply(&cstr(message)),
        field,
        panicked: false,
    });
}

unsafe extern "C" fn cb_emit_schema(
    ctx: *mut c_void,
    port: *const c_char,
    schema: *mut abi::ArrowSchema,
) -> i32 {
    let st = &*(ctx as *const CallState);
    let port = cstr(port);
    if schema.is_null() {
        return 1;
    }
    // Move the schema out, leaving a released one behind.
    let ffi = std::ptr::replace(schema as *mut FFI_ArrowSchema, FFI_ArrowSchema::empty());
    match Schema::try_from(&ffi) {
        Ok(s) if st.allowed_ports.is_empty() || st.allowed_ports.contains(&port) => {
            st.schemas.lock().unwrap().push((port, s));
            0
        }
        _ => 1,
    }
}

unsafe extern "C" fn cb_emit_stream(
    ctx: *mut c_void,
    port: *const c_char,
    stream: *mut abi::ArrowArrayStream,
) -> i32 {
    let st = &*(ctx as *const CallState);
    let port = cstr(port);
    if stream.is_null() || !(st.allowed_ports.is_empty() || st.allowed_ports.contains(&port)) {
        return 1;
    }
    let ffi = std::ptr::replace(
        stream as *mut FFI_ArrowArrayStream,
        FFI_ArrowArrayStream::empty(),
    );
    st.streams.lock().unwrap().push((port, ffi));
    0
}

unsafe extern "C" fn cb_emit_facts(ctx: *mut c_void, json: *const c_char) {
    let st = &*(ctx as *const CallState);
    match serde_json::from_str::<serde_json::Value>(&cstr(json)) {
        Ok(serde_json::Value::Object(m)) => {
            let mut facts = st.facts.lock().unwrap();
            for (k, v) in m {
                facts.insert(k, v);
            }
        }
        _ => tracing::warn!(
            step = st.step,
            "the component emitted facts that are not a JSON object; ignored"
        ),
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn cb_run_component(
    ctx: *mut c_void,
    name: *const c_char,
    config_json: *const c_char,
    inputs: *const abi::SegflowStreamInput,
    n_inputs: usize,
    sink: *mut c_void,
    emit: abi::EmitPortFn,
    fail: abi::FailFn,
) -> i32 {
    let st = &*(ctx as *const CallState);
    let report = |msg: &str| {
        let c = CString::new(st.redact.apply(msg).replace('\0', "")).unwrap_or_default();
        fail(sink, c.as_ptr());
        1
    };
    let Some(services) = st.services.clone() else {
        return report("this host does not run nested components here");
    };
    let name = cstr(name);
    let config: serde_json::Value = match serde_json::from_str(&cstr(config_json)) {
        Ok(v) => v,
        Err(e) => return report(&format!("the config for `{name}` is not JSON: {e}")),
    };
    let raw = if n_inputs == 0 || inputs.is_null() {
        &[][..]
    } else {
        std::slice::from_raw_parts(inputs, n_inputs)
    };
    let mut readers: Vec<(String, Box<dyn RecordBatchReader + Send>)> = Vec::new();
    for inp in raw {
        if inp.stream.is_null() {
            return report("a nested call's input stream is null");
        }
        let ffi = std::ptr::replace(
            inp.stream as *mut FFI_ArrowArrayStream,
            FFI_ArrowArrayStream::empty(),
        );
        match RecordBatchStreamReader::try_new(ffi) {
            Ok(r) => readers.push((cstr(inp.name), Box::new(r))),
            Err(e) => {
                return report(&format!(
                    "a nested call's input is not a readable Arrow stream: {e}"
                ))
            }
        }
    }
    let caller = CallOptions {
        step_id: st.step.clone(),
        threads: st.threads,
        max_log_level: st.max_log_level,
        observer: st.observer.clone(),
        cancel: st.cancel.clone(),
        redact: st.redact.clone(),
        run_info: None,
        services: None,
    };
    match services.run_component(&caller, &name, &config, readers) {
        Ok(ports) => {
            for (port, reader) in ports {
                let mut ffi = FFI_ArrowArrayStream::new(reader);
                let p = CString::new(port).unwrap_or_default();
                emit(
                    sink,
                    p.as_ptr(),
                    &mut ffi as *mut FFI_ArrowArrayStream as *mut abi::ArrowArrayStream,
                );
            }
            0
        }
        Err(e) => report(&e),
    }
}

/// Settings of one call.
#[derive(Clone)]
pub struct CallOptions {
    pub step_id: String,
    pub threads: u32,
    pub max_log_level: u32,
    pub observer: Arc<dyn Observer>,
    pub cancel: Arc<AtomicBool>,
    pub redact: Arc<Redactor>,
    /// JSON handed to the component as `run_info`.
    pub run_info: Option<String>,
    /// Behind the component's `run_component` callback.
    pub services: Option<Arc<dyn HostServices>>,
}

impl CallOptions {
    pub fn new(step_id: &str) -> Self {
        CallOptions {
            step_id: step_id.to_string(),
            threads: 1,
            max_log_level: abi::LOG_INFO,
            observer: Arc::new(TracingObserver),
            cancel: Arc::new(AtomicBool::new(false)),
            redact: Arc::new(Redactor::default()),
            run_info: None,
            services: None,
        }
    }
}

fn new_call(opts: &CallOptions, allowed_ports: Vec<String>) -> Arc<CallHandle> {
    let state = Box::new(CallState {
        threads: opts.threads.max(1),
        max_log_level: opts.max_log_level,
        step_id: CString::new(opts.step_id.replace('\0', "")).unwrap_or_default(),
        step: opts.step_id.clone(),
        observer: opts.observer.clone(),
        cancel: opts.cancel.clone(),
        redact: opts.redact.clone(),
        error: Mutex::new(None),
        schemas: Mutex::new(Vec::new()),
        streams: Mutex::new(Vec::new()),
        facts: Mutex::new(Default::default()),
        allowed_ports,
        run_info: opts
            .run_info
            .as_ref()
            .map(|j| CString::new(j.replace('\0', "")).unwrap_or_default()),
        services: opts.services.clone(),
    });
    let host = abi::SegflowHost {
        struct_size: std::mem::size_of::<abi::SegflowHost>() as u32,
        threads: opts.threads.max(1),
        max_log_level: opts.max_log_level,
        step_id: state.step_id.as_ptr(),
        ctx: &*state as *const CallState as *mut c_void,
        log: cb_log,
        progress: cb_progress,
        is_cancelled: cb_is_cancelled,
        set_error: cb_set_error,
        emit_schema: cb_emit_schema,
        emit_stream: cb_emit_stream,
        emit_facts: cb_emit_facts,
        run_info: state
            .run_info
            .as_ref()
            .map_or(std::ptr::null(), |c| c.as_ptr()),
        run_component: state
            .services
            .as_ref()
            .map(|_| cb_run_component as abi::RunComponentFn),
    };
    Arc::new(CallHandle { host, state })
}

fn call_error(call: &CallHandle, status: i32, what: &str) -> CallError {
    let mut e = call
        .state
        .error
        .lock()
        .unwrap()
        .take()
        .unwrap_or(CallError {
            message: format!("the component's {what} failed (status {status}) without saying why"),
            field: None,
            panicked: false,
        });
    e.panicked = status == abi::STATUS_PANIC;
    e
}

/// Facts a step reported; they may keep arriving until its streams are drained.
#[derive(Clone)]
pub struct FactsHandle(Arc<CallHandle>);

impl FactsHandle {
    pub fn get(&self) -> serde_json::Map<String, serde_json::Value> {
        self.0.state.facts.lock().unwrap().clone()
    }
}

/// The outputs of a `run` call.
pub struct RunOutput {
    pub ports: Vec<(String, Box<dyn RecordBatchReader + Send>)>,
    pub facts: FactsHandle,
}

impl Component {
    /// Ask the component for its output schemas.
    pub fn plan(
        &self,
        opts: &CallOptions,
        config: &serde_json::Value,
        inputs: &[(String, SchemaRef)],
    ) -> Result<Vec<(String, SchemaRef)>, CallError> {
        let call = new_call(opts, self.output_names());
        let config = CString::new(config.to_string()).unwrap_or_default();
        let names: Vec<CString> = inputs
            .iter()
            .map(|(n, _)| CString::new(n.as_str()).unwrap_or_default())
            .collect();
        let mut ffi_schemas = Vec::with_capacity(inputs.len());
        for (_, s) in inputs {
            ffi_schemas.push(
                FFI_ArrowSchema::try_from(s.as_ref()).map_err(|e| CallError {
                    message: format!("cannot export an input schema: {e}"),
                    field: None,
                    panicked: false,
                })?,
            );
        }
        let abi_inputs: Vec<abi::SegflowSchemaInput> = names
            .iter()
            .zip(&ffi_schemas)
            .map(|(n, s)| abi::SegflowSchemaInput {
                name: n.as_ptr(),
                schema: s as *const FFI_ArrowSchema as *const abi::ArrowSchema,
            })
            .collect();
        // SAFETY: all pointers are valid for the duration of the call.
        let status = unsafe {
            (self.plan_fn)(
                &call.host,
                config.as_ptr(),
                abi_inputs.as_ptr(),
                abi_inputs.len(),
            )
        };
        if status != abi::STATUS_OK {
            return Err(call_error(&call, status, "plan"));
        }
        let schemas = std::mem::take(&mut *call.state.schemas.lock().unwrap());
        Ok(schemas.into_iter().map(|(n, s)| (n, Arc::new(s))).collect())
    }

    /// Run the component on input streams.
    pub fn run(
        &self,
        opts: &CallOptions,
        config: &serde_json::Value,
        inputs: Vec<(String, Box<dyn RecordBatchReader + Send>)>,
    ) -> Result<RunOutput, CallError> {
        let call = new_call(opts, self.output_names());
        let config = CString::new(config.to_string()).unwrap_or_default();
        let names: Vec<CString> = inputs
            .iter()
            .map(|(n, _)| CString::new(n.as_str()).unwrap_or_default())
            .collect();
        let mut streams: Vec<FFI_ArrowArrayStream> = inputs
            .into_iter()
            .map(|(_, r)| FFI_ArrowArrayStream::new(r))
            .collect();
        let abi_inputs: Vec<abi::SegflowStreamInput> = names
            .iter()
            .zip(streams.iter_mut())
            .map(|(n, s)| abi::SegflowStreamInput {
                name: n.as_ptr(),
                stream: s as *mut FFI_ArrowArrayStream as *mut abi::ArrowArrayStream,
            })
            .collect();
        // SAFETY: all pointers are valid for the duration of the call; streams the
        // component did not take are released when `streams` drops.
        let status = unsafe {
            (self.run_fn)(
                &call.host,
                config.as_ptr(),
                abi_inputs.as_ptr(),
                abi_inputs.len(),
            )
        };
        drop(streams);
        if status != abi::STATUS_OK {
            return Err(call_error(&call, status, "run"));
        }
        let emitted = std::mem::take(&mut *call.state.streams.lock().unwrap());
        let mut ports = Vec::with_capacity(emitted.len());
        for (name, ffi) in emitted {
            let reader = RecordBatchStreamReader::try_new(ffi).map_err(|e| CallError {
                message: format!(
                    "the component's output port `{name}` is not a readable Arrow stream: {e}"
                ),
                field: None,
                panicked: false,
            })?;
            ports.push((
                name,
                Box::new(KeepAlive {
                    inner: reader,
                    _call: call.clone(),
                    redact: opts.redact.clone(),
                }) as Box<dyn RecordBatchReader + Send>,
            ));
        }
        Ok(RunOutput {
            ports,
            facts: FactsHandle(call),
        })
    }

    /// What the result of running with `config` depends on besides config and inputs.
    /// Components without the ABI's `fingerprint` get the default: collectors are never
    /// cached, everything else is pure.
    pub fn fingerprint(&self, opts: &CallOptions, config: &serde_json::Value) -> Fingerprint {
        let Some(f) = self.fingerprint_fn else {
            return if self.stage == Stage::Collect {
                Fingerprint::Never(format!(
                    "`{}` was built before collectors could describe their source",
                    self.qualified_name()
                ))
            } else {
                Fingerprint::Pure
            };
        };
        let call = new_call(opts, Vec::new());
        let config = CString::new(config.to_string()).unwrap_or_default();
        // SAFETY: all pointers are valid for the duration of the call.
        let status = unsafe { f(&call.host, config.as_ptr()) };
        if status != abi::STATUS_OK {
            let e = call_error(&call, status, "fingerprint");
            return Fingerprint::Never(format!("its fingerprint failed: {}", e.message));
        }
        let answer = std::mem::take(&mut *call.state.facts.lock().unwrap());
        if answer.get("pure").and_then(|v| v.as_bool()) == Some(true) {
            Fingerprint::Pure
        } else if let Some(v) = answer.get("source") {
            Fingerprint::Source(v.clone())
        } else if let Some(why) = answer.get("never") {
            Fingerprint::Never(why.as_str().unwrap_or("the component said so").to_string())
        } else {
            Fingerprint::Never("the component's fingerprint answer was not understood".into())
        }
    }

    fn output_names(&self) -> Vec<String> {
        self.ports.outputs.iter().map(|o| o.name.clone()).collect()
    }
}

/// A stream from a plugin that keeps its call's host state alive while it is read.
struct KeepAlive {
    inner: RecordBatchStreamReader,
    _call: Arc<CallHandle>,
    redact: Arc<Redactor>,
}

impl Iterator for KeepAlive {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|r| {
            r.map_err(|e| ArrowError::ExternalError(self.redact.apply(&e.to_string()).into()))
        })
    }
}

impl RecordBatchReader for KeepAlive {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}
