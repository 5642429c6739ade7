//! `rfm`, `rules` and `lifecycle` driven through the real ABI entry points: plan-time
//! errors name the config field, outputs have the documented columns, and `rfm`
//! reproduces the pandas reference (crates/segflow-ml/tests/fixtures/rfm_reference.json)
//! when its input arrives in several batches.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{
    Array, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::{
    DataType, Field, Float64Type, Int32Type, Int64Type, Schema, SchemaRef,
};
use segflow_sdk::ffi::abi;
use serde_json::json;
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_segment::segflow_plugin_v1 as abi::EntryFn;

/// A customer_features-like table.
fn customers(
    recency: &[i64],
    frequency: &[i64],
    monetary: &[f64],
    tenure: &[i64],
) -> (SchemaRef, RecordBatch) {
    let n = recency.len();
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("recency_days", DataType::Int64, false),
        Field::new("frequency", DataType::Int64, false),
        Field::new("monetary_sum", DataType::Float64, false),
        Field::new("tenure_days", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from((1..=n as i64).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(recency.to_vec())),
            Arc::new(Int64Array::from(frequency.to_vec())),
            Arc::new(Float64Array::from(monetary.to_vec())),
            Arc::new(Int64Array::from(tenure.to_vec())),
        ],
    )
    .unwrap();
    (schema, batch)
}

/// Split a batch into batches of `rows`.
fn chunks(b: &RecordBatch, rows: usize) -> Vec<RecordBatch> {
    (0..b.num_rows())
        .step_by(rows)
        .map(|o| b.slice(o, rows.min(b.num_rows() - o)))
        .collect()
}

fn one(out: &fake_host::Outcome, port: &str) -> RecordBatch {
    let batches = out.table(port);
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(out.schema(port).clone()));
    concat_batches(&schema, batches).unwrap()
}

fn ints(b: &RecordBatch, col: &str) -> Vec<i64> {
    let c = b
        .column_by_name(col)
        .unwrap_or_else(|| panic!("no column {col}"));
    match c.data_type() {
        DataType::Int32 => c
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .map(|&v| v as i64)
            .collect(),
        _ => c.as_primitive::<Int64Type>().values().to_vec(),
    }
}

fn texts(b: &RecordBatch, col: &str) -> Vec<String> {
    b.column_by_name(col)
        .unwrap_or_else(|| panic!("no column {col}"))
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or("<null>").to_string())
        .collect()
}

fn plan_error(name: &str, cfg: serde_json::Value, schema: &SchemaRef) -> (String, Option<String>) {
    let out = fake_host::plan(ENTRY, name, cfg, &[("in", schema.clone())]);
    assert_ne!(out.status, abi::STATUS_OK, "plan should fail");
    (out.error_message(), out.error_field())
}

