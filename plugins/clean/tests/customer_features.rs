//! `customer_features` driven through the real ABI entry points.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{
    Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};
use segflow_sdk::ffi::abi;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_clean::segflow_plugin_v1 as abi::EntryFn;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn tx_schema(key: DataType) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", key, true),
        Field::new("date", DataType::Date32, true),
        Field::new("amount", DataType::Float64, true),
    ]))
}

fn fixture_batches(key: DataType, batch_rows: usize) -> (SchemaRef, Vec<RecordBatch>) {
    let schema = tx_schema(key);
    let file = std::fs::File::open(fixture("features_transactions.csv")).unwrap();
    let batches = segflow_sdk::arrow::csv::ReaderBuilder::new(schema.clone())
        .with_header(true)
        .with_batch_size(batch_rows)
        .build(file)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (schema, batches)
}

fn meta() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("features_fixture.json")).unwrap())
        .unwrap()
}

fn config() -> serde_json::Value {
    json!({"key": "customer_id", "date": "date", "amount": "amount", "as_of": meta()["as_of"]})
}

fn one(out: &fake_host::Outcome, port: &str) -> RecordBatch {
    let batches = out.table(port);
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(out.schema(port).clone()));
    concat_batches(&schema, batches).unwrap()
}

#[test]
fn plan_gives_exact_schemas() {
    let out = fake_host::plan(
        ENTRY,
        "customer_features",
        config(),
        &[("orders", tx_schema(DataType::Int64))],
    );
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    let main = out.schema("main");
    let names: Vec<&str> = main.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "customer_id",
            "first_purchase",
            "last_purchase",
            "recency_days",
            "frequency",
            "n_transactions",
            "monetary_sum",
            "monetary_mean",
            "tenure_days",
            "avg_gap_days"
        ]
    );
    let q = out.schema("quarantine");
    assert_eq!(q.fields().len(), 4);
    assert_eq!(q.field(3).name(), "reason");

    // calibration only: the lifetimes columns
    let cfg = json!({"calibration_end": "2024-03-31", "time_unit": "weeks"});
    let out = fake_host::plan(
        ENTRY,
        "customer_features",
        cfg,
        &[("orders", tx_schema(DataType::Utf8))],
    );
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    let main = out.schema("main");
    let names: Vec<&str> = main.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        ["customer_id", "frequency", "recency", "T", "monetary_value"]
    );
    assert_eq!(main.field(0).data_type(), &DataType::Utf8);
}

#[test]
fn plan_errors_name_the_field() {
    let input = [("orders", tx_schema(DataType::Int64))];
    let cases = [
        (
            json!({"as_of": "2024-01-01", "amount": "amt"}),
            "amount",
            "column `amt` is not in the input",
        ),
        (
            json!({"as_of": "2024-01-01", "date": "amount"}),
            "date",
            "has type Float64",
        ),
        (
            json!({"as_of": "2024-01-01", "key": "date"}),
            "key",
            "has type Date32",
        ),
        (json!({}), "as_of", "set `as_of`"),
        (
            json!({"as_of": "2024-01-01", "calibration_end": "2024-02-01"}),
            "calibration_end",
            "must be before as_of",
        ),
        (
            json!({"as_of": "2024/01/01"}),
            "as_of",
            "not a date written YYYY-MM-DD",
        ),
        (
            json!({"as_of": "2024-01-01", "time_unit": "months"}),
            "time_unit",
            "unknown variant",
        ),
        (
            json!({"as_of": "2024-01-01", "keys": "x"}),
            "",
            "unknown field `keys`",
        ),
    ];
    for (cfg, field, message) in cases {
        let out = fake_host::plan(ENTRY, "customer_features", cfg.clone(), &input);
        assert_eq!(out.status, abi::STATUS_ERROR, "{cfg}");
        assert!(
            out.error_message().contains(message),
            "{cfg}: {}",
            out.error_message()
        );
        if !field.is_empty() {
            assert_eq!(out.error_field().as_deref(), Some(field), "{cfg}");
        }
    }
}

