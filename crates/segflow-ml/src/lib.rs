//! segflow's algorithms, on plain slices and Arrow arrays.
//!
//! This crate owns the numerical work of a segmentation pipeline and nothing else: it
//! knows neither the plugin SDK nor the engine. Components in `plugins/` are thin
//! adapters that parse their config, call a function here and wrap the result.
//!
//! - [`features`]: streaming per-customer transaction features (RFM, tenure, gaps) and
//!   the lifetimes-style calibration/holdout summary.

pub mod features;
