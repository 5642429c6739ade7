//! `map` driven through the real ABI entry points with hand-built profiles tables.
//!
//! The PCA coordinates, loadings and explained variance ratios are compared (up to a
//! per-component sign) with scikit-learn's `PCA(n_components=2)` and, for
//! `weighted: true`, numpy's weighted covariance, from the `map` section of
//! crates/segflow-ml/tests/fixtures/pca_reference.json (made by make_pca_fixture.py
//! next to it).

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{
    Array, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Schema, SchemaRef};
use segflow_sdk::ffi::abi;
use serde_json::json;
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_position::segflow_plugin_v1 as abi::EntryFn;
const INPUT: &str = "profile.profiles";

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crates/segflow-ml/tests/fixtures/pca_reference.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// One segment of a hand-built profiles table.
#[derive(Clone)]
struct Row {
    seg: String,
    id: i32,
    label: String,
    customers: i64,
    revenue_share: Option<f64>,
    clv_total: f64,
    /// (mean, z) per feature.
    feats: Vec<(Option<f64>, Option<f64>)>,
}

/// A profiles table as profiles.rs documents it (head, clv_total, five stats per
/// feature), in `rows` order.
fn profiles(features: &[&str], rows: &[Row]) -> (SchemaRef, RecordBatch) {
    let mut fields = vec![
        Field::new("segmentation", DataType::Utf8, false),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("customer_share", DataType::Float64, true),
        Field::new("revenue", DataType::Float64, true),
        Field::new("revenue_share", DataType::Float64, true),
        Field::new("clv_total", DataType::Float64, true),
    ];
    for f in features {
        for s in ["mean", "median", "std", "index", "z"] {
            fields.push(Field::new(format!("{f}_{s}"), DataType::Float64, true));
        }
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let total = |seg: &str| -> i64 {
        rows.iter()
            .filter(|r| r.seg == seg)
            .map(|r| r.customers)
            .sum()
    };
    let f64s = |v: Vec<Option<f64>>| Arc::new(Float64Array::from(v)) as Arc<dyn Array>;
    let mut cols: Vec<Arc<dyn Array>> = vec![
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.seg.clone()).collect::<Vec<_>>(),
        )),
        Arc::new(Int32Array::from(
            rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.label.clone()).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.customers).collect::<Vec<_>>(),
        )),
        f64s(
            rows.iter()
                .map(|r| Some(r.customers as f64 / total(&r.seg) as f64))
                .collect(),
        ),
        f64s(
            rows.iter()
                .map(|r| r.revenue_share.map(|s| s * 1000.0))
                .collect(),
        ),
        f64s(rows.iter().map(|r| r.revenue_share).collect()),
        f64s(rows.iter().map(|r| Some(r.clv_total)).collect()),
    ];
    for j in 0..features.len() {
        let mean: Vec<Option<f64>> = rows.iter().map(|r| r.feats[j].0).collect();
        cols.push(f64s(mean.clone()));
        cols.push(f64s(mean.clone()));
        cols.push(f64s(rows.iter().map(|_| Some(1.0)).collect()));
        cols.push(f64s(rows.iter().map(|_| Some(100.0)).collect()));
        cols.push(f64s(rows.iter().map(|r| r.feats[j].1).collect()));
    }
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    (schema, batch)
}

/// The fixture's segmentations as rows: `km` (5 segments) then `rfm` (3).
fn fixture_rows(r: &serde_json::Value) -> (Vec<String>, Vec<Row>) {
    let maps = r["map"].as_array().unwrap();
    let features: Vec<String> = maps[0]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let mut rows = Vec::new();
    for m in maps {
        let seg = m["segmentation"].as_str().unwrap();
        let customers = floats(&m["customers"]);
        let total: f64 = customers.iter().sum();
        for (i, (z, mean)) in m["z"]
            .as_array()
            .unwrap()
            .iter()
            .zip(m["means"].as_array().unwrap())
            .enumerate()
        {
            rows.push(Row {
                seg: seg.to_string(),
                id: i as i32,
                label: format!("{seg} {i}"),
                customers: customers[i] as i64,
                revenue_share: Some(customers[i] / total),
                clv_total: 10.0 * (i as f64 + 1.0),
                feats: floats(mean)
                    .into_iter()
                    .zip(floats(z))
                    .map(|(m, z)| (Some(m), Some(z)))
                    .collect(),
            });
        }
    }
    (features, rows)
}

