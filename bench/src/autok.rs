//! `segflow-bench autok [FEATURES.csv|-] [ROWS] [N_INIT] [ROUNDS] [SIL_SAMPLE]`: auto-k
//! (k = 2..12, silhouette; candidates fitted and scored on a 20,000-row sample, the
//! silhouette on SIL_SAMPLE (default 10,000) of its rows; then the chosen k fitted on
//! all rows — what `kmeans` with `k: auto` does) against one k-means fit of
//! the chosen k on all rows with the same settings. Alternates the two (A B A B ...)
//! and prints medians and the ratio (target: under 10x).
//!
//! The data is a features CSV from `../shared/bench/gen.py features` (header line, then
//! numbers), or with `-` (default) ROWS rows drawn in-process from the same
//! distribution as gen.py's: 8 features, 8 Gaussian blobs with N(0, 4²) centres and
//! noise σ = 3 (overlapping, so Lloyd needs realistic iteration counts).

use segflow_ml::autok::{select_k, AutoKParams, Criterion};
use segflow_ml::kmeans::{fit, KMeansParams};
use std::time::Instant;

/// A small deterministic generator (splitmix64) with Box-Muller normals, so the bench
/// needs no extra dependency.
struct Gen(u64);

impl Gen {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn generate(rows: usize) -> (Vec<f64>, usize) {
    let (d, k) = (8, 8);
    let mut g = Gen(42);
    let centres: Vec<f64> = (0..k * d).map(|_| 4.0 * g.normal()).collect();
    let mut x = Vec::with_capacity(rows * d);
    for _ in 0..rows {
        let c = (g.next_u64() % k as u64) as usize;
        for f in 0..d {
            x.push(centres[c * d + f] + 3.0 * g.normal());
        }
    }
    (x, d)
}

fn read_csv(path: &str) -> (Vec<f64>, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let d = lines.next().map_or(0, |h| h.split(',').count());
    let data = lines
        .flat_map(|l| l.split(',').map(|v| v.parse::<f64>().expect("a number")))
        .collect();
    (data, d)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(source: &str, rows: usize, n_init: usize, rounds: usize, silhouette: usize) {
    let (data, d) = if source == "-" {
        generate(rows)
    } else {
        read_csv(source)
    };
    let n = data.len() / d;
    let base = KMeansParams::new(2).n_init(n_init).seed(0);
    let auto = AutoKParams {
        k_min: 2,
        k_max: 12,
        criterion: Criterion::Silhouette,
        sample: 20_000,
        silhouette_sample: silhouette,
        gap_references: 10,
        kmeans: base.clone(),
    };
    println!(
        "auto-k: {n} rows x {d} features, k = 2..12 by silhouette; candidates fitted on a \
         20000-row sample, silhouette on {silhouette} of its rows; n_init = {n_init}, {} cores, \
         {rounds} rounds (medians)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let (mut single, mut select, mut final_fit) = (Vec::new(), Vec::new(), Vec::new());
    let mut chosen = 0;
    for round in 0..rounds {
        // B: auto-k, then the chosen k on all rows.
        let t = Instant::now();
        let sel = select_k(&data, d, &auto).expect("auto-k");
        let ts = t.elapsed().as_secs_f64();
        let mut p = base.clone();
        p.k = sel.chosen;
        let t = Instant::now();
        let full = fit(&data, d, &p).expect("k-means");
        let tf = t.elapsed().as_secs_f64();
        select.push(ts);
        final_fit.push(tf);
        chosen = sel.chosen;
        if round == 0 {
            println!("  chose k = {chosen}: {}", sel.reason);
        }
        // A: one fit of that k on all rows (same settings).
        let t = Instant::now();
        let one = fit(&data, d, &p).expect("k-means");
        single.push(t.elapsed().as_secs_f64());
        assert_eq!(one.inertia, full.inertia, "deterministic");
        if round == 0 {
            println!(
                "  one fit: {} iterations, inertia {:.6e}",
                one.n_iter, one.inertia
            );
        }
    }
    let (a, s, f) = (median(single), median(select), median(final_fit));
    println!("  one k-means fit (k = {chosen}, all rows):  {a:.3} s");
    println!("  auto-k selection (11 candidates, sample): {s:.3} s");
    println!("  + final fit of k = {chosen} on all rows:     {f:.3} s");
    println!(
        "  auto-k total {:.3} s: ratio to one fit {:.2}x (target < 10x)",
        s + f,
        (s + f) / a
    );
}
