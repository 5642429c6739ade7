//! segflow's position-stage components: from segments to decisions.
//!
//! `profile` joins per-customer features to one or more segmentations and writes one row
//! per segment (`profiles`); `persona`, `target`, `map` and `playbook` read that table;
//! `explain` fits a shallow decision tree on the features themselves. The algorithms
//! live in `segflow-ml`; this crate reads and writes Arrow.

pub mod explain;
#[path = "../../support/segmentations.rs"]
pub mod inputs;
pub mod map;
pub mod persona;
pub mod playbook;
pub mod profile;
pub mod profiles;
pub mod target;

segflow_sdk::export_plugin!(name: "position", components: [map::Map, playbook::Playbook, persona::Persona, profile::Profile, target::Target, explain::Explain, ]);
