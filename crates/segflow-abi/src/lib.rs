//! segflow plugin ABI v1.
//!
//! This crate owns the `#[repr(C)]` types that cross the boundary between the `segflow`
//! host and a plugin library, and nothing else: no logic, no dependencies. Only C types
//! cross it — pointers, fixed-width integers, NUL-terminated UTF-8 and the Arrow C Data /
//! C Stream Interface structs — so a plugin built by another compiler (or in C) works.
//!
//! # Entry point
//! A plugin library exports one symbol, [`ENTRY_SYMBOL`]:
//! `extern "C" fn segflow_plugin_v1() -> *const SegflowLibrary`. The returned descriptor
//! lives as long as the library (libraries are never unloaded). Its first field is
//! [`SegflowLibrary::abi_version`]; the host reads it before anything else and refuses
//! any value other than [`ABI_VERSION`].
//!
//! # Ownership
//! Memory is freed by whoever allocated it. Strings the plugin hands to the host
//! (errors, facts, log lines) go through host callbacks that copy them before returning,
//! so nothing the plugin allocated is ever freed by the host. Arrow structs carry their
//! own `release` callback, as the Arrow C Data Interface prescribes: the receiver moves
//! the struct out and calls `release` when done.
#![no_std]

use core::ffi::{c_char, c_void};

/// The ABI version this crate describes.
pub const ABI_VERSION: u32 = 1;

/// Name of the symbol every plugin library exports (NUL-terminated).
pub const ENTRY_SYMBOL: &[u8] = b"segflow_plugin_v1\0";

/// Signature of the exported entry point.
pub type EntryFn = unsafe extern "C" fn() -> *const SegflowLibrary;

/// Return code of `plan` and `run`: success.
pub const STATUS_OK: i32 = 0;
/// Return code: the component reported an error through [`SegflowHost::set_error`].
pub const STATUS_ERROR: i32 = 1;
/// Return code: the component panicked; the panic message was passed to `set_error`.
pub const STATUS_PANIC: i32 = 2;
/// Return code: the component stopped because the host asked it to cancel.
pub const STATUS_CANCELLED: i32 = 3;

/// Pipeline stages, in the order edges must follow.
pub const STAGE_COLLECT: u32 = 0;
pub const STAGE_CLEAN: u32 = 1;
pub const STAGE_SEGMENT: u32 = 2;
pub const STAGE_POSITION: u32 = 3;
pub const STAGE_EVALUATE: u32 = 4;

/// Log levels passed to [`SegflowHost::log`].
pub const LOG_ERROR: u32 = 1;
pub const LOG_WARN: u32 = 2;
pub const LOG_INFO: u32 = 3;
pub const LOG_DEBUG: u32 = 4;
pub const LOG_TRACE: u32 = 5;

/// Arrow C Data Interface schema (see the Arrow specification, "C Data Interface").
#[repr(C)]
#[derive(Debug)]
pub struct ArrowSchema {
    pub format: *const c_char,
    pub name: *const c_char,
    pub metadata: *const c_char,
    pub flags: i64,
    pub n_children: i64,
    pub children: *mut *mut ArrowSchema,
    pub dictionary: *mut ArrowSchema,
    pub release: Option<unsafe extern "C" fn(*mut ArrowSchema)>,
    pub private_data: *mut c_void,
}

/// Arrow C Data Interface array.
#[repr(C)]
#[derive(Debug)]
pub struct ArrowArray {
    pub length: i64,
    pub null_count: i64,
    pub offset: i64,
    pub n_buffers: i64,
    pub n_children: i64,
    pub buffers: *mut *const c_void,
    pub children: *mut *mut ArrowArray,
    pub dictionary: *mut ArrowArray,
    pub release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
    pub private_data: *mut c_void,
}

/// Arrow C Stream Interface: a stream of record batches sharing one schema.
#[repr(C)]
#[derive(Debug)]
pub struct ArrowArrayStream {
    pub get_schema: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowSchema) -> i32>,
    pub get_next: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowArray) -> i32>,
    pub get_last_error: Option<unsafe extern "C" fn(*mut ArrowArrayStream) -> *const c_char>,
    pub release: Option<unsafe extern "C" fn(*mut ArrowArrayStream)>,
    pub private_data: *mut c_void,
}

