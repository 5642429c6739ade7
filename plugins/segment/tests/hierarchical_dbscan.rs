//! `hierarchical` and `dbscan` driven through the real ABI entry points: the segments
//! of scipy / scikit-learn on the ml crate's fixtures
//! (crates/segflow-ml/tests/fixtures/{hierarchical,dbscan}_reference.json) with the
//! input in several batches, the documented columns and facts, sampling above
//! `max_rows`, determinism across threads and batching, and degenerate inputs (k above
//! the rows, identical rows, one row, a constant column, no rows) giving a clear error
//! or the documented result, never a panic.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{Array, AsArray, Float64Array, Int64Array, RecordBatch};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::SchemaRef;
use segflow_sdk::arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Int64Type, Schema};
use segflow_sdk::ffi::abi;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_segment::segflow_plugin_v1 as abi::EntryFn;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../crates/segflow-ml/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Fixture floats are Python `repr` strings.
fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().parse().unwrap())
        .collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// A table of `customer_id` and features `f0..f{d-1}` from row-major values.
fn table(data: &[f64], d: usize) -> (SchemaRef, RecordBatch) {
    let n = data.len() / d;
    let mut fields = vec![Field::new("customer_id", DataType::Int64, false)];
    fields.extend((0..d).map(|f| Field::new(format!("f{f}"), DataType::Float64, false)));
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let mut cols: Vec<Arc<dyn Array>> = vec![Arc::new(Int64Array::from(
        (1..=n as i64).collect::<Vec<_>>(),
    ))];
    for f in 0..d {
        cols.push(Arc::new(Float64Array::from(
            (0..n).map(|i| data[i * d + f]).collect::<Vec<_>>(),
        )));
    }
    (schema.clone(), RecordBatch::try_new(schema, cols).unwrap())
}

fn features(d: usize) -> Value {
    json!((0..d).map(|f| format!("f{f}")).collect::<Vec<_>>())
}

fn chunks(b: &RecordBatch, rows: usize) -> Vec<RecordBatch> {
    (0..b.num_rows())
        .step_by(rows)
        .map(|o| b.slice(o, rows.min(b.num_rows() - o)))
        .collect()
}

fn run_ok(
    name: &str,
    cfg: Value,
    threads: u32,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> fake_host::Outcome {
    let out = run(name, cfg, threads, schema, batches);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    out
}

fn run(
    name: &str,
    cfg: Value,
    threads: u32,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> fake_host::Outcome {
    fake_host::run(
        ENTRY,
        name,
        cfg,
        threads,
        vec![("in", schema.clone(), batches)],
    )
}

fn one(out: &fake_host::Outcome, port: &str) -> RecordBatch {
    let batches = out.table(port);
    concat_batches(&batches[0].schema(), batches).unwrap()
}

fn ids(b: &RecordBatch) -> Vec<i32> {
    b.column_by_name("segment_id")
        .unwrap()
        .as_primitive::<Int32Type>()
        .values()
        .to_vec()
}

fn col_f64(b: &RecordBatch, c: &str) -> Vec<Option<f64>> {
    let a = b.column_by_name(c).unwrap().as_primitive::<Float64Type>();
    (0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i)))
        .collect()
}

fn col_i64(b: &RecordBatch, c: &str) -> Vec<i64> {
    b.column_by_name(c)
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

fn names(b: &RecordBatch) -> Vec<String> {
    let a = b.column_by_name("segment").unwrap().as_string::<i32>();
    (0..a.len()).map(|i| a.value(i).to_string()).collect()
}

/// The two labelings are relabellings of each other.
fn same_partition<A: Copy + Eq + std::hash::Hash, B: Copy + Eq + std::hash::Hash>(
    a: &[A],
    b: &[B],
) -> bool {
    let (mut f, mut g) = (HashMap::new(), HashMap::new());
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(&x, &y)| *f.entry(x).or_insert(y) == y && *g.entry(y).or_insert(x) == x)
}

