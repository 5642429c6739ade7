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
    // The quality profile of the orders and the holdout split of the features.
    let q = read_json(&out.join("steps/quality/facts.json"));
    assert_eq!(q["columns"]["customer_id"]["completeness"], 1.0);
    assert_eq!(q["columns"]["customer_id"]["distinct"], 2357);
    assert_eq!(q["columns"]["amount"]["validity"], 1.0);
    let features = parquet_batches(&out.join("steps/features/main.parquet"));
    let schema = features[0].schema();
    for c in ["frequency_holdout", "gap_median_days", "T_cal"] {
        assert!(schema.field_with_name(c).is_ok(), "no column {c}");
    }
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

/// Bad data under `segflow run`: a clear message naming the file or column, exit 1 (a
/// well-formed pipeline whose step cannot run on this data), and never a panic.
#[test]
fn bad_data_fails_the_step_with_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("ragged.csv"),
        "customer_id,date,amount\n1,2024-01-01,5\n2,2024-01-02\n",
    )
    .unwrap();
    std::fs::write(d.join("empty.csv"), "").unwrap();
    std::fs::write(
        d.join("ok.csv"),
        "customer_id,date,amount\n1,2024-01-01,5\n",
    )
    .unwrap();
    std::fs::create_dir(d.join("adir.csv")).unwrap();
    let features =
        "  - id: f\n    stage: clean\n    plugin: customer_features\n    needs: [tx]\n    \
                    with: { as_of: \"2025-01-01\", amount: spend }\n";
    let cases: [(&str, &str, &[&str]); 5] = [
        ("missing.csv", "", &["missing.csv", "No such file"]),
        ("adir.csv", "", &["adir.csv", "directory"]),
        ("ragged.csv", "", &["ragged.csv", "line 3"]),
        ("empty.csv", "", &["empty.csv", "empty"]),
        ("ok.csv", features, &["spend", "not in the input"]),
    ];
    for (file, extra, needles) in cases {
        let yaml = format!(
            "name: bad_data\nsteps:\n  - id: tx\n    stage: collect\n    plugin: csv\n    \
             with: {{ path: \"{}\" }}\n{extra}",
            d.join(file).display()
        );
        let p = d.join(format!("{file}.yaml"));
        std::fs::write(&p, yaml).unwrap();
        let r = run(segflow().arg("run").arg(&p).arg("--out").arg(d.join("out")));
        assert_eq!(r.code, 1, "{file}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{file}: {}", r.stderr);
        for n in needles {
            assert!(
                r.stderr.contains(n),
                "{file}: stderr lacks {n:?}\n{}",
                r.stderr
            );
        }
        // `validate` still calls the pipeline invalid for this data
        let r = run(segflow().arg("validate").arg(&p));
        assert_eq!(r.code, 2, "{file}: {}", r.stderr);
    }
}