/// The library descriptor returned by the entry point.
///
/// Fields after `abi_version` may grow in later minor versions; `struct_size` lets a
/// host read a descriptor written by an older SDK without reading past its end.
#[repr(C)]
#[derive(Debug)]
pub struct SegflowLibrary {
    /// Must be [`ABI_VERSION`]. Always the first field.
    pub abi_version: u32,
    /// `size_of::<SegflowLibrary>()` as the plugin saw it.
    pub struct_size: u32,
    /// Library name, e.g. `collect` (NUL-terminated UTF-8).
    pub name: *const c_char,
    /// Library version (semver).
    pub version: *const c_char,
    /// Version of the SDK the library was built with (informational).
    pub sdk_version: *const c_char,
    /// Number of entries in `components`.
    pub n_components: usize,
    /// Component descriptors.
    pub components: *const SegflowComponent,
}

/// One component of a library.
#[repr(C)]
#[derive(Debug)]
pub struct SegflowComponent {
    /// `size_of::<SegflowComponent>()` as the plugin saw it.
    pub struct_size: u32,
    /// One of the `STAGE_*` constants.
    pub stage: u32,
    /// Component name, `[a-z0-9_]+`, unique within the library.
    pub name: *const c_char,
    /// Component version (semver).
    pub version: *const c_char,
    /// One-paragraph description for `segflow plugins info`.
    pub description: *const c_char,
    /// JSON Schema (draft 2020-12) of the component's `with:` config.
    pub config_schema: *const c_char,
    /// JSON object describing the ports: `{"inputs": {"min": 1, "max": 1, "doc": "..."},
    /// "outputs": [{"name": "main", "doc": "..."}]}`.
    pub ports: *const c_char,
    /// Output schemas from input schemas and config, before any data is read.
    pub plan: PlanFn,
    /// Run the component.
    pub run: RunFn,
    /// Added after the first release of ABI v1: read it only when `struct_size` reaches
    /// past it ([`SegflowComponent::V1_0_SIZE`] is the size without it). What the step's
    /// result depends on besides its config and inputs, for the step cache; null: the
    /// host's default (collect components are never cached, others depend on config
    /// and inputs only). See [`FingerprintFn`].
    pub fingerprint: Option<FingerprintFn>,
}

impl SegflowComponent {
    /// The size of the descriptor in the first release of ABI v1 (up to `run`), the
    /// smallest a host accepts.
    pub const V1_0_SIZE: usize = core::mem::offset_of!(SegflowComponent, fingerprint);

    /// Whether a descriptor of `struct_size` bytes has the `fingerprint` field.
    pub fn has_fingerprint(&self) -> bool {
        self.struct_size as usize >= core::mem::size_of::<SegflowComponent>()
    }
}

/// One input of a `plan` call: the reference as written in `needs:` (`step` or
/// `step.port`) and the schema flowing along that edge (borrowed).
#[repr(C)]
#[derive(Debug)]
pub struct SegflowSchemaInput {
    pub name: *const c_char,
    pub schema: *const ArrowSchema,
}

/// One input of a `run` call. The component takes ownership of `stream` (moves it out,
/// leaving `release` null) if it reads it; the host releases whatever is left.
#[repr(C)]
#[derive(Debug)]
pub struct SegflowStreamInput {
    pub name: *const c_char,
    pub stream: *mut ArrowArrayStream,
}

/// `plan(host, config_json, inputs, n_inputs) -> status`. Output schemas are handed over
/// with [`SegflowHost::emit_schema`], errors with [`SegflowHost::set_error`].
pub type PlanFn = unsafe extern "C" fn(
    host: *const SegflowHost,
    config_json: *const c_char,
    inputs: *const SegflowSchemaInput,
    n_inputs: usize,
) -> i32;

/// `run(host, config_json, inputs, n_inputs) -> status`. Output tables are handed over
/// with [`SegflowHost::emit_stream`], facts with [`SegflowHost::emit_facts`].
pub type RunFn = unsafe extern "C" fn(
    host: *const SegflowHost,
    config_json: *const c_char,
    inputs: *const SegflowStreamInput,
    n_inputs: usize,
) -> i32;

/// `fingerprint(host, config_json) -> status`, called just before `run`. The answer is
/// one JSON object handed over with [`SegflowHost::emit_facts`]:
/// - `{"pure": true}`: the outputs depend on the config and the inputs only;
/// - `{"source": VALUE}`: they also depend on what VALUE describes (a file's size and
///   modification time, a database query's result); the cache key includes VALUE;
/// - `{"never": "reason"}`: they cannot be told from anything cheap; never cache.
///
/// A non-zero status (with [`SegflowHost::set_error`]) means "never", with the error as
/// the reason; `run` still runs and reports its own errors.
pub type FingerprintFn =
    unsafe extern "C" fn(host: *const SegflowHost, config_json: *const c_char) -> i32;