fn run(
    name: &str,
    cfg: serde_json::Value,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> fake_host::Outcome {
    let out = fake_host::run(ENTRY, name, cfg, 2, vec![("in", schema.clone(), batches)]);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    out
}

#[test]
fn the_library_exports_the_three_components_with_documented_configs() {
    let names = fake_host::component_names(ENTRY);
    for c in ["rfm", "rules", "lifecycle"] {
        assert!(names.contains(&c.to_string()), "{names:?}");
        let schema = fake_host::config_schema(ENTRY, c);
        let props = schema["properties"].as_object().unwrap();
        for (k, v) in props {
            assert!(
                v.get("description").is_some(),
                "{c}.{k} has no description: {v}"
            );
        }
        assert_eq!(schema["additionalProperties"], json!(false), "{c}");
    }
}

// ---------------------------------------------------------------------------- rfm

fn reference() -> serde_json::Value {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crates/segflow-ml/tests/fixtures/rfm_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn reference_customers() -> (SchemaRef, RecordBatch, serde_json::Value) {
    let r = reference();
    let col = |k: &str| -> Vec<f64> {
        r["data"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let rec: Vec<i64> = col("recency").iter().map(|&v| v as i64).collect();
    let freq: Vec<i64> = col("frequency").iter().map(|&v| v as i64).collect();
    let tenure: Vec<i64> = rec.iter().map(|r| r + 30).collect();
    let (schema, batch) = customers(&rec, &freq, &col("monetary"), &tenure);
    (schema, batch, r)
}

#[test]
fn rfm_matches_pandas_in_any_batching() {
    let (schema, batch, r) = reference_customers();
    let n = batch.num_rows();
    for case in r["cases"].as_array().unwrap() {
        let mut cfg = json!({"bins": case["bins"], "ties": case["ties"]});
        if case["thresholds"]
            .as_object()
            .is_some_and(|t| !t.is_empty())
        {
            cfg["thresholds"] = case["thresholds"].clone();
        }
        let out = run("rfm", cfg.clone(), &schema, chunks(&batch, 300));
        let a = one(&out, "assignments");
        assert_eq!(a.num_rows(), n);
        for (col, key) in [
            ("r_score", "r_score"),
            ("f_score", "f_score"),
            ("m_score", "m_score"),
            ("fm_score", "fm_score"),
        ] {
            let want: Vec<i64> = case[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            assert_eq!(ints(&a, col), want, "{cfg}: {col}");
        }
        let want: Vec<String> = case["segment"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(texts(&a, "segment"), want, "{cfg}: segment");
        assert_eq!(ints(&a, "customer_id"), (1..=n as i64).collect::<Vec<_>>());
        let (rs, fs, ms) = (
            ints(&a, "r_score"),
            ints(&a, "f_score"),
            ints(&a, "m_score"),
        );
        let code = texts(&a, "rfm_score");
        for i in 0..n {
            assert_eq!(code[i], format!("{}{}{}", rs[i], fs[i], ms[i]));
        }

        // The model: one row per segment with its size; ids follow the map order.
        let model = one(&out, "model");
        let names = texts(&model, "segment");
        let sizes = ints(&model, "size");
        assert_eq!(sizes.iter().sum::<i64>(), n as i64);
        let ids = ints(&a, "segment_id");
        let labels = texts(&a, "segment");
        for (id, name) in names.iter().enumerate() {
            let count = labels.iter().filter(|l| *l == name).count() as i64;
            assert_eq!(sizes[id], count, "{cfg}: size of {name}");
            assert!(ids
                .iter()
                .zip(&labels)
                .all(|(i, l)| (*i as usize == id) == (l == name)));
        }
        assert_eq!(out.fact("sizes")[&names[0]], json!(sizes[0]));

        // Thresholds: one row per measure and score, customers add up.
        let t = one(&out, "thresholds");
        let bins = case["bins"].as_u64().unwrap() as usize;
        assert_eq!(t.num_rows(), 3 * bins);
        assert_eq!(ints(&t, "customers").iter().sum::<i64>(), 3 * n as i64);
        let cuts = &out.fact("thresholds")["frequency"]["cuts"];
        if let Some(want) = case.get("frequency_cuts") {
            assert_eq!(cuts, want, "{cfg}");
            assert_eq!(
                out.fact("thresholds")["frequency"]["method"],
                json!("quantile")
            );
        }
        if case["thresholds"].get("recency").is_some() {
            assert_eq!(out.fact("thresholds")["recency"]["method"], json!("fixed"));
            assert_eq!(
                out.fact("thresholds")["recency"]["cuts"],
                case["thresholds"]["recency"]
            );
        }
    }
}

#[test]
fn rfm_default_config_reads_customer_features_columns() {
    let (schema, batch, _) = reference_customers();
    let plan = fake_host::plan(ENTRY, "rfm", json!({}), &[("in", schema.clone())]);
    assert_eq!(plan.status, abi::STATUS_OK, "{:?}", plan.error);
    let a = plan.schema("assignments");
    let cols: Vec<&str> = a.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        cols,
        [
            "customer_id",
            "segment_id",
            "segment",
            "r_score",
            "f_score",
            "m_score",
            "fm_score",
            "rfm_score"
        ]
    );
    assert_eq!(a.field(1).data_type(), &DataType::Int32);
    assert_eq!(a.field(2).data_type(), &DataType::Utf8);
    let out = run("rfm", json!({}), &schema, vec![batch]);
    let model = one(&out, "model");
    assert_eq!(model.num_rows(), 11);
    assert_eq!(texts(&model, "segment")[0], "Champions");
    assert_eq!(texts(&model, "segment")[10], "Lost");
    assert_eq!(out.fact("bins"), &json!(5));
    assert_eq!(out.fact("map"), &json!("standard"));
    assert_eq!(out.fact("unreachable_segments"), &json!([]));
    // Champions: R 5, FM 4-5 in the model's score ranges.
    assert_eq!(ints(&model, "r_low")[0], 5);
    assert_eq!(ints(&model, "fm_low")[0], 4);
    assert_eq!(ints(&model, "f_low")[0], 1);
    assert_eq!(ints(&model, "f_high")[0], 5);
}

#[test]
fn rfm_custom_map_with_default() {
    let (schema, batch) = customers(
        &[1, 10, 100, 200, 300, 400],
        &[9, 8, 1, 1, 5, 1],
        &[900.0, 800.0, 10.0, 20.0, 500.0, 5.0],
        &[400, 400, 400, 400, 400, 400],
    );
    let cfg = json!({
        "bins": 3,
        "segments": [
            {"name": "best", "r": [3, 3], "fm": [3, 3]},
            {"name": "slipping big spenders", "r": [1, 2], "m": [3, 3]},
        ],
        "default": "everyone else"
    });
    let out = run("rfm", cfg, &schema, vec![batch]);
    let a = one(&out, "assignments");
    // R: [3,3,2,2,1,1]; F: 9,8 -> 3; 5 -> 2 ... ; M: 900,800 -> 3, 500 -> 2 (rank 4 of 6).
    assert_eq!(ints(&a, "r_score"), [3, 3, 2, 2, 1, 1]);
    assert_eq!(
        texts(&a, "segment"),
        [
            "best",
            "best",
            "everyone else",
            "everyone else",
            "everyone else",
            "everyone else"
        ]
    );
    let model = one(&out, "model");
    assert_eq!(
        texts(&model, "segment"),
        ["best", "slipping big spenders", "everyone else"]
    );
    assert_eq!(ints(&model, "size"), [2, 0, 4]);
    let r_low = model.column_by_name("r_low").unwrap();
    assert!(r_low.is_null(2), "the default has no score ranges");
    assert!(
        model.column_by_name("recency_min").unwrap().is_null(1),
        "an empty segment has no value range"
    );
    assert_eq!(out.fact("map"), &json!("custom"));
}

#[test]
fn rfm_fixed_thresholds_are_right_closed() {
    let (schema, batch) = customers(
        &[30, 31, 90, 91, 400],
        &[1, 2, 3, 4, 5],
        &[1.0, 2.0, 3.0, 4.0, 5.0],
        &[1, 1, 1, 1, 1],
    );
    let cfg = json!({"bins": 3, "thresholds": {"recency": [30, 90], "frequency": [1, 3]}});
    let out = run("rfm", cfg, &schema, vec![batch]);
    let a = one(&out, "assignments");
    assert_eq!(ints(&a, "r_score"), [3, 2, 2, 1, 1]);
    assert_eq!(ints(&a, "f_score"), [1, 2, 2, 3, 3]);
    let t = one(&out, "thresholds");
    let method = texts(&t, "method");
    assert_eq!(method[0], "fixed");
    assert_eq!(method[3], "fixed");
    assert_eq!(method[6], "quantile");
    // recency score 2 is (30, 90]
    let lower = t
        .column_by_name("lower")
        .unwrap()
        .as_primitive::<Float64Type>();
    let upper = t
        .column_by_name("upper")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!((lower.value(1), upper.value(1)), (30.0, 90.0));
    assert!(upper.is_null(0), "recency score 1 is unbounded above");
}

#[test]
fn rfm_plan_errors_name_the_field() {
    let (schema, _) = customers(&[1], &[1], &[1.0], &[1]);
    let cases = [
        (
            json!({"recency": "last_seen"}),
            "recency",
            "`last_seen` is not in the input",
        ),
        (json!({"bins": 6}), "bins", "3, 4 or 5"),
        (
            json!({"thresholds": {"recency": [30, 90]}}),
            "thresholds.recency",
            "need 4 cut points",
        ),
        (
            json!({"bins": 3, "thresholds": {"monetary": [100, 50]}}),
            "thresholds.monetary",
            "increasing",
        ),
        (json!({"default": "other"}), "default", "needs `segments:`"),
        (
            json!({"segments": [{"name": "top", "r": [5, 5]}, {"name": "rest", "r": [1, 4], "f": [1, 6]}]}),
            "segments.1.f",
            "<= 5",
        ),
        (
            json!({"segments": [{"name": "top", "r": [5, 5]}, {"name": "mid", "r": [2, 4]}]}),
            "segments",
            "no segment matches R=1 F=1 M=1",
        ),
        (
            json!({"segments": [{"name": "a", "r": [4, 5]}, {"name": "a", "r": [1, 3]}]}),
            "segments.1.name",
            "also the name of segment 0",
        ),
        (
            json!({"segments": [{"name": "a"}], "default": "a"}),
            "default",
            "name of a listed segment",
        ),
    ];
    for (cfg, field, needle) in cases {
        let (msg, f) = plan_error("rfm", cfg.clone(), &schema);
        assert_eq!(f.as_deref(), Some(field), "{cfg}: {msg}");
        assert!(msg.contains(needle), "{cfg}: {msg}");
    }
    // A text column where a number is needed.
    let text_schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("recency_days", DataType::Int64, false),
        Field::new("frequency", DataType::Int64, false),
        Field::new("monetary_sum", DataType::Utf8, false),
    ]));
    let (msg, f) = plan_error("rfm", json!({}), &text_schema);
    assert_eq!(f.as_deref(), Some("monetary"), "{msg}");
}

#[test]
fn rfm_rejects_nulls_at_run_time_naming_the_row() {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("recency_days", DataType::Int64, true),
        Field::new("frequency", DataType::Int64, false),
        Field::new("monetary_sum", DataType::Float64, false),
    ]));
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])),
        ],
    )
    .unwrap();
    let out = fake_host::run(ENTRY, "rfm", json!({}), 1, vec![("in", schema, vec![b])]);
    assert_ne!(out.status, abi::STATUS_OK);
    assert_eq!(out.error_field().as_deref(), Some("recency"));
    assert!(
        out.error_message().contains("null at row 1"),
        "{}",
        out.error_message()
    );
}

