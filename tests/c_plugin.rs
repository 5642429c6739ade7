//! The plugin ABI really is C: plugins written in C, compiled with `cc` at test time,
//! load into the real `segflow` binary and run in a pipeline.
//!
//! - `c_double` includes the committed, generated `segflow_abi.h` and streams its input
//!   through the Arrow C Stream Interface, doubling every Float64 column.
//! - `old_passthrough` is compiled against a copy of the ABI v1.0 definitions, from
//!   before `SegflowHost` gained `run_info` and `run_component`: a plugin built with the
//!   previous SDK version keeps working in the current host.
//! - The header's struct layouts agree with the Rust definitions, field by field.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn include_dir() -> PathBuf {
    repo_root().join("crates/segflow-abi/include")
}

/// The Arrow C Data Interface and C Stream Interface, verbatim from the Arrow
/// specification, under its standard guards (so the header's copy is skipped).
const ARROW_C: &str = r#"
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;
  void (*release)(struct ArrowSchema*);
  void* private_data;
};

struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;
  void (*release)(struct ArrowArray*);
  void* private_data;
};

#endif  /* ARROW_C_DATA_INTERFACE */

#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE

struct ArrowArrayStream {
  int (*get_schema)(struct ArrowArrayStream*, struct ArrowSchema* out);
  int (*get_next)(struct ArrowArrayStream*, struct ArrowArray* out);
  const char* (*get_last_error)(struct ArrowArrayStream*);
  void (*release)(struct ArrowArrayStream*);
  void* private_data;
};

#endif  /* ARROW_C_STREAM_INTERFACE */
"#;

/// A deep copy of an `ArrowSchema` that the copy owns (for `plan`, which must hand the
/// host a schema it can release: the input schema is only borrowed).
const SCHEMA_COPY_C: &str = r#"
static char* dup_str(const char* s) {
  size_t n;
  char* d;
  if (s == NULL) return NULL;
  n = strlen(s) + 1;
  d = malloc(n);
  if (d != NULL) memcpy(d, s, n);
  return d;
}

/* Byte length of Arrow schema metadata: int32 count, then per entry an int32 length and
   the key, an int32 length and the value. */
static size_t metadata_len(const char* m) {
  int32_t n, len, i;
  size_t off = 4;
  memcpy(&n, m, 4);
  for (i = 0; i < n; i++) {
    memcpy(&len, m + off, 4);
    off += 4 + (size_t)len;
    memcpy(&len, m + off, 4);
    off += 4 + (size_t)len;
  }
  return off;
}

static void release_copied_schema(struct ArrowSchema* s) {
  int64_t i;
  for (i = 0; i < s->n_children; i++) {
    if (s->children[i]->release != NULL) s->children[i]->release(s->children[i]);
    free(s->children[i]);
  }
  free(s->children);
  if (s->dictionary != NULL) {
    if (s->dictionary->release != NULL) s->dictionary->release(s->dictionary);
    free(s->dictionary);
  }
  free((void*)s->format);
  free((void*)s->name);
  free((void*)s->metadata);
  s->release = NULL;
}

/* Returns 0 on success. On failure `dst` is still releasable. */
static int copy_schema(const struct ArrowSchema* src, struct ArrowSchema* dst) {
  int64_t i;
  memset(dst, 0, sizeof *dst);
  dst->release = release_copied_schema;
  dst->flags = src->flags;
  dst->format = dup_str(src->format);
  dst->name = dup_str(src->name);
  if (dst->format == NULL || (src->name != NULL && dst->name == NULL)) return ENOMEM;
  if (src->metadata != NULL) {
    size_t n = metadata_len(src->metadata);
    char* m = malloc(n);
    if (m == NULL) return ENOMEM;
    memcpy(m, src->metadata, n);
    dst->metadata = m;
  }
  if (src->n_children > 0) {
    dst->children = calloc((size_t)src->n_children, sizeof *dst->children);
    if (dst->children == NULL) return ENOMEM;
    for (i = 0; i < src->n_children; i++) {
      dst->children[i] = malloc(sizeof(struct ArrowSchema));
      if (dst->children[i] == NULL) return ENOMEM;
      dst->n_children = i + 1;
      if (copy_schema(src->children[i], dst->children[i]) != 0) return ENOMEM;
    }
  }
  if (src->dictionary != NULL) {
    dst->dictionary = malloc(sizeof(struct ArrowSchema));
    if (dst->dictionary == NULL) return ENOMEM;
    if (copy_schema(src->dictionary, dst->dictionary) != 0) return ENOMEM;
  }
  return 0;
}

