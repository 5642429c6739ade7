//! `target` driven through the real ABI entry points with a hand-built profiles table:
//! the ranking equals a hand calculation written out below, constraints are honoured,
//! and plan-time errors name the config field.

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
const TOL: f64 = 1e-12;

/// One profiles row: segmentation, id, label, customers, customer_share, revenue,
/// revenue_share, growth, stability, f_mean.
type Row = (
    &'static str,
    i32,
    &'static str,
    i64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
);

/// Segmentation `rfm` (1000 customers) and a one-segment segmentation `km`.
///
/// | segment     | customers | share | revenue | revenue_share | growth | stability | f_mean |
/// |-------------|-----------|-------|---------|---------------|--------|-----------|--------|
/// | champions   | 100       | 0.10  | 5000    | 0.50          |  0.20  | 0.90      | 0.80   |
/// | loyal       | 300       | 0.30  | 3000    | 0.30          |  0.05  | 0.80      | 0.60   |
/// | at_risk     | 200       | 0.20  | 2000    | 0.20          | -0.10  | 0.50      | 0.40   |
/// | hibernating | 400       | 0.40  | 0       | 0.00          | -0.20  | 0.30      | 0.20   |
const ROWS: [Row; 5] = [
    (
        "rfm",
        0,
        "champions",
        100,
        0.10,
        5000.0,
        0.50,
        0.20,
        0.90,
        0.80,
    ),
    ("rfm", 1, "loyal", 300, 0.30, 3000.0, 0.30, 0.05, 0.80, 0.60),
    (
        "rfm", 2, "at_risk", 200, 0.20, 2000.0, 0.20, -0.10, 0.50, 0.40,
    ),
    (
        "rfm",
        3,
        "hibernating",
        400,
        0.40,
        0.0,
        0.00,
        -0.20,
        0.30,
        0.20,
    ),
    ("km", 0, "all", 1000, 1.0, 10000.0, 1.0, 0.0, 1.0, 0.5),
];

/// The profiles table as `profile` documents it; without `growth` and `stability` when
/// `previous` is false (a profile step without `previous:`).
fn profiles(rows: &[Row], previous: bool) -> (SchemaRef, RecordBatch) {
    let f64f = |n: &str| Field::new(n, DataType::Float64, true);
    let mut fields = vec![
        Field::new("segmentation", DataType::Utf8, false),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("customers", DataType::Int64, false),
        f64f("customer_share"),
        f64f("revenue"),
        f64f("revenue_share"),
    ];
    let col = |f: fn(&Row) -> f64| -> Arc<dyn Array> {
        Arc::new(Float64Array::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let mut cols: Vec<Arc<dyn Array>> = vec![
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        )),
        Arc::new(Int32Array::from(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        )),
        col(|r| r.4),
        col(|r| r.5),
        col(|r| r.6),
    ];
    if previous {
        fields.push(f64f("growth"));
        fields.push(f64f("stability"));
        cols.push(col(|r| r.7));
        cols.push(col(|r| r.8));
    }
    for s in ["mean", "median", "std", "index", "z"] {
        fields.push(f64f(&format!("f_{s}")));
        cols.push(match s {
            "mean" | "median" => col(|r| r.9),
            "std" => col(|_| 0.1),
            "index" => col(|r| r.9 / 0.5),
            _ => col(|r| (r.9 - 0.5) / 0.1),
        });
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    (schema, batch)
}

fn run(cfg: serde_json::Value, rows: &[Row]) -> fake_host::Outcome {
    let (schema, batch) = profiles(rows, true);
    fake_host::run(
        ENTRY,
        "target",
        cfg,
        1,
        vec![("profile.profiles", schema, vec![batch])],
    )
}

fn ok(cfg: serde_json::Value) -> (RecordBatch, fake_host::Outcome) {
    let out = run(cfg, &ROWS);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    let batches = out.table("targets");
    let t = concat_batches(&batches[0].schema(), batches).unwrap();
    (t, out)
}

fn plan(cfg: serde_json::Value, previous: bool) -> fake_host::Outcome {
    let (schema, _) = profiles(&ROWS, previous);
    fake_host::plan(ENTRY, "target", cfg, &[("profile.profiles", schema)])
}

fn texts(b: &RecordBatch, col: &str) -> Vec<String> {
    b.column_by_name(col)
        .unwrap_or_else(|| panic!("no column {col}"))
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or("<null>").to_string())
        .collect()
}

