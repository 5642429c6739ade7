//! segflow's algorithms, on plain slices and Arrow arrays.
//!
//! This crate owns the numerical work of a segmentation pipeline and nothing else: it
//! knows neither the plugin SDK nor the engine. Components in `plugins/` are thin
//! adapters that parse their config, call a function here and wrap the result.
//!
//! - [`features`]: streaming per-customer transaction features (RFM, tenure, gaps) and
//!   the lifetimes-style calibration/holdout summary.
//! - [`kmeans`]: k-means (Lloyd, k-means++), deterministic for a seed at any thread count.
//! - [`stats`]: mean, population std, numpy-linear quantiles, median, MAD, mode.
//! - [`keys`]: hashed multi-column keys (group ids, duplicate detection).
//! - [`dedup`]: keep one row per key (first, last, max/min by a column).
//! - [`rules`]: casting to a declared type and row-level data-quality checks.
//! - [`impute`]: fill missing values (mean, median, mode, constant; text: mode,
//!   constant), overall or by group.
//! - [`outliers`]: IQR, z-score and robust z-score (MAD) fences; flag or clip.
//! - [`encode`]: one-hot (listed or fitted categories, an `other` bucket), ordinal and
//!   frequency encoding of categorical columns.
//! - [`pseudo`]: keyed HMAC-SHA256 pseudonyms and generalisation (bands, prefixes,
//!   dates, rounding).
//! - [`scale`]: z-score, min-max and robust (median / IQR) scaling, invertible from
//!   the fitted parameters.
//! - [`transform`]: log1p, Box-Cox and Yeo-Johnson with λ by maximum likelihood
//!   (Brent's method, as scipy), optional standardisation.
//! - [`quality`]: a per-column data-quality profile (completeness, validity,
//!   uniqueness, consistency).
//! - [`shares`]: per-customer shares of categorical columns (channel or category mix).

pub mod dedup;
pub mod encode;
pub mod features;
pub mod impute;
pub mod keys;
pub mod kmeans;
pub mod outliers;
pub mod pseudo;
pub mod quality;
pub mod rules;
pub mod scale;
pub mod shares;
pub mod stats;
pub mod transform;