// -------------------------------------------------------------------------- rules

fn rules_input() -> (SchemaRef, Vec<RecordBatch>) {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("recency_days", DataType::Int64, true),
        Field::new("frequency", DataType::Int64, false),
        Field::new("monetary_sum", DataType::Float64, false),
        Field::new("channel", DataType::Utf8, true),
        Field::new("vip", DataType::Boolean, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["a", "b", "c", "d", "e", "f"])),
            Arc::new(Int64Array::from(vec![
                Some(10),
                Some(20),
                Some(200),
                None,
                Some(500),
                Some(40),
            ])),
            Arc::new(Int64Array::from(vec![8, 1, 6, 2, 1, 3])),
            Arc::new(Float64Array::from(vec![
                900.0, 30.0, 700.0, 50.0, 10.0, 120.0,
            ])),
            Arc::new(StringArray::from(vec![
                Some("web"),
                Some("store"),
                Some("app"),
                None,
                Some("web"),
                Some("store"),
            ])),
            Arc::new(BooleanArray::from(vec![
                false, false, false, true, false, false,
            ])),
        ],
    )
    .unwrap();
    (schema, chunks(&batch, 4))
}

fn rules_config() -> serde_json::Value {
    json!({
        "rules": [
            {"name": "VIP", "when": "vip or (recency_days <= 30 and frequency >= 5)"},
            {"name": "Big but lapsed", "when": "monetary_sum >= 500 and not recency_days <= 90"},
            {"name": "Recent", "when": "recency_days <= 60"},
            {"name": "Store", "when": "channel in ['store', 'kiosk']"},
        ],
        "default": "Other"
    })
}

