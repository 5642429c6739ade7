//! `validity` and `compare` through the real ABI entry points, against scikit-learn,
//! pandas and numpy values in `fixtures/validity_reference.json` (made by
//! `fixtures/make_validity_fixture.py`), plus a crosstab and value separation worked
//! out by hand, and the config errors.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{
    Array, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};
use segflow_sdk::ffi::abi;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_evaluate::segflow_plugin_v1 as abi::EntryFn;

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/validity_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn f64s(v: &Value) -> Vec<Option<f64>> {
    v.as_array().unwrap().iter().map(Value::as_f64).collect()
}
fn i64s(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn features_table(r: &Value) -> (SchemaRef, RecordBatch) {
    let t = &r["features_table"];
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("monetary", DataType::Float64, true),
        Field::new("frequency", DataType::Int64, true),
        Field::new("recency_days", DataType::Int64, true),
        Field::new("web_share", DataType::Float64, true),
        Field::new("clv", DataType::Float64, true),
        Field::new("avg_gap_days", DataType::Float64, true),
        Field::new("region", DataType::Utf8, true),
    ]));
    let n = t["customer_id"].as_array().unwrap().len();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(i64s(&t["customer_id"]))),
            Arc::new(Float64Array::from(f64s(&t["monetary"]))),
            Arc::new(Int64Array::from(i64s(&t["frequency"]))),
            Arc::new(Int64Array::from(i64s(&t["recency_days"]))),
            Arc::new(Float64Array::from(f64s(&t["web_share"]))),
            Arc::new(Float64Array::from(f64s(&t["clv"]))),
            Arc::new(Float64Array::from(f64s(&t["avg_gap_days"]))),
            Arc::new(StringArray::from(vec!["x"; n])),
        ],
    )
    .unwrap();
    (schema, batch)
}

fn seg_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
    ]))
}

fn segmentation(keys: Vec<i64>, ids: Vec<i32>, labels: Vec<String>) -> (SchemaRef, RecordBatch) {
    let batch = RecordBatch::try_new(
        seg_schema(),
        vec![
            Arc::new(Int64Array::from(keys)),
            Arc::new(Int32Array::from(ids)),
            Arc::new(StringArray::from(labels)),
        ],
    )
    .unwrap();
    (seg_schema(), batch)
}

fn fixture_segmentation(r: &Value, name: &str, key_order: bool) -> (SchemaRef, RecordBatch) {
    let t = &r["segmentation_tables"][name];
    let mut rows: Vec<(i64, i32, String)> = i64s(&t["customer_id"])
        .into_iter()
        .zip(i64s(&t["segment_id"]))
        .zip(t["segment"].as_array().unwrap())
        .map(|((k, i), l)| (k, i as i32, l.as_str().unwrap().to_string()))
        .collect();
    if key_order {
        rows.sort();
    }
    segmentation(
        rows.iter().map(|r| r.0).collect(),
        rows.iter().map(|r| r.1).collect(),
        rows.iter().map(|r| r.2.clone()).collect(),
    )
}

