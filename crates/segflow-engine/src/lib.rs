//! segflow's engine: everything between a pipeline file and its run directory.
//!
//! - [`spec`]: the YAML model, with locations for every node.
//! - [`host`]: discovering and loading plugin libraries over ABI v1.
//! - [`isolate`]: running a step's component in a child process (`isolation: process`).
//! - [`lock`]: pinning the libraries a pipeline uses (`PIPELINE.lock`), and refusing
//!   plugin files other users can write.
//! - [`validate`]: the rules of a valid pipeline and plan-time schema inference.
//! - [`graph`]: the step DAG (petgraph): cycles, topological layers.
//! - [`execute`]: running steps in parallel with thread budgets.
//! - [`store`]: the run directory, written atomically.
//! - [`cache`]: the step cache (`.segflow/cache`): keys, entries, checksums, gc.

pub mod cache;
pub mod diag;
pub mod execute;
pub mod graph;
pub mod host;
pub mod isolate;
pub mod lock;
pub mod spec;
pub mod store;
pub mod validate;

pub use diag::Diagnostic;
