//! segflow's evaluate-stage components: is a segmentation any good, and what is each
//! segment worth?
//!
//! Every evaluator writes `metrics`, a long table (segmentation, metric, value), plus
//! its own ports; `report` gathers the run into one self-contained `report.html`. The
//! numerics live in `segflow-ml`; this crate reads and writes Arrow.

pub mod clv;
pub mod common;
pub mod compare;
pub mod drift;
/// Joining per-customer features to segmentations (shared with `position`).
#[path = "../../support/segmentations.rs"]
pub mod inputs;
pub mod kpis;
pub mod report;
pub mod stability;
pub mod validity;

segflow_sdk::export_plugin!(name: "evaluate", components: [validity::Validity, kpis::Kpis, compare::Compare, stability::Stability, drift::Drift, report::Report, clv::Clv]);
