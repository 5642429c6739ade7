//! `segflow runs list|show|diff` on real runs: the quickstart twice (a changed
//! `orders.customers`) and a pipeline whose step fails, in a `runs/<pipeline>/<stamp>/`
//! tree of a temporary directory.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const RUN_A: &str = "20260101T000000Z";
const RUN_B: &str = "20260102T000000Z";
const RUN_F: &str = "20260103T000000Z";

fn quickstart(out: &Path, cache: &Path, customers: u32) {
    let r = run(segflow()
        .arg("run")
        .arg("pipelines/quickstart.yaml")
        .arg("--set")
        .arg(format!("orders.customers={customers}"))
        .arg("--cache-dir")
        .arg(cache)
        .arg("--out")
        .arg(out));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

fn runs_cmd(runs: &Path, args: &[&str]) -> Run {
    run(segflow().arg("runs").arg("--runs-dir").arg(runs).args(args))
}

fn stdout_json(r: &Run) -> Value {
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

/// The line of `section` (a heading in `runs diff`'s text) whose first cells are `cells`.
fn row<'a>(text: &'a str, section: &str, cells: &[&str]) -> Option<&'a str> {
    let mut inside = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            inside = line.trim() == section;
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if inside && words.len() >= cells.len() && words[..cells.len()] == *cells {
            return Some(line);
        }
    }
    None
}

