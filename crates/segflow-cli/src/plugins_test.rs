//! `segflow plugins test LIB`: check a plugin library before it ships.
//!
//! For every component of the library:
//! 1. its config JSON Schema must compile, and its port declaration must be sane (at
//!    most as many min as max inputs, output names unique and `[a-z0-9_]+`);
//! 2. a config is chosen: `--config COMPONENT=JSON`, else `{}`; when that fails the
//!    schema or `plan`, the component is reported as *needs config* (with the message)
//!    and skipped; with an explicit `--config` it is a failure;
//! 3. generated input is offered: no input for a component that takes none, otherwise
//!    as many copies of one table as its declared minimum (at least one). The table has
//!    120 rows in two batches: `customer_id` Int64, `date` Date32, `amount`,
//!    `recency_days`, `frequency`, `monetary_sum`, `monetary_mean`, `tenure_days`,
//!    `value` (numeric), `group` Utf8, `flag` Boolean (every fifth row), and `segment_id` Int32 / `segment` Utf8 (so the
//!    same table serves as features and as a segmentation's assignments);
//! 4. `plan` and `run` are called in process through the engine host and every output
//!    stream is drained. Checked: no panic (in plan, run, or while streaming: reported as
//!    *panicked*), no error, the output ports are exactly the planned ones and every
//!    stream's schema and every batch's schema equal the planned schema;
//! 5. leak check: each input stream is wrapped so the host can tell when it is released
//!    (its release callback runs, dropping the reader). Streams the plugin did not take
//!    are released by the host right after `run`; a stream the plugin took must be
//!    released by the plugin by the time its outputs are drained and released. One that
//!    is still alive then is reported as *leaked*.
//!
//! Not checked: a crash (segfault, abort) ends this command, since the library runs in
//! process; memory the plugin allocates and keeps for itself.
//!
//! Exit 0 when no component failed (components that need a config are reported but do
//! not fail the run), 1 when one did, 2 when the library cannot be loaded or an argument
//! is wrong.

use crate::{Failure, EXIT_INVALID, EXIT_STEP_FAILED};
use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    RecordBatchIterator, RecordBatchReader, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use segflow_engine::diag::Diagnostic;
use segflow_engine::host::{CallOptions, Component, Registry};
use segflow_engine::spec::Stage;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    NeedsConfig,
    Fail,
}

struct Report {
    verdict: Verdict,
    lines: Vec<String>,
}

impl Report {
    fn fail(mut self, line: String) -> Report {
        self.verdict = Verdict::Fail;
        self.lines.push(line);
        self
    }
}

pub fn run(lib: &Path, configs: &[String]) -> Result<u8, Failure> {
    let mut given: Vec<(String, serde_json::Value)> = Vec::new();
    for c in configs {
        let Some((name, json)) = c.split_once('=') else {
            return Err(Failure::one(
                EXIT_INVALID,
                Diagnostic::new(
                    "segflow::usage",
                    format!("--config `{c}` is not COMPONENT=JSON"),
                )
                .help("write e.g. --config 'lookalike={\"features\":[\"value\"]}'"),
            ));
        };
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
            Failure::one(
                EXIT_INVALID,
                Diagnostic::new(
                    "segflow::usage",
                    format!("--config for `{name}` is not valid JSON: {e}"),
                )
                .help("quote the JSON for the shell, e.g. --config 'name={\"k\":3}'"),
            )
        })?;
        given.push((name.to_string(), value));
    }
    let mut reg = Registry::default();
    let library = reg.load_file(lib).map_err(|e| {
        Failure::one(
            EXIT_INVALID,
            Diagnostic::new("segflow::plugin-load", e.reason.clone())
                .help("pass the path of a plugin library file (e.g. target/release/libNAME.so)"),
        )
    })?;
    for (name, _) in &given {
        if !reg.components.iter().any(|c| &c.name == name) {
            let have: Vec<&str> = reg.components.iter().map(|c| c.name.as_str()).collect();
            return Err(Failure::one(
                EXIT_INVALID,
                Diagnostic::new(
                    "segflow::usage",
                    format!(
                        "--config names `{name}`, which `{}` does not export; it exports: {}",
                        library.name,
                        have.join(", ")
                    ),
                )
                .help("use a component name from the list"),
            ));
        }
    }
    println!(
        "Testing {} {} ({}, sdk {})",
        library.name,
        library.version,
        library.path.display(),
        library.sdk_version
    );
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for c in &reg.components {
        let config = given.iter().find(|(n, _)| n == &c.name).map(|(_, v)| v);
        let report = test_component(c, config);
        let tag = match report.verdict {
            Verdict::Pass => {
                passed += 1;
                "PASS"
            }
            Verdict::NeedsConfig => {
                skipped += 1;
                "NEEDS CONFIG"
            }
            Verdict::Fail => {
                failed += 1;
                "FAIL"
            }
        };
        println!("{tag:<12} {} ({})", c.name, c.stage.as_str());
        for l in &report.lines {
            println!("             {l}");
        }
    }
    println!(
        "{} components: {passed} passed, {failed} failed, {skipped} need a config (pass --config COMPONENT=JSON to test them)",
        reg.components.len()
    );
    Ok(if failed > 0 { EXIT_STEP_FAILED } else { 0 })
}

