//! The csv (encodings, compression, decimal comma, parallel decoding), jsonl and sqlite
//! collectors on the committed fixtures (see `fixtures/make_fixtures.py`), through the
//! real ABI entry points.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{Array, AsArray, RecordBatch};
use segflow_sdk::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType,
};
use segflow_sdk::ffi::abi;
use serde_json::json;

const ENTRY: abi::EntryFn = segflow_collect::segflow_plugin_v1 as abi::EntryFn;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn types(s: &Schema) -> Vec<DataType> {
    s.fields().iter().map(|f| f.data_type().clone()).collect()
}

fn names(s: &Schema) -> Vec<String> {
    s.fields().iter().map(|f| f.name().clone()).collect()
}

/// Run a collector and return its batches, failing the test on any error.
fn read(component: &str, cfg: serde_json::Value, threads: u32) -> Vec<RecordBatch> {
    let out = fake_host::run(ENTRY, component, cfg.clone(), threads, vec![]);
    assert_eq!(out.status, abi::STATUS_OK, "{cfg}: {:?}", out.error);
    out.table("main").to_vec()
}

fn strings(b: &[RecordBatch], col: usize) -> Vec<Option<String>> {
    b.iter()
        .flat_map(|b| {
            b.column(col)
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn floats(b: &[RecordBatch], col: usize) -> Vec<Option<f64>> {
    b.iter()
        .flat_map(|b| {
            b.column(col)
                .as_primitive::<Float64Type>()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The error of a failed stream.
fn stream_error(component: &str, cfg: serde_json::Value) -> String {
    let out = fake_host::run(ENTRY, component, cfg, 2, vec![]);
    match (&out.error, out.tables.first()) {
        (Some((m, _)), _) => m.clone(),
        (None, Some((_, Err(e)))) => e.clone(),
        _ => panic!("expected an error"),
    }
}

fn plan_error(component: &str, cfg: serde_json::Value) -> (String, Option<String>) {
    let plan = fake_host::plan(ENTRY, component, cfg, &[]);
    assert_eq!(plan.status, abi::STATUS_ERROR);
    (plan.error_message(), plan.error_field())
}

#[test]
fn csv_encodings_and_bom() {
    let b = read(
        "csv",
        json!({"path": fixture("gbk.csv"), "encoding": "gbk"}),
        1,
    );
    assert_eq!(strings(&b, 1), [Some("张三".into()), Some("李四".into())]);
    assert_eq!(strings(&b, 2), [Some("北京".into()), Some("上海".into())]);
    let b = read(
        "csv",
        json!({"path": fixture("latin1.csv"), "encoding": "latin-1"}),
        2,
    );
    assert_eq!(
        strings(&b, 1),
        [Some("Zoë Müller".into()), Some("François Besançon".into())]
    );
    let b = read(
        "csv",
        json!({"path": fixture("cp1252.csv"), "encoding": "windows-1252"}),
        1,
    );
    assert_eq!(
        strings(&b, 1),
        [Some("5 €".into()), Some("“quoted” – dash".into())]
    );
    // Read as UTF-8, GBK bytes are an error naming the file, not garbage.
    let err = stream_error("csv", json!({"path": fixture("gbk.csv")}));
    assert!(err.contains("gbk.csv"), "{err}");
    // The byte-order mark is dropped from the first column name, with or without utf-8-sig.
    for enc in ["utf-8", "utf-8-sig"] {
        let cfg = json!({"path": fixture("bom.csv"), "encoding": enc});
        let plan = fake_host::plan(ENTRY, "csv", cfg.clone(), &[]);
        assert_eq!(names(plan.schema("main")), ["customer_id", "amount"]);
        assert_eq!(types(plan.schema("main"))[0], DataType::Int64);
        assert_eq!(floats(&read("csv", cfg, 2), 1), [Some(2.5), Some(4.0)]);
    }
    let (msg, _) = plan_error(
        "csv",
        json!({"path": fixture("gbk.csv"), "encoding": "ebcdic"}),
    );
    assert!(msg.contains("ebcdic"), "{msg}");
}

#[test]
fn csv_quoted_newlines() {
    for threads in [1, 2] {
        let b = read(
            "csv",
            json!({"path": fixture("quoted_newline.csv")}),
            threads,
        );
        assert_eq!(
            strings(&b, 1),
            [
                Some("line one\nline two".into()),
                Some("say \"hi\", then\nleave".into()),
                Some("plain".into())
            ]
        );
        assert_eq!(floats(&b, 2), [Some(3.5), Some(4.0), Some(5.0)]);
    }
}

#[test]
fn csv_decimal_comma_and_mixed_date_formats() {
    let inferred = json!({"path": fixture("decimal_comma.csv"), "delimiter": ";", "decimal": ",",
                          "date_formats": ["%d/%m/%Y"]});
    let declared = json!({"path": fixture("decimal_comma.csv"), "delimiter": ";", "decimal": ",",
                          "date_formats": ["%d/%m/%Y"],
                          "columns": {"id": "int64", "amount": "float64", "day": "date"}});
    for cfg in [inferred, declared] {
        let plan = fake_host::plan(ENTRY, "csv", cfg.clone(), &[]);
        assert_eq!(plan.status, abi::STATUS_OK, "{:?}", plan.error);
        assert_eq!(
            types(plan.schema("main")),
            [DataType::Int64, DataType::Float64, DataType::Date32]
        );
        let b = read("csv", cfg, 2);
        assert_eq!(floats(&b, 1), [Some(12.5), Some(3.0), Some(-0.75), None]);
        let d = b[0].column(2).as_primitive::<Date32Type>();
        // 2024-01-05 and 05/01/2024 are the same day.
        assert_eq!(d.value(0), 19_727);
        assert_eq!(d.value(1), 19_727);
        assert_eq!(d.value(2), 19_782);
        assert!(d.is_null(3));
    }
    // A point where a comma is expected is an error naming file, line and column.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("eu.csv");
    std::fs::write(&p, "id;amount\n1;1,5\n2;1.234,5\n").unwrap();
    let err = stream_error(
        "csv",
        json!({"path": p, "delimiter": ";", "decimal": ",", "columns": {"id": "int64", "amount": "float64"}}),
    );
    assert!(
        err.contains("eu.csv` line 3, column `amount`: `1.234,5`"),
        "{err}"
    );
}

#[test]
fn csv_gzip_and_zstd_match_plain() {
    let plain = read(
        "csv",
        json!({"path": fixture("orders.csv"), "batch_size": 30}),
        1,
    );
    assert_eq!(plain.iter().map(RecordBatch::num_rows).sum::<usize>(), 100);
    for f in ["orders.csv.gz", "orders.csv.zst"] {
        let cfg = json!({"path": fixture(f), "batch_size": 30});
        let plan = fake_host::plan(ENTRY, "csv", cfg.clone(), &[]);
        assert_eq!(
            types(plan.schema("main")),
            [DataType::Int64, DataType::Date32, DataType::Float64]
        );
        for threads in [1, 3] {
            let out = fake_host::run(ENTRY, "csv", cfg.clone(), threads, vec![]);
            assert_eq!(out.table("main"), plain.as_slice(), "{f}");
            // bytes_read counts the compressed bytes taken from the file
            let size = std::fs::metadata(fixture(f)).unwrap().len();
            assert_eq!(out.fact("bytes_read"), &json!(size));
        }
    }
}

/// Parallel decoding: the same batches (values and boundaries) for any thread count,
/// across blocks, with quoted newlines and quotes scattered through the file.
#[test]
fn csv_parallel_decoding_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.csv");
    let mut text = String::from("id,note,amount,day\n");
    for i in 0..150_000u32 {
        let note = match i % 5 {
            0 => format!("\"multi\nline {i}\""),
            1 => "\"has \"\"quotes\"\", and comma\"".to_string(),
            // a quote inside an unquoted field is a literal character
            2 => "5\" screen".to_string(),
            _ => format!("n{i}"),
        };
        text.push_str(&format!(
            "{i},{note},{}.5,2024-01-{:02}\n",
            i % 1000,
            1 + i % 28
        ));
    }
    std::fs::write(&p, &text).unwrap();
    let cfg = json!({"path": p, "batch_size": 7000});
    let one = read("csv", cfg.clone(), 1);
    let sizes: Vec<usize> = one.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 150_000);
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&n| n == 7000),
        "{sizes:?}"
    );
    for threads in [2, 4] {
        assert_eq!(read("csv", cfg.clone(), threads), one, "{threads} threads");
    }
    let ids: Vec<i64> = one
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(ids, (0..150_000).collect::<Vec<i64>>());
    let notes = strings(&one, 1);
    assert_eq!(notes[100_000].as_deref(), Some("multi\nline 100000"));
    assert_eq!(notes[1].as_deref(), Some("has \"quotes\", and comma"));
    assert_eq!(notes[2].as_deref(), Some("5\" screen"));
    // A bad value far into the file is reported with its line in the file.
    std::fs::write(&p, format!("{text}x,y,1.5,2024-01-01\n")).unwrap();
    let err = stream_error(
        "csv",
        json!({"path": p, "batch_size": 7000, "columns": {"id": "int64", "amount": "float64"}}),
    );
    assert!(err.contains("big.csv"), "{err}");
    assert!(err.contains("line 150001"), "{err}");
}

#[test]
fn csv_errors_name_the_file_and_what_to_do() {
    let (msg, field) = plan_error("csv", json!({"path": fixture("missing.csv")}));
    assert_eq!(field.as_deref(), Some("path"));
    assert!(
        msg.contains("missing.csv") && msg.contains("resolved from"),
        "{msg}"
    );
    let (msg, field) = plan_error("csv", json!({"path": fixture("")}));
    assert_eq!(field.as_deref(), Some("path"));
    assert!(msg.contains("is a directory"), "{msg}");
    let (msg, field) = plan_error("csv", json!({"path": fixture("empty.csv")}));
    assert_eq!(field.as_deref(), Some("path"));
    assert!(msg.contains("empty.csv` is empty"), "{msg}");
    // A ragged row among the rows sampled for inference fails the plan...
    let (msg, field) = plan_error("csv", json!({"path": fixture("ragged.csv")}));
    assert_eq!(field.as_deref(), Some("path"));
    assert!(
        msg.contains("ragged.csv") && msg.contains("line 3"),
        "{msg}"
    );
    // ... and one further on fails the stream, naming file and line.
    for threads in [1, 2] {
        let out = fake_host::run(
            ENTRY,
            "csv",
            json!({"path": fixture("ragged.csv"), "infer_rows": 1}),
            threads,
            vec![],
        );
        let err = out.tables[0].1.as_ref().unwrap_err();
        assert!(err.contains("ragged.csv"), "{err}");
        assert!(err.contains("line 3, expected 3 got 2"), "{err}");
    }
    let (msg, field) = plan_error(
        "csv",
        json!({"path": fixture("orders.csv"), "columns": {"customer_id": "int64", "revenue": "float64"}}),
    );
    assert_eq!(field.as_deref(), Some("columns"));
    assert!(msg.contains("`revenue` is not in the header"), "{msg}");
    assert!(msg.contains("customer_id, date, amount"), "{msg}");
    let (msg, field) = plan_error(
        "csv",
        json!({"path": fixture("orders.csv"), "decimal": ";"}),
    );
    assert_eq!(field.as_deref(), Some("decimal"), "{msg}");
}

#[test]
fn sqlite_table_types_values_and_facts() {
    let cfg = json!({"path": fixture("shop.sqlite"), "table": "orders", "batch_size": 3});
    let plan = fake_host::plan(ENTRY, "sqlite", cfg.clone(), &[]);
    assert_eq!(plan.status, abi::STATUS_OK, "{:?}", plan.error);
    let s = plan.schema("main");
    assert_eq!(
        names(s),
        [
            "customer_id",
            "date",
            "amount",
            "note",
            "photo",
            "created",
            "legacy_day"
        ]
    );
    assert_eq!(
        types(s),
        [
            DataType::Int64,
            DataType::Date32,
            DataType::Float64,
            DataType::Utf8,
            DataType::Binary,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            // declared DATE, but the text is not YYYY-MM-DD: kept as text
            DataType::Utf8,
        ]
    );
    let out = fake_host::run(ENTRY, "sqlite", cfg, 1, vec![]);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    let b = out.table("main");
    assert_eq!(
        b.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(),
        [3, 1]
    );
    assert_eq!(b[0].schema().as_ref(), s);
    assert_eq!(b[0].column(1).as_primitive::<Date32Type>().value(0), 19_727);
    assert!(b[0].column(1).is_null(2));
    assert!(b[1].column(2).is_null(0));
    assert_eq!(b[1].column(3).as_string::<i32>().value(0), "último");
    assert_eq!(b[0].column(4).as_binary::<i32>().value(0), b"\x00\x01");
    assert!(b[0].column(4).is_null(1));
    let ts = b[1].column(5).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(ts.value(0), 1_706_745_600_250_000); // 2024-02-01 00:00:00.250
    assert_eq!(out.fact("rows"), &json!(4));
    assert_eq!(out.fact("source"), &json!(fixture("shop.sqlite")));
    let size = std::fs::metadata(fixture("shop.sqlite")).unwrap().len();
    assert_eq!(out.fact("bytes"), &json!(size));
    // a view reads like a table
    let b = read(
        "sqlite",
        json!({"path": fixture("shop.sqlite"), "table": "big_orders"}),
        1,
    );
    assert_eq!(b[0].num_rows(), 1);
}

#[test]
fn sqlite_query_with_params() {
    let cfg = json!({"path": fixture("shop.sqlite"),
        "query": "SELECT customer_id, sum(amount) AS total, count(*) AS n FROM orders \
                  WHERE customer_id >= :min_id AND note IS NOT :skip GROUP BY customer_id ORDER BY customer_id",
        "params": {"min_id": 1, "skip": "nothing"}});
    let plan = fake_host::plan(ENTRY, "sqlite", cfg.clone(), &[]);
    assert_eq!(plan.status, abi::STATUS_OK, "{:?}", plan.error);
    assert_eq!(
        types(plan.schema("main")),
        [DataType::Int64, DataType::Float64, DataType::Int64]
    );
    let b = read("sqlite", cfg, 1);
    assert_eq!(floats(&b, 1), [Some(17.75), Some(3.0), None]);
    // Values are bound, not pasted: an injection attempt is just a string.
    let b = read(
        "sqlite",
        json!({"path": fixture("shop.sqlite"), "query": "SELECT count(*) AS n FROM orders WHERE note = :note",
               "params": {"note": "x' OR '1'='1"}}),
        1,
    );
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 0);
    let (msg, field) = plan_error(
        "sqlite",
        json!({"path": fixture("shop.sqlite"), "query": "SELECT * FROM orders WHERE amount > :min"}),
    );
    assert_eq!(field.as_deref(), Some("params"));
    assert!(msg.contains(":min"), "{msg}");
    let (msg, field) = plan_error(
        "sqlite",
        json!({"path": fixture("shop.sqlite"), "query": "SELECT 1", "params": {"x": 1}}),
    );
    assert_eq!(field.as_deref(), Some("params.x"));
    assert!(msg.contains("no parameter"), "{msg}");
}

#[test]
fn sqlite_errors() {
    let (msg, field) = plan_error(
        "sqlite",
        json!({"path": fixture("nope.sqlite"), "table": "orders"}),
    );
    assert_eq!(field.as_deref(), Some("path"));
    assert!(msg.contains("nope.sqlite"), "{msg}");
    let (msg, field) = plan_error("sqlite", json!({"path": fixture(""), "table": "orders"}));
    assert_eq!(field.as_deref(), Some("path"));
    assert!(msg.contains("directory"), "{msg}");
    let (msg, field) = plan_error(
        "sqlite",
        json!({"path": fixture("orders.csv"), "table": "orders"}),
    );
    assert_eq!(field.as_deref(), Some("path"));
    assert!(msg.contains("not a readable SQLite database"), "{msg}");
    let (msg, field) = plan_error(
        "sqlite",
        json!({"path": fixture("shop.sqlite"), "table": "customers"}),
    );
    assert_eq!(field.as_deref(), Some("table"));
    assert!(
        msg.contains("no table `customers`") && msg.contains("big_orders, orders"),
        "{msg}"
    );
    let (msg, field) = plan_error("sqlite", json!({"path": fixture("shop.sqlite")}));
    assert_eq!(field.as_deref(), Some("table"));
    assert!(msg.contains("`query`"), "{msg}");
    let (msg, field) = plan_error(
        "sqlite",
        json!({"path": fixture("shop.sqlite"), "query": "SELECT nope FROM orders"}),
    );
    assert_eq!(field.as_deref(), Some("query"));
    assert!(msg.contains("no such column"), "{msg}");
    let (_, field) = plan_error(
        "sqlite",
        json!({"path": fixture("shop.sqlite"), "query": "DELETE FROM orders"}),
    );
    assert_eq!(field.as_deref(), Some("query"));
}

#[test]
fn jsonl_inferred_declared_and_compressed() {
    for f in ["events.jsonl", "events.jsonl.gz"] {
        let cfg = json!({"path": fixture(f), "batch_size": 2});
        let plan = fake_host::plan(ENTRY, "jsonl", cfg.clone(), &[]);
        assert_eq!(plan.status, abi::STATUS_OK, "{:?}", plan.error);
        assert_eq!(
            names(plan.schema("main")),
            ["customer_id", "date", "amount", "channel", "extra"]
        );
        assert_eq!(
            types(plan.schema("main")),
            [
                DataType::Int64,
                DataType::Date32,
                DataType::Float64,
                DataType::Utf8,
                DataType::Boolean
            ]
        );
        let out = fake_host::run(ENTRY, "jsonl", cfg, 1, vec![]);
        assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
        let b = out.table("main");
        assert_eq!(b.len(), 2);
        assert_eq!(floats(b, 2), [Some(10.5), Some(3.0), Some(7.25)]);
        assert_eq!(b[0].column(1).as_primitive::<Date32Type>().value(0), 19_727);
        assert!(b[0].column(3).is_null(1));
        assert_eq!(out.fact("rows"), &json!(3));
    }
    let cfg = json!({"path": fixture("events.jsonl"),
                     "columns": [{"name": "amount", "type": "float64"}, {"name": "customer_id", "type": "utf8"}, {"name": "date", "type": "date"}]});
    let plan = fake_host::plan(ENTRY, "jsonl", cfg.clone(), &[]);
    assert_eq!(
        types(plan.schema("main")),
        [DataType::Float64, DataType::Utf8, DataType::Date32]
    );
    let b = read("jsonl", cfg, 1);
    assert_eq!(
        strings(&b, 1),
        [Some("1".into()), Some("2".into()), Some("1".into())]
    );
    assert_eq!(b[0].column(2).as_primitive::<Date32Type>().value(2), 19_754);
}

#[test]
fn jsonl_errors_name_file_and_line() {
    let err = stream_error(
        "jsonl",
        json!({"path": fixture("events_bad.jsonl"), "infer_rows": 2}),
    );
    assert!(err.contains("events_bad.jsonl`:3"), "{err}");
    let (msg, field) = plan_error("jsonl", json!({"path": fixture("events_bad.jsonl")}));
    assert_eq!(field.as_deref(), Some("path"));
    assert!(msg.contains("events_bad.jsonl`:3"), "{msg}");
    let err = stream_error(
        "jsonl",
        json!({"path": fixture("events_badtype.jsonl"), "columns": {"customer_id": "int64", "amount": "float64"}}),
    );
    assert!(err.contains("events_badtype.jsonl`:3"), "{err}");
    let (msg, field) = plan_error(
        "jsonl",
        json!({"path": fixture("events.jsonl"), "columns": {"customer_id": "int64", "revenue": "float64"}}),
    );
    assert_eq!(field.as_deref(), Some("columns"));
    assert!(
        msg.contains("`revenue`") && msg.contains("customer_id, date, amount"),
        "{msg}"
    );
    let (msg, _) = plan_error("jsonl", json!({"path": fixture("empty.csv")}));
    assert!(msg.contains("is empty"), "{msg}");
    let (msg, field) = plan_error("jsonl", json!({"path": fixture("missing.jsonl")}));
    assert_eq!(field.as_deref(), Some("path"));
    assert!(msg.contains("missing.jsonl"), "{msg}");
}