type Inputs = Vec<(&'static str, SchemaRef, Vec<RecordBatch>)>;

fn inputs(r: &Value, segs: &[&'static str], key_order: bool) -> Inputs {
    let (fs, fb) = features_table(r);
    let mut out: Inputs = vec![("features", fs, vec![fb])];
    for &s in segs {
        let (ss, sb) = fixture_segmentation(r, s, key_order);
        out.push((s, ss, vec![sb]));
    }
    out
}

/// `metrics` as (segmentation, metric, segment) → value.
type Long = BTreeMap<(String, String, Option<String>), Option<f64>>;

fn long(out: &fake_host::Outcome, port: &str) -> Long {
    let b = out.table(port);
    let b = concat_batches(&b[0].schema(), b).unwrap();
    let s = |c: &str| b.column_by_name(c).unwrap().as_string::<i32>().clone();
    let (seg, metric, segment) = (s("segmentation"), s("metric"), s("segment"));
    let value = b
        .column_by_name("value")
        .unwrap()
        .as_primitive::<Float64Type>()
        .clone();
    let mut m = Long::new();
    for i in 0..b.num_rows() {
        let k = (
            seg.value(i).to_string(),
            metric.value(i).to_string(),
            (!segment.is_null(i)).then(|| segment.value(i).to_string()),
        );
        assert!(
            m.insert(k.clone(), (!value.is_null(i)).then(|| value.value(i)))
                .is_none(),
            "{k:?} twice"
        );
    }
    m
}

fn get(m: &Long, seg: &str, metric: &str, segment: Option<&str>) -> Option<f64> {
    *m.get(&(seg.into(), metric.into(), segment.map(String::from)))
        .unwrap_or_else(|| panic!("no metric {seg}/{metric}/{segment:?}"))
}

fn close(got: Option<f64>, want: &Value, what: &str) {
    match (got, want.as_f64()) {
        (None, None) => {}
        (Some(g), Some(w)) => {
            let rel = (g - w).abs() / w.abs().max(1e-300);
            assert!(
                rel <= 1e-9 || (g - w).abs() <= 1e-12,
                "{what}: got {g}, scikit-learn {w} (relative {rel:e})"
            );
        }
        (g, _) => panic!("{what}: got {g:?}, want {want}"),
    }
}

fn check_validity(m: &Long, seg: &str, want: &Value) {
    for metric in [
        "silhouette",
        "calinski_harabasz",
        "davies_bouldin",
        "within_dispersion",
        "between_dispersion",
        "customers",
        "segments",
    ] {
        close(
            get(m, seg, metric, None),
            &want[metric],
            &format!("{seg} {metric}"),
        );
    }
    for (label, p) in want["per_segment"].as_object().unwrap() {
        for metric in ["customers", "silhouette", "within_dispersion"] {
            close(
                get(m, seg, metric, Some(label)),
                &p[metric],
                &format!("{seg}/{label} {metric}"),
            );
        }
    }
}

#[test]
fn validity_matches_scikit_learn() {
    let r = reference();
    let out = fake_host::run(
        ENTRY,
        "validity",
        json!({}),
        2,
        inputs(&r, &["km", "db", "tiers", "one"], false),
    );
    assert_eq!(out.status, abi::STATUS_OK, "{}", out.error_message());
    let m = long(&out, "metrics");
    for seg in ["km", "db", "tiers", "one"] {
        check_validity(&m, seg, &r["validity"][seg]);
    }
    // DBSCAN's noise is one more segment, as scikit-learn treats label -1.
    assert!(get(&m, "db", "silhouette", Some("noise")).is_some());
    // The null column is left out of the default features; the text one is not numeric.
    assert_eq!(out.fact("features"), &r["features"]);
    assert_eq!(out.fact("features_skipped"), &json!(["avg_gap_days"]));
    assert_eq!(out.fact("standardize"), &json!(true));
    let f = &out.fact("segmentations")["one"];
    assert_eq!(f["segments"], json!(1));
    assert_eq!(f["silhouette"], Value::Null);
    assert_eq!(
        out.fact("segmentations")["km"]["silhouette_sampled"],
        json!(false)
    );
    // Same output for another thread count.
    let again = fake_host::run(
        ENTRY,
        "validity",
        json!({}),
        1,
        inputs(&r, &["km", "db", "tiers", "one"], false),
    );
    assert_eq!(long(&again, "metrics"), m);
}

#[test]
fn validity_unscaled_listed_features() {
    let r = reference();
    let out = fake_host::run(
        ENTRY,
        "validity",
        json!({"features": ["monetary", "frequency"], "standardize": false}),
        1,
        inputs(&r, &["km"], false),
    );
    assert_eq!(out.status, abi::STATUS_OK, "{}", out.error_message());
    check_validity(&long(&out, "metrics"), "km", &r["validity_unscaled_km"]);
}

#[test]
fn validity_sampled_silhouette() {
    let r = reference();
    let s = &r["sampled"];
    // The script evaluated scikit-learn on the rows our sampler draws.
    let idx: Vec<usize> = segflow_ml::metrics::sample_indices(90, 40, 3);
    let want: Vec<usize> = i64s(&s["indices"]).iter().map(|&i| i as usize).collect();
    assert_eq!(idx, want);
    let out = fake_host::run(
        ENTRY,
        "validity",
        json!({"silhouette": {"exact_below": 10, "sample_size": 40, "seed": 3}}),
        3,
        // Key order, so the sample's positions are the script's.
        inputs(&r, &["km"], true),
    );
    assert_eq!(out.status, abi::STATUS_OK, "{}", out.error_message());
    let m = long(&out, "metrics");
    close(
        get(&m, "km", "silhouette", None),
        &s["silhouette"],
        "sampled silhouette",
    );
    assert_eq!(get(&m, "km", "silhouette_rows", None), Some(40.0));
    assert_eq!(
        out.fact("segmentations")["km"]["silhouette_sampled"],
        json!(true)
    );
    // The other metrics still use every customer.
    close(
        get(&m, "km", "calinski_harabasz", None),
        &r["validity"]["km"]["calinski_harabasz"],
        "CH",
    );
}

#[test]
fn validity_listed_feature_with_nulls_leaves_customers_out() {
    let r = reference();
    let nulls = r["features_table"]["avg_gap_days"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v.is_null())
        .count();
    assert!(nulls > 0);
    let out = fake_host::run(
        ENTRY,
        "validity",
        json!({"features": ["monetary", "avg_gap_days"]}),
        1,
        inputs(&r, &["km"], false),
    );
    assert_eq!(out.status, abi::STATUS_OK, "{}", out.error_message());
    let m = long(&out, "metrics");
    assert_eq!(get(&m, "km", "customers", None), Some((90 - nulls) as f64));
    assert_eq!(out.fact("segmentations")["km"]["left_out"], json!(nulls));
}

#[test]
fn validity_config_errors_name_the_field() {
    let r = reference();
    let schemas: Vec<(&str, SchemaRef)> = inputs(&r, &["km"], false)
        .into_iter()
        .map(|(n, s, _)| (n, s))
        .collect();
    let plan = |cfg: Value| fake_host::plan(ENTRY, "validity", cfg, &schemas);
    let e = plan(json!({"features": ["monetary", "spend"]}));
    assert_eq!(e.error_field().as_deref(), Some("features.1"));
    assert!(
        e.error_message().contains("`spend`"),
        "{}",
        e.error_message()
    );
    let e = plan(json!({"features": ["region"]}));
    assert_eq!(e.error_field().as_deref(), Some("features.0"));
    assert!(e.error_message().contains("not numeric"));
    let e = plan(json!({"silhouette": {"sample_size": 1}}));
    assert_eq!(e.error_field().as_deref(), Some("silhouette.sample_size"));
    let e = plan(json!({"silhouette": {"sampel_size": 100}}));
    assert_ne!(e.status, abi::STATUS_OK);
    assert!(
        e.error_message().contains("sampel_size"),
        "{}",
        e.error_message()
    );
    let ok = plan(json!({}));
    assert_eq!(ok.status, abi::STATUS_OK, "{}", ok.error_message());
    assert_eq!(ok.schema("metrics").fields().len(), 4);
    // No segmentation at all.
    let e = fake_host::plan(ENTRY, "validity", json!({}), &schemas[..1]);
    assert_ne!(e.status, abi::STATUS_OK);
}

// ---------------------------------------------------------------- compare

fn pair_rows(out: &fake_host::Outcome) -> Vec<(String, String, i64, f64, f64)> {
    let b = out.table("pairs");
    let b = concat_batches(&b[0].schema(), b).unwrap();
    let s = |c: &str| b.column_by_name(c).unwrap().as_string::<i32>().clone();
    let f = |c: &str| {
        b.column_by_name(c)
            .unwrap()
            .as_primitive::<Float64Type>()
            .clone()
    };
    let (a, bb, ari, nmi) = (s("segmentation_a"), s("segmentation_b"), f("ari"), f("nmi"));
    let c = b
        .column_by_name("customers")
        .unwrap()
        .as_primitive::<Int64Type>()
        .clone();
    (0..b.num_rows())
        .map(|i| {
            (
                a.value(i).to_string(),
                bb.value(i).to_string(),
                c.value(i),
                ari.value(i),
                nmi.value(i),
            )
        })
        .collect()
}

#[test]
fn compare_matches_scikit_learn_and_numpy() {
    let r = reference();
    let out = fake_host::run(
        ENTRY,
        "compare",
        json!({"value": "clv"}),
        2,
        inputs(&r, &["km", "db", "tiers", "one"], false),
    );
    assert_eq!(out.status, abi::STATUS_OK, "{}", out.error_message());
    let pairs = pair_rows(&out);
    let want = r["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), want.len());
    for (got, w) in pairs.iter().zip(want) {
        assert_eq!(got.0, w["a"].as_str().unwrap());
        assert_eq!(got.1, w["b"].as_str().unwrap());
        assert_eq!(got.2, w["customers"].as_i64().unwrap());
        close(Some(got.3), &w["ari"], &format!("ari {}~{}", got.0, got.1));
        close(Some(got.4), &w["nmi"], &format!("nmi {}~{}", got.0, got.1));
    }
    let m = long(&out, "metrics");
    for (seg, v) in r["value"].as_object().unwrap() {
        close(
            get(&m, seg, "value_between_variance", None),
            &v["between_variance"],
            &format!("{seg} between"),
        );
        close(
            get(&m, seg, "value_total_variance", None),
            &v["total_variance"],
            &format!("{seg} total"),
        );
        close(
            get(&m, seg, "value_eta_squared", None),
            &v["eta_squared"],
            &format!("{seg} eta²"),
        );
        for (label, mean) in v["segment_means"].as_object().unwrap() {
            close(
                get(&m, seg, "value_mean", Some(label)),
                mean,
                "segment mean",
            );
        }
        // The validity summary is validity's.
        for metric in ["silhouette", "calinski_harabasz", "davies_bouldin"] {
            close(
                get(&m, seg, metric, None),
                &r["validity"][seg][metric],
                &format!("{seg} {metric}"),
            );
        }
    }
    assert_eq!(
        out.fact("best_value_separation"),
        &r["best_value_separation"]
    );
    // Every segment pair of every segmentation pair, with zero cells.
    let k = |s: &str| r["validity"][s]["segments"].as_u64().unwrap() as usize;
    let names = ["km", "db", "tiers", "one"];
    let mut cells = 0;
    for i in 0..4 {
        for j in i + 1..4 {
            cells += k(names[i]) * k(names[j]);
        }
    }
    assert_eq!(out.rows("crosstab"), cells);
}

/// Six customers, two segmentations and a value column:
///
/// | customer | value | a | b |
/// |---|---|---|---|
/// | 1 | 10 | x | p |
/// | 2 | 20 | x | p |
/// | 3 | 30 | x | q |
/// | 4 | 40 | y | q |
/// | 5 | 50 | y | q |
/// | 6 | 60 | y | — (not in b) |
fn small() -> Inputs {
    let fs = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("value", DataType::Float64, true),
        Field::new("f", DataType::Float64, true),
    ]));
    let fb = RecordBatch::try_new(
        fs.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6])),
            Arc::new(Float64Array::from(vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0])),
            Arc::new(Float64Array::from(vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0])),
        ],
    )
    .unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (sa, ba) = segmentation(
        vec![1, 2, 3, 4, 5, 6],
        vec![0, 0, 0, 1, 1, 1],
        s(&["x", "x", "x", "y", "y", "y"]),
    );
    let (sb, bb) = segmentation(
        vec![5, 4, 3, 2, 1],
        vec![1, 1, 1, 0, 0],
        s(&["q", "q", "q", "p", "p"]),
    );
    vec![
        ("features", fs, vec![fb]),
        ("a", sa, vec![ba]),
        ("b.assignments", sb, vec![bb]),
    ]
}

