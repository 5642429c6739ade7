//! `drift` through the real ABI against hand-built previous run directories (written
//! with the parquet crate into a tempdir, laid out as `segflow run` does): a known
//! migration with new and departed customers and a new segment, identical runs, an
//! overridden step name with another key type, and the errors for a missing, unfinished
//! or incomplete previous run.

#[path = "../../support/fake_host.rs"]
mod fake_host;
use fake_host::{col, table};

use parquet::arrow::ArrowWriter;
use segflow_sdk::arrow::array::{
    Array, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::compute::cast;
use segflow_sdk::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use segflow_sdk::ffi::abi;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_evaluate::segflow_plugin_v1 as abi::EntryFn;

fn assignments(keys: &[i64], labels: &[&str]) -> RecordBatch {
    let id = |l: &str| match l {
        "A" => 0,
        "B" => 1,
        "C" => 2,
        _ => 3,
    };
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Int64, false),
            Field::new("segment_id", DataType::Int32, false),
            Field::new("segment", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(Int64Array::from(keys.to_vec())),
            Arc::new(Int32Array::from(
                labels.iter().map(|l| id(l)).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(labels.to_vec())),
        ],
    )
    .unwrap()
}

fn features(keys: &[i64], monetary: &[f64], frequency: &[i64], visits: bool) -> RecordBatch {
    let mut fields = vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("monetary_sum", DataType::Float64, false),
        Field::new("frequency", DataType::Int64, false),
    ];
    let mut cols: Vec<Arc<dyn Array>> = vec![
        Arc::new(Int64Array::from(keys.to_vec())),
        Arc::new(Float64Array::from(monetary.to_vec())),
        Arc::new(Int64Array::from(frequency.to_vec())),
    ];
    if visits {
        fields.push(Field::new("visits", DataType::Float64, true));
        cols.push(Arc::new(Float64Array::from(vec![1.0; keys.len()])));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
}

/// The previous run: customers 1–10.
///
/// | id | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 |
/// |---|---|---|---|---|---|---|---|---|---|---|
/// | segment | A | A | A | A | B | B | B | C | C | C |
/// | monetary_sum | 10 | 20 | 30 | 40 | 50 | 60 | 70 | 80 | 90 | 100 |
/// | frequency | 1 | 1 | 2 | 2 | 3 | 3 | 4 | 4 | 5 | 5 |
fn previous_run() -> (RecordBatch, RecordBatch) {
    let keys: Vec<i64> = (1..=10).collect();
    (
        assignments(&keys, &["A", "A", "A", "A", "B", "B", "B", "C", "C", "C"]),
        features(
            &keys,
            &[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0],
            &[1, 1, 2, 2, 3, 3, 4, 4, 5, 5],
            false,
        ),
    )
}

