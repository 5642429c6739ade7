//! The collect components driven through the real ABI entry points.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use parquet::arrow::ArrowWriter;
use segflow_sdk::arrow::array::{
    Array, AsArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Int64Type, Schema};
use segflow_sdk::ffi::abi;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_collect::segflow_plugin_v1 as abi::EntryFn;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn names(s: &Schema) -> Vec<String> {
    s.fields().iter().map(|f| f.name().clone()).collect()
}

fn types(s: &Schema) -> Vec<DataType> {
    s.fields().iter().map(|f| f.data_type().clone()).collect()
}

const CSV: &str = "customer_id,date,amount,note\n\
                   1,2024-01-05,10.5,a\n\
                   2,2024-01-06,3,\n\
                   1,2024-02-01,7.25,\"x, y\"\n";

#[test]
fn library_lists_its_components() {
    let names = fake_host::component_names(ENTRY);
    for c in ["csv", "jsonl", "parquet", "sqlite", "synthetic"] {
        assert!(names.iter().any(|n| n == c), "{c} missing from {names:?}");
    }
    let schema = fake_host::config_schema(ENTRY, "synthetic");
    assert_eq!(schema["properties"]["customers"]["default"], json!(20000));
    assert_eq!(
        schema["properties"]["start"]["default"],
        json!("2023-01-01")
    );
    assert!(schema["description"]
        .as_str()
        .unwrap()
        .contains("archetypes"));
    let csv = fake_host::config_schema(ENTRY, "csv");
    assert_eq!(csv["properties"]["batch_size"]["default"], json!(65536));
    assert_eq!(csv["additionalProperties"], json!(false));
}

#[test]
fn csv_infers_types_and_streams_with_facts() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "orders.csv", CSV);
    let cfg = json!({"path": path, "batch_size": 2});
    let plan = fake_host::plan(ENTRY, "csv", cfg.clone(), &[]);
    assert_eq!(plan.status, abi::STATUS_OK, "{:?}", plan.error);
    let s = plan.schema("main");
    assert_eq!(names(s), ["customer_id", "date", "amount", "note"]);
    assert_eq!(
        types(s),
        [
            DataType::Int64,
            DataType::Date32,
            DataType::Float64,
            DataType::Utf8
        ]
    );

    let out = fake_host::run(ENTRY, "csv", cfg, 1, vec![]);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    let batches = out.table("main");
    assert_eq!(batches.len(), 2, "batch_size 2 over 3 rows");
    assert_eq!(batches[0].schema().as_ref(), s);
    assert_eq!(out.rows("main"), 3);
    assert_eq!(out.fact("rows"), &json!(3));
    assert_eq!(out.fact("bytes_read"), &json!(CSV.len()));
    assert_eq!(out.fact("source"), &json!(path));
    assert_eq!(out.fact("files"), &json!(1));
    let dates = batches[0].column(1).as_primitive::<Date32Type>();
    assert_eq!(dates.value(0), 19_727); // 2024-01-05
    let notes = batches[1].column(3).as_string::<i32>();
    assert_eq!(notes.value(0), "x, y");
    assert!(batches[0].column(3).is_null(1));
    assert!(out.progress_calls > 0);
}

#[test]
fn csv_declared_columns_as_list_or_map_pick_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "orders.csv", CSV);
    let list = json!({"path": path, "columns": [
        {"name": "amount", "type": "float64"},
        {"name": "customer_id", "type": "utf8"},
        {"name": "date", "type": "date"}]});
    let map = json!({"path": path, "columns": {"amount": "float64", "customer_id": "utf8", "date": "date"}});
    for cfg in [list, map] {
        let plan = fake_host::plan(ENTRY, "csv", cfg.clone(), &[]);
        assert_eq!(plan.status, abi::STATUS_OK, "{:?}", plan.error);
        let s = plan.schema("main");
        assert_eq!(names(s), ["amount", "customer_id", "date"]);
        assert_eq!(
            types(s),
            [DataType::Float64, DataType::Utf8, DataType::Date32]
        );
        let out = fake_host::run(ENTRY, "csv", cfg, 1, vec![]);
        let b = &out.table("main")[0];
        assert_eq!(b.column(1).as_string::<i32>().value(2), "1");
        assert_eq!(b.column(0).as_primitive::<Float64Type>().value(2), 7.25);
    }
    // unknown column
    let cfg = json!({"path": path, "columns": {"amount": "float64", "price": "float64"}});
    let plan = fake_host::plan(ENTRY, "csv", cfg, &[]);
    assert_eq!(plan.status, abi::STATUS_ERROR);
    assert_eq!(plan.error_field().as_deref(), Some("columns"));
    assert!(
        plan.error_message()
            .contains("`price` is not in the header"),
        "{}",
        plan.error_message()
    );
    // unknown type
    let cfg = json!({"path": path, "columns": {"amount": "money"}});
    let plan = fake_host::plan(ENTRY, "csv", cfg, &[]);
    assert_eq!(plan.status, abi::STATUS_ERROR);
    assert!(
        plan.error_message().contains("unknown variant `money`"),
        "{}",
        plan.error_message()
    );
}

