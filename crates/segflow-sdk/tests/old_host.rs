//! A component built with this SDK, called by a host built before `SegflowHost` gained
//! `run_info` and `run_component` (ABI v1.0): the host's `struct_size` stops before
//! those fields, so the SDK must not read them. `ctx.run_info()` is `None` and
//! `ctx.run_component` is an error saying the host is too old, even when the bytes
//! past the old struct's end happen to hold something that looks valid.

use segflow_sdk::ffi::{abi, run_shim};
use segflow_sdk::prelude::*;
use std::ffi::{c_char, c_void, CStr};
use std::mem::{offset_of, size_of};
use std::sync::Mutex;

/// Records what the run services gave it as facts.
#[derive(Deserialize, JsonSchema)]
struct Probe {}

impl Component for Probe {
    const NAME: &'static str = "probe";
    const STAGE: Stage = Stage::Evaluate;
    fn plan(&self, _inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::new())
    }
    fn run(&self, _inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let info = ctx.run_info();
        ctx.fact("run_info", info);
        let nested = match ctx.run_component("anything", &serde_json::json!({}), vec![]) {
            Ok(ports) => format!("ran, {} ports", ports.len()),
            Err(e) => format!("error: {e}"),
        };
        ctx.fact("run_component", nested);
        Ok(Outputs::new())
    }
}

#[derive(Default)]
struct State {
    facts: serde_json::Map<String, serde_json::Value>,
    error: Option<String>,
    /// Set when the SDK calls `run_component`.
    nested_called: bool,
}

fn state(ctx: *mut c_void) -> std::sync::MutexGuard<'static, State> {
    unsafe { &*(ctx as *const Mutex<State>) }.lock().unwrap()
}
fn text(p: *const c_char) -> String {
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

unsafe extern "C" fn log(_: *mut c_void, _: u32, _: *const c_char, _: *const c_char) {}
unsafe extern "C" fn progress(_: *mut c_void, _: u64, _: u64, _: *const c_char) {}
unsafe extern "C" fn is_cancelled(_: *mut c_void) -> u32 {
    0
}
unsafe extern "C" fn set_error(ctx: *mut c_void, message: *const c_char, _: *const c_char) {
    state(ctx).error = Some(text(message));
}
unsafe extern "C" fn emit_schema(
    _: *mut c_void,
    _: *const c_char,
    _: *mut abi::ArrowSchema,
) -> i32 {
    1
}
unsafe extern "C" fn emit_stream(
    _: *mut c_void,
    _: *const c_char,
    _: *mut abi::ArrowArrayStream,
) -> i32 {
    1
}
unsafe extern "C" fn emit_facts(ctx: *mut c_void, json: *const c_char) {
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_str(&text(json)) {
        state(ctx).facts.extend(m);
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn run_component(
    ctx: *mut c_void,
    _: *const c_char,
    _: *const c_char,
    _: *const abi::SegflowStreamInput,
    _: usize,
    _: *mut c_void,
    _: abi::EmitPortFn,
    _: abi::FailFn,
) -> i32 {
    state(ctx).nested_called = true;
    0
}

/// Run `Probe` through its C entry point with a host struct of `struct_size` bytes whose
/// appended fields are filled in regardless.
fn run_probe(struct_size: usize) -> State {
    let ctx = Mutex::new(State::default());
    let info = c"{\"pipeline\": \"looks valid\"}";
    let host = abi::SegflowHost {
        struct_size: struct_size as u32,
        threads: 1,
        max_log_level: abi::LOG_INFO,
        step_id: c"probe".as_ptr(),
        ctx: &ctx as *const Mutex<State> as *mut c_void,
        log,
        progress,
        is_cancelled,
        set_error,
        emit_schema,
        emit_stream,
        emit_facts,
        run_info: info.as_ptr(),
        run_component: Some(run_component),
    };
    let status = unsafe { run_shim::<Probe>(&host, c"{}".as_ptr(), std::ptr::null(), 0) };
    let st = ctx.into_inner().unwrap();
    assert_eq!(status, abi::STATUS_OK, "{:?}", st.error);
    st
}

#[test]
fn an_old_host_has_no_run_services() {
    // ABI v1.0's SegflowHost ended where `run_info` now starts.
    let v1_0 = offset_of!(abi::SegflowHost, run_info);
    assert!(v1_0 < size_of::<abi::SegflowHost>());
    let st = run_probe(v1_0);
    assert_eq!(st.facts["run_info"], serde_json::Value::Null);
    let nested = st.facts["run_component"].as_str().unwrap();
    assert!(
        nested.starts_with("error:") && nested.contains("upgrade segflow"),
        "{nested}"
    );
    assert!(
        !st.nested_called,
        "the SDK called a field past the host's struct_size"
    );

    // A struct_size that covers `run_info` but not `run_component` is still "old":
    // the two were added together.
    let st = run_probe(offset_of!(abi::SegflowHost, run_component));
    assert_eq!(st.facts["run_info"], serde_json::Value::Null);
    assert!(!st.nested_called);
}

#[test]
fn the_current_host_has_run_services() {
    let st = run_probe(size_of::<abi::SegflowHost>());
    assert_eq!(
        st.facts["run_info"],
        serde_json::json!({"pipeline": "looks valid"})
    );
    assert_eq!(st.facts["run_component"], "ran, 0 ports");
    assert!(st.nested_called);
}