/// This run: 9 and 10 are gone, 11 and 12 are new, 3 moved A → B, 6 moved B → C, and
/// 12 is in a new segment D.
///
/// | id | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 11 | 12 |
/// |---|---|---|---|---|---|---|---|---|---|---|
/// | segment | A | A | B | A | B | C | B | C | A | D |
/// | monetary_sum | 10 | 20 | 30 | 40 | 50 | 10 | 20 | 30 | 90 | 100 |
/// | frequency | 5 | 5 | 4 | 4 | 3 | 3 | 2 | 2 | 1 | 1 |
fn current_run() -> (RecordBatch, RecordBatch) {
    let keys = [1, 2, 3, 4, 5, 6, 7, 8, 11, 12];
    (
        assignments(&keys, &["A", "A", "B", "A", "B", "C", "B", "C", "A", "D"]),
        features(
            &keys,
            &[10.0, 20.0, 30.0, 40.0, 50.0, 10.0, 20.0, 30.0, 90.0, 100.0],
            &[5, 5, 4, 4, 3, 3, 2, 2, 1, 1],
            true,
        ),
    )
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// Write a previous run directory: `steps/<seg_step>/assignments.parquet` and
/// `steps/features/main.parquet`, and optionally a manifest.
fn write_run(
    dir: &Path,
    seg_step: &str,
    assignments: &RecordBatch,
    features: &RecordBatch,
    manifest: Option<Value>,
) {
    write_parquet(
        &dir.join("steps").join(seg_step).join("assignments.parquet"),
        assignments,
    );
    write_parquet(&dir.join("steps/features/main.parquet"), features);
    if let Some(m) = manifest {
        std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
    }
}

fn manifest(status: &str, steps: &[&str]) -> Value {
    json!({
        "pipeline": "monthly",
        "started_at": "2025-01-01T00:00:00.000Z",
        "status": status,
        "steps": steps.iter().map(|s| json!({"id": s, "persisted": true})).collect::<Vec<_>>(),
    })
}

fn run(config: Value, threads: u32) -> fake_host::Outcome {
    let (a, f) = current_run();
    fake_host::run(
        ENTRY,
        "drift",
        config,
        threads,
        vec![
            ("features", f.schema(), vec![f]),
            ("segs.assignments", a.schema(), vec![a]),
        ],
    )
}

fn text(b: &RecordBatch, name: &str) -> Vec<String> {
    let c = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let c = c.as_string::<i32>();
    (0..c.len()).map(|i| c.value(i).to_string()).collect()
}

/// The migration matrix as (from, to) → (customers, share_of_from).
fn matrix(o: &fake_host::Outcome) -> BTreeMap<(String, String), (i64, Option<f64>)> {
    let m = table(o, "migration");
    let (from, to, n, share) = (
        text(&m, "from_segment"),
        text(&m, "to_segment"),
        col(&m, "customers"),
        col(&m, "share_of_from"),
    );
    (0..m.num_rows())
        .map(|i| {
            (
                (from[i].clone(), to[i].clone()),
                (n[i].unwrap() as i64, share[i]),
            )
        })
        .collect()
}

fn metric(o: &fake_host::Outcome, name: &str, segment: Option<&str>) -> Option<f64> {
    let m = table(o, "metrics");
    let (names, segs, vals) = (
        text(&m, "metric"),
        {
            let c = m
                .column_by_name("segment")
                .unwrap()
                .as_string::<i32>()
                .clone();
            (0..c.len())
                .map(|i| (!c.is_null(i)).then(|| c.value(i).to_string()))
                .collect::<Vec<_>>()
        },
        col(&m, "value"),
    );
    let hits: Vec<usize> = (0..m.num_rows())
        .filter(|&i| names[i] == name && segs[i].as_deref() == segment)
        .collect();
    assert_eq!(hits.len(), 1, "metric {name} {segment:?}");
    vals[hits[0]]
}

fn close(a: Option<f64>, b: f64, what: &str) {
    let a = a.unwrap_or_else(|| panic!("{what}: null"));
    assert!((a - b).abs() < 1e-12, "{what}: {a} vs {b}");
}

#[test]
fn known_migration_sizes_and_drift() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, f) = previous_run();
    write_run(
        tmp.path(),
        "segs",
        &a,
        &f,
        Some(manifest("succeeded", &["features", "segs"])),
    );
    let o = run(
        json!({"previous": tmp.path().to_str().unwrap(), "bins": 2}),
        2,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);

    // every cell of the 4 × 5 matrix except (new) → (gone)
    let m = matrix(&o);
    assert_eq!(m.len(), 19);
    let cell = |f: &str, t: &str| m[&(f.to_string(), t.to_string())];
    // A (1 2 3 4): 1 2 4 stay, 3 → B
    assert_eq!(cell("A", "A"), (3, Some(0.75)));
    assert_eq!(cell("A", "B"), (1, Some(0.25)));
    assert_eq!(cell("A", "C").0, 0);
    assert_eq!(cell("A", "(gone)"), (0, Some(0.0)));
    // B (5 6 7): 5 7 stay, 6 → C
    assert_eq!(cell("B", "B").0, 2);
    assert_eq!(cell("B", "C").0, 1);
    close(cell("B", "B").1, 2.0 / 3.0, "B→B share");
    // C (8 9 10): 8 stays, 9 and 10 are gone
    assert_eq!(cell("C", "C").0, 1);
    assert_eq!(cell("C", "(gone)").0, 2);
    close(cell("C", "(gone)").1, 2.0 / 3.0, "C→gone share");
    // new: 11 → A, 12 → D
    assert_eq!(cell("(new)", "A"), (1, Some(0.5)));
    assert_eq!(cell("(new)", "D"), (1, Some(0.5)));
    assert_eq!(cell("(new)", "B"), (0, Some(0.0)));
    let total: i64 = m.values().map(|v| v.0).sum();
    assert_eq!(total, 12, "8 in both + 2 new + 2 gone");
    // row order: previous segments, then (new); columns: current segments, then (gone)
    let mt = table(&o, "migration");
    assert_eq!(text(&mt, "from_segment")[..5], ["A"; 5]);
    assert_eq!(text(&mt, "to_segment")[..5], ["A", "B", "C", "D", "(gone)"]);

    // sizes: A 4 → 4, B 3 → 3, C 3 → 2 (−33.3 %), D 0 → 1 (no percentage)
    let s = table(&o, "sizes");
    assert_eq!(text(&s, "segment"), ["A", "B", "C", "D"]);
    assert_eq!(
        col(&s, "customers_previous"),
        [4.0, 3.0, 3.0, 0.0].map(Some)
    );
    assert_eq!(col(&s, "customers"), [4.0, 3.0, 2.0, 1.0].map(Some));
    assert_eq!(col(&s, "change"), [0.0, 0.0, -1.0, 1.0].map(Some));
    let pct = col(&s, "change_pct");
    assert_eq!(pct[..2], [Some(0.0), Some(0.0)]);
    close(pct[2], -100.0 / 3.0, "C change_pct");
    assert_eq!(pct[3], None);
    assert_eq!(col(&s, "share_previous"), [0.4, 0.3, 0.3, 0.0].map(Some));
    assert_eq!(col(&s, "share"), [0.4, 0.3, 0.2, 0.1].map(Some));

    // features: monetary_sum, 2 bins cut at the previous median 55: previous (0.5,
    // 0.5), current 8 of 10 <= 55 → (0.8, 0.2): PSI = 0.3 ln 1.6 − 0.3 ln 0.4 = 0.3 ln 4.
    // KS: at 30–50 F_prev = 0.3–0.5, F_cur = 0.6–0.8 → D = 0.3. Means 55 and 40.
    // frequency: the same multiset in both runs → PSI 0, KS 0.
    // visits: not in the previous run → nulls.
    let ft = table(&o, "features");
    assert_eq!(
        text(&ft, "feature"),
        ["monetary_sum", "frequency", "visits"]
    );
    let psi = col(&ft, "psi");
    close(psi[0], 0.3 * 4f64.ln(), "psi monetary_sum");
    assert_eq!(psi[1], Some(0.0));
    assert_eq!(psi[2], None);
    let ks = col(&ft, "ks_statistic");
    close(ks[0], 0.3, "ks monetary_sum");
    assert_eq!(ks[1], Some(0.0));
    assert_eq!(ks[2], None);
    assert_eq!(col(&ft, "mean_previous"), [Some(55.0), Some(3.0), None]);
    assert_eq!(col(&ft, "mean"), [Some(40.0), Some(3.0), Some(1.0)]);
    assert_eq!(col(&ft, "bins"), [Some(2.0), Some(2.0), None]);
    assert_eq!(col(&ft, "null_share"), [Some(0.0); 3]);

    // metrics: 8 customers in both runs, 6 stayed (1 2 4 5 7 8) → 0.75
    close(metric(&o, "stayed_share", None), 0.75, "stayed_share");
    close(metric(&o, "new_customers", None), 2.0, "new");
    close(metric(&o, "gone_customers", None), 2.0, "gone");
    close(metric(&o, "moved_customers", None), 2.0, "moved");
    close(metric(&o, "stayed_share", Some("A")), 0.75, "A stayed");
    close(metric(&o, "change", Some("C")), -1.0, "C change");
    close(
        metric(&o, "psi_monetary_sum", None),
        0.3 * 4f64.ln(),
        "psi metric",
    );
    close(metric(&o, "ks_statistic_frequency", None), 0.0, "ks metric");
    close(metric(&o, "max_psi", None), 0.3 * 4f64.ln(), "max_psi");
    assert_eq!(text(&table(&o, "metrics"), "segmentation")[0], "segs");

    assert_eq!(o.fact("previous_found"), true);
    assert_eq!(o.fact("new_customers"), 2);
    assert_eq!(o.fact("gone_customers"), 2);
    assert_eq!(o.fact("stayed_share"), 0.75);
    assert_eq!(o.fact("major_shifts"), &json!(["monetary_sum"]));
    assert_eq!(o.fact("previous_run")["pipeline"], "monthly");
}