/* `plan` of a one-input component whose output `main` has the input's schema. */
static int32_t plan_same_schema(const SegflowHost* host, const char* config_json,
                                const SegflowSchemaInput* inputs, size_t n_inputs) {
  struct ArrowSchema out;
  (void)config_json;
  if (n_inputs != 1) {
    host->set_error(host->ctx, "this component takes exactly one input", NULL);
    return SEGFLOW_STATUS_ERROR;
  }
  if (strcmp(inputs[0].schema->format, "+s") != 0) {
    host->set_error(host->ctx, "the input is not a table (a struct-typed Arrow schema)", NULL);
    return SEGFLOW_STATUS_ERROR;
  }
  if (copy_schema(inputs[0].schema, &out) != 0) {
    out.release(&out);
    host->set_error(host->ctx, "out of memory copying the input schema", NULL);
    return SEGFLOW_STATUS_ERROR;
  }
  if (host->emit_schema(host->ctx, "main", &out) != 0) {
    if (out.release != NULL) out.release(&out);
    host->set_error(host->ctx, "the host refused output port `main`", NULL);
    return SEGFLOW_STATUS_ERROR;
  }
  return SEGFLOW_STATUS_OK;
}
"#;

/// `c_double`: a clean-stage component that re-emits its input stream with every Float64
/// column doubled, lazily, batch by batch, and reports `{"rows", "batches",
/// "doubled_columns"}` as facts when the stream ends. Ownership follows the plugin guide:
/// the input stream is moved in; each output batch keeps its input batch alive (the
/// columns it passes through point into it) and owns only the doubled value buffers.
const C_DOUBLE_C: &str = r#"
/* One output batch: unchanged columns borrow from `input`, doubled ones own `values`. */
struct out_batch {
  struct ArrowArray input;
  int64_t n_children;
  struct ArrowArray* children;
  struct ArrowArray** child_ptrs;
  const void* buffers[1];
};

struct doubled_column {
  const void* buffers[2];
  double* values;
};

struct doubler {
  struct ArrowArrayStream input;
  const SegflowHost* host;
  int64_t n_columns;
  unsigned char* is_double;
  int64_t rows;
  int64_t batches;
  int64_t doubled;
  int finished;
  char error[256];
};

static void release_borrowed(struct ArrowArray* a) { a->release = NULL; }

static void release_doubled(struct ArrowArray* a) {
  struct doubled_column* c = a->private_data;
  free(c->values);
  free(c);
  a->release = NULL;
}

static void release_batch(struct ArrowArray* a) {
  struct out_batch* b = a->private_data;
  int64_t i;
  for (i = 0; i < b->n_children; i++) {
    if (b->children[i].release != NULL) b->children[i].release(&b->children[i]);
  }
  free(b->children);
  free(b->child_ptrs);
  if (b->input.release != NULL) b->input.release(&b->input);
  free(b);
  a->release = NULL;
}

static int doubler_get_schema(struct ArrowArrayStream* s, struct ArrowSchema* out) {
  struct doubler* d = s->private_data;
  return d->input.get_schema(&d->input, out);
}

static const char* doubler_get_last_error(struct ArrowArrayStream* s) {
  struct doubler* d = s->private_data;
  return d->error[0] != '\0' ? d->error : NULL;
}

static int fail_stream(struct doubler* d, const char* message) {
  snprintf(d->error, sizeof d->error, "c_double: %s", message);
  return EIO;
}

