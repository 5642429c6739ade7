//! `segflow runs list|show|diff`: the run history kept in run directories.
//!
//! Everything here only reads: `manifest.json`, `steps/<id>/facts.json` and
//! `steps/<id>/metrics.parquet` of runs written by `segflow run`. Manifests of older
//! segflow versions lack some fields (`overrides`, `resumed_from`, `duration_ms`,
//! `steps_cached`, a step's `cache` and `outputs`): every field is optional here.

use crate::{Failure, EXIT_INVALID};
use segflow_engine::diag::Diagnostic;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Relative difference below which two metric values count as equal in text mode.
const REL_EPS: f64 = 1e-12;

// ---------------------------------------------------------------------------------------
// Commands

pub fn list(runs: &Path, pipeline: Option<&str>, json: bool) -> Result<u8, Failure> {
    let mut found = scan(runs);
    if let Some(p) = pipeline {
        found.retain(|r| r.pipeline() == p || r.parent_name() == p);
    }
    // Newest first: by start time, then by directory name (`...Z-1` after `...Z`).
    found.sort_by(|a, b| {
        let ka = (a.started_ms(), a.name());
        let kb = (b.started_ms(), b.name());
        kb.cmp(&ka)
    });
    if json {
        let arr: Vec<Value> = found.iter().map(|r| r.list_json()).collect();
        out(&(serde_json::to_string_pretty(&Value::Array(arr)).unwrap_or_default() + "\n"));
        return Ok(0);
    }
    if found.is_empty() {
        let what = match pipeline {
            Some(p) => format!("no runs of pipeline `{p}`"),
            None => "no runs".to_string(),
        };
        let why = if runs.is_dir() {
            String::new()
        } else {
            " (the directory does not exist)".to_string()
        };
        out(&format!(
            "{what} under {}{why}; `segflow run PIPELINE.yaml` records one there (or pass --runs-dir DIR)\n",
            runs.display()
        ));
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|r| {
            vec![
                r.pipeline(),
                r.name(),
                r.started_display(),
                r.status_display(),
                r.duration_ms().map_or("-".into(), human_ms),
                r.steps().len().to_string(),
                r.cached_count().to_string(),
                r.failed_steps().join(","),
            ]
        })
        .collect();
    let t = table(
        &[
            "pipeline", "run", "started", "status", "duration", "steps", "cached", "failed",
        ],
        &[false, false, false, false, true, true, true, false],
        &rows,
    );
    out(&t);
    Ok(0)
}

pub fn show(runs: &Path, run: &str, json: bool) -> Result<u8, Failure> {
    let r = resolve(runs, run)?;
    if json {
        out(&(serde_json::to_string_pretty(&r.show_json()).unwrap_or_default() + "\n"));
        return Ok(0);
    }
    let m = &r.manifest;
    let overrides = str_list(&m["overrides"]);
    let mut s = String::new();
    let header: Vec<(&str, String)> = vec![
        ("pipeline", r.pipeline()),
        ("run", r.path_display()),
        ("pipeline file", text_or_dash(&m["pipeline_file"])),
        ("segflow", text_or_dash(&m["segflow_version"])),
        ("status", r.status_display()),
        ("started", r.started_display()),
        (
            "finished",
            m["finished_at"].as_str().map_or("-".into(), readable_time),
        ),
        ("duration", r.duration_ms().map_or("-".into(), human_ms)),
        ("threads", text_or_dash(&m["threads"])),
        (
            "overrides",
            if overrides.is_empty() {
                "-".into()
            } else {
                overrides.join(" ")
            },
        ),
        ("resumed from", text_or_dash(&m["resumed_from"])),
        (
            "steps",
            format!(
                "{} ({} cached, {} failed)",
                r.steps().len(),
                r.cached_count(),
                r.failed_steps().len()
            ),
        ),
    ];
    for (k, v) in &header {
        s.push_str(&format!("{:<14} {v}\n", format!("{k}:")));
    }
    s.push('\n');
    let rows: Vec<Vec<String>> = r
        .steps()
        .iter()
        .map(|st| {
            vec![
                text_or_dash(&st["id"]),
                text_or_dash(&st["stage"]),
                text_or_dash(&st["component"]),
                step_status_display(st),
                st["duration_ms"].as_f64().map_or("-".into(), human_ms),
                st["rows_in"].as_u64().map_or("-".into(), |n| n.to_string()),
                ports_text(st),
            ]
        })
        .collect();
    s.push_str(&table(
        &[
            "step",
            "stage",
            "component",
            "status",
            "time",
            "rows in",
            "rows out",
        ],
        &[false, false, false, false, true, true, false],
        &rows,
    ));
    let failed: Vec<&Value> = r
        .steps()
        .iter()
        .filter(|st| st["status"] == "failed")
        .collect();
    if !failed.is_empty() {
        s.push('\n');
        for st in failed {
            s.push_str(&format!(
                "error: step `{}` failed: {}\n",
                text_or_dash(&st["id"]),
                st["error"].as_str().unwrap_or("(no message)")
            ));
        }
    }
    out(&s);
    Ok(0)
}

