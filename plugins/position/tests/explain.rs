//! `explain` driven through the real ABI entry points: synthetic customers drawn from
//! four well-separated archetypes (fixed numbers, a hash for noise) are explained with
//! high fidelity; a hand-designed case gives the expected rules exactly; every rule's
//! `customers`, `precision` and `recall` are recounted here by evaluating the rule text
//! on the data; and bad inputs give errors, not panics.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{
    Array, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::{
    DataType, Field, Float64Type, Int32Type, Int64Type, Schema, SchemaRef,
};
use segflow_sdk::ffi::abi;
use serde_json::json;
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_position::segflow_plugin_v1 as abi::EntryFn;

/// A value in `[0, 1)` from `(i, salt)`: splitmix64.
fn noise(i: u64, salt: u64) -> f64 {
    let mut z = i
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn between(i: u64, salt: u64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * noise(i, salt)
}

const ARCHETYPES: [&str; 4] = ["Champions", "Loyal", "At risk", "Lost"];

/// Per-customer features (with a constant `country_code`) and each customer's
/// archetype.
struct Customers {
    recency: Vec<i64>,
    frequency: Vec<i64>,
    monetary: Vec<f64>,
    tenure: Vec<i64>,
    archetype: Vec<usize>,
}

fn archetypes(n: usize) -> Customers {
    let mut c = Customers {
        recency: vec![],
        frequency: vec![],
        monetary: vec![],
        tenure: vec![],
        archetype: vec![],
    };
    for i in 0..n as u64 {
        let a = (i % 4) as usize;
        // (recency, frequency, monetary, tenure) ranges of each archetype.
        let r = [
            [(2.0, 30.0), (12.0, 25.0), (900.0, 2000.0), (300.0, 900.0)],
            [(10.0, 60.0), (5.0, 10.0), (300.0, 700.0), (400.0, 1200.0)],
            [(120.0, 220.0), (4.0, 9.0), (200.0, 600.0), (300.0, 1000.0)],
            [(280.0, 365.0), (1.0, 3.0), (20.0, 150.0), (30.0, 400.0)],
        ][a];
        c.recency.push(between(i, 1, r[0].0, r[0].1).round() as i64);
        c.frequency
            .push(between(i, 2, r[1].0, r[1].1).round() as i64);
        c.monetary
            .push((between(i, 3, r[2].0, r[2].1) * 100.0).round() / 100.0);
        c.tenure.push(between(i, 4, r[3].0, r[3].1).round() as i64);
        c.archetype.push(a);
    }
    c
}

fn features_table(c: &Customers) -> (SchemaRef, RecordBatch) {
    let n = c.recency.len();
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("recency_days", DataType::Int64, false),
        Field::new("frequency", DataType::Int64, false),
        Field::new("monetary_sum", DataType::Float64, true),
        Field::new("tenure_days", DataType::Int64, false),
        Field::new("country_code", DataType::Int32, false),
        Field::new("region", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from((1..=n as i64).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(c.recency.clone())),
            Arc::new(Int64Array::from(c.frequency.clone())),
            Arc::new(Float64Array::from(c.monetary.clone())),
            Arc::new(Int64Array::from(c.tenure.clone())),
            Arc::new(Int32Array::from(vec![44; n])),
            Arc::new(StringArray::from(vec!["north"; n])),
        ],
    )
    .unwrap();
    (schema, batch)
}

