//! `segflow run`: plan, execute, and record the run in its directory.

use crate::observe::{max_plugin_level, CliObserver};
use crate::{load_plan, Failure, Globals, EXIT_INVALID, EXIT_STEP_FAILED};
use segflow_engine::cache::Cache;
use segflow_engine::diag::Diagnostic;
use segflow_engine::execute::{
    config_hash, execute, CacheUse, ExecOptions, Resume, RunReport, StepStatus,
};
use segflow_engine::store::RunDir;
use segflow_engine::validate::Plan;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What `segflow run` was asked to do.
pub struct RunRequest {
    pub pipeline: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub sets: Vec<String>,
    pub threads: Option<usize>,
    pub no_cache: bool,
    pub refresh: Vec<String>,
    pub resume: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
}

pub fn run(globals: &Globals, req: RunRequest) -> Result<u8, Failure> {
    let resume = match &req.resume {
        Some(dir) => Some(read_resume(dir)?),
        None => None,
    };
    let pipeline: PathBuf = match (&req.pipeline, &resume) {
        (Some(p), _) => p.clone(),
        (None, Some((_, manifest))) => manifest["pipeline_file"]
            .as_str()
            .map(PathBuf::from)
            .ok_or_else(|| usage("the run given to --resume does not name its pipeline file; pass PIPELINE.yaml too"))?,
        (None, None) => {
            return Err(usage(
                "no pipeline given: pass PIPELINE.yaml, or --resume RUN_DIR to finish an earlier run",
            ))
        }
    };
    let pipeline = pipeline.as_path();
    // Resuming without new overrides repeats the earlier run's.
    let sets: Vec<String> = match (&resume, req.sets.is_empty()) {
        (Some((_, m)), true) => m["overrides"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        _ => req.sets.clone(),
    };
    let out = req.out.as_deref();
    let threads = req.threads;
    let plan = load_plan(globals, pipeline, &sets).map_err(step_failure)?;
    for r in &req.refresh {
        if !plan.steps.iter().any(|s| &s.spec.id == r) {
            let ids: Vec<&str> = plan.steps.iter().map(|s| s.spec.id.as_str()).collect();
            return Err(usage(&format!(
                "--refresh names step `{r}`, which is not in pipeline `{}` (its steps: {})",
                plan.spec.name,
                ids.join(", ")
            )));
        }
    }
    if let (Some(o), Some(r)) = (out, &req.resume) {
        let same = std::fs::canonicalize(o)
            .ok()
            .is_some_and(|o| std::fs::canonicalize(r).ok().is_some_and(|r| r == o));
        if same {
            return Err(usage(
                "--out is the run given to --resume; a resumed run is written to a new directory (leave out --out, or pass another one)",
            ));
        }
    }
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
    let cache_root = crate::cache_cmd::cache_dir(req.cache_dir.as_deref());
    let cache = if req.no_cache {
        None
    } else {
        match Cache::open(&cache_root) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(
                    "cannot open the step cache at `{}` ({e}); running without it",
                    cache_root.display()
                );
                None
            }
        }
    };
    let context = RunContext {
        pipeline,
        sets: &sets,
        threads,
        dir: &dir,
        resumed_from: req.resume.as_deref(),
        cache_root: cache.as_ref().map(|c| c.root()),
    };
    let started = chrono::Utc::now();
    write_manifest(&dir, &manifest(&plan, &context, &started, None, None))?;

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
        cache: cache.clone(),
        refresh: req.refresh.iter().cloned().collect(),
        resume: resume.map(|(r, _)| r),
    };
    let report = execute(&plan, &opts);
    let finished = chrono::Utc::now();
    let done = manifest(&plan, &context, &started, Some(&finished), Some(&report));
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

/// What the manifest says about the run besides its steps.
struct RunContext<'a> {
    pipeline: &'a Path,
    sets: &'a [String],
    threads: usize,
    dir: &'a RunDir,
    resumed_from: Option<&'a Path>,
    cache_root: Option<&'a Path>,
}

fn usage(message: &str) -> Failure {
    Failure::one(
        EXIT_INVALID,
        Diagnostic::new("segflow::usage", message.to_string()),
    )
}