fn sq(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

// ---------------------------------------------------------------- hierarchical

#[test]
fn hierarchical_gives_sklearns_segments() {
    let r = fixture("hierarchical_reference.json");
    let ds = &r["datasets"][0]; // blobs, 240 × 3
    let d = ds["d"].as_u64().unwrap() as usize;
    let data = floats(&ds["data"]);
    let (schema, batch) = table(&data, d);
    for case in ds["cases"].as_array().unwrap() {
        let linkage = case["linkage"].as_str().unwrap();
        for c in case["by_k"].as_array().unwrap() {
            let k = c["k"].as_u64().unwrap();
            let out = run_ok(
                "hierarchical",
                json!({"k": k, "features": features(d), "linkage": linkage, "standardize": false}),
                2,
                &schema,
                chunks(&batch, 70),
            );
            let a = one(&out, "assignments");
            assert_eq!(a.num_rows(), data.len() / d);
            assert!(
                same_partition(&ids(&a), &ints(&c["labels"])),
                "{linkage} k = {k}"
            );
            assert_eq!(out.fact("k"), &json!(k));
        }
        for c in case["by_threshold"].as_array().unwrap() {
            let t: f64 = c["threshold"].as_str().unwrap().parse().unwrap();
            let out = run_ok(
                "hierarchical",
                json!({"distance_threshold": t, "features": features(d), "linkage": linkage, "standardize": false}),
                1,
                &schema,
                vec![batch.clone()],
            );
            assert_eq!(out.fact("k"), &c["n_clusters"], "{linkage} t = {t}");
            assert!(same_partition(
                &ids(&one(&out, "assignments")),
                &ints(&c["labels"])
            ));
            assert_eq!(out.fact("cut"), &json!("distance_threshold"));
            // The threshold lies in the reported range of equivalent thresholds.
            let range = out.fact("threshold_range").as_array().unwrap().clone();
            assert!(range[0].as_f64().is_none_or(|lo| lo < t));
            assert!(range[1].as_f64().is_none_or(|hi| t <= hi));
        }
    }
}

#[test]
fn hierarchical_outputs_and_facts() {
    let r = fixture("hierarchical_reference.json");
    let ds = &r["datasets"][0];
    let d = ds["d"].as_u64().unwrap() as usize;
    let data = floats(&ds["data"]);
    let n = data.len() / d;
    let (schema, batch) = table(&data, d);
    let out = run_ok(
        "hierarchical",
        json!({"k": 4, "features": features(d), "standardize": false}),
        2,
        &schema,
        chunks(&batch, 100),
    );
    let a = one(&out, "assignments");
    let m = one(&out, "model");
    assert_eq!(
        a.schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        ["customer_id", "segment_id", "segment", "distance"]
    );
    assert_eq!(
        col_i64(&a, "customer_id"),
        (1..=n as i64).collect::<Vec<_>>()
    );
    let seg = ids(&a);
    assert_eq!(names(&a)[0], format!("cluster_{}", seg[0]));
    // Model: numbered by size, sizes match the assignments, centres are the means,
    // distance is the distance to the centre.
    let sizes = col_i64(&m, "size");
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(sizes.iter().sum::<i64>(), n as i64);
    let centre = |s: usize| -> Vec<f64> {
        (0..d)
            .map(|f| col_f64(&m, &format!("f{f}"))[s].unwrap())
            .collect()
    };
    let dist = col_f64(&a, "distance");
    for (s, &size) in sizes.iter().enumerate() {
        let rows: Vec<usize> = (0..n).filter(|&i| seg[i] == s as i32).collect();
        assert_eq!(rows.len() as i64, size);
        for f in 0..d {
            let mean = rows.iter().map(|&i| data[i * d + f]).sum::<f64>() / rows.len() as f64;
            assert!((mean - centre(s)[f]).abs() < 1e-12);
        }
        for &i in &rows {
            let want = sq(&data[i * d..(i + 1) * d], &centre(s)).sqrt();
            assert!((dist[i].unwrap() - want).abs() < 1e-9);
        }
    }
    // Facts: the dendrogram lists every merge (240 <= 1000 rows), scipy's last merge
    // joins everything, and each segment has its node.
    let den = out.fact("dendrogram");
    assert_eq!(den["leaves"], json!(n));
    assert_eq!(den["first_merge"], json!(0));
    let merges = den["merges"].as_array().unwrap();
    assert_eq!(merges.len(), n - 1);
    let want = &r["datasets"][0]["cases"][0]["merges"]; // ward
    assert_eq!(merges.last().unwrap()[3], json!(n));
    for (ours, theirs) in merges.iter().zip(want.as_array().unwrap()) {
        assert_eq!(ours[0], theirs[0]);
        assert_eq!(ours[1], theirs[1]);
        let t: f64 = theirs[2].as_str().unwrap().parse().unwrap();
        assert!((ours[2].as_f64().unwrap() - t).abs() <= 1e-9 * t);
    }
    assert_eq!(den["segment_nodes"].as_array().unwrap().len(), 4);
    assert_eq!(out.fact("linkage"), &json!("ward"));
    assert_eq!(out.fact("cut"), &json!("k"));
    assert_eq!(out.fact("sample_rows"), &json!(n));
    assert_eq!(out.fact("sampled"), &json!(false));
    assert_eq!(out.fact("rows"), &json!(n));
    assert_eq!(
        out.fact("sizes"),
        &json!(sizes.iter().map(|&s| s as u64).collect::<Vec<_>>())
    );
    // The standardised run: centres still in original units (the means of the rows).
    let out = run_ok(
        "hierarchical",
        json!({"k": 4, "features": features(d)}),
        1,
        &schema,
        vec![batch.clone()],
    );
    assert!(out.fact("standardize")["std"].is_array());
    let a = one(&out, "assignments");
    let m = one(&out, "model");
    let seg = ids(&a);
    let f0 = col_f64(&m, "f0");
    for s in 0..4 {
        let rows: Vec<usize> = (0..n).filter(|&i| seg[i] == s).collect();
        let mean = rows.iter().map(|&i| data[i * d]).sum::<f64>() / rows.len() as f64;
        assert!((mean - f0[s as usize].unwrap()).abs() < 1e-9);
    }
}

/// `n` rows of 2 features in four separated groups (row i in group i % 4).
fn four_groups(n: usize) -> Vec<f64> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut unit = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut v = Vec::with_capacity(2 * n);
    for i in 0..n {
        let g = (i % 4) as f64;
        v.push(g * 10.0 + unit());
        v.push((g % 2.0) * 7.0 + unit());
    }
    v
}

