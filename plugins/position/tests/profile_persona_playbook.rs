//! `profile`, `persona` and `playbook` through the real ABI entry points on a six-customer
//! table whose every figure is worked out by hand below, plus the awkward inputs: a
//! one-segment segmentation, a constant feature, a segment with zero revenue, an earlier
//! period, and config errors that name their field.

#[path = "../../support/fake_host.rs"]
mod fake_host;
use fake_host::{assert_close, col, strings as text, table};

use segflow_sdk::arrow::array::{Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use segflow_sdk::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use segflow_sdk::ffi::abi;
use serde_json::{json, Value};
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_position::segflow_plugin_v1 as abi::EntryFn;

/// | customer | amount | visits | c | region | channel_share_web | channel_share_app | seg_a | seg_b | seg_prev |
/// |---|---|---|---|---|---|---|---|---|---|
/// | 1 | 10 | 1 | 5 | n | 1.0 | 0.0 | low  | all | low  |
/// | 2 | 20 | 2 | 5 | n | 0.5 | 0.5 | low  | all | low  |
/// | 3 | 30 | 3 | 5 | s | 0.0 | 1.0 | low  | all | high |
/// | 4 | 60 | 4 | 5 | s | 0.0 | 1.0 | high | all | high |
/// | 5 | 80 | 4 | 5 | s | 0.0 | 1.0 | high | all | zero |
/// | 6 |  0 | 4 | 5 | n | 1.0 | 0.0 | zero | all |  —   |
fn features() -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("amount", DataType::Float64, true),
        Field::new("visits", DataType::Int64, true),
        Field::new("c", DataType::Float64, true),
        Field::new("region", DataType::Utf8, true),
        Field::new("channel_share_web", DataType::Float64, true),
        Field::new("channel_share_app", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6])),
            Arc::new(Float64Array::from(vec![10.0, 20.0, 30.0, 60.0, 80.0, 0.0])),
            Arc::new(Int64Array::from(vec![1, 2, 3, 4, 4, 4])),
            Arc::new(Float64Array::from(vec![5.0; 6])),
            Arc::new(StringArray::from(vec!["n", "n", "s", "s", "s", "n"])),
            Arc::new(Float64Array::from(vec![1.0, 0.5, 0.0, 0.0, 0.0, 1.0])),
            Arc::new(Float64Array::from(vec![0.0, 0.5, 1.0, 1.0, 1.0, 0.0])),
        ],
    )
    .unwrap();
    (schema, batch)
}

fn segmentation(keys: &[i64], ids: &[i32], labels: &[&str]) -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(keys.to_vec())),
            Arc::new(Int32Array::from(ids.to_vec())),
            Arc::new(StringArray::from(labels.to_vec())),
        ],
    )
    .unwrap();
    (schema, batch)
}

fn seg_a() -> (SchemaRef, RecordBatch) {
    segmentation(
        &[1, 2, 3, 4, 5, 6],
        &[0, 0, 0, 1, 1, 2],
        &["low", "low", "low", "high", "high", "zero"],
    )
}

fn seg_b() -> (SchemaRef, RecordBatch) {
    segmentation(&[1, 2, 3, 4, 5, 6], &[0; 6], &["all"; 6])
}

fn seg_prev() -> (SchemaRef, RecordBatch) {
    segmentation(
        &[1, 2, 3, 4, 5],
        &[0, 0, 1, 1, 2],
        &["low", "low", "high", "high", "zero"],
    )
}

fn run_profile(config: Value, with_previous: bool) -> fake_host::Outcome {
    let (fs, fb) = features();
    let (as_, ab) = seg_a();
    let (bs, bb) = seg_b();
    let mut inputs = vec![
        ("features", fs, vec![fb]),
        ("seg_a.assignments", as_, vec![ab]),
        ("seg_b", bs, vec![bb]),
    ];
    if with_previous {
        let (ps, pb) = seg_prev();
        inputs.push(("seg_prev", ps, vec![pb]));
    }
    fake_host::run(ENTRY, "profile", config, 2, inputs)
}