static int doubler_get_next(struct ArrowArrayStream* s, struct ArrowArray* out) {
  struct doubler* d = s->private_data;
  struct ArrowArray in;
  struct out_batch* b;
  int64_t i, j;
  int rc;
  memset(&in, 0, sizeof in);
  memset(out, 0, sizeof *out);
  rc = d->input.get_next(&d->input, &in);
  if (rc != 0) {
    const char* e = d->input.get_last_error(&d->input);
    fail_stream(d, e != NULL ? e : "the input stream failed");
    return rc;
  }
  if (in.release == NULL) { /* end of stream */
    if (!d->finished) {
      char facts[160];
      d->finished = 1;
      snprintf(facts, sizeof facts, "{\"rows\": %lld, \"batches\": %lld, \"doubled_columns\": %lld}",
               (long long)d->rows, (long long)d->batches, (long long)d->doubled);
      d->host->emit_facts(d->host->ctx, facts);
    }
    return 0; /* `out` stays released: the end */
  }
  if (in.n_children != d->n_columns) {
    in.release(&in);
    return fail_stream(d, "a batch does not match the stream's schema");
  }
  b = calloc(1, sizeof *b);
  if (b == NULL) {
    in.release(&in);
    return fail_stream(d, "out of memory");
  }
  b->input = in; /* moved: released with the output batch */
  b->buffers[0] = in.n_buffers > 0 ? in.buffers[0] : NULL;
  b->children = calloc((size_t)(in.n_children > 0 ? in.n_children : 1), sizeof *b->children);
  b->child_ptrs = calloc((size_t)(in.n_children > 0 ? in.n_children : 1), sizeof *b->child_ptrs);
  out->release = release_batch;
  out->private_data = b;
  if (b->children == NULL || b->child_ptrs == NULL) {
    release_batch(out);
    return fail_stream(d, "out of memory");
  }
  for (i = 0; i < in.n_children; i++) {
    const struct ArrowArray* src = in.children[i];
    struct ArrowArray* dst = &b->children[i];
    b->child_ptrs[i] = dst;
    b->n_children = i + 1;
    *dst = *src; /* shallow: buffers and grandchildren are borrowed from `input` */
    dst->release = release_borrowed;
    dst->private_data = NULL;
    if (d->is_double[i]) {
      int64_t n = src->offset + src->length;
      const double* v = src->buffers[1];
      struct doubled_column* c = malloc(sizeof *c);
      double* values = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
      if (c == NULL || values == NULL) {
        free(c);
        free(values);
        release_batch(out);
        return fail_stream(d, "out of memory");
      }
      for (j = 0; j < n; j++) values[j] = 2.0 * v[j];
      c->values = values;
      c->buffers[0] = src->buffers[0]; /* validity bitmap, borrowed */
      c->buffers[1] = values;
      dst->buffers = c->buffers;
      dst->release = release_doubled;
      dst->private_data = c;
    }
  }
  out->length = in.length;
  out->null_count = in.null_count;
  out->offset = in.offset;
  out->n_buffers = in.n_buffers;
  out->buffers = b->buffers;
  out->n_children = in.n_children;
  out->children = b->child_ptrs;
  out->dictionary = NULL;
  d->rows += in.length;
  d->batches += 1;
  d->host->progress(d->host->ctx, (uint64_t)d->rows, 0, "rows");
  return 0;
}

static void doubler_release(struct ArrowArrayStream* s) {
  struct doubler* d = s->private_data;
  if (d->input.release != NULL) d->input.release(&d->input);
  free(d->is_double);
  free(d);
  s->release = NULL;
}

static int32_t c_double_plan(const SegflowHost* host, const char* config_json,
                             const SegflowSchemaInput* inputs, size_t n_inputs) {
  int64_t i;
  if (n_inputs == 1) {
    const struct ArrowSchema* s = inputs[0].schema;
    for (i = 0; i < s->n_children; i++) {
      if (strcmp(s->children[i]->format, "g") == 0) break;
    }
    if (i == s->n_children) {
      host->set_error(host->ctx, "c_double: the input has no Float64 column to double", NULL);
      return SEGFLOW_STATUS_ERROR;
    }
  }
  return plan_same_schema(host, config_json, inputs, n_inputs);
}