#[test]
fn hierarchical_samples_above_max_rows() {
    let n = 6_000;
    let (schema, batch) = table(&four_groups(n), 2);
    let cfg =
        json!({"k": 4, "features": features(2), "linkage": "average", "max_rows": 800, "seed": 3});
    let base = run_ok("hierarchical", cfg.clone(), 1, &schema, vec![batch.clone()]);
    assert_eq!(base.fact("sample_rows"), &json!(800));
    assert_eq!(base.fact("sampled"), &json!(true));
    assert_eq!(base.fact("rows"), &json!(n));
    let fit: Vec<u64> = serde_json::from_value(base.fact("sample_sizes").clone()).unwrap();
    assert_eq!(fit.iter().sum::<u64>(), 800);
    assert_eq!(base.fact("sizes"), &json!([1500, 1500, 1500, 1500]));
    let a = one(&base, "assignments");
    let truth: Vec<usize> = (0..n).map(|i| i % 4).collect();
    assert!(same_partition(&ids(&a), &truth));
    // The dendrogram of 800 leaves is complete and says which rows the leaves are.
    let den = base.fact("dendrogram");
    assert_eq!(den["merges"].as_array().unwrap().len(), 799);
    assert_eq!(den["leaf_rows"].as_array().unwrap().len(), 800);
    // Above 1000 leaves only the top of the tree is listed, with the subtrees below.
    let big = run_ok(
        "hierarchical",
        json!({"k": 4, "features": features(2), "max_rows": 2000}),
        2,
        &schema,
        chunks(&batch, 999),
    );
    let den = big.fact("dendrogram");
    assert_eq!(den["leaves"], json!(2000));
    assert_eq!(den["first_merge"], json!(1999 - 50));
    assert_eq!(den["merges"].as_array().unwrap().len(), 50);
    let below = den["subtrees"].as_array().unwrap();
    // 50 merges of a binary tree hang 51 subtrees, which hold every leaf.
    assert_eq!(below.len(), 51);
    assert_eq!(
        below.iter().map(|s| s[1].as_u64().unwrap()).sum::<u64>(),
        2000
    );
    assert!(den.get("leaf_rows").is_none());
    // Same segments for any thread count and batching.
    for (threads, rows) in [(3, 500), (2, 1)] {
        let other = run_ok(
            "hierarchical",
            cfg.clone(),
            threads,
            &schema,
            chunks(&batch, rows.max(7)),
        );
        assert_eq!(one(&base, "assignments"), one(&other, "assignments"));
        assert_eq!(one(&base, "model"), one(&other, "model"));
        assert_eq!(base.fact("dendrogram"), other.fact("dendrogram"));
    }
    // Another seed samples other rows, and still finds the four groups.
    let other = run_ok(
        "hierarchical",
        json!({"k": 4, "features": features(2), "linkage": "average", "max_rows": 800, "seed": 4}),
        2,
        &schema,
        vec![batch],
    );
    assert_ne!(base.fact("dendrogram"), other.fact("dendrogram"));
    assert!(same_partition(&ids(&one(&other, "assignments")), &truth));
}

