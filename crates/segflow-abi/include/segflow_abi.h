/*
 * segflow plugin ABI v1, for plugins written in C or C++.
 *
 * Generated from crates/segflow-abi/src/lib.rs (the source of truth) by cbindgen with
 * crates/segflow-abi/cbindgen.toml. Do not edit: regenerate with
 *   SEGFLOW_UPDATE_HEADER=1 cargo test -p segflow-abi --test header
 *
 * A plugin library exports one symbol, SEGFLOW_ENTRY_SYMBOL:
 *   const SegflowLibrary *segflow_plugin_v1(void);
 * See docs/plugin-guide.md ("ABI v1 at a glance", "Compatibility promise").
 */

#ifndef SEGFLOW_ABI_H
#define SEGFLOW_ABI_H

#include <stdint.h>
#include <stddef.h>
/* Name of the symbol every plugin library exports. */
#define SEGFLOW_ENTRY_SYMBOL "segflow_plugin_v1"

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
    /* Array type description */
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;

    /* Release callback */
    void (*release)(struct ArrowSchema *);
    /* Opaque producer-specific data */
    void *private_data;
};

struct ArrowArray {
    /* Array data description */
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;

    /* Release callback */
    void (*release)(struct ArrowArray *);
    /* Opaque producer-specific data */
    void *private_data;
};

#endif /* ARROW_C_DATA_INTERFACE */

#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE

struct ArrowArrayStream {
    /* Callbacks providing stream functionality */
    int (*get_schema)(struct ArrowArrayStream *, struct ArrowSchema *out);
    int (*get_next)(struct ArrowArrayStream *, struct ArrowArray *out);
    const char *(*get_last_error)(struct ArrowArrayStream *);

    /* Release callback */
    void (*release)(struct ArrowArrayStream *);

    /* Opaque producer-specific data */
    void *private_data;
};

#endif /* ARROW_C_STREAM_INTERFACE */

/**
 * The ABI version this crate describes.
 */
#define SEGFLOW_ABI_VERSION 1

/**
 * Return code of `plan` and `run`: success.
 */
#define SEGFLOW_STATUS_OK 0

/**
 * Return code: the component reported an error through [`SegflowHost::set_error`].
 */
#define SEGFLOW_STATUS_ERROR 1

/**
 * Return code: the component panicked; the panic message was passed to `set_error`.
 */
#define SEGFLOW_STATUS_PANIC 2

/**
 * Return code: the component stopped because the host asked it to cancel.
 */
#define SEGFLOW_STATUS_CANCELLED 3

/**
 * Pipeline stages, in the order edges must follow.
 */
#define SEGFLOW_STAGE_COLLECT 0

#define SEGFLOW_STAGE_CLEAN 1

#define SEGFLOW_STAGE_SEGMENT 2

#define SEGFLOW_STAGE_POSITION 3

#define SEGFLOW_STAGE_EVALUATE 4

/**
 * Log levels passed to [`SegflowHost::log`].
 */
#define SEGFLOW_LOG_ERROR 1

#define SEGFLOW_LOG_WARN 2

#define SEGFLOW_LOG_INFO 3

#define SEGFLOW_LOG_DEBUG 4

#define SEGFLOW_LOG_TRACE 5

/**
 * One input of a `plan` call: the reference as written in `needs:` (`step` or
 * `step.port`) and the schema flowing along that edge (borrowed).
 */
typedef struct SegflowSchemaInput {
    const char *name;
    const struct ArrowSchema *schema;
} SegflowSchemaInput;

/**
 * One input of a `run` call. The component takes ownership of `stream` (moves it out,
 * leaving `release` null) if it reads it; the host releases whatever is left.
 */
typedef struct SegflowStreamInput {
    const char *name;
    struct ArrowArrayStream *stream;
} SegflowStreamInput;

/**
 * Receives one output port of a nested [`SegflowHost::run_component`] call.
 */
typedef void (*SegflowEmitPortFn)(void *sink, const char *port, struct ArrowArrayStream *stream);

/**
 * Receives the error message of a failed nested call.
 */
typedef void (*SegflowFailFn)(void *sink, const char *message);

/**
 * See [`SegflowHost::run_component`].
 */
typedef int32_t (*SegflowRunComponentFn)(void *ctx,
                                         const char *name,
                                         const char *config_json,
                                         const struct SegflowStreamInput *inputs,
                                         size_t n_inputs,
                                         void *sink,
                                         SegflowEmitPortFn emit,
                                         SegflowFailFn fail);

/**
 * What the host gives a component for one call. Every callback takes `ctx` first.
 * Strings passed to callbacks are borrowed for the duration of the call only.
 */