fn valid_port_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn test_component(c: &Component, given: Option<&serde_json::Value>) -> Report {
    let mut r = Report {
        verdict: Verdict::Pass,
        lines: Vec::new(),
    };
    // 1. Schema and ports.
    let validator = match jsonschema::validator_for(&c.config_schema) {
        Ok(v) => v,
        Err(e) => return r.fail(format!("config JSON Schema does not compile: {e}")),
    };
    let p = &c.ports;
    if p.inputs.max.is_some_and(|m| m < p.inputs.min) {
        return r.fail(format!(
            "ports: declares at least {} inputs but at most {:?}",
            p.inputs.min, p.inputs.max
        ));
    }
    let mut names: Vec<&str> = p.outputs.iter().map(|o| o.name.as_str()).collect();
    if let Some(bad) = names.iter().find(|n| !valid_port_name(n)) {
        return r.fail(format!("ports: output port name `{bad}` is not [a-z0-9_]+"));
    }
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return r.fail(format!("ports: output port `{}` is declared twice", w[0]));
    }
    if names.is_empty() {
        return r.fail("ports: declares no output port".to_string());
    }
    r.lines
        .push("schema compiles; ports declaration is consistent".to_string());

    // 2. Config.
    let config = given.cloned().unwrap_or_else(|| serde_json::json!({}));
    let shown = if given.is_some() { "--config" } else { "`{}`" };
    let needs = |r: Report, msg: String| -> Report {
        if given.is_some() {
            r.fail(format!("the config given with --config is rejected: {msg}"))
        } else {
            Report {
                verdict: Verdict::NeedsConfig,
                lines: vec![format!("{shown} is rejected: {msg}")],
            }
        }
    };
    if let Some(e) = validator.iter_errors(&config).next() {
        let at = e.instance_path().to_string();
        return needs(
            r,
            format!(
                "{e}{}",
                if at.is_empty() {
                    String::new()
                } else {
                    format!(" (at {at})")
                }
            ),
        );
    }

    // 3. Input.
    let takes_none = p.inputs.max == Some(0) || (c.stage == Stage::Collect && p.inputs.min == 0);
    let n_inputs = if takes_none { 0 } else { p.inputs.min.max(1) };
    let input_names: Vec<String> = (0..n_inputs)
        .map(|i| {
            if i == 0 {
                "features".to_string()
            } else {
                format!("input{i}.main")
            }
        })
        .collect();
    let schema = input_schema();
    let opts = CallOptions::new("plugins-test");

    // 4. Plan.
    let plan_inputs: Vec<(String, SchemaRef)> = input_names
        .iter()
        .map(|n| (n.clone(), schema.clone()))
        .collect();
    let planned = match c.plan(&opts, &config, &plan_inputs) {
        Ok(p) => p,
        Err(e) if e.panicked => return r.fail(format!("panicked in plan: {}", e.message)),
        Err(e) => {
            let field = e
                .field
                .map(|f| format!(" (field `{f}`)"))
                .unwrap_or_default();
            return needs(r, format!("plan: {}{field}", e.message));
        }
    };
    let planned_names: Vec<&str> = planned.iter().map(|(n, _)| n.as_str()).collect();
    r.lines.push(format!(
        "plan with {shown} on {n_inputs} generated input(s): ports {}",
        planned_names.join(", ")
    ));

    // Run.
    let released: Vec<Arc<AtomicBool>> = (0..n_inputs)
        .map(|_| Arc::new(AtomicBool::new(false)))
        .collect();
    let inputs: Vec<(String, Box<dyn RecordBatchReader + Send>)> = input_names
        .iter()
        .zip(&released)
        .map(|(n, flag)| {
            (
                n.clone(),
                Box::new(Tracked {
                    inner: RecordBatchIterator::new(
                        input_batches(&schema)
                            .into_iter()
                            .map(Ok)
                            .collect::<Vec<_>>()
                            .into_iter(),
                        schema.clone(),
                    ),
                    released: flag.clone(),
                }) as Box<dyn RecordBatchReader + Send>,
            )
        })
        .collect();
    let output = match c.run(&opts, &config, inputs) {
        Ok(o) => o,
        Err(e) if e.panicked => return r.fail(format!("panicked in run: {}", e.message)),
        Err(e) => return r.fail(format!("run failed: {}", e.message)),
    };
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (name, reader) in output.ports {
        seen.push(name.clone());
        let Some((_, want)) = planned.iter().find(|(n, _)| n == &name) else {
            problems.push(format!("run emitted port `{name}`, which plan did not"));
            continue;
        };
        if !same_schema(&reader.schema(), want) {
            problems.push(format!(
                "port `{name}`: stream schema {} differs from the planned {}",
                describe(&reader.schema()),
                describe(want)
            ));
        }
        let mut n = 0;
        for batch in reader {
            match batch {
                Ok(b) => {
                    n += b.num_rows();
                    if !same_schema(&b.schema(), want) {
                        problems.push(format!(
                            "port `{name}`: a batch has schema {}, not the planned {}",
                            describe(&b.schema()),
                            describe(want)
                        ));
                        break;
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    let what = if msg.contains("panic") {
                        "panicked while streaming"
                    } else {
                        "failed while streaming"
                    };
                    problems.push(format!("port `{name}` {what}: {msg}"));
                    break;
                }
            }
        }
        rows.push(format!("{name} {n} rows"));
    }
    for (n, _) in &planned {
        if !seen.contains(n) {
            problems.push(format!("planned port `{n}` was not produced by run"));
        }
    }
    drop(output.facts);
    // 5. Leaks: every output is released by now, so every input must be too.
    for (n, flag) in input_names.iter().zip(&released) {
        if !flag.load(Ordering::SeqCst) {
            problems.push(format!(
                "leaked input stream `{n}`: the component took it and had not released it once its outputs were drained and released"
            ));
        }
    }
    if problems.is_empty() {
        r.lines.push(format!(
            "run: {}; output schemas match the plan; {} input stream(s) released",
            if rows.is_empty() {
                "no ports".to_string()
            } else {
                rows.join(", ")
            },
            n_inputs
        ));
        r
    } else {
        r.verdict = Verdict::Fail;
        r.lines.extend(problems);
        r
    }
}