#[test]
fn hierarchical_degenerate_inputs() {
    // k above the rows: an error naming k.
    let (schema, batch) = table(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2);
    let out = run(
        "hierarchical",
        json!({"k": 4, "features": features(2)}),
        1,
        &schema,
        vec![batch],
    );
    assert_ne!(out.status, abi::STATUS_OK);
    assert_eq!(out.error_field().as_deref(), Some("k"));
    assert!(
        out.error_message().contains("only 3 rows"),
        "{}",
        out.error_message()
    );

    // All rows identical: k = 3 gives three segments of the same rows (split by the
    // tie rule), every distance 0; a threshold gives one segment.
    let (schema, batch) = table(&[2.5; 40], 2);
    let out = run_ok(
        "hierarchical",
        json!({"k": 3, "features": features(2)}),
        1,
        &schema,
        vec![batch.clone()],
    );
    let a = one(&out, "assignments");
    assert_eq!(out.fact("k"), &json!(3));
    assert!(col_f64(&a, "distance").iter().all(|v| *v == Some(0.0)));
    assert_eq!(col_i64(&one(&out, "model"), "size").iter().sum::<i64>(), 20);
    let out = run_ok(
        "hierarchical",
        json!({"distance_threshold": 0.1, "features": features(2), "linkage": "complete"}),
        1,
        &schema,
        vec![batch],
    );
    assert_eq!(out.fact("k"), &json!(1));
    assert_eq!(out.fact("threshold_range"), &json!([0.0, null]));

    // A single row: one segment with k = 1 (or any threshold), no merges.
    let (schema, batch) = table(&[7.0, 8.0], 2);
    for cfg in [
        json!({"k": 1, "features": features(2)}),
        json!({"distance_threshold": 1.0, "features": features(2)}),
    ] {
        let out = run_ok("hierarchical", cfg, 1, &schema, vec![batch.clone()]);
        assert_eq!(ids(&one(&out, "assignments")), vec![0]);
        assert_eq!(col_f64(&one(&out, "model"), "f0"), vec![Some(7.0)]);
        assert_eq!(out.fact("dendrogram")["merges"], json!([]));
    }
    let out = run(
        "hierarchical",
        json!({"k": 2, "features": features(2)}),
        1,
        &schema,
        vec![batch],
    );
    assert_eq!(out.error_field().as_deref(), Some("k"));

    // A constant column changes nothing (standardised to 0).
    let data = four_groups(200);
    let with_const: Vec<f64> = data.chunks(2).flat_map(|r| [r[0], 5.0, r[1]]).collect();
    let (s2, b2) = table(&data, 2);
    let (s3, b3) = table(&with_const, 3);
    let two = run_ok(
        "hierarchical",
        json!({"k": 4, "features": features(2)}),
        1,
        &s2,
        vec![b2],
    );
    let three = run_ok(
        "hierarchical",
        json!({"k": 4, "features": features(3)}),
        1,
        &s3,
        vec![b3],
    );
    assert_eq!(
        ids(&one(&two, "assignments")),
        ids(&one(&three, "assignments"))
    );
    assert!(col_f64(&one(&three, "model"), "f1")
        .iter()
        .all(|v| *v == Some(5.0)));

    // No rows: an error, not a panic.
    let out = run(
        "hierarchical",
        json!({"k": 2, "features": features(2)}),
        1,
        &s2,
        vec![],
    );
    assert_ne!(out.status, abi::STATUS_OK);
    assert!(
        out.error_message().contains("no rows"),
        "{}",
        out.error_message()
    );

    // Plan-time: k and distance_threshold together, or neither.
    let plan = |cfg| fake_host::plan(ENTRY, "hierarchical", cfg, &[("in", s2.clone())]);
    let out = plan(json!({"k": 2, "distance_threshold": 1.0, "features": features(2)}));
    assert_eq!(out.error_field().as_deref(), Some("distance_threshold"));
    let out = plan(json!({"features": features(2)}));
    assert_eq!(out.error_field().as_deref(), Some("k"));
    let out = plan(json!({"k": 2, "features": ["f0", "nope"]}));
    assert_ne!(out.status, abi::STATUS_OK);
    let out = plan(json!({"k": 2, "features": features(2)}));
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    assert_eq!(out.schema("assignments").fields().len(), 4);
}

