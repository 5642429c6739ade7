//! `segflow plugins test LIB`: the pre-ship check of a plugin library.
//!
//! - On the testkit library: `passthrough` passes, `panic` is reported as panicking in
//!   run, `panic_in_stream` as panicking while streaming, `fail` as failing, the
//!   components with required config as needing one; exit 1. `--config` makes a
//!   component testable, and a bad `--config` is a usage error (exit 2).
//! - On a small C library (compiled at test time against `segflow_abi.h`): a component
//!   that takes its input stream and never releases it is reported as leaking it, one
//!   that takes and releases it passes, and one whose stream schema differs from its
//!   plan is reported as such.

mod common;
use common::*;
use std::path::PathBuf;

fn testkit() -> PathBuf {
    plugin_dir().join(format!(
        "libsegflow_testkit.{}",
        std::env::consts::DLL_EXTENSION
    ))
}

/// The lines of the report under the component's heading, heading included.
fn section(stdout: &str, component: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in stdout.lines() {
        if !line.starts_with(' ') {
            inside =
                line.split_whitespace().any(|w| w == component) && !line.starts_with("Testing");
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn testkit_report_names_panics_failures_and_passes() {
    let r = run(segflow().args(["plugins", "test"]).arg(testkit()));
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let pass = section(&r.stdout, "passthrough");
    assert!(pass.starts_with("PASS"), "{}", r.stdout);
    assert!(
        pass.contains("main 120 rows") && pass.contains("1 input stream(s) released"),
        "{pass}"
    );
    let panic = section(&r.stdout, "panic");
    assert!(panic.starts_with("FAIL"), "{}", r.stdout);
    assert!(
        panic.contains("panicked in run") && panic.contains("testkit boom"),
        "{panic}"
    );
    let stream = section(&r.stdout, "panic_in_stream");
    assert!(
        stream.starts_with("FAIL") && stream.contains("panicked while streaming"),
        "{stream}"
    );
    let fail = section(&r.stdout, "fail");
    assert!(
        fail.starts_with("FAIL") && fail.contains("testkit failure on purpose"),
        "{fail}"
    );
    let source = section(&r.stdout, "source");
    assert!(
        source.starts_with("NEEDS CONFIG") && source.contains("\"rows\" is a required property"),
        "{source}"
    );
    // (The summary's counts grow with the testkit; the line itself is checked.)
    assert!(
        r.stdout.lines().any(|l| l.contains(" components: ")
            && l.contains(" failed, ")
            && l.contains("need a config")),
        "{}",
        r.stdout
    );
}

#[test]
fn config_makes_a_component_testable_and_bad_config_is_refused() {
    let r = run(segflow().args(["plugins", "test"]).arg(testkit()).args([
        "--config",
        r#"source={"rows": 10, "batch_rows": 3}"#,
        "--config",
        r#"sleep={"ms": 1}"#,
    ]));
    assert_eq!(r.code, 1, "{}", r.stdout);
    let source = section(&r.stdout, "source");
    assert!(
        source.starts_with("PASS")
            && source.contains("main 10 rows")
            && source.contains("0 generated input(s)"),
        "{source}"
    );
    assert!(
        section(&r.stdout, "sleep").starts_with("PASS"),
        "{}",
        r.stdout
    );

    // An explicit config that the component rejects is a failure, not a skip.
    let r = run(segflow()
        .args(["plugins", "test"])
        .arg(testkit())
        .args(["--config", r#"source={"rows": "many"}"#]));
    let source = section(&r.stdout, "source");
    assert!(
        source.starts_with("FAIL") && source.contains("--config is rejected"),
        "{source}"
    );

    for (arg, needle) in [
        ("source", "is not COMPONENT=JSON"),
        ("source={rows", "is not valid JSON"),
        (
            "nosuch={}",
            "does not export; it exports: source, passthrough",
        ),
    ] {
        let r = run(segflow()
            .args(["plugins", "test"])
            .arg(testkit())
            .args(["--config", arg]));
        assert_eq!(r.code, 2, "{arg}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{arg}: {}", r.stderr);
    }
    let r = run(segflow().args(["plugins", "test", "no/such/libplugin.so"]));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot read plugin library"),
        "{}",
        r.stderr
    );
}

/// Three clean-stage components with one Int64 column `n` in their planned `main`:
/// `leaky` moves its input stream out and never releases it, `tidy` moves it out and
/// releases it, `misshapen` emits a stream whose column is called `m`, not `n`. Each
/// emits an empty stream.
const LEAKY_C: &str = r#"
#include <stdlib.h>
#include <string.h>
#include "segflow_abi.h"

typedef struct { struct ArrowSchema child; struct ArrowSchema* ptrs[1]; } schema_priv;

static void release_child(struct ArrowSchema* s) { s->release = NULL; }
static void release_top(struct ArrowSchema* s) {
  schema_priv* p = (schema_priv*)s->private_data;
  if (p->child.release != NULL) p->child.release(&p->child);
  free(p);
  s->release = NULL;
}
static int make_schema(struct ArrowSchema* out, const char* column) {
  schema_priv* p = (schema_priv*)calloc(1, sizeof *p);
  if (p == NULL) return 1;
  p->child.format = "l";
  p->child.name = column;
  p->child.release = release_child;
  p->ptrs[0] = &p->child;
  memset(out, 0, sizeof *out);
  out->format = "+s";
  out->name = "";
  out->n_children = 1;
  out->children = p->ptrs;
  out->private_data = p;
  out->release = release_top;
  return 0;
}

/* An empty stream of one Int64 column named by private_data. */
static int empty_get_schema(struct ArrowArrayStream* s, struct ArrowSchema* out) {
  return make_schema(out, (const char*)s->private_data);
}
static int empty_get_next(struct ArrowArrayStream* s, struct ArrowArray* out) {
  (void)s;
  memset(out, 0, sizeof *out);
  return 0;
}
static const char* empty_last_error(struct ArrowArrayStream* s) { (void)s; return NULL; }
static void empty_release(struct ArrowArrayStream* s) { s->release = NULL; }

static int32_t plan_n(const SegflowHost* host, const char* config_json,
                      const SegflowSchemaInput* inputs, size_t n_inputs) {
  struct ArrowSchema out;
  (void)config_json; (void)inputs; (void)n_inputs;
  if (make_schema(&out, "n") != 0) return SEGFLOW_STATUS_ERROR;
  if (host->emit_schema(host->ctx, "main", &out) != 0) {
    if (out.release != NULL) out.release(&out);
    return SEGFLOW_STATUS_ERROR;
  }
  return SEGFLOW_STATUS_OK;
}

static struct ArrowArrayStream kept[64];
static int n_kept = 0;

static int32_t run_common(const SegflowHost* host, const SegflowStreamInput* inputs,
                          size_t n_inputs, int release_input, const char* column) {
  struct ArrowArrayStream out;
  if (n_inputs > 0 && n_kept < 64) {
    kept[n_kept] = *inputs[0].stream;      /* move the stream out */
    inputs[0].stream->release = NULL;
    if (release_input) kept[n_kept].release(&kept[n_kept]);
    n_kept++;
  }
  out.get_schema = empty_get_schema;
  out.get_next = empty_get_next;
  out.get_last_error = empty_last_error;
  out.release = empty_release;
  out.private_data = (void*)column;
  if (host->emit_stream(host->ctx, "main", &out) != 0) return SEGFLOW_STATUS_ERROR;
  return SEGFLOW_STATUS_OK;
}

static int32_t run_leaky(const SegflowHost* host, const char* config_json,
                         const SegflowStreamInput* inputs, size_t n_inputs) {
  (void)config_json;
  return run_common(host, inputs, n_inputs, 0, "n");
}
static int32_t run_tidy(const SegflowHost* host, const char* config_json,
                        const SegflowStreamInput* inputs, size_t n_inputs) {
  (void)config_json;
  return run_common(host, inputs, n_inputs, 1, "n");
}
static int32_t run_misshapen(const SegflowHost* host, const char* config_json,
                             const SegflowStreamInput* inputs, size_t n_inputs) {
  (void)config_json;
  return run_common(host, inputs, n_inputs, 1, "m");
}

#define PORTS "{\"inputs\": {\"min\": 1, \"max\": 1}, \"outputs\": [{\"name\": \"main\"}]}"
#define SCHEMA "{\"type\": \"object\", \"additionalProperties\": false}"
static const SegflowComponent COMPONENTS[3] = {
  {sizeof(SegflowComponent), SEGFLOW_STAGE_CLEAN, "leaky", "1.0.0", "Leaks its input.", SCHEMA, PORTS, plan_n, run_leaky, NULL},
  {sizeof(SegflowComponent), SEGFLOW_STAGE_CLEAN, "tidy", "1.0.0", "Releases its input.", SCHEMA, PORTS, plan_n, run_tidy, NULL},
  {sizeof(SegflowComponent), SEGFLOW_STAGE_CLEAN, "misshapen", "1.0.0", "Wrong output schema.", SCHEMA, PORTS, plan_n, run_misshapen, NULL},
};
static const SegflowLibrary LIBRARY = {
  SEGFLOW_ABI_VERSION, sizeof(SegflowLibrary), "leaky", "1.0.0", "c", 3, COMPONENTS,
};
const SegflowLibrary* segflow_plugin_v1(void) { return &LIBRARY; }
"#;

#[test]
fn leaked_inputs_and_wrong_output_schemas_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = build_c_library_with_includes(
        LEAKY_C,
        tmp.path(),
        "leaky",
        &[&repo_root().join("crates/segflow-abi/include")],
    );
    let r = run(segflow().args(["plugins", "test"]).arg(&lib));
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let leaky = section(&r.stdout, "leaky");
    assert!(
        leaky.starts_with("FAIL") && leaky.contains("leaked input stream `features`"),
        "{}",
        r.stdout
    );
    assert!(
        section(&r.stdout, "tidy").starts_with("PASS"),
        "{}",
        r.stdout
    );
    let mis = section(&r.stdout, "misshapen");
    assert!(
        mis.starts_with("FAIL")
            && mis.contains("stream schema (m: Int64) differs from the planned (n: Int64)"),
        "{}",
        r.stdout
    );
}
