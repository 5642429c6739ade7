//! segflow's collect-stage components: where a pipeline's rows come from.
//!
//! - [`csv`](CsvSource): CSV files (one file or a glob), typed by declaration or
//!   inference, streamed batch by batch.
//! - [`parquet`](ParquetSource): Parquet files (one file or a glob), with an optional
//!   column projection, streamed batch by batch.
//! - [`synthetic`](Synthetic): deterministic retail transactions drawn from known
//!   customer archetypes, for demos, tests and benchmarks; streams any volume in
//!   bounded memory.
//!
//! Every collector plans its exact output schema without reading the data (a CSV
//! header and the first rows for type inference, Parquet metadata), streams lazily,
//! and records facts (`source`, `rows`, `bytes_read`, ...) when its stream ends.

mod csv;
mod files;
mod parquet_source;
mod synthetic;

pub use crate::csv::{ColumnSpec, ColumnType, Columns, CsvSource};
pub use segflow_sdk::config::IsoDate;
pub use parquet_source::ParquetSource;
pub use synthetic::{Archetype, ArchetypeShares, Synthetic};

segflow_sdk::export_plugin!(name: "collect", components: [CsvSource, ParquetSource, Synthetic]);
