//! DBSCAN against scikit-learn (fixtures/dbscan_reference.json, made by
//! fixtures/make_dbscan_fixture.py): the same labels as
//! `DBSCAN(algorithm="kd_tree").labels_` — exactly, cluster numbers included — the same
//! core rows, and the same sorted k-distances as `NearestNeighbors.kneighbors`, bit for
//! bit, on continuous data and on an integer grid where many pairs are exactly `eps`
//! apart.
//!
//! The timing test is ignored; run it by hand:
//!
//! ```sh
//! cargo test --release -p segflow-ml --test dbscan_sklearn -- --ignored --nocapture
//! ```

use segflow_ml::dbscan::{fit, k_distances, DbscanParams};

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dbscan_reference.json"
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

#[test]
fn same_labels_core_rows_and_k_distances_as_sklearn() {
    let r = reference();
    for ds in r["datasets"].as_array().unwrap() {
        let name = ds["name"].as_str().unwrap();
        let d = ds["d"].as_u64().unwrap() as usize;
        let data = floats(&ds["data"]);
        let n = data.len() / d;
        for case in ds["cases"].as_array().unwrap() {
            let eps = float(&case["eps"]);
            let m = case["min_samples"].as_u64().unwrap() as usize;
            let what = format!("{name} eps={eps} min_samples={m}");
            let got = fit(&data, d, &DbscanParams::new(eps, m).unwrap()).unwrap();
            let labels: Vec<i64> = got.labels.iter().map(|&l| l as i64).collect();
            assert_eq!(labels, ints(&case["labels"]), "{what}: labels");
            let core: Vec<i64> = (0..n as i64).filter(|&i| got.core[i as usize]).collect();
            assert_eq!(core, ints(&case["core"]), "{what}: core rows");
            assert_eq!(
                got.n_clusters as u64,
                case["n_clusters"].as_u64().unwrap(),
                "{what}"
            );
            let kd = k_distances(&data, d, m, usize::MAX, 0).unwrap();
            let want = floats(&case["k_distances"]);
            assert_eq!(kd.sorted.len(), want.len());
            for (j, (a, b)) in kd.sorted.iter().zip(&want).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{what}: k-distance {j}: {a} vs {b}"
                );
            }
        }
    }
}

/// Uniform noise plus Gaussian-ish blobs in `d` dimensions.
fn blobs(n: usize, d: usize, seed: u64) -> Vec<f64> {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let groups = 8;
    let gauss = |rng: &mut ChaCha8Rng| -> f64 {
        let (a, b): (f64, f64) = (rng.random(), rng.random());
        (-2.0 * (1.0 - a).ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    };
    let centres: Vec<f64> = (0..groups * d).map(|_| 4.0 * gauss(&mut rng)).collect();
    let mut v = Vec::with_capacity(n * d);
    for i in 0..n {
        let g = rng.random_range(0..groups);
        for f in 0..d {
            v.push(if i % 20 == 0 {
                rng.random::<f64>() * 24.0 - 12.0
            } else {
                centres[g * d + f] + gauss(&mut rng)
            });
        }
    }
    v
}

/// Time DBSCAN and the k-distance curve. `DBSCAN_SPEED` = `n,d,eps,min_samples;...`.
#[test]
#[ignore]
fn timing() {
    let grid: Vec<(usize, usize, f64, usize)> = std::env::var("DBSCAN_SPEED")
        .ok()
        .map(|g| {
            g.split(';')
                .map(|c| {
                    let v: Vec<&str> = c.split(',').map(str::trim).collect();
                    (
                        v[0].parse().unwrap(),
                        v[1].parse().unwrap(),
                        v[2].parse().unwrap(),
                        v[3].parse().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_else(|| {
            vec![
                (100_000, 2, 0.1, 10),
                (100_000, 4, 0.4, 10),
                (100_000, 8, 1.2, 10),
                (1_000_000, 2, 0.05, 10),
            ]
        });
    for (n, d, eps, m) in grid {
        let x = blobs(n, d, 7);
        let t = std::time::Instant::now();
        let r = fit(&x, d, &DbscanParams::new(eps, m).unwrap()).unwrap();
        let fit_s = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let kd = k_distances(&x, d, m, 20_000, 0).unwrap();
        let kd_s = t.elapsed().as_secs_f64();
        println!(
            "n = {n}, d = {d}, eps = {eps}, min_samples = {m}: fit {fit_s:.3} s ({} clusters, {} noise, {} core); k-distance on 20k rows {kd_s:.3} s (median {:.3})",
            r.n_clusters,
            r.noise(),
            r.core.iter().filter(|&&c| c).count(),
            kd.quantile(0.5).unwrap()
        );
        if std::env::var("DBSCAN_SPEED_DUMP").is_ok() {
            let path = format!("/tmp/dbscan_speed_{n}_{d}.bin");
            let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(&path, bytes).unwrap();
            let labels: Vec<u8> = r.labels.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(format!("/tmp/dbscan_speed_{n}_{d}.labels"), labels).unwrap();
            println!("  data and labels written to {path} (.labels)");
        }
    }
}
