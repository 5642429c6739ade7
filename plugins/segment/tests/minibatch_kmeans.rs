//! `minibatch_kmeans` (and `kmeans`'s `algorithm`) driven through the real ABI entry
//! points: the input streamed in many small batches, results independent of batching
//! and threads, close to full k-means, errors naming the row.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{AsArray, Float64Array, Int64Array, RecordBatch};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::SchemaRef;
use segflow_sdk::arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Int64Type, Schema};
use segflow_sdk::ffi::abi;
use serde_json::json;
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_segment::segflow_plugin_v1 as abi::EntryFn;

/// `n` customers with 3 features around 5 centres (a cheap deterministic generator).
fn customers(n: usize) -> (SchemaRef, RecordBatch) {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("a", DataType::Float64, false),
        Field::new("b", DataType::Float64, false),
        Field::new("c", DataType::Int64, false),
    ]));
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut unit = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let centres = [
        (0.0, 0.0, 0),
        (10.0, 2.0, 50),
        (3.0, 12.0, 20),
        (-8.0, 5.0, 80),
        (6.0, -9.0, 35),
    ];
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let (x, y, z) = centres[(unit() * 5.0) as usize % 5];
        let noise = |u: &mut dyn FnMut() -> f64| (u() + u() + u() - 1.5) * 3.0;
        a.push(x + noise(&mut unit));
        b.push(y + noise(&mut unit));
        c.push(z + (noise(&mut unit) * 4.0) as i64);
    }
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from((1..=n as i64).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(a)),
            Arc::new(Float64Array::from(b)),
            Arc::new(Int64Array::from(c)),
        ],
    )
    .unwrap();
    (schema, batch)
}

fn chunks(b: &RecordBatch, rows: usize) -> Vec<RecordBatch> {
    (0..b.num_rows())
        .step_by(rows)
        .map(|o| b.slice(o, rows.min(b.num_rows() - o)))
        .collect()
}

fn one(out: &fake_host::Outcome, port: &str) -> RecordBatch {
    let batches = out.table(port);
    concat_batches(&batches[0].schema(), batches).unwrap()
}