pub fn diff(runs: &Path, a: &str, b: &str, json: bool) -> Result<u8, Failure> {
    let ra = resolve(runs, a)?;
    let rb = resolve(runs, b)?;
    let d = Diff::compute(&ra, &rb);
    if json {
        out(&(serde_json::to_string_pretty(&d.to_json(&ra, &rb)).unwrap_or_default() + "\n"));
    } else {
        out(&d.text(&ra, &rb));
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------
// Run directories

struct Run {
    path: PathBuf,
    manifest: Value,
}

impl Run {
    fn load(path: &Path) -> Result<Run, String> {
        let f = path.join("manifest.json");
        let bytes = std::fs::read(&f).map_err(|e| format!("cannot read `{}`: {e}", f.display()))?;
        let manifest: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("`{}` is not valid JSON: {e}", f.display()))?;
        if !manifest.is_object() {
            return Err(format!("`{}` is not a JSON object", f.display()));
        }
        Ok(Run {
            path: path.to_path_buf(),
            manifest,
        })
    }

    /// The directory's own name (the timestamp for default run directories); for a
    /// `latest` symlink, the name it points at.
    fn name(&self) -> String {
        let p = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        p.file_name()
            .or_else(|| self.path.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// The path, and where it leads when it is a symlink (`latest`).
    fn path_display(&self) -> String {
        match std::fs::read_link(&self.path) {
            Ok(target) => format!("{} -> {}", self.path.display(), target.display()),
            Err(_) => self.path.display().to_string(),
        }
    }

    fn parent_name(&self) -> String {
        self.path
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn pipeline(&self) -> String {
        self.manifest["pipeline"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| self.parent_name())
    }

    fn steps(&self) -> &[Value] {
        self.manifest["steps"]
            .as_array()
            .map_or(&[], |v| v.as_slice())
    }

    fn step(&self, id: &str) -> Option<&Value> {
        self.steps().iter().find(|s| s["id"] == id)
    }

    fn step_ids(&self) -> Vec<String> {
        self.steps()
            .iter()
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect()
    }

    fn started_ms(&self) -> i64 {
        self.manifest["started_at"]
            .as_str()
            .and_then(parse_time)
            .map_or(i64::MIN, |t| t.timestamp_millis())
    }

    fn started_display(&self) -> String {
        self.manifest["started_at"]
            .as_str()
            .map_or("-".into(), readable_time)
    }

    fn finished(&self) -> bool {
        self.manifest["finished_at"].is_string()
    }

    /// The manifest's status, or `running?` for a run that never finished (still running,
    /// or killed before it could record its end).
    fn status_display(&self) -> String {
        if !self.finished() {
            return "running?".into();
        }
        self.manifest["status"]
            .as_str()
            .unwrap_or("unknown")
            .to_string()
    }

    fn duration_ms(&self) -> Option<f64> {
        if !self.finished() {
            return None;
        }
        if let Some(d) = self.manifest["duration_ms"].as_f64() {
            return Some(d);
        }
        let s = parse_time(self.manifest["started_at"].as_str()?)?;
        let f = parse_time(self.manifest["finished_at"].as_str()?)?;
        Some((f - s).num_milliseconds() as f64)
    }

    fn cached_count(&self) -> usize {
        self.steps().iter().filter(|s| is_cached(s)).count()
    }

    fn failed_steps(&self) -> Vec<String> {
        self.steps()
            .iter()
            .filter(|s| s["status"] == "failed")
            .map(|s| text_or_dash(&s["id"]))
            .collect()
    }

    fn list_json(&self) -> Value {
        json!({
            "pipeline": self.pipeline(),
            "run": self.name(),
            "path": self.path.display().to_string(),
            "started_at": self.manifest["started_at"],
            "finished_at": self.manifest["finished_at"],
            "status": self.manifest["status"],
            "finished": self.finished(),
            "duration_ms": self.duration_ms(),
            "steps": self.steps().len(),
            "cached": self.cached_count(),
            "failed": self.failed_steps(),
        })
    }

    fn show_json(&self) -> Value {
        let m = &self.manifest;
        let steps: Vec<Value> = self
            .steps()
            .iter()
            .map(|s| {
                json!({
                    "id": s["id"],
                    "stage": s["stage"],
                    "component": s["component"],
                    "component_version": s["component_version"],
                    "status": s["status"],
                    "cached": is_cached(s),
                    "cache": s.get("cache").cloned().unwrap_or(Value::Null),
                    "duration_ms": s["duration_ms"],
                    "rows_in": s["rows_in"],
                    "rows": s.get("rows").cloned().unwrap_or(Value::Null),
                    "error": s.get("error").cloned().unwrap_or(Value::Null),
                })
            })
            .collect();
        json!({
            "pipeline": self.pipeline(),
            "description": m.get("description").cloned().unwrap_or(Value::Null),
            "run": self.name(),
            "path": self.path.display().to_string(),
            "pipeline_file": m.get("pipeline_file").cloned().unwrap_or(Value::Null),
            "segflow_version": m.get("segflow_version").cloned().unwrap_or(Value::Null),
            "status": m.get("status").cloned().unwrap_or(Value::Null),
            "finished": self.finished(),
            "started_at": m.get("started_at").cloned().unwrap_or(Value::Null),
            "finished_at": m.get("finished_at").cloned().unwrap_or(Value::Null),
            "duration_ms": self.duration_ms(),
            "threads": m.get("threads").cloned().unwrap_or(Value::Null),
            "overrides": str_list(&m["overrides"]),
            "resumed_from": m.get("resumed_from").cloned().unwrap_or(Value::Null),
            "steps_total": self.steps().len(),
            "steps_cached": self.cached_count(),
            "steps_failed": self.failed_steps(),
            "steps": steps,
        })
    }

    fn facts(&self, id: &str) -> Option<Value> {
        let p = self.path.join("steps").join(id).join("facts.json");
        let bytes = std::fs::read(p).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

fn is_cached(step: &Value) -> bool {
    step["cache_hit"] == true || step["cache"] == "hit"
}

fn step_status_display(step: &Value) -> String {
    if is_cached(step) {
        return "cached".into();
    }
    if step["cache"] == "reused" {
        return "reused".into();
    }
    text_or_dash(&step["status"])
}

/// Every run under `runs`: `runs/<pipeline>/<run>/manifest.json`, and also run
/// directories directly in `runs` (so `--runs-dir runs/quickstart` works too). `latest`
/// symlinks and directories without a manifest are skipped.
fn scan(runs: &Path) -> Vec<Run> {
    let mut found = Vec::new();
    let mut take = |dir: &Path| match Run::load(dir) {
        Ok(r) => found.push(r),
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "warning: skipping {}: {e}",
                dir.display()
            );
        }
    };
    for child in sorted_dirs(runs) {
        if child.join("manifest.json").is_file() {
            take(&child);
            continue;
        }
        for run in sorted_dirs(&child) {
            if run.join("manifest.json").is_file() {
                take(&run);
            }
        }
    }
    found
}

/// Sub-directories of `dir` that are neither symlinks (`latest`) nor hidden.
fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.')
                && name != "latest"
                && e.file_type().is_ok_and(|t| t.is_dir() && !t.is_symlink())
        })
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// RUN as a directory holding manifest.json; else RUNS/RUN; else RUNS/RUN/latest; else a
/// bare run name (timestamp) searched in RUNS/*/.
fn resolve(runs: &Path, run: &str) -> Result<Run, Failure> {
    let usage = |msg: String, help: String| {
        Failure::one(
            EXIT_INVALID,
            Diagnostic::new("segflow::usage", msg).help(help),
        )
    };
    if run.is_empty() {
        return Err(usage(
            "the run to show is empty".into(),
            "pass a run directory, NAME/TIMESTAMP, NAME/latest or NAME; `segflow runs list` shows the runs".into(),
        ));
    }
    let mut tried: Vec<PathBuf> = Vec::new();
    let mut candidates = vec![
        PathBuf::from(run),
        runs.join(run),
        runs.join(run).join("latest"),
    ];
    candidates.dedup();
    for c in candidates {
        if c.join("manifest.json").is_file() {
            return load_or_fail(&c);
        }
        tried.push(c);
    }
    // A bare run name: look in every pipeline's directory.
    let looks_bare = !run.contains('/') && !run.contains(std::path::MAIN_SEPARATOR);
    if looks_bare {
        let hits: Vec<PathBuf> = sorted_dirs(runs)
            .into_iter()
            .map(|p| p.join(run))
            .filter(|p| p.join("manifest.json").is_file())
            .collect();
        if hits.len() == 1 {
            return load_or_fail(&hits[0]);
        }
        if hits.len() > 1 {
            let names: Vec<String> = hits.iter().map(|p| format!("`{}`", p.display())).collect();
            return Err(usage(
                format!(
                    "run `{run}` is ambiguous: {} pipelines have a run of that name ({})",
                    hits.len(),
                    names.join(", ")
                ),
                format!(
                    "name the pipeline too, e.g. `{}`",
                    hits[0].strip_prefix(runs).unwrap_or(&hits[0]).display()
                ),
            ));
        }
        tried.push(runs.join("*").join(run));
    }
    let tried: Vec<String> = tried.iter().map(|p| format!("`{}`", p.display())).collect();
    let existing_dir = Path::new(run).is_dir();
    let msg = if existing_dir {
        format!(
            "`{run}` is not a run directory: it has no manifest.json (also tried {})",
            tried[1..].join(", ")
        )
    } else {
        format!("no run `{run}`: tried {}", tried.join(", "))
    };
    Err(usage(
        msg,
        format!(
            "pass a run directory, NAME/TIMESTAMP, NAME/latest or a pipeline NAME; `segflow runs list` shows the runs under {} (--runs-dir DIR for others)",
            runs.display()
        ),
    ))
}

fn load_or_fail(dir: &Path) -> Result<Run, Failure> {
    Run::load(dir).map_err(|e| {
        Failure::one(
            EXIT_INVALID,
            Diagnostic::new("segflow::usage", format!("`{}` is not a readable run: {e}", dir.display()))
                .help("the run directory's manifest.json is written by `segflow run`; a damaged one cannot be shown"),
        )
    })
}

// ---------------------------------------------------------------------------------------
// diff

struct ConfigChange {
    step: String,
    path: String,
    a: Option<Value>,
    b: Option<Value>,
}

struct RowCount {
    step: String,
    port: String,
    a: Option<u64>,
    b: Option<u64>,
    a_sha: Option<String>,
    b_sha: Option<String>,
}

impl RowCount {
    fn content_changed(&self) -> bool {
        matches!((&self.a_sha, &self.b_sha), (Some(x), Some(y)) if x != y)
    }
    fn differs(&self) -> bool {
        self.a != self.b || self.content_changed()
    }
}

struct MetricRow {
    step: String,
    source: &'static str,
    key: String,
    a: Option<f64>,
    b: Option<f64>,
}

impl MetricRow {
    fn differs(&self) -> bool {
        match (self.a, self.b) {
            (Some(x), Some(y)) => differs(x, y),
            (None, None) => false,
            _ => true,
        }
    }
    /// Timings (`..._ms`, `..._seconds`) always differ between runs.
    fn is_timing(&self) -> bool {
        let last = self.key.rsplit('.').next().unwrap_or("");
        self.source == "facts"
            && (last.ends_with("_ms") || last.ends_with("_seconds") || last.ends_with("_secs"))
    }
}

fn differs(x: f64, y: f64) -> bool {
    if x == y || (x.is_nan() && y.is_nan()) {
        return false;
    }
    if !x.is_finite() || !y.is_finite() {
        return true;
    }
    (x - y).abs() > REL_EPS * x.abs().max(y.abs())
}

struct Diff {
    only_a: Vec<String>,
    only_b: Vec<String>,
    common: Vec<String>,
    all: Vec<String>,
    config: Vec<ConfigChange>,
    rows: Vec<RowCount>,
    metrics: Vec<MetricRow>,
    notes: Vec<String>,
}

impl Diff {
    fn compute(a: &Run, b: &Run) -> Diff {
        let ids_a = a.step_ids();
        let ids_b = b.step_ids();
        let set_a: BTreeSet<&String> = ids_a.iter().collect();
        let set_b: BTreeSet<&String> = ids_b.iter().collect();
        let only_a: Vec<String> = ids_a
            .iter()
            .filter(|i| !set_b.contains(i))
            .cloned()
            .collect();
        let only_b: Vec<String> = ids_b
            .iter()
            .filter(|i| !set_a.contains(i))
            .cloned()
            .collect();
        let common: Vec<String> = ids_a
            .iter()
            .filter(|i| set_b.contains(i))
            .cloned()
            .collect();
        // Pipeline order of A, then B's extra steps.
        let mut all = ids_a.clone();
        all.extend(only_b.iter().cloned());
        let mut notes = Vec::new();

        let mut config = Vec::new();
        for id in &common {
            let (sa, sb) = (a.step(id).unwrap(), b.step(id).unwrap());
            let mut fa = Ordered::new();
            let mut fb = Ordered::new();
            for (key, flat) in [(sa, &mut fa), (sb, &mut fb)] {
                for k in ["component", "component_version"] {
                    if let Some(v) = key.get(k) {
                        flat.insert(k.to_string(), v.clone());
                    }
                }
                if let Some(v) = key.get("library").and_then(|l| l.get("sha256")) {
                    flat.insert("library.sha256".into(), v.clone());
                }
                // No `with:` at all and `with: {}` are the same config.
                match key.get("config") {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(m)) if m.is_empty() => {}
                    Some(c) => flatten(c, "with", flat),
                }
            }
            // Component fields first, then config paths in the YAML's order.
            for k in union_keys(&fa, &fb) {
                let (va, vb) = (fa.get(&k), fb.get(&k));
                // `x: {}` on one side and `x.k: 1` on the other: only `x.k` is news.
                let emptied = |v: Option<&Value>, other: &Ordered<Value>| {
                    v.is_some_and(|v| {
                        matches!(v, Value::Object(m) if m.is_empty())
                            || matches!(v, Value::Array(a) if a.is_empty())
                    }) && other.keys().any(|o| {
                        o.len() > k.len()
                            && o.starts_with(k.as_str())
                            && matches!(o.as_bytes()[k.len()], b'.' | b'[')
                    })
                };
                if (vb.is_none() && emptied(va, &fb)) || (va.is_none() && emptied(vb, &fa)) {
                    continue;
                }
                if va != vb {
                    config.push(ConfigChange {
                        step: id.clone(),
                        path: k.clone(),
                        a: va.cloned(),
                        b: vb.cloned(),
                    });
                }
            }
        }

        let mut rows = Vec::new();
        for id in &all {
            let (sa, sb) = (a.step(id), b.step(id));
            let ports = |s: Option<&Value>| -> Ordered<(Option<u64>, Option<String>)> {
                let mut m = Ordered::new();
                let Some(s) = s else { return m };
                if let Some(r) = s["rows"].as_object() {
                    for (p, n) in r {
                        m.entry(p, (None, None)).0 = n.as_u64();
                    }
                }
                if let Some(o) = s.get("outputs").and_then(Value::as_object) {
                    for (p, v) in o {
                        let e = m.entry(p, (None, None));
                        if e.0.is_none() {
                            e.0 = v["rows"].as_u64();
                        }
                        e.1 = v["sha256"].as_str().map(str::to_string);
                    }
                }
                m
            };
            let (pa, pb) = (ports(sa), ports(sb));
            for p in union_keys(&pa, &pb) {
                let (xa, xb) = (pa.get(&p), pb.get(&p));
                rows.push(RowCount {
                    step: id.clone(),
                    port: p.clone(),
                    a: xa.and_then(|x| x.0),
                    b: xb.and_then(|x| x.0),
                    a_sha: xa.and_then(|x| x.1.clone()),
                    b_sha: xb.and_then(|x| x.1.clone()),
                });
            }
        }

        let mut metrics = Vec::new();
        for id in &common {
            let fa = numeric_leaves(a.facts(id).as_ref());
            let fb = numeric_leaves(b.facts(id).as_ref());
            for k in union_keys(&fa, &fb) {
                metrics.push(MetricRow {
                    step: id.clone(),
                    source: "facts",
                    a: fa.get(&k).copied(),
                    b: fb.get(&k).copied(),
                    key: k,
                });
            }
            let pa = a.path.join("steps").join(id).join("metrics.parquet");
            let pb = b.path.join("steps").join(id).join("metrics.parquet");
            if !pa.is_file() && !pb.is_file() {
                continue;
            }
            let mut read = |p: &Path| -> Ordered<Option<f64>> {
                if !p.is_file() {
                    return Ordered::new();
                }
                match read_metrics(p) {
                    Ok(m) => m,
                    Err(e) => {
                        notes.push(format!("cannot compare `{}`: {e}", p.display()));
                        Ordered::new()
                    }
                }
            };
            let (ma, mb) = (read(&pa), read(&pb));
            for k in union_keys(&ma, &mb) {
                metrics.push(MetricRow {
                    step: id.clone(),
                    source: "metrics.parquet",
                    a: ma.get(&k).copied().flatten(),
                    b: mb.get(&k).copied().flatten(),
                    key: k,
                });
            }
        }
        Diff {
            only_a,
            only_b,
            common,
            all,
            config,
            rows,
            metrics,
            notes,
        }
    }

    fn text(&self, a: &Run, b: &Run) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "A: {}  ({}, started {}, {})\n",
            a.path_display(),
            a.pipeline(),
            a.started_display(),
            a.status_display()
        ));
        s.push_str(&format!(
            "B: {}  ({}, started {}, {})\n",
            b.path_display(),
            b.pipeline(),
            b.started_display(),
            b.status_display()
        ));
        if a.pipeline() != b.pipeline() {
            s.push_str(&format!(
                "note: different pipelines (`{}` and `{}`); steps are compared by id\n",
                a.pipeline(),
                b.pipeline()
            ));
        }
        let ov_a = str_list(&a.manifest["overrides"]);
        let ov_b = str_list(&b.manifest["overrides"]);
        if ov_a != ov_b {
            s.push_str(&format!(
                "overrides: A {}  B {}\n",
                if ov_a.is_empty() {
                    "-".into()
                } else {
                    ov_a.join(" ")
                },
                if ov_b.is_empty() {
                    "-".into()
                } else {
                    ov_b.join(" ")
                }
            ));
        }

        s.push_str("\nSteps\n");
        if self.only_a.is_empty() && self.only_b.is_empty() {
            s.push_str(&format!("  the same {} steps in both\n", self.common.len()));
        } else {
            s.push_str(&format!(
                "  only in A: {}\n",
                if self.only_a.is_empty() {
                    "-".into()
                } else {
                    self.only_a.join(", ")
                }
            ));
            s.push_str(&format!(
                "  only in B: {}\n",
                if self.only_b.is_empty() {
                    "-".into()
                } else {
                    self.only_b.join(", ")
                }
            ));
        }

        s.push_str("\nConfig\n");
        if self.config.is_empty() {
            s.push_str("  no differences\n");
        } else {
            let rows: Vec<Vec<String>> = self
                .config
                .iter()
                .map(|c| {
                    vec![
                        c.step.clone(),
                        c.path.clone(),
                        c.a.as_ref().map_or("(absent)".into(), value_text),
                        c.b.as_ref().map_or("(absent)".into(), value_text),
                    ]
                })
                .collect();
            s.push_str(&indent(&table(
                &["step", "path", "A", "B"],
                &[false; 4],
                &rows,
            )));
        }

        s.push_str("\nRows\n");
        // Steps of one run only are named above; their ports are in --json.
        let common: BTreeSet<&String> = self.common.iter().collect();
        let diff_rows: Vec<&RowCount> = self
            .rows
            .iter()
            .filter(|r| r.a != r.b && common.contains(&r.step))
            .collect();
        let content_only: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.a == r.b && r.content_changed())
            .map(|r| format!("{}.{}", r.step, r.port))
            .collect();
        if diff_rows.is_empty() {
            s.push_str(&format!(
                "  no row-count differences ({} ports compared)\n",
                self.rows
                    .iter()
                    .filter(|r| common.contains(&r.step))
                    .count()
            ));
        } else {
            let rows: Vec<Vec<String>> = diff_rows
                .iter()
                .map(|r| {
                    let (d, pct) = deltas(r.a.map(|x| x as f64), r.b.map(|x| x as f64));
                    vec![
                        r.step.clone(),
                        r.port.clone(),
                        r.a.map_or("-".into(), |x| x.to_string()),
                        r.b.map_or("-".into(), |x| x.to_string()),
                        d,
                        pct,
                    ]
                })
                .collect();
            s.push_str(&indent(&table(
                &["step", "port", "A", "B", "delta", "delta %"],
                &[false, false, true, true, true, true],
                &rows,
            )));
        }

        if !content_only.is_empty() {
            s.push_str(&format!(
                "  same row count, different content (sha256): {}\n",
                content_only.join(", ")
            ));
        }

        s.push_str("\nMetrics\n");
        let shown: Vec<&MetricRow> = self
            .metrics
            .iter()
            .filter(|m| m.differs() && !m.is_timing())
            .collect();
        let timings = self
            .metrics
            .iter()
            .filter(|m| m.differs() && m.is_timing())
            .count();
        if shown.is_empty() {
            s.push_str(&format!(
                "  no differences ({} values compared)\n",
                self.metrics.len()
            ));
        } else {
            let rows: Vec<Vec<String>> = shown
                .iter()
                .map(|m| {
                    let (d, pct) = deltas(m.a, m.b);
                    let key = match m.source {
                        "facts" => m.key.clone(),
                        _ => format!("metrics: {}", m.key),
                    };
                    vec![
                        m.step.clone(),
                        key,
                        m.a.map_or("-".into(), num),
                        m.b.map_or("-".into(), num),
                        d,
                        pct,
                    ]
                })
                .collect();
            s.push_str(&indent(&table(
                &["step", "metric", "A", "B", "delta", "delta %"],
                &[false, false, true, true, true, true],
                &rows,
            )));
        }
        if timings > 0 {
            s.push_str(&format!(
                "  ({timings} timing values (`*_ms`) differ too; see --json)\n"
            ));
        }

        s.push_str("\nStatus\n");
        let rows: Vec<Vec<String>> = self
            .all
            .iter()
            .map(|id| {
                let (sa, sb) = (a.step(id), b.step(id));
                let st = |s: Option<&Value>| s.map_or("-".into(), step_status_display);
                let du = |s: Option<&Value>| {
                    s.and_then(|s| s["duration_ms"].as_f64())
                        .map_or("-".into(), human_ms)
                };
                vec![id.clone(), st(sa), st(sb), du(sa), du(sb)]
            })
            .collect();
        s.push_str(&indent(&table(
            &["step", "A", "B", "A time", "B time"],
            &[false, false, false, true, true],
            &rows,
        )));
        for n in &self.notes {
            s.push_str(&format!("\nnote: {n}\n"));
        }
        s
    }

    fn to_json(&self, a: &Run, b: &Run) -> Value {
        let side = |r: &Run| {
            json!({
                "path": r.path.display().to_string(),
                "pipeline": r.pipeline(),
                "started_at": r.manifest["started_at"],
                "status": r.manifest["status"],
                "finished": r.finished(),
                "duration_ms": r.duration_ms(),
                "overrides": str_list(&r.manifest["overrides"]),
            })
        };
        let change = |a: &Option<Value>, b: &Option<Value>| match (a, b) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            _ => "changed",
        };
        let config: Vec<Value> = self
            .config
            .iter()
            .map(|c| {
                json!({"step": c.step, "path": c.path, "a": c.a, "b": c.b, "change": change(&c.a, &c.b)})
            })
            .collect();
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let delta = match (r.a, r.b) {
                    (Some(x), Some(y)) => Some(y as i64 - x as i64),
                    _ => None,
                };
                let pct = match (r.a, r.b) {
                    (Some(x), Some(y)) if x != 0 => Some((y as f64 - x as f64) / x as f64 * 100.0),
                    (Some(0), Some(0)) => Some(0.0),
                    _ => None,
                };
                json!({
                    "step": r.step, "port": r.port, "a": r.a, "b": r.b,
                    "delta": delta, "delta_pct": pct,
                    "a_sha256": r.a_sha, "b_sha256": r.b_sha,
                    "differs": r.differs(),
                })
            })
            .collect();
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|m| {
                let delta = match (m.a, m.b) {
                    (Some(x), Some(y)) => Some(y - x),
                    _ => None,
                };
                json!({
                    "step": m.step, "source": m.source, "key": m.key,
                    "a": m.a.filter(|x| x.is_finite()), "b": m.b.filter(|x| x.is_finite()),
                    "delta": delta.filter(|x| x.is_finite()),
                    "differs": m.differs(), "timing": m.is_timing(),
                })
            })
            .collect();
        let steps: Vec<Value> = self
            .all
            .iter()
            .map(|id| {
                let one = |s: Option<&Value>| {
                    s.map_or(Value::Null, |s| {
                        json!({
                            "status": s["status"],
                            "cached": is_cached(s),
                            "cache": s.get("cache").cloned().unwrap_or(Value::Null),
                            "duration_ms": s["duration_ms"],
                        })
                    })
                };
                json!({"step": id, "a": one(a.step(id)), "b": one(b.step(id))})
            })
            .collect();
        json!({
            "a": side(a),
            "b": side(b),
            "same_pipeline": a.pipeline() == b.pipeline(),
            "steps_only_in_a": self.only_a,
            "steps_only_in_b": self.only_b,
            "config": config,
            "rows": rows,
            "metrics": metrics,
            "steps": steps,
            "notes": self.notes,
        })
    }
}

