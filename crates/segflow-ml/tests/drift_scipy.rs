//! PSI and the two-sample KS statistic against numpy / scipy
//! (fixtures/drift_reference.json, made by fixtures/make_drift_fixture.py): the quantile
//! cut points, the bin shares, the PSI and `scipy.stats.ks_2samp(...).statistic`.

use segflow_ml::drift::{compare, ks_statistic, psi, PsiParams};

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/drift_reference.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn values(v: &serde_json::Value) -> Vec<Option<f64>> {
    v.as_array().unwrap().iter().map(|x| x.as_f64()).collect()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn close(what: &str, ours: f64, theirs: f64) {
    let d = (ours - theirs).abs() / theirs.abs().max(1.0);
    assert!(d <= 1e-12, "{what}: ours {ours} vs numpy/scipy {theirs}");
}

#[test]
fn psi_and_ks_match_numpy_and_scipy() {
    let r = reference();
    assert_eq!(
        r["epsilon"].as_f64().unwrap(),
        segflow_ml::drift::PSI_EPSILON
    );
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let prev = values(&case["previous"]);
        let cur = values(&case["current"]);
        let bins = case["bins"].as_u64().unwrap() as usize;
        let p = psi(&prev, &cur, &PsiParams::new(bins).unwrap()).unwrap();
        let edges = floats(&case["edges"]);
        assert_eq!(p.edges.len(), edges.len(), "{name}: number of cut points");
        for (i, (a, b)) in p.edges.iter().zip(&edges).enumerate() {
            close(&format!("{name} edge {i}"), *a, *b);
        }
        assert_eq!(p.null_bin, case["null_bin"].as_bool().unwrap(), "{name}");
        for (what, ours, theirs) in [
            ("expected", &p.expected, floats(&case["expected"])),
            ("actual", &p.actual, floats(&case["actual"])),
        ] {
            assert_eq!(ours.len(), theirs.len(), "{name} {what}");
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                close(&format!("{name} {what} share {i}"), *a, *b);
            }
        }
        close(&format!("{name} psi"), p.psi, case["psi"].as_f64().unwrap());
        let pv: Vec<f64> = prev.iter().flatten().copied().collect();
        let cv: Vec<f64> = cur.iter().flatten().copied().collect();
        let d = ks_statistic(&pv, &cv).unwrap();
        close(&format!("{name} ks"), d, case["ks"].as_f64().unwrap());
        // the one-pass comparison gives exactly the same numbers
        let c = compare(&prev, &cur, &PsiParams::new(bins).unwrap()).unwrap();
        assert_eq!(c.psi, p, "{name}: compare psi");
        assert_eq!(c.ks, Some(d), "{name}: compare ks");
    }
}

#[test]
fn identical_case_is_exactly_zero() {
    let r = reference();
    let case = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "identical")
        .unwrap();
    let v = values(&case["previous"]);
    let p = psi(&v, &v, &PsiParams::default()).unwrap();
    assert_eq!(p.psi, 0.0);
    let f: Vec<f64> = v.iter().flatten().copied().collect();
    assert_eq!(ks_statistic(&f, &f).unwrap(), 0.0);
}