fn one(out: &fake_host::Outcome, port: &str) -> RecordBatch {
    let batches = out.table(port);
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(out.schema(port).clone()));
    concat_batches(&schema, batches).unwrap()
}

fn col(b: &RecordBatch, name: &str) -> Vec<f64> {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_primitive::<Float64Type>()
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect()
}

fn texts(b: &RecordBatch, name: &str) -> Vec<String> {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or("<null>").to_string())
        .collect()
}

fn feature_refs(f: &[String]) -> Vec<&str> {
    f.iter().map(String::as_str).collect()
}

fn run_map(cfg: serde_json::Value, schema: &SchemaRef, batch: &RecordBatch) -> fake_host::Outcome {
    // Two batches, to exercise reading a stream.
    let cut = batch.num_rows() / 2;
    let batches = vec![
        batch.slice(0, cut),
        batch.slice(cut, batch.num_rows() - cut),
    ];
    let out = fake_host::run(ENTRY, "map", cfg, 1, vec![(INPUT, schema.clone(), batches)]);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    out
}

fn run_error(cfg: serde_json::Value, schema: &SchemaRef, batch: &RecordBatch) -> String {
    let out = fake_host::run(
        ENTRY,
        "map",
        cfg,
        1,
        vec![(INPUT, schema.clone(), vec![batch.clone()])],
    );
    assert_ne!(out.status, abi::STATUS_OK, "run should fail");
    out.error_message()
}

fn plan_error(cfg: serde_json::Value, schema: &SchemaRef) -> (String, Option<String>) {
    let out = fake_host::plan(ENTRY, "map", cfg, &[(INPUT, schema.clone())]);
    assert_ne!(out.status, abi::STATUS_OK, "plan should fail");
    (out.error_message(), out.error_field())
}

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// The rows of `seg` in the map and loadings, checked against a reference fit (sklearn
/// components/coordinates/ratios) up to a per-component sign. `features` are the
/// reference's features, in order.
fn check_against(
    out: &fake_host::Outcome,
    seg: &str,
    reference: &serde_json::Value,
    features: &[String],
) {
    let map = one(out, "map");
    let loadings = one(out, "loadings");
    let segs = texts(&map, "segmentation");
    let rows: Vec<usize> = (0..map.num_rows()).filter(|&i| segs[i] == seg).collect();
    let lsegs = texts(&loadings, "segmentation");
    let lrows: Vec<usize> = (0..loadings.num_rows())
        .filter(|&i| lsegs[i] == seg)
        .collect();
    let lfeat = texts(&loadings, "feature");
    assert_eq!(
        lrows.iter().map(|&i| lfeat[i].clone()).collect::<Vec<_>>(),
        features,
        "{seg}: loadings features"
    );
    let d = features.len();
    let comps = floats(&reference["components"]);
    let coords = floats(&reference["coordinates"]);
    let ratio = floats(&reference["explained_variance_ratio"]);
    for (c, axis, pc) in [(0, "x", "pc1"), (1, "y", "pc2")] {
        let mine: Vec<f64> = lrows.iter().map(|&i| col(&loadings, pc)[i]).collect();
        let theirs = &comps[c * d..(c + 1) * d];
        let sign = mine
            .iter()
            .zip(theirs)
            .map(|(a, b)| a * b)
            .sum::<f64>()
            .signum();
        for j in 0..d {
            assert!(
                near(mine[j], sign * theirs[j]),
                "{seg} {pc} {}: {} vs {}",
                features[j],
                mine[j],
                sign * theirs[j]
            );
        }
        let xs = col(&map, axis);
        for (i, &r) in rows.iter().enumerate() {
            assert!(
                near(xs[r], sign * coords[i * 2 + c]),
                "{seg} {axis} of segment {i}: {} vs {}",
                xs[r],
                sign * coords[i * 2 + c]
            );
        }
        let fact = &out.fact("segmentations")[seg]["explained_variance_ratio"][c];
        assert!(
            near(fact.as_f64().unwrap(), ratio[c]),
            "{seg} ratio {c}: {fact} vs {}",
            ratio[c]
        );
    }
}

