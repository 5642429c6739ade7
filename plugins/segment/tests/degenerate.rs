//! Degenerate input through the real ABI entry points, for `kmeans`, `gmm`,
//! `minibatch_kmeans`, `rfm` and `kprototypes`: k greater than the number of rows, all
//! rows identical, NaN or infinite values (and nulls), a single row, zero-variance
//! columns, an empty input. Each gives a clear error (naming the config field where
//! there is one) or the result documented in docs/swap-the-algorithm.md ("Awkward input") —
//! never a panic.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{
    Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::{
    DataType, Field, Float64Type, Int32Type, Int64Type, Schema, SchemaRef,
};
use segflow_sdk::ffi::abi;
use serde_json::{json, Value};
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_segment::segflow_plugin_v1 as abi::EntryFn;

/// The clustering segmenters and a config for `k` on features `a`, `b`.
const CLUSTERERS: [&str; 4] = ["kmeans", "gmm", "minibatch_kmeans", "kprototypes"];

fn cfg(comp: &str, k: Value) -> Value {
    match comp {
        "kprototypes" => {
            json!({"k": k, "numeric": ["a", "b"], "categorical": ["region"], "seed": 1})
        }
        "rfm" => json!({"recency": "a", "frequency": "b", "monetary": "b"}),
        _ => json!({"k": k, "features": ["a", "b"], "seed": 1}),
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("a", DataType::Float64, true),
        Field::new("b", DataType::Float64, true),
        Field::new("region", DataType::Utf8, true),
    ]))
}

fn table(a: Vec<Option<f64>>, b: Vec<Option<f64>>, region: Vec<Option<&str>>) -> RecordBatch {
    let n = a.len();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from((1..=n as i64).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(a)),
            Arc::new(Float64Array::from(b)),
            Arc::new(StringArray::from(region)),
        ],
    )
    .unwrap()
}

fn some(v: &[f64]) -> Vec<Option<f64>> {
    v.iter().map(|&x| Some(x)).collect()
}

/// Run a component; never a panic, and every output stream drains.
fn run(comp: &str, config: Value, batches: Vec<RecordBatch>) -> fake_host::Outcome {
    let out = fake_host::run(
        ENTRY,
        comp,
        config.clone(),
        2,
        vec![("in", schema(), batches)],
    );
    assert_ne!(
        out.status,
        abi::STATUS_PANIC,
        "{comp} {config} panicked: {:?}",
        out.error
    );
    for (port, t) in &out.tables {
        assert!(t.is_ok(), "{comp} {config}: port {port}: {t:?}");
    }
    out
}

fn ok(comp: &str, config: Value, batches: Vec<RecordBatch>) -> fake_host::Outcome {
    let out = run(comp, config.clone(), batches);
    assert_eq!(
        out.status,
        abi::STATUS_OK,
        "{comp} {config}: {:?}",
        out.error
    );
    out
}

/// A step error: its message contains every one of `words`, and its field is `field`.
fn fails(
    comp: &str,
    config: Value,
    batches: Vec<RecordBatch>,
    field: Option<&str>,
    words: &[&str],
) -> String {
    let out = run(comp, config.clone(), batches);
    assert_eq!(out.status, abi::STATUS_ERROR, "{comp} {config} should fail");
    let msg = out.error_message();
    for w in words {
        assert!(msg.contains(w), "{comp}: `{msg}` lacks `{w}`");
    }
    assert_eq!(out.error_field().as_deref(), field, "{comp}: {msg}");
    msg
}

fn one(out: &fake_host::Outcome, port: &str) -> RecordBatch {
    let batches = out.table(port);
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(out.schema(port).clone()));
    concat_batches(&schema, batches).unwrap()
}

fn ids(b: &RecordBatch) -> Vec<i32> {
    b.column_by_name("segment_id")
        .unwrap()
        .as_primitive::<Int32Type>()
        .values()
        .to_vec()
}

