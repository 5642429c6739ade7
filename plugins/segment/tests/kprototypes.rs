//! `kprototypes` driven through the real ABI entry points: mixed numeric and
//! categorical (text, dictionary, integer) columns, the documented outputs (costs,
//! centres in original units, modes), facts, plan-time errors naming the field, and the
//! same result for any thread count and batching.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{
    AsArray, DictionaryArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::{
    DataType, Field, Float64Type, Int32Type, Int64Type, Int8Type, Schema, SchemaRef,
};
use segflow_sdk::ffi::abi;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_segment::segflow_plugin_v1 as abi::EntryFn;
const REGIONS: [&str; 3] = ["north", "south", "east"];

/// `3 × per` customers in three groups: spend and visits around a group centre, a
/// region (90% the group's), a channel (dictionary) and a store number (integer).
fn customers(per: usize) -> (SchemaRef, RecordBatch, Vec<usize>) {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("spend", DataType::Float64, false),
        Field::new("visits", DataType::Int64, false),
        Field::new("region", DataType::Utf8, false),
        Field::new(
            "channel",
            DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("store", DataType::Int32, false),
    ]));
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut u = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut spend, mut visits, mut region, mut channel, mut store, mut truth) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..3 * per {
        let g = (i * 7 + i / 5) % 3;
        truth.push(g);
        spend.push([40.0, 400.0, 150.0][g] + (u() - 0.5) * 60.0);
        visits.push([2, 12, 5][g] + (u() * 3.0) as i64);
        let r = if u() < 0.9 { g } else { (g + 1) % 3 };
        region.push(REGIONS[r]);
        channel.push(["web", "store", "app"][(g + (u() < 0.3) as usize) % 3]);
        store.push([3, 10, 9][g] + (u() < 0.2) as i32);
    }
    let channel: DictionaryArray<Int8Type> = channel.into_iter().collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from((1..=(3 * per) as i64).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(spend)),
            Arc::new(Int64Array::from(visits)),
            Arc::new(StringArray::from(region)),
            Arc::new(channel),
            Arc::new(Int32Array::from(store)),
        ],
    )
    .unwrap();
    (schema, batch, truth)
}

fn cfg() -> serde_json::Value {
    json!({
        "k": 3,
        "numeric": ["spend", "visits"],
        "categorical": ["region", "channel", "store"],
        "seed": 7,
        "n_init": 4,
    })
}