// ---------------------------------------------------------------------- dbscan

#[test]
fn dbscan_gives_sklearns_segments() {
    let r = fixture("dbscan_reference.json");
    for ds in r["datasets"].as_array().unwrap() {
        let d = ds["d"].as_u64().unwrap() as usize;
        let data = floats(&ds["data"]);
        let n = data.len() / d;
        let (schema, batch) = table(&data, d);
        for case in ds["cases"].as_array().unwrap() {
            let eps: f64 = case["eps"].as_str().unwrap().parse().unwrap();
            let m = case["min_samples"].as_u64().unwrap();
            let what = format!("{} eps={eps} min_samples={m}", ds["name"]);
            let out = run_ok(
                "dbscan",
                json!({"eps": eps, "min_samples": m, "features": features(d), "standardize": false}),
                2,
                &schema,
                chunks(&batch, 77),
            );
            let a = one(&out, "assignments");
            let seg = ids(&a);
            let want = ints(&case["labels"]);
            assert!(same_partition(&seg, &want), "{what}");
            // Noise is noise: segment_id −1, segment `noise`, no distance.
            let nm = names(&a);
            let dist = col_f64(&a, "distance");
            for i in 0..n {
                assert_eq!(seg[i] == -1, want[i] == -1, "{what}: row {i}");
                assert_eq!(nm[i] == "noise", want[i] == -1);
                assert_eq!(dist[i].is_none(), want[i] == -1);
            }
            let core = a.column_by_name("core").unwrap().as_boolean();
            let want_core = ints(&case["core"]);
            let got_core: Vec<i64> = (0..n as i64).filter(|&i| core.value(i as usize)).collect();
            assert_eq!(got_core, want_core, "{what}: core");
            assert_eq!(out.fact("k"), &case["n_clusters"]);
            let noise = want.iter().filter(|&&l| l < 0).count();
            assert_eq!(out.fact("noise_rows"), &json!(noise));
            assert_eq!(out.fact("core_rows"), &json!(want_core.len()));
            // The k-distance curve, on all rows here: its core share is the core share.
            let kd = out.fact("k_distance");
            assert_eq!(kd["rows"], json!(n));
            // (Compared to 1e-15: serde_json's number parser may be an ulp off.)
            let share = kd["core_share_at_eps"].as_f64().unwrap();
            assert!(
                (share - want_core.len() as f64 / n as f64).abs() < 1e-15,
                "{what}"
            );
            let theirs = floats(&case["k_distances"]);
            let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() <= 1e-15 * b.max(1.0);
            assert!(close(&kd["quantiles"]["1"], theirs[n - 1]), "{what}");
            assert!(close(&kd["quantiles"]["0"], theirs[0]), "{what}");
        }
    }
}

