//! The segflow plugin SDK.
//!
//! A plugin author writes a config struct (serde + schemars), implements [`Component`]
//! on it, and lists the components in [`export_plugin!`]. The SDK owns everything that
//! touches the C ABI: converting Arrow data to and from the C Data / C Stream Interface,
//! catching panics on every entry point (and inside exported streams), routing the
//! plugin's `tracing` events and progress to the host, and building a thread pool that
//! respects the step's thread budget. Nothing `unsafe` is left for the author.
//!
//! ```ignore
//! use segflow_sdk::prelude::*;
//!
//! /// Keep rows whose amount is at least `min`.
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct MinAmount { min: f64 }
//!
//! impl Component for MinAmount {
//!     const NAME: &'static str = "min_amount";
//!     const STAGE: Stage = Stage::Clean;
//!     fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
//!         let schema = single(inputs)?;
//!         require_column(schema, "amount", "amount", &[DataType::Float64])?;
//!         Ok(Outputs::main(schema.clone()))
//!     }
//!     fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
//!         /* ... */
//!     }
//! }
//! export_plugin!(name: "acme", components: [MinAmount]);
//! ```

pub mod config;
mod error;
#[doc(hidden)]
pub mod ffi;
mod log;
mod table;

pub use arrow;
pub use error::{Error, Result};
pub use ffi::HostHandle;
pub use schemars;
pub use serde;
pub use serde_json;
pub use table::Table;
pub use tracing;

use arrow::datatypes::{DataType, SchemaRef};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use std::sync::OnceLock;

/// The version of this SDK, recorded in every library descriptor.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything a component module usually needs.
pub mod prelude {
    pub use crate::{
        export_plugin, require_column, single, Component, Context, Error, Fingerprint, HostHandle,
        Named, Outputs, Ports, Result, Stage, Table,
    };
    pub use arrow::array::{Array, ArrayRef, RecordBatch};
    pub use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    pub use schemars::JsonSchema;
    pub use serde::Deserialize;
}

/// The pipeline stage a component belongs to. Edges may only go forward in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Collect,
    Clean,
    Segment,
    Position,
    Evaluate,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Collect,
        Stage::Clean,
        Stage::Segment,
        Stage::Position,
        Stage::Evaluate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Collect => "collect",
            Stage::Clean => "clean",
            Stage::Segment => "segment",
            Stage::Position => "position",
            Stage::Evaluate => "evaluate",
        }
    }

    pub fn to_abi(self) -> u32 {
        self as u32
    }

    pub fn from_abi(v: u32) -> Option<Stage> {
        Stage::ALL.get(v as usize).copied()
    }

    /// Output ports a component of this stage has unless it says otherwise.
    pub fn default_outputs(self) -> &'static [&'static str] {
        match self {
            Stage::Collect => &["main"],
            Stage::Clean => &["main", "quarantine"],
            Stage::Segment => &["assignments", "model"],
            Stage::Position => &["main"],
            Stage::Evaluate => &["metrics"],
        }
    }
}

/// A value with the name it travels under: an input's `needs:` reference
/// (`step` or `step.port`), or an output port's name.
#[derive(Debug, Clone)]
pub struct Named<T> {
    pub name: String,
    pub value: T,
}

/// The output ports of a `plan` or `run` call, in declaration order.
#[derive(Debug)]
pub struct Outputs<T>(pub Vec<Named<T>>);

impl<T> Outputs<T> {
    pub fn new() -> Self {
        Outputs(Vec::new())
    }
    /// Just the `main` port.
    pub fn main(value: T) -> Self {
        Outputs::new().port("main", value)
    }
    /// Add a port.
    pub fn port(mut self, name: &str, value: T) -> Self {
        self.0.push(Named {
            name: name.to_string(),
            value,
        });
        self
    }
}

impl<T> Default for Outputs<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// What a component declares about its ports, for validation and `plugins info`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ports {
    /// Fewest inputs the component accepts.
    pub min_inputs: usize,
    /// Most inputs the component accepts (`usize::MAX`: any number).
    pub max_inputs: usize,
    /// What the inputs are, for the docs.
    pub inputs_doc: String,
    /// Output port names with a line of documentation each.
    pub outputs: Vec<(String, String)>,
}

