//! `kpis` through the real ABI on eight customers in two segments, every figure worked
//! out by hand below: the three churn sources and their precedence, growth against an
//! earlier period, the whole-segmentation metrics, and config errors that name their
//! field.

#[path = "../../support/fake_host.rs"]
mod fake_host;
use fake_host::{assert_close, col, strings as text, table};

use segflow_sdk::arrow::array::{
    Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use segflow_sdk::ffi::abi;
use serde_json::{json, Value};
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_evaluate::segflow_plugin_v1 as abi::EntryFn;

/// The features (as customer_features writes them) and the segmentations:
///
/// | id | frequency | n_transactions | monetary_sum | recency_days | tenure_days | frequency_holdout | seg | life |
/// |---|---|---|---|---|---|---|---|---|
/// | 1 | 1 | 1 |  10 | 400 | 400 | 0    | A | 流失 (churned) |
/// | 2 | 2 | 3 |  30 |  10 | 200 | 1    | A | 活躍 (active) |
/// | 3 | 3 | 4 | 100 |  30 | 300 | 2    | A | 活躍 |
/// | 4 | 1 | 2 |  20 | 500 | 500 | null | A | 流失 |
/// | 5 | 5 | 6 | 300 |   5 | 600 | 3    | B | 活躍 |
/// | 6 | 4 | 5 | 150 |  20 | 365 | 0    | B | 活躍 |
/// | 7 | 1 | 1 |  50 |  60 |  60 | 1    | B | 新客戶 (new) |
/// | 8 | 2 | 2 | 100 | 380 | 730 | 0    | B | 沉睡 (dormant) |
///
/// Customer 8 is dormant in the lifecycle segmentation (made with a 400-day dormant
/// limit) but churned by the 365-day recency rule, so the sources give different
/// answers. The observation period is the longest tenure, 730 days = 730 / 30.4375
/// months.
fn features(with_holdout: bool) -> (SchemaRef, RecordBatch) {
    let mut fields = vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("frequency", DataType::Int64, false),
        Field::new("n_transactions", DataType::Int64, false),
        Field::new("monetary_sum", DataType::Float64, false),
        Field::new("recency_days", DataType::Int64, false),
        Field::new("tenure_days", DataType::Int64, false),
    ];
    let mut cols: Vec<Arc<dyn Array>> = vec![
        Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6, 7, 8])),
        Arc::new(Int64Array::from(vec![1, 2, 3, 1, 5, 4, 1, 2])),
        Arc::new(Int64Array::from(vec![1, 3, 4, 2, 6, 5, 1, 2])),
        Arc::new(Float64Array::from(vec![
            10.0, 30.0, 100.0, 20.0, 300.0, 150.0, 50.0, 100.0,
        ])),
        Arc::new(Int64Array::from(vec![400, 10, 30, 500, 5, 20, 60, 380])),
        Arc::new(Int64Array::from(vec![
            400, 200, 300, 500, 600, 365, 60, 730,
        ])),
    ];
    if with_holdout {
        fields.push(Field::new("frequency_holdout", DataType::Float64, true));
        cols.push(Arc::new(Float64Array::from(vec![
            Some(0.0),
            Some(1.0),
            Some(2.0),
            None,
            Some(3.0),
            Some(0.0),
            Some(1.0),
            Some(0.0),
        ])));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    (schema, batch)
}

fn segmentation(keys: &[i64], ids: &[i32], labels: &[&str]) -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(keys.to_vec())),
            Arc::new(Int32Array::from(ids.to_vec())),
            Arc::new(StringArray::from(labels.to_vec())),
        ],
    )
    .unwrap();
    (schema, batch)
}

/// The segmentation, in a different order from the features (so the join hashes).
fn seg() -> (SchemaRef, RecordBatch) {
    segmentation(
        &[8, 7, 6, 5, 4, 3, 2, 1],
        &[1, 1, 1, 1, 0, 0, 0, 0],
        &["B", "B", "B", "B", "A", "A", "A", "A"],
    )
}

/// A lifecycle segmentation as the `lifecycle` segmenter writes it: renamed labels and
/// the English `stage` column.
fn life() -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("stage", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6, 7, 8])),
            Arc::new(Int32Array::from(vec![3, 1, 1, 3, 1, 1, 0, 2])),
            Arc::new(StringArray::from(vec![
                "流失",
                "活躍",
                "活躍",
                "流失",
                "活躍",
                "活躍",
                "新客戶",
                "沉睡",
            ])),
            Arc::new(StringArray::from(vec![
                "churned", "active", "active", "churned", "active", "active", "new", "dormant",
            ])),
        ],
    )
    .unwrap();
    (schema, batch)
}