#[test]
fn profile_figures_match_the_hand_calculation() {
    let o = run_profile(
        json!({"revenue": "amount", "previous": {"seg_a": "seg_prev"}}),
        true,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
    let p = table(&o, "profiles");
    // rows: seg_a low, high, zero; then seg_b all
    assert_eq!(
        text(&p, "segment"),
        ["low", "high", "zero", "all"].map(|s| Some(s.to_string()))
    );
    assert_eq!(
        text(&p, "segmentation"),
        ["seg_a", "seg_a", "seg_a", "seg_b"].map(|s| Some(s.to_string()))
    );
    let s = |v: f64| Some(v);
    assert_close(
        &col(&p, "customers"),
        &[s(3.0), s(2.0), s(1.0), s(6.0)],
        "customers",
    );
    assert_close(
        &col(&p, "customer_share"),
        &[s(0.5), s(1.0 / 3.0), s(1.0 / 6.0), s(1.0)],
        "customer_share",
    );
    // revenue 60 / 140 / 0 of 200; the zero-revenue segment has share 0, not null
    assert_close(
        &col(&p, "revenue"),
        &[s(60.0), s(140.0), s(0.0), s(200.0)],
        "revenue",
    );
    assert_close(
        &col(&p, "revenue_share"),
        &[s(0.3), s(0.7), s(0.0), s(1.0)],
        "revenue_share",
    );
    // visits: base mean 18/6 = 3; squared deviations 4+1+0+1+1+1 = 8, sample variance
    // 8/5 = 1.6. low: 1 2 3 → mean 2, median 2, std 1, index 200/3, z −1/√1.6.
    // high: 4 4 → mean 4, std 0, index 400/3, z 1/√1.6. zero: 4 → std null.
    let sd = 1.6f64.sqrt();
    assert_close(
        &col(&p, "visits_mean"),
        &[s(2.0), s(4.0), s(4.0), s(3.0)],
        "visits_mean",
    );
    assert_close(
        &col(&p, "visits_median"),
        &[s(2.0), s(4.0), s(4.0), s(3.5)],
        "median",
    );
    assert_close(
        &col(&p, "visits_std"),
        &[s(1.0), s(0.0), None, s(sd)],
        "visits_std",
    );
    assert_close(
        &col(&p, "visits_index"),
        &[s(200.0 / 3.0), s(400.0 / 3.0), s(400.0 / 3.0), s(100.0)],
        "visits_index",
    );
    assert_close(
        &col(&p, "visits_z"),
        &[s(-1.0 / sd), s(1.0 / sd), s(1.0 / sd), s(0.0)],
        "visits_z",
    );
    // a constant feature: index 100, z null (documented)
    assert_close(&col(&p, "c_index"), &[s(100.0); 4], "c_index");
    assert_close(&col(&p, "c_z"), &[None; 4], "c_z");
    // region: base n 1/2, s 1/2. low n 2/3 (lift 4/3), s 1/3; high s 1 (lift 2);
    // zero n 1 (lift 2)
    assert_eq!(
        text(&p, "region_top"),
        ["n", "s", "n", "n"].map(|s| Some(s.to_string()))
    );
    assert_close(
        &col(&p, "region_top_share"),
        &[s(2.0 / 3.0), s(1.0), s(1.0), s(0.5)],
        "region_top_share",
    );
    assert_close(
        &col(&p, "region_top_lift"),
        &[s(4.0 / 3.0), s(2.0), s(2.0), s(1.0)],
        "region_top_lift",
    );
    // channel mix: base web 2.5/6, app 3.5/6. low web mean 0.5 (lift 1.2), app 0.5
    // (lift 6/7) → top web (first on a tie), distinctive web; high app 1 (lift 12/7)
    assert_eq!(
        text(&p, "channel_top"),
        ["web", "app", "web", "app"].map(|s| Some(s.to_string()))
    );
    // in a one-segment segmentation every lift is 1: the first value wins the tie
    assert_eq!(
        text(&p, "channel_distinctive"),
        ["web", "app", "web", "web"].map(|s| Some(s.to_string()))
    );
    assert_close(
        &col(&p, "channel_distinctive_lift"),
        &[s(1.2), s(12.0 / 7.0), s(2.4), s(1.0)],
        "channel lift",
    );
    // mix columns are categories, not features, by default
    assert!(p
        .schema()
        .field_with_name("channel_share_web_mean")
        .is_err());
    // previous period: low had {1,2} (both still low), high {3,4} (4 stayed), zero {5}
    // (now high). growth: 3/2−1, 2/2−1, 1/1−1; seg_b has no earlier period.
    assert_close(
        &col(&p, "customers_previous"),
        &[s(2.0), s(2.0), s(1.0), None],
        "customers_previous",
    );
    assert_close(
        &col(&p, "growth"),
        &[s(0.5), s(0.0), s(0.0), None],
        "growth",
    );
    assert_close(
        &col(&p, "stability"),
        &[s(1.0), s(0.5), s(0.0), None],
        "stability",
    );

    // the long table: every value of every category per segment
    let c = table(&o, "categories");
    assert_eq!(c.num_rows(), 4 * (2 + 2));
    let lift = col(&c, "lift");
    let (cat, val, seg) = (text(&c, "category"), text(&c, "value"), text(&c, "segment"));
    let i = (0..c.num_rows())
        .find(|&i| {
            seg[i].as_deref() == Some("low")
                && cat[i].as_deref() == Some("region")
                && val[i].as_deref() == Some("s")
        })
        .unwrap();
    assert_close(&[lift[i]], &[s(2.0 / 3.0)], "low/region/s lift");
    assert_eq!(o.fact("features"), &json!(["amount", "visits", "c"]));
}

#[test]
fn profile_plan_matches_run_and_checks_its_config() {
    let (fs, _) = features();
    let (as_, _) = seg_a();
    let plan =
        |cfg: Value, inputs: &[(&str, SchemaRef)]| fake_host::plan(ENTRY, "profile", cfg, inputs);
    let ok = plan(
        json!({"revenue": "amount"}),
        &[("features", fs.clone()), ("seg_a", as_.clone())],
    );
    assert_eq!(ok.status, abi::STATUS_OK, "{:?}", ok.error);
    let run = run_profile(json!({"revenue": "amount"}), false);
    assert_eq!(
        ok.schema("profiles"),
        table(&run, "profiles").schema().as_ref()
    );

    let err = |cfg: Value, inputs: &[(&str, SchemaRef)]| {
        let o = plan(cfg, inputs);
        assert_eq!(o.status, abi::STATUS_ERROR);
        (o.error_field(), o.error_message())
    };
    let both = [("features", fs.clone()), ("seg_a", as_.clone())];
    // the default revenue column is missing: the message says how to fix it
    let (field, msg) = err(json!({}), &both);
    assert_eq!(field.as_deref(), Some("revenue"));
    assert!(msg.contains("revenue: null"), "{msg}");
    let (field, msg) = err(
        json!({"revenue": null, "features": ["amount", "nope"]}),
        &both,
    );
    assert_eq!(field.as_deref(), Some("features.1"));
    assert!(msg.contains("visits"), "lists the numeric columns: {msg}");
    let (field, _) = err(json!({"revenue": null, "features": ["region"]}), &both);
    assert_eq!(field.as_deref(), Some("features.0"));
    let (field, msg) = err(json!({"revenue": null, "categories": ["colour"]}), &both);
    assert_eq!(field.as_deref(), Some("categories.0"));
    assert!(msg.contains("channel"), "lists the categories: {msg}");
    let (field, _) = err(
        json!({"revenue": null, "previous": {"seg_a": "old"}}),
        &both,
    );
    assert_eq!(field.as_deref(), Some("previous.seg_a"));
    // no segmentation, or two feature tables
    let (_, msg) = err(
        json!({"revenue": null}),
        &[("features", fs.clone()), ("more", fs.clone())],
    );
    assert!(msg.contains("segmentation"), "{msg}");
    // a key of another kind
    let text_key = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
    ]));
    let (field, _) = err(
        json!({"revenue": null}),
        &[("features", fs), ("seg", text_key)],
    );
    assert_eq!(field.as_deref(), Some("key"));
}