impl Ports {
    /// `n` inputs exactly, and the stage's standard outputs.
    pub fn new(stage: Stage, min_inputs: usize, max_inputs: usize) -> Self {
        Ports {
            min_inputs,
            max_inputs,
            inputs_doc: String::new(),
            outputs: stage
                .default_outputs()
                .iter()
                .map(|p| (p.to_string(), String::new()))
                .collect(),
        }
    }
    pub fn inputs_doc(mut self, doc: &str) -> Self {
        self.inputs_doc = doc.to_string();
        self
    }
    /// Replace the output list.
    pub fn outputs(mut self, outputs: &[(&str, &str)]) -> Self {
        self.outputs = outputs
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_string()))
            .collect();
        self
    }
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "inputs": {
                "min": self.min_inputs,
                "max": if self.max_inputs == usize::MAX { None } else { Some(self.max_inputs) },
                "doc": self.inputs_doc,
            },
            "outputs": self.outputs.iter().map(|(n, d)| serde_json::json!({"name": n, "doc": d})).collect::<Vec<_>>(),
        })
    }
}

/// What a step's result depends on besides its config and its inputs: the step cache
/// re-uses a result only when all of these are unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum Fingerprint {
    /// Nothing else: the same config and inputs always give the same outputs.
    Pure,
    /// Also what this value describes: the size and modification time of the files a
    /// collector reads, the result of a database's fingerprint query. Keep it small.
    Source(serde_json::Value),
    /// Cannot be told cheaply (a database without a fingerprint query, a report of the
    /// run itself): never cache. The reason is shown in the manifest.
    Never(String),
}

/// A pipeline component. The implementing type is the component's `with:` config.
pub trait Component: DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// Name used in pipeline YAML (`plugin: NAME`), `[a-z0-9_]+`.
    const NAME: &'static str;
    /// The stage the component belongs to.
    const STAGE: Stage;
    /// Component version; defaults to the library's crate version.
    const VERSION: Option<&'static str> = None;
    /// Description for `segflow plugins info`; defaults to the config struct's doc comment.
    const DESCRIPTION: Option<&'static str> = None;

    /// Declared ports. Defaults: collect takes no input, other stages exactly one; the
    /// outputs are the stage's standard ports.
    fn ports() -> Ports {
        let inputs = if Self::STAGE == Stage::Collect { 0 } else { 1 };
        Ports::new(Self::STAGE, inputs, inputs)
    }

    /// Check the config against the input schemas and return the output schemas. Runs at
    /// validation time, before any data is read: report missing or mistyped columns here.
    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>>;

    /// Produce the output tables. Streams may be returned lazily; they are pulled by the
    /// host after `run` returns.
    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>>;

    /// What the result depends on besides config and inputs, asked just before `run` by
    /// a host with a step cache. Default: collectors are never cached (their source is
    /// unknown to the host), other components are [`Fingerprint::Pure`]. Override it in a
    /// collector that can describe its source cheaply, and in any component that reads
    /// something outside its inputs (a file, the clock, another run).
    fn fingerprint(&self) -> Result<Fingerprint> {
        Ok(if Self::STAGE == Stage::Collect {
            Fingerprint::Never(format!(
                "collector `{}` does not describe its source to the step cache",
                Self::NAME
            ))
        } else {
            Fingerprint::Pure
        })
    }
}

/// The one input of a single-input component.
pub fn single<T>(inputs: &[Named<T>]) -> Result<&T> {
    match inputs {
        [one] => Ok(&one.value),
        _ => Err(Error::new(format!(
            "expected exactly one input, got {}",
            inputs.len()
        ))),
    }
}

