//! `segflow run`: plan, execute, and record the run in its directory.

use crate::observe::{max_plugin_level, CliObserver};
use crate::{load_plan, Failure, Globals, EXIT_INVALID, EXIT_STEP_FAILED};
use segflow_engine::diag::Diagnostic;
use segflow_engine::execute::{config_hash, execute, ExecOptions, RunReport, StepStatus};
use segflow_engine::store::RunDir;
use segflow_engine::validate::Plan;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub fn run(
    globals: &Globals,
    pipeline: &Path,
    out: Option<&Path>,
    sets: &[String],
    threads: Option<usize>,
) -> Result<u8, Failure> {
    let plan = load_plan(globals, pipeline, sets).map_err(step_failure)?;
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let dir = RunDir::create(out, &plan.spec.name).map_err(|e| {
        Failure::one(
            EXIT_INVALID,
            Diagnostic::new(
                "segflow::run-dir",
                format!("cannot create the run directory: {e}"),
            )
            .help("pass a writable directory with --out DIR"),
        )
    })?;
    let started = chrono::Utc::now();
    write_manifest(
        &dir,
        &manifest(&plan, pipeline, threads, &dir, &started, None, None),
    )?;

    let cancel = Arc::new(AtomicBool::new(false));
    {
        // First Ctrl-C: ask running components to stop and skip the rest. Second: quit.
        let cancel = cancel.clone();
        let _ = ctrlc::set_handler(move || {
            if cancel.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!(
                "[segflow] cancelling: running steps are asked to stop (Ctrl-C again to quit now)"
            );
        });
    }
    let opts = ExecOptions {
        threads,
        run_dir: Some(dir.clone()),
        observer: Arc::new(CliObserver::new(globals.log_format)),
        max_log_level: max_plugin_level(),
        cancel,
    };
    let report = execute(&plan, &opts);
    let finished = chrono::Utc::now();
    let done = manifest(
        &plan,
        pipeline,
        threads,
        &dir,
        &started,
        Some(&finished),
        Some(&report),
    );
    write_manifest(&dir, &done)?;
    if let Err(e) = dir.publish_latest() {
        tracing::warn!(
            "cannot point runs/{}/latest at this run: {e}",
            plan.spec.name
        );
    }

    let secs = (finished - started).num_milliseconds() as f64 / 1000.0;
    if globals.log_format == crate::LogFormat::Json {
        tracing::info!(event = "run_finished", status = done["status"].as_str().unwrap_or(""), run_dir = %dir.root.display(), seconds = secs);
        for s in report
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Failed)
        {
            tracing::error!(
                step = s.id,
                event = "step_failed",
                "{}",
                s.error.as_deref().unwrap_or("")
            );
        }
    } else {
        summary(&report, &dir, secs);
    }
    Ok(if report.succeeded {
        0
    } else {
        EXIT_STEP_FAILED
    })
}

fn write_manifest(dir: &RunDir, manifest: &serde_json::Value) -> Result<(), Failure> {
    dir.write_json(Path::new("manifest.json"), manifest)
        .map_err(|e| {
            Failure::one(
                EXIT_STEP_FAILED,
                Diagnostic::new(
                    "segflow::run-dir",
                    format!(
                        "cannot write manifest.json in `{}`: {e}",
                        dir.root.display()
                    ),
                ),
            )
        })
}

