//! End-to-end: `pipelines/side_by_side.yaml`, the "swap the algorithm" example. RFM,
//! k-means and a Gaussian mixture (the k-means step with only `plugin:` changed) run on
//! the same customer features in one layer of the plan. Each segmentation must cover
//! every customer exactly once (joined on `customer_id` with the features), and the
//! segmentations are compared with `segflow_ml::metrics`: the adjusted Rand index and
//! NMI between every pair and against the synthetic customers' true archetypes.

mod common;
use arrow::array::{Array, Int32Array, Int64Array, StringArray};
use common::*;
use segflow_ml::metrics::{adjusted_rand_index, normalized_mutual_info};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const PIPELINE: &str = "pipelines/side_by_side.yaml";
const SEGMENTERS: [&str; 3] = ["rfm", "kmeans", "gmm"];

fn require_segment_plugin() {
    let p = plugin_dir().join(format!(
        "libsegflow_segment.{}",
        std::env::consts::DLL_EXTENSION
    ));
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` before `cargo test`",
        p.display()
    );
}

fn int64(b: &arrow::array::RecordBatch, col: &str) -> Vec<i64> {
    let c = b
        .column_by_name(col)
        .unwrap_or_else(|| panic!("no column {col}"));
    let c = c.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(c.null_count(), 0, "{col} has nulls");
    c.values().to_vec()
}

/// customer id → segment id of a step's `assignments`; every customer at most once.
fn assignments(path: &Path) -> BTreeMap<i64, i32> {
    let mut m = BTreeMap::new();
    for b in parquet_batches(path) {
        let ids = int64(&b, "customer_id");
        let seg = b
            .column_by_name("segment_id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        let names = b
            .column_by_name("segment")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(seg.null_count() + names.null_count(), 0);
        for (i, id) in ids.into_iter().enumerate() {
            let prev = m.insert(id, seg.value(i));
            assert!(
                prev.is_none(),
                "customer {id} assigned twice in {}",
                path.display()
            );
        }
    }
    m
}

/// customer id → true archetype, from the collected transactions.
fn archetypes(orders: &Path) -> HashMap<i64, String> {
    let mut m = HashMap::new();
    for b in parquet_batches(orders) {
        let ids = int64(&b, "customer_id");
        let a = b
            .column_by_name("archetype")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        for (i, id) in ids.into_iter().enumerate() {
            m.entry(id).or_insert_with(|| a.value(i).to_string());
        }
    }
    m
}

#[test]
fn rfm_kmeans_and_gmm_side_by_side_cover_every_customer() {
    require_segment_plugin();

    // The three segmenters share one layer: they run in parallel.
    let r = run(segflow().args(["plan", PIPELINE, "--format", "json"]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let plan: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let layers: Vec<Vec<String>> = serde_json::from_value(plan["layers"].clone()).unwrap();
    assert_eq!(
        layers,
        vec![
            vec!["orders".to_string()],
            vec!["features".to_string()],
            SEGMENTERS.map(String::from).to_vec(),
        ]
    );

    // The example at a size a debug build runs in about a second.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let r = run(segflow()
        .args([
            "run",
            PIPELINE,
            "--set",
            "orders.customers=4000",
            "--threads",
            "2",
            "--out",
        ])
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(manifest["status"], "succeeded");
    let steps = out.join("steps");

    // Every customer exactly once in each segmentation: join on the key.
    let customers: Vec<i64> = parquet_batches(&steps.join("features/main.parquet"))
        .iter()
        .flat_map(|b| int64(b, "customer_id"))
        .collect();
    assert_eq!(customers.len(), 4000);
    let mut seg: HashMap<&str, BTreeMap<i64, i32>> = HashMap::new();
    for step in SEGMENTERS {
        let a = assignments(&steps.join(step).join("assignments.parquet"));
        assert_eq!(a.len(), customers.len(), "{step}: one row per customer");
        assert!(
            customers.iter().all(|c| a.contains_key(c)),
            "{step}: every customer of the features has a segment"
        );
        let s = manifest["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == step)
            .unwrap();
        assert_eq!(s["status"], "succeeded");
        assert_eq!(s["rows"]["assignments"], 4000);
        seg.insert(step, a);
    }
    // k-means and its one-line swap: five segments each; RFM: the 11 named ones.
    for step in ["kmeans", "gmm"] {
        let facts = read_json(&steps.join(step).join("facts.json"));
        assert_eq!(facts["k"], 5, "{step}");
        assert!(seg[step].values().all(|&s| (0..5).contains(&s)));
    }
    assert!(seg["rfm"].values().all(|&s| (0..11).contains(&s)));

    // Compare, joined on customer id.
    let labels = |step: &str| -> Vec<i32> { customers.iter().map(|c| seg[step][c]).collect() };
    let truth_map = archetypes(&steps.join("orders/main.parquet"));
    let truth: Vec<&str> = customers.iter().map(|c| truth_map[c].as_str()).collect();
    println!("segmentation pair        ARI      NMI");
    for (a, b) in [("rfm", "kmeans"), ("rfm", "gmm"), ("kmeans", "gmm")] {
        let (la, lb) = (labels(a), labels(b));
        let ari = adjusted_rand_index(&la, &lb).unwrap();
        let nmi = normalized_mutual_info(&la, &lb).unwrap();
        println!("{a:>6} vs {b:<12} {ari:8.4} {nmi:8.4}");
        assert!((-1.0..=1.0).contains(&ari), "{a} vs {b}: ARI {ari}");
        assert!((0.0..=1.0).contains(&nmi), "{a} vs {b}: NMI {nmi}");
        // Same measures, so the segmentations share information (not independent).
        assert!(nmi > 0.1, "{a} vs {b}: NMI {nmi}");
        // ...but they are different methods, not the same partition.
        assert!(ari < 0.999, "{a} vs {b}: identical partitions");
    }
    for step in SEGMENTERS {
        let l = labels(step);
        let ari = adjusted_rand_index(&truth, &l).unwrap();
        let nmi = normalized_mutual_info(&truth, &l).unwrap();
        println!("{step:>6} vs archetypes   {ari:8.4} {nmi:8.4}");
        // Every method recovers some of the true behavioural archetypes.
        assert!(ari > 0.1, "{step}: ARI {ari} against the archetypes");
        assert!(nmi > 0.2, "{step}: NMI {nmi} against the archetypes");
    }

    let r = run(segflow().args(["validate", PIPELINE]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}