fn floats(b: &RecordBatch, col: &str) -> Vec<f64> {
    b.column_by_name(col)
        .unwrap_or_else(|| panic!("no column {col}"))
        .as_primitive::<Float64Type>()
        .values()
        .to_vec()
}

fn ranks(b: &RecordBatch) -> Vec<i32> {
    b.column_by_name("rank")
        .unwrap()
        .as_primitive::<Int32Type>()
        .values()
        .to_vec()
}

fn chosen(b: &RecordBatch) -> Vec<bool> {
    let c = b.column_by_name("chosen").unwrap().as_boolean();
    (0..c.len()).map(|i| c.value(i)).collect()
}

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < TOL, "{got:?} vs {want:?}");
    }
}

fn names(b: &RecordBatch) -> Vec<String> {
    b.schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

/// size 0.2, value 0.4, growth 0.1, stability 0.1, accessibility 0.2 (sum 1).
fn all_five() -> serde_json::Value {
    json!({
        "weights": {"size": 0.2, "value": 0.4, "growth": 0.1, "stability": 0.1, "accessibility": 0.2},
        "accessibility": "f_mean",
    })
}

// Hand calculation for `rfm` with `all_five()` weights:
//   size (customer_share)  min 0.10 max 0.40 range 0.30:
//       champions 0, loyal 0.20/0.30 = 2/3, at_risk 0.10/0.30 = 1/3, hibernating 1
//   value (revenue_share)  min 0.00 max 0.50 range 0.50:
//       champions 1, loyal 0.6, at_risk 0.4, hibernating 0 (zero revenue: 0, no error)
//   growth                 min -0.20 max 0.20 range 0.40:
//       champions 1, loyal 0.25/0.40 = 0.625, at_risk 0.10/0.40 = 0.25, hibernating 0
//   stability              min 0.30 max 0.90 range 0.60:
//       champions 1, loyal 0.50/0.60 = 5/6, at_risk 0.20/0.60 = 1/3, hibernating 0
//   accessibility (f_mean) min 0.20 max 0.80 range 0.60:
//       champions 1, loyal 0.40/0.60 = 2/3, at_risk 0.20/0.60 = 1/3, hibernating 0
//   score champions   = 0.2*0   + 0.4*1   + 0.1*1     + 0.1*1   + 0.2*1   = 0.8
//   score loyal       = 0.2*2/3 + 0.4*0.6 + 0.1*0.625 + 0.1*5/6 + 0.2*2/3
//                     = 0.13333 + 0.24    + 0.0625    + 0.08333 + 0.13333 = 0.6525
//   score at_risk     = 0.2*1/3 + 0.4*0.4 + 0.1*0.25  + 0.1*1/3 + 0.2*1/3
//                     = 0.06667 + 0.16    + 0.025     + 0.03333 + 0.06667 = 0.35167
//   score hibernating = 0.2*1   + 0       + 0         + 0       + 0       = 0.2
//   ranking: champions, loyal, at_risk, hibernating.
// `km` has one segment: every criterion is constant, so each normalises to 1 and the
// score is the sum of the weights, 1.
const SCORE_CHAMPIONS: f64 = 0.4 + 0.1 + 0.1 + 0.2;
const SCORE_LOYAL: f64 =
    0.2 * 2.0 / 3.0 + 0.4 * 0.6 + 0.1 * 0.625 + 0.1 * 5.0 / 6.0 + 0.2 * 2.0 / 3.0;
const SCORE_AT_RISK: f64 = 0.2 / 3.0 + 0.4 * 0.4 + 0.1 * 0.25 + 0.1 / 3.0 + 0.2 / 3.0;
const SCORE_HIBERNATING: f64 = 0.2;

#[test]
fn ranking_with_five_weights_equals_the_hand_calculation() {
    let (t, out) = ok(all_five());
    // Plan and run agree on the schema, derived from the weights.
    let planned = plan(all_five(), true);
    assert_eq!(planned.status, abi::STATUS_OK, "{:?}", planned.error);
    assert_eq!(planned.schema("targets"), t.schema().as_ref());
    let mut want = vec!["segmentation", "segment_id", "segment", "rank", "score"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    for c in ["size", "value", "growth", "stability", "accessibility"] {
        want.extend([c.to_string(), format!("{c}_score"), format!("{c}_points")]);
    }
    want.extend(["customers", "customer_share", "chosen", "reason"].map(String::from));
    assert_eq!(names(&t), want);

    // Segmentations in input order, then rank.
    assert_eq!(
        texts(&t, "segmentation"),
        ["rfm", "rfm", "rfm", "rfm", "km"]
    );
    assert_eq!(
        texts(&t, "segment"),
        ["champions", "loyal", "at_risk", "hibernating", "all"]
    );
    assert_eq!(ranks(&t), [1, 2, 3, 4, 1]);
    close(
        &floats(&t, "score"),
        &[
            SCORE_CHAMPIONS,
            SCORE_LOYAL,
            SCORE_AT_RISK,
            SCORE_HIBERNATING,
            1.0,
        ],
    );
    close(&floats(&t, "value"), &[0.5, 0.3, 0.2, 0.0, 1.0]);
    close(&floats(&t, "value_score"), &[1.0, 0.6, 0.4, 0.0, 1.0]);
    close(&floats(&t, "growth_score"), &[1.0, 0.625, 0.25, 0.0, 1.0]);
    close(
        &floats(&t, "stability_points"),
        &[0.1, 0.1 * 5.0 / 6.0, 0.1 / 3.0, 0.0, 0.1],
    );
    close(
        &floats(&t, "size_score"),
        &[0.0, 2.0 / 3.0, 1.0 / 3.0, 1.0, 1.0],
    );
    close(&floats(&t, "accessibility"), &[0.8, 0.6, 0.4, 0.2, 0.5]);
    assert_eq!(chosen(&t), [true; 5]);
    let reasons = texts(&t, "reason");
    // champions: value 0.40, then accessibility 0.20, growth 0.10, stability 0.10.
    assert_eq!(
        reasons[0],
        "rank 1: score 0.80 (value 0.40, accessibility 0.20, growth 0.10, …)"
    );
    assert_eq!(reasons[3], "rank 4: score 0.20 (size 0.20)");

    assert_eq!(
        out.fact("chosen"),
        &json!({"rfm": ["champions", "loyal", "at_risk", "hibernating"], "km": ["all"]})
    );
    let w = out.fact("weights");
    assert_eq!(w["value"], json!(0.4));
    assert!(out.facts.get("weights_normalised").is_none());
}

#[test]
fn default_weights_are_size_and_value() {
    // size 0.4, value 0.6 (no accessibility column):
    //   champions   0.4*0   + 0.6*1   = 0.6
    //   loyal       0.4*2/3 + 0.6*0.6 = 0.26667 + 0.36 = 0.62667
    //   at_risk     0.4*1/3 + 0.6*0.4 = 0.13333 + 0.24 = 0.37333
    //   hibernating 0.4*1   + 0       = 0.4
    //   ranking: loyal, champions, hibernating, at_risk.
    let (t, out) = ok(json!({}));
    assert_eq!(
        names(&t)[5..11],
        [
            "size",
            "size_score",
            "size_points",
            "value",
            "value_score",
            "value_points"
        ]
    );
    assert_eq!(
        texts(&t, "segment")[..4],
        ["loyal", "champions", "hibernating", "at_risk"]
    );
    close(
        &floats(&t, "score")[..4],
        &[0.4 * 2.0 / 3.0 + 0.36, 0.6, 0.4, 0.4 / 3.0 + 0.24],
    );
    assert_eq!(out.fact("weights"), &json!({"size": 0.4, "value": 0.6}));
}

#[test]
fn constraints_are_honoured() {
    // min_customers 150 drops champions (100, the top scorer); max_targets 2 then
    // takes loyal and at_risk; hibernating is cut.
    let mut cfg = all_five();
    cfg["min_customers"] = json!(150);
    cfg["max_targets"] = json!(2);
    let (t, out) = ok(cfg);
    assert_eq!(ranks(&t), [1, 2, 3, 4, 1]);
    assert_eq!(chosen(&t), [false, true, true, false, true]);
    let reasons = texts(&t, "reason");
    assert_eq!(reasons[0], "below min_customers: 100 customers < 150");
    assert_eq!(
        reasons[3],
        "max_targets reached: 2 better-ranked segments already chosen"
    );
    assert_eq!(
        out.fact("chosen"),
        &json!({"rfm": ["loyal", "at_risk"], "km": ["all"]})
    );

    // min_share 0.25 keeps only loyal (0.30) and hibernating (0.40); exclude loyal.
    let mut cfg = all_five();
    cfg["min_share"] = json!(0.25);
    cfg["exclude"] = json!(["loyal"]);
    let (t, _) = ok(cfg);
    assert_eq!(chosen(&t), [false, false, false, true, true]);
    let reasons = texts(&t, "reason");
    assert_eq!(reasons[0], "below min_share: share 0.1 < 0.25");
    assert_eq!(reasons[1], "excluded in config");

    // Everyone below min_customers: none chosen, each with its reason.
    let (t, out) = ok(json!({"min_customers": 5000}));
    assert_eq!(chosen(&t), [false; 5]);
    assert!(texts(&t, "reason")
        .iter()
        .all(|r| r.starts_with("below min_customers: ")));
    assert_eq!(out.fact("chosen"), &json!({"rfm": [], "km": []}));
}

#[test]
fn weights_not_summing_to_one_are_normalised_and_noted() {
    // 2 and 3 sum to 5 → 0.4 and 0.6: the defaults, so the same scores.
    let (t, out) = ok(json!({"weights": {"size": 2, "value": 3}}));
    assert_eq!(out.fact("weights_normalised"), &json!(true));
    assert_eq!(out.fact("weights"), &json!({"size": 0.4, "value": 0.6}));
    assert_eq!(
        texts(&t, "segment")[..4],
        ["loyal", "champions", "hibernating", "at_risk"]
    );
}

#[test]
fn missing_growth_column_is_a_plan_error_naming_the_weight() {
    let out = plan(json!({"weights": {"size": 0.5, "growth": 0.5}}), false);
    assert_ne!(out.status, abi::STATUS_OK);
    assert_eq!(out.error_field().as_deref(), Some("weights.growth"));
    assert!(
        out.error_message().contains("`previous:`"),
        "{}",
        out.error_message()
    );
    // Without a growth weight the same profiles plan fine.
    let out = plan(json!({"weights": {"size": 0.5, "value": 0.5}}), false);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
}

#[test]
fn bad_config_is_an_error_naming_the_field() {
    let err = |cfg: serde_json::Value| {
        let out = plan(cfg.clone(), true);
        assert_ne!(out.status, abi::STATUS_OK, "{cfg}");
        (out.error_field(), out.error_message())
    };
    let (f, m) = err(json!({"weights": {"size": -0.5, "value": 1}}));
    assert_eq!(f.as_deref(), Some("weights.size"));
    assert!(m.contains(">= 0"), "{m}");
    let (f, _) = err(json!({"weights": {"size": 0, "value": 0}}));
    assert_eq!(f.as_deref(), Some("weights"));
    let (_, m) = err(json!({"weights": {"reach": 1}}));
    assert!(m.contains("reach"), "{m}");
    let (f, _) = err(json!({"weights": {"accessibility": 1}}));
    assert_eq!(f.as_deref(), Some("weights.accessibility"));
    let (f, m) = err(json!({"accessibility": "email_consent_mean"}));
    assert_eq!(f.as_deref(), Some("accessibility"));
    assert!(m.contains("f_mean"), "{m}");
    let (f, m) = err(json!({"value": "clv_share"}));
    assert_eq!(f.as_deref(), Some("value"));
    assert!(m.contains("clv:"), "{m}");
    let (f, _) = err(json!({"min_share": 1.5}));
    assert_eq!(f.as_deref(), Some("min_share"));
    let (f, _) = err(json!({"max_targets": 0}));
    assert_eq!(f.as_deref(), Some("max_targets"));

    // Negative weight at run time too.
    let out = run(json!({"weights": {"value": -1}}), &ROWS);
    assert_ne!(out.status, abi::STATUS_OK);
    assert_eq!(out.error_field().as_deref(), Some("weights.value"));
}

#[test]
fn accessibility_outside_zero_to_one_is_a_run_error_naming_the_segment() {
    let mut rows = ROWS;
    rows[2].9 = 1.5;
    let out = run(all_five(), &rows);
    assert_ne!(out.status, abi::STATUS_OK);
    let m = out.error_message();
    assert!(
        m.contains("at_risk") && m.contains("rfm") && m.contains("1.5"),
        "{m}"
    );
}

#[test]
fn the_config_schema_documents_every_field() {
    assert!(fake_host::component_names(ENTRY).contains(&"target".to_string()));
    let schema = fake_host::config_schema(ENTRY, "target");
    for (k, v) in schema["properties"].as_object().unwrap() {
        assert!(v.get("description").is_some(), "target.{k}: {v}");
    }
}