#[test]
fn dbscan_outputs_and_facts() {
    let r = fixture("dbscan_reference.json");
    let ds = &r["datasets"][0];
    let d = 2;
    let data = floats(&ds["data"]);
    let n = data.len() / d;
    let (schema, batch) = table(&data, d);
    let out = run_ok(
        "dbscan",
        json!({"eps": 0.3, "features": features(d), "standardize": false}),
        2,
        &schema,
        vec![batch.clone()],
    );
    let a = one(&out, "assignments");
    let m = one(&out, "model");
    assert_eq!(
        a.schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        ["customer_id", "segment_id", "segment", "core", "distance"]
    );
    assert_eq!(
        m.schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        ["segment_id", "segment", "size", "core_rows", "f0", "f1"]
    );
    let seg = ids(&a);
    let k = out.fact("k").as_u64().unwrap() as usize;
    // Model: the clusters by size, then the noise row.
    let mid = ids(&m);
    assert_eq!(mid.len(), k + 1);
    assert_eq!(&mid[..k], (0..k as i32).collect::<Vec<_>>());
    assert_eq!(mid[k], -1);
    assert_eq!(names(&m)[k], "noise");
    let sizes = col_i64(&m, "size");
    assert!(sizes[..k].windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(sizes.iter().sum::<i64>(), n as i64);
    for (r, &id) in mid.iter().enumerate() {
        let rows: Vec<usize> = (0..n).filter(|&i| seg[i] == id).collect();
        assert_eq!(rows.len() as i64, sizes[r]);
        let c: Vec<f64> = (0..d)
            .map(|f| col_f64(&m, &format!("f{f}"))[r].unwrap())
            .collect();
        let mean0 = rows.iter().map(|&i| data[i * d]).sum::<f64>() / rows.len() as f64;
        assert!((mean0 - c[0]).abs() < 1e-12);
        if id >= 0 {
            let dist = col_f64(&a, "distance");
            for &i in &rows {
                assert!((dist[i].unwrap() - sq(&data[i * d..(i + 1) * d], &c).sqrt()).abs() < 1e-9);
            }
        }
    }
    assert_eq!(out.fact("noise_segment_id"), &json!(-1));
    assert_eq!(
        out.fact("sizes"),
        &json!(sizes[..k].iter().map(|&s| s as u64).collect::<Vec<_>>())
    );
    let kd = out.fact("k_distance");
    assert_eq!(kd["k"], json!(5));
    assert_eq!(kd["curve"].as_array().unwrap().len(), 101);
    let eps = kd["suggested_eps"].as_f64().unwrap();
    assert!(eps > kd["quantiles"]["0.5"].as_f64().unwrap(), "{kd}");
    // Same result for any thread count and batching; a sampled curve when asked.
    let other = run_ok(
        "dbscan",
        json!({"eps": 0.3, "features": features(d), "standardize": false, "k_distance_sample": 100}),
        3,
        &schema,
        chunks(&batch, 1),
    );
    assert_eq!(one(&out, "assignments"), one(&other, "assignments"));
    assert_eq!(one(&out, "model"), one(&other, "model"));
    assert_eq!(other.fact("k_distance")["rows"], json!(100));
    assert_eq!(other.fact("k_distance")["of_rows"], json!(n));
    let none = run_ok(
        "dbscan",
        json!({"eps": 0.3, "features": features(d), "k_distance_sample": 0}),
        1,
        &schema,
        vec![batch.clone()],
    );
    assert!(none.fact("k_distance").is_null());

    // Above max_rows: a clear error naming max_rows and what to do instead.
    let out = run(
        "dbscan",
        json!({"eps": 0.3, "features": features(d), "max_rows": 500}),
        1,
        &schema,
        vec![batch],
    );
    assert_ne!(out.status, abi::STATUS_OK);
    assert_eq!(out.error_field().as_deref(), Some("max_rows"));
    let msg = out.error_message();
    assert!(
        msg.contains("700 rows") && msg.contains("minibatch_kmeans"),
        "{msg}"
    );
}

#[test]
fn dbscan_degenerate_inputs() {
    // All rows identical: one segment (at least min_samples rows), or all noise.
    let (schema, batch) = table(&[3.0; 40], 2);
    let out = run_ok(
        "dbscan",
        json!({"eps": 0.5, "features": features(2)}),
        1,
        &schema,
        vec![batch.clone()],
    );
    assert_eq!(ids(&one(&out, "assignments")), vec![0; 20]);
    assert_eq!(out.fact("k_distance")["suggested_eps"], Value::Null);
    assert_eq!(out.fact("k_distance")["quantiles"]["1"], json!(0.0));
    let out = run_ok(
        "dbscan",
        json!({"eps": 0.5, "min_samples": 21, "features": features(2)}),
        1,
        &schema,
        vec![batch],
    );
    assert_eq!(out.fact("k"), &json!(0));
    assert_eq!(ids(&one(&out, "assignments")), vec![-1; 20]);
    assert!(
        out.fact("k_distance").is_null(),
        "min_samples above the rows: no curve"
    );
    let m = one(&out, "model");
    assert_eq!((ids(&m), col_i64(&m, "size")), (vec![-1], vec![20]));

    // A single row: noise, unless min_samples is 1.
    let (schema, batch) = table(&[1.0, 2.0], 2);
    let out = run_ok(
        "dbscan",
        json!({"eps": 0.5, "features": features(2)}),
        1,
        &schema,
        vec![batch.clone()],
    );
    assert_eq!(names(&one(&out, "assignments")), vec!["noise"]);
    let out = run_ok(
        "dbscan",
        json!({"eps": 0.5, "min_samples": 1, "features": features(2)}),
        1,
        &schema,
        vec![batch],
    );
    assert_eq!(names(&one(&out, "assignments")), vec!["cluster_0"]);
    assert_eq!(
        col_f64(&one(&out, "assignments"), "distance"),
        vec![Some(0.0)]
    );

    // A constant column changes nothing (standardised to 0).
    let data = four_groups(400);
    let with_const: Vec<f64> = data.chunks(2).flat_map(|r| [r[0], -1.0, r[1]]).collect();
    let (s2, b2) = table(&data, 2);
    let (s3, b3) = table(&with_const, 3);
    let two = run_ok(
        "dbscan",
        json!({"eps": 0.3, "features": features(2)}),
        1,
        &s2,
        vec![b2],
    );
    let three = run_ok(
        "dbscan",
        json!({"eps": 0.3, "features": features(3)}),
        1,
        &s3,
        vec![b3],
    );
    assert_eq!(
        ids(&one(&two, "assignments")),
        ids(&one(&three, "assignments"))
    );
    assert_eq!(two.fact("k"), &json!(4));

    // No rows: an error, not a panic.
    let out = run(
        "dbscan",
        json!({"eps": 0.3, "features": features(2)}),
        1,
        &s2,
        vec![],
    );
    assert_ne!(out.status, abi::STATUS_OK);
    assert!(
        out.error_message().contains("no rows"),
        "{}",
        out.error_message()
    );

    // Plan-time checks name the field.
    let plan = |cfg| fake_host::plan(ENTRY, "dbscan", cfg, &[("in", s2.clone())]);
    assert_eq!(
        plan(json!({"eps": -1.0, "features": features(2)}))
            .error_field()
            .as_deref(),
        Some("eps")
    );
    assert_ne!(
        plan(json!({"features": features(2)})).status,
        abi::STATUS_OK
    );
    let ok = plan(json!({"eps": 1.0, "features": features(2)}));
    assert_eq!(ok.status, abi::STATUS_OK, "{:?}", ok.error);
    let a = ok.schema("assignments");
    assert_eq!(
        a.field_with_name("core").unwrap().data_type(),
        &DataType::Boolean
    );
    assert!(a.field_with_name("distance").unwrap().is_nullable());
}

#[test]
fn documented_config() {
    for name in ["hierarchical", "dbscan"] {
        let schema = fake_host::config_schema(ENTRY, name);
        for (k, v) in schema["properties"].as_object().unwrap() {
            assert!(
                v.get("description").is_some(),
                "{name}.{k} has no description"
            );
        }
        assert_eq!(schema["additionalProperties"], json!(false));
    }
    assert!(fake_host::component_names(ENTRY).contains(&"dbscan".to_string()));
}