#[test]
fn identical_runs_have_no_drift_and_a_diagonal_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, f) = current_run();
    write_run(tmp.path(), "segs", &a, &f, None);
    let o = run(json!({"previous": tmp.path().to_str().unwrap()}), 1);
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
    for ((from, to), (n, _)) in matrix(&o) {
        // this run: A {1 2 4 11}, B {3 5 7}, C {6 8}, D {12}
        let want = match from.as_str() {
            "A" => 4,
            "B" => 3,
            "C" => 2,
            "D" => 1,
            _ => 0,
        };
        if from == to {
            assert_eq!(n, want, "{from}→{to}");
        } else {
            assert_eq!(n, 0, "{from}→{to}");
        }
    }
    let ft = table(&o, "features");
    assert_eq!(col(&ft, "psi"), [Some(0.0); 3]);
    assert_eq!(col(&ft, "ks_statistic"), [Some(0.0); 3]);
    let s = table(&o, "sizes");
    assert_eq!(col(&s, "change"), [Some(0.0); 4]);
    assert_eq!(metric(&o, "stayed_share", None), Some(1.0));
    assert_eq!(metric(&o, "new_customers", None), Some(0.0));
    assert_eq!(metric(&o, "gone_customers", None), Some(0.0));
    assert_eq!(o.fact("major_shifts"), &json!([]));
}