/// What the host gives a component for one call. Every callback takes `ctx` first.
/// Strings passed to callbacks are borrowed for the duration of the call only.
#[repr(C)]
#[derive(Debug)]
pub struct SegflowHost {
    /// `size_of::<SegflowHost>()` as the host saw it.
    pub struct_size: u32,
    /// Threads this call may use (its share of `--threads`), at least 1.
    pub threads: u32,
    /// Most verbose `LOG_*` level the host will show; events above it may be skipped.
    pub max_log_level: u32,
    /// Id of the step being planned or run (NUL-terminated UTF-8).
    pub step_id: *const c_char,
    /// Host-private context for the callbacks.
    pub ctx: *mut c_void,
    /// A log event: level (`LOG_*`), target (module path) and message.
    pub log: unsafe extern "C" fn(
        ctx: *mut c_void,
        level: u32,
        target: *const c_char,
        message: *const c_char,
    ),
    /// Progress: `done` units of `total` (`total == 0`: unknown), `unit` e.g. `rows`.
    pub progress:
        unsafe extern "C" fn(ctx: *mut c_void, done: u64, total: u64, unit: *const c_char),
    /// Non-zero once the host wants the call to stop early.
    pub is_cancelled: unsafe extern "C" fn(ctx: *mut c_void) -> u32,
    /// The error message of a failing call (copied by the host). `field` is the path of
    /// the config field the error concerns (`columns.2.name`), or null.
    pub set_error:
        unsafe extern "C" fn(ctx: *mut c_void, message: *const c_char, field: *const c_char),
    /// `plan` only: the schema of output port `port`. The host moves `schema` out.
    pub emit_schema: unsafe extern "C" fn(
        ctx: *mut c_void,
        port: *const c_char,
        schema: *mut ArrowSchema,
    ) -> i32,
    /// `run` only: the table of output port `port`. The host moves `stream` out.
    pub emit_stream: unsafe extern "C" fn(
        ctx: *mut c_void,
        port: *const c_char,
        stream: *mut ArrowArrayStream,
    ) -> i32,
    /// `run` only: the step's facts, a JSON object (copied by the host; may be called
    /// several times, objects are merged).
    pub emit_facts: unsafe extern "C" fn(ctx: *mut c_void, json: *const c_char),
    /// Added after the first release of ABI v1: read it only when `struct_size` reaches
    /// past it ([`SegflowHost::has_run_services`]). `run` only: a JSON object describing
    /// the run so far (pipeline name, and per step its stage, component, inputs,
    /// status, duration, rows per port and facts), for components that report on the
    /// run; null when the host has none.
    pub run_info: *const c_char,
    /// Added with `run_info`. `run` only: run another component of any loaded library
    /// (`name` or `library/name`) with `config_json` on `inputs` (moved in, as for
    /// [`RunFn`]), e.g. to re-fit a segmenter on a resample. Every output port is
    /// handed to `emit(sink, port, stream)` (the callee moves the stream out); a
    /// failure is described to `fail(sink, message)` and the status is non-zero. Null
    /// when the host does not offer it.
    pub run_component: Option<RunComponentFn>,
}

/// Receives one output port of a nested [`SegflowHost::run_component`] call.
pub type EmitPortFn =
    unsafe extern "C" fn(sink: *mut c_void, port: *const c_char, stream: *mut ArrowArrayStream);

/// Receives the error message of a failed nested call.
pub type FailFn = unsafe extern "C" fn(sink: *mut c_void, message: *const c_char);

/// See [`SegflowHost::run_component`].
pub type RunComponentFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    name: *const c_char,
    config_json: *const c_char,
    inputs: *const SegflowStreamInput,
    n_inputs: usize,
    sink: *mut c_void,
    emit: EmitPortFn,
    fail: FailFn,
) -> i32;

impl SegflowHost {
    /// True when the host's struct includes `run_info` and `run_component` (hosts built
    /// before they were added pass a smaller `struct_size`).
    pub fn has_run_services(&self) -> bool {
        self.struct_size as usize >= core::mem::size_of::<SegflowHost>()
    }
}