#[test]
fn profile_refuses_customers_it_cannot_join() {
    let (fs, fb) = features();
    let (ss, sb) = segmentation(&[1, 2, 99], &[0, 0, 1], &["a", "a", "b"]);
    let o = fake_host::run(
        ENTRY,
        "profile",
        json!({"revenue": "amount"}),
        1,
        vec![
            ("features", fs.clone(), vec![fb.clone()]),
            ("s", ss, vec![sb]),
        ],
    );
    assert_eq!(o.status, abi::STATUS_ERROR);
    assert!(o.error_message().contains("99"), "{}", o.error_message());
    // one id with two labels
    let (ss, sb) = segmentation(&[1, 2], &[0, 0], &["a", "b"]);
    let o = fake_host::run(
        ENTRY,
        "profile",
        json!({"revenue": "amount"}),
        1,
        vec![("features", fs, vec![fb]), ("s", ss, vec![sb])],
    );
    assert_eq!(o.status, abi::STATUS_ERROR);
    assert!(
        o.error_message().contains("two labels"),
        "{}",
        o.error_message()
    );
}

fn profiles_of(config: Value) -> (SchemaRef, RecordBatch) {
    let o = run_profile(config, false);
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
    let t = table(&o, "profiles");
    (t.schema(), t)
}