static int32_t c_double_run(const SegflowHost* host, const char* config_json,
                            const SegflowStreamInput* inputs, size_t n_inputs) {
  struct doubler* d;
  struct ArrowSchema schema;
  struct ArrowArrayStream out;
  char message[128];
  int64_t i;
  (void)config_json;
  if (n_inputs != 1) {
    host->set_error(host->ctx, "c_double takes exactly one input", NULL);
    return SEGFLOW_STATUS_ERROR;
  }
  d = calloc(1, sizeof *d);
  if (d == NULL) {
    host->set_error(host->ctx, "out of memory", NULL);
    return SEGFLOW_STATUS_ERROR;
  }
  /* Move the input stream in: the host releases only what is left behind. */
  d->input = *inputs[0].stream;
  inputs[0].stream->release = NULL;
  d->host = host; /* valid for as long as the emitted stream lives */
  out.get_schema = doubler_get_schema;
  out.get_next = doubler_get_next;
  out.get_last_error = doubler_get_last_error;
  out.release = doubler_release;
  out.private_data = d;
  if (d->input.get_schema(&d->input, &schema) != 0) {
    out.release(&out);
    host->set_error(host->ctx, "cannot read the input stream's schema", NULL);
    return SEGFLOW_STATUS_ERROR;
  }
  d->n_columns = schema.n_children;
  d->is_double = calloc((size_t)(schema.n_children > 0 ? schema.n_children : 1), 1);
  if (d->is_double == NULL) {
    schema.release(&schema);
    out.release(&out);
    host->set_error(host->ctx, "out of memory", NULL);
    return SEGFLOW_STATUS_ERROR;
  }
  for (i = 0; i < schema.n_children; i++) {
    d->is_double[i] = strcmp(schema.children[i]->format, "g") == 0;
    d->doubled += d->is_double[i];
  }
  schema.release(&schema);
  snprintf(message, sizeof message, "doubling %lld Float64 column(s) of step %s",
           (long long)d->doubled, host->step_id);
  if (host->max_log_level >= SEGFLOW_LOG_INFO)
    host->log(host->ctx, SEGFLOW_LOG_INFO, "c_double", message);
  if (host->emit_stream(host->ctx, "main", &out) != 0) {
    if (out.release != NULL) out.release(&out);
    host->set_error(host->ctx, "the host refused output port `main`", NULL);
    return SEGFLOW_STATUS_ERROR;
  }
  return SEGFLOW_STATUS_OK;
}

static const SegflowComponent COMPONENTS[1] = {{
  sizeof(SegflowComponent),
  SEGFLOW_STAGE_CLEAN,
  "c_double",
  "1.0.0",
  "Doubles every Float64 column of its input, streaming (a C plugin).",
  "{\"type\": \"object\", \"properties\": {}, \"additionalProperties\": false}",
  "{\"inputs\": {\"min\": 1, \"max\": 1, \"doc\": \"any table\"},"
  " \"outputs\": [{\"name\": \"main\", \"doc\": \"the input, Float64 columns doubled\"}]}",
  c_double_plan,
  c_double_run,
  NULL, /* fingerprint: the host's default (a clean step depends on config and inputs) */
}};

static const SegflowLibrary LIBRARY = {
  SEGFLOW_ABI_VERSION, sizeof(SegflowLibrary), "cdouble", "1.0.0", "c", 1, COMPONENTS,
};

const SegflowLibrary* segflow_plugin_v1(void) { return &LIBRARY; }

/* The entry point has the type the header names. */
SegflowEntryFn segflow_entry_check(void);
SegflowEntryFn segflow_entry_check(void) { return segflow_plugin_v1; }
"#;

fn c_double_source() -> String {
    format!("{ARROW_C}\n#include \"segflow_abi.h\"\n{SCHEMA_COPY_C}{C_DOUBLE_C}")
}

