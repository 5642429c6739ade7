//! `clv` through the real ABI: on the CDNOW sample its facts are lifetimes' parameters
//! (the reference of crates/segflow-ml/tests/fixtures/clv_reference.json, made by
//! lifetimes 0.11.3); per-segment figures are the sums of the per-customer ones; the
//! holdout metrics are recomputed by hand on a small table; bad input gives errors that
//! say what is wrong and where.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_ml::clv::BetaGeo;
use segflow_sdk::arrow::array::{
    Array, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};
use segflow_sdk::ffi::abi;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_evaluate::segflow_plugin_v1 as abi::EntryFn;

type Input = (&'static str, SchemaRef, Vec<RecordBatch>);

fn reference() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/segflow-ml/tests/fixtures/clv_reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("fixture")).expect("json")
}

/// Days since 1970-01-01 of a YYYYMMDD date.
fn days(v: u32) -> i64 {
    let (y, m, d) = (
        i64::from(v / 10000),
        i64::from(v / 100 % 100),
        i64::from(v % 100),
    );
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468
}

/// The CDNOW sample as `customer_features` with `calibration_end: 1997-09-30` alone and
/// `time_unit: weeks` writes it: customer_id (the sample index), frequency, recency, T,
/// monetary_value.
fn cdnow() -> (SchemaRef, RecordBatch) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cdnow_sample.txt");
    let text = std::fs::read_to_string(path).expect("cdnow sample");
    let end = days(19970930);
    let mut by: BTreeMap<i64, BTreeMap<i64, f64>> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 5 {
            continue;
        }
        let d = days(f[2].parse().unwrap());
        if d <= end {
            *by.entry(f[1].parse().unwrap())
                .or_default()
                .entry(d)
                .or_default() += f[4].parse::<f64>().unwrap();
        }
    }
    let (mut id, mut x, mut r, mut t, mut m) = (vec![], vec![], vec![], vec![], vec![]);
    for (c, ds) in by {
        let first = *ds.keys().next().unwrap();
        let last = *ds.keys().last().unwrap();
        let rep: Vec<f64> = ds.values().skip(1).copied().collect();
        id.push(c);
        x.push(rep.len() as f64);
        r.push((last - first) as f64 / 7.0);
        t.push((end - first) as f64 / 7.0);
        m.push(if rep.is_empty() {
            0.0
        } else {
            rep.iter().sum::<f64>() / rep.len() as f64
        });
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("frequency", DataType::Float64, false),
        Field::new("recency", DataType::Float64, false),
        Field::new("T", DataType::Float64, false),
        Field::new("monetary_value", DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(id)),
            Arc::new(Float64Array::from(x)),
            Arc::new(Float64Array::from(r)),
            Arc::new(Float64Array::from(t)),
            Arc::new(Float64Array::from(m)),
        ],
    )
    .unwrap();
    (schema, batch)
}

fn segmentation(keys: Vec<i64>, labels: Vec<&str>) -> (SchemaRef, RecordBatch) {
    let mut names: Vec<&str> = labels.clone();
    names.sort();
    names.dedup();
    let ids: Vec<i32> = labels
        .iter()
        .map(|l| names.iter().position(|n| n == l).unwrap() as i32)
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(keys)),
            Arc::new(Int32Array::from(ids)),
            Arc::new(StringArray::from(labels)),
        ],
    )
    .unwrap();
    (schema, batch)
}

fn run(config: Value, inputs: Vec<Input>, threads: u32) -> fake_host::Outcome {
    fake_host::run(ENTRY, "clv", config, threads, inputs)
}

fn table(o: &fake_host::Outcome, port: &str) -> RecordBatch {
    let b = o.table(port);
    concat_batches(&b[0].schema(), b).unwrap()
}

fn f64s(b: &RecordBatch, c: &str) -> Vec<Option<f64>> {
    let a = b.column_by_name(c).unwrap_or_else(|| panic!("column {c}"));
    let a = a.as_primitive::<Float64Type>();
    (0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i)))
        .collect()
}

