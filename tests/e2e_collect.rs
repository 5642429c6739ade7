//! End-to-end: the collect examples (`pipelines/csv_example.yaml`,
//! `pipelines/sqlite_example.yaml`) with the real binary on the committed CDNOW data.

mod common;
use common::*;
use std::path::Path;

fn step<'a>(m: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    m["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

/// Run a pipeline into `out` and check what every CDNOW example must give.
fn run_example(pipeline: &str, name: &str, component: &str, out: &Path) -> serde_json::Value {
    let r = run(segflow()
        .args(["run", pipeline, "--threads", "2", "--out"])
        .arg(out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = read_json(&out.join("manifest.json"));
    assert_eq!(m["pipeline"], name);
    assert_eq!(m["status"], "succeeded");
    let orders = step(&m, "orders");
    assert_eq!(orders["stage"], "collect");
    assert_eq!(orders["component"], format!("collect/{component}"));
    assert_eq!(orders["status"], "succeeded");
    // The CDNOW sample: 6,919 purchases by 2,357 customers.
    assert_eq!(orders["rows"]["main"], 6919);
    assert_eq!(parquet_rows(&out.join("steps/orders/main.parquet")), 6919);
    let facts = read_json(&out.join("steps/orders/facts.json"));
    assert_eq!(facts["rows"], 6919, "{facts}");
    let features = step(&m, "features");
    assert_eq!(features["status"], "succeeded");
    assert_eq!(features["rows"]["main"], 2357);
    assert_eq!(features["rows_in"], 6919);
    assert_eq!(parquet_rows(&out.join("steps/features/main.parquet")), 2357);
    // The collected columns and their types.
    let batches = parquet_batches(&out.join("steps/orders/main.parquet"));
    let schema = batches[0].schema();
    let cols: Vec<(String, String)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string()))
        .collect();
    assert_eq!(
        cols,
        [
            ("customer_id".to_string(), "Int64".to_string()),
            ("date".into(), "Date32".into()),
            ("cds".into(), "Int64".into()),
            ("amount".into(), "Float64".into()),
        ]
    );
    let total: f64 = batches
        .iter()
        .map(|b| {
            let a = b
                .column(3)
                .as_any()
                .downcast_ref::<arrow::array::Float64Array>()
                .unwrap();
            a.iter().flatten().sum::<f64>()
        })
        .sum();
    assert!((total - 244_091.94).abs() < 0.01, "total amount {total}");
    m
}

#[test]
fn csv_example_runs_on_committed_data() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run_example("pipelines/csv_example.yaml", "csv_example", "csv", &out);
    let facts = read_json(&out.join("steps/orders/facts.json"));
    assert_eq!(facts["files"], 1);
    let size = std::fs::metadata(repo_root().join("pipelines/data/cdnow.csv"))
        .unwrap()
        .len();
    assert_eq!(facts["bytes_read"], size);
}

#[test]
fn sqlite_example_runs_on_committed_data() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run_example(
        "pipelines/sqlite_example.yaml",
        "sqlite_example",
        "sqlite",
        &out,
    );
    let facts = read_json(&out.join("steps/orders/facts.json"));
    assert_eq!(facts["source"], "pipelines/data/cdnow.sqlite");
    assert!(facts["bytes"].as_u64().unwrap() > 0);
}

#[test]
fn examples_validate() {
    for p in [
        "pipelines/csv_example.yaml",
        "pipelines/sqlite_example.yaml",
    ] {
        let r = run(segflow().args(["validate", p]));
        assert_eq!(r.code, 0, "{p}: {}{}", r.stdout, r.stderr);
    }
}

#[test]
fn sqlite_query_params_can_be_set_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let r = run(segflow()
        .args([
            "run",
            "pipelines/sqlite_example.yaml",
            "--set",
            "orders.params.since=1998-01-01",
            "--out",
        ])
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = read_json(&out.join("manifest.json"));
    // The 1998 purchases of the CDNOW sample.
    assert_eq!(step(&m, "orders")["rows"]["main"], 1191);
}