fn write(dir: &Path, yaml: &str) -> PathBuf {
    let p = dir.join("p.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

#[test]
fn a_c_plugin_built_against_the_generated_header_runs_in_a_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    let libs = tmp.path().join("libs");
    std::fs::create_dir(&libs).unwrap();
    build_c_library_with_includes(&c_double_source(), &libs, "cdouble", &[&include_dir()]);

    // The host lists it like any other library.
    let r = run(segflow()
        .args(["plugins", "info", "c_double", "--plugin-path"])
        .arg(&libs));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("Doubles every Float64 column"),
        "{}",
        r.stdout
    );

    let p = write(
        tmp.path(),
        "name: c_plugin
steps:
  - {id: src, stage: collect, plugin: source, with: {rows: 100000, batch_rows: 4096, seed: 7}}
  - {id: dbl, stage: clean, plugin: c_double, needs: [src]}
",
    );
    let out = tmp.path().join("run");
    let r = run(segflow()
        .arg("run")
        .arg(&p)
        .arg("--out")
        .arg(&out)
        .arg("--plugin-path")
        .arg(&libs));
    assert_eq!(r.code, 0, "{}", r.stderr);

    let src = parquet_table(&out.join("steps/src/main.parquet"));
    let dbl = parquet_table(&out.join("steps/dbl/main.parquet"));
    assert_eq!(dbl.num_rows(), 100_000);
    assert_eq!(
        dbl.schema(),
        src.schema(),
        "the schema passes through unchanged"
    );
    // Int64 columns pass through untouched; the Float64 column is doubled.
    assert_eq!(f64_column(&dbl, "id"), f64_column(&src, "id"));
    assert_eq!(f64_column(&dbl, "group"), f64_column(&src, "group"));
    let (a, b) = (f64_column(&src, "value"), f64_column(&dbl, "value"));
    assert!(a.iter().zip(&b).all(|(a, b)| Some(2.0 * a.unwrap()) == *b));
    assert!(a.iter().any(|v| v.unwrap() != 0.0));

    // Facts emitted from inside the lazy stream, after `run` returned, reach facts.json.
    let facts = read_json(&out.join("steps/dbl/facts.json"));
    assert_eq!(facts["rows"], 100_000, "{facts}");
    assert_eq!(facts["doubled_columns"], 1, "{facts}");
    assert!(facts["batches"].as_i64().unwrap() >= 1, "{facts}");
    let m = read_json(&out.join("manifest.json"));
    let step = m["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "dbl")
        .unwrap();
    assert_eq!(step["status"], "succeeded", "{step}");
}

#[test]
fn a_c_plugin_error_reaches_the_user() {
    let tmp = tempfile::tempdir().unwrap();
    let libs = tmp.path().join("libs");
    std::fs::create_dir(&libs).unwrap();
    build_c_library_with_includes(&c_double_source(), &libs, "cdouble", &[&include_dir()]);
    std::fs::write(tmp.path().join("t.csv"), "name,n\na,1\nb,2\n").unwrap();
    // No Float64 column: the C component's plan refuses, in its own words.
    let p = write(
        tmp.path(),
        "name: c_plugin_bad
steps:
  - {id: t, stage: collect, plugin: csv, with: {path: t.csv}}
  - {id: dbl, stage: clean, plugin: c_double, needs: [t]}
",
    );
    let r = run(segflow()
        .arg("validate")
        .arg(&p)
        .arg("--plugin-path")
        .arg(&libs)
        .current_dir(tmp.path()));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("c_double: the input has no Float64 column to double"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("dbl"), "{}", r.stderr);
}

/// The C header's layout is the Rust one: every size and field offset agrees, checked
/// by the C compiler itself (including the header's own Arrow definitions).
#[test]
fn the_header_layout_matches_the_rust_definitions() {
    use segflow_abi::*;
    use std::mem::{offset_of, size_of};
    let mut checks = String::new();
    let mut check = |expr: String, value: usize| {
        checks.push_str(&format!(
            "_Static_assert({expr} == {value}, \"{expr} differs from Rust\");\n"
        ));
    };
    check("sizeof(SegflowLibrary)".into(), size_of::<SegflowLibrary>());
    check(
        "sizeof(SegflowComponent)".into(),
        size_of::<SegflowComponent>(),
    );
    check("sizeof(SegflowHost)".into(), size_of::<SegflowHost>());
    check(
        "sizeof(SegflowSchemaInput)".into(),
        size_of::<SegflowSchemaInput>(),
    );
    check(
        "sizeof(SegflowStreamInput)".into(),
        size_of::<SegflowStreamInput>(),
    );
    check(
        "sizeof(struct ArrowSchema)".into(),
        size_of::<ArrowSchema>(),
    );
    check("sizeof(struct ArrowArray)".into(), size_of::<ArrowArray>());
    check(
        "sizeof(struct ArrowArrayStream)".into(),
        size_of::<ArrowArrayStream>(),
    );
    macro_rules! offsets {
        ($t:ident: $($f:ident),*) => {$(
            check(format!("offsetof({}, {})", stringify!($t), stringify!($f)), offset_of!($t, $f));
        )*};
    }
    offsets!(SegflowLibrary: abi_version, struct_size, name, version, sdk_version, n_components, components);
    offsets!(SegflowComponent: struct_size, stage, name, version, description, config_schema, ports, plan, run, fingerprint);
    offsets!(SegflowHost: struct_size, threads, max_log_level, step_id, ctx, log, progress,
        is_cancelled, set_error, emit_schema, emit_stream, emit_facts, run_info, run_component);
    check("SEGFLOW_ABI_VERSION".into(), ABI_VERSION as usize);
    check("SEGFLOW_STAGE_EVALUATE".into(), STAGE_EVALUATE as usize);
    check("SEGFLOW_STATUS_CANCELLED".into(), STATUS_CANCELLED as usize);
    check("SEGFLOW_LOG_TRACE".into(), LOG_TRACE as usize);
    let src = format!("#include \"segflow_abi.h\"\n{checks}");
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("layout.c");
    std::fs::write(&c, &src).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = std::process::Command::new(&cc)
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-c",
            "-o",
        ])
        .arg(tmp.path().join("layout.o"))
        .arg("-I")
        .arg(include_dir())
        .arg(&c)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{src}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The "previous SDK version": ABI v1.0 as first released, before `SegflowHost` gained