#[test]
fn csv_without_header_and_with_delimiter() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "raw.csv", "1;2024-01-05;10.5\n2;2024-01-06;3\n");
    let cfg = json!({"path": path, "header": false, "delimiter": ";"});
    let plan = fake_host::plan(ENTRY, "csv", cfg.clone(), &[]);
    assert_eq!(
        names(plan.schema("main")),
        ["column_1", "column_2", "column_3"]
    );
    assert_eq!(types(plan.schema("main"))[1], DataType::Date32);
    let cfg = json!({"path": path, "header": false, "delimiter": ";",
                     "columns": [{"name": "id", "type": "int64"}, {"name": "d", "type": "date"}, {"name": "x", "type": "float64"}]});
    let out = fake_host::run(ENTRY, "csv", cfg, 1, vec![]);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    assert_eq!(out.rows("main"), 2);
    assert_eq!(names(&out.table("main")[0].schema()), ["id", "d", "x"]);
    let cfg = json!({"path": path, "header": false, "delimiter": ";", "columns": {"id": "int64"}});
    let plan = fake_host::plan(ENTRY, "csv", cfg, &[]);
    assert_eq!(plan.error_field().as_deref(), Some("columns"));
    assert!(plan.error_message().contains("has 3 columns"));
}

#[test]
fn csv_date_formats_declared_and_inferred() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "eu.csv",
        "id,day\n1,05/01/2024\n2,2024-01-06\n3,\n",
    );
    for cfg in [
        json!({"path": path, "date_formats": ["%d/%m/%Y"]}),
        json!({"path": path, "date_formats": ["%d/%m/%Y"], "columns": {"id": "int64", "day": "date"}}),
    ] {
        let plan = fake_host::plan(ENTRY, "csv", cfg.clone(), &[]);
        assert_eq!(types(plan.schema("main"))[1], DataType::Date32, "{cfg}");
        let out = fake_host::run(ENTRY, "csv", cfg, 1, vec![]);
        assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
        let d = out.table("main")[0]
            .column(1)
            .as_primitive::<Date32Type>()
            .clone();
        assert_eq!(d.value(0), 19_727);
        assert_eq!(d.value(1), 19_728);
        assert!(d.is_null(2));
    }
    // a value no format matches: a stream error naming file, line and column
    let bad = write(dir.path(), "bad.csv", "id,day\n1,05/01/2024\n2,Jan 6\n");
    let cfg = json!({"path": bad, "date_formats": ["%d/%m/%Y"], "columns": {"id": "int64", "day": "date"}});
    let out = fake_host::run(ENTRY, "csv", cfg, 1, vec![]);
    let err = out.tables[0].1.as_ref().unwrap_err();
    assert!(
        err.contains("bad.csv` line 3, column `day`: `Jan 6`"),
        "{err}"
    );
    // an invalid format is a config error
    let plan = fake_host::plan(
        ENTRY,
        "csv",
        json!({"path": bad, "date_formats": ["%Q"]}),
        &[],
    );
    assert_eq!(plan.error_field().as_deref(), Some("date_formats.0"));
}