fn strs(b: &RecordBatch, c: &str) -> Vec<Option<String>> {
    let a = b.column_by_name(c).unwrap().as_string::<i32>();
    (0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// metric → value of the `metrics` rows of `segmentation` with segment `segment`.
fn metrics(
    o: &fake_host::Outcome,
    segmentation: &str,
    segment: Option<&str>,
) -> BTreeMap<String, Option<f64>> {
    let m = table(o, "metrics");
    let (s, name, seg, v) = (
        strs(&m, "segmentation"),
        strs(&m, "metric"),
        strs(&m, "segment"),
        f64s(&m, "value"),
    );
    (0..m.num_rows())
        .filter(|&i| s[i].as_deref() == Some(segmentation) && seg[i].as_deref() == segment)
        .map(|i| (name[i].clone().unwrap(), v[i]))
        .collect()
}

#[test]
fn cdnow_facts_are_lifetimes_parameters() {
    let f = reference();
    let (schema, batch) = cdnow();
    let ids: Vec<i64> = batch
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    let x = f64s(&batch, "frequency");
    let labels: Vec<&str> = x
        .iter()
        .map(|v| {
            if v.unwrap() > 0.0 {
                "repeat"
            } else {
                "one-off"
            }
        })
        .collect();
    let (sschema, sbatch) = segmentation(ids.clone(), labels);
    let config = json!({"time_unit": "weeks", "horizon": 39});
    let plan = fake_host::plan(
        ENTRY,
        "clv",
        config.clone(),
        &[
            ("features", schema.clone()),
            ("buyers.assignments", sschema.clone()),
        ],
    );
    assert_eq!(plan.status, abi::STATUS_OK, "{}", plan.error_message());
    let o = run(
        config,
        vec![
            ("features", schema, vec![batch]),
            ("buyers.assignments", sschema, vec![sbatch]),
        ],
        2,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{}", o.error_message());
    for port in ["customers", "segments", "metrics"] {
        assert_eq!(
            o.table(port)[0].schema().as_ref(),
            plan.schema(port),
            "plan and run schemas of {port}"
        );
    }
    let (bg, gg) = (o.fact("bgnbd"), o.fact("gamma_gamma"));
    for (got, want, keys) in [
        (
            bg,
            &f["bgnbd"],
            &["r", "alpha", "a", "b", "log_likelihood"][..],
        ),
        (
            gg,
            &f["gamma_gamma"],
            &["p", "q", "v", "log_likelihood"][..],
        ),
    ] {
        for k in keys {
            let (g, w) = (got[k].as_f64().unwrap(), want[k].as_f64().unwrap());
            assert!(rel(g, w) < 1e-4, "{k}: {g} vs lifetimes {w}");
        }
    }
    assert_eq!(bg["converged"], json!(true));
    assert_eq!(bg["customers"], json!(2357));
    assert_eq!(gg["customers"], json!(946));
    assert_eq!(o.fact("customers_modelled"), &json!(2357));

    // Per customer, as lifetimes (39-week horizon, 12 months at 1% a month, weeks).
    let c = table(&o, "customers");
    let key: Vec<i64> = c.column(0).as_primitive::<Int64Type>().values().to_vec();
    let (e, pa, v, clv) = (
        f64s(&c, "expected_purchases"),
        f64s(&c, "p_alive"),
        f64s(&c, "expected_average_value"),
        f64s(&c, "clv"),
    );
    for cust in f["customers"].as_array().unwrap() {
        let id = cust["customer"].as_i64().unwrap();
        let i = key.iter().position(|&k| k == id).unwrap();
        // customer 1901 is all but certainly gone (P(alive) 2.5e-11): its values move 35
        // times as fast as the parameters, see crates/segflow-ml/tests/clv_lifetimes.rs
        let tol = if pa[i].unwrap() < 1e-9 { 5e-6 } else { 1e-6 };
        for (name, got) in [
            ("expected_purchases_39", e[i]),
            ("p_alive", pa[i]),
            ("expected_average_profit", v[i]),
            ("clv", clv[i]),
        ] {
            let want = cust[name].as_f64().unwrap();
            assert!(
                rel(got.unwrap(), want) < tol,
                "customer {id} {name}: {got:?} vs {want}"
            );
        }
    }
    assert_eq!(strs(&c, "buyers")[0].as_deref(), Some("repeat"));
}

#[test]
fn segment_figures_are_sums_of_customer_figures() {
    let (schema, batch) = cdnow();
    let ids: Vec<i64> = batch
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    // three segments by id, given in reverse order (the join hashes), and a second
    // segmentation that leaves some customers out
    let labels: Vec<&str> = ids
        .iter()
        .map(|i| ["low", "mid", "high"][(*i % 3) as usize])
        .collect();
    let (s1, b1) = segmentation(
        ids.iter().rev().copied().collect(),
        labels.iter().rev().copied().collect(),
    );
    let some: Vec<i64> = ids.iter().copied().filter(|i| i % 5 != 0).collect();
    let (s2, b2) = segmentation(
        some.clone(),
        some.iter()
            .map(|i| if *i < 1000 { "early" } else { "late" })
            .collect(),
    );
    let o = run(
        json!({"time_unit": "W"}),
        vec![
            ("features", schema, vec![batch]),
            ("thirds", s1, vec![b1]),
            ("subset.assignments", s2, vec![b2]),
        ],
        1,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{}", o.error_message());
    assert_eq!(o.fact("horizon"), &json!(52.0));
    let c = table(&o, "customers");
    let s = table(&o, "segments");
    let (e, pa, v, clv) = (
        f64s(&c, "expected_purchases"),
        f64s(&c, "p_alive"),
        f64s(&c, "expected_average_value"),
        f64s(&c, "clv"),
    );
    let seg_name = strs(&s, "segmentation");
    let seg_label = strs(&s, "segment");
    let n_cust: Vec<i64> = s
        .column_by_name("customers")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    let cols: BTreeMap<&str, Vec<Option<f64>>> = [
        "clv_total",
        "clv_mean",
        "clv_share",
        "expected_purchases_total",
        "expected_purchases_mean",
        "p_alive_mean",
        "expected_average_value_mean",
        "expected_value_total",
    ]
    .into_iter()
    .map(|n| (n, f64s(&s, n)))
    .collect();
    assert_eq!(s.num_rows(), 5);
    for name in ["thirds", "subset"] {
        let labels_of = strs(&c, name);
        let total: f64 = (0..c.num_rows())
            .filter(|&i| labels_of[i].is_some())
            .map(|i| clv[i].unwrap())
            .sum();
        let mut seen = 0;
        for r in 0..s.num_rows() {
            if seg_name[r].as_deref() != Some(name) {
                continue;
            }
            let label = seg_label[r].clone();
            let rows: Vec<usize> = (0..c.num_rows())
                .filter(|&i| labels_of[i] == label)
                .collect();
            seen += rows.len();
            let k = rows.len() as f64;
            let sum = |v: &[Option<f64>]| rows.iter().map(|&i| v[i].unwrap()).sum::<f64>();
            assert_eq!(n_cust[r] as usize, rows.len());
            let close = |col: &str, want: f64| {
                let got = cols[col][r].unwrap();
                assert!(
                    rel(got, want) < 1e-12,
                    "{name}/{label:?} {col}: {got} vs {want}"
                );
            };
            close("clv_total", sum(&clv));
            close("clv_mean", sum(&clv) / k);
            close("clv_share", sum(&clv) / total);
            close("expected_purchases_total", sum(&e));
            close("expected_purchases_mean", sum(&e) / k);
            close("p_alive_mean", sum(&pa) / k);
            close("expected_average_value_mean", sum(&v) / k);
            close(
                "expected_value_total",
                rows.iter().map(|&i| e[i].unwrap() * v[i].unwrap()).sum(),
            );
            let m = metrics(&o, name, label.as_deref());
            assert!(rel(m["clv_total"].unwrap(), sum(&clv)) < 1e-12);
            assert_eq!(m["customers"], Some(k));
        }
        let m = metrics(&o, name, None);
        assert!(rel(m["clv_total"].unwrap(), total) < 1e-12);
        assert_eq!(seen, labels_of.iter().filter(|l| l.is_some()).count());
    }
    assert_eq!(
        strs(&c, "subset").iter().filter(|l| l.is_none()).count(),
        2357 - some.len()
    );

    // the same at another thread count, bit for bit
    let (schema, batch) = cdnow();
    let o2 = run(
        json!({"time_unit": "weeks"}),
        vec![("features", schema, vec![batch])],
        2,
    );
    let c2 = table(&o2, "customers");
    assert_eq!(f64s(&c2, "clv"), clv);
    // without segmentations: one `all` segment
    let s2 = table(&o2, "segments");
    assert_eq!(s2.num_rows(), 1);
    assert_eq!(strs(&s2, "segmentation")[0].as_deref(), Some("all"));
    assert_eq!(
        f64s(&s2, "clv_total")[0],
        Some(clv.iter().map(|v| v.unwrap()).sum())
    );
}

/// A small calibration / holdout table as `customer_features` writes it with
/// `calibration_end` and `as_of` (days): 14 customers, and customer 99 whose first
/// purchase is after calibration_end (null summary).
fn holdout_table() -> (SchemaRef, RecordBatch) {
    #[rustfmt::skip]
    let rows: Vec<(i64, Option<[f64; 4]>, f64)> = vec![
        // id, (frequency_cal, recency_cal, T_cal, monetary_value_cal), frequency_holdout
        (1, Some([0.0, 0.0, 90.0, 0.0]), 0.0),
        (2, Some([0.0, 0.0, 60.0, 0.0]), 1.0),
        (3, Some([1.0, 20.0, 80.0, 30.0]), 0.0),
        (4, Some([1.0, 70.0, 85.0, 12.0]), 2.0),
        (5, Some([2.0, 40.0, 88.0, 25.0]), 1.0),
        (6, Some([2.0, 80.0, 90.0, 40.0]), 3.0),
        (7, Some([3.0, 60.0, 70.0, 18.0]), 2.0),
        (8, Some([4.0, 85.0, 90.0, 22.0]), 4.0),
        (9, Some([5.0, 50.0, 90.0, 60.0]), 0.0),
        (10, Some([7.0, 88.0, 89.0, 35.0]), 6.0),
        (11, Some([9.0, 75.0, 80.0, 15.0]), 5.0),
        (12, Some([0.0, 0.0, 30.0, 0.0]), 0.0),
        (13, Some([1.0, 5.0, 45.0, 50.0]), 1.0),
        (14, Some([3.0, 30.0, 90.0, 28.0]), 1.0),
        (99, None, 2.0),
    ];
    let col = |k: usize| -> Arc<dyn Array> {
        Arc::new(Float64Array::from(
            rows.iter().map(|r| r.1.map(|v| v[k])).collect::<Vec<_>>(),
        ))
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("frequency", DataType::Int64, false),
        Field::new("frequency_cal", DataType::Float64, true),
        Field::new("recency_cal", DataType::Float64, true),
        Field::new("T_cal", DataType::Float64, true),
        Field::new("monetary_value_cal", DataType::Float64, true),
        Field::new("frequency_holdout", DataType::Float64, true),
        Field::new("duration_holdout", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            // the RFM `frequency` (distinct days up to as_of): not the summary's
            Arc::new(Int64Array::from(vec![77; rows.len()])),
            col(0),
            col(1),
            col(2),
            col(3),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.1.map(|_| r.2)).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.1.map(|_| 100.0)).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap();
    (schema, batch)
}

#[test]
fn holdout_metrics_by_hand() {
    let (schema, batch) = holdout_table();
    let ids: Vec<i64> = batch
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    let labels: Vec<&str> = ids
        .iter()
        .map(|&i| if i % 2 == 0 { "even" } else { "odd" })
        .collect();
    let (sschema, sbatch) = segmentation(ids.clone(), labels.clone());
    let o = run(
        json!({"penalizer": 0.01, "holdout_buckets": 3}),
        vec![
            ("features", schema, vec![batch]),
            ("parity", sschema, vec![sbatch]),
        ],
        1,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{}", o.error_message());
    assert_eq!(o.fact("customers"), &json!(15));
    assert_eq!(o.fact("customers_modelled"), &json!(14));
    let bg = o.fact("bgnbd");
    let model = BetaGeo::new(
        bg["r"].as_f64().unwrap(),
        bg["alpha"].as_f64().unwrap(),
        bg["a"].as_f64().unwrap(),
        bg["b"].as_f64().unwrap(),
    )
    .unwrap();
    let c = table(&o, "customers");
    let (pred, act) = (f64s(&c, "holdout_predicted"), f64s(&c, "holdout_actual"));
    let (_, b) = holdout_table();
    let (x, r, t, h) = (
        f64s(&b, "frequency_cal"),
        f64s(&b, "recency_cal"),
        f64s(&b, "T_cal"),
        f64s(&b, "frequency_holdout"),
    );
    // customer 99 (no calibration summary) has no predictions
    assert_eq!(pred[14], None);
    assert_eq!(f64s(&c, "clv")[14], None);
    let mut want_pred = vec![];
    for i in 0..14 {
        let p = model
            .conditional_expected_purchases(100.0, x[i].unwrap(), r[i].unwrap(), t[i].unwrap())
            .unwrap();
        assert!(rel(pred[i].unwrap(), p) < 1e-12, "customer {}", ids[i]);
        assert_eq!(act[i], h[i]);
        want_pred.push(p);
    }
    let abs: Vec<f64> = (0..14)
        .map(|i| (want_pred[i] - h[i].unwrap()).abs())
        .collect();
    let mae = abs.iter().sum::<f64>() / 14.0;
    let all = metrics(&o, "parity", None);
    assert!(rel(all["holdout_mae"].unwrap(), mae) < 1e-12);
    assert_eq!(all["holdout_customers"], Some(14.0));
    assert_eq!(all["customers"], Some(15.0));
    assert_eq!(all["customers_modelled"], Some(14.0));
    assert!(
        rel(
            all["holdout_predicted_total"].unwrap(),
            want_pred.iter().sum()
        ) < 1e-12
    );
    assert_eq!(all["holdout_actual_total"], Some(26.0));
    assert!(rel(o.fact("holdout")["mae"].as_f64().unwrap(), mae) < 1e-12);
    // buckets by calibration frequency: 0 (customers 1, 2, 12), 1 (3, 4, 13),
    // 2 (5, 6), 3+ (7, 8, 9, 10, 11, 14)
    for (name, members) in [
        ("f0", vec![0, 1, 11]),
        ("f1", vec![2, 3, 12]),
        ("f2", vec![4, 5]),
        ("f3plus", vec![6, 7, 8, 9, 10, 13]),
    ] {
        let k = members.len() as f64;
        let p: f64 = members.iter().map(|&i| want_pred[i]).sum::<f64>() / k;
        let a: f64 = members.iter().map(|&i| h[i].unwrap()).sum::<f64>() / k;
        let got_p = all[&format!("holdout_calibration_{name}_predicted")].unwrap();
        assert!(rel(got_p, p) < 1e-12, "{name}: {got_p} vs {p}");
        assert_eq!(
            all[&format!("holdout_calibration_{name}_actual")],
            Some(a),
            "{name}"
        );
        assert_eq!(
            all[&format!("holdout_calibration_{name}_customers")],
            Some(k)
        );
    }
    // per segment: odd customers 1, 3, ..., 13 (rows 0, 2, ..., 12), and 99 (unmodelled)
    let odd = metrics(&o, "parity", Some("odd"));
    let rows: Vec<usize> = (0..14).step_by(2).collect();
    let seg_mae = rows.iter().map(|&i| abs[i]).sum::<f64>() / 7.0;
    assert!(rel(odd["holdout_mae"].unwrap(), seg_mae) < 1e-12);
    assert_eq!(odd["customers"], Some(8.0));
    assert_eq!(odd["customers_modelled"], Some(7.0));
    let s = table(&o, "segments");
    let r_odd = strs(&s, "segment")
        .iter()
        .position(|l| l.as_deref() == Some("odd"))
        .unwrap();
    assert_eq!(
        f64s(&s, "holdout_actual")[r_odd],
        Some(rows.iter().map(|&i| h[i].unwrap()).sum())
    );
    assert_eq!(f64s(&s, "holdout_customers")[r_odd], Some(7.0));

    // `holdout: false` drops the holdout columns and metrics
    let (schema, batch) = holdout_table();
    let o = run(
        json!({"penalizer": 0.01, "holdout": false}),
        vec![("features", schema, vec![batch])],
        1,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{}", o.error_message());
    assert!(table(&o, "customers")
        .column_by_name("holdout_predicted")
        .is_none());
    assert!(!metrics(&o, "all", None).contains_key("holdout_mae"));
}

fn summary(rows: &[(f64, f64, f64, f64)]) -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("frequency", DataType::Float64, false),
        Field::new("recency", DataType::Float64, false),
        Field::new("T", DataType::Float64, false),
        Field::new("monetary_value", DataType::Float64, false),
    ]));
    let col = |f: fn(&(f64, f64, f64, f64)) -> f64| -> Arc<dyn Array> {
        Arc::new(Float64Array::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(
                (1..=rows.len() as i64).map(|i| i * 10).collect::<Vec<_>>(),
            )),
            col(|r| r.0),
            col(|r| r.1),
            col(|r| r.2),
            col(|r| r.3),
        ],
    )
    .unwrap();
    (schema, batch)
}

fn run_error(rows: &[(f64, f64, f64, f64)]) -> String {
    let (schema, batch) = summary(rows);
    let o = run(json!({}), vec![("features", schema, vec![batch])], 1);
    assert_ne!(o.status, abi::STATUS_OK);
    o.error_message()
}

#[test]
fn bad_input_gives_clear_errors() {
    // a missing column: at plan time, naming the config field
    let (schema, _) = summary(&[(1.0, 2.0, 3.0, 4.0)]);
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .filter(|f| f.name() != "recency")
        .map(|f| f.as_ref().clone())
        .collect();
    let p = fake_host::plan(
        ENTRY,
        "clv",
        json!({}),
        &[("features", Arc::new(Schema::new(fields)))],
    );
    assert_ne!(p.status, abi::STATUS_OK);
    assert_eq!(p.error_field().as_deref(), Some("recency"));
    let msg = p.error_message();
    assert!(
        msg.contains("no column `recency`") && msg.contains("calibration_end"),
        "{msg}"
    );

    // two tables and no segmentation
    let p = fake_host::plan(
        ENTRY,
        "clv",
        json!({}),
        &[("a", schema.clone()), ("b", schema.clone())],
    );
    assert!(
        p.error_message()
            .contains("none of which is a segmentation"),
        "{}",
        p.error_message()
    );

    // config
    let p = fake_host::plan(
        ENTRY,
        "clv",
        json!({"clv": {"months": 0}}),
        &[("features", schema.clone())],
    );
    assert_ne!(p.status, abi::STATUS_OK);

    let ok = [
        (0.0, 0.0, 30.0, 0.0),
        (2.0, 10.0, 30.0, 20.0),
        (1.0, 5.0, 25.0, 12.0),
    ];
    // negative recency
    let mut rows = ok.to_vec();
    rows.push((1.0, -3.0, 20.0, 10.0));
    let msg = run_error(&rows);
    assert!(
        msg.contains("customer 40")
            && msg.contains("recency = -3")
            && msg.contains("cannot be negative"),
        "{msg}"
    );
    // recency > T
    let mut rows = ok.to_vec();
    rows.push((1.0, 31.0, 30.0, 10.0));
    let msg = run_error(&rows);
    assert!(
        msg.contains("customer 40") && msg.contains("recency = 31 > T = 30"),
        "{msg}"
    );
    // a fractional frequency
    let mut rows = ok.to_vec();
    rows.push((1.5, 3.0, 30.0, 10.0));
    let msg = run_error(&rows);
    assert!(msg.contains("whole number"), "{msg}");
    // all frequencies zero: Gamma-Gamma cannot be fitted
    let msg = run_error(&[
        (0.0, 0.0, 30.0, 0.0),
        (0.0, 0.0, 20.0, 0.0),
        (0.0, 0.0, 10.0, 0.0),
    ]);
    assert!(
        msg.contains("no customer has a repeat purchase") && msg.contains("Gamma-Gamma"),
        "{msg}"
    );
    // a repeat customer with no spend
    let mut rows = ok.to_vec();
    rows.push((2.0, 3.0, 30.0, 0.0));
    let msg = run_error(&rows);
    assert!(
        msg.contains("customer 40") && msg.contains("positive mean spend"),
        "{msg}"
    );
}