/// An assignments table: key, segment_id, segment.
fn assignments(ids: &[i64], segment: &[usize], labels: &[&str]) -> (SchemaRef, RecordBatch) {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(Int32Array::from(
                segment.iter().map(|&s| s as i32).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                segment.iter().map(|&s| labels[s]).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap();
    (schema, batch)
}

type Input = (&'static str, SchemaRef, Vec<RecordBatch>);

fn input(name: &'static str, t: (SchemaRef, RecordBatch)) -> Input {
    (name, t.0, vec![t.1])
}

fn run(cfg: serde_json::Value, inputs: Vec<Input>) -> fake_host::Outcome {
    fake_host::run(ENTRY, "explain", cfg, 2, inputs)
}

fn run_ok(cfg: serde_json::Value, inputs: Vec<Input>) -> (fake_host::Outcome, RecordBatch) {
    let schemas: Vec<(&str, SchemaRef)> = inputs.iter().map(|i| (i.0, i.1.clone())).collect();
    let plan = fake_host::plan(ENTRY, "explain", cfg.clone(), &schemas);
    assert_eq!(plan.status, abi::STATUS_OK, "plan: {:?}", plan.error);
    let out = run(cfg, inputs);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    let planned = Arc::new(plan.schema("rules").clone());
    let batches = out.table("rules");
    for b in batches {
        assert_eq!(
            b.schema().fields(),
            planned.fields(),
            "run schema = plan schema"
        );
    }
    let rules = concat_batches(&planned, batches).unwrap();
    (out, rules)
}

fn texts(b: &RecordBatch, col: &str) -> Vec<String> {
    b.column_by_name(col)
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect()
}
fn ints(b: &RecordBatch, col: &str) -> Vec<i64> {
    let c = b.column_by_name(col).unwrap();
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
fn floats(b: &RecordBatch, col: &str) -> Vec<f64> {
    let c = b.column_by_name(col).unwrap().as_primitive::<Float64Type>();
    (0..c.len())
        .map(|i| if c.is_null(i) { f64::NAN } else { c.value(i) })
        .collect()
}

/// Evaluate a rule's text (`a <= 1 and 2 < b <= 3 and c > 4`, or `true`) on row `i`.
fn holds(rule: &str, value: &dyn Fn(&str, usize) -> f64, i: usize) -> bool {
    if rule == "true" {
        return true;
    }
    rule.split(" and ").all(|cond| {
        let t: Vec<&str> = cond.split(' ').collect();
        let num = |s: &str| {
            s.parse::<f64>()
                .unwrap_or_else(|_| panic!("number {s:?} in {rule}"))
        };
        match t.as_slice() {
            [col, "<=", v] => value(col, i) <= num(v),
            [col, ">", v] => value(col, i) > num(v),
            [lo, "<", col, "<=", hi] => value(col, i) > num(lo) && value(col, i) <= num(hi),
            _ => panic!("unexpected condition {cond:?} in {rule}"),
        }
    })
}

/// Recount `customers`, `precision` and `recall` of every rule of `segmentation` from
/// its text, and check that the rules partition the customers.
fn recount(
    rules: &RecordBatch,
    segmentation: &str,
    c: &Customers,
    truth: &[usize],
    labels: &[&str],
) {
    let value = |col: &str, i: usize| -> f64 {
        match col {
            "recency_days" => c.recency[i] as f64,
            "frequency" => c.frequency[i] as f64,
            "monetary_sum" => c.monetary[i],
            "tenure_days" => c.tenure[i] as f64,
            "country_code" => 44.0,
            _ => panic!("unknown column {col}"),
        }
    };
    let n = truth.len();
    let seg = texts(rules, "segmentation");
    let (rule, segment, ids) = (
        texts(rules, "rule"),
        texts(rules, "segment"),
        ints(rules, "segment_id"),
    );
    let (customers, precision, recall) = (
        ints(rules, "customers"),
        floats(rules, "precision"),
        floats(rules, "recall"),
    );
    let mut covered = vec![0; n];
    for r in (0..rules.num_rows()).filter(|&r| seg[r] == segmentation) {
        let s = ids[r] as usize;
        assert_eq!(segment[r], labels[s]);
        let inside: Vec<usize> = (0..n).filter(|&i| holds(&rule[r], &value, i)).collect();
        for &i in &inside {
            covered[i] += 1;
        }
        let right = inside.iter().filter(|&&i| truth[i] == s).count();
        let size = truth.iter().filter(|&&t| t == s).count();
        assert_eq!(customers[r] as usize, inside.len(), "{}", rule[r]);
        assert!((precision[r] - right as f64 / inside.len() as f64).abs() < 1e-12);
        assert!((recall[r] - right as f64 / size as f64).abs() < 1e-12);
    }
    assert!(
        covered.iter().all(|&k| k == 1),
        "the rules of {segmentation} partition the customers"
    );
}

#[test]
fn the_component_is_exported_with_documented_config() {
    assert!(fake_host::component_names(ENTRY).contains(&"explain".to_string()));
    let schema = fake_host::config_schema(ENTRY, "explain");
    let props = schema["properties"].as_object().unwrap();
    for k in [
        "key",
        "features",
        "depth",
        "min_leaf_share",
        "max_rows",
        "seed",
    ] {
        assert!(props[k].get("description").is_some(), "{k}: {}", props[k]);
    }
    assert_eq!(schema["additionalProperties"], json!(false));
}

#[test]
fn archetypes_are_explained_with_high_fidelity() {
    let c = archetypes(400);
    let ids: Vec<i64> = (1..=400).collect();
    let (out, rules) = run_ok(
        json!({}),
        vec![
            input("features", features_table(&c)),
            input(
                "arch.assignments",
                assignments(&ids, &c.archetype, &ARCHETYPES),
            ),
        ],
    );
    let f = &out.fact("segmentations")["arch"];
    let fidelity = f["fidelity"].as_f64().unwrap();
    assert!(fidelity >= 0.9, "fidelity {fidelity}");
    assert_eq!(f["rows_fitted"], json!(400));
    assert_eq!(f["min_samples_leaf"], json!(4));
    assert!(f["depth"].as_u64().unwrap() <= 3);
    assert_eq!(f["leaves"].as_u64().unwrap() as usize, rules.num_rows());
    // The constant feature is never used; the importances sum to 1.
    let fi = f["feature_importance"].as_object().unwrap();
    assert_eq!(fi["country_code"], json!(0.0));
    let sum: f64 = fi.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-12);
    assert!(!texts(&rules, "rule")
        .iter()
        .any(|r| r.contains("country_code")));
    assert_eq!(
        out.fact("features"),
        &json!([
            "recency_days",
            "frequency",
            "monetary_sum",
            "tenure_days",
            "country_code"
        ])
    );
    // Per-segment precision and recall agree with the fidelity.
    let per = f["per_segment"].as_array().unwrap();
    assert_eq!(per.len(), 4);
    let hits: f64 = per
        .iter()
        .map(|p| p["recall"].as_f64().unwrap() * p["customers"].as_f64().unwrap())
        .sum();
    assert!((hits / 400.0 - fidelity).abs() < 1e-9);
    // Every segment is the majority of some leaf, and the rules hold up on the data.
    let seg_ids = ints(&rules, "segment_id");
    for s in 0..4 {
        assert!(seg_ids.contains(&s), "segment {s} has a rule");
    }
    recount(&rules, "arch", &c, &c.archetype, &ARCHETYPES);
    // Sorted by segment_id, then customers descending.
    let cust = ints(&rules, "customers");
    for r in 1..rules.num_rows() {
        assert!(
            seg_ids[r - 1] < seg_ids[r] || (seg_ids[r - 1] == seg_ids[r] && cust[r - 1] >= cust[r])
        );
    }
    assert!(ints(&rules, "depth").iter().all(|&d| (1..=3).contains(&d)));
}

#[test]
fn a_hand_designed_case_gives_the_expected_rules() {
    // A: recent and frequent; B: recent and rare; C: not recent (recency >= 101).
    let recency = [10, 20, 25, 5, 12, 18, 28, 8, 101, 150, 200, 120];
    let frequency = [8, 9, 7, 10, 2, 3, 5, 1, 1, 9, 4, 6];
    let truth = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2];
    let c = Customers {
        recency: recency.to_vec(),
        frequency: frequency.to_vec(),
        monetary: vec![100.0; 12],
        tenure: vec![365; 12],
        archetype: truth.to_vec(),
    };
    let ids: Vec<i64> = (1..=12).collect();
    let (out, rules) = run_ok(
        json!({"features": ["recency_days", "frequency"], "min_leaf_share": 0.0}),
        vec![
            input("features", features_table(&c)),
            input(
                "rfm.assignments",
                assignments(&ids, &truth, &["A", "B", "C"]),
            ),
        ],
    );
    assert_eq!(
        texts(&rules, "rule"),
        [
            "recency_days <= 100 and frequency > 5",
            "recency_days <= 100 and frequency <= 5",
            "recency_days > 100",
        ]
    );
    assert_eq!(texts(&rules, "segment"), ["A", "B", "C"]);
    assert_eq!(ints(&rules, "segment_id"), [0, 1, 2]);
    assert_eq!(texts(&rules, "segmentation"), ["rfm"; 3]);
    assert_eq!(ints(&rules, "customers"), [4, 4, 4]);
    assert_eq!(floats(&rules, "precision"), [1.0; 3]);
    assert_eq!(floats(&rules, "recall"), [1.0; 3]);
    assert_eq!(ints(&rules, "depth"), [2, 2, 1]);
    let f = &out.fact("segmentations")["rfm"];
    assert_eq!(f["fidelity"], json!(1.0));
    assert_eq!(
        (f["depth"].clone(), f["leaves"].clone()),
        (json!(2), json!(3))
    );
    assert_eq!(f["min_samples_leaf"], json!(1));
    assert_eq!(
        f["per_segment"][2],
        json!({"segment_id": 2, "segment": "C", "customers": 4, "predicted": 4, "precision": 1.0, "recall": 1.0})
    );
    let fi = f["feature_importance"].as_object().unwrap();
    // Root: gini 2/3 → 8·0.5/12 + 0: decrease 12·(2/3) − 8·0.5 = 4; A/B: 8·0.5 = 4.
    assert!((fi["recency_days"].as_f64().unwrap() - 0.5).abs() < 1e-12);
    assert!((fi["frequency"].as_f64().unwrap() - 0.5).abs() < 1e-12);
}

#[test]
fn several_segmentations_and_a_single_segment() {
    let c = archetypes(200);
    let ids: Vec<i64> = (1..=200).collect();
    let value: Vec<usize> = c
        .monetary
        .iter()
        .map(|&m| usize::from(m <= 450.0))
        .collect();
    let everyone = vec![0; 200];
    let (out, rules) = run_ok(
        json!({"depth": 2}),
        vec![
            input("features", features_table(&c)),
            input(
                "value.assignments",
                assignments(&ids, &value, &["High", "Low"]),
            ),
            input("arch", assignments(&ids, &c.archetype, &ARCHETYPES)),
            input(
                "all.assignments",
                assignments(&ids, &everyone, &["Everyone"]),
            ),
        ],
    );
    let seg = texts(&rules, "segmentation");
    let mut sorted = seg.clone();
    sorted.sort();
    assert_eq!(seg, sorted, "rows sorted by segmentation");
    let facts = out.fact("segmentations").as_object().unwrap();
    assert_eq!(facts.len(), 3);
    // One segment: one rule `true` for everyone, fidelity 1.
    let all: Vec<usize> = (0..seg.len()).filter(|&r| seg[r] == "all").collect();
    assert_eq!(all.len(), 1);
    assert_eq!(texts(&rules, "rule")[all[0]], "true");
    assert_eq!(ints(&rules, "customers")[all[0]], 200);
    assert_eq!(ints(&rules, "depth")[all[0]], 0);
    assert_eq!(facts["all"]["fidelity"], json!(1.0));
    assert_eq!(facts["all"]["leaves"], json!(1));
    // A threshold on monetary explains value exactly.
    assert_eq!(facts["value"]["fidelity"], json!(1.0));
    let value_rules: Vec<String> = (0..seg.len())
        .filter(|&r| seg[r] == "value")
        .map(|r| texts(&rules, "rule")[r].clone())
        .collect();
    assert_eq!(value_rules.len(), 2, "{value_rules:?}");
    assert!(
        value_rules.iter().all(|r| r.starts_with("monetary_sum ")),
        "{value_rules:?}"
    );
    recount(&rules, "value", &c, &value, &["High", "Low"]);
    recount(&rules, "arch", &c, &c.archetype, &ARCHETYPES);
    assert!(facts["arch"]["depth"].as_u64().unwrap() <= 2);
}

#[test]
fn above_max_rows_the_tree_is_fitted_on_a_sample_and_scored_on_everyone() {
    let c = archetypes(1000);
    let ids: Vec<i64> = (1..=1000).collect();
    let cfg = json!({"max_rows": 100, "seed": 7});
    let inputs = || {
        vec![
            input("features", features_table(&c)),
            input(
                "arch.assignments",
                assignments(&ids, &c.archetype, &ARCHETYPES),
            ),
        ]
    };
    let (out, rules) = run_ok(cfg.clone(), inputs());
    let f = &out.fact("segmentations")["arch"];
    assert_eq!(f["rows_fitted"], json!(100));
    assert_eq!(f["rows"], json!(1000));
    assert_eq!(f["min_samples_leaf"], json!(1));
    assert_eq!(ints(&rules, "customers").iter().sum::<i64>(), 1000);
    recount(&rules, "arch", &c, &c.archetype, &ARCHETYPES);
    assert!(f["fidelity"].as_f64().unwrap() >= 0.9);
    // The same seed gives the same rules.
    let (_, again) = run_ok(cfg, inputs());
    assert_eq!(texts(&rules, "rule"), texts(&again, "rule"));
}

fn error_of(cfg: serde_json::Value, inputs: Vec<Input>) -> (String, Option<String>) {
    let out = run(cfg, inputs);
    assert_ne!(out.status, abi::STATUS_OK, "run should fail");
    (out.error_message(), out.error_field())
}

fn plan_error(cfg: serde_json::Value, inputs: &[(&str, SchemaRef)]) -> (String, Option<String>) {
    let out = fake_host::plan(ENTRY, "explain", cfg, inputs);
    assert_ne!(out.status, abi::STATUS_OK, "plan should fail");
    (out.error_message(), out.error_field())
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let c = archetypes(40);
    let ids: Vec<i64> = (1..=40).collect();
    let (fs, fb) = features_table(&c);
    let (ss, sb) = assignments(&ids, &c.archetype, &ARCHETYPES);

    // No segmentation.
    let (m, _) = plan_error(json!({}), &[("features", fs.clone())]);
    assert!(m.contains("segmentation"), "{m}");
    let (m, _) = error_of(json!({}), vec![("features", fs.clone(), vec![fb.clone()])]);
    assert!(m.contains("segmentation"), "{m}");

    // A null feature: the column is named, and so is the fix.
    let mut monetary: Vec<Option<f64>> = c.monetary.iter().copied().map(Some).collect();
    monetary[5] = None;
    monetary[9] = None;
    let mut cols = fb.columns().to_vec();
    cols[3] = Arc::new(Float64Array::from(monetary));
    let with_null = RecordBatch::try_new(fs.clone(), cols).unwrap();
    let (m, field) = error_of(
        json!({}),
        vec![
            ("features", fs.clone(), vec![with_null.clone()]),
            ("arch", ss.clone(), vec![sb.clone()]),
        ],
    );
    assert!(
        m.contains("`monetary_sum`") && m.contains("impute") && m.contains("2 of the 40"),
        "{m}"
    );
    assert!(m.contains("customer 6"), "{m}");
    assert_eq!(field, None);
    let (m, field) = error_of(
        json!({"features": ["recency_days", "monetary_sum"]}),
        vec![
            ("features", fs.clone(), vec![with_null.clone()]),
            ("arch", ss.clone(), vec![sb.clone()]),
        ],
    );
    assert!(m.contains("`monetary_sum`"), "{m}");
    assert_eq!(field.as_deref(), Some("features.1"));
    // Leaving the column out works.
    let (out, _) = run_ok(
        json!({"features": ["recency_days", "frequency"]}),
        vec![
            ("features", fs.clone(), vec![with_null]),
            ("arch", ss.clone(), vec![sb.clone()]),
        ],
    );
    assert!(
        out.fact("segmentations")["arch"]["fidelity"]
            .as_f64()
            .unwrap()
            > 0.9
    );

    // Key type mismatch: an integer key in the features, a text key in the segmentation.
    let text_key: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
    ]));
    let tb = RecordBatch::try_new(
        text_key.clone(),
        vec![
            Arc::new(StringArray::from(
                ids.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            )),
            sb.column(1).clone(),
            sb.column(2).clone(),
        ],
    )
    .unwrap();
    let (m, field) = plan_error(
        json!({}),
        &[("features", fs.clone()), ("arch", text_key.clone())],
    );
    assert!(m.contains("customer_id") && m.contains("Utf8"), "{m}");
    assert_eq!(field.as_deref(), Some("key"));
    let (_, field) = error_of(
        json!({}),
        vec![
            ("features", fs.clone(), vec![fb.clone()]),
            ("arch", text_key, vec![tb]),
        ],
    );
    assert_eq!(field.as_deref(), Some("key"));

    // Empty input.
    let (m, _) = error_of(
        json!({}),
        vec![
            ("features", fs.clone(), vec![fb.slice(0, 0)]),
            ("arch", ss.clone(), vec![sb.slice(0, 0)]),
        ],
    );
    assert!(m.contains("no customers"), "{m}");

    // Config errors at plan time name the field.
    let both = [("features", fs.clone()), ("arch", ss.clone())];
    for (cfg, want) in [
        (json!({"features": ["region"]}), "features.0"),
        (json!({"features": ["nope"]}), "features.0"),
        (
            json!({"features": ["frequency", "frequency"]}),
            "features.1",
        ),
        (json!({"features": ["customer_id"]}), "features.0"),
        (json!({"features": []}), "features"),
        (json!({"depth": 7}), "depth"),
        (json!({"min_leaf_share": 0.75}), "min_leaf_share"),
        (json!({"max_rows": 1}), "max_rows"),
        (json!({"key": "id"}), "key"),
    ] {
        let (m, field) = plan_error(cfg.clone(), &both);
        assert_eq!(field.as_deref(), Some(want), "{cfg}: {m}");
    }

    // A features table with nothing numeric but the key.
    let bare: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("region", DataType::Utf8, false),
    ]));
    let (m, field) = plan_error(json!({}), &[("features", bare), ("arch", ss)]);
    assert!(m.contains("no numeric column"), "{m}");
    assert_eq!(field.as_deref(), Some("features"));
}