fn run(
    config: serde_json::Value,
    threads: u32,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> fake_host::Outcome {
    let out = fake_host::run(
        ENTRY,
        "kprototypes",
        config,
        threads,
        vec![("in", schema.clone(), batches)],
    );
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    out
}

fn one(out: &fake_host::Outcome, port: &str) -> RecordBatch {
    let b = out.table(port);
    concat_batches(&b[0].schema(), b).unwrap()
}

fn chunks(b: &RecordBatch, rows: usize) -> Vec<RecordBatch> {
    (0..b.num_rows())
        .step_by(rows)
        .map(|o| b.slice(o, rows.min(b.num_rows() - o)))
        .collect()
}

#[test]
fn segments_mixed_data_with_documented_outputs() {
    let (schema, batch, truth) = customers(100);
    let out = run(cfg(), 2, &schema, vec![batch.clone()]);
    let a = one(&out, "assignments");
    assert_eq!(
        a.schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        ["customer_id", "segment_id", "segment", "cost"]
    );
    let seg = a
        .column_by_name("segment_id")
        .unwrap()
        .as_primitive::<Int32Type>();
    let cost = a
        .column_by_name("cost")
        .unwrap()
        .as_primitive::<Float64Type>();
    let names = a.column_by_name("segment").unwrap().as_string::<i32>();
    assert_eq!(a.num_rows(), 300);
    // The three groups, whatever their numbers.
    let mut map = HashMap::new();
    let agree = truth
        .iter()
        .zip(seg.values())
        .filter(|(t, s)| *map.entry(**s).or_insert(**t) == **t)
        .count();
    assert!(agree >= 290, "{agree} of 300 in their group's segment");
    assert_eq!(names.value(0), format!("cluster_{}", seg.value(0)));
    let total: f64 = cost.values().iter().sum();
    let fact = out.fact("cost").as_f64().unwrap();
    assert!((total - fact).abs() <= 1e-9 * fact);
    assert!(cost.values().iter().all(|c| c.is_finite() && *c >= 0.0));

    // The model: sizes (largest first), centres in original units, modes.
    let m = one(&out, "model");
    let sizes = m
        .column_by_name("size")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(sizes.values().iter().sum::<i64>(), 300);
    assert!(sizes.values().windows(2).all(|w| w[0] >= w[1]));
    let spend_in = batch
        .column_by_name("spend")
        .unwrap()
        .as_primitive::<Float64Type>();
    let region_in = batch.column_by_name("region").unwrap().as_string::<i32>();
    let store_in = batch
        .column_by_name("store")
        .unwrap()
        .as_primitive::<Int32Type>();
    let centre = m
        .column_by_name("spend")
        .unwrap()
        .as_primitive::<Float64Type>();
    let region = m.column_by_name("region").unwrap().as_string::<i32>();
    let store = m.column_by_name("store").unwrap().as_string::<i32>();
    let channel = m.column_by_name("channel").unwrap().as_string::<i32>();
    for j in 0..3 {
        let members: Vec<usize> = (0..300).filter(|&i| seg.value(i) == j as i32).collect();
        assert_eq!(members.len() as i64, sizes.value(j));
        let mean = members.iter().map(|&i| spend_in.value(i)).sum::<f64>() / members.len() as f64;
        assert!(
            (centre.value(j) - mean).abs() < 1e-6 * mean.abs().max(1.0),
            "segment {j}: centre {} vs members' mean {mean}",
            centre.value(j)
        );
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for &i in &members {
            *counts.entry(region_in.value(i)).or_default() += 1;
        }
        let top = counts.values().max().unwrap();
        assert_eq!(counts[region.value(j)], *top, "segment {j}: region mode");
        assert!(REGIONS.contains(&region.value(j)));
        assert!(["web", "store", "app"].contains(&channel.value(j)));
        let s: i32 = store.value(j).parse().unwrap();
        assert!(members.iter().any(|&i| store_in.value(i) == s));
    }

    // Facts.
    assert_eq!(out.fact("k"), &json!(3));
    assert_eq!(out.fact("gamma_source"), &json!("default"));
    // Standardised numeric features: gamma = 0.5 × mean std = 0.5.
    assert!((out.fact("gamma").as_f64().unwrap() - 0.5).abs() < 1e-12);
    assert_eq!(out.fact("cost_per_init").as_array().unwrap().len(), 4);
    assert_eq!(out.fact("init"), &json!("cao"));
    assert_eq!(
        out.fact("categories"),
        &json!({"region": 3, "channel": 3, "store": 5})
    );
    assert!(out.fact("n_iter").as_u64().unwrap() >= 1);
    assert!(out.fact("standardize")["mean"].is_array());

    // A higher gamma weighs the categories more: the given value is used as is.
    let mut c = cfg();
    c["gamma"] = json!(4.0);
    c["init"] = json!("huang");
    c["standardize"] = json!(false);
    let out = run(c, 1, &schema, vec![batch]);
    assert_eq!(out.fact("gamma"), &json!(4.0));
    assert_eq!(out.fact("gamma_source"), &json!("given"));
    assert_eq!(out.fact("init"), &json!("huang"));
}

#[test]
fn same_result_for_any_thread_count_and_batching() {
    let (schema, batch, _) = customers(400);
    let base = run(cfg(), 1, &schema, vec![batch.clone()]);
    for (threads, rows) in [(2, 97), (3, 1200), (4, 1)] {
        let other = run(cfg(), threads, &schema, chunks(&batch, rows));
        assert_eq!(one(&base, "assignments"), one(&other, "assignments"));
        assert_eq!(one(&base, "model"), one(&other, "model"));
        assert_eq!(base.fact("cost"), other.fact("cost"));
    }
}

#[test]
fn plan_checks_name_the_field() {
    let (schema, _, _) = customers(1);
    let plan =
        |c: serde_json::Value| fake_host::plan(ENTRY, "kprototypes", c, &[("in", schema.clone())]);
    let ok = plan(cfg());
    assert_eq!(ok.status, abi::STATUS_OK, "{:?}", ok.error);
    let m = ok.schema("model");
    assert_eq!(
        m.fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        [
            "segment_id",
            "segment",
            "size",
            "spend",
            "visits",
            "region",
            "channel",
            "store"
        ]
    );
    assert_eq!(
        m.field_with_name("store").unwrap().data_type(),
        &DataType::Utf8
    );
    let field = |c: serde_json::Value| {
        let o = plan(c);
        assert_ne!(o.status, abi::STATUS_OK);
        (o.error_field(), o.error_message())
    };
    let mut c = cfg();
    c["numeric"] = json!(["visits"]);
    c["categorical"] = json!(["spend"]);
    let (f, msg) = field(c);
    assert_eq!(f.as_deref(), Some("categorical.0"));
    assert!(
        msg.contains("Float64") && msg.contains("text, dictionary, integer"),
        "{msg}"
    );
    let mut c = cfg();
    c["numeric"] = json!(["spend", "region"]);
    c["categorical"] = json!(["channel"]);
    assert_eq!(field(c).0.as_deref(), Some("numeric.1"));
    let mut c = cfg();
    c["categorical"] = json!(["regoin"]);
    let (f, msg) = field(c);
    assert_eq!(f.as_deref(), Some("categorical.0"));
    assert!(msg.contains("not in the input"), "{msg}");
    let mut c = cfg();
    c["categorical"] = json!(["region", "spend"]);
    c["numeric"] = json!(["spend"]);
    let (f, msg) = field(c);
    assert_eq!(f.as_deref(), Some("categorical.1"));
    assert!(msg.contains("listed twice"), "{msg}");
    let mut c = cfg();
    c["categorical"] = json!([]);
    assert_eq!(field(c).0.as_deref(), Some("categorical"));
    let mut c = cfg();
    c["gamma"] = json!(-1.0);
    assert_eq!(field(c).0.as_deref(), Some("gamma"));
    // The config schema documents the keys.
    let s = fake_host::config_schema(ENTRY, "kprototypes");
    for key in [
        "k",
        "numeric",
        "categorical",
        "key",
        "standardize",
        "gamma",
        "init",
        "n_init",
        "max_iter",
        "seed",
    ] {
        assert!(s["properties"].get(key).is_some(), "schema lacks {key}");
    }
}
