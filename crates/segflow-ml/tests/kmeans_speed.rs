//! Timing of the k-means iterations (Lloyd, Hamerly, Elkan) over a grid of dimensions and
//! k, from the same k-means++ start, to choose what `Algorithm::Auto` runs. Not a
//! correctness test (the unit tests check that the three agree); run it by hand:
//!
//! ```sh
//! cargo test --release -p segflow-ml --test kmeans_speed -- --ignored --nocapture
//! ```
//!
//! `KMEANS_SPEED_ROWS` (default 200000), `KMEANS_SPEED_ROUNDS` (3) and
//! `KMEANS_SPEED_GRID` (`d,k;d,k;...`) adjust it. Each cell reports the fastest of the
//! rounds, the three algorithms interleaved, and the ratio to Lloyd.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use segflow_ml::kmeans::{fit, Algorithm, Init, KMeansParams};
use std::time::Instant;

/// Overlapping Gaussian-ish blobs, as `gen.py features` (8 groups, spread 3 around
/// centres of spread 4).
fn blobs(n: usize, d: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let groups = 8;
    let gauss = |rng: &mut ChaCha8Rng| -> f64 {
        let (a, b): (f64, f64) = (rng.random(), rng.random());
        (-2.0 * (1.0 - a).ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    };
    let centres: Vec<f64> = (0..groups * d).map(|_| 4.0 * gauss(&mut rng)).collect();
    let mut v = Vec::with_capacity(n * d);
    for _ in 0..n {
        let g = rng.random_range(0..groups);
        for f in 0..d {
            v.push(centres[g * d + f] + 3.0 * gauss(&mut rng));
        }
    }
    v
}

#[test]
#[ignore]
fn kmeans_algorithms_over_a_grid() {
    let env = |k: &str| std::env::var(k).ok();
    let n: usize = env("KMEANS_SPEED_ROWS").map_or(200_000, |v| v.parse().unwrap());
    let rounds: usize = env("KMEANS_SPEED_ROUNDS").map_or(3, |v| v.parse().unwrap());
    let grid: Vec<(usize, usize)> = env("KMEANS_SPEED_GRID")
        .map(|g| {
            g.split(';')
                .map(|c| {
                    let (d, k) = c.split_once(',').unwrap();
                    (d.trim().parse().unwrap(), k.trim().parse().unwrap())
                })
                .collect()
        })
        .unwrap_or_else(|| {
            let mut g = Vec::new();
            for d in [2, 8, 32, 128] {
                for k in [4, 16, 64] {
                    g.push((d, k));
                }
            }
            g
        });
    println!("{n} rows, tol 1e-4, max_iter 300, fastest of {rounds} (seconds; ratio to lloyd)");
    println!("   d    k  iters      lloyd    hamerly      elkan");
    for (d, k) in grid {
        let x = blobs(n, d, 42);
        // One start for all (k-means++ and one iteration), so every run does the same
        // iterations.
        let start = fit(
            &x,
            d,
            &KMeansParams::new(k).max_iter(1).algorithm(Algorithm::Lloyd),
        )
        .unwrap();
        let init = Init::Given(start.centroids);
        let algos = [Algorithm::Lloyd, Algorithm::Hamerly, Algorithm::Elkan];
        let mut best = [f64::INFINITY; 3];
        let mut iters = 0;
        for _ in 0..rounds {
            for (a, b) in algos.iter().zip(best.iter_mut()) {
                let p = KMeansParams::new(k).init(init.clone()).algorithm(*a);
                let t = Instant::now();
                let m = fit(&x, d, &p).unwrap();
                *b = b.min(t.elapsed().as_secs_f64());
                iters = m.n_iter;
            }
        }
        println!(
            "{d:>4} {k:>4} {iters:>6} {:>10.3} {:>6.3} ({:.2}) {:>6.3} ({:.2})",
            best[0],
            best[1],
            best[1] / best[0],
            best[2],
            best[2] / best[0]
        );
    }
}