/// `run_info` and `run_component`. Transcribed here, not included, so the test keeps
/// meaning what it says whatever the header becomes.
const ABI_V1_0_C: &str = r#"
#define SEGFLOW_ABI_VERSION 1
#define SEGFLOW_STATUS_OK 0
#define SEGFLOW_STATUS_ERROR 1
#define SEGFLOW_STAGE_CLEAN 1

typedef struct SegflowSchemaInput { const char* name; const struct ArrowSchema* schema; } SegflowSchemaInput;
typedef struct SegflowStreamInput { const char* name; struct ArrowArrayStream* stream; } SegflowStreamInput;

typedef struct SegflowHost {
  uint32_t struct_size;
  uint32_t threads;
  uint32_t max_log_level;
  const char* step_id;
  void* ctx;
  void (*log)(void* ctx, uint32_t level, const char* target, const char* message);
  void (*progress)(void* ctx, uint64_t done, uint64_t total, const char* unit);
  uint32_t (*is_cancelled)(void* ctx);
  void (*set_error)(void* ctx, const char* message, const char* field);
  int32_t (*emit_schema)(void* ctx, const char* port, struct ArrowSchema* schema);
  int32_t (*emit_stream)(void* ctx, const char* port, struct ArrowArrayStream* stream);
  void (*emit_facts)(void* ctx, const char* json);
} SegflowHost;

typedef int32_t (*SegflowPlanFn)(const SegflowHost*, const char*, const SegflowSchemaInput*, size_t);
typedef int32_t (*SegflowRunFn)(const SegflowHost*, const char*, const SegflowStreamInput*, size_t);

typedef struct SegflowComponent {
  uint32_t struct_size;
  uint32_t stage;
  const char* name;
  const char* version;
  const char* description;
  const char* config_schema;
  const char* ports;
  SegflowPlanFn plan;
  SegflowRunFn run;
} SegflowComponent;

typedef struct SegflowLibrary {
  uint32_t abi_version;
  uint32_t struct_size;
  const char* name;
  const char* version;
  const char* sdk_version;
  size_t n_components;
  const SegflowComponent* components;
} SegflowLibrary;
"#;

