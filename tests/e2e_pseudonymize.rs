//! `pseudonymize` (and `encode` after it) through the real `segflow` binary on a table
//! of personal data (`tests/fixtures/pii_customers.csv`): no original value of a
//! hashed, dropped or generalised column, and never the key, appears in any file of the
//! run directory (Parquet outputs read back cell by cell and as raw bytes,
//! `manifest.json`, `facts.json`) or in anything the CLI prints — also at debug and
//! trace log levels and with JSON logs. Pseudonyms are stable for a key, so two runs
//! join; another key gives other pseudonyms.
//!
//! The collect step reads the raw PII with `persist: false`, so its output never
//! reaches the run directory. A control run with `persist: true` checks that the
//! scanner does find PII in the raw copy it then writes.

mod common;
use common::*;

use arrow::array::Array;
use arrow::util::display::array_value_to_string;
use std::path::{Path, PathBuf};

const KEY: &str = "e2e-pseudo-key-7f3c9a1d5b2e8f40";
const OTHER_KEY: &str = "e2e-another-key-0c4d2b8e6a1f9735";
const SHORT_KEY: &str = "sh0rt-k3y";

/// Values of the hashed, dropped and generalised columns of the fixture, distinctive
/// enough to search for as substrings.
const PII: &[&str] = &[
    // email (hashed)
    "ada.lovelace@example.com",
    "grace.hopper@example.org",
    "alan.turing@example.net",
    "katherine.johnson@example.com",
    "edsger.dijkstra@example.org",
    "barbara.liskov@example.com",
    "lovelace",
    "@example",
    // name (dropped)
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Katherine Johnson",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Margaret Hamilton",
    "Hamilton",
    // phone (dropped)
    "+44 20 7946 0101",
    "7946 0101",
    "496 0202",
    "2018 0606",
    // postcode (generalised to 3 characters)
    "SW1A 1AA",
    "SW1A",
    "M1 1AE",
    "BS1 4DJ",
    "EH1 1YZ",
    "CB2 1TN",
    "CF10 1EP",
    "LS1 4AP",
    // signup (generalised to year-month)
    "2023-04-12",
    "2022-11-03",
    "2024-01-27",
    "2021-06-30",
    "2024-08-15",
    "2023-02-09",
    "2024-05-02",
];

/// Customer ids (hashed): short numbers, so checked as whole cell values only.
const IDS: &[&str] = &["1001", "1002", "1003", "1004", "1005", "1006", "1007"];
/// Exact ages (generalised to bands): whole cell values only.
const AGES: &[&str] = &["36", "85", "41", "101", "72", "88"];

const PIPELINE: &str = r#"
name: e2e_pseudonymize
steps:
  - id: customers
    stage: collect
    plugin: csv
    persist: false
    with:
      path: tests/fixtures/pii_customers.csv
      columns: { customer_id: int64, email: utf8, name: utf8, phone: utf8, age: int64, postcode: utf8, signup: date, channel: utf8 }
  - id: pseudo
    stage: clean
    plugin: pseudonymize
    needs: [customers]
    with:
      key_env: SEGFLOW_E2E_PSEUDO_KEY
      hash: [customer_id, email]
      drop: [name, phone]
      generalise:
        age: { band: 10, top: 90 }
        postcode: { prefix: 3 }
        signup: { date: month }
  - id: encoded
    stage: clean
    plugin: encode
    needs: [pseudo]
    with:
      columns:
        channel: { method: one_hot, categories: [web, store, app] }
        age: { method: ordinal, order: frequency, keep_original: true }
"#;

const KEY_VAR: &str = "SEGFLOW_E2E_PSEUDO_KEY";

fn pipeline(dir: &Path) -> PathBuf {
    let p = dir.join("pseudo.yaml");
    std::fs::write(&p, PIPELINE).unwrap();
    p
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every cell of a Parquet file as text, with the column names.
fn parquet_cells(p: &Path) -> Vec<String> {
    let mut cells = Vec::new();
    for b in parquet_batches(p) {
        for (f, c) in b.schema().fields().iter().zip(b.columns()) {
            cells.push(f.name().clone());
            for i in 0..c.len() {
                if c.is_valid(i) {
                    cells.push(array_value_to_string(c, i).unwrap());
                }
            }
        }
    }
    cells
}

/// Where `needle` shows up in `text`, for the failure message.
fn hits<'a>(text: &str, needles: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    needles.into_iter().filter(|n| text.contains(n)).collect()
}