fn cached_in(manifest: &Value) -> usize {
    manifest["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["cache_hit"] == true)
        .count()
}

struct Tree {
    _tmp: tempfile::TempDir,
    runs: PathBuf,
    a: PathBuf,
    b: PathBuf,
    f: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let cache = tmp.path().join("cache");
    let a = runs.join("quickstart").join(RUN_A);
    let b = runs.join("quickstart").join(RUN_B);
    quickstart(&a, &cache, 2000);
    quickstart(&b, &cache, 2500);
    std::os::unix::fs::symlink(RUN_B, runs.join("quickstart").join("latest")).unwrap();
    // Not runs: a directory without a manifest, and a stray file.
    std::fs::create_dir_all(runs.join("quickstart").join("scratch")).unwrap();
    std::fs::write(runs.join("README"), "not a run").unwrap();

    let p = tmp.path().join("fails.yaml");
    std::fs::write(
        &p,
        "name: fails
steps:
  - {id: src, stage: collect, plugin: source, with: {rows: 100}}
  - {id: boom, stage: clean, plugin: fail, needs: [src]}
  - {id: after, stage: clean, plugin: passthrough, needs: [boom]}
",
    )
    .unwrap();
    let f = runs.join("fails").join(RUN_F);
    let r = run(segflow()
        .arg("run")
        .arg(&p)
        .arg("--no-cache")
        .arg("--out")
        .arg(&f));
    assert_eq!(r.code, 1, "{}", r.stderr);
    Tree {
        _tmp: tmp,
        runs,
        a,
        b,
        f,
    }
}

#[test]
fn runs_list_show_and_diff() {
    let t = tree();
    let ma = read_json(&t.a.join("manifest.json"));
    let mb = read_json(&t.b.join("manifest.json"));

    // ---- list
    let r = runs_cmd(&t.runs, &["list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three runs:\n{}", r.stdout);
    assert!(lines[0].starts_with("pipeline"), "{}", r.stdout);
    // Newest first.
    assert!(lines[1].contains(RUN_F), "{}", r.stdout);
    assert!(lines[2].contains(RUN_B), "{}", r.stdout);
    assert!(lines[3].contains(RUN_A), "{}", r.stdout);
    let words: Vec<&str> = lines[3].split_whitespace().collect();
    // pipeline, run, date, time, status, duration, steps, cached
    assert_eq!(words[0], "quickstart", "{}", lines[3]);
    assert_eq!(words[4], "succeeded", "{}", lines[3]);
    assert_eq!(words[6], "17", "{}", lines[3]);
    assert_eq!(words[7], cached_in(&ma).to_string(), "{}", lines[3]);
    let words: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(words[0], "fails", "{}", lines[1]);
    assert_eq!(words[4], "failed", "{}", lines[1]);
    assert_eq!(words[6], "3", "{}", lines[1]);
    assert_eq!(words.last(), Some(&"boom"), "the failed step: {}", lines[1]);
    assert!(!r.stdout.contains("scratch") && !r.stdout.contains("latest"));

    let j = stdout_json(&runs_cmd(&t.runs, &["list", "--json"]));
    let arr = j.as_array().unwrap();
    assert_eq!(arr.len(), 3, "{j:#}");
    let by_run = |name: &str| arr.iter().find(|x| x["run"] == name).unwrap().clone();
    let (ja, jf) = (by_run(RUN_A), by_run(RUN_F));
    assert_eq!(ja["pipeline"], "quickstart");
    assert_eq!(ja["status"], "succeeded");
    assert_eq!(ja["steps"], 17);
    assert_eq!(ja["cached"], cached_in(&ma));
    assert_eq!(ja["started_at"], ma["started_at"]);
    assert_eq!(Path::new(ja["path"].as_str().unwrap()), t.a);
    assert!(ja["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(jf["status"], "failed");
    assert_eq!(jf["steps"], 3);
    assert_eq!(jf["failed"], serde_json::json!(["boom"]));

    let j = stdout_json(&runs_cmd(
        &t.runs,
        &["list", "--pipeline", "quickstart", "--json"],
    ));
    assert_eq!(j.as_array().unwrap().len(), 2, "{j:#}");

    // An empty runs directory is not an error.
    let empty = t.runs.join("nothing-here");
    let r = runs_cmd(&empty, &["list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("no runs under"), "{}", r.stdout);
    assert_eq!(
        stdout_json(&runs_cmd(&empty, &["list", "--json"])),
        serde_json::json!([])
    );

    // ---- show: a failed run names its failed step and the error
    let r = runs_cmd(&t.runs, &["show", &format!("fails/{RUN_F}")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("status:        failed"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("error: step `boom` failed: testkit failure on purpose"),
        "{}",
        r.stdout
    );
    let boom = r.stdout.lines().find(|l| l.starts_with("boom ")).unwrap();
    assert!(boom.contains("failed") && boom.contains("clean"), "{boom}");
    let after = r.stdout.lines().find(|l| l.starts_with("after ")).unwrap();
    assert!(after.contains("skipped"), "{after}");
    let src = r.stdout.lines().find(|l| l.starts_with("src ")).unwrap();
    assert!(src.contains("main=100"), "{src}");

    // A pipeline name is its latest run; a bare timestamp is found under any pipeline;
    // a run directory is taken as is.
    let r = runs_cmd(&t.runs, &["show", "quickstart", "--json"]);
    let j = stdout_json(&r);
    assert_eq!(j["started_at"], mb["started_at"], "{j:#}");
    assert_eq!(j["run"], RUN_B);
    assert_eq!(j["status"], "succeeded");
    assert_eq!(j["steps_total"], 17);
    let orders = &j["steps"][0];
    assert_eq!(orders["id"], "orders");
    assert_eq!(orders["rows"]["main"], mb["steps"][0]["rows"]["main"]);
    let j = stdout_json(&runs_cmd(&t.runs, &["show", RUN_A, "--json"]));
    assert_eq!(j["started_at"], ma["started_at"]);
    let j = stdout_json(&runs_cmd(
        Path::new("/nonexistent"),
        &["show", t.a.to_str().unwrap(), "--json"],
    ));
    assert_eq!(j["started_at"], ma["started_at"]);

    // ---- diff A B
    let r = runs_cmd(
        &t.runs,
        &["diff", &format!("quickstart/{RUN_A}"), "quickstart/latest"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = &r.stdout;
    assert!(!text.contains("different pipelines"), "{text}");
    // the changed config path with both values
    let line = row(text, "Config", &["orders", "with.customers"])
        .unwrap_or_else(|| panic!("no with.customers change:\n{text}"));
    let w: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(w[2..], ["2000", "2500"], "{line}");
    assert!(
        row(text, "Config", &["orders", "with.seed"]).is_none(),
        "{text}"
    );
    // row counts, from the Parquet files themselves
    for (step, port) in [
        ("orders", "main"),
        ("features", "main"),
        ("segments", "assignments"),
    ] {
        let file = |d: &Path| d.join("steps").join(step).join(format!("{port}.parquet"));
        let (na, nb) = (parquet_rows(&file(&t.a)), parquet_rows(&file(&t.b)));
        assert_ne!(na, nb, "{step}.{port}");
        let line = row(text, "Rows", &[step, port])
            .unwrap_or_else(|| panic!("no row difference for {step}.{port}:\n{text}"));
        let w: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(w[2], na.to_string(), "{line}");
        assert_eq!(w[3], nb.to_string(), "{line}");
        assert_eq!(w[4], format!("{:+}", nb - na), "{line}");
        let pct = (nb - na) as f64 / na as f64 * 100.0;
        assert_eq!(w[5], format!("{pct:+.2}%"), "{line}");
    }
    // equal counts are left out of the text
    assert!(
        row(text, "Rows", &["features", "quarantine"]).is_none(),
        "{text}"
    );
    // a facts metric that differs
    let fa = read_json(&t.a.join("steps/validity/facts.json"));
    let fb = read_json(&t.b.join("steps/validity/facts.json"));
    let key = "segmentations.segments.silhouette";
    let (va, vb) = (
        fa["segmentations"]["segments"]["silhouette"]
            .as_f64()
            .unwrap(),
        fb["segmentations"]["segments"]["silhouette"]
            .as_f64()
            .unwrap(),
    );
    assert_ne!(va, vb);
    assert!(row(text, "Metrics", &["validity", key]).is_some(), "{text}");
    assert!(
        row(text, "Metrics", &["orders", "customers"]).is_some(),
        "{text}"
    );
    // a metrics.parquet row
    assert!(
        text.lines()
            .any(|l| l.contains("metrics: segments / silhouette")),
        "{text}"
    );
    // status side by side
    assert!(row(text, "Status", &["orders"]).is_some(), "{text}");

    // ---- diff --json: everything, structured
    let j = stdout_json(&runs_cmd(
        &t.runs,
        &[
            "diff",
            t.a.to_str().unwrap(),
            t.b.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(j["same_pipeline"], true);
    assert_eq!(j["steps_only_in_a"], serde_json::json!([]));
    let config = j["config"].as_array().unwrap();
    let c = config
        .iter()
        .find(|c| c["step"] == "orders" && c["path"] == "with.customers")
        .unwrap();
    assert_eq!((c["a"].clone(), c["b"].clone()), (2000.into(), 2500.into()));
    let rows = j["rows"].as_array().unwrap();
    let find_row = |step: &str, port: &str| {
        rows.iter()
            .find(|r| r["step"] == step && r["port"] == port)
            .unwrap_or_else(|| panic!("no {step}.{port} in {rows:#?}"))
    };
    let om = find_row("orders", "main");
    let (na, nb) = (
        parquet_rows(&t.a.join("steps/orders/main.parquet")),
        parquet_rows(&t.b.join("steps/orders/main.parquet")),
    );
    assert_eq!(om["a"], na);
    assert_eq!(om["b"], nb);
    assert_eq!(om["delta"], nb - na);
    // --json includes the ports that did not change too
    let fq = find_row("features", "quarantine");
    assert_eq!(fq["a"], fq["b"]);
    let metrics = j["metrics"].as_array().unwrap();
    let m = metrics
        .iter()
        .find(|m| m["step"] == "validity" && m["source"] == "facts" && m["key"] == key)
        .unwrap();
    assert_eq!(m["a"].as_f64(), Some(va));
    assert_eq!(m["b"].as_f64(), Some(vb));
    assert_eq!(m["differs"], true);
    assert!(
        metrics
            .iter()
            .any(|m| m["source"] == "metrics.parquet" && m["step"] == "validity"),
        "no metrics.parquet rows"
    );
    let steps = j["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 17);
    assert_eq!(steps[0]["a"]["status"], "succeeded");

    // ---- diff across pipelines: said, and still compared by step id
    let r = runs_cmd(&t.runs, &["diff", RUN_A, t.f.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("different pipelines"), "{}", r.stdout);
    assert!(r.stdout.contains("only in A: orders"), "{}", r.stdout);
    assert!(
        r.stdout.contains("only in B: src, boom, after"),
        "{}",
        r.stdout
    );
}

#[test]
fn unknown_runs_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    std::fs::create_dir_all(runs.join("quickstart").join("broken")).unwrap();
    std::fs::write(runs.join("quickstart/broken/manifest.json"), "{ not json").unwrap();

    let r = runs_cmd(&runs, &["show", "nope"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains("no run `nope`"), "{}", r.stderr);
    assert!(r.stderr.contains("segflow runs list"), "{}", r.stderr);
    assert!(
        r.stderr.contains("nope/latest"),
        "what was tried: {}",
        r.stderr
    );

    let r = runs_cmd(&runs, &["diff", "nope", "quickstart/nope"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no run `nope`"), "{}", r.stderr);

    // an existing directory that is not a run
    let r = runs_cmd(&runs, &["show", tmp.path().to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is not a run directory"), "{}", r.stderr);

    // a damaged manifest: named, not a panic; and skipped by list
    let r = runs_cmd(&runs, &["show", "quickstart/broken"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not valid JSON"), "{}", r.stderr);
    let r = runs_cmd(&runs, &["list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("no runs under"), "{}", r.stdout);
}