#[test]
fn the_component_is_exported_with_documented_config() {
    assert!(fake_host::component_names(ENTRY).contains(&"map".to_string()));
    let schema = fake_host::config_schema(ENTRY, "map");
    let props = schema["properties"].as_object().unwrap();
    for k in ["x", "y", "features", "weighted", "value"] {
        assert!(
            props[k].get("description").is_some(),
            "{k} has no description"
        );
    }
}

#[test]
fn plan_declares_the_documented_ports() {
    let r = reference();
    let (features, rows) = fixture_rows(&r);
    let (schema, _) = profiles(&feature_refs(&features), &rows);
    let out = fake_host::plan(ENTRY, "map", json!({}), &[(INPUT, schema)]);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    let names = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect::<Vec<_>>()
    };
    use DataType::*;
    assert_eq!(
        names(out.schema("map")),
        [
            ("segmentation", Utf8),
            ("segment_id", Int32),
            ("segment", Utf8),
            ("x", Float64),
            ("y", Float64),
            ("customers", Int64),
            ("customer_share", Float64),
            ("value", Float64),
        ]
        .map(|(n, t)| (n.to_string(), t))
    );
    assert_eq!(
        names(out.schema("loadings")),
        [
            ("segmentation", Utf8),
            ("feature", Utf8),
            ("pc1", Float64),
            ("pc2", Float64)
        ]
        .map(|(n, t)| (n.to_string(), t))
    );
}

