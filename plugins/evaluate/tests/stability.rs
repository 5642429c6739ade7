//! `stability` through the real ABI, re-fitting the real `kmeans` of segflow-segment via
//! the fake host's nested runs: four far-apart Gaussian blobs must be stable (mean ARI
//! ≥ 0.95), a seed must give identical output at any thread count, and a wrong
//! segmenter name or segmenter config must come back as a clear error.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{Float64Array, Int64Array, RecordBatch};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use segflow_sdk::ffi::abi;
use serde_json::{json, Value};
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_evaluate::segflow_plugin_v1 as abi::EntryFn;

/// The segment plugin's entry point, from its cdylib (`libsegflow_segment.so`, built
/// next to this test as a dev-dependency). Linking its rlib instead is not possible:
/// both plugin crates export the same `segflow_plugin_v1` symbol.
fn segment_entry() -> abi::EntryFn {
    static ENTRY_FN: std::sync::OnceLock<abi::EntryFn> = std::sync::OnceLock::new();
    *ENTRY_FN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test path");
        let deps = exe.parent().expect("deps dir");
        let name = libloading::library_filename("segflow_segment");
        let path = [deps.to_path_buf(), deps.join("..")]
            .iter()
            .map(|d| d.join(&name))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no {name:?} next to {exe:?}; build segflow-segment"));
        // SAFETY: a segflow plugin library; it stays loaded for the test's life.
        unsafe {
            let lib = Box::leak(Box::new(
                libloading::Library::new(&path).expect("load plugin"),
            ));
            *lib.get::<abi::EntryFn>(b"segflow_plugin_v1")
                .expect("entry point")
        }
    })
}

/// A small deterministic generator (SplitMix64) with Box-Muller normals.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u = self.next().max(1e-300);
        let v = self.next();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Four Gaussian blobs (standard deviation `sd`) 20 apart, 100 customers each,
/// interleaved.
fn blobs(sd: f64) -> (SchemaRef, RecordBatch) {
    let centres = [(0.0, 0.0), (20.0, 0.0), (0.0, 20.0), (20.0, 20.0)];
    let mut rng = Rng(42);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..400 {
        let (cx, cy) = centres[i % 4];
        x.push(cx + sd * rng.normal());
        y.push(cy + sd * rng.normal());
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
        Field::new("y", DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(1000..1400)),
            Arc::new(Float64Array::from(x)),
            Arc::new(Float64Array::from(y)),
        ],
    )
    .unwrap();
    (schema, batch)
}

fn kmeans_config() -> Value {
    json!({"k": 4, "features": ["x", "y"], "seed": 1, "n_init": 3})
}

fn services() -> fake_host::Services {
    fake_host::Services {
        nested: vec![segment_entry()],
        run_info: None,
    }
}

/// The features and kmeans' assignments of them (the segmentation to assess).
fn inputs_sd(sd: f64) -> Vec<(&'static str, SchemaRef, Vec<RecordBatch>)> {
    let (fs, fb) = blobs(sd);
    let km = fake_host::run(
        segment_entry(),
        "kmeans",
        kmeans_config(),
        1,
        vec![("features", fs.clone(), vec![fb.clone()])],
    );
    assert_eq!(km.status, abi::STATUS_OK, "{}", km.error_message());
    let a = km.table("assignments");
    let a = concat_batches(&a[0].schema(), a).unwrap();
    vec![
        ("features", fs, vec![fb]),
        ("segments.assignments", a.schema(), vec![a]),
    ]
}

fn inputs() -> Vec<(&'static str, SchemaRef, Vec<RecordBatch>)> {
    inputs_sd(1.0)
}

fn run(config: Value, threads: u32) -> fake_host::Outcome {
    fake_host::run_with(ENTRY, "stability", config, threads, inputs(), services())
}

/// On overlapping blobs (sd 8), where re-fits disagree.
fn run_noisy(config: Value, threads: u32) -> fake_host::Outcome {
    fake_host::run_with(
        ENTRY,
        "stability",
        config,
        threads,
        inputs_sd(8.0),
        services(),
    )
}

fn batch(out: &fake_host::Outcome, port: &str) -> RecordBatch {
    let b = out.table(port);
    concat_batches(&b[0].schema(), b).unwrap()
}

#[test]
fn separated_blobs_are_stable() {
    let out = run(
        json!({"segmenter": "kmeans", "with": kmeans_config(), "seed": 5}),
        2,
    );
    assert_eq!(out.status, abi::STATUS_OK, "{}", out.error_message());
    let ari_mean = out.fact("ari_mean").as_f64().unwrap();
    assert!(ari_mean >= 0.95, "mean ARI {ari_mean}");
    assert_eq!(out.fact("resamples"), &json!(20));
    assert_eq!(out.fact("method"), &json!("subsample"));
    assert_eq!(out.fact("fraction"), &json!(0.8));
    assert_eq!(out.fact("segmentation"), &json!("segments"));
    let jac = out.fact("jaccard_mean").as_object().unwrap();
    assert_eq!(jac.len(), 4);
    for (label, j) in jac {
        assert!(j.as_f64().unwrap() >= 0.95, "segment {label}: {j}");
    }
    assert_eq!(out.fact("unstable_segments"), &json!([]));
    let r = batch(&out, "resamples");
    assert_eq!(r.num_rows(), 20);
    // 80% of 400 customers, each re-fitted into 4 segments.
    let customers = r.column_by_name("customers").unwrap();
    let customers = customers.as_any().downcast_ref::<Int64Array>().unwrap();
    assert!(customers.values().iter().all(|&c| c == 320));
    assert_eq!(batch(&out, "metrics").num_rows(), 5 + 4 * 5);
}