#[test]
fn run_matches_reference_and_accounts_for_every_row() {
    let m = meta();
    let (schema, batches) = fixture_batches(DataType::Int64, 37);
    let plan = fake_host::plan(
        ENTRY,
        "customer_features",
        config(),
        &[("orders", schema.clone())],
    );
    let out = fake_host::run(
        ENTRY,
        "customer_features",
        config(),
        2,
        vec![("orders", schema, batches)],
    );
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    let main = one(&out, "main");
    assert_eq!(main.schema().as_ref(), plan.schema("main"));
    assert_eq!(
        main.num_rows() as u64,
        m["customers_as_of"].as_u64().unwrap()
    );

    // compare with the polars reference
    let expected = std::fs::read_to_string(fixture("features_expected.csv")).unwrap();
    let keys = main.column(0).as_primitive::<Int64Type>();
    let sums = main
        .column_by_name("monetary_sum")
        .unwrap()
        .as_primitive::<Float64Type>();
    for (i, line) in expected.lines().skip(1).enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(keys.value(i), cells[0].parse::<i64>().unwrap());
        let want: f64 = cells[6].parse().unwrap();
        assert!((sums.value(i) - want).abs() <= 1e-9 * want.abs().max(1.0));
    }

    // rows in = transactions of the customers + quarantined rows
    let q = one(&out, "quarantine");
    assert_eq!(q.schema().as_ref(), plan.schema("quarantine"));
    let n_tx: i64 = main
        .column_by_name("n_transactions")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .sum();
    let rows_in = m["rows_in"].as_u64().unwrap();
    assert_eq!(n_tx as u64 + q.num_rows() as u64, rows_in);
    assert_eq!(out.fact("rows_in"), &json!(rows_in));
    assert_eq!(out.fact("rows_quarantined"), &json!(q.num_rows()));
    assert_eq!(out.fact("customers"), &json!(main.num_rows()));
    let reasons = q.column(3).as_string::<i32>();
    let after = reasons.iter().filter(|r| *r == Some("after_as_of")).count();
    assert_eq!(after as u64, m["rows_after_as_of"].as_u64().unwrap());
    assert_eq!(out.fact("quarantine_reasons")["after_as_of"], json!(after));
    for r in ["null_key", "null_date", "null_amount"] {
        assert_eq!(reasons.iter().filter(|x| *x == Some(r)).count(), 1, "{r}");
    }
}

#[test]
fn same_output_for_any_thread_count_and_batch_size() {
    let cfg = json!({"as_of": "2024-09-30", "calibration_end": "2024-03-31"});
    let mut results = Vec::new();
    for (threads, batch_rows) in [(1, 502), (2, 16), (3, 100)] {
        let (schema, batches) = fixture_batches(DataType::Int64, batch_rows);
        let out = fake_host::run(
            ENTRY,
            "customer_features",
            cfg.clone(),
            threads,
            vec![("o", schema, batches)],
        );
        assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
        results.push((one(&out, "main"), one(&out, "quarantine").num_rows()));
    }
    for r in &results[1..] {
        assert_eq!(r.0, results[0].0);
        assert_eq!(r.1, results[0].1);
    }
}

#[test]
fn string_keys_keep_their_type_and_calibration_only_quarantines_later_rows() {
    let schema = tx_schema(DataType::Utf8);
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![
                Some("b"),
                Some("a"),
                Some("b"),
                None,
            ])),
            Arc::new(segflow_sdk::arrow::array::Date32Array::from(vec![
                19_000, 19_001, 19_100, 19_000,
            ])),
            Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0])),
        ],
    )
    .unwrap();
    let cfg = json!({"calibration_end": "2022-01-01"}); // day 18993: every row is later
    let out = fake_host::run(
        ENTRY,
        "customer_features",
        cfg,
        1,
        vec![("o", schema.clone(), vec![batch.clone()])],
    );
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    assert_eq!(out.rows("main"), 0);
    let q = one(&out, "quarantine");
    let reasons: Vec<_> = q.column(3).as_string::<i32>().iter().flatten().collect();
    assert_eq!(
        reasons,
        [
            "after_calibration_end",
            "after_calibration_end",
            "after_calibration_end",
            "null_key"
        ]
    );

    let cfg = json!({"calibration_end": "2022-12-31"});
    let out = fake_host::run(
        ENTRY,
        "customer_features",
        cfg,
        1,
        vec![("o", schema, vec![batch])],
    );
    let main = one(&out, "main");
    assert_eq!(main.column(0).data_type(), &DataType::Utf8);
    let keys: Vec<_> = main.column(0).as_string::<i32>().iter().flatten().collect();
    assert_eq!(keys, ["a", "b"]);
    let freq = main
        .column_by_name("frequency")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(freq.values().to_vec(), vec![0.0, 1.0]);
    assert!(main.column_by_name("monetary_value").unwrap().null_count() == 0);
}

