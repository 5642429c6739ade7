//! The bad-input corpus: every pipeline under tests/bad/ must be rejected by
//! `segflow validate` with exit code 2, a message naming what is wrong and where
//! (`FILE:LINE:COLUMN`), and never a panic. Expectations live in tests/bad/cases.json.

mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn every_bad_pipeline_is_rejected_with_its_message() {
    let dir = repo_root().join("tests/bad");
    let cases = read_json(&dir.join("cases.json"));
    let cases = cases.as_object().unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "the corpus has {} pipelines; keep at least 30",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let Some(case) = cases.get(f) else {
            failures.push(format!("{f}: no entry in cases.json"));
            continue;
        };
        let t = Instant::now();
        let r = run(segflow().arg("validate").arg(format!("tests/bad/{f}")));
        let took = t.elapsed();
        if r.code != 2 {
            failures.push(format!("{f}: exit {} (expected 2)\n{}", r.code, r.stderr));
            continue;
        }
        for needle in case["contains"].as_array().unwrap() {
            let needle = needle.as_str().unwrap();
            if !r.stderr.contains(needle) {
                failures.push(format!("{f}: stderr lacks {needle:?}\n{}", r.stderr));
            }
        }
        if let Some(loc) = case.get("location").and_then(|l| l.as_str()) {
            let want = format!("tests/bad/{f}:{loc}");
            if !r.stderr.contains(&want) {
                failures.push(format!(
                    "{f}: stderr lacks the location {want}\n{}",
                    r.stderr
                ));
            }
        }
        if took > Duration::from_secs(case.get("seconds").and_then(|s| s.as_u64()).unwrap_or(5)) {
            failures.push(format!("{f}: took {took:?}"));
        }
    }
    for k in cases.keys() {
        if !files.contains(k) {
            failures.push(format!("cases.json names {k}, which is not in tests/bad/"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn a_missing_pipeline_file_is_a_usage_error() {
    let r = run(segflow().args(["validate", "tests/bad/does-not-exist.yaml"]));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot read pipeline file"),
        "{}",
        r.stderr
    );
    let r = run(segflow().args(["validate", "tests/bad"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
}

#[test]
fn bad_set_overrides_are_usage_errors() {
    let r = run(segflow().args(["validate", "pipelines/quickstart.yaml", "--set", "nonsense"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("STEP.KEY=VALUE"), "{}", r.stderr);
    let r = run(segflow().args([
        "validate",
        "pipelines/quickstart.yaml",
        "--set",
        "ordrs.customers=5",
    ]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("did you mean `orders`"), "{}", r.stderr);
    let r = run(segflow().args([
        "validate",
        "pipelines/quickstart.yaml",
        "--set",
        "orders.customers=lots",
    ]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("customers"), "{}", r.stderr);
}

#[test]
fn unknown_cli_usage_exits_2() {
    let r = run(segflow().args(["frobnicate"]));
    assert_eq!(r.code, 2);
    let r = run(segflow().args(["run"]));
    assert_eq!(r.code, 2);
}

#[test]
fn json_log_format_reports_diagnostics_as_json() {
    let r = run(segflow().args([
        "--log-format",
        "json",
        "validate",
        "tests/bad/unknown_step_key.yaml",
    ]));
    assert_eq!(r.code, 2);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("unknown-key"))
        .expect("a JSON diagnostic");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["location"], "tests/bad/unknown_step_key.yaml:5:5");
    assert!(v["help"]
        .as_str()
        .unwrap()
        .contains("did you mean `plugin`"));
}