#[test]
fn csv_glob_reads_sorted_files_and_checks_headers() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b.csv", "id,x\n3,1.5\n");
    write(dir.path(), "a.csv", "id,x\n1,0.5\n2,1\n");
    let pattern = format!("{}/*.csv", dir.path().display());
    let out = fake_host::run(ENTRY, "csv", json!({"path": pattern}), 1, vec![]);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    let ids: Vec<i64> = out
        .table("main")
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(out.fact("files"), &json!(2));
    assert_eq!(out.fact("rows"), &json!(3));

    write(dir.path(), "c.csv", "id,y\n4,1\n");
    let out = fake_host::run(ENTRY, "csv", json!({"path": pattern}), 1, vec![]);
    let err = out.tables[0].1.as_ref().unwrap_err();
    assert!(err.contains("c.csv` has the columns [id, y]"), "{err}");
}

#[test]
fn csv_missing_file_and_bad_values() {
    let plan = fake_host::plan(
        ENTRY,
        "csv",
        json!({"path": "/nonexistent/orders.csv"}),
        &[],
    );
    assert_eq!(plan.status, abi::STATUS_ERROR);
    assert_eq!(plan.error_field().as_deref(), Some("path"));
    assert!(plan.error_message().contains("/nonexistent/orders.csv"));
    let plan = fake_host::plan(ENTRY, "csv", json!({"path": "/nonexistent/*.csv"}), &[]);
    assert!(plan.error_message().contains("no file matches"));
    let plan = fake_host::plan(ENTRY, "csv", json!({"paht": "x.csv"}), &[]);
    assert_eq!(plan.status, abi::STATUS_ERROR);

    // types inferred from the first row only; a later row does not parse
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "late.csv", "id,x\n1,2\n2,oops\n");
    let out = fake_host::run(
        ENTRY,
        "csv",
        json!({"path": path, "infer_rows": 1}),
        1,
        vec![],
    );
    assert_eq!(out.status, abi::STATUS_OK);
    let err = out.tables[0].1.as_ref().unwrap_err();
    assert!(err.contains("late.csv"), "{err}");
    assert!(err.contains("raise `infer_rows`"), "{err}");
}

fn parquet_file(dir: &Path, name: &str, ids: Vec<i64>) -> String {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("date", DataType::Date32, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("channel", DataType::Utf8, true),
    ]));
    let n = ids.len();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(Date32Array::from(vec![19_000; n])),
            Arc::new(Float64Array::from(vec![1.25; n])),
            Arc::new(StringArray::from(vec!["app"; n])),
        ],
    )
    .unwrap();
    let p = dir.join(name);
    let mut w = ArrowWriter::try_new(std::fs::File::create(&p).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    p.display().to_string()
}

#[test]
fn parquet_schema_projection_and_glob() {
    let dir = tempfile::tempdir().unwrap();
    let a = parquet_file(dir.path(), "part-1.parquet", (0..1000).collect());
    parquet_file(dir.path(), "part-2.parquet", (1000..1500).collect());

    let plan = fake_host::plan(ENTRY, "parquet", json!({"path": a}), &[]);
    assert_eq!(plan.status, abi::STATUS_OK, "{:?}", plan.error);
    assert_eq!(
        names(plan.schema("main")),
        ["customer_id", "date", "amount", "channel"]
    );

    let pattern = format!("{}/part-*.parquet", dir.path().display());
    let cfg = json!({"path": pattern, "columns": ["amount", "customer_id"], "batch_size": 300});
    let plan = fake_host::plan(ENTRY, "parquet", cfg.clone(), &[]);
    assert_eq!(names(plan.schema("main")), ["amount", "customer_id"]);
    let out = fake_host::run(ENTRY, "parquet", cfg, 2, vec![]);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    assert_eq!(out.rows("main"), 1500);
    let b = out.table("main");
    assert!(b.iter().all(|b| b.num_rows() <= 300));
    assert_eq!(b[0].schema().as_ref(), plan.schema("main"));
    let last = b.last().unwrap();
    assert_eq!(
        last.column(1).as_primitive::<Int64Type>().values().last(),
        Some(&1499)
    );
    assert_eq!(out.fact("rows"), &json!(1500));
    assert!(out.fact("bytes_read").as_u64().unwrap() > 0);

    let plan = fake_host::plan(
        ENTRY,
        "parquet",
        json!({"path": a, "columns": ["amount", "price"]}),
        &[],
    );
    assert_eq!(plan.status, abi::STATUS_ERROR);
    assert_eq!(plan.error_field().as_deref(), Some("columns"));
    assert!(
        plan.error_message().contains("`price`"),
        "{}",
        plan.error_message()
    );

    let not_parquet = write(dir.path(), "x.parquet", "hello");
    let plan = fake_host::plan(ENTRY, "parquet", json!({"path": not_parquet}), &[]);
    assert_eq!(plan.error_field().as_deref(), Some("path"));
    assert!(plan.error_message().contains("not a readable Parquet file"));
}