#[test]
fn input_with_a_reason_column_is_a_plan_error() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, true),
        Field::new("date", DataType::Date32, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("reason", DataType::Utf8, true),
    ]));
    let out = fake_host::plan(ENTRY, "customer_features", config(), &[("o", schema)]);
    assert_eq!(out.status, abi::STATUS_ERROR);
    assert!(out.error_message().contains("`reason`"));
    let _ = Int64Array::from(vec![1]).len();
}

/// Gap statistics and channel/category shares against the polars reference
/// (`features_mix_expected.csv`, checked against pandas by the fixture script), at two
/// batch sizes.
#[test]
fn gap_stats_and_shares_match_reference() {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, true),
        Field::new("date", DataType::Date32, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("channel", DataType::Utf8, true),
        Field::new("category", DataType::Utf8, true),
    ]));
    let cfg = json!({
        "as_of": meta()["as_of"],
        "gap_stats": true,
        "shares": {
            "channel": {"values": ["web", "store"]},
            "category": {"values": ["music", "books", "video"], "by": "amount"}
        }
    });
    let (header, rows) = {
        let text = std::fs::read_to_string(fixture("features_mix_expected.csv")).unwrap();
        let mut lines = text.lines();
        let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
        let rows: Vec<Vec<String>> = lines
            .map(|l| l.split(',').map(String::from).collect())
            .collect();
        (header, rows)
    };
    let plan = fake_host::plan(
        ENTRY,
        "customer_features",
        cfg.clone(),
        &[("orders", schema.clone())],
    );
    assert_eq!(plan.status, abi::STATUS_OK, "{:?}", plan.error);
    let names: Vec<&str> = plan.schema("main").fields()[10..]
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    // gap columns, then share columns in column-name order (category before channel)
    assert_eq!(
        names[..4],
        header[1..5].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(names[4], "category_share_music");
    assert_eq!(names[8], "channel_share_web");
    for batch_rows in [7, 502] {
        let file = std::fs::File::open(fixture("features_mix_transactions.csv")).unwrap();
        let batches = segflow_sdk::arrow::csv::ReaderBuilder::new(schema.clone())
            .with_header(true)
            .with_batch_size(batch_rows)
            .build(file)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let out = fake_host::run(
            ENTRY,
            "customer_features",
            cfg.clone(),
            2,
            vec![("orders", schema.clone(), batches)],
        );
        assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
        let main = one(&out, "main");
        assert_eq!(main.schema().as_ref(), plan.schema("main"));
        assert_eq!(main.num_rows(), rows.len());
        let keys = main.column(0).as_primitive::<Int64Type>();
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(keys.value(i).to_string(), row[0]);
            for (c, name) in header.iter().enumerate().skip(1) {
                let col = main
                    .column_by_name(name)
                    .unwrap()
                    .as_primitive::<Float64Type>();
                let ctx = format!("customer {} {name}", row[0]);
                if row[c].is_empty() {
                    assert!(col.is_null(i), "{ctx}: expected null");
                } else {
                    let want: f64 = row[c].parse().unwrap();
                    let got = col.value(i);
                    assert!(
                        (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                        "{ctx}: {got} != {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn shares_and_gap_stats_config_errors() {
    let schema = tx_schema(DataType::Int64);
    let cases = [
        (
            json!({"as_of": "2024-01-01", "shares": {"channel": {"values": ["web"]}}}),
            "shares.channel",
            "not in the input",
        ),
        (
            json!({"as_of": "2024-01-01", "shares": {"amount": {"values": ["1"]}}}),
            "shares.amount",
            "categorical",
        ),
        (
            json!({"calibration_end": "2024-01-01", "gap_stats": true}),
            "gap_stats",
            "as_of",
        ),
    ];
    for (cfg, field, msg) in cases {
        let out = fake_host::plan(
            ENTRY,
            "customer_features",
            cfg.clone(),
            &[("o", schema.clone())],
        );
        assert_eq!(out.status, abi::STATUS_ERROR, "{cfg}");
        let (text, f) = out.error.clone().unwrap();
        assert!(text.contains(msg), "{cfg}: {text}");
        assert_eq!(f.as_deref(), Some(field), "{cfg}");
    }
    let with_channel: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, true),
        Field::new("date", DataType::Date32, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("channel", DataType::Utf8, true),
    ]));
    let cfg = json!({"as_of": "2024-01-01", "shares": {"channel": {"values": ["web", "web"]}}});
    let out = fake_host::plan(ENTRY, "customer_features", cfg, &[("o", with_channel)]);
    assert_eq!(out.status, abi::STATUS_ERROR);
    assert!(out.error.unwrap().0.contains("twice"));
}
