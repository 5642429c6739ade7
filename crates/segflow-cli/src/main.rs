//! The `segflow` command-line tool: argument parsing, diagnostics rendering, logging and
//! progress. The work itself is done by `segflow-engine`.

mod cache_cmd;
mod lock_cmd;
mod new_plugin;
mod observe;
mod plan_cmd;
mod plugin_host;
mod plugins_cmd;
mod plugins_test;
mod render;
mod run_cmd;
mod runs_cmd;
mod schema_cmd;

use clap::{Parser, Subcommand, ValueEnum};
use segflow_engine::diag::Diagnostic;
use segflow_engine::host::{Registry, SearchPath};
use segflow_engine::spec::{self, Override};
use segflow_engine::validate::{self, Plan};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Exit codes (ARCHITECTURE.md): 0 success, 1 a step failed, 2 invalid pipeline / usage /
/// plugin load error.
pub const EXIT_STEP_FAILED: u8 = 1;
pub const EXIT_INVALID: u8 = 2;

#[derive(Parser)]
#[command(name = "segflow", version, about = "Run customer-segmentation pipelines defined in YAML", long_about = None)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Extra directories (or library files) to load plugins from; repeatable.
    #[arg(long = "plugin-path", global = true, value_name = "DIR")]
    plugin_path: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Validate and run a pipeline, writing outputs to a run directory.
    Run {
        /// The pipeline file (optional with --resume: the failed run's pipeline is used).
        pipeline: Option<PathBuf>,
        /// Run directory (default: runs/<name>/<UTC timestamp>, with runs/<name>/latest).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a step's config: STEP.KEY=VALUE (the value is read as YAML).
        #[arg(long = "set", value_name = "STEP.KEY=VALUE")]
        set: Vec<String>,
        /// Do not use the step cache: run every step, store nothing.
        #[arg(long)]
        no_cache: bool,
        /// Run STEP even when the cache holds its result (and store the new one);
        /// repeatable.
        #[arg(long = "refresh", value_name = "STEP")]
        refresh: Vec<String>,
        /// Re-use the finished steps of an earlier (failed) run directory and run the
        /// rest, into a new run directory.
        #[arg(long, value_name = "RUN_DIR")]
        resume: Option<PathBuf>,
        /// The step cache (default: $SEGFLOW_CACHE_DIR, else .segflow/cache).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Threads for the whole run (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Flush every output file to disk before it is published (survives a power
        /// cut; slower for large outputs).
        #[arg(long)]
        fsync: bool,
        /// Accept the plugin libraries as they are now and rewrite PIPELINE.lock, instead
        /// of refusing those whose sha256 differs from the lock.
        #[arg(long)]
        update_lock: bool,
        /// Run every step's component in a child process of its own, as
        /// `isolation: process` does: a crash fails only that step.
        #[arg(long)]
        isolate: bool,
    },
    /// Check a pipeline without reading any data. Exit 0 when valid, 2 when not.
    Validate {
        pipeline: PathBuf,
        #[arg(long = "set", value_name = "STEP.KEY=VALUE")]
        set: Vec<String>,
        /// Validate for `segflow run --isolate` (accepts `timeout`/`memory_limit` on
        /// every step).
        #[arg(long)]
        isolate: bool,
        /// Accept the plugin libraries as they are now and rewrite PIPELINE.lock.
        #[arg(long)]
        update_lock: bool,
    },
    /// Pin the plugin libraries a pipeline uses in PIPELINE.lock (next to the pipeline).
    ///
    /// Validates the pipeline, then writes the lock (JSON: each library's name, version,
    /// path, sha256, SDK version and the components used). While the lock exists, `run`
    /// and `validate` refuse libraries whose sha256 differs, unless `--update-lock`.
    Lock {
        pipeline: PathBuf,
        #[arg(long = "set", value_name = "STEP.KEY=VALUE")]
        set: Vec<String>,
    },
    /// Show the execution plan: steps, layers and the schema of every port.
    Plan {
        pipeline: PathBuf,
        #[arg(long, value_enum, default_value_t = plan_cmd::PlanFormat::Text)]
        format: plan_cmd::PlanFormat,
        #[arg(long = "set", value_name = "STEP.KEY=VALUE")]
        set: Vec<String>,
    },
    /// Print the JSON Schema of pipeline YAML, including every component's config.
    Schema {
        /// Write to FILE instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// `json` (the schema) or `markdown` (the YAML reference in docs/).
        #[arg(long, value_enum, default_value_t = schema_cmd::SchemaFormat::Json)]
        format: schema_cmd::SchemaFormat,
    },
    /// Write a ready plugin crate NAME/ (config struct, component, export_plugin!, a test
    /// through the real host, README) that depends on segflow-sdk by version.
    NewPlugin {
        /// Crate name, [a-z][a-z0-9-]* (e.g. `acme-lookalike`); the component is named
        /// after it with `_` for `-`.
        name: String,
        /// The stage of the component.
        #[arg(long, value_enum)]
        stage: new_plugin::NewStage,
        /// Create NAME/ inside DIR (default: the current directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A local segflow-sdk source directory to build against (written to
        /// .cargo/config.toml as a [patch.crates-io]; default: the SDK of the source tree
        /// this segflow was built from, if it still exists).
        #[arg(long)]
        sdk_path: Option<PathBuf>,
    },
    /// The step cache: sizes, garbage collection, clearing.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
        /// The step cache (default: $SEGFLOW_CACHE_DIR, else .segflow/cache).
        #[arg(long, value_name = "DIR", global = true)]
        cache_dir: Option<PathBuf>,
    },
    /// Run history: list runs, show one, compare two.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
        /// Where runs are kept (default: runs).
        #[arg(long, value_name = "DIR", global = true, default_value = "runs")]
        runs_dir: PathBuf,
    },
    /// Inspect plugin libraries.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// The child process of an isolated step (internal: spoken to over pipes).
    #[command(hide = true)]
    PluginHost,
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Entries, size, and what they belong to. Exit 1 when --verify finds a damaged entry.
    Stats {
        /// Check every file against its sha256 (reads the whole cache).
        #[arg(long)]
        verify: bool,
        #[arg(long)]
        json: bool,
    },
    /// Remove the least recently used entries until the cache fits in SIZE (e.g. 5GB,
    /// 500MB), skipping entries a running pipeline is reading.
    Gc {
        #[arg(long, value_name = "SIZE")]
        max_size: String,
    },
    /// Remove every entry (entries in use by a running pipeline are kept).
    Clear,
}

