//! Gaussian mixtures against scikit-learn (fixtures/gmm_reference.json, made by
//! fixtures/make_gmm_fixture.py): from the same initial labels, the same labels,
//! iterations and convergence, and the log-likelihood within 1e-6.

use segflow_ml::gmm::{fit, Covariance, GmmInit, GmmParams};

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gmm_reference.json"
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

#[test]
fn same_initial_labels_give_sklearns_mixture() {
    let r = reference();
    let d = r["d"].as_u64().unwrap() as usize;
    let data = floats(&r["data"]);
    let mut worst_ll = 0.0f64;
    let mut worst_param = 0.0f64;
    for case in r["cases"].as_array().unwrap() {
        let k = case["k"].as_u64().unwrap() as usize;
        let cov = match case["covariance"].as_str().unwrap() {
            "full" => Covariance::Full,
            _ => Covariance::Diag,
        };
        let what = format!("k={k} {}", cov.name());
        let p = GmmParams::new(k)
            .covariance(cov)
            .init(GmmInit::Labels(ints(&case["init_labels"])));
        let m = fit(&data, d, &p).unwrap();
        assert_eq!(m.labels, ints(&case["labels"]), "{what}: labels");
        assert_eq!(
            m.n_iter as u64,
            case["n_iter"].as_u64().unwrap(),
            "{what}: n_iter"
        );
        assert_eq!(
            m.converged,
            case["converged"].as_bool().unwrap(),
            "{what}: converged"
        );
        for (ours, key) in [
            (m.lower_bound, "lower_bound"),
            (m.mean_log_likelihood, "score"),
            (m.bic(), "bic"),
            (m.aic(), "aic"),
        ] {
            let theirs = case[key].as_f64().unwrap();
            let rel = (ours - theirs).abs() / theirs.abs().max(1.0);
            worst_ll = worst_ll.max(rel);
            assert!(rel < 1e-6, "{what}: {key} {ours} vs {theirs}");
        }
        for (ours, key) in [
            (&m.weights, "weights"),
            (&m.means, "means"),
            (&m.covariances, "covariances"),
            (&m.probability, "probability"),
        ] {
            let theirs = floats(&case[key]);
            assert_eq!(ours.len(), theirs.len(), "{what}: {key}");
            for (a, b) in ours.iter().zip(&theirs) {
                let rel = (a - b).abs() / b.abs().max(1.0);
                worst_param = worst_param.max(rel);
                assert!(rel < 1e-6, "{what}: {key} {a} vs {b}");
            }
        }
    }
    println!(
        "worst relative difference: log-likelihood / BIC / AIC {worst_ll:e}, parameters and probabilities {worst_param:e}"
    );
}