fn run(
    name: &str,
    cfg: serde_json::Value,
    threads: u32,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> fake_host::Outcome {
    let out = fake_host::run(
        ENTRY,
        name,
        cfg,
        threads,
        vec![("in", schema.clone(), batches)],
    );
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    out
}

fn ids(b: &RecordBatch) -> Vec<i32> {
    b.column_by_name("segment_id")
        .unwrap()
        .as_primitive::<Int32Type>()
        .values()
        .to_vec()
}

fn floats(b: &RecordBatch, col: &str) -> Vec<f64> {
    b.column_by_name(col)
        .unwrap()
        .as_primitive::<Float64Type>()
        .values()
        .to_vec()
}

fn cfg(extra: serde_json::Value) -> serde_json::Value {
    let mut c = json!({"k": 5, "features": ["a", "b", "c"], "seed": 3, "fit_rows": 4000, "batch_size": 256});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

#[test]
fn streams_many_small_batches_and_assigns_every_row() {
    let (schema, batch) = customers(20_000);
    let out = run(
        "minibatch_kmeans",
        cfg(json!({})),
        2,
        &schema,
        chunks(&batch, 97),
    );
    let a = one(&out, "assignments");
    assert_eq!(a.num_rows(), 20_000);
    // Output batches follow the input's (the fitted rows re-emitted as they arrived).
    assert!(out.table("assignments").len() > 100);
    let keys = a
        .column_by_name("customer_id")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    assert_eq!(keys, (1..=20_000).collect::<Vec<_>>());
    let seg = ids(&a);
    assert!(seg.iter().all(|&s| (0..5).contains(&s)));
    let dist = floats(&a, "distance");
    assert!(dist.iter().all(|d| d.is_finite() && *d >= 0.0));
    let names = a.column_by_name("segment").unwrap().as_string::<i32>();
    assert_eq!(names.value(0), format!("cluster_{}", seg[0]));

    let m = one(&out, "model");
    assert_eq!(m.num_rows(), 5);
    let fit_sizes = m
        .column_by_name("size")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    assert_eq!(fit_sizes.iter().sum::<i64>(), 4000);
    assert!(
        fit_sizes.windows(2).all(|w| w[0] >= w[1]),
        "numbered by size"
    );
    assert_eq!(out.fact("fit_rows"), &json!(4000));
    assert_eq!(out.fact("rows"), &json!(20_000));
    let sizes: Vec<i64> = serde_json::from_value(out.fact("sizes").clone()).unwrap();
    assert_eq!(sizes.iter().sum::<i64>(), 20_000);
    for (s, &size) in sizes.iter().enumerate() {
        assert_eq!(size, seg.iter().filter(|&&x| x == s as i32).count() as i64);
    }
    // The inertia fact is the sum of squared distances (standardised space).
    let inertia = out.fact("inertia").as_f64().unwrap();
    let sum: f64 = dist.iter().map(|d| d * d).sum();
    assert!((inertia - sum).abs() <= 1e-9 * sum);
    assert!(out.fact("n_steps").as_u64().unwrap() >= 1);
    assert!(out.fact("standardize")["mean"].is_array());
}

#[test]
fn same_result_for_any_batching_and_thread_count() {
    let (schema, batch) = customers(9_000);
    let base = run(
        "minibatch_kmeans",
        cfg(json!({})),
        1,
        &schema,
        vec![batch.clone()],
    );
    for (threads, rows) in [(2, 97), (3, 4000), (1, 1)] {
        let other = run(
            "minibatch_kmeans",
            cfg(json!({})),
            threads,
            &schema,
            chunks(&batch, rows),
        );
        let (a, b) = (one(&base, "assignments"), one(&other, "assignments"));
        assert_eq!(ids(&a), ids(&b), "threads {threads}, batches of {rows}");
        assert_eq!(floats(&a, "distance"), floats(&b, "distance"));
        assert_eq!(one(&base, "model"), one(&other, "model"));
        assert_eq!(base.fact("inertia"), other.fact("inertia"));
    }
}

#[test]
fn close_to_full_kmeans_when_every_row_is_fitted() {
    let (schema, batch) = customers(30_000);
    let full = run(
        "kmeans",
        json!({"k": 5, "features": ["a", "b", "c"], "seed": 3}),
        2,
        &schema,
        vec![batch.clone()],
    );
    let mb = run(
        "minibatch_kmeans",
        cfg(json!({"fit_rows": 30_000, "batch_size": 1024})),
        2,
        &schema,
        chunks(&batch, 1000),
    );
    let (fi, mi) = (
        full.fact("inertia").as_f64().unwrap(),
        mb.fact("inertia").as_f64().unwrap(),
    );
    assert!(mi <= fi * 1.02, "mini-batch {mi} vs k-means {fi}");
}

#[test]
fn plan_and_data_errors_name_the_field_or_row() {
    let (schema, batch) = customers(3_000);
    let out = fake_host::plan(
        ENTRY,
        "minibatch_kmeans",
        cfg(json!({"fit_rows": 3})),
        &[("in", schema.clone())],
    );
    assert_ne!(out.status, abi::STATUS_OK);
    assert_eq!(out.error_field().as_deref(), Some("fit_rows"));
    let out = fake_host::plan(
        ENTRY,
        "minibatch_kmeans",
        cfg(json!({"features": ["a", "nope"]})),
        &[("in", schema.clone())],
    );
    assert_ne!(out.status, abi::STATUS_OK);

    // A NaN after the fitted rows fails the stream, naming the row.
    let mut a = floats(&batch, "a");
    a[2_500] = f64::NAN;
    let bad = RecordBatch::try_new(
        schema.clone(),
        vec![
            batch.column(0).clone(),
            Arc::new(Float64Array::from(a)),
            batch.column(2).clone(),
            batch.column(3).clone(),
        ],
    )
    .unwrap();
    let out = fake_host::run(
        ENTRY,
        "minibatch_kmeans",
        cfg(json!({"fit_rows": 1000})),
        1,
        vec![("in", schema.clone(), chunks(&bad, 700))],
    );
    let err = out
        .tables
        .iter()
        .find(|(p, _)| p == "assignments")
        .and_then(|(_, t)| t.as_ref().err())
        .cloned()
        .expect("the assignments stream fails");
    assert!(err.contains("row 2500") && err.contains("`a`"), "{err}");
    // Fewer rows than k.
    let out = fake_host::run(
        ENTRY,
        "minibatch_kmeans",
        cfg(json!({})),
        1,
        vec![("in", schema.clone(), vec![batch.slice(0, 3)])],
    );
    assert_ne!(out.status, abi::STATUS_OK);
    assert_eq!(out.error_field().as_deref(), Some("k"));
}

#[test]
fn kmeans_algorithms_give_the_same_segments() {
    let (schema, batch) = customers(12_000);
    let mut seen = Vec::new();
    for algo in ["lloyd", "hamerly", "elkan", "auto"] {
        let out = run(
            "kmeans",
            json!({"k": 6, "features": ["a", "b", "c"], "seed": 1, "n_init": 2, "algorithm": algo}),
            2,
            &schema,
            chunks(&batch, 5000),
        );
        let want = if algo == "auto" { "lloyd" } else { algo };
        assert_eq!(out.fact("algorithm"), &json!(want));
        assert_eq!(
            out.fact("n_iter_per_init").as_array().unwrap().len(),
            2,
            "{algo}"
        );
        assert_eq!(out.fact("converged_per_init"), &json!([true, true]));
        seen.push((
            ids(&one(&out, "assignments")),
            one(&out, "model"),
            out.fact("inertia").clone(),
        ));
    }
    for s in &seen[1..] {
        assert_eq!(s, &seen[0]);
    }
}

#[test]
fn documented_config() {
    let schema = fake_host::config_schema(ENTRY, "minibatch_kmeans");
    for (k, v) in schema["properties"].as_object().unwrap() {
        assert!(v.get("description").is_some(), "{k} has no description");
    }
    assert_eq!(schema["additionalProperties"], json!(false));
    let km = fake_host::config_schema(ENTRY, "kmeans");
    assert!(km["properties"]["algorithm"].get("description").is_some());
}
