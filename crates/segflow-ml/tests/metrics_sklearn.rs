//! Cluster metrics against scikit-learn (fixtures/metrics_reference.json, made by
//! fixtures/make_metrics_fixture.py). Every value must agree to 1e-9 relative.

use segflow_ml::metrics::{
    adjusted_rand_index, calinski_harabasz, davies_bouldin, dispersion, normalized_mutual_info,
    silhouette_samples, silhouette_score, silhouette_score_subset,
};

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/metrics_reference.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn ints(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Relative difference (scaled by at least 1e-3, for values near 0).
fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-3)
}

fn close(what: &str, ours: f64, theirs: f64, worst: &mut f64) {
    let r = rel(ours, theirs);
    *worst = worst.max(r);
    assert!(
        r <= 1e-9,
        "{what}: ours {ours} vs scikit-learn {theirs} (rel {r:e})"
    );
}

#[test]
fn internal_metrics_match_sklearn() {
    let r = reference();
    let d = r["d"].as_u64().unwrap() as usize;
    let x = floats(&r["data"]);
    let mut worst = 0.0f64;
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let l = ints(&case["labels"]);
        close(
            &format!("{name} silhouette"),
            silhouette_score(&x, d, &l).unwrap(),
            case["silhouette"].as_f64().unwrap(),
            &mut worst,
        );
        let samples = silhouette_samples(&x, d, &l).unwrap();
        for (i, (a, b)) in samples
            .iter()
            .zip(floats(&case["silhouette_samples"]))
            .enumerate()
        {
            // Per-row values can be near 0: compare absolutely there.
            let r = (a - b).abs() / b.abs().max(1e-2);
            worst = worst.max(r);
            assert!(r <= 1e-9, "{name} silhouette row {i}: {a} vs {b}");
        }
        let idx: Vec<usize> = ints(&case["sample_indices"])
            .into_iter()
            .map(|i| i as usize)
            .collect();
        close(
            &format!("{name} sampled silhouette"),
            silhouette_score_subset(&x, d, &l, &idx).unwrap(),
            case["silhouette_sampled"].as_f64().unwrap(),
            &mut worst,
        );
        close(
            &format!("{name} calinski_harabasz"),
            calinski_harabasz(&x, d, &l).unwrap(),
            case["calinski_harabasz"].as_f64().unwrap(),
            &mut worst,
        );
        close(
            &format!("{name} davies_bouldin"),
            davies_bouldin(&x, d, &l).unwrap(),
            case["davies_bouldin"].as_f64().unwrap(),
            &mut worst,
        );
        let disp = dispersion(&x, d, &l).unwrap();
        close(
            &format!("{name} within"),
            disp.within,
            case["within"].as_f64().unwrap(),
            &mut worst,
        );
        close(
            &format!("{name} between"),
            disp.between,
            case["between"].as_f64().unwrap(),
            &mut worst,
        );
        close(
            &format!("{name} total"),
            disp.total,
            case["total"].as_f64().unwrap(),
            &mut worst,
        );
    }
    println!("internal metrics: worst relative difference {worst:e}");
}

#[test]
fn external_metrics_match_sklearn() {
    let r = reference();
    let mut worst = 0.0f64;
    for (i, p) in r["pairs"].as_array().unwrap().iter().enumerate() {
        let a = ints(&p["a"]);
        let b = ints(&p["b"]);
        close(
            &format!("pair {i} ari"),
            adjusted_rand_index(&a, &b).unwrap(),
            p["ari"].as_f64().unwrap(),
            &mut worst,
        );
        close(
            &format!("pair {i} nmi"),
            normalized_mutual_info(&a, &b).unwrap(),
            p["nmi"].as_f64().unwrap(),
            &mut worst,
        );
    }
    println!("external metrics: worst relative difference {worst:e}");
}
