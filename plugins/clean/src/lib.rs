//! segflow's clean-stage components.
//!
//! - [`customer_features`](CustomerFeatures): one row of RFM-style features per
//!   customer from a transaction table (and, optionally, the lifetimes
//!   calibration/holdout summary), with rejected rows on the `quarantine` port.
//!
//! The numerical work lives in `segflow_ml::features`; this crate parses the config,
//! checks the input schema at plan time, and moves Arrow batches in and out.

mod customer_features;

pub use customer_features::{CustomerFeatures, TimeUnitConfig};
pub use segflow_sdk::config::IsoDate;

segflow_sdk::export_plugin!(name: "clean", components: [CustomerFeatures]);
