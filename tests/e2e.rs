//! End-to-end tests: the real `segflow` binary with the real plugin libraries.

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

#[test]
fn quickstart_runs_and_writes_the_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let r = run(segflow()
        .args(["run", "pipelines/quickstart.yaml", "--out"])
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);

    let m = read_json(&out.join("manifest.json"));
    assert_eq!(m["pipeline"], "quickstart");
    assert_eq!(m["status"], "succeeded");
    assert_eq!(m["abi_version"], 1);
    assert!(m["started_at"].is_string() && m["finished_at"].is_string());
    for id in ["orders", "features"] {
        let s = step(&m, id);
        assert_eq!(s["status"], "succeeded");
        assert_eq!(s["cache_hit"], false);
        assert_eq!(s["library"]["sha256"].as_str().unwrap().len(), 64);
        assert!(Path::new(s["library"]["path"].as_str().unwrap()).exists());
        assert_eq!(s["config_hash"].as_str().unwrap().len(), 64);
        assert!(s["duration_ms"].as_f64().unwrap() >= 0.0);
        // Every port is a Parquet file whose row count the manifest records.
        for (port, rows) in s["rows"].as_object().unwrap() {
            let file = out.join(format!("steps/{id}/{port}.parquet"));
            assert_eq!(
                parquet_rows(&file),
                rows.as_i64().unwrap(),
                "{}",
                file.display()
            );
        }
        assert!(out.join(format!("steps/{id}/facts.json")).exists());
    }
    assert_eq!(step(&m, "orders")["stage"], "collect");
    assert_eq!(step(&m, "features")["component"], "clean/customer_features");

    // Nothing lost: every transaction is either in a customer's count or quarantined.
    let f = step(&m, "features");
    let rows_in = f["rows_in"].as_i64().unwrap();
    assert_eq!(
        rows_in,
        step(&m, "orders")["rows"]["main"].as_i64().unwrap()
    );
    let quarantined = f["rows"]["quarantine"].as_i64().unwrap();
    let batches = parquet_batches(&out.join("steps/features/main.parquet"));
    let mut counted = 0i64;
    for b in &batches {
        let col = b
            .column_by_name("n_transactions")
            .expect("n_transactions column");
        let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Int64).unwrap();
        let col = col
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        counted += col.iter().flatten().sum::<i64>();
    }
    assert_eq!(rows_in, counted + quarantined);
    assert_eq!(
        f["rows"]["main"].as_i64().unwrap(),
        20000,
        "one row per synthetic customer"
    );
    // No temporary files left behind.
    for entry in walk(&out) {
        assert!(
            !entry
                .file_name()
                .unwrap()
                .to_string_lossy()
                .ends_with(".tmp"),
            "{}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn default_run_directory_and_latest_link() {
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = repo_root().join("pipelines/quickstart.yaml");
    let r = run(segflow()
        .current_dir(tmp.path())
        .arg("run")
        .arg(&pipeline)
        .args(["--set", "orders.customers=300"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let latest = tmp.path().join("runs/quickstart/latest");
    let m = read_json(&latest.join("manifest.json"));
    assert_eq!(m["status"], "succeeded");
    let target = std::fs::read_link(&latest).unwrap();
    assert!(
        target.to_string_lossy().ends_with('Z'),
        "timestamped: {}",
        target.display()
    );
    // --set reached the component.
    assert_eq!(step(&m, "features")["rows"]["main"], 300);
    assert_eq!(step(&m, "orders")["config"]["customers"], 300);
}

#[test]
fn same_seed_gives_identical_parquet_bytes_for_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for threads in ["1", "2"] {
        let out = tmp.path().join(format!("t{threads}"));
        let r = run(segflow()
            .args([
                "run",
                "pipelines/quickstart.yaml",
                "--threads",
                threads,
                "--out",
            ])
            .arg(&out));
        assert_eq!(r.code, 0, "{}", r.stderr);
        outs.push(out);
    }
    // Every data output must match byte for byte. The report is the exception: it shows
    // how long each step took, which no two runs share.
    let report = outs[0].join("steps").join("report");
    let files: Vec<_> = walk(&outs[0])
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .filter(|p| !p.starts_with(&report))
        .collect();
    assert!(files.len() >= 30, "{} files", files.len());
    for a in files {
        let b = outs[1].join(a.strip_prefix(&outs[0]).unwrap());
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{} differs between --threads 1 and 2",
            a.display()
        );
    }
}

#[test]
fn validate_and_plan() {
    let r = run(segflow().args(["validate", "pipelines/quickstart.yaml"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("is valid"));

    let r = run(segflow().args(["plan", "pipelines/quickstart.yaml"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("collect/synthetic") && r.stdout.contains("recency_days"),
        "{}",
        r.stdout
    );

    let r = run(segflow().args(["plan", "pipelines/quickstart.yaml", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v["layers"],
        serde_json::json!([
            ["orders"],
            ["features"],
            ["segments", "lifecycle"],
            [
                "profile",
                "explain",
                "validity",
                "stability",
                "clv",
                "kpis",
                "compare",
                "drift"
            ],
            ["personas", "targets", "map", "playbook"],
            ["report"]
        ])
    );
    let features = &v["steps"][1];
    let cols: Vec<&str> = features["outputs"][0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        cols.contains(&"customer_id")
            && cols.contains(&"frequency")
            && cols.contains(&"monetary_sum"),
        "{cols:?}"
    );

    let r = run(segflow().args(["plan", "pipelines/quickstart.yaml", "--format", "dot"]));
    assert!(
        r.stdout.starts_with("digraph") && r.stdout.contains("\"orders\" -> \"features\""),
        "{}",
        r.stdout
    );
    let r = run(segflow().args(["plan", "pipelines/quickstart.yaml", "--format", "mermaid"]));
    assert!(
        r.stdout.contains("orders -->|main| features"),
        "{}",
        r.stdout
    );
}

#[test]
fn schema_and_plugins_commands() {
    let r = run(segflow().arg("schema"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let schema: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(schema["$defs"]["collect.synthetic"]["properties"]["customers"].is_object());
    assert!(schema["$defs"]["clean.customer_features"]["properties"]["as_of"].is_object());

    let r = run(segflow().args(["plugins", "list"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("collect")
            && r.stdout.contains("synthetic")
            && r.stdout.contains("customer_features"),
        "{}",
        r.stdout
    );
    let r = run(segflow().args(["plugins", "list", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["libraries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["name"] == "clean"));

    let r = run(segflow().args(["plugins", "info", "customer_features"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("as_of") && r.stdout.contains("clean"),
        "{}",
        r.stdout
    );
    let r = run(segflow().args(["plugins", "info", "custmer_features"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("customer_features"), "{}", r.stderr);
}

/// The generated docs match what the libraries say about themselves.
#[test]
fn docs_reference_is_up_to_date() {
    let r = run(segflow().args(["schema", "--format", "markdown"]));
    assert_eq!(r.code, 0);
    let committed = std::fs::read_to_string(repo_root().join("docs/reference.md")).unwrap();
    for section in r.stdout.split("\n### ").skip(1) {
        let section = section.split("\n## ").next().unwrap();
        if section.contains("(testkit ") {
            continue;
        }
        assert!(
            committed.contains(section.trim_end()),
            "docs/reference.md is out of date for:\n### {section}\nregenerate the docs from a release build (which holds no test plugins): `cargo build --release && ./target/release/segflow schema --format markdown --out docs/reference.md && ./target/release/segflow schema --out docs/pipeline.schema.json`"
        );
    }
    let schema: serde_json::Value =
        serde_json::from_str(&run(segflow().arg("schema")).stdout).unwrap();
    let committed: serde_json::Value = read_json(&repo_root().join("docs/pipeline.schema.json"));
    for (k, v) in schema["$defs"].as_object().unwrap() {
        if k.starts_with("testkit.") {
            continue;
        }
        assert_eq!(
            &committed["$defs"][k], v,
            "docs/pipeline.schema.json is out of date for {k}"
        );
    }
}

#[test]
fn secrets_from_the_environment_stay_out_of_outputs_and_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let secret_dir = tmp.path().join("s3cr3t-dir-7f9a");
    std::fs::create_dir(&secret_dir).unwrap();
    std::fs::write(
        secret_dir.join("tx.csv"),
        "customer_id,date,amount\n1,2024-01-05,10.5\n1,2024-02-01,20\n2,2024-03-03,7.25\n",
    )
    .unwrap();
    let p = tmp.path().join("p.yaml");
    std::fs::write(
        &p,
        "name: secret
steps:
  - id: orders
    stage: collect
    plugin: csv
    with: { path: \"${SEGFLOW_E2E_DIR}/tx.csv\" }
  - id: features
    stage: clean
    plugin: customer_features
    needs: [orders]
    with: { as_of: \"2025-01-01\" }
",
    )
    .unwrap();
    let out = tmp.path().join("run");
    let r = run(segflow()
        .env("SEGFLOW_E2E_DIR", &secret_dir)
        .env("SEGFLOW_LOG", "debug")
        .args(["--log-format", "json", "run"])
        .arg(&p)
        .arg("--out")
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let secret = secret_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(!r.stderr.contains(&secret), "secret in logs:\n{}", r.stderr);
    for f in walk(&out) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret in {}",
            f.display()
        );
    }
    let m = read_json(&out.join("manifest.json"));
    assert_eq!(
        step(&m, "orders")["config"]["path"],
        "${SEGFLOW_E2E_DIR}/tx.csv"
    );
    assert_eq!(step(&m, "features")["rows"]["main"], 2);

    // An unset variable is a validation error naming it.
    let r = run(segflow()
        .env_remove("SEGFLOW_E2E_DIR")
        .arg("validate")
        .arg(&p));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("SEGFLOW_E2E_DIR"), "{}", r.stderr);
}

#[test]
fn json_logs_are_json_lines_and_plugin_events_carry_the_step() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(segflow()
        .env("SEGFLOW_LOG", "info")
        .args([
            "--log-format",
            "json",
            "run",
            "pipelines/quickstart.yaml",
            "--set",
            "orders.customers=200",
            "--out",
        ])
        .arg(tmp.path().join("run")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut plugin_events = 0;
    for line in r.stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v.get("plugin_target").is_some() {
            assert!(v["step"].is_string(), "{line}");
            plugin_events += 1;
        }
    }
    assert!(
        plugin_events > 0,
        "no plugin log events were forwarded:\n{}",
        r.stderr
    );
}

#[test]
fn independent_steps_run_in_parallel() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.yaml");
    std::fs::write(
        &p,
        "name: parallel
steps:
  - {id: src, stage: collect, plugin: source, with: {rows: 100}}
  - {id: a, stage: clean, plugin: sleep, needs: [src], with: {ms: 400}}
  - {id: b, stage: clean, plugin: sleep, needs: [src], with: {ms: 400}}
",
    )
    .unwrap();
    let out = tmp.path().join("run");
    let r = run(segflow()
        .arg("run")
        .arg(&p)
        .args(["--threads", "2", "--out"])
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = read_json(&out.join("manifest.json"));
    let t = |id: &str, k: &str| {
        chrono::DateTime::parse_from_rfc3339(step(&m, id)[k].as_str().unwrap()).unwrap()
    };
    // The two sleeps overlap in time: each starts before the other returns.
    assert!(t("a", "started_at") < t("b", "run_returned_at"), "{m:#}");
    assert!(t("b", "started_at") < t("a", "run_returned_at"), "{m:#}");
    assert_eq!(step(&m, "a")["threads"], 1, "the thread budget is split");
}

#[test]
fn kmeans_segments_the_quickstart_features() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.yaml");
    std::fs::write(
        &p,
        "name: kmeans_e2e
steps:
  - { id: orders, stage: collect, plugin: synthetic, with: { customers: 3000, seed: 7 } }
  - id: features
    stage: clean
    plugin: customer_features
    needs: [orders]
    with: { as_of: \"2025-01-01\" }
  - id: km
    stage: segment
    plugin: kmeans
    needs: [features]
    with: { k: 5, features: [recency_days, frequency, monetary_sum], n_init: 3, seed: 1 }
",
    )
    .unwrap();
    let out = tmp.path().join("run");
    let r = run(segflow().arg("run").arg(&p).arg("--out").arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = read_json(&out.join("manifest.json"));
    assert_eq!(step(&m, "km")["rows"]["assignments"], 3000);
    assert_eq!(step(&m, "km")["rows"]["model"], 5);
    let model = parquet_batches(&out.join("steps/km/model.parquet"));
    let sizes = model[0].column_by_name("size").unwrap();
    let sizes = sizes
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap();
    let sizes: Vec<i64> = sizes.values().to_vec();
    assert_eq!(sizes.iter().sum::<i64>(), 3000);
    assert!(
        sizes.windows(2).all(|w| w[0] >= w[1]),
        "segments numbered by size: {sizes:?}"
    );
    let facts = read_json(&out.join("steps/km/facts.json"));
    assert_eq!(facts["inertia_per_init"].as_array().unwrap().len(), 3);

    // A missing feature column is caught by validate, pointing at the list entry.
    let bad = std::fs::read_to_string(&p)
        .unwrap()
        .replace("monetary_sum]", "monetary]");
    std::fs::write(&p, bad).unwrap();
    let r = run(segflow().arg("validate").arg(&p));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("column `monetary` is not in the input")
            && r.stderr.contains("p.yaml:13:55"),
        "{}",
        r.stderr
    );
}