/// Scan a run directory: no PII or key anywhere, and no output of the raw collect step
/// (`persist: false`). Returns the number of files scanned.
fn assert_run_dir_clean(dir: &Path) -> usize {
    assert!(
        !dir.join("steps/customers/main.parquet").exists(),
        "persist: false keeps the raw input out of the run directory"
    );
    let manifest = read_json(&dir.join("manifest.json"));
    let raw = manifest["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "customers")
        .unwrap();
    assert_eq!(raw["persisted"], false);
    assert_eq!(raw["rows"]["main"], 8, "rows are still counted");
    let mut scanned = 0;
    for f in files(dir) {
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let cells = if f.extension().is_some_and(|e| e == "parquet") {
            parquet_cells(&f)
        } else {
            Vec::new()
        };
        let joined = cells.join("\n");
        scanned += 1;
        let found = hits(&text, PII.iter().copied().chain([KEY, OTHER_KEY]));
        assert!(
            found.is_empty(),
            "{}: raw bytes contain {found:?}",
            f.display()
        );
        let found = hits(&joined, PII.iter().copied().chain([KEY, OTHER_KEY]));
        assert!(found.is_empty(), "{}: cells contain {found:?}", f.display());
        for c in &cells {
            assert!(
                !IDS.contains(&c.as_str()) && !AGES.contains(&c.as_str()),
                "{}: a cell holds the original value {c}",
                f.display()
            );
        }
    }
    scanned
}

/// Positive control: with `persist: true` the collect step writes the raw input, and
/// the scanner's checks find the PII in it.
#[test]
fn the_scanner_finds_pii_in_a_persisted_raw_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("persisted.yaml");
    std::fs::write(&yaml, PIPELINE.replace("persist: false", "persist: true")).unwrap();
    let out = tmp.path().join("run");
    let r = run(segflow()
        .env(KEY_VAR, KEY)
        .arg("run")
        .arg(&yaml)
        .arg("--out")
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let raw = out.join("steps/customers/main.parquet");
    let cells = parquet_cells(&raw);
    assert!(hits(&cells.join("\n"), PII.iter().copied()).len() >= PII.len() - 1);
    assert!(IDS.iter().all(|id| cells.iter().any(|c| c == id)));
    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(manifest["steps"][0]["persisted"], true);
}

fn assert_printed_clean(what: &str, r: &Run) {
    for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        let found = hits(text, PII.iter().copied().chain([KEY, OTHER_KEY, SHORT_KEY]));
        assert!(
            found.is_empty(),
            "{what} {stream} contains {found:?}:\n{text}"
        );
    }
}

fn column(path: &Path, name: &str) -> Vec<Option<String>> {
    let mut v = Vec::new();
    for b in parquet_batches(path) {
        let c = b.column_by_name(name).unwrap();
        for i in 0..c.len() {
            v.push(c.is_valid(i).then(|| array_value_to_string(c, i).unwrap()));
        }
    }
    v
}

#[test]
fn no_pii_or_key_in_any_output_log_or_report() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = pipeline(tmp.path());

    let r = run(segflow().env(KEY_VAR, KEY).arg("validate").arg(&yaml));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_printed_clean("validate", &r);
    for format in ["text", "json"] {
        let r = run(segflow()
            .env(KEY_VAR, KEY)
            .args(["plan", "--format", format])
            .arg(&yaml));
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_printed_clean("plan", &r);
    }

    // Text logs at trace level, JSON logs at debug level.
    let mut runs = Vec::new();
    for (i, (level, format)) in [("trace", "text"), ("debug", "json")].iter().enumerate() {
        let out = tmp.path().join(format!("run_{i}"));
        let r = run(segflow()
            .env(KEY_VAR, KEY)
            .env("SEGFLOW_LOG", level)
            .args(["--log-format", format, "run"])
            .arg(&yaml)
            .arg("--out")
            .arg(&out));
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stderr.contains("pseudonymising 2 column(s)"),
            "the component's debug log is forwarded:\n{}",
            r.stderr
        );
        assert_printed_clean(&format!("run at {level}"), &r);
        assert!(
            assert_run_dir_clean(&out) >= 6,
            "manifest, facts and parquet files"
        );
        runs.push(out);
    }

    // The outputs: pseudonyms are 64 lowercase hex characters, stable across runs.
    let main = |d: &PathBuf| d.join("steps/pseudo/main.parquet");
    let ids = column(&main(&runs[0]), "customer_id");
    assert_eq!(ids.len(), 8);
    for id in ids.iter().flatten() {
        assert_eq!(id.len(), 64);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }
    assert_eq!(ids[0], ids[6], "customer 1001 twice, one pseudonym");
    assert_eq!(ids, column(&main(&runs[1]), "customer_id"));
    assert_eq!(
        column(&main(&runs[0]), "email"),
        column(&main(&runs[1]), "email")
    );
    assert_eq!(
        column(&main(&runs[0]), "postcode")[0].as_deref(),
        Some("SW1")
    );
    assert_eq!(column(&main(&runs[0]), "age")[3].as_deref(), Some("90+"));
    let schema: Vec<String> = parquet_batches(&main(&runs[0]))[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        schema,
        [
            "customer_id",
            "email",
            "age",
            "postcode",
            "signup",
            "channel"
        ]
    );
    assert!(!runs[0].join("steps/pseudo/quarantine.parquet").exists());

    // Facts: what was done, with counts, and a key id; the same for both runs.
    let facts = read_json(&runs[0].join("steps/pseudo/facts.json"));
    assert_eq!(facts["hashed"]["email"]["values"], 7);
    assert_eq!(facts["hashed"]["email"]["nulls"], 1);
    assert_eq!(facts["dropped"], serde_json::json!(["name", "phone"]));
    assert_eq!(facts["generalised"]["age"]["nulls"], 1);
    assert_eq!(facts["pseudonyms"]["key_env"], KEY_VAR);
    let key_id = facts["pseudonyms"]["key_id"].clone();
    assert_eq!(
        read_json(&runs[1].join("steps/pseudo/facts.json"))["pseudonyms"]["key_id"],
        key_id
    );

    // Another key: other pseudonyms and key id, still nothing leaked.
    let out = tmp.path().join("other_key");
    let r = run(segflow()
        .env(KEY_VAR, OTHER_KEY)
        .arg("run")
        .arg(&yaml)
        .arg("--out")
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_printed_clean("run with another key", &r);
    assert_run_dir_clean(&out);
    let other = column(&main(&out), "customer_id");
    assert!(ids.iter().zip(&other).all(|(a, b)| a != b));
    assert_ne!(
        read_json(&out.join("steps/pseudo/facts.json"))["pseudonyms"]["key_id"],
        key_id
    );
}