/// The earlier run of `--resume`: the steps it finished (key and port files) and its
/// manifest.
fn read_resume(dir: &Path) -> Result<(Resume, serde_json::Value), Failure> {
    let path = dir.join("manifest.json");
    let text = std::fs::read(&path).map_err(|e| {
        Failure::one(
            EXIT_INVALID,
            Diagnostic::new(
                "segflow::resume",
                format!("cannot read `{}`: {e}", path.display()),
            )
            .help(
                "--resume takes a run directory written by `segflow run` (see `segflow runs list`)",
            ),
        )
    })?;
    let manifest: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        Failure::one(
            EXIT_INVALID,
            Diagnostic::new(
                "segflow::resume",
                format!("`{}` is not a segflow manifest: {e}", path.display()),
            ),
        )
    })?;
    let mut steps = std::collections::BTreeMap::new();
    for s in manifest["steps"].as_array().into_iter().flatten() {
        let (Some(id), Some(key)) = (s["id"].as_str(), s["cache_key"].as_str()) else {
            continue;
        };
        if s["status"] != "succeeded" {
            continue;
        }
        let Ok(ports) = serde_json::from_value::<
            std::collections::BTreeMap<String, segflow_engine::cache::PortEntry>,
        >(s["outputs"].clone()) else {
            continue;
        };
        steps.insert(id.to_string(), (key.to_string(), ports));
    }
    Ok((
        Resume {
            dir: dir.to_path_buf(),
            steps,
        },
        manifest,
    ))
}

fn manifest(
    plan: &Plan,
    ctx: &RunContext,
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
                // An isolated step: Arrow IPC bytes each way, the time to send its
                // inputs and to get its outputs back, and whether they came mapped.
                "transfer": r.and_then(|r| r.transfer).map(|t| json!({
                    "bytes_in": t.bytes_in,
                    "bytes_out": t.bytes_out,
                    "send_ms": (t.send_ms * 1000.0).round() / 1000.0,
                    "send_busy_ms": (t.send_busy_ms * 1000.0).round() / 1000.0,
                    "answer_ms": (t.answer_ms * 1000.0).round() / 1000.0,
                    "mapped": t.mapped,
                })),
                "cache_hit": r.is_some_and(|r| matches!(r.cache, CacheUse::Hit | CacheUse::Reused)),
                // hit | reused | stored | ran | off, and why a step that ran was not
                // looked up or stored.
                "cache": r.map(|r| r.cache.as_str()),
                "cache_note": r.and_then(|r| r.cache_note.clone()),
                "cache_key": r.and_then(|r| r.cache_key.clone()),
                // Per written port: rows, sha256 and size of steps/<id>/<port>.parquet.
                "outputs": r.map(|r| json!(r.outputs)),
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
        "pipeline_file": ctx.pipeline.display().to_string(),
        "overrides": ctx.sets,
        "segflow_version": env!("CARGO_PKG_VERSION"),
        "abi_version": segflow_abi::ABI_VERSION,
        "run_dir": ctx.dir.root.display().to_string(),
        "resumed_from": ctx.resumed_from.map(|p| p.display().to_string()),
        "cache_dir": ctx.cache_root.map(|p| p.display().to_string()),
        "started_at": started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "finished_at": finished.map(|f| f.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "duration_ms": finished.map(|f| (*f - *started).num_milliseconds()),
        "status": status,
        "threads": ctx.threads,
        "steps_cached": report.map(|r| r.steps.iter().filter(|s| matches!(s.cache, CacheUse::Hit | CacheUse::Reused)).count()),
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
        let status = match s.cache {
            CacheUse::Hit if s.status == StepStatus::Succeeded => "cached",
            CacheUse::Reused if s.status == StepStatus::Succeeded => "reused",
            _ => s.status.as_str(),
        };
        eprintln!(
            "{:<24} {:<10} {:>9.0}ms {:>12}  {}",
            s.id,
            status,
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
    let cached = report
        .steps
        .iter()
        .filter(|s| matches!(s.cache, CacheUse::Hit | CacheUse::Reused))
        .count();
    let cached = if cached > 0 {
        format!(" ({cached} from cache)")
    } else {
        String::new()
    };
    eprintln!(
        "{} of {} steps succeeded{cached} in {secs:.2}s; outputs in {}",
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
