//! Timing of `validity` on 1M customers × 8 features with the default silhouette
//! settings (a 10,000-customer sample). Ignored by default; run with a release build:
//!
//! ```text
//! cargo test --release -p segflow-evaluate --test validity_perf -- --ignored --nocapture
//! ```
//! It prints the sampled silhouette alone (segflow-ml) and the whole component run
//! (join, feature extraction, z-scoring, dispersion, CH, DB, sampled silhouette) and
//! fails when the sampled silhouette takes 2 s or more.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::RecordBatch;
use segflow_sdk::arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, StringArray};
use segflow_sdk::arrow::datatypes::{DataType, Field, Schema};
use segflow_sdk::ffi::abi;
use std::sync::Arc;
use std::time::Instant;

const ENTRY: abi::EntryFn = segflow_evaluate::segflow_plugin_v1 as abi::EntryFn;
const N: usize = 1_000_000;
const D: usize = 8;
const K: usize = 6;

fn splitmix(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[test]
#[ignore = "timing; run with --release -- --ignored --nocapture"]
fn sampled_silhouette_on_a_million_rows() {
    let mut s = 1u64;
    let labels: Vec<u32> = (0..N)
        .map(|_| (splitmix(&mut s) * K as f64) as u32)
        .collect();
    let mut cols: Vec<Vec<f64>> = (0..D).map(|_| Vec::with_capacity(N)).collect();
    for &l in &labels {
        for (f, c) in cols.iter_mut().enumerate() {
            // Cluster centres differ by feature; uniform noise.
            let centre = ((l as usize * 7 + f * 3) % 11) as f64;
            c.push(centre * (1.0 + f as f64) + 4.0 * splitmix(&mut s));
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    // segflow-ml alone, on the row-major matrix.
    let mut x = vec![0.0; N * D];
    for (f, c) in cols.iter().enumerate() {
        for (i, v) in c.iter().enumerate() {
            x[i * D + f] = *v;
        }
    }
    let t = Instant::now();
    let sil = segflow_ml::metrics::silhouette_score_sampled(&x, D, &labels, 10_000, 0).unwrap();
    let ml = t.elapsed().as_secs_f64();

    // The component, through the ABI.
    let mut fields = vec![Field::new("customer_id", DataType::Int64, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(0..N as i64))];
    for (f, c) in cols.into_iter().enumerate() {
        fields.push(Field::new(format!("f{f}"), DataType::Float64, false));
        arrays.push(Arc::new(Float64Array::from(c)));
    }
    let fschema = Arc::new(Schema::new(fields));
    let features = RecordBatch::try_new(fschema.clone(), arrays).unwrap();
    let sschema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
    ]));
    let seg = RecordBatch::try_new(
        sschema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..N as i64)),
            Arc::new(Int32Array::from_iter_values(
                labels.iter().map(|&l| l as i32),
            )),
            Arc::new(StringArray::from_iter_values(
                labels.iter().map(|l| format!("s{l}")),
            )),
        ],
    )
    .unwrap();
    let inputs = || {
        vec![
            ("features", fschema.clone(), vec![features.clone()]),
            ("segments", sschema.clone(), vec![seg.clone()]),
        ]
    };
    // Defaults (z-scored features).
    let t = Instant::now();
    let out = fake_host::run(
        ENTRY,
        "validity",
        serde_json::json!({}),
        threads as u32,
        inputs(),
    );
    let component = t.elapsed().as_secs_f64();
    assert_eq!(out.status, abi::STATUS_OK, "{}", out.error_message());
    // Unscaled: the same silhouette as segflow-ml's on the same matrix.
    let raw = fake_host::run(
        ENTRY,
        "validity",
        serde_json::json!({"standardize": false}),
        threads as u32,
        inputs(),
    );
    assert_eq!(raw.status, abi::STATUS_OK, "{}", raw.error_message());
    let facts = &raw.fact("segmentations")["segments"];
    assert_eq!(facts["silhouette_rows"], serde_json::json!(10_000));
    assert_eq!(facts["silhouette"].as_f64().unwrap(), sil);
    println!(
        "validity, {N} rows x {D} features, {K} segments, {threads} threads: sampled silhouette (10,000 rows) {ml:.3} s; whole component {component:.3} s (silhouette {sil:.4})"
    );
    assert!(ml < 2.0, "sampled silhouette took {ml:.3} s");
}