/// An earlier period: A had customers 1, 2; B had 3, 4, 5, 6, 9 (9 has left the base).
fn seg_prev() -> (SchemaRef, RecordBatch) {
    segmentation(
        &[1, 2, 3, 4, 5, 6, 9],
        &[0, 0, 1, 1, 1, 1, 1],
        &["A", "A", "B", "B", "B", "B", "B"],
    )
}

type Input = (&'static str, SchemaRef, Vec<RecordBatch>);

fn input(name: &'static str, (s, b): (SchemaRef, RecordBatch)) -> Input {
    (name, s, vec![b])
}

fn run(config: Value, inputs: Vec<Input>, threads: u32) -> fake_host::Outcome {
    fake_host::run(ENTRY, "kpis", config, threads, inputs)
}

/// The `kpis` schema that `plan` promises for these inputs.
fn planned(config: Value, inputs: &[Input]) -> Schema {
    let schemas: Vec<(&str, SchemaRef)> = inputs.iter().map(|(n, s, _)| (*n, s.clone())).collect();
    let p = fake_host::plan(ENTRY, "kpis", config, &schemas);
    assert_eq!(p.status, abi::STATUS_OK, "{:?}", p.error);
    p.schema("kpis").clone()
}

/// The value of `metric` for `segment` (None: the segmentation-level row).
fn metric(m: &RecordBatch, seg: &str, name: &str, segment: Option<&str>) -> Option<f64> {
    let segs = text(m, "segmentation");
    let names = text(m, "metric");
    let labels = text(m, "segment");
    let values = col(m, "value");
    let hits: Vec<usize> = (0..m.num_rows())
        .filter(|&i| {
            segs[i].as_deref() == Some(seg)
                && names[i].as_deref() == Some(name)
                && labels[i].as_deref() == segment
        })
        .collect();
    assert_eq!(hits.len(), 1, "metric {seg}/{name}/{segment:?}: {hits:?}");
    values[hits[0]]
}

const MONTHS: f64 = 730.0 / 30.4375;

#[test]
fn kpis_match_the_hand_calculation() {
    // no holdout column and no lifecycle: churn from recency_days > 365
    let inputs = vec![
        input("features", features(false)),
        input("seg.assignments", seg()),
    ];
    let want = planned(json!({}), &inputs);
    let o = run(json!({}), inputs, 2);
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
    let k = table(&o, "kpis");
    assert_eq!(k.schema().as_ref(), &want);
    assert_eq!(
        text(&k, "segment"),
        [Some("A".to_string()), Some("B".to_string())]
    );
    assert_eq!(
        text(&k, "segmentation"),
        [Some("seg".into()), Some("seg".into())]
    );
    let s = Some;
    let check = |name: &str, a: f64, b: f64| assert_close(&col(&k, name), &[s(a), s(b)], name);
    // 4 customers each of 8
    check("customers", 4.0, 4.0);
    check("customer_share", 0.5, 0.5);
    // revenue A = 10+30+100+20 = 160, B = 300+150+50+100 = 600, total 760
    check("revenue", 160.0, 600.0);
    check("revenue_share", 160.0 / 760.0, 600.0 / 760.0);
    // transactions A = 1+3+4+2 = 10, B = 6+5+1+2 = 14; per customer 2.5 and 3.5
    check("transactions", 10.0, 14.0);
    check("purchase_frequency", 2.5, 3.5);
    // AOV = revenue / transactions: 160/10 = 16, 600/14
    check("average_order_value", 16.0, 600.0 / 14.0);
    // frequency >= 2: A {2, 3} of 4 = 0.5, B {5, 6, 8} of 4 = 0.75
    check("repeat_rate", 0.5, 0.75);
    // recency > 365: A {1 (400), 4 (500)} = 0.5, B {8 (380)} = 0.25
    check("churn_rate", 0.5, 0.25);
    check("retention_rate", 0.5, 0.75);
    // revenue per customer 160/4 = 40, 600/4 = 150; ARPU per month of 730 days
    check("revenue_per_customer", 40.0, 150.0);
    check("arpu", 40.0 / MONTHS, 150.0 / MONTHS);
    // top ceil(0.2 × 4) = 1 customer: A 100/160, B 300/600
    check("pareto_share", 0.625, 0.5);
    assert!(k.column_by_name("growth").is_none());
    assert!(k.column_by_name("customers_previous").is_none());

    // the whole segmentation: 8 customers, 760 revenue, 24 transactions (3 each),
    // AOV 760/24, repeat 5/8, churn 3/8, top ceil(1.6) = 2 customers 450/760
    let m = table(&o, "metrics");
    let base = |name: &str| metric(&m, "seg", name, None);
    assert_eq!(base("customers"), s(8.0));
    assert_eq!(base("segments"), s(2.0));
    assert_close(
        &[
            base("revenue"),
            base("transactions"),
            base("purchase_frequency"),
            base("average_order_value"),
            base("repeat_rate"),
            base("churn_rate"),
            base("retention_rate"),
            base("revenue_per_customer"),
            base("arpu"),
            base("pareto_share"),
        ],
        &[
            s(760.0),
            s(24.0),
            s(3.0),
            s(760.0 / 24.0),
            s(0.625),
            s(0.375),
            s(0.625),
            s(95.0),
            s(95.0 / MONTHS),
            s(450.0 / 760.0),
        ],
        "segmentation-level metrics",
    );
    // per-segment metrics repeat the wide table
    assert_close(
        &[
            metric(&m, "seg", "revenue_share", Some("B")),
            metric(&m, "seg", "customers", Some("A")),
            metric(&m, "seg", "churn_rate", Some("B")),
        ],
        &[s(600.0 / 760.0), s(4.0), s(0.25)],
        "segment metrics",
    );
    assert_eq!(o.fact("churn_source")["kind"], "recency");
    assert_eq!(o.fact("churn_source")["churn_after_days"], 365.0);
    assert_eq!(o.fact("period_days"), 730.0);
    assert_eq!(o.fact("segmentations")["seg"]["customers"], 8);
}

#[test]
fn holdout_comes_before_recency() {
    let o = run(
        json!({}),
        vec![
            input("features", features(true)),
            input("seg.assignments", seg()),
        ],
        1,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
    let k = table(&o, "kpis");
    // holdout > 0: A {2, 3} of the 3 with a value (4 is null) → retention 2/3;
    // B {5, 7} of 4 → 0.5
    assert_close(
        &col(&k, "retention_rate"),
        &[Some(2.0 / 3.0), Some(0.5)],
        "retention",
    );
    assert_close(
        &col(&k, "churn_rate"),
        &[Some(1.0 / 3.0), Some(0.5)],
        "churn",
    );
    // whole: 4 of 7
    let m = table(&o, "metrics");
    assert_close(
        &[metric(&m, "seg", "retention_rate", None)],
        &[Some(4.0 / 7.0)],
        "whole retention",
    );
    assert_eq!(o.fact("churn_source")["kind"], "holdout");
    assert_eq!(o.fact("churn_source")["column"], "frequency_holdout");

    // naming the recency column does not override a holdout column that is present
    // (precedence: lifecycle, holdout, recency)
    let cfg = json!({"recency": "recency_days", "churn_after_days": 50});
    let o = run(
        cfg.clone(),
        vec![
            input("features", features(true)),
            input("seg.assignments", seg()),
        ],
        1,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
    assert_eq!(o.fact("churn_source")["kind"], "holdout");
    // without a holdout column it applies: recency > 50: A {1, 4} = 0.5, B {7 (60), 8} = 0.5
    let o = run(
        cfg,
        vec![
            input("features", features(false)),
            input("seg.assignments", seg()),
        ],
        1,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
    assert_eq!(o.fact("churn_source")["churn_after_days"], 50.0);
    assert_close(
        &col(&table(&o, "kpis"), "churn_rate"),
        &[Some(0.5), Some(0.5)],
        "recency > 50",
    );
}

#[test]
fn lifecycle_comes_first_and_is_a_segmentation_too() {
    let o = run(
        json!({"lifecycle": "life"}),
        vec![
            input("features", features(true)),
            input("seg.assignments", seg()),
            input("life.assignments", life()),
        ],
        3,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
    let k = table(&o, "kpis");
    assert_eq!(
        text(&k, "segment"),
        ["A", "B", "新客戶", "活躍", "沉睡", "流失"].map(|s| Some(s.to_string()))
    );
    // stage churned: A {1, 4} of 4 = 0.5; B none (8 is dormant) = 0
    // life segments: 新客戶 0, 活躍 0, 沉睡 0, 流失 1
    assert_close(
        &col(&k, "churn_rate"),
        &[0.5, 0.0, 0.0, 0.0, 0.0, 1.0].map(Some),
        "churn",
    );
    assert_close(
        &col(&k, "retention_rate"),
        &[0.5, 1.0, 1.0, 1.0, 1.0, 0.0].map(Some),
        "retention",
    );
    // lifecycle segment sizes 1, 4, 1, 2 and revenue 50, 30+100+300+150, 100, 10+20
    assert_close(
        &col(&k, "customers"),
        &[4.0, 4.0, 1.0, 4.0, 1.0, 2.0].map(Some),
        "customers",
    );
    assert_close(
        &col(&k, "revenue"),
        &[160.0, 600.0, 50.0, 580.0, 100.0, 30.0].map(Some),
        "revenue",
    );
    let m = table(&o, "metrics");
    assert_close(
        &[metric(&m, "seg", "churn_rate", None)],
        &[Some(0.25)],
        "whole churn: {1, 4} of 8",
    );
    assert_eq!(o.fact("churn_source")["kind"], "lifecycle");
    assert_eq!(o.fact("churn_source")["segmentation"], "life");

    // by label instead of the stage column
    let o = run(
        json!({"lifecycle": "life", "churned_label": "沉睡"}),
        vec![
            input("features", features(true)),
            input("seg.assignments", seg()),
            input("life.assignments", life()),
        ],
        1,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
    assert_close(
        &col(&table(&o, "kpis"), "churn_rate")[..2],
        &[Some(0.0), Some(0.25)],
        "churned = 沉睡",
    );
}

#[test]
fn growth_against_an_earlier_period() {
    let cfg = json!({"previous": {"seg": "seg_prev"}});
    let inputs = vec![
        input("features", features(false)),
        input("seg.assignments", seg()),
        input("seg_prev", seg_prev()),
    ];
    let want = planned(cfg.clone(), &inputs);
    let o = run(cfg, inputs, 2);
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
    let k = table(&o, "kpis");
    assert_eq!(k.schema().as_ref(), &want);
    // A: 2 then, 4 now → growth 1; B: 5 then (9 included, it was in B), 4 now → −0.2
    assert_close(
        &col(&k, "customers_previous"),
        &[Some(2.0), Some(5.0)],
        "customers_previous",
    );
    assert_close(&col(&k, "growth"), &[Some(1.0), Some(-0.2)], "growth");
    // the earlier period is not a segmentation of the output
    assert_eq!(k.num_rows(), 2);
    let m = table(&o, "metrics");
    assert_close(
        &[
            metric(&m, "seg", "growth", Some("B")),
            metric(&m, "seg", "customers_previous", Some("A")),
        ],
        &[Some(-0.2), Some(2.0)],
        "growth metrics",
    );
}

#[test]
fn result_does_not_depend_on_threads() {
    let go = |t| {
        let o = run(
            json!({"lifecycle": "life"}),
            vec![
                input("features", features(true)),
                input("seg.assignments", seg()),
                input("life.assignments", life()),
            ],
            t,
        );
        assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
        (table(&o, "kpis"), table(&o, "metrics"))
    };
    assert_eq!(go(1), go(8));
}

#[test]
fn optional_columns_can_be_left_out() {
    let o = run(
        json!({"transactions": null, "frequency": null, "revenue": null}),
        vec![
            input("features", features(false)),
            input("seg.assignments", seg()),
        ],
        1,
    );
    assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
    let k = table(&o, "kpis");
    for c in [
        "revenue",
        "revenue_share",
        "average_order_value",
        "purchase_frequency",
        "repeat_rate",
        "arpu",
        "pareto_share",
    ] {
        assert_eq!(col(&k, c), [None, None], "{c}");
    }
    assert_close(&col(&k, "churn_rate"), &[Some(0.5), Some(0.25)], "churn");
}

#[test]
fn config_errors_name_their_field() {
    let inputs = || {
        vec![
            input("features", features(false)),
            input("seg.assignments", seg()),
        ]
    };
    let cases = [
        (
            json!({"lifecycle": "nope"}),
            "lifecycle",
            "not a segmentation",
        ),
        (json!({"revenue": "spend"}), "revenue", "revenue: null"),
        (json!({"top_share": 0.0}), "top_share", "(0, 1]"),
        (json!({"churned_label": "x"}), "churned_label", "lifecycle"),
        (json!({"holdout": "h"}), "holdout", "no column `h`"),
        (json!({"period_days": -1.0}), "period_days", "positive"),
        (json!({"previous": {"seg": "old"}}), "previous.seg", "needs"),
    ];
    for (cfg, field, msg) in cases {
        let o = run(cfg.clone(), inputs(), 1);
        assert_ne!(o.status, abi::STATUS_OK, "{cfg}");
        assert_eq!(
            o.error_field().as_deref(),
            Some(field),
            "{cfg}: {:?}",
            o.error
        );
        assert!(
            o.error_message().contains(msg),
            "{cfg}: {}",
            o.error_message()
        );
        let (fs, _) = features(false);
        let (ss, _) = seg();
        let p = fake_host::plan(ENTRY, "kpis", cfg.clone(), &[("features", fs), ("seg", ss)]);
        assert_eq!(p.error_field().as_deref(), Some(field), "plan {cfg}");
    }
    // no segmentation at all
    let o = run(json!({}), vec![input("features", features(false))], 1);
    assert!(
        o.error_message().contains("segmentation"),
        "{}",
        o.error_message()
    );
}

/// 1M customers, an 11-segment and a 4-stage segmentation, churn from the lifecycle.
/// `cargo test --release -p segflow-evaluate --test kpis -- --ignored --nocapture`
#[test]
#[ignore]
fn speed_1m_customers() {
    let n = 1_000_000usize;
    let mut x = 0x9e3779b97f4a7c15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let keys: Vec<i64> = (0..n as i64).collect();
    let freq: Vec<i64> = (0..n).map(|_| 1 + (rnd() * 6.0) as i64).collect();
    let tx: Vec<i64> = freq.iter().map(|f| f + (rnd() * 2.0) as i64).collect();
    let money: Vec<f64> = (0..n).map(|_| (rnd() * 500.0).round()).collect();
    let rec: Vec<i64> = (0..n).map(|_| (rnd() * 700.0) as i64).collect();
    let ten: Vec<i64> = rec.iter().map(|r| r + (rnd() * 300.0) as i64).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("frequency", DataType::Int64, false),
        Field::new("n_transactions", DataType::Int64, false),
        Field::new("monetary_sum", DataType::Float64, false),
        Field::new("recency_days", DataType::Int64, false),
        Field::new("tenure_days", DataType::Int64, false),
    ]));
    let f = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(keys.clone())),
            Arc::new(Int64Array::from(freq)),
            Arc::new(Int64Array::from(tx)),
            Arc::new(Float64Array::from(money)),
            Arc::new(Int64Array::from(rec.clone())),
            Arc::new(Int64Array::from(ten)),
        ],
    )
    .unwrap();
    let labels: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
    let ids: Vec<i32> = (0..n).map(|_| (rnd() * 11.0) as i32).collect();
    let seg_labels: Vec<&str> = ids.iter().map(|&i| labels[i as usize].as_str()).collect();
    let stages = ["new", "active", "dormant", "churned"];
    let life_ids: Vec<i32> = rec
        .iter()
        .map(|&r| {
            if r < 90 {
                1
            } else if r < 365 {
                2
            } else {
                3
            }
        })
        .collect();
    let life_labels: Vec<&str> = life_ids.iter().map(|&i| stages[i as usize]).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let seg_in = segmentation(&keys, &ids, &seg_labels);
    let life_in = segmentation(&keys, &life_ids, &life_labels);
    for t in [1, threads] {
        let inputs = vec![
            input("features", (schema.clone(), f.clone())),
            input("seg", seg_in.clone()),
            input("life", life_in.clone()),
        ];
        let start = std::time::Instant::now();
        let o = run(json!({"lifecycle": "life"}), inputs, t);
        assert_eq!(o.status, abi::STATUS_OK, "{:?}", o.error);
        eprintln!(
            "kpis, 1M customers, 11 + 4 segments, {t} thread(s): {:.3} s",
            start.elapsed().as_secs_f64()
        );
    }
}
