//! segflow's benchmark harness.
//!
//! `segflow-bench engine-overhead [ROWS] [STEPS] [ROUNDS]` measures what the engine adds
//! per step: a chain of STEPS pass-through components over ROWS rows against the same
//! source drained directly, alternating the two (A B A B ...) and reporting medians. It
//! also reports the peak RSS of the process against the size of the table, which shows
//! whether any step copied the data. Build first with
//! `cargo build --release -p segflow-bench -p segflow-testkit -p segflow-collect`.

mod autok;

use segflow_engine::execute::{execute, ExecOptions};
use segflow_engine::host::{Registry, SearchPath, TracingObserver};
use segflow_engine::store::RunDir;
use segflow_engine::{spec, validate};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

fn chain_yaml(rows: u64, steps: usize) -> String {
    let mut y = format!(
        "name: overhead\nsteps:\n  - {{id: s0, stage: collect, plugin: source, with: {{rows: {rows}, batch_rows: 65536}}}}\n"
    );
    for i in 1..=steps {
        y.push_str(&format!(
            "  - {{id: s{i}, stage: clean, plugin: passthrough, needs: [s{}]}}\n",
            i - 1
        ));
    }
    y
}

fn peak_rss_bytes() -> u64 {
    proc_status_bytes("VmHWM:")
}

fn rss_bytes() -> u64 {
    proc_status_bytes("VmRSS:")
}

fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn run_once(registry: &Arc<Registry>, yaml: &str, write_to: Option<&Path>) -> (f64, u64) {
    let env = |k: &str| std::env::var(k).ok();
    let spec = spec::load_bytes(Path::new("bench.yaml"), yaml.as_bytes().to_vec(), &[], &env)
        .unwrap_or_else(|d| panic!("{:?}", d));
    let plan = validate::plan(spec, registry.clone()).unwrap_or_else(|d| panic!("{:?}", d));
    let opts = ExecOptions {
        threads: 2,
        run_dir: write_to.map(|p| RunDir::create(Some(p), "overhead").unwrap()),
        observer: Arc::new(TracingObserver),
        max_log_level: segflow_abi_level(),
        cancel: Arc::new(AtomicBool::new(false)),
        cache: None,
        refresh: Default::default(),
        resume: None,
    };
    let t = Instant::now();
    let report = execute(&plan, &opts);
    let secs = t.elapsed().as_secs_f64();
    assert!(
        report.succeeded,
        "{:?}",
        report.steps.iter().map(|s| &s.error).collect::<Vec<_>>()
    );
    let rows = report
        .steps
        .last()
        .unwrap()
        .rows
        .get("main")
        .copied()
        .unwrap_or(0);
    (secs, rows)
}

