//! segflow's collect-stage components: where a pipeline's rows come from.
//!
//! - [`csv`](CsvSource): CSV files (one file or a glob), typed by declaration or
//!   inference, streamed batch by batch.
//! - [`jsonl`](JsonlSource): newline-delimited JSON files (one file or a glob), typed by
//!   declaration or inference, streamed batch by batch.
//! - [`parquet`](ParquetSource): Parquet files (one file or a glob), with an optional
//!   column projection, streamed batch by batch.
//! - [`postgres`](PostgresSource): a PostgreSQL table or query streamed through a
//!   server-side cursor, or per-customer RFM features aggregated by the server.
//! - [`sqlite`](SqliteSource): a SQLite table or query with bound parameters, typed
//!   from the declared column types, streamed batch by batch.
//! - [`synthetic`](Synthetic): deterministic retail transactions drawn from known
//!   customer archetypes, for demos, tests and benchmarks; streams any volume in
//!   bounded memory.
//!
//! Every collector plans its exact output schema without reading the data (a CSV
//! header and the first rows for type inference, Parquet metadata), streams lazily,
//! and records facts (`source`, `rows`, `bytes_read`, ...) when its stream ends.

mod csv;
mod files;
mod jsonl;
mod param;
mod parquet_source;
mod postgres;
mod sha256;
mod sqlite;
mod synthetic;

pub use crate::csv::{ColumnSpec, ColumnType, Columns, CsvSource, DecimalSeparator};
pub use crate::postgres::{Aggregate, PostgresSource};
pub use files::{FingerprintMode, TextEncoding};
pub use jsonl::JsonlSource;
pub use param::ParamValue;
pub use parquet_source::ParquetSource;
pub use segflow_sdk::config::IsoDate;
pub use sqlite::SqliteSource;
pub use synthetic::{Archetype, ArchetypeShares, Synthetic};

segflow_sdk::export_plugin!(name: "collect", components: [CsvSource, JsonlSource, ParquetSource, PostgresSource, SqliteSource, Synthetic]);