#[test]
fn compare_crosstab_and_value_by_hand() {
    let out = fake_host::run(ENTRY, "compare", json!({"value": "value"}), 1, small());
    assert_eq!(out.status, abi::STATUS_OK, "{}", out.error_message());
    // On the 5 customers both have: a = x x x y y, b = p p q q q.
    // Crosstab (a rows, b columns): x∩p = 2, x∩q = 1, y∩p = 0, y∩q = 2.
    let b = out.table("crosstab");
    let b = concat_batches(&b[0].schema(), b).unwrap();
    let s = |c: &str| b.column_by_name(c).unwrap().as_string::<i32>().clone();
    let n = b
        .column_by_name("customers")
        .unwrap()
        .as_primitive::<Int64Type>()
        .clone();
    let f = |c: &str| {
        b.column_by_name(c)
            .unwrap()
            .as_primitive::<Float64Type>()
            .clone()
    };
    let (share_a, share_b) = (f("share_of_a"), f("share_of_b"));
    let rows: Vec<(String, String, String, String, i64, f64, f64)> = (0..b.num_rows())
        .map(|i| {
            (
                s("segmentation_a").value(i).to_string(),
                s("segment_a").value(i).to_string(),
                s("segmentation_b").value(i).to_string(),
                s("segment_b").value(i).to_string(),
                n.value(i),
                share_a.value(i),
                share_b.value(i),
            )
        })
        .collect();
    let row = |sa: &str, sb: &str, c: i64, fa: f64, fb: f64| {
        ("a".into(), sa.into(), "b".into(), sb.into(), c, fa, fb)
    };
    assert_eq!(
        rows,
        vec![
            // x has 3 common customers, y 2; p has 2, q 3.
            row("x", "p", 2, 2.0 / 3.0, 1.0),
            row("x", "q", 1, 1.0 / 3.0, 1.0 / 3.0),
            row("y", "p", 0, 0.0, 0.0),
            row("y", "q", 2, 1.0, 2.0 / 3.0),
        ]
    );
    let pairs = pair_rows(&out);
    assert_eq!(pairs.len(), 1);
    assert_eq!(
        (pairs[0].0.as_str(), pairs[0].1.as_str(), pairs[0].2),
        ("a", "b", 5)
    );
    // ARI of [x x x y y] vs [p p q q q]: pairs within: a: 3+1 = 4, b: 1+3 = 4, both:
    // cells 2,1,0,2 → 1+0+0+1 = 2; C(5,2) = 10; expected = 4·4/10 = 1.6;
    // ARI = (2 − 1.6) / (4 − 1.6) = 1/6.
    assert!((pairs[0].3 - 1.0 / 6.0).abs() < 1e-12, "{}", pairs[0].3);
    // Value separation of a on all 6 customers: means 20 and 50, overall 35;
    // between = (3·15² + 3·15²)/6 = 225; total = Σ(v − 35)²/6 = 1750/6; eta² = 225·6/1750.
    let m = long(&out, "metrics");
    assert_eq!(get(&m, "a", "value_mean", Some("x")), Some(20.0));
    assert!((get(&m, "a", "value_between_variance", None).unwrap() - 225.0).abs() < 1e-9);
    assert!(
        (get(&m, "a", "value_eta_squared", None).unwrap() - 225.0 * 6.0 / 1750.0).abs() < 1e-12
    );
    // b on its 5 customers: p = {10, 20} → 15, q = {30, 40, 50} → 40; overall 30;
    // between = (2·225 + 3·100)/5 = 150; total = (400+100+0+100+400)/5 = 200; eta² = 0.75.
    assert!((get(&m, "b", "value_eta_squared", None).unwrap() - 0.75).abs() < 1e-12);
    // a: 225·6/1750 = 0.7714 > 0.75.
    assert_eq!(out.fact("best_value_separation"), &json!("a"));
}

#[test]
fn compare_needs_two_segmentations_and_a_numeric_value() {
    let inp = small();
    let schemas: Vec<(&str, SchemaRef)> = inp.iter().map(|(n, s, _)| (*n, s.clone())).collect();
    let e = fake_host::plan(ENTRY, "compare", json!({}), &schemas[..2]);
    assert_ne!(e.status, abi::STATUS_OK);
    assert!(
        e.error_message().contains("at least two segmentations"),
        "{}",
        e.error_message()
    );
    let e = fake_host::plan(ENTRY, "compare", json!({"value": "clv"}), &schemas);
    assert_eq!(e.error_field().as_deref(), Some("value"));
    let ok = fake_host::plan(ENTRY, "compare", json!({"value": "value"}), &schemas);
    assert_eq!(ok.status, abi::STATUS_OK, "{}", ok.error_message());
    for port in ["metrics", "pairs", "crosstab"] {
        ok.schema(port);
    }
}