/// Names, types and nullability (metadata is not compared).
fn same_schema(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields()).all(|(x, y)| {
            x.name() == y.name()
                && x.data_type() == y.data_type()
                && x.is_nullable() == y.is_nullable()
        })
}

fn describe(s: &Schema) -> String {
    let f: Vec<String> = s
        .fields()
        .iter()
        .map(|f| {
            format!(
                "{}: {}{}",
                f.name(),
                f.data_type(),
                if f.is_nullable() { "?" } else { "" }
            )
        })
        .collect();
    format!("({})", f.join(", "))
}

fn input_schema() -> SchemaRef {
    let f = |n: &str, t: DataType| Field::new(n, t, false);
    Arc::new(Schema::new(vec![
        f("customer_id", DataType::Int64),
        f("date", DataType::Date32),
        f("amount", DataType::Float64),
        f("recency_days", DataType::Float64),
        f("frequency", DataType::Int64),
        f("monetary_sum", DataType::Float64),
        f("monetary_mean", DataType::Float64),
        f("tenure_days", DataType::Float64),
        f("value", DataType::Float64),
        f("group", DataType::Utf8),
        f("flag", DataType::Boolean),
        f("segment_id", DataType::Int32),
        f("segment", DataType::Utf8),
    ]))
}

/// 120 deterministic rows in two batches.
fn input_batches(schema: &SchemaRef) -> Vec<RecordBatch> {
    [0i64..70, 70..120]
        .into_iter()
        .filter_map(|range| {
            let ids: Vec<i64> = range.map(|i| i + 1).collect();
            let fl = |g: &dyn Fn(i64) -> f64| -> ArrayRef {
                Arc::new(Float64Array::from(
                    ids.iter().map(|&i| g(i)).collect::<Vec<_>>(),
                ))
            };
            let seg: Vec<i32> = ids.iter().map(|i| (i % 3) as i32).collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(Date32Array::from(
                    ids.iter()
                        .map(|i| 19_700 + (i * 7 % 365) as i32)
                        .collect::<Vec<_>>(),
                )),
                fl(&|i| 5.0 + (i * 37 % 100) as f64),
                fl(&|i| (i * 13 % 365) as f64),
                Arc::new(Int64Array::from(
                    ids.iter().map(|i| 1 + i % 9).collect::<Vec<_>>(),
                )),
                fl(&|i| 20.0 + (i * 53 % 900) as f64),
                fl(&|i| 10.0 + (i * 17 % 90) as f64),
                fl(&|i| 30.0 + (i * 29 % 700) as f64),
                fl(&|i| (i * 7919 % 1000) as f64 / 1000.0),
                Arc::new(StringArray::from(
                    ids.iter()
                        .map(|i| ["a", "b", "c", "d"][(i % 4) as usize])
                        .collect::<Vec<_>>(),
                )),
                Arc::new(BooleanArray::from(
                    ids.iter().map(|i| i % 5 == 0).collect::<Vec<_>>(),
                )),
                Arc::new(Int32Array::from(seg.clone())),
                Arc::new(StringArray::from(
                    seg.iter()
                        .map(|&s| ["alpha", "beta", "gamma"][s as usize])
                        .collect::<Vec<_>>(),
                )),
            ];
            RecordBatch::try_new(schema.clone(), columns).ok()
        })
        .collect()
}

/// An input stream that records when it is dropped, i.e. when its C stream's release
/// callback ran (the Arrow C Stream export owns the reader and drops it on release).
struct Tracked {
    inner: RecordBatchIterator<std::vec::IntoIter<Result<RecordBatch, ArrowError>>>,
    released: Arc<AtomicBool>,
}

impl Iterator for Tracked {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

impl RecordBatchReader for Tracked {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.released.store(true, Ordering::SeqCst);
    }
}