#[test]
fn bootstrap_is_stable_too() {
    let out = run(
        json!({"segmenter": "kmeans", "with": kmeans_config(), "method": "bootstrap", "resamples": 8, "seed": 2}),
        1,
    );
    assert_eq!(out.status, abi::STATUS_OK, "{}", out.error_message());
    assert!(out.fact("ari_mean").as_f64().unwrap() >= 0.95);
    // Each customer is compared once: about 63% of 400 are drawn.
    let r = batch(&out, "resamples");
    let c = r.column_by_name("customers").unwrap();
    let c = c.as_any().downcast_ref::<Int64Array>().unwrap();
    assert!(c.values().iter().all(|&n| (200..300).contains(&n)), "{c:?}");
}

#[test]
fn same_seed_same_output_for_any_thread_count() {
    let cfg = json!({"segmenter": "kmeans", "with": kmeans_config(), "resamples": 6, "seed": 9});
    let a = run_noisy(cfg.clone(), 1);
    let b = run_noisy(cfg.clone(), 4);
    let c = run_noisy(cfg, 4);
    for o in [&a, &b, &c] {
        assert_eq!(o.status, abi::STATUS_OK, "{}", o.error_message());
    }
    for port in ["metrics", "resamples"] {
        assert_eq!(batch(&a, port), batch(&b, port), "{port}");
        assert_eq!(batch(&b, port), batch(&c, port), "{port}");
    }
    assert_eq!(a.facts, b.facts);
    // The re-fits do disagree here, and another seed draws other customers.
    let ari = a.fact("ari_mean").as_f64().unwrap();
    assert!(ari < 0.99, "{ari}");
    let d = run_noisy(
        json!({"segmenter": "kmeans", "with": kmeans_config(), "resamples": 6, "seed": 10}),
        1,
    );
    assert_ne!(a.fact("ari_mean"), d.fact("ari_mean"));
}

#[test]
fn unknown_segmenter_is_named() {
    let out = run(json!({"segmenter": "kmeanz", "with": kmeans_config()}), 1);
    assert_ne!(out.status, abi::STATUS_OK);
    assert_eq!(out.error_field().as_deref(), Some("segmenter"));
    let msg = out.error_message();
    assert!(msg.contains("`kmeanz`"), "{msg}");
}

#[test]
fn segmenter_config_error_is_surfaced() {
    // kmeans needs `features`.
    let out = run(json!({"segmenter": "kmeans", "with": {"k": 4}}), 1);
    assert_ne!(out.status, abi::STATUS_OK);
    assert_eq!(out.error_field().as_deref(), Some("with"));
    let msg = out.error_message();
    assert!(
        msg.contains("`kmeans`") && msg.contains("features"),
        "{msg}"
    );
    // A k the data cannot hold: kmeans' own message comes through.
    let out = run(
        json!({"segmenter": "kmeans", "with": {"k": 1000, "features": ["x", "y"]}}),
        1,
    );
    assert_ne!(out.status, abi::STATUS_OK);
    let msg = out.error_message();
    assert!(msg.contains("k = 1000"), "{msg}");
}

#[test]
fn plan_checks_the_config() {
    let schemas: Vec<(&str, SchemaRef)> = inputs().into_iter().map(|(n, s, _)| (n, s)).collect();
    let plan = |cfg: Value| fake_host::plan(ENTRY, "stability", cfg, &schemas);
    let ok = plan(json!({"segmenter": "kmeans", "with": kmeans_config()}));
    assert_eq!(ok.status, abi::STATUS_OK, "{}", ok.error_message());
    assert_eq!(ok.schema("resamples").fields().len(), 4);
    let e = plan(json!({"segmenter": "kmeans", "method": "bootstrap", "fraction": 0.5}));
    assert_eq!(e.error_field().as_deref(), Some("fraction"));
    let e = plan(json!({"segmenter": "kmeans", "fraction": 1.5}));
    assert_eq!(e.error_field().as_deref(), Some("fraction"));
    let e = plan(json!({"segmenter": "kmeans", "resamples": 0}));
    assert_eq!(e.error_field().as_deref(), Some("resamples"));
    let e = plan(json!({"segmenter": ""}));
    assert_eq!(e.error_field().as_deref(), Some("segmenter"));
    let e = plan(json!({"with": {}}));
    assert!(
        e.error_message().contains("segmenter"),
        "{}",
        e.error_message()
    );
    // Two segmentations: one stability step per segmentation.
    let mut two = schemas.clone();
    two.push(("other", schemas[1].1.clone()));
    let e = fake_host::plan(ENTRY, "stability", json!({"segmenter": "kmeans"}), &two);
    assert!(
        e.error_message().contains("one segmentation"),
        "{}",
        e.error_message()
    );
}
