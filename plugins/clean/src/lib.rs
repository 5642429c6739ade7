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
//! - [`encode`](Encode): one-hot over listed categories (plus `other`), ordinal (listed,
//!   sorted or by frequency, rare categories capped) and frequency encoding.
//! - [`pseudonymize`](Pseudonymize): HMAC-SHA256 pseudonyms of identifiers (key from the
//!   environment), dropping of PII columns, generalisation (age bands, postcode
//!   prefixes, dates, rounding); no original value reaches an output, fact or log.
//! - [`scale`](Scale): z-score, min-max or robust (median / IQR) scaling, the fitted
//!   parameters in the facts for inverting.
//! - [`transform`](Transform): log1p, Box-Cox or Yeo-Johnson (λ by maximum likelihood,
//!   as scipy), optional standardisation; rows outside the domain to quarantine.
//! - [`quality`](Quality): a data-quality profile per column (completeness, validity,
//!   uniqueness, consistency) as facts and a `profile` table; rows pass unchanged.
//!
//! The numerical work lives in `segflow_ml::features`; this crate parses the config,
//! checks the input schema at plan time, and moves Arrow batches in and out.

mod customer_features;
mod dedup;
mod encode;
mod impute;
mod numeric;
mod outliers;
mod pseudonymize;
mod quality;
mod quarantine;
mod scale;
mod transform;
mod validate;

pub use customer_features::{CustomerFeatures, ShareByConfig, ShareConfig, TimeUnitConfig};
pub use dedup::{Dedup, KeepConfig};
pub use encode::{
    CategoryValue, Encode, EncodeColumn, EncodeMethod, FrequencyAs, MinFrequencyConfig,
    NullsConfig, OrderConfig, UnknownConfig,
};
pub use impute::{Impute, ImputeColumn};
pub use outliers::{ActionConfig, OutlierColumn, Outliers};
pub use pseudonymize::{DatePartConfig, GeneraliseConfig, Pseudonymize};
pub use quality::{Dimension, Quality, QualityColumn};
pub use scale::{Scale, ScaleColumn, ScaleMethodConfig};
pub use segflow_sdk::config::IsoDate;
pub use transform::{Transform, TransformColumn, TransformMethodConfig};
pub use validate::{ColumnRules, LiteralConfig, PolicyConfig, RuleName, TypeConfig, Validate};

segflow_sdk::export_plugin!(
    name: "clean",
    components: [CustomerFeatures, Validate, Dedup, Impute, Outliers, Quality, Scale, Transform, Encode, Pseudonymize]
);