fn manifest(
    plan: &Plan,
    pipeline: &Path,
    threads: usize,
    dir: &RunDir,
    started: &chrono::DateTime<chrono::Utc>,
    finished: Option<&chrono::DateTime<chrono::Utc>>,
    report: Option<&RunReport>,
) -> serde_json::Value {
    let steps: Vec<serde_json::Value> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let c = &s.component;
            let r = report.map(|r| &r.steps[i]);
            json!({
                "id": s.spec.id,
                "stage": s.spec.stage,
                "plugin": s.spec.plugin,
                "component": c.qualified_name(),
                "component_version": c.version,
                "library": {
                    "name": c.library.name,
                    "version": c.library.version,
                    "path": c.library.path.display().to_string(),
                    "sha256": c.library.sha256(),
                },
                "needs": s.inputs.iter().map(|i| i.name.clone()).collect::<Vec<_>>(),
                // As written: `${VAR}` stays a reference, so no secret is stored.
                "config": s.spec.with_raw,
                "config_hash": config_hash(&s.spec.with),
                "status": r.map_or("pending", |r| r.status.as_str()),
                "error": r.and_then(|r| r.error.clone()),
                "threads": r.map(|r| r.threads),
                "started_at": r.and_then(|r| r.started_at).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                "run_returned_at": r.and_then(|r| r.returned_at).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                "duration_ms": r.map(|r| (r.duration_ms * 1000.0).round() / 1000.0),
                "write_ms": r.map(|r| (r.write_ms * 1000.0).round() / 1000.0),
                "rows_in": r.map(|r| r.rows_in),
                "rows": r.map(|r| json!(r.rows)),
                // For a clean step: what went out clean and what was rejected.
                "rows_out": r.and_then(|r| r.rows.get("main").copied()),
                "rows_quarantined": r.and_then(|r| r.rows.get("quarantine").copied()),
                // `persist: false`: the ports were not written to steps/<id>/.
                "persisted": s.spec.persist,
                // `isolation: process` or `--isolate`: the step ran in a child process.
                "isolation": s.spec.isolation.as_str(),
                "timeout": s.spec.timeout.as_ref().map(|l| l.text.clone()),
                "memory_limit": s.spec.memory_limit.as_ref().map(|l| l.text.clone()),
                "cache_hit": false,
            })
        })
        .collect();
    let status = match report {
        None => "running",
        Some(r) if r.succeeded => "succeeded",
        Some(_) => "failed",
    };
    json!({
        "pipeline": plan.spec.name,
        "description": plan.spec.description,
        "pipeline_file": pipeline.display().to_string(),
        "segflow_version": env!("CARGO_PKG_VERSION"),
        "abi_version": segflow_abi::ABI_VERSION,
        "run_dir": dir.root.display().to_string(),
        "started_at": started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "finished_at": finished.map(|f| f.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "status": status,
        "threads": threads,
        "steps": steps,
    })
}

fn summary(report: &RunReport, dir: &RunDir, secs: f64) {
    let ok = report
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Succeeded)
        .count();
    eprintln!();
    eprintln!(
        "{:<24} {:<10} {:>10} {:>12}  outputs (rows)",
        "step", "status", "time", "rows in"
    );
    for s in &report.steps {
        let rows: Vec<String> = s.rows.iter().map(|(p, n)| format!("{p}={n}")).collect();
        eprintln!(
            "{:<24} {:<10} {:>9.0}ms {:>12}  {}",
            s.id,
            s.status.as_str(),
            s.duration_ms,
            s.rows_in,
            rows.join(" ")
        );
    }
    eprintln!();
    for s in report
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Failed)
    {
        eprintln!(
            "error: step `{}` failed: {}",
            s.id,
            s.error.as_deref().unwrap_or("(no message)")
        );
        eprintln!("  help: see the step's config and inputs; rerun with SEGFLOW_LOG=debug for the component's logs");
    }
    eprintln!(
        "{} of {} steps succeeded in {secs:.2}s; outputs in {}",
        ok,
        report.steps.len(),
        dir.root.display()
    );
}

/// A pipeline the engine accepts but whose components refuse their inputs at plan time
/// (a missing or empty file, a ragged CSV, a column the data lacks, an unreachable
/// database) is a well-formed pipeline that cannot run on this data: for `run` that
/// is a failed step (exit 1), as the same problem found while running would be.
/// `validate` still calls it invalid (exit 2).
fn step_failure(mut f: Failure) -> Failure {
    let component_only = !f.diagnostics.is_empty()
        && f.diagnostics
            .iter()
            .all(|d| matches!(d.code, "segflow::plan" | "segflow::plugin-panic"));
    if f.code == EXIT_INVALID && component_only {
        f.code = EXIT_STEP_FAILED;
    }
    f
}
