//! Hierarchical clustering against scipy and scikit-learn
//! (fixtures/hierarchical_reference.json, made by
//! fixtures/make_hierarchical_fixture.py): the same linkage matrix as
//! `scipy.cluster.hierarchy.linkage` (node ids and sizes exactly, distances to 1e-9
//! relative; bit for bit on the integer data set, whose many ties exercise the tie
//! rule), and the same partitions as `sklearn.cluster.AgglomerativeClustering` by `k`
//! and by `distance_threshold` (adjusted Rand index 1, the labels a permutation).
//!
//! The timing test is ignored; run it by hand:
//!
//! ```sh
//! cargo test --release -p segflow-ml --test hierarchical_scipy -- --ignored --nocapture
//! ```

use segflow_ml::hierarchical::{cut, cut_k, fit, linkage, Cut, HierarchicalParams, Linkage};
use std::collections::HashMap;

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/hierarchical_reference.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A float written by the fixture as its Python `repr` (exact, unlike serde_json's
/// default number parser).
fn float(v: &serde_json::Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(float).collect()
}

fn ints(v: &serde_json::Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn method(name: &str) -> Linkage {
    match name {
        "ward" => Linkage::Ward,
        "average" => Linkage::Average,
        "complete" => Linkage::Complete,
        other => panic!("unknown linkage {other}"),
    }
}

/// The labels are a relabelling of each other (a bijection between the label sets).
fn same_partition(ours: &[u32], theirs: &[i64]) -> bool {
    let mut fwd = HashMap::new();
    let mut back = HashMap::new();
    ours.iter()
        .zip(theirs)
        .all(|(&a, &b)| *fwd.entry(a).or_insert(b) == b && *back.entry(b).or_insert(a) == a)
}

#[test]
fn same_tree_as_scipy_and_same_clusters_as_sklearn() {
    let r = reference();
    let mut worst = 0.0f64;
    let mut not_bitwise = 0;
    for ds in r["datasets"].as_array().unwrap() {
        let name = ds["name"].as_str().unwrap();
        let d = ds["d"].as_u64().unwrap() as usize;
        let data = floats(&ds["data"]);
        let n = data.len() / d;
        for case in ds["cases"].as_array().unwrap() {
            let lk = method(case["linkage"].as_str().unwrap());
            let what = format!("{name} {}", lk.name());
            let z = linkage(&data, d, lk).unwrap();
            let want = case["merges"].as_array().unwrap();
            assert_eq!(z.len(), want.len(), "{what}");
            for (j, (m, w)) in z.iter().zip(want).enumerate() {
                let w = w.as_array().unwrap();
                let (a, b, dist, size) = (
                    w[0].as_u64().unwrap() as usize,
                    w[1].as_u64().unwrap() as usize,
                    float(&w[2]),
                    w[3].as_u64().unwrap() as usize,
                );
                assert_eq!((m.a, m.b, m.size), (a, b, size), "{what}: merge {j}");
                let rel = (m.distance - dist).abs() / dist.abs().max(1e-300);
                if dist == 0.0 {
                    assert_eq!(m.distance, 0.0, "{what}: merge {j}");
                } else {
                    worst = worst.max(rel);
                    assert!(rel <= 1e-9, "{what}: merge {j}: {} vs {dist}", m.distance);
                }
                if m.distance.to_bits() != dist.to_bits() {
                    not_bitwise += 1;
                }
                if name == "grid" {
                    assert_eq!(m.distance.to_bits(), dist.to_bits(), "{what}: merge {j}");
                }
            }
            for c in case["by_k"].as_array().unwrap() {
                let k = c["k"].as_u64().unwrap() as usize;
                let (labels, nodes) = cut(&z, n, Cut::K(k)).unwrap();
                assert_eq!(nodes.len(), k);
                assert!(
                    same_partition(&labels, &ints(&c["labels"])),
                    "{what}: k = {k}"
                );
                // fit without sampling gives the same partition.
                let p = HierarchicalParams::new(lk, Cut::K(k)).unwrap();
                let m = fit(&data, d, &p).unwrap();
                assert_eq!(m.labels, labels, "{what}: fit, k = {k}");
                assert_eq!(m.merges, z);
            }
            for c in case["by_threshold"].as_array().unwrap() {
                let t = float(&c["threshold"]);
                let k = c["n_clusters"].as_u64().unwrap() as usize;
                assert_eq!(
                    cut_k(&z, n, Cut::Distance(t)).unwrap(),
                    k,
                    "{what}: t = {t}"
                );
                let (labels, _) = cut(&z, n, Cut::Distance(t)).unwrap();
                assert!(
                    same_partition(&labels, &ints(&c["labels"])),
                    "{what}: t = {t}"
                );
            }
        }
    }
    println!(
        "worst relative difference of merge distances: {worst:e}; {not_bitwise} not bit-identical"
    );
}

/// Time `linkage` for each method at a few sizes (8 features of overlapping blobs).
#[test]
#[ignore]
fn timing() {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    let sizes: Vec<usize> = std::env::var("HIER_SPEED_ROWS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| vec![2_000, 5_000, 10_000]);
    let d = 8;
    for n in sizes {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x: Vec<f64> = (0..n * d)
            .map(|i| ((i / d) % 5) as f64 * 3.0 + rng.random::<f64>() * 4.0)
            .collect();
        for lk in [Linkage::Ward, Linkage::Average, Linkage::Complete] {
            let t = std::time::Instant::now();
            let z = linkage(&x, d, lk).unwrap();
            println!(
                "n = {n}, d = {d}, {}: {:.3} s ({} merges)",
                lk.name(),
                t.elapsed().as_secs_f64(),
                z.len()
            );
        }
    }
}