fn keys(b: &RecordBatch) -> Vec<i64> {
    b.column_by_name("customer_id")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

fn sizes(b: &RecordBatch) -> Vec<i64> {
    b.column_by_name("size")
        .unwrap()
        .as_primitive::<Int64Type>()
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

/// Every input row exactly once, in order, with a segment id the model knows.
fn covers(out: &fake_host::Outcome, n: usize) {
    let a = one(out, "assignments");
    assert_eq!(keys(&a), (1..=n as i64).collect::<Vec<_>>());
    let m = one(out, "model");
    assert!(ids(&a)
        .iter()
        .all(|&s| s >= 0 && (s as usize) < m.num_rows()));
}

#[test]
fn k_greater_than_the_rows_is_an_error_naming_k() {
    let b = table(
        some(&[1.0, 2.0, 3.0]),
        some(&[1.0, 5.0, 2.0]),
        vec![Some("n"), Some("s"), Some("e")],
    );
    for comp in CLUSTERERS {
        fails(
            comp,
            cfg(comp, json!(5)),
            vec![b.clone()],
            Some("k"),
            &["k = 5", "only 3 rows", "lower k"],
        );
    }
    // k = auto: the top of k_range.
    fails(
        "kmeans",
        json!({"k": "auto", "features": ["a", "b"]}),
        vec![b.clone()],
        Some("k_range"),
        &["3 rows", "lower the top of k_range"],
    );
    fails(
        "gmm",
        json!({"k": "auto", "features": ["a", "b"], "k_range": [1, 4]}),
        vec![b.clone()],
        Some("k_range"),
        &["only 3 rows", "lower the top of k_range"],
    );
    // rfm has no k: more bins than rows still scores every customer.
    let out = ok("rfm", cfg("rfm", json!(null)), vec![b]);
    covers(&out, 3);
    let a = one(&out, "assignments");
    let r = a
        .column_by_name("r_score")
        .unwrap()
        .as_primitive::<Int32Type>();
    assert!(r.values().iter().all(|s| (1..=5).contains(s)));
}

#[test]
fn all_rows_identical() {
    let n = 20;
    let b = table(some(&[2.0; 20]), some(&[3.0; 20]), vec![Some("n"); 20]);
    // k-means, mini-batch k-means and the mixture: one segment holds everyone, the
    // others are empty (size 0 in `model`, a warning in the log).
    for comp in ["kmeans", "gmm", "minibatch_kmeans"] {
        let out = ok(comp, cfg(comp, json!(3)), vec![b.clone()]);
        covers(&out, n);
        assert_eq!(ids(&one(&out, "assignments")), vec![0; n], "{comp}");
        assert_eq!(sizes(&one(&out, "model")), vec![20, 0, 0], "{comp}");
        let m = one(&out, "model");
        assert_eq!(floats(&m, "a")[0], 2.0, "{comp}: centre in original units");
        assert_eq!(floats(&m, "b")[0], 3.0, "{comp}");
    }
    for alg in ["lloyd", "hamerly", "elkan"] {
        for init in ["k_means_plus_plus", "random"] {
            let c = json!({"k": 3, "features": ["a", "b"], "algorithm": alg, "init": init});
            let out = ok("kmeans", c, vec![b.clone()]);
            assert_eq!(out.fact("sizes"), &json!([20, 0, 0]));
            let d = floats(&one(&out, "assignments"), "distance");
            assert!(d.iter().all(|&x| x == 0.0));
        }
    }
    // k-prototypes: each distinct row is a segment, so one segment (as kmodes).
    let out = ok("kprototypes", cfg("kprototypes", json!(3)), vec![b.clone()]);
    covers(&out, n);
    assert_eq!(out.fact("k"), &json!(1));
    assert_eq!(out.fact("distinct_rows"), &json!(1));
    assert_eq!(out.fact("cost"), &json!(0.0));
    assert_eq!(out.fact("gamma_source"), &json!("constant_numeric"));
    assert_eq!(sizes(&one(&out, "model")), vec![20]);
    // Auto-k: the silhouette has nothing to compare; elbow and BIC settle on 1.
    fails(
        "kmeans",
        json!({"k": "auto", "features": ["a", "b"], "k_range": [2, 5]}),
        vec![b.clone()],
        None,
        &["silhouette", "fewer distinct rows than k"],
    );
    let out = ok(
        "kmeans",
        json!({"k": "auto", "features": ["a", "b"], "k_range": [1, 5], "k_criterion": "elbow"}),
        vec![b.clone()],
    );
    assert_eq!(out.fact("k"), &json!(1));
    let out = ok(
        "gmm",
        json!({"k": "auto", "features": ["a", "b"], "k_range": [1, 5]}),
        vec![b.clone()],
    );
    assert_eq!(out.fact("k"), &json!(1));
    // Without regularisation a collapsed covariance is an error saying what to do.
    fails(
        "gmm",
        json!({"k": 1, "features": ["a", "b"], "reg_covar": 0.0}),
        vec![b.clone()],
        None,
        &["not positive definite", "reg_covar"],
    );
    // rfm: `first` spreads equal values over equal-count bins by row order; `shared`
    // gives them all the same score.
    let out = ok("rfm", cfg("rfm", json!(null)), vec![b.clone()]);
    covers(&out, n);
    let a = one(&out, "assignments");
    let r = a
        .column_by_name("r_score")
        .unwrap()
        .as_primitive::<Int32Type>();
    for s in 1..=5 {
        assert_eq!(r.values().iter().filter(|&&x| x == s).count(), 4);
    }
    let mut c = cfg("rfm", json!(null));
    c["ties"] = json!("shared");
    let out = ok("rfm", c, vec![b]);
    let a = one(&out, "assignments");
    assert_eq!(ids(&a), vec![ids(&a)[0]; n]);
}

#[test]
fn nan_infinite_and_null_values_name_the_column_and_row() {
    let regions = vec![Some("n"), Some("s"), Some("e"), Some("n")];
    for (bad, what) in [
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ] {
        let b = table(
            some(&[1.0, 2.0, 3.0, 4.0]),
            some(&[1.0, bad, 3.0, 4.0]),
            regions.clone(),
        );
        let words = ["column `b`", what, "row 1", "impute"];
        fails(
            "kmeans",
            cfg("kmeans", json!(2)),
            vec![b.clone()],
            Some("features.1"),
            &words,
        );
        fails(
            "gmm",
            cfg("gmm", json!(2)),
            vec![b.clone()],
            Some("features.1"),
            &words,
        );
        fails(
            "minibatch_kmeans",
            cfg("minibatch_kmeans", json!(2)),
            vec![b.clone()],
            None,
            &words,
        );
        fails(
            "kprototypes",
            cfg("kprototypes", json!(2)),
            vec![b.clone()],
            Some("numeric.1"),
            &words,
        );
        fails(
            "rfm",
            cfg("rfm", json!(null)),
            vec![b],
            Some("frequency"),
            &words,
        );
    }
    // Nulls.
    let b = table(
        vec![Some(1.0), None, Some(3.0), Some(4.0)],
        some(&[1.0, 2.0, 3.0, 4.0]),
        regions,
    );
    let words = ["column `a`", "null", "row 1"];
    fails(
        "kmeans",
        cfg("kmeans", json!(2)),
        vec![b.clone()],
        Some("features.0"),
        &words,
    );
    fails(
        "gmm",
        cfg("gmm", json!(2)),
        vec![b.clone()],
        Some("features.0"),
        &words,
    );
    fails(
        "kprototypes",
        cfg("kprototypes", json!(2)),
        vec![b.clone()],
        Some("numeric.0"),
        &words,
    );
    fails(
        "rfm",
        cfg("rfm", json!(null)),
        vec![b],
        Some("recency"),
        &words,
    );
    let b = table(
        some(&[1.0, 2.0, 3.0]),
        some(&[1.0, 2.0, 3.0]),
        vec![Some("n"), Some("s"), None],
    );
    fails(
        "kprototypes",
        cfg("kprototypes", json!(2)),
        vec![b],
        Some("categorical.0"),
        &["column `region`", "row 2", "null"],
    );
    // A NaN past the first batch of a stream still stops mini-batch k-means.
    let good = table(some(&[1.0; 3]), some(&[2.0, 3.0, 4.0]), vec![Some("n"); 3]);
    let bad = table(some(&[f64::NAN]), some(&[1.0]), vec![Some("n")]);
    let mut c = cfg("minibatch_kmeans", json!(2));
    c["fit_rows"] = json!(3);
    let out = fake_host::run(
        ENTRY,
        "minibatch_kmeans",
        c,
        1,
        vec![("in", schema(), vec![good, bad])],
    );
    assert_ne!(out.status, abi::STATUS_PANIC);
    let err = out
        .tables
        .iter()
        .find(|(p, _)| p == "assignments")
        .and_then(|(_, t)| t.as_ref().err())
        .expect("the stream fails");
    assert!(err.contains("column `a` is NaN at row 3"), "{err}");
}

#[test]
fn a_single_row_is_its_own_segment() {
    let b = table(some(&[5.0]), some(&[7.5]), vec![Some("n")]);
    for comp in CLUSTERERS {
        let out = ok(comp, cfg(comp, json!(1)), vec![b.clone()]);
        covers(&out, 1);
        let m = one(&out, "model");
        assert_eq!(sizes(&m), vec![1], "{comp}");
        assert_eq!(
            (floats(&m, "a")[0], floats(&m, "b")[0]),
            (5.0, 7.5),
            "{comp}"
        );
    }
    let out = ok("kprototypes", cfg("kprototypes", json!(1)), vec![b.clone()]);
    let m = one(&out, "model");
    assert_eq!(
        m.column_by_name("region")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "n"
    );
    let out = ok("rfm", cfg("rfm", json!(null)), vec![b.clone()]);
    covers(&out, 1);
    // More segments than the one row: an error naming k.
    for comp in CLUSTERERS {
        fails(
            comp,
            cfg(comp, json!(2)),
            vec![b.clone()],
            Some("k"),
            &["only 1 rows"],
        );
    }
}

#[test]
fn zero_variance_columns_are_kept_constant() {
    // `a` separates three groups; `b` is constant.
    let a: Vec<f64> = (0..30)
        .map(|i| (i / 10) as f64 * 10.0 + (i % 10) as f64 * 0.1)
        .collect();
    let region: Vec<Option<&str>> = (0..30).map(|i| Some(["n", "s", "e"][i / 10])).collect();
    let b = table(some(&a), some(&[4.0; 30]), region);
    for comp in CLUSTERERS {
        let out = ok(comp, cfg(comp, json!(3)), vec![b.clone()]);
        covers(&out, 30);
        let m = one(&out, "model");
        assert_eq!(sizes(&m), vec![10, 10, 10], "{comp}");
        assert!(
            floats(&m, "b").iter().all(|&v| v == 4.0),
            "{comp}: constant centre"
        );
        assert_eq!(
            out.fact("standardize")["std"][1],
            json!(1.0),
            "{comp}: sd 0 -> 1"
        );
        // The three groups, whatever their numbers.
        let s = ids(&one(&out, "assignments"));
        for g in 0..3 {
            let first = s[g * 10];
            assert!(s[g * 10..g * 10 + 10].iter().all(|&x| x == first), "{comp}");
        }
    }
    let out = ok("kprototypes", cfg("kprototypes", json!(3)), vec![b.clone()]);
    // gamma = 0.5 × mean(1, 0) after standardising.
    let gamma = out.fact("gamma").as_f64().unwrap();
    assert!((gamma - 0.25).abs() < 1e-12, "{gamma}");
    assert_eq!(out.fact("gamma_source"), &json!("default"));
    // Every numeric column constant: the categorical column alone decides (gamma 1).
    let region: Vec<Option<&str>> = (0..30).map(|i| Some(["n", "s", "e"][i % 3])).collect();
    let flat = table(some(&[1.0; 30]), some(&[4.0; 30]), region);
    let out = ok(
        "kprototypes",
        cfg("kprototypes", json!(3)),
        vec![flat.clone()],
    );
    assert_eq!(out.fact("gamma_source"), &json!("constant_numeric"));
    assert_eq!(out.fact("gamma"), &json!(1.0));
    assert_eq!(sizes(&one(&out, "model")), vec![10, 10, 10]);
    // Unstandardised with no regularisation, the mixture's constant feature has (next
    // to) no variance: either fitted (EM's 10ε keeps it barely positive definite) or a
    // clear error saying what to do.
    let out = run(
        "gmm",
        json!({"k": 3, "features": ["a", "b"], "standardize": false, "reg_covar": 0.0}),
        vec![b.clone()],
    );
    if out.status != abi::STATUS_OK {
        assert!(out.error_message().contains("reg_covar"), "{:?}", out.error);
    }
    let out = ok("rfm", cfg("rfm", json!(null)), vec![b]);
    covers(&out, 30);
}

#[test]
fn an_empty_input_is_an_error_or_an_empty_result() {
    let empty = table(vec![], vec![], vec![]);
    for batches in [vec![], vec![empty.clone()]] {
        for comp in CLUSTERERS {
            fails(
                comp,
                cfg(comp, json!(2)),
                batches.clone(),
                None,
                &["no rows", "nothing to segment", "upstream step"],
            );
        }
        fails(
            "kmeans",
            json!({"k": "auto", "features": ["a", "b"]}),
            batches.clone(),
            None,
            &["no rows"],
        );
        fails(
            "gmm",
            json!({"k": "auto", "features": ["a", "b"]}),
            batches.clone(),
            None,
            &["no rows"],
        );
        // rfm: nothing to score is not an error; every segment has size 0.
        let out = ok("rfm", cfg("rfm", json!(null)), batches);
        assert_eq!(one(&out, "assignments").num_rows(), 0);
        let m = one(&out, "model");
        assert_eq!(m.num_rows(), 11);
        assert!(sizes(&m).iter().all(|&s| s == 0));
        assert_eq!(m.column_by_name("share").unwrap().null_count(), 11);
        assert_eq!(out.fact("customers"), &json!(0));
    }
}