/// `old_passthrough`: hands its input stream on unchanged (moved in, moved out) and
/// reports the host struct it was given next to the one it was compiled with.
const OLD_PASSTHROUGH_C: &str = r#"
static int32_t old_run(const SegflowHost* host, const char* config_json,
                       const SegflowStreamInput* inputs, size_t n_inputs) {
  struct ArrowArrayStream stream;
  char facts[160];
  (void)config_json;
  if (n_inputs != 1) {
    host->set_error(host->ctx, "old_passthrough takes exactly one input", NULL);
    return SEGFLOW_STATUS_ERROR;
  }
  /* A v1.0 plugin may only rely on what v1.0 had: struct_size covers at least that. */
  if (host->struct_size < sizeof(SegflowHost)) {
    host->set_error(host->ctx, "this host is older than ABI v1.0", NULL);
    return SEGFLOW_STATUS_ERROR;
  }
  snprintf(facts, sizeof facts, "{\"host_struct_size\": %u, \"plugin_host_size\": %u, \"sdk\": \"1.0\"}",
           (unsigned)host->struct_size, (unsigned)sizeof(SegflowHost));
  host->emit_facts(host->ctx, facts);
  stream = *inputs[0].stream;
  inputs[0].stream->release = NULL;
  if (host->emit_stream(host->ctx, "main", &stream) != 0) {
    if (stream.release != NULL) stream.release(&stream);
    host->set_error(host->ctx, "the host refused output port `main`", NULL);
    return SEGFLOW_STATUS_ERROR;
  }
  return SEGFLOW_STATUS_OK;
}

static const SegflowComponent COMPONENTS[1] = {{
  sizeof(SegflowComponent), SEGFLOW_STAGE_CLEAN, "old_passthrough", "1.0.0",
  "Built against segflow ABI v1.0.",
  "{\"type\": \"object\"}",
  "{\"inputs\": {\"min\": 1, \"max\": 1}, \"outputs\": [{\"name\": \"main\"}]}",
  plan_same_schema, old_run,
}};
static const SegflowLibrary LIBRARY = {
  SEGFLOW_ABI_VERSION, sizeof(SegflowLibrary), "oldsdk", "1.0.0", "1.0.0", 1, COMPONENTS,
};
const SegflowLibrary* segflow_plugin_v1(void) { return &LIBRARY; }
"#;

#[test]
fn a_plugin_built_against_abi_v1_0_runs_in_the_current_host() {
    let tmp = tempfile::tempdir().unwrap();
    let libs = tmp.path().join("libs");
    std::fs::create_dir(&libs).unwrap();
    let src = format!("{ARROW_C}{ABI_V1_0_C}{SCHEMA_COPY_C}{OLD_PASSTHROUGH_C}");
    build_c_library_with_includes(&src, &libs, "oldsdk", &[]);
    let p = write(
        tmp.path(),
        "name: old_sdk
steps:
  - {id: src, stage: collect, plugin: source, with: {rows: 5000, batch_rows: 1000}}
  - {id: old, stage: clean, plugin: old_passthrough, needs: [src]}
  - {id: after, stage: clean, plugin: passthrough, needs: [old]}
",
    );
    let out = tmp.path().join("run");
    let r = run(segflow()
        .arg("run")
        .arg(&p)
        .arg("--out")
        .arg(&out)
        .arg("--plugin-path")
        .arg(&libs));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(parquet_rows(&out.join("steps/old/main.parquet")), 5000);
    assert_eq!(parquet_rows(&out.join("steps/after/main.parquet")), 5000);
    let facts = read_json(&out.join("steps/old/facts.json"));
    // The current host passes its larger struct; the v1.0 plugin reads only its prefix.
    let host_size = std::mem::size_of::<segflow_abi::SegflowHost>();
    let v1_0_size = std::mem::offset_of!(segflow_abi::SegflowHost, run_info);
    assert_eq!(facts["host_struct_size"], host_size, "{facts}");
    assert_eq!(facts["plugin_host_size"], v1_0_size, "{facts}");
    assert!(v1_0_size < host_size);
}