#[test]
fn another_step_name_and_key_type() {
    // last month the segmenter step was `rfm_old` and the key was Int32
    let tmp = tempfile::tempdir().unwrap();
    let (a, f) = previous_run();
    let a32 = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Int32, false),
            Field::new("segment_id", DataType::Int32, false),
            Field::new("segment", DataType::Utf8, false),
        ])),
        vec![
            cast(a.column(0), &DataType::Int32).unwrap(),
            a.column(1).clone(),
            a.column(2).clone(),
        ],
    )
    .unwrap();
    write_run(tmp.path(), "rfm_old", &a32, &f, None);
    let dir = tmp.path().to_str().unwrap();
    let o = run(
        json!({"previous": dir, "segmentation_step": "rfm_old", "features": ["monetary_sum"]}),
        1,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
    assert_eq!(matrix(&o)[&("A".into(), "A".into())].0, 3);
    assert_eq!(text(&table(&o, "features"), "feature"), ["monetary_sum"]);
    // without the override the default file is missing: the error lists the run's files
    let o = run(json!({"previous": dir}), 1);
    assert_ne!(o.status, abi::STATUS_OK);
    assert_eq!(o.error_field().as_deref(), Some("segmentation_step"));
    assert!(
        o.error_message().contains("steps/segs/assignments.parquet"),
        "{}",
        o.error_message()
    );
}