#[test]
fn rules_first_match_wins_with_a_default() {
    let (schema, batches) = rules_input();
    let out = run("rules", rules_config(), &schema, batches);
    let a = one(&out, "assignments");
    assert_eq!(texts(&a, "customer_id"), ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(
        texts(&a, "segment"),
        ["VIP", "Recent", "Big but lapsed", "VIP", "Other", "Recent"]
    );
    assert_eq!(ints(&a, "segment_id"), [0, 2, 1, 0, 4, 2]);
    let model = one(&out, "model");
    assert_eq!(
        texts(&model, "segment"),
        ["VIP", "Big but lapsed", "Recent", "Store", "Other"]
    );
    assert_eq!(ints(&model, "size"), [2, 1, 2, 0, 1]);
    // `matched` counts every row whose condition holds, before earlier rules take theirs:
    // Recent holds for a, b, f; Store for b and f.
    let matched = model
        .column_by_name("matched")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(matched.value(2), 3);
    assert_eq!(matched.value(3), 2);
    assert!(matched.is_null(4));
    assert!(model.column_by_name("when").unwrap().is_null(4));
    assert_eq!(out.fact("unmatched"), &json!(1));
    assert_eq!(out.fact("empty_rules"), &json!(["Store"]));
    assert_eq!(out.fact("sizes")["VIP"], json!(2));
}

#[test]
fn rules_plan_errors_point_at_the_rule_and_character() {
    let (schema, _) = rules_input();
    let with = |when: &str| {
        let mut c = rules_config();
        c["rules"][1]["when"] = json!(when);
        c
    };
    let cases = [
        (
            with("monetary_sum >= 500 and and recency_days > 90"),
            "rules.1.when",
            "at character 25: expected a column or a value",
        ),
        (
            with("monetary_sum >= '500'"),
            "rules.1.when",
            "at character 17: column `monetary_sum` is numeric",
        ),
        (
            with("spend >= 500"),
            "rules.1.when",
            "at character 1: column `spend` is not in the input",
        ),
        (
            with("channel = 'web'"),
            "rules.1.when",
            "at character 9: `=` is not an operator",
        ),
        (
            with("(recency_days > 90"),
            "rules.1.when",
            "at character 19: expected `)`",
        ),
    ];
    for (cfg, field, needle) in cases {
        let (msg, f) = plan_error("rules", cfg.clone(), &schema);
        assert_eq!(f.as_deref(), Some(field), "{msg}");
        assert!(msg.contains(needle), "{msg}");
        assert!(msg.contains("rule `Big but lapsed`"), "{msg}");
    }
    let mut dup = rules_config();
    dup["rules"][2]["name"] = json!("VIP");
    let (msg, f) = plan_error("rules", dup, &schema);
    assert_eq!(f.as_deref(), Some("rules.2.name"), "{msg}");
    let mut clash = rules_config();
    clash["default"] = json!("Recent");
    let (msg, f) = plan_error("rules", clash, &schema);
    assert_eq!(f.as_deref(), Some("default"), "{msg}");
    let (msg, f) = plan_error("rules", json!({"rules": [], "default": "x"}), &schema);
    assert_eq!(f.as_deref(), Some("rules"), "{msg}");
    let (msg, f) = plan_error(
        "rules",
        json!({"key": "id", "rules": [{"name": "a", "when": "vip"}]}),
        &schema,
    );
    assert_eq!(f.as_deref(), Some("key"), "{msg}");
}

// ---------------------------------------------------------------------- lifecycle

#[test]
fn lifecycle_stages_with_default_and_chinese_labels() {
    // (recency, tenure): new, new (boundary), active, dormant, dormant (boundary), churned
    let rec = [10, 90, 30, 200, 365, 366];
    let ten = [10, 90, 400, 500, 700, 800];
    let (schema, batch) = customers(&rec, &[1; 6], &[1.0; 6], &ten);
    let out = run("lifecycle", json!({}), &schema, chunks(&batch, 4));
    let a = one(&out, "assignments");
    assert_eq!(
        texts(&a, "segment"),
        ["new", "new", "active", "dormant", "dormant", "churned"]
    );
    assert_eq!(ints(&a, "segment_id"), [0, 0, 1, 2, 2, 3]);
    let model = one(&out, "model");
    assert_eq!(ints(&model, "size"), [2, 1, 2, 1]);
    assert_eq!(texts(&model, "rule")[0], "tenure_days <= 90");
    assert_eq!(texts(&model, "rule")[3], "recency_days > 365");

    let cfg = json!({
        "new_max_tenure": 30,
        "active_max_recency": 60,
        "dormant_max_recency": 180,
        "labels": {"new": "新客戶", "active": "活躍", "dormant": "沉睡", "churned": "流失"}
    });
    let out = run("lifecycle", cfg, &schema, vec![batch]);
    let a = one(&out, "assignments");
    assert_eq!(
        texts(&a, "segment"),
        ["新客戶", "沉睡", "活躍", "流失", "流失", "流失"]
    );
    assert_eq!(
        texts(&a, "stage"),
        ["new", "dormant", "active", "churned", "churned", "churned"]
    );
    assert_eq!(out.fact("sizes")["流失"], json!(3));
    assert_eq!(out.fact("labels")["dormant"], json!("沉睡"));
}

#[test]
fn lifecycle_plan_errors_name_the_field() {
    let (schema, _) = customers(&[1], &[1], &[1.0], &[1]);
    let cases = [
        (
            json!({"dormant_max_recency": 60}),
            "dormant_max_recency",
            "greater than active_max_recency",
        ),
        (
            json!({"labels": {"dormant": "churned"}}),
            "labels.churned",
            "also the label of `dormant`",
        ),
        (
            json!({"tenure": "age"}),
            "tenure",
            "`age` is not in the input",
        ),
    ];
    for (cfg, field, needle) in cases {
        let (msg, f) = plan_error("lifecycle", cfg.clone(), &schema);
        assert_eq!(f.as_deref(), Some(field), "{cfg}: {msg}");
        assert!(msg.contains(needle), "{cfg}: {msg}");
    }
}
