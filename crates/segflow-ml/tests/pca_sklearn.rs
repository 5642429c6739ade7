//! PCA against scikit-learn's `PCA(n_components=2)` and numpy's weighted covariance
//! (fixtures/pca_reference.json, made by fixtures/make_pca_fixture.py). Components are
//! compared up to a per-component sign; a component without variance (the second of two
//! points) has no defined direction, so only its variance, coordinates, unit length and
//! orthogonality are checked.

use segflow_ml::pca::{fit, Pca, PcaParams};

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/pca_reference.json"
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

fn near(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-9 * scale.max(1.0)
}

/// Compare a fit with reference components, variances and coordinates up to sign.
fn compare(name: &str, p: &Pca, r: &serde_json::Value, k: usize, d: usize) {
    let comps = floats(&r["components"]);
    let ev = floats(&r["explained_variance"]);
    let ratio = floats(&r["explained_variance_ratio"]);
    let coords = floats(&r["coordinates"]);
    let total: f64 = p.total_variance;
    let coord_scale = coords.iter().fold(0.0f64, |m, c| m.max(c.abs()));
    for c in 0..2 {
        assert!(
            near(p.explained_variance[c], ev[c], ev[0]),
            "{name} PC{}: variance {} vs {}",
            c + 1,
            p.explained_variance[c],
            ev[c]
        );
        assert!(
            near(p.explained_variance_ratio[c], ratio[c], 1.0),
            "{name} PC{}: ratio {} vs {}",
            c + 1,
            p.explained_variance_ratio[c],
            ratio[c]
        );
        let mine = p.component(c);
        let norm: f64 = mine.iter().map(|a| a * a).sum();
        assert!(near(norm, 1.0, 1.0), "{name} PC{}: norm {norm}", c + 1);
        if ev[c] <= 1e-9 * total.max(1.0) {
            // No direction to compare: the points have no spread along it.
            let dot: f64 = mine.iter().zip(p.component(0)).map(|(a, b)| a * b).sum();
            assert!(c == 0 || dot.abs() < 1e-9, "{name}: PC2 not orthogonal");
            for i in 0..k {
                assert!(p.coordinates[i * 2 + c].abs() < 1e-9, "{name}: coordinate");
            }
            continue;
        }
        let theirs = &comps[c * d..(c + 1) * d];
        let dot: f64 = mine.iter().zip(theirs).map(|(a, b)| a * b).sum();
        let sign = dot.signum();
        for j in 0..d {
            assert!(
                near(mine[j], sign * theirs[j], 1.0),
                "{name} PC{} loading {j}: {} vs {}",
                c + 1,
                mine[j],
                sign * theirs[j]
            );
        }
        for i in 0..k {
            assert!(
                near(
                    p.coordinates[i * 2 + c],
                    sign * coords[i * 2 + c],
                    coord_scale
                ),
                "{name} PC{} point {i}: {} vs {}",
                c + 1,
                p.coordinates[i * 2 + c],
                sign * coords[i * 2 + c]
            );
        }
    }
}

/// The sign convention: the largest |loading| of every component is positive.
fn check_signs(name: &str, p: &Pca) {
    for c in 0..p.n_components {
        let comp = p.component(c);
        let big = comp
            .iter()
            .copied()
            .fold(0.0f64, |m, a| if a.abs() > m.abs() { a } else { m });
        assert!(big > 0.0, "{name} PC{}: {comp:?}", c + 1);
    }
}

#[test]
fn unweighted_pca_matches_sklearn_up_to_sign() {
    let r = reference();
    let cases = r["cases"].as_array().unwrap();
    assert!(cases.len() >= 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (k, d) = (
            case["k"].as_u64().unwrap() as usize,
            case["d"].as_u64().unwrap() as usize,
        );
        let data = floats(&case["data"]);
        let p = fit(&data, d, &PcaParams::new(2)).unwrap();
        assert_eq!(p.coordinates.len(), k * 2);
        compare(name, &p, &case["sklearn"], k, d);
        check_signs(name, &p);
    }
}

#[test]
fn weighted_pca_matches_numpys_weighted_covariance() {
    let r = reference();
    let w = &r["weighted"];
    let (k, d) = (
        w["k"].as_u64().unwrap() as usize,
        w["d"].as_u64().unwrap() as usize,
    );
    let p = fit(
        &floats(&w["data"]),
        d,
        &PcaParams::new(2).weights(floats(&w["weights"])),
    )
    .unwrap();
    for (a, b) in p.mean.iter().zip(floats(&w["reference"]["mean"])) {
        assert!(near(*a, b, b.abs()), "mean {a} vs {b}");
    }
    compare("weighted", &p, &w["reference"], k, d);
}

#[test]
fn the_map_fixtures_match_too() {
    let r = reference();
    for m in r["map"].as_array().unwrap() {
        let z: Vec<f64> = m["z"].as_array().unwrap().iter().flat_map(floats).collect();
        let k = m["customers"].as_array().unwrap().len();
        let d = z.len() / k;
        let p = fit(&z, d, &PcaParams::new(2)).unwrap();
        compare("map", &p, &m["sklearn"], k, d);
        let w = floats(&m["customers"]);
        let p = fit(&z, d, &PcaParams::new(2).weights(w)).unwrap();
        compare("map weighted", &p, &m["weighted"], k, d);
    }
}