/// Flatten `v` into `prefix.key` / `prefix[i]` paths; empty objects and arrays are
/// leaves of their own.
fn flatten(v: &Value, prefix: &str, out: &mut Ordered<Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(x, &p, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                flatten(x, &format!("{prefix}[{i}]"), out);
            }
        }
        _ => {
            out.insert(prefix.to_string(), v.clone());
        }
    }
}

/// The numeric leaves of a facts object, by dotted path.
fn numeric_leaves(v: Option<&Value>) -> Ordered<f64> {
    let mut flat = Ordered::new();
    if let Some(v) = v {
        flatten(v, "", &mut flat);
    }
    let mut out = Ordered::new();
    for (k, v) in flat.items {
        if let Some(x) = v.as_f64() {
            out.insert(k, x);
        }
    }
    out
}

/// A map that keeps its keys in the order they were first inserted (the order of the
/// YAML, the facts, the metrics table), for reports that read like their sources.
struct Ordered<T> {
    items: Vec<(String, T)>,
    index: HashMap<String, usize>,
}

impl<T> Ordered<T> {
    fn new() -> Self {
        Ordered {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
    fn insert(&mut self, k: String, v: T) {
        match self.index.get(&k) {
            Some(&i) => self.items[i].1 = v,
            None => {
                self.index.insert(k.clone(), self.items.len());
                self.items.push((k, v));
            }
        }
    }
    fn entry(&mut self, k: &str, default: T) -> &mut T {
        let i = match self.index.get(k) {
            Some(&i) => i,
            None => {
                self.index.insert(k.to_string(), self.items.len());
                self.items.push((k.to_string(), default));
                self.items.len() - 1
            }
        };
        &mut self.items[i].1
    }
    fn get(&self, k: &str) -> Option<&T> {
        self.index.get(k).map(|&i| &self.items[i].1)
    }
    fn contains_key(&self, k: &str) -> bool {
        self.index.contains_key(k)
    }
    fn keys(&self) -> impl Iterator<Item = &String> {
        self.items.iter().map(|(k, _)| k)
    }
}

/// The keys of `a` in its order, then those only `b` has, in its order.
fn union_keys<T, U>(a: &Ordered<T>, b: &Ordered<U>) -> Vec<String> {
    let mut keys: Vec<String> = a.keys().cloned().collect();
    keys.extend(b.keys().filter(|k| !a.contains_key(k)).cloned());
    keys
}

/// The rows of an evaluate step's `metrics` table, keyed by `segmentation / metric`
/// (plus the other text columns, e.g. `segment`, when set).
fn read_metrics(p: &Path) -> Result<Ordered<Option<f64>>, String> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type};
    let f = std::fs::File::open(p).map_err(|e| e.to_string())?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())?;
    let mut out = Ordered::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let schema = batch.schema();
        let text_col = |name: &str| -> Result<arrow::array::ArrayRef, String> {
            let c = batch
                .column_by_name(name)
                .ok_or_else(|| format!("it has no `{name}` column"))?;
            arrow::compute::cast(c, &DataType::Utf8).map_err(|e| e.to_string())
        };
        let seg = text_col("segmentation")?;
        let met = text_col("metric")?;
        let val = batch
            .column_by_name("value")
            .ok_or("it has no `value` column")?;
        let val = arrow::compute::cast(val, &DataType::Float64).map_err(|e| e.to_string())?;
        let val = val.as_primitive::<Float64Type>();
        let extra: Vec<(String, arrow::array::ArrayRef)> = schema
            .fields()
            .iter()
            .filter(|f| {
                !matches!(f.name().as_str(), "segmentation" | "metric" | "value")
                    && matches!(
                        f.data_type(),
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                    )
            })
            .filter_map(|f| {
                let c = batch.column_by_name(f.name())?;
                Some((
                    f.name().clone(),
                    arrow::compute::cast(c, &DataType::Utf8).ok()?,
                ))
            })
            .collect();
        let (seg, met) = (seg.as_string::<i32>(), met.as_string::<i32>());
        for i in 0..batch.num_rows() {
            let s = if seg.is_null(i) { "" } else { seg.value(i) };
            let m = if met.is_null(i) { "" } else { met.value(i) };
            let mut key = format!("{s} / {m}");
            for (name, c) in &extra {
                let c = c.as_string::<i32>();
                if !c.is_null(i) {
                    key.push_str(&format!(" [{name}={}]", c.value(i)));
                }
            }
            // Repeated keys stay apart by their order.
            let mut k = key.clone();
            let mut n = 1;
            while out.contains_key(&k) {
                n += 1;
                k = format!("{key} #{n}");
            }
            let v = (!val.is_null(i)).then(|| val.value(i));
            out.insert(k, v);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Formatting

/// Write to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

fn table(headers: &[&str], right: &[bool], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i].saturating_sub(c.chars().count());
            if i > 0 {
                s.push_str("  ");
            }
            if right.get(i).copied().unwrap_or(false) {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut s = line(headers.to_vec());
    for r in rows {
        s.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    s
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// `2026-11-23T09:45:12.345Z` as `2026-11-23 09:45:12` (UTC).
fn readable_time(s: &str) -> String {
    parse_time(s).map_or_else(
        || s.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// `850ms`, `1.2s`, `3m04s`, `2h05m`.
fn human_ms(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "-".into();
    }
    if ms < 1000.0 {
        return format!("{}ms", ms.round() as u64);
    }
    let secs = ms / 1000.0;
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let total = secs.round() as u64;
    if total < 3600 {
        return format!("{}m{:02}s", total / 60, total % 60);
    }
    format!("{}h{:02}m", total / 3600, (total % 3600) / 60)
}

fn num(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    if x.abs() < 1e-4 || x.abs() >= 1e15 {
        let e = format!("{x:.6e}");
        return match e.split_once('e') {
            Some((m, exp)) if m.contains('.') => {
                format!("{}e{exp}", m.trim_end_matches('0').trim_end_matches('.'))
            }
            _ => e,
        };
    }
    // Ten significant digits: enough to see a small change, without 17-digit noise.
    let int_digits = (x.abs().log10().floor() as i64 + 1).max(1);
    let decimals = (10 - int_digits).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `(delta, delta %)` of B against A.
fn deltas(a: Option<f64>, b: Option<f64>) -> (String, String) {
    match (a, b) {
        (Some(x), Some(y)) => {
            let d = y - x;
            let d_text = if d > 0.0 {
                format!("+{}", num(d))
            } else {
                num(d)
            };
            let pct = if x != 0.0 {
                format!("{:+.2}%", d / x.abs() * 100.0)
            } else if d == 0.0 {
                "0.00%".into()
            } else {
                "n/a".into()
            };
            (d_text, pct)
        }
        (None, Some(_)) => ("-".into(), "new".into()),
        (Some(_), None) => ("-".into(), "gone".into()),
        (None, None) => ("-".into(), "-".into()),
    }
}

fn value_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn text_or_dash(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(text_or_dash).collect())
        .unwrap_or_default()
}

/// `port=count` for each port, in the manifest's order.
fn ports_text(step: &Value) -> String {
    match step["rows"].as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(p, n)| format!("{p}={}", text_or_dash(n)))
            .collect::<Vec<_>>()
            .join(" "),
        _ => "-".into(),
    }
}
