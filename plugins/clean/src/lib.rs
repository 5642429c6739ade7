//! segflow's clean-stage components.
//!
//! - [`customer_features`](CustomerFeatures): one row of RFM-style features per
//!   customer from a transaction table (and, optionally, the lifetimes
//!   calibration/holdout summary), with rejected rows on the `quarantine` port.
//! - [`validate`](Validate): cast to a declared schema and check row-level rules
//!   (not null, range, regex, allowed values, uniqueness) with a policy per rule.
//! - [`dedup`](Dedup): exact or by-key duplicate removal (keep first, last, max/min by).
//! - [`impute`](Impute): fill missing values (numeric: mean, median, mode, constant;
//!   text: mode, constant), overall or per group.
//! - [`outliers`](Outliers): IQR, z-score or robust z-score fences; flag, clip or
//!   quarantine.
//!
//! The numerical work lives in `segflow_ml::features`; this crate parses the config,
//! checks the input schema at plan time, and moves Arrow batches in and out.

mod customer_features;
mod dedup;
mod impute;
mod numeric;
mod outliers;
mod quarantine;
mod validate;

pub use customer_features::{CustomerFeatures, TimeUnitConfig};
pub use dedup::{Dedup, KeepConfig};
pub use impute::{Impute, ImputeColumn};
pub use outliers::{ActionConfig, OutlierColumn, Outliers};
pub use segflow_sdk::config::IsoDate;
pub use validate::{ColumnRules, LiteralConfig, PolicyConfig, RuleName, TypeConfig, Validate};

segflow_sdk::export_plugin!(
    name: "clean",
    components: [CustomerFeatures, Validate, Dedup, Impute, Outliers]
);
