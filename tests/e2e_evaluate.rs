//! The evaluate stage through the real `segflow` binary: `pipelines/cdnow_clv.yaml` goes
//! from the raw CDNOW sample to BG/NBD and Gamma-Gamma parameters that match the
//! published ones (Fader, Hardie & Lee 2005) to three significant digits; the quickstart
//! ends in a `report.html`, and a second run compared with the first (`drift`) finds
//! every customer where it was.

mod common;
use common::*;

/// Three significant digits.
fn sig3(x: f64) -> f64 {
    let e = x.abs().log10().floor() as i32 - 2;
    (x / 10f64.powi(e)).round() * 10f64.powi(e)
}

#[test]
fn cdnow_clv_matches_the_published_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let r = run(segflow()
        .args(["run", "pipelines/cdnow_clv.yaml", "--out"])
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let facts = read_json(&out.join("steps/clv/facts.json"));
    let published = [
        ("bgnbd", "r", 0.243),
        ("bgnbd", "alpha", 4.41),
        ("bgnbd", "a", 0.793),
        ("bgnbd", "b", 2.43),
        ("gamma_gamma", "p", 6.25),
        ("gamma_gamma", "q", 3.74),
        ("gamma_gamma", "v", 15.4),
    ];
    for (model, p, want) in published {
        let got = facts[model][p].as_f64().unwrap();
        assert_eq!(sig3(got), want, "{model}.{p} = {got}");
    }
    // the raw file's 6,919 transactions of 2,357 customers, none lost
    let manifest = read_json(&out.join("manifest.json"));
    let steps = manifest["steps"].as_array().unwrap();
    let rows = |id: &str, port: &str| {
        steps.iter().find(|s| s["id"] == id).unwrap()["rows"][port]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows("orders", "main"), 6919);
    assert_eq!(rows("features", "main"), 2357);
    assert_eq!(rows("features", "quarantine"), 0);
    assert_eq!(rows("clv", "customers"), 2357);
}

#[test]
fn quickstart_ends_in_a_report_and_a_rerun_shows_no_drift() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    let r = run(segflow()
        .args(["run", "pipelines/quickstart.yaml", "--out"])
        .arg(&first));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let html = std::fs::read_to_string(first.join("report.html")).unwrap();
    for heading in [
        "Pipeline",
        "Segment sizes",
        "Profile heatmap",
        "RFM grid",
        "Positioning map",
        "Customer lifetime value by segment",
        "Validity and stability",
        "Persona",
        "Playbook",
    ] {
        assert!(html.contains(heading), "the report lacks {heading:?}");
    }
    assert!(!html.contains("http://") && !html.contains("https://"));

    // the same data again, compared with the first run: everyone stayed
    let second = tmp.path().join("second");
    let r = run(segflow()
        .args(["run", "pipelines/quickstart.yaml", "--out"])
        .arg(&second)
        .arg("--set")
        .arg(format!("drift.previous={}", first.display())));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = parquet_table(&second.join("steps/drift/migration.parquet"));
    let from = str_column(&m, "from_segment");
    let to = str_column(&m, "to_segment");
    let n = f64_column(&m, "customers");
    let mut stayed = 0.0;
    for i in 0..m.num_rows() {
        if from[i] == to[i] {
            stayed += n[i].unwrap();
        } else {
            assert_eq!(n[i], Some(0.0), "{:?} -> {:?}", from[i], to[i]);
        }
    }
    assert_eq!(stayed, 20000.0);
    let psi = f64_column(
        &parquet_table(&second.join("steps/drift/features.parquet")),
        "psi",
    );
    assert!(psi.iter().all(|p| p.unwrap().abs() < 1e-12), "{psi:?}");
}