#[derive(Subcommand)]
enum RunsCommand {
    /// A table of runs: pipeline, run, start time, status, duration, steps cached.
    List {
        /// Only runs of this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The manifest summary of one run: a run directory, NAME/TIMESTAMP, NAME/latest or
    /// NAME (its latest run).
    Show {
        run: String,
        #[arg(long)]
        json: bool,
    },
    /// Config, row-count and metric differences between two runs.
    Diff {
        run_a: String,
        run_b: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Libraries, versions and components per stage.
    List {
        #[arg(long)]
        json: bool,
    },
    /// A component's description, config schema and ports.
    Info {
        /// `component` or `library/component`.
        component: String,
        #[arg(long)]
        json: bool,
    },
    /// Check a plugin library before shipping it: schemas, ports, and a run of every
    /// component on generated input (panics, errors, output schemas, leaked inputs).
    /// Exit 0 when no component fails, 1 when one does.
    Test {
        /// The library file (e.g. target/release/libNAME.so).
        lib: PathBuf,
        /// Config for a component: COMPONENT=JSON (repeatable; default `{}`).
        #[arg(long = "config", value_name = "COMPONENT=JSON")]
        config: Vec<String>,
    },
}

/// A failure that ends the command: diagnostics to print and an exit code.
pub struct Failure {
    pub code: u8,
    pub diagnostics: Vec<Diagnostic>,
}

impl Failure {
    pub fn invalid(diagnostics: Vec<Diagnostic>) -> Self {
        Failure {
            code: EXIT_INVALID,
            diagnostics,
        }
    }
    pub fn one(code: u8, d: Diagnostic) -> Self {
        Failure {
            code,
            diagnostics: vec![d],
        }
    }
}

pub struct Globals {
    pub log_format: LogFormat,
    pub plugin_path: Vec<PathBuf>,
    /// What `load_plan` does with PIPELINE.lock.
    pub lock: lock_cmd::LockPolicy,
    /// `--isolate`: every step runs in a child process.
    pub isolate: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_INVALID } else { 0 });
        }
    };
    if let Command::PluginHost = cli.command {
        return ExitCode::from(plugin_host::run());
    }
    observe::init_logging(cli.log_format);
    let lock = match &cli.command {
        Command::Run { update_lock, .. } | Command::Validate { update_lock, .. } => {
            if *update_lock {
                lock_cmd::LockPolicy::Update
            } else {
                lock_cmd::LockPolicy::Enforce
            }
        }
        _ => lock_cmd::LockPolicy::Ignore,
    };
    let isolate = match &cli.command {
        Command::Run { isolate, .. } | Command::Validate { isolate, .. } => *isolate,
        _ => false,
    };
    let globals = Globals {
        log_format: cli.log_format,
        plugin_path: cli.plugin_path,
        lock,
        isolate,
    };
    let result = match cli.command {
        Command::Run {
            pipeline,
            out,
            set,
            no_cache,
            refresh,
            resume,
            cache_dir,
            threads,
            fsync,
            update_lock: _,
            isolate: _,
        } => {
            segflow_engine::store::set_sync_outputs(fsync);
            let request = run_cmd::RunRequest {
                pipeline,
                out,
                sets: set,
                threads,
                no_cache,
                refresh,
                resume,
                cache_dir,
            };
            run_cmd::run(&globals, request)
        }
        Command::Cache { command, cache_dir } => {
            let dir = cache_cmd::cache_dir(cache_dir.as_deref());
            match command {
                CacheCommand::Stats { verify, json } => cache_cmd::stats(&dir, verify, json),
                CacheCommand::Gc { max_size } => cache_cmd::gc(&dir, &max_size),
                CacheCommand::Clear => cache_cmd::clear(&dir),
            }
        }
        Command::Runs { command, runs_dir } => match command {
            RunsCommand::List { pipeline, json } => {
                runs_cmd::list(&runs_dir, pipeline.as_deref(), json)
            }
            RunsCommand::Show { run, json } => runs_cmd::show(&runs_dir, &run, json),
            RunsCommand::Diff { run_a, run_b, json } => {
                runs_cmd::diff(&runs_dir, &run_a, &run_b, json)
            }
        },
        Command::Validate { pipeline, set, .. } => {
            load_plan(&globals, &pipeline, &set).map(|plan| {
                eprintln!(
                    "{} is valid: {} steps in {} layers",
                    pipeline.display(),
                    plan.steps.len(),
                    plan.layers.len()
                );
                0
            })
        }
        Command::Plan {
            pipeline,
            format,
            set,
        } => load_plan(&globals, &pipeline, &set).map(|plan| {
            plan_cmd::print(&plan, format);
            0
        }),
        Command::Lock { pipeline, set } => lock_cmd::run(&globals, &pipeline, &set),
        Command::Schema { out, format } => schema_cmd::run(&globals, out.as_deref(), format),
        Command::PluginHost => Ok(plugin_host::run()),
        Command::Plugins { command } => match command {
            PluginsCommand::List { json } => plugins_cmd::list(&globals, json),
            PluginsCommand::Info { component, json } => {
                plugins_cmd::info(&globals, &component, json)
            }
            PluginsCommand::Test { lib, config } => plugins_test::run(&lib, &config),
        },
        Command::NewPlugin {
            name,
            stage,
            dir,
            sdk_path,
        } => new_plugin::run(&name, stage, dir.as_deref(), sdk_path.as_deref()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            render::diagnostics(&f.diagnostics, globals.log_format);
            ExitCode::from(f.code)
        }
    }
}

