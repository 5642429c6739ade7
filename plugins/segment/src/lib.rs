//! segflow's segment-stage components: thin adapters over `segflow-ml`.
//!
//! Every segmenter writes `assignments` (the key, `segment_id` Int32, `segment` Utf8 and
//! a per-row score where the method has one) and `model` (centres, thresholds or rules
//! in original units), plus facts with the fitted parameters.

pub mod features;
pub mod kmeans;

segflow_sdk::export_plugin!(name: "segment", components: [kmeans::KMeans]);