typedef struct SegflowHost {
    /**
     * `size_of::<SegflowHost>()` as the host saw it.
     */
    uint32_t struct_size;
    /**
     * Threads this call may use (its share of `--threads`), at least 1.
     */
    uint32_t threads;
    /**
     * Most verbose `LOG_*` level the host will show; events above it may be skipped.
     */
    uint32_t max_log_level;
    /**
     * Id of the step being planned or run (NUL-terminated UTF-8).
     */
    const char *step_id;
    /**
     * Host-private context for the callbacks.
     */
    void *ctx;
    /**
     * A log event: level (`LOG_*`), target (module path) and message.
     */
    void (*log)(void *ctx, uint32_t level, const char *target, const char *message);
    /**
     * Progress: `done` units of `total` (`total == 0`: unknown), `unit` e.g. `rows`.
     */
    void (*progress)(void *ctx, uint64_t done, uint64_t total, const char *unit);
    /**
     * Non-zero once the host wants the call to stop early.
     */
    uint32_t (*is_cancelled)(void *ctx);
    /**
     * The error message of a failing call (copied by the host). `field` is the path of
     * the config field the error concerns (`columns.2.name`), or null.
     */
    void (*set_error)(void *ctx, const char *message, const char *field);
    /**
     * `plan` only: the schema of output port `port`. The host moves `schema` out.
     */
    int32_t (*emit_schema)(void *ctx, const char *port, struct ArrowSchema *schema);
    /**
     * `run` only: the table of output port `port`. The host moves `stream` out.
     */
    int32_t (*emit_stream)(void *ctx, const char *port, struct ArrowArrayStream *stream);
    /**
     * `run` only: the step's facts, a JSON object (copied by the host; may be called
     * several times, objects are merged).
     */
    void (*emit_facts)(void *ctx, const char *json);
    /**
     * Added after the first release of ABI v1: read it only when `struct_size` reaches
     * past it ([`SegflowHost::has_run_services`]). `run` only: a JSON object describing
     * the run so far (pipeline name, and per step its stage, component, inputs,
     * status, duration, rows per port and facts), for components that report on the
     * run; null when the host has none.
     */
    const char *run_info;
    /**
     * Added with `run_info`. `run` only: run another component of any loaded library
     * (`name` or `library/name`) with `config_json` on `inputs` (moved in, as for
     * [`RunFn`]), e.g. to re-fit a segmenter on a resample. Every output port is
     * handed to `emit(sink, port, stream)` (the callee moves the stream out); a
     * failure is described to `fail(sink, message)` and the status is non-zero. Null
     * when the host does not offer it.
     */
    SegflowRunComponentFn run_component;
} SegflowHost;

/**
 * `plan(host, config_json, inputs, n_inputs) -> status`. Output schemas are handed over
 * with [`SegflowHost::emit_schema`], errors with [`SegflowHost::set_error`].
 */
typedef int32_t (*SegflowPlanFn)(const struct SegflowHost *host,
                                 const char *config_json,
                                 const struct SegflowSchemaInput *inputs,
                                 size_t n_inputs);

/**
 * `run(host, config_json, inputs, n_inputs) -> status`. Output tables are handed over
 * with [`SegflowHost::emit_stream`], facts with [`SegflowHost::emit_facts`].
 */
typedef int32_t (*SegflowRunFn)(const struct SegflowHost *host,
                                const char *config_json,
                                const struct SegflowStreamInput *inputs,
                                size_t n_inputs);

/**
 * `fingerprint(host, config_json) -> status`, called just before `run`. The answer is
 * one JSON object handed over with [`SegflowHost::emit_facts`]:
 * - `{"pure": true}`: the outputs depend on the config and the inputs only;
 * - `{"source": VALUE}`: they also depend on what VALUE describes (a file's size and
 *   modification time, a database query's result); the cache key includes VALUE;
 * - `{"never": "reason"}`: they cannot be told from anything cheap; never cache.
 *
 * A non-zero status (with [`SegflowHost::set_error`]) means "never", with the error as
 * the reason; `run` still runs and reports its own errors.
 */
typedef int32_t (*SegflowFingerprintFn)(const struct SegflowHost *host, const char *config_json);

/**
 * One component of a library.
 */
typedef struct SegflowComponent {
    /**
     * `size_of::<SegflowComponent>()` as the plugin saw it.
     */
    uint32_t struct_size;
    /**
     * One of the `STAGE_*` constants.
     */
    uint32_t stage;
    /**
     * Component name, `[a-z0-9_]+`, unique within the library.
     */
    const char *name;
    /**
     * Component version (semver).
     */
    const char *version;
    /**
     * One-paragraph description for `segflow plugins info`.
     */
    const char *description;
    /**
     * JSON Schema (draft 2020-12) of the component's `with:` config.
     */
    const char *config_schema;
    /**
     * JSON object describing the ports: `{"inputs": {"min": 1, "max": 1, "doc": "..."},
     * "outputs": [{"name": "main", "doc": "..."}]}`.
     */
    const char *ports;
    /**
     * Output schemas from input schemas and config, before any data is read.
     */
    SegflowPlanFn plan;
    /**
     * Run the component.
     */
    SegflowRunFn run;
    /**
     * Added after the first release of ABI v1: read it only when `struct_size` reaches
     * past it ([`SegflowComponent::V1_0_SIZE`] is the size without it). What the step's
     * result depends on besides its config and inputs, for the step cache; null: the
     * host's default (collect components are never cached, others depend on config
     * and inputs only). See [`FingerprintFn`].
     */
    SegflowFingerprintFn fingerprint;
} SegflowComponent;

/**
 * The library descriptor returned by the entry point.
 *
 * Fields after `abi_version` may grow in later minor versions; `struct_size` lets a
 * host read a descriptor written by an older SDK without reading past its end.
 */
typedef struct SegflowLibrary {
    /**
     * Must be [`ABI_VERSION`]. Always the first field.
     */
    uint32_t abi_version;
    /**
     * `size_of::<SegflowLibrary>()` as the plugin saw it.
     */
    uint32_t struct_size;
    /**
     * Library name, e.g. `collect` (NUL-terminated UTF-8).
     */
    const char *name;
    /**
     * Library version (semver).
     */
    const char *version;
    /**
     * Version of the SDK the library was built with (informational).
     */
    const char *sdk_version;
    /**
     * Number of entries in `components`.
     */
    size_t n_components;
    /**
     * Component descriptors.
     */
    const struct SegflowComponent *components;
} SegflowLibrary;

/**
 * Signature of the exported entry point.
 */
typedef const struct SegflowLibrary *(*SegflowEntryFn)(void);

#endif  /* SEGFLOW_ABI_H */