fn segflow_abi_level() -> u32 {
    3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn engine_overhead(rows: u64, steps: usize, rounds: usize) {
    let registry =
        Arc::new(Registry::discover(&SearchPath::standard(&[])).expect("loading plugins"));
    let chain = chain_yaml(rows, steps);
    let direct = chain_yaml(rows, 0);
    // The process before any table exists: code of the binary and the plugin libraries.
    run_once(&registry, &chain_yaml(1, steps), None);
    let baseline = rss_bytes();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(run_once(&registry, &direct, None).0);
        let (secs, n) = run_once(&registry, &chain, None);
        assert_eq!(n, rows, "every row came through the chain");
        b.push(secs);
    }
    let (ta, tb) = (median(a), median(b));
    let per_step_ms = (tb - ta) / steps as f64 * 1000.0;
    // Size of the table as Arrow holds it: the source's columns (Int64 + Float64 + Int64).
    let table_bytes = rows * 24;
    let rss = peak_rss_bytes();
    println!("engine overhead: {rows} rows, chain of {steps} pass-through steps, {rounds} rounds (medians)");
    println!("  source drained directly: {:.1} ms", ta * 1000.0);
    println!("  through {steps} steps:     {:.1} ms", tb * 1000.0);
    println!("  overhead per step:        {per_step_ms:.3} ms (target < 5 ms)");
    println!(
        "  peak RSS {:.1} MiB, of which {:.1} MiB is the process before any data (binary + plugin libraries)",
        rss as f64 / 1048576.0,
        baseline as f64 / 1048576.0
    );
    println!(
        "  memory for data: {:.1} MiB vs table {:.1} MiB: ratio {:.2} (target < 1.3: no step copies the table)",
        rss.saturating_sub(baseline) as f64 / 1048576.0,
        table_bytes as f64 / 1048576.0,
        rss.saturating_sub(baseline) as f64 / table_bytes as f64
    );
    let tmp = std::env::temp_dir().join(format!("segflow-bench-{}", std::process::id()));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds.min(3) {
        let _ = std::fs::remove_dir_all(&tmp);
        a.push(run_once(&registry, &direct, Some(&tmp)).0);
        let _ = std::fs::remove_dir_all(&tmp);
        b.push(run_once(&registry, &chain, Some(&tmp)).0);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    println!(
        "  with every port written to Parquet: {:.1} ms direct, {:.1} ms through the chain ({:.2} ms per step, almost all of it Parquet encoding)",
        median(a.clone()) * 1000.0,
        median(b.clone()) * 1000.0,
        (median(b) - median(a)) / steps as f64 * 1000.0
    );
}

/// Fit time of k-means (k-means++, one init, `tol = 0`, ITERS Lloyd iterations) on a
/// features CSV from `../shared/bench/gen.py features`, as `kmeans_sklearn.py` measures.
/// ALGO (`lloyd` by default, as the peer) may be `hamerly`, `elkan` or `auto`.
fn kmeans(path: &str, k: usize, iters: usize, rounds: usize, algo: &str) {
    use segflow_ml::kmeans::Algorithm;
    let algorithm = match algo {
        "lloyd" => Algorithm::Lloyd,
        "hamerly" => Algorithm::Hamerly,
        "elkan" => Algorithm::Elkan,
        "auto" => Algorithm::Auto,
        other => panic!("unknown k-means algorithm `{other}`"),
    };
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let d = lines.next().map_or(0, |h| h.split(',').count());
    let data: Vec<f64> = lines
        .flat_map(|l| l.split(',').map(|v| v.parse::<f64>().expect("a number")))
        .collect();
    let params = segflow_ml::kmeans::KMeansParams::new(k)
        .tol(0.0)
        .max_iter(iters)
        .seed(0)
        .algorithm(algorithm);
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let m = segflow_ml::kmeans::fit(&data, d, &params).expect("k-means");
        times.push(t.elapsed().as_secs_f64());
        last = Some(m);
    }
    let m = last.expect("at least one round");
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "fit_s={:.3} min_s={min:.3} inertia={:.6e} iters={} (median of {rounds}, {} rows x {d}, k={k}, {})",
        median(times),
        m.inertia,
        m.n_iter,
        data.len() / d,
        m.algorithm.name()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("kmeans") => {
            let path = args
                .get(1)
                .expect("usage: segflow-bench kmeans FEATURES.csv [K] [ITERS] [ROUNDS] [ALGO]");
            let k = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
            let iters = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(50);
            let rounds = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(3);
            let algo = args.get(5).map_or("lloyd", String::as_str);
            kmeans(path, k, iters, rounds, algo);
        }
        Some("autok") => {
            let source = args.get(1).map_or("-", String::as_str);
            let rows = args
                .get(2)
                .and_then(|s| s.parse().ok())
                .unwrap_or(1_000_000);
            let n_init = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
            let rounds = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(3);
            let silhouette = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(10_000);
            autok::run(source, rows, n_init, rounds, silhouette);
        }
        Some("engine-overhead") => {
            let rows = args
                .get(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(1_000_000);
            let steps = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
            let rounds = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
            engine_overhead(rows, steps, rounds);
        }
        _ => {
            eprintln!("usage: segflow-bench engine-overhead [ROWS] [STEPS] [ROUNDS] | kmeans FEATURES.csv [K] [ITERS] [ROUNDS] [ALGO] | autok [FEATURES.csv|-] [ROWS] [N_INIT] [ROUNDS] [SIL_SAMPLE]");
            std::process::exit(2);
        }
    }
}