#[test]
fn pca_maps_each_segmentation_separately_as_sklearn() {
    let r = reference();
    let (features, rows) = fixture_rows(&r);
    let (schema, batch) = profiles(&feature_refs(&features), &rows);
    let out = run_map(json!({}), &schema, &batch);
    let map = one(&out, "map");
    assert_eq!(map.num_rows(), 8);
    assert_eq!(out.rows("loadings"), 6);
    for m in r["map"].as_array().unwrap() {
        let seg = m["segmentation"].as_str().unwrap();
        check_against(&out, seg, &m["sklearn"], &features);
        let axes = &out.fact("segmentations")[seg]["axes"];
        assert_eq!(axes["method"], "pca");
        assert!(axes["x"].as_str().unwrap().starts_with("PC1: "), "{axes}");
        assert!(axes["y"].as_str().unwrap().starts_with("PC2: "), "{axes}");
    }
    // The head, sizes and bubble value are carried from the profiles.
    assert_eq!(
        map.column_by_name("segment_id")
            .unwrap()
            .as_primitive::<Int32Type>()
            .values()
            .to_vec(),
        rows.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    assert_eq!(
        texts(&map, "segment"),
        rows.iter().map(|r| r.label.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        map.column_by_name("customers")
            .unwrap()
            .as_primitive::<segflow_sdk::arrow::datatypes::Int64Type>()
            .values()
            .to_vec(),
        rows.iter().map(|r| r.customers).collect::<Vec<_>>()
    );
    assert_eq!(
        col(&map, "value"),
        rows.iter()
            .map(|r| r.revenue_share.unwrap())
            .collect::<Vec<_>>()
    );
    assert_eq!(out.fact("method"), "pca");
    assert_eq!(out.fact("value"), "revenue_share");
}

#[test]
fn weighted_pca_matches_the_weighted_covariance() {
    let r = reference();
    let (features, rows) = fixture_rows(&r);
    let (schema, batch) = profiles(&feature_refs(&features), &rows);
    let out = run_map(json!({"weighted": true}), &schema, &batch);
    for m in r["map"].as_array().unwrap() {
        let seg = m["segmentation"].as_str().unwrap();
        check_against(&out, seg, &m["weighted"], &features);
    }
}

#[test]
fn axis_names_come_from_the_largest_loadings_with_signs() {
    // Two points differing by (+2, −1, +0.1) in (a, b, c): PC1 ∝ (2, −1, 0.1), so its
    // name lists +a −b and leaves c out (below half of the largest loading).
    let mk = |id: i32, z: [f64; 3]| Row {
        seg: "s".into(),
        id,
        label: format!("s{id}"),
        customers: 10,
        revenue_share: Some(0.5),
        clv_total: 1.0,
        feats: z.iter().map(|v| (Some(*v), Some(*v))).collect(),
    };
    let rows = vec![
        mk(0, [0.0, 0.0, 0.0]),
        mk(1, [2.0, -1.0, 0.1]),
        mk(2, [1.0, -0.5, 0.05]),
        mk(3, [0.0, 1.0, 1.6]),
    ];
    let (schema, batch) = profiles(&["a", "b", "c"], &rows);
    let out = run_map(json!({"features": ["a", "b"]}), &schema, &batch);
    let axes = &out.fact("segmentations")["s"]["axes"];
    let x = axes["x"].as_str().unwrap();
    assert!(x == "PC1: +a −b" || x == "PC1: +b −a", "{x}");
    let out = run_map(json!({}), &schema, &batch);
    let x = out.fact("segmentations")["s"]["axes"]["x"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        x.starts_with("PC1: ") && x.matches(['+', '−']).count() >= 2,
        "{x}"
    );
}

#[test]
fn x_and_y_place_segments_at_their_means() {
    let r = reference();
    let (features, mut rows) = fixture_rows(&r);
    // A third segmentation with a single segment is fine on two features.
    let mut single = rows[0].clone();
    single.seg = "solo".into();
    rows.push(single);
    let (schema, batch) = profiles(&feature_refs(&features), &rows);
    let out = run_map(
        json!({"x": "monetary_sum", "y": "recency_days", "value": "clv_total"}),
        &schema,
        &batch,
    );
    let map = one(&out, "map");
    assert_eq!(map.num_rows(), rows.len());
    let x: Vec<f64> = rows.iter().map(|r| r.feats[2].0.unwrap()).collect();
    let y: Vec<f64> = rows.iter().map(|r| r.feats[0].0.unwrap()).collect();
    assert_eq!(col(&map, "x"), x);
    assert_eq!(col(&map, "y"), y);
    assert_eq!(
        col(&map, "value"),
        rows.iter().map(|r| r.clv_total).collect::<Vec<_>>()
    );
    let loadings = one(&out, "loadings");
    assert_eq!(loadings.num_rows(), 6);
    assert_eq!(
        texts(&loadings, "feature")[..2],
        ["monetary_sum".to_string(), "recency_days".to_string()]
    );
    assert_eq!(col(&loadings, "pc1")[..2], [1.0, 0.0]);
    assert_eq!(col(&loadings, "pc2")[..2], [0.0, 1.0]);
    let f = &out.fact("segmentations")["solo"];
    assert_eq!(f["axes"]["method"], "features");
    assert_eq!(f["axes"]["x"], "monetary_sum_mean");
    assert_eq!(f["axes"]["y"], "recency_days_mean");
    assert!(f["explained_variance_ratio"].is_null());
    assert_eq!(out.fact("method"), "features");
}

#[test]
fn a_constant_feature_is_dropped_and_the_rest_still_match_sklearn() {
    let r = reference();
    let (features, mut rows) = fixture_rows(&r);
    // `tenure_days` has z = 0 in every segment; `age` has no z at all (constant base).
    for row in &mut rows {
        row.feats.insert(1, (Some(42.0), Some(0.0)));
        row.feats.push((Some(30.0), None));
    }
    let all = [
        features[0].as_str(),
        "tenure_days",
        features[1].as_str(),
        features[2].as_str(),
        "age",
    ];
    let (schema, batch) = profiles(&all, &rows);
    let out = run_map(json!({}), &schema, &batch);
    for m in r["map"].as_array().unwrap() {
        let seg = m["segmentation"].as_str().unwrap();
        check_against(&out, seg, &m["sklearn"], &features);
        let f = &out.fact("segmentations")[seg];
        assert_eq!(f["dropped"], json!(["tenure_days", "age"]));
        assert_eq!(f["features"], json!(features));
    }
}

#[test]
fn two_segments_make_a_line_and_the_fact_says_so() {
    let r = reference();
    let (features, rows) = fixture_rows(&r);
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| r.seg == "rfm")
        .take(2)
        .collect();
    let (schema, batch) = profiles(&feature_refs(&features), &rows);
    let out = run_map(json!({}), &schema, &batch);
    let map = one(&out, "map");
    assert_eq!(col(&map, "y"), [0.0, 0.0]);
    // Two points lie ±half their distance from the centre along PC1.
    let z = |r: &Row| r.feats.iter().map(|f| f.1.unwrap()).collect::<Vec<_>>();
    let half = z(&rows[0])
        .iter()
        .zip(z(&rows[1]))
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt()
        / 2.0;
    let x = col(&map, "x");
    assert!(
        near(x[0].abs(), half) && near(x[1], -x[0]),
        "{x:?} vs ±{half}"
    );
    let f = &out.fact("segmentations")["rfm"];
    assert!(f["note"].as_str().unwrap().contains("two segments"), "{f}");
    assert!(near(
        f["explained_variance_ratio"][0].as_f64().unwrap(),
        1.0
    ));
    assert_eq!(f["explained_variance_ratio"][1], 0.0);
    assert_eq!(col(&one(&out, "loadings"), "pc2"), vec![0.0; 3]);
}

#[test]
fn one_segment_cannot_be_a_pca_map() {
    let r = reference();
    let (features, rows) = fixture_rows(&r);
    let (schema, batch) = profiles(&feature_refs(&features), &rows[..1]);
    let e = run_error(json!({}), &schema, &batch);
    assert!(
        e.contains("at least two segments") && e.contains("`km`"),
        "{e}"
    );
}

#[test]
fn a_null_z_or_mean_names_the_segment_and_column() {
    let r = reference();
    let (features, mut rows) = fixture_rows(&r);
    rows[2].feats[1] = (None, None);
    let (schema, batch) = profiles(&feature_refs(&features), &rows);
    let e = run_error(json!({}), &schema, &batch);
    assert!(
        e.contains("segment `km 2`") && e.contains("`frequency_z`") && e.contains("null"),
        "{e}"
    );
    let e = run_error(
        json!({"x": "frequency", "y": "monetary_sum"}),
        &schema,
        &batch,
    );
    assert!(
        e.contains("segment `km 2`") && e.contains("`frequency_mean`"),
        "{e}"
    );
}

#[test]
fn config_errors_name_the_field() {
    let r = reference();
    let (features, rows) = fixture_rows(&r);
    let (schema, _) = profiles(&feature_refs(&features), &rows);
    let (e, f) = plan_error(json!({"features": ["frequency", "spend"]}), &schema);
    assert_eq!(f.as_deref(), Some("features.1"));
    assert!(
        e.contains("`spend`") && e.contains("recency_days, frequency, monetary_sum"),
        "{e}"
    );
    let (e, f) = plan_error(json!({"x": "frequency"}), &schema);
    assert_eq!(f.as_deref(), Some("y"), "{e}");
    let (_, f) = plan_error(json!({"y": "frequency"}), &schema);
    assert_eq!(f.as_deref(), Some("x"));
    let (e, f) = plan_error(json!({"x": "frequency", "y": "spend"}), &schema);
    assert_eq!(f.as_deref(), Some("y"));
    assert!(e.contains("`spend`"), "{e}");
    let (e, f) = plan_error(json!({"value": "margin"}), &schema);
    assert_eq!(f.as_deref(), Some("value"));
    assert!(e.contains("`margin`") && e.contains("clv_total"), "{e}");
    let (_, f) = plan_error(json!({"features": []}), &schema);
    assert_eq!(f.as_deref(), Some("features"));
    let (_, f) = plan_error(
        json!({"x": "frequency", "y": "monetary_sum", "features": ["frequency"]}),
        &schema,
    );
    assert_eq!(f.as_deref(), Some("features"));
    // Unknown keys are refused.
    plan_error(json!({"colour": "x"}), &schema);
    // Not a profiles table.
    let other: SchemaRef = Arc::new(Schema::new(vec![Field::new(
        "customer_id",
        DataType::Int64,
        false,
    )]));
    let (e, _) = plan_error(json!({}), &other);
    assert!(e.contains("profiles"), "{e}");
}
