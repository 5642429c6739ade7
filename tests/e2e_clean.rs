//! The clean-stage chain (validate -> dedup -> impute -> outliers) through the real
//! `segflow` binary on the dirty fixture: every step accounts for every row, and the
//! outlier fences match the numpy reference in `tests/fixtures/clean_chain_expected.json`.

mod common;
use common::*;

#[test]
fn clean_chain_accounts_for_every_row() {
    let out = tempfile::tempdir().unwrap();
    let r = run(segflow()
        .args(["run", "tests/pipelines/clean_chain.yaml", "--out"])
        .arg(out.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let manifest = read_json(&out.path().join("manifest.json"));
    let mut upstream_main: Option<i64> = None;
    for id in ["checked", "unique", "filled", "flagged"] {
        let dir = out.path().join("steps").join(id);
        let facts = read_json(&dir.join("facts.json"));
        let main = parquet_rows(&dir.join("main.parquet"));
        let quarantine = parquet_rows(&dir.join("quarantine.parquet"));
        let rows_in = facts["rows_in"].as_i64().unwrap();
        assert_eq!(rows_in, main + quarantine, "{id}");
        assert_eq!(facts["rows_out"].as_i64().unwrap(), main, "{id}");
        assert_eq!(
            facts["rows_quarantined"].as_i64().unwrap(),
            quarantine,
            "{id}"
        );
        if let Some(up) = upstream_main {
            assert_eq!(rows_in, up, "{id} reads its upstream's main");
        } else {
            assert_eq!(rows_in, 54);
        }
        upstream_main = Some(main);
        let step = manifest["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap();
        assert_eq!(step["status"], "succeeded", "{id}");
    }
    // The Latin-1 row and its UTF-8 twin decode to the same text.
    let raw = parquet_batches(&out.path().join("steps/raw/main.parquet"));
    let web_e: usize = raw
        .iter()
        .map(|b| {
            use arrow::array::AsArray;
            let c = b.column_by_name("channel").unwrap().as_string::<i32>();
            c.iter().filter(|v| *v == Some("wéb")).count()
        })
        .sum();
    assert_eq!(web_e, 2, "both encodings of `wéb` decode alike");
    let expected = read_json(&repo_root().join("tests/fixtures/clean_chain_expected.json"));
    let facts = read_json(&out.path().join("steps/flagged/facts.json"));
    let got = &facts["fences"]["amount"];
    let want = &expected["fences"]["iqr"];
    for k in ["lower", "upper"] {
        let (a, b) = (got[k].as_f64().unwrap(), want[k].as_f64().unwrap());
        assert!(
            (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
            "{k}: {a} vs {b}"
        );
    }
    assert_eq!(
        got["outliers"].as_u64().unwrap() as usize,
        want["outlier_rows"].as_array().unwrap().len()
    );
}

/// Every YAML snippet in docs/cleaning-recipes.md is a valid pipeline that runs.
#[test]
fn cleaning_recipes_validate_and_run() {
    let doc = std::fs::read_to_string(repo_root().join("docs/cleaning-recipes.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snippets: Vec<&str> = doc
        .split("```yaml\n")
        .skip(1)
        .map(|s| s.split("```").next().unwrap())
        .collect();
    assert!(snippets.len() >= 5);
    // The pseudonymize recipe reads its HMAC key from the environment, as in real use.
    let key = ("SEGFLOW_PSEUDO_KEY", "recipe-test-key-not-a-real-secret");
    for (i, yaml) in snippets.iter().enumerate() {
        let file = dir.path().join(format!("recipe_{i}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        let r = run(segflow().env(key.0, key.1).arg("validate").arg(&file));
        assert_eq!(r.code, 0, "snippet {i}:\n{yaml}\n{}", r.stderr);
        let out = dir.path().join(format!("out_{i}"));
        let r = run(segflow()
            .env(key.0, key.1)
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(&out));
        assert_eq!(r.code, 0, "snippet {i}:\n{yaml}\n{}", r.stderr);
    }
}

/// `quality` on the dirty fixture matches the pandas profile in
/// `tests/fixtures/quality_expected.json` (`make_quality_fixture.py`), passes every row
/// through, and `fail_below` turns a low score into a run-time error naming the column.
#[test]
fn quality_profile_matches_pandas() {
    let out = tempfile::tempdir().unwrap();
    let r = run(segflow()
        .args(["run", "tests/pipelines/quality.yaml", "--out"])
        .arg(out.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dir = out.path().join("steps/profiled");
    let facts = read_json(&dir.join("facts.json"));
    let want = read_json(&repo_root().join("tests/fixtures/quality_expected.json"));
    let rows = want["rows"].as_i64().unwrap();
    assert_eq!(parquet_rows(&dir.join("main.parquet")), rows);
    assert_eq!(parquet_rows(&dir.join("quarantine.parquet")), 0);
    assert_eq!(parquet_rows(&dir.join("profile.parquet")), 4);
    assert_eq!(facts["rows_in"].as_i64().unwrap(), rows);
    for (column, w) in want["columns"].as_object().unwrap() {
        let got = &facts["columns"][column];
        for k in ["missing", "distinct"] {
            assert_eq!(got[k], w[k], "{column} {k}");
        }
        assert_eq!(got["dominant_shape"], w["dominant_shape"], "{column}");
        for k in ["completeness", "validity", "uniqueness", "consistency"] {
            let (a, b) = (got[k].as_f64().unwrap(), w[k].as_f64().unwrap());
            assert!((a - b).abs() <= 1e-12, "{column} {k}: {a} vs {b}");
        }
    }

    let r = run(segflow()
        .args(["run", "tests/pipelines/quality.yaml", "--out"])
        .arg(out.path().join("gate"))
        .args(["--set", "profiled.fail_below={completeness: 0.95}"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("amount completeness 0.9259 < 0.95"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("customer_id completeness"),
        "{}",
        r.stderr
    );
}
