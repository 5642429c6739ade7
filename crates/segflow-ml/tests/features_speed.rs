//! Aggregation speed of `features::FeatureAggregator` on 10M synthetic transactions.
//!
//! Ignored by default; run it in release mode:
//! `cargo test --release -p segflow-ml --test features_speed -- --ignored --nocapture`

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array};
use arrow::datatypes::DataType;
use segflow_ml::features::{BatchColumns, FeatureAggregator, FeatureOptions};
use std::sync::Arc;
use std::time::Instant;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `rows` transactions of `customers` customers in random order, in 65,536-row batches.
fn data(rows: usize, customers: u64) -> Vec<BatchColumns> {
    let mut s = 42u64;
    let mut out = Vec::new();
    let mut left = rows;
    while left > 0 {
        let n = left.min(65_536);
        left -= n;
        let mut k = Vec::with_capacity(n);
        let mut d = Vec::with_capacity(n);
        let mut a = Vec::with_capacity(n);
        for _ in 0..n {
            let r = splitmix(&mut s);
            k.push((r % customers) as i64);
            d.push(19_358 + ((r >> 32) % 730) as i32);
            a.push(((r >> 12) % 50_000) as f64 / 100.0);
        }
        out.push(BatchColumns {
            key: Arc::new(Int64Array::from(k)) as ArrayRef,
            date: Arc::new(Date32Array::from(d)),
            amount: Arc::new(Float64Array::from(a)),
        });
    }
    out
}

fn time(threads: usize, batches: &[BatchColumns], options: FeatureOptions) -> (f64, usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    pool.install(|| {
        let t = Instant::now();
        let mut agg =
            FeatureAggregator::new("customer_id", &DataType::Int64, options).expect("aggregator");
        // the clean component pushes groups of 2 batches per thread
        for g in batches.chunks(threads * 2) {
            agg.push_batches(g).expect("push");
        }
        let out = agg.finish().expect("finish");
        (t.elapsed().as_secs_f64(), out.batch.num_rows())
    })
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn aggregate_10m_transactions() {
    let rows = 10_000_000;
    let batches = data(rows, 1_000_000);
    let features = FeatureOptions {
        as_of: Some(19_358 + 730),
        ..Default::default()
    };
    let both = FeatureOptions {
        calibration_end: Some(19_358 + 365),
        ..features
    };
    for (name, opts) in [("features", features), ("features+calibration", both)] {
        for threads in [1, 2] {
            // best of 3: the machine may be shared
            let (secs, customers) = (0..3)
                .map(|_| time(threads, &batches, opts))
                .fold((f64::MAX, 0), |a, b| if b.0 < a.0 { b } else { a });
            println!(
                "{name:>22}: {rows} rows, {customers} customers, {threads} thread(s): {:.3} s ({:.1} M rows/s)",
                secs,
                rows as f64 / secs / 1e6
            );
        }
    }
}