#[test]
fn same_result_at_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, f) = previous_run();
    write_run(tmp.path(), "segs", &a, &f, None);
    let go = |t| {
        let o = run(json!({"previous": tmp.path().to_str().unwrap()}), t);
        assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
        ["migration", "sizes", "features", "metrics"].map(|p| table(&o, p))
    };
    assert_eq!(go(1), go(6));
}

#[test]
fn missing_or_unfinished_previous_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("runs/monthly/2025-01");
    let o = run(json!({"previous": missing.to_str().unwrap()}), 1);
    assert_ne!(o.status, abi::STATUS_OK);
    assert_eq!(o.error_field().as_deref(), Some("previous"));
    let msg = o.error_message();
    assert!(msg.contains(missing.to_str().unwrap()), "{msg}");
    assert!(
        msg.contains("does not exist") && msg.contains("if_missing: skip"),
        "{msg}"
    );

    // first run: skip
    let o = run(
        json!({"previous": missing.to_str().unwrap(), "if_missing": "skip"}),
        1,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
    assert_eq!(o.fact("previous_found"), false);
    for p in ["migration", "sizes", "features", "metrics"] {
        assert_eq!(o.rows(p), 0, "{p}");
    }

    // a run still being written (e.g. this run's own --out)
    let (a, f) = previous_run();
    write_run(
        tmp.path(),
        "segs",
        &a,
        &f,
        Some(manifest("running", &["features", "segs"])),
    );
    let o = run(json!({"previous": tmp.path().to_str().unwrap()}), 1);
    assert_eq!(o.error_field().as_deref(), Some("previous"));
    assert!(
        o.error_message().contains("running"),
        "{}",
        o.error_message()
    );

    // a run without the step
    write_run(
        tmp.path(),
        "segs",
        &a,
        &f,
        Some(manifest("succeeded", &["features", "kmeans"])),
    );
    let o = run(json!({"previous": tmp.path().to_str().unwrap()}), 1);
    assert_eq!(o.error_field().as_deref(), Some("segmentation_step"));
    assert!(
        o.error_message().contains("no step `segs`") && o.error_message().contains("kmeans"),
        "{}",
        o.error_message()
    );

    // a file, not a directory
    let file = tmp.path().join("manifest.json");
    let o = run(json!({"previous": file.to_str().unwrap()}), 1);
    assert_eq!(o.error_field().as_deref(), Some("previous"));
}

#[test]
fn config_errors_at_plan_time() {
    let (a, f) = current_run();
    let inputs = [("features", f.schema()), ("segs.assignments", a.schema())];
    let cases = [
        (json!({"previous": "x", "bins": 1}), "bins"),
        (json!({"previous": ""}), "previous"),
        (json!({"previous": "x", "features": ["nope"]}), "features.0"),
        (
            json!({"previous": "x", "segmentation_step": "Bad Step"}),
            "segmentation_step",
        ),
    ];
    for (cfg, field) in cases {
        let p = fake_host::plan(ENTRY, "drift", cfg.clone(), &inputs);
        assert_ne!(p.status, abi::STATUS_OK, "{cfg}");
        assert_eq!(
            p.error_field().as_deref(),
            Some(field),
            "{cfg}: {:?}",
            p.error
        );
    }
    // two segmentations
    let p = fake_host::plan(
        ENTRY,
        "drift",
        json!({"previous": "x"}),
        &[
            ("features", f.schema()),
            ("segs.assignments", a.schema()),
            ("other.assignments", a.schema()),
        ],
    );
    assert!(
        p.error_message().contains("one segmentation"),
        "{:?}",
        p.error
    );
    let ok = fake_host::plan(ENTRY, "drift", json!({"previous": "x"}), &inputs);
    assert_eq!(ok.status, abi::STATUS_OK, "{:?}", ok.error);
    let _: SchemaRef = Arc::new(ok.schema("migration").clone());
}

