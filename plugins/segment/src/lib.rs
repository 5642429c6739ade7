//! segflow's segment-stage components: thin adapters over `segflow-ml`.
//!
//! Every segmenter writes `assignments` (the key, `segment_id` Int32, `segment` Utf8 and
//! a per-row score where the method has one) and `model` (centres, thresholds or rules
//! in original units), plus facts with the fitted parameters.

pub mod dbscan;
pub mod features;
pub mod gmm;
pub mod hierarchical;
pub mod k_choice;
pub mod kmeans;
pub mod kprototypes;
pub mod lifecycle;
pub mod minibatch_kmeans;
pub mod rfm;
pub mod rules;

segflow_sdk::export_plugin!(name: "segment", components: [kmeans::KMeans, minibatch_kmeans::MiniBatchKMeans, gmm::Gmm, kprototypes::KPrototypes, rfm::Rfm, rules::Rules, lifecycle::Lifecycle, hierarchical::Hierarchical, dbscan::Dbscan]);