#[test]
fn a_missing_or_short_key_is_a_clear_error_that_never_prints_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = pipeline(tmp.path());
    // `validate` exits 2 (invalid pipeline); `run` exits 1, as for any step that refuses
    // its config at plan time.
    for (cmd, code) in [("validate", 2), ("run", 1)] {
        let args = |c: &mut std::process::Command| {
            c.arg(cmd).arg(&yaml);
            if cmd == "run" {
                c.arg("--out").arg(tmp.path().join("out"));
            }
        };
        let mut c = segflow();
        c.env_remove(KEY_VAR);
        args(&mut c);
        let r = run(&mut c);
        assert_eq!(r.code, code, "{cmd}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("environment variable `SEGFLOW_E2E_PSEUDO_KEY` is not set"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("key_env"), "{}", r.stderr);

        let mut c = segflow();
        c.env(KEY_VAR, SHORT_KEY).env("SEGFLOW_LOG", "trace");
        args(&mut c);
        let r = run(&mut c);
        assert_eq!(r.code, code, "{cmd}: {}", r.stderr);
        assert!(
            r.stderr.contains(
                "the key in environment variable `SEGFLOW_E2E_PSEUDO_KEY` is too short: it \
                 needs at least 16 bytes"
            ),
            "{}",
            r.stderr
        );
        assert_printed_clean(&format!("{cmd} with a short key"), &r);
    }
}

#[test]
fn a_bad_value_fails_the_step_naming_the_row_not_the_value() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("bad.csv");
    std::fs::write(
        &csv,
        "id,email,signup\n1,ada.lovelace@example.com,2024-01-01\n2,grace.hopper@example.org,Grace Hopper's birthday\n",
    )
    .unwrap();
    let yaml = tmp.path().join("bad.yaml");
    std::fs::write(
        &yaml,
        format!(
            "name: bad\nsteps:\n  - id: customers\n    stage: collect\n    plugin: csv\n    with: {{ path: {}, columns: {{ id: int64, email: utf8, signup: utf8 }} }}\n  - id: pseudo\n    stage: clean\n    plugin: pseudonymize\n    needs: [customers]\n    with: {{ key_env: {KEY_VAR}, hash: [email], generalise: {{ signup: {{ date: year }} }} }}\n",
            csv.display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let r = run(segflow()
        .env(KEY_VAR, KEY)
        .env("SEGFLOW_LOG", "trace")
        .arg("run")
        .arg(&yaml)
        .arg("--out")
        .arg(&out));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("generalising column `signup` (date): input row 1: not a date"),
        "{}",
        r.stderr
    );
    assert_printed_clean("a failing run", &r);
    assert!(!r.stderr.contains("birthday"), "{}", r.stderr);
    for f in files(&out) {
        if f.starts_with(out.join("steps/customers")) {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert!(
            hits(&text, PII.iter().copied().chain(["birthday", KEY])).is_empty(),
            "{}",
            f.display()
        );
    }
}