/// 1M customers, 8 features, 11 segments, each run's files as `segflow run` writes
/// them. `cargo test --release -p segflow-evaluate --test drift -- --ignored --nocapture`
#[test]
#[ignore]
fn speed_1m_customers() {
    let n = 1_000_000usize;
    let labels: Vec<String> = (0..11).map(|i| format!("seg{i}")).collect();
    let make = |shift: u64| {
        let keys: Vec<i64> = (0..n as i64).map(|k| k + shift as i64 * 50_000).collect();
        let mut x = 0x9e3779b97f4a7c15u64 ^ shift;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let ids: Vec<i32> = (0..n).map(|_| (rnd() * 11.0) as i32).collect();
        let a = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("customer_id", DataType::Int64, false),
                Field::new("segment_id", DataType::Int32, false),
                Field::new("segment", DataType::Utf8, false),
            ])),
            vec![
                Arc::new(Int64Array::from(keys.clone())),
                Arc::new(Int32Array::from(ids.clone())),
                Arc::new(StringArray::from(
                    ids.iter()
                        .map(|&i| labels[i as usize].as_str())
                        .collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap();
        let mut fields = vec![Field::new("customer_id", DataType::Int64, false)];
        let mut cols: Vec<Arc<dyn Array>> = vec![Arc::new(Int64Array::from(keys))];
        for j in 0..8 {
            fields.push(Field::new(format!("f{j}"), DataType::Float64, false));
            let v: Vec<f64> = (0..n)
                .map(|_| (rnd() * 100.0 + shift as f64).round())
                .collect();
            cols.push(Arc::new(Float64Array::from(v)));
        }
        let f = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
        (a, f)
    };
    let tmp = tempfile::tempdir().unwrap();
    let (pa, pf) = make(0);
    write_run(tmp.path(), "segs", &pa, &pf, None);
    let (a, f) = make(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    for t in [1, threads] {
        let start = std::time::Instant::now();
        let o = fake_host::run(
            ENTRY,
            "drift",
            json!({"previous": tmp.path().to_str().unwrap()}),
            t,
            vec![
                ("features", f.schema(), vec![f.clone()]),
                ("segs.assignments", a.schema(), vec![a.clone()]),
            ],
        );
        assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
        eprintln!(
            "drift, 1M customers, 8 features, 11 segments, {t} thread(s): {:.3} s",
            start.elapsed().as_secs_f64()
        );
    }
}

/// The step-cache fingerprint: the previous run's manifest and step files.
#[test]
fn fingerprint_follows_the_previous_run() {
    use segflow_sdk::{Component, Fingerprint};
    let dir = tempfile::tempdir().unwrap();
    let prev = dir.path().join("prev");
    std::fs::create_dir_all(prev.join("steps/seg")).unwrap();
    std::fs::write(prev.join("manifest.json"), r#"{"status":"ok"}"#).unwrap();
    std::fs::write(prev.join("steps/seg/assignments.parquet"), b"PAR1").unwrap();
    let fp = |cfg: Value| {
        let d: segflow_evaluate::drift::Drift = serde_json::from_value(cfg).unwrap();
        d.fingerprint().unwrap()
    };
    let cfg = json!({"previous": prev.display().to_string()});
    let f0 = fp(cfg.clone());
    let Fingerprint::Source(v) = &f0 else {
        panic!("{f0:?}")
    };
    assert!(v["manifest_sha256"].as_str().unwrap().len() == 64, "{v}");
    assert_eq!(v["files"][0]["path"], "steps/seg/assignments.parquet");
    assert_eq!(f0, fp(cfg.clone()));
    std::fs::write(prev.join("manifest.json"), r#"{"status":"failed"}"#).unwrap();
    assert_ne!(f0, fp(cfg.clone()));

    let missing =
        json!({"previous": dir.path().join("none").display().to_string(), "if_missing": "skip"});
    assert_eq!(
        fp(missing),
        Fingerprint::Source(json!({"previous": "missing"}))
    );
    let missing = json!({"previous": dir.path().join("none").display().to_string()});
    assert!(matches!(fp(missing), Fingerprint::Never(_)));
}
