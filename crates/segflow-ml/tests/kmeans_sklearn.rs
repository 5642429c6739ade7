//! k-means against scikit-learn (fixtures/kmeans_reference.json, made by
//! fixtures/make_kmeans_fixture.py).

use segflow_ml::kmeans::{fit, Algorithm, Init, KMeansParams};

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kmeans_reference.json"
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

/// Every iteration (Lloyd, and the bounded Hamerly and Elkan, which must give Lloyd's
/// result) from scikit-learn's starting centres.
#[test]
fn same_initial_centres_give_sklearns_labels_and_inertia() {
    let r = reference();
    let d = r["d"].as_u64().unwrap() as usize;
    let data = floats(&r["data"]);
    let algorithms = [
        Algorithm::Lloyd,
        Algorithm::Hamerly,
        Algorithm::Elkan,
        Algorithm::Auto,
    ];
    for (case, algorithm) in r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| algorithms.map(|a| (c, a)))
    {
        let k = case["k"].as_u64().unwrap() as usize;
        let p = KMeansParams::new(k)
            .init(Init::Given(floats(&case["init"])))
            .tol(1e-4)
            .max_iter(300)
            .algorithm(algorithm);
        let m = fit(&data, d, &p).unwrap();
        let want: Vec<u32> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(m.labels, want, "k={k} {algorithm:?}");
        let inertia = case["inertia"].as_f64().unwrap();
        assert!(
            ((m.inertia - inertia) / inertia).abs() < 1e-9,
            "k={k} {algorithm:?}: {} vs {inertia}",
            m.inertia
        );
        assert_eq!(
            m.n_iter as u64,
            case["n_iter"].as_u64().unwrap(),
            "k={k} {algorithm:?}"
        );
        for (a, b) in m.centroids.iter().zip(floats(&case["centroids"])) {
            assert!(
                (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                "k={k} {algorithm:?}: centre {a} vs {b}"
            );
        }
    }
}

#[test]
fn kmeanspp_best_of_10_is_at_least_as_good_as_sklearns() {
    let r = reference();
    let d = r["d"].as_u64().unwrap() as usize;
    let data = floats(&r["data"]);
    for case in r["cases"].as_array().unwrap() {
        let k = case["k"].as_u64().unwrap() as usize;
        let m = fit(&data, d, &KMeansParams::new(k).n_init(10).seed(0)).unwrap();
        let theirs = case["best_of_10_kmeanspp_inertia"].as_f64().unwrap();
        assert!(
            m.inertia <= theirs * 1.001,
            "k={k}: ours {} vs scikit-learn {theirs}",
            m.inertia
        );
    }
}