#[test]
fn persona_names_follow_the_documented_rule() {
    // amount: base mean 200/6, squared deviations sum 4733.33, sample std √946.67 =
    // 30.768. z: low (20) −0.433, high (70) 1.192, zero (0) −1.083. visits z: low
    // −0.791, high and zero +0.791 (see above). With threshold 0.5, strongest first:
    let (ps, pb) = profiles_of(json!({"revenue": "amount"}));
    let run = |cfg: Value| {
        let o = fake_host::run(
            ENTRY,
            "persona",
            cfg,
            1,
            vec![("profile.profiles", ps.clone(), vec![pb.clone()])],
        );
        assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
        table(&o, "personas")
    };
    let t = run(json!({"words": {"visits": {"high": "frequent", "low": "rare"}}}));
    assert_eq!(
        text(&t, "name"),
        [
            "Rare",
            "High amount, frequent",
            "Low amount, frequent",
            "Typical customers"
        ]
        .map(|s| Some(s.to_string()))
    );
    assert_eq!(
        text(&t, "descriptors")[1].as_deref(),
        Some("high amount, frequent")
    );
    // one descriptor per name, a higher threshold, an override, an ignored feature
    let t = run(
        json!({"max_descriptors": 1, "threshold": 1.1, "names": {"zero": "Dormant"}, "ignore": ["visits"]}),
    );
    assert_eq!(
        text(&t, "name"),
        [
            "Typical customers",
            "High amount",
            "Dormant",
            "Typical customers"
        ]
        .map(|s| Some(s.to_string()))
    );
    let d = text(&t, "description");
    assert!(
        d[1].as_deref()
            .unwrap()
            .starts_with("2 customers (33.3%), 70% of revenue."),
        "{d:?}"
    );
    // sections: region is demographics, amount spending, visits behaviour
    let demo = text(&t, "demographics");
    assert!(
        demo[1]
            .as_deref()
            .unwrap()
            .contains("region: s over-represented"),
        "{demo:?}"
    );
    assert!(text(&t, "spending")[1]
        .as_deref()
        .unwrap()
        .contains("amount 70"));
    assert!(text(&t, "behaviour")[1]
        .as_deref()
        .unwrap()
        .contains("visits 4"));
    // two segments with the same generated name get their label appended
    let t = run(
        json!({"ignore": ["amount"], "words": {"visits": {"high": "frequent", "low": "rare"}}}),
    );
    let names = text(&t, "name");
    assert_eq!(names[1].as_deref(), Some("Frequent (high)"));
    assert_eq!(names[2].as_deref(), Some("Frequent (zero)"));
    // config errors name the field
    let o = fake_host::plan(
        ENTRY,
        "persona",
        json!({"words": {"nope": {"high": "a", "low": "b"}}}),
        &[("p", ps.clone())],
    );
    assert_eq!(o.error_field().as_deref(), Some("words.nope"));
    let o = fake_host::plan(ENTRY, "persona", json!({}), &[("p", features().0)]);
    assert_eq!(o.status, abi::STATUS_ERROR);
    assert!(
        o.error_message().contains("not a profiles table"),
        "{}",
        o.error_message()
    );
}

#[test]
fn playbook_applies_the_first_matching_play() {
    let (ps, pb) = profiles_of(json!({"revenue": "amount"}));
    let run = |cfg: Value| {
        let o = fake_host::run(
            ENTRY,
            "playbook",
            cfg,
            1,
            vec![("profile.profiles", ps.clone(), vec![pb.clone()])],
        );
        assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
        table(&o, "playbook")
    };
    let t = run(json!({
        "plays": [
            {"action": "retain", "when": "amount_z >= 1", "why": "spends the most", "offer": "VIP"},
            {"action": "win_back", "when": "revenue_share == 0", "why": "no revenue"},
        ],
        "default": "nurture",
    }));
    assert_eq!(
        text(&t, "action"),
        ["nurture", "retain", "win_back", "nurture"].map(|s| Some(s.to_string()))
    );
    assert_eq!(
        text(&t, "rule"),
        ["default", "amount_z >= 1", "revenue_share == 0", "default"].map(|s| Some(s.to_string()))
    );
    assert_eq!(text(&t, "offer")[1].as_deref(), Some("VIP"));
    // the built-in table: no label or customer_features column matches, so every
    // segment gets the default
    let t = run(json!({}));
    assert_eq!(text(&t, "action"), vec![Some("cross_sell".to_string()); 4]);
    // a play on a column the profile lacks is refused at plan time, naming the play
    let o = fake_host::plan(
        ENTRY,
        "playbook",
        json!({"plays": [
            {"action": "a", "when": "amount_z > 0", "why": "x"},
            {"action": "b", "when": "recency_z > 0", "why": "y"},
        ]}),
        &[("p", ps.clone())],
    );
    assert_eq!(o.status, abi::STATUS_ERROR);
    assert_eq!(o.error_field().as_deref(), Some("plays.1.when"));
    assert!(
        o.error_message().contains("recency_z"),
        "{}",
        o.error_message()
    );
}