/// Check that `schema` has column `name` with one of the `allowed` types (any type when
/// empty). `field` is the config key that named the column, for the error location.
pub fn require_column<'a>(
    schema: &'a SchemaRef,
    name: &str,
    field: &str,
    allowed: &[DataType],
) -> Result<&'a arrow::datatypes::Field> {
    match schema.field_with_name(name) {
        Ok(f) => {
            if allowed.is_empty() || allowed.contains(f.data_type()) {
                Ok(f)
            } else {
                Err(Error::config(
                    field,
                    format!(
                        "column `{name}` has type {}, but this needs one of: {}",
                        f.data_type(),
                        allowed
                            .iter()
                            .map(|t| t.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
        }
        Err(_) => {
            let have: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            Err(Error::config(
                field,
                format!(
                    "column `{name}` is not in the input; the upstream step provides: {}",
                    if have.is_empty() {
                        "(no columns)".to_string()
                    } else {
                        have.join(", ")
                    }
                ),
            ))
        }
    }
}

/// What a running component can ask of the host.
pub struct Context {
    host: *const segflow_abi::SegflowHost,
    facts: serde_json::Map<String, serde_json::Value>,
    pool: OnceLock<rayon::ThreadPool>,
}

// The host promises the callbacks are thread-safe for the duration of the call.
unsafe impl Send for Context {}

impl Context {
    pub(crate) fn new(host: *const segflow_abi::SegflowHost) -> Self {
        Context {
            host,
            facts: serde_json::Map::new(),
            pool: OnceLock::new(),
        }
    }

    fn host(&self) -> &segflow_abi::SegflowHost {
        // SAFETY: the host keeps the struct alive for the whole call and the step's streams.
        unsafe { &*self.host }
    }

    /// Threads this step may use.
    pub fn threads(&self) -> usize {
        self.host().threads.max(1) as usize
    }

    /// The id of the running step.
    pub fn step_id(&self) -> String {
        ffi::cstr_to_string(self.host().step_id)
    }

    /// A rayon pool sized to the step's thread budget. Work run on it logs to the host.
    pub fn pool(&self) -> &rayon::ThreadPool {
        self.pool
            .get_or_init(|| log::build_pool(self.host, self.threads()))
    }

    /// Report progress: `done` of `total` units (`total == 0` when unknown).
    pub fn progress(&self, done: u64, total: u64, unit: &str) {
        ffi::report_progress(self.host, done, total, unit);
    }

    /// True once the host asked the step to stop.
    pub fn is_cancelled(&self) -> bool {
        unsafe { (self.host().is_cancelled)(self.host().ctx) != 0 }
    }

    /// Record a fact (a metric, a fitted parameter, a data-quality figure).
    pub fn fact(&mut self, key: &str, value: impl serde::Serialize) {
        let v = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.facts.insert(key.to_string(), v);
    }

    /// The run so far, as the host describes it (pipeline name; per step its stage,
    /// component, inputs, status, duration, rows per port and facts). `None` when the
    /// host offers none, e.g. outside the evaluate stage or an older host.
    pub fn run_info(&self) -> Option<serde_json::Value> {
        let h = self.host();
        if !h.has_run_services() || h.run_info.is_null() {
            return None;
        }
        serde_json::from_str(&ffi::cstr_to_string(h.run_info)).ok()
    }

    /// Run another component of any loaded library (`name` or `library/name`) with
    /// `config` on `inputs`, as part of this step, and return its output ports in the
    /// order it emitted them. This is how an evaluator re-fits whatever segmenter the
    /// pipeline names, vendor components included. Errors when the host does not offer
    /// nested runs or the component fails.
    pub fn run_component(
        &self,
        name: &str,
        config: &serde_json::Value,
        inputs: Vec<Named<Table>>,
    ) -> Result<Vec<Named<Table>>> {
        ffi::run_component(self.host(), name, config, inputs)
    }

    pub(crate) fn take_facts(&mut self) -> serde_json::Map<String, serde_json::Value> {
        std::mem::take(&mut self.facts)
    }

    pub(crate) fn host_ptr(&self) -> *const segflow_abi::SegflowHost {
        self.host
    }
}

/// Parse a component config from JSON, naming the field path on error.
pub fn parse_config<T: DeserializeOwned>(json: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        Error::config(&field, e.into_inner().to_string())
    })
}