/// Load every plugin library on the search path plus `extra` (pipeline `plugins:`).
pub fn load_registry(globals: &Globals, extra: &[PathBuf]) -> Result<Registry, Failure> {
    let mut search = SearchPath::standard(&globals.plugin_path);
    for p in extra {
        search.add(p.clone());
    }
    if let Some(missing) = search.missing().first() {
        return Err(Failure::one(
            EXIT_INVALID,
            Diagnostic::new(
                "segflow::plugin-load",
                format!("plugin path `{}` does not exist", missing.display()),
            )
            .help("pass an existing directory (or library file) to --plugin-path"),
        ));
    }
    Registry::discover(&search).map_err(|e| {
        Failure::one(
            EXIT_INVALID,
            Diagnostic::new("segflow::plugin-load", e.reason.clone()).help(
                "check the library path; `segflow plugins list` shows what loads and why others were refused",
            ),
        )
    })
}

/// Parse, resolve and validate a pipeline: everything `segflow validate` does.
pub fn load_plan(globals: &Globals, path: &Path, sets: &[String]) -> Result<Plan, Failure> {
    let overrides: Vec<Override> = sets
        .iter()
        .map(|s| Override::parse(s))
        .collect::<Result<_, _>>()
        .map_err(|d| Failure::invalid(vec![d]))?;
    let env = |k: &str| std::env::var(k).ok();
    let mut spec = spec::load(path, &overrides, &env).map_err(Failure::invalid)?;
    let refused = spec::check_isolation(&spec, globals.isolate);
    if !refused.is_empty() {
        return Err(Failure::invalid(refused));
    }
    if globals.isolate {
        for s in &mut spec.steps {
            s.isolation = spec::Isolation::Process;
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let extra: Vec<PathBuf> = spec.plugins.iter().map(|(p, _)| base.join(p)).collect();
    for ((p, loc), full) in spec.plugins.iter().zip(&extra) {
        if !full.exists() {
            return Err(Failure::invalid(vec![Diagnostic::new(
                "segflow::plugin-load",
                format!(
                    "plugin library `{p}` listed in `plugins:` does not exist (looked for `{}`)",
                    full.display()
                ),
            )
            .at(&spec.source, *loc, "no such file")
            .help("paths in `plugins:` are relative to the pipeline file")]));
        }
    }
    let registry = load_registry(globals, &extra).map_err(|mut f| {
        // Point at the `plugins:` entry that failed.
        if let Some(d) = f.diagnostics.first_mut() {
            if let Some((_, loc)) = spec
                .plugins
                .iter()
                .zip(&extra)
                .find(|(_, full)| d.message.contains(&full.display().to_string()))
                .map(|(p, _)| p)
            {
                *d = d.clone().at(&spec.source, *loc, "this library");
            }
        }
        f
    })?;
    // Pinning: check the lock before any component's `plan` runs.
    if globals.lock == lock_cmd::LockPolicy::Enforce {
        lock_cmd::enforce(path, &spec, &registry)?;
    }
    let plan = validate::plan(spec, Arc::new(registry)).map_err(Failure::invalid)?;
    if globals.lock == lock_cmd::LockPolicy::Update {
        lock_cmd::update(path, &plan)?;
    }
    Ok(plan)
}