#[test]
fn synthetic_is_deterministic_and_records_facts() {
    let cfg = json!({"customers": 9000, "seed": 7, "label": true});
    let plan = fake_host::plan(ENTRY, "synthetic", cfg.clone(), &[]);
    assert_eq!(plan.status, abi::STATUS_OK, "{:?}", plan.error);
    assert_eq!(
        names(plan.schema("main")),
        [
            "customer_id",
            "date",
            "amount",
            "category",
            "channel",
            "region",
            "archetype"
        ]
    );
    let one = fake_host::run(ENTRY, "synthetic", cfg.clone(), 1, vec![]);
    let two = fake_host::run(ENTRY, "synthetic", cfg, 2, vec![]);
    assert_eq!(one.table("main"), two.table("main"));
    assert_eq!(one.table("main")[0].schema().as_ref(), plan.schema("main"));
    assert_eq!(one.fact("customers"), &json!(9000));
    assert_eq!(one.fact("rows"), &json!(one.rows("main")));
    let counts = one.fact("archetype_counts").as_object().unwrap();
    assert_eq!(
        counts.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        9000
    );
    assert_eq!(one.fact("archetype_shares")["champions"], json!(0.10));

    let other = fake_host::run(
        ENTRY,
        "synthetic",
        json!({"customers": 9000, "seed": 8}),
        1,
        vec![],
    );
    assert_ne!(
        other.table("main")[0]
            .column(2)
            .as_primitive::<Float64Type>()
            .values()[..10],
        one.table("main")[0]
            .column(2)
            .as_primitive::<Float64Type>()
            .values()[..10]
    );
    let bad = fake_host::plan(ENTRY, "synthetic", json!({"start": "2024-13-01"}), &[]);
    assert_eq!(bad.status, abi::STATUS_ERROR);
    assert!(
        bad.error_message().contains("YYYY-MM-DD"),
        "{}",
        bad.error_message()
    );
}

/// Throughput of `synthetic` and `csv`. Ignored by default; run with
/// `cargo test --release -p segflow-collect --test collect -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark"]
fn throughput() {
    for threads in [1, 2] {
        let t = std::time::Instant::now();
        let out = fake_host::run(
            ENTRY,
            "synthetic",
            json!({"customers": 1_000_000}),
            threads,
            vec![],
        );
        let rows = out.rows("main");
        let secs = t.elapsed().as_secs_f64();
        println!(
            "synthetic: {rows} rows, {threads} thread(s): {secs:.2} s ({:.1} M rows/s)",
            rows as f64 / secs / 1e6
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tx.csv");
    let out = fake_host::run(ENTRY, "synthetic", json!({"customers": 200_000}), 2, vec![]);
    let mut w = segflow_sdk::arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(std::fs::File::create(&path).unwrap());
    for b in out.table("main") {
        w.write(b).unwrap();
    }
    drop(w);
    let size = std::fs::metadata(&path).unwrap().len();
    // SEGFLOW_BENCH_CSV names a bigger file, e.g. bench/features.sh's 10M-row CSV.
    let path = std::env::var("SEGFLOW_BENCH_CSV")
        .map(std::path::PathBuf::from)
        .unwrap_or(path);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(size);
    for threads in [1, 2] {
        let t = std::time::Instant::now();
        let out = fake_host::run(ENTRY, "csv", json!({"path": path}), threads, vec![]);
        let secs = t.elapsed().as_secs_f64();
        println!(
            "csv: {} rows, {:.0} MB, {threads} thread(s): {secs:.2} s ({:.0} MB/s)",
            out.rows("main"),
            size as f64 / 1e6,
            size as f64 / 1e6 / secs
        );
    }
}
