//! ABI tests: the host refuses libraries it must not trust and survives plugins that
//! misbehave.

mod common;
use common::*;

const WRONG_ABI_C: &str = r#"
#include <stdint.h>
#include <stddef.h>
/* A descriptor from a future segflow: only the first field matters to the host. */
struct lib { uint32_t abi_version; uint32_t struct_size; const char* name; };
static const struct lib LIB = { 99, sizeof(struct lib), "future" };
const void* segflow_plugin_v1(void) { return &LIB; }
"#;

const NO_SYMBOL_C: &str = r#"
int not_a_segflow_plugin(void) { return 42; }
"#;

fn pipeline_with_plugin(dir: &std::path::Path, lib: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("p.yaml");
    std::fs::write(
        &p,
        format!(
            "name: abi\nplugins: [\"{}\"]\nsteps:\n  - id: orders\n    stage: collect\n    plugin: synthetic\n    with: {{customers: 10}}\n",
            lib.display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn wrong_abi_version_is_refused_naming_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = build_c_library(WRONG_ABI_C, tmp.path(), "future");
    let p = pipeline_with_plugin(tmp.path(), &lib);
    let r = run(segflow().arg("validate").arg(&p));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("ABI v99"), "{}", r.stderr);
    assert!(r.stderr.contains("ABI v1"), "{}", r.stderr);
    assert!(r.stderr.contains("libfuture.so"), "{}", r.stderr);

    // Found by scanning a directory, it is refused with a warning, listed, and the
    // remaining libraries still work.
    let r = run(segflow()
        .args(["plugins", "list", "--plugin-path"])
        .arg(tmp.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("refused") && r.stdout.contains("ABI v99"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("collect"), "{}", r.stdout);
}

#[test]
fn library_without_entry_symbol_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = build_c_library(NO_SYMBOL_C, tmp.path(), "nosymbol");
    let p = pipeline_with_plugin(tmp.path(), &lib);
    let r = run(segflow().arg("validate").arg(&p));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("does not export the segflow entry point `segflow_plugin_v1`"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_file_that_is_not_a_library_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("libjunk.so");
    std::fs::write(&lib, b"this is not an ELF file").unwrap();
    let p = pipeline_with_plugin(tmp.path(), &lib);
    let r = run(segflow().arg("validate").arg(&p));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot load plugin library"),
        "{}",
        r.stderr
    );
}

fn write(dir: &std::path::Path, yaml: &str) -> std::path::PathBuf {
    let p = dir.join("p.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

#[test]
fn a_panicking_component_fails_its_step_and_the_host_survives() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(
        tmp.path(),
        "name: panics
steps:
  - {id: src, stage: collect, plugin: source, with: {rows: 1000}}
  - {id: boom, stage: clean, plugin: panic, needs: [src]}
  - {id: after, stage: clean, plugin: passthrough, needs: [boom]}
  - {id: other, stage: clean, plugin: passthrough, needs: [src]}
",
    );
    let out = tmp.path().join("run");
    let r = run(segflow().arg("run").arg(&p).arg("--out").arg(&out));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("testkit boom"), "{}", r.stderr);
    let m = read_json(&out.join("manifest.json"));
    let status = |id: &str| {
        m["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status("boom"), "failed");
    assert_eq!(status("after"), "skipped");
    assert_eq!(
        status("other"),
        "succeeded",
        "the independent branch finishes"
    );
    assert_eq!(status("src"), "succeeded");
    assert_eq!(m["status"], "failed");
    assert!(m["steps"][1]["error"]
        .as_str()
        .unwrap()
        .contains("panicked"));
    assert_eq!(parquet_rows(&out.join("steps/other/main.parquet")), 1000);
}

#[test]
fn a_panic_inside_a_lazy_stream_fails_the_step() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(
        tmp.path(),
        "name: stream_panic
steps:
  - {id: src, stage: collect, plugin: source, with: {rows: 200000, batch_rows: 1000}}
  - {id: boom, stage: clean, plugin: panic_in_stream, needs: [src]}
",
    );
    let out = tmp.path().join("run");
    let r = run(segflow().arg("run").arg(&p).arg("--out").arg(&out));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("panicked"), "{}", r.stderr);
    let m = read_json(&out.join("manifest.json"));
    assert_eq!(m["steps"][1]["status"], "failed");
    // No half-written file that looks complete.
    assert!(!out.join("steps/boom/main.parquet").exists());
}

#[test]
fn a_component_error_is_reported_with_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(
        tmp.path(),
        "name: fails
steps:
  - {id: src, stage: collect, plugin: source, with: {rows: 10}}
  - {id: bad, stage: clean, plugin: fail, needs: [src]}
",
    );
    let r = run(segflow()
        .arg("run")
        .arg(&p)
        .arg("--out")
        .arg(tmp.path().join("run")));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("step `bad` failed"), "{}", r.stderr);
}

