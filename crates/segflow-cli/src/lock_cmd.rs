//! `segflow lock`: pin the plugin libraries a pipeline uses in `PIPELINE.lock`, and the
//! checks `segflow run` / `segflow validate` make against it.

use crate::{load_plan, Failure, Globals, EXIT_INVALID};
use segflow_engine::diag::Diagnostic;
use segflow_engine::host::Registry;
use segflow_engine::lock::{self, LockFile};
use segflow_engine::spec::PipelineSpec;
use segflow_engine::validate::Plan;
use std::path::Path;

/// What a command does with `PIPELINE.lock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LockPolicy {
    /// Ignore it (`plan`, `schema`, `plugins`, `lock` itself).
    #[default]
    Ignore,
    /// Refuse libraries that do not match it, when it exists (`run`, `validate`).
    Enforce,
    /// Accept the libraries as they are and rewrite it (`--update-lock`).
    Update,
}

/// `segflow lock PIPELINE.yaml`: validate the pipeline, then write its lock.
pub fn run(globals: &Globals, pipeline: &Path, sets: &[String]) -> Result<u8, Failure> {
    let plan = load_plan(globals, pipeline, sets)?;
    let path = lock::lock_path(pipeline);
    let new = build(&plan);
    let old = read(&path)?;
    write(&path, &new)?;
    eprintln!(
        "wrote {}: {} librar{} pinned",
        path.display(),
        new.libraries.len(),
        if new.libraries.len() == 1 { "y" } else { "ies" }
    );
    for l in &new.libraries {
        eprintln!(
            "  {} {} sha256 {} ({})",
            l.name,
            l.version,
            l.sha256,
            l.components.join(", ")
        );
    }
    if let Some(old) = old {
        report_changes(&path, &old, &new);
    }
    Ok(0)
}

/// Before planning: refuse every used library that does not match the lock, if any.
pub fn enforce(pipeline: &Path, spec: &PipelineSpec, registry: &Registry) -> Result<(), Failure> {
    let path = lock::lock_path(pipeline);
    let Some(locked) = read(&path)? else {
        return Ok(());
    };
    let used = lock::used_libraries(spec, registry);
    let problems = lock::check(&locked, &used);
    if problems.is_empty() {
        return Ok(());
    }
    let diags = problems
        .iter()
        .map(|m| {
            Diagnostic::new("segflow::lock", m.message(&path)).help(format!(
                "review the library `{}`, then run `segflow lock {}` again to pin it, or pass --update-lock to accept it and rewrite the lock",
                m.name(),
                pipeline.display()
            ))
        })
        .collect();
    Err(Failure::invalid(diags))
}

/// After planning with `--update-lock`: rewrite the lock for the libraries in use.
pub fn update(pipeline: &Path, plan: &Plan) -> Result<(), Failure> {
    let path = lock::lock_path(pipeline);
    let old = read(&path)?;
    let new = build(plan);
    if old.as_ref() == Some(&new) {
        return Ok(());
    }
    write(&path, &new)?;
    match old {
        Some(old) => report_changes(&path, &old, &new),
        None => eprintln!("--update-lock: wrote {}", path.display()),
    }
    Ok(())
}

fn build(plan: &Plan) -> LockFile {
    let used = lock::used_libraries(&plan.spec, &plan.registry);
    lock::build(&plan.spec.name, &used)
}

fn report_changes(path: &Path, old: &LockFile, new: &LockFile) {
    let changes = lock::changes(old, new);
    if changes.is_empty() {
        return;
    }
    eprintln!("updated {}:", path.display());
    for c in changes {
        eprintln!("  {c}");
    }
}

fn read(path: &Path) -> Result<Option<LockFile>, Failure> {
    lock::read(path).map_err(|msg| {
        Failure::one(
            EXIT_INVALID,
            Diagnostic::new("segflow::lock", msg).help(
                "regenerate it with `segflow lock PIPELINE.yaml` (after reviewing the libraries), or delete it to stop pinning",
            ),
        )
    })
}

fn write(path: &Path, new: &LockFile) -> Result<(), Failure> {
    lock::write(path, new).map_err(|e| {
        Failure::one(
            EXIT_INVALID,
            Diagnostic::new(
                "segflow::lock",
                format!("cannot write the lock file `{}`: {e}", path.display()),
            )
            .help("the lock is written next to the pipeline file: make that directory writable"),
        )
    })
}