/// A second library ("acme", written in C against the ABI) that also exports a
/// component named `synthetic`.
const ACME_C: &str = r#"
#include <stdint.h>
#include <stddef.h>
typedef int32_t (*call_fn)(const void*, const char*, const void*, size_t);
struct component {
    uint32_t struct_size; uint32_t stage;
    const char* name; const char* version; const char* description;
    const char* config_schema; const char* ports;
    call_fn plan; call_fn run;
};
struct library {
    uint32_t abi_version; uint32_t struct_size;
    const char* name; const char* version; const char* sdk_version;
    size_t n_components; const struct component* components;
};
static int32_t refuse(const void* h, const char* c, const void* i, size_t n) { return 1; }
static const struct component COMPONENTS[1] = {{
    sizeof(struct component), 0, "synthetic", "9.9.9", "A vendor's synthetic data",
    "{\"type\": \"object\"}",
    "{\"inputs\": {\"min\": 0, \"max\": 0}, \"outputs\": [{\"name\": \"main\"}]}",
    refuse, refuse
}};
static const struct library LIBRARY = { 1, sizeof(struct library), "acme", "1.0.0", "c", 1, COMPONENTS };
const struct library* segflow_plugin_v1(void) { return &LIBRARY; }
"#;

#[test]
fn a_component_two_libraries_export_must_be_qualified() {
    let tmp = tempfile::tempdir().unwrap();
    build_c_library(ACME_C, tmp.path(), "acme");
    let p = write(
        tmp.path(),
        "name: ambiguous\nsteps:\n  - {id: orders, stage: collect, plugin: synthetic}\n",
    );
    let r = run(segflow()
        .arg("validate")
        .arg(&p)
        .arg("--plugin-path")
        .arg(tmp.path()));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("exported by more than one library"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("`collect/synthetic`") && r.stderr.contains("`acme/synthetic`"),
        "{}",
        r.stderr
    );

    let q = write(
        tmp.path(),
        "name: qualified\nsteps:\n  - {id: orders, stage: collect, plugin: collect/synthetic, with: {customers: 5}}\n",
    );
    let r = run(segflow()
        .arg("validate")
        .arg(&q)
        .arg("--plugin-path")
        .arg(tmp.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);

    // A C component that fails without saying why still gets a clear message.
    let c = write(
        tmp.path(),
        "name: vendor\nsteps:\n  - {id: orders, stage: collect, plugin: acme/synthetic}\n",
    );
    let r = run(segflow()
        .arg("validate")
        .arg(&c)
        .arg("--plugin-path")
        .arg(tmp.path()));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("acme/synthetic") && r.stderr.contains("without saying why"),
        "{}",
        r.stderr
    );
}

/// The run services appended to `SegflowHost`: an evaluate step runs another component
/// through the host (`run_component`), reads the run so far (`run_info`), and its
/// `report` port becomes `report.html` at the top of the run directory.
#[test]
fn an_evaluate_step_runs_a_component_reads_the_run_and_writes_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(
        tmp.path(),
        "name: nested_run
steps:
  - {id: src, stage: collect, plugin: source, with: {rows: 1000}}
  - {id: copy, stage: clean, plugin: passthrough, needs: [src]}
  - {id: inner, stage: evaluate, plugin: nested, needs: [copy], with: {inner: passthrough}}
",
    );
    let out = tmp.path().join("run");
    let r = run(segflow().arg("run").arg(&p).arg("--out").arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // the nested component's output came back through the step
    assert_eq!(parquet_rows(&out.join("steps/inner/main.parquet")), 1000);
    let facts = read_json(&out.join("steps/inner/facts.json"));
    assert_eq!(facts["inner_ports"], serde_json::json!(["main"]));
    // run_info described the finished steps, and the report port became report.html
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(
        html,
        "<!doctype html><title>nested_run</title><p>src:succeeded copy:succeeded inner:pending</p>"
    );

    // a nested call to a component that does not exist fails the step, naming it
    let p = write(
        tmp.path(),
        "name: nested_missing
steps:
  - {id: src, stage: collect, plugin: source, with: {rows: 10}}
  - {id: inner, stage: evaluate, plugin: nested, needs: [src], with: {inner: no_such_thing}}
",
    );
    let r = run(segflow()
        .arg("run")
        .arg(&p)
        .arg("--out")
        .arg(tmp.path().join("run2")));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("no loaded library has a component `no_such_thing`"),
        "{}",
        r.stderr
    );
    // and the nested component's own error is passed on
    let p = write(
        tmp.path(),
        "name: nested_fails
steps:
  - {id: src, stage: collect, plugin: source, with: {rows: 10}}
  - {id: inner, stage: evaluate, plugin: nested, needs: [src], with: {inner: fail}}
",
    );
    let r = run(segflow()
        .arg("run")
        .arg(&p)
        .arg("--out")
        .arg(tmp.path().join("run3")));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("`testkit/fail` failed"), "{}", r.stderr);
}
