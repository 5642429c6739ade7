use super::*;
use arrow::array::{
    Date64Array, Float32Array, Int32Array, LargeStringArray, StringViewArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{Float64Type, Int64Type};
use std::path::PathBuf;

fn day(s: &str) -> i32 {
    let d = chrono_free_parse(s);
    d.unwrap_or_else(|| panic!("bad test date {s}"))
}

/// Days since the epoch of `YYYY-MM-DD` (test helper, civil-from-days inverse).
fn chrono_free_parse(s: &str) -> Option<i32> {
    let mut it = s.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146097 + doe - 719468) as i32)
}

fn cols(keys: Vec<i64>, days: Vec<&str>, amounts: Vec<f64>) -> BatchColumns {
    BatchColumns {
        key: Arc::new(Int64Array::from(keys)),
        date: Arc::new(Date32Array::from(
            days.iter().map(|d| day(d)).collect::<Vec<_>>(),
        )),
        amount: Arc::new(Float64Array::from(amounts)),
    }
}

fn as_of(d: &str) -> FeatureOptions {
    FeatureOptions {
        as_of: Some(day(d)),
        ..Default::default()
    }
}

fn f64s(b: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_primitive::<Float64Type>()
        .iter()
        .collect()
}

fn i64s(b: &RecordBatch, name: &str) -> Vec<i64> {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

fn dates(b: &RecordBatch, name: &str) -> Vec<i32> {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_primitive::<Date32Type>()
        .values()
        .to_vec()
}

#[test]
fn hand_computed_features() {
    let mut agg =
        FeatureAggregator::new("customer_id", &DataType::Int64, as_of("2024-01-31")).unwrap();
    // customer 2: three rows on two days (two on 2024-01-10); customer 1: one row;
    // customer 3: only after as_of.
    agg.push(&cols(
        vec![2, 1, 2, 3, 2],
        vec![
            "2024-01-10",
            "2024-01-20",
            "2024-01-01",
            "2024-02-01",
            "2024-01-10",
        ],
        vec![10.0, 5.5, 4.0, 99.0, 6.0],
    ))
    .unwrap();
    let out = agg.finish().unwrap();
    let b = &out.batch;
    assert_eq!(i64s(b, "customer_id"), vec![1, 2]);
    assert_eq!(
        dates(b, "first_purchase"),
        vec![day("2024-01-20"), day("2024-01-01")]
    );
    assert_eq!(
        dates(b, "last_purchase"),
        vec![day("2024-01-20"), day("2024-01-10")]
    );
    assert_eq!(i64s(b, "recency_days"), vec![11, 21]);
    assert_eq!(i64s(b, "frequency"), vec![1, 2]);
    assert_eq!(i64s(b, "n_transactions"), vec![1, 3]);
    assert_eq!(f64s(b, "monetary_sum"), vec![Some(5.5), Some(20.0)]);
    assert_eq!(f64s(b, "monetary_mean"), vec![Some(5.5), Some(20.0 / 3.0)]);
    assert_eq!(i64s(b, "tenure_days"), vec![11, 30]);
    assert_eq!(f64s(b, "avg_gap_days"), vec![None, Some(9.0)]);
    assert_eq!(out.stats.rows_in, 5);
    assert_eq!(out.stats.rows_used, 4);
    assert_eq!(out.stats.after_cutoff, 1);
    assert_eq!(
        b.schema(),
        agg_schema("customer_id", &DataType::Int64, as_of("2024-01-31"))
    );
}

fn agg_schema(key: &str, dt: &DataType, o: FeatureOptions) -> SchemaRef {
    FeatureAggregator::output_schema_for(key, dt, &o).unwrap()
}

#[test]
fn calibration_summary_by_hand() {
    let opts = FeatureOptions {
        calibration_end: Some(day("2024-01-31")),
        ..Default::default()
    };
    let mut agg = FeatureAggregator::new("k", &DataType::Int64, opts).unwrap();
    // Customer 7: first day 01-05 (10 + 2), repeat days 01-10 (3 + 4) and 01-20 (8);
    // arrives out of order so the first day is only known at the end.
    agg.push(&cols(
        vec![7, 7, 7, 7, 7, 7, 8],
        vec![
            "2024-01-10",
            "2024-01-20",
            "2024-01-05",
            "2024-01-10",
            "2024-01-05",
            "2024-02-10",
            "2024-01-30",
        ],
        vec![3.0, 8.0, 10.0, 4.0, 2.0, 100.0, 1.0],
    ))
    .unwrap();
    let b = agg.finish().unwrap().batch;
    assert_eq!(i64s(&b, "k"), vec![7, 8]);
    assert_eq!(f64s(&b, "frequency"), vec![Some(2.0), Some(0.0)]);
    assert_eq!(f64s(&b, "recency"), vec![Some(15.0), Some(0.0)]);
    assert_eq!(f64s(&b, "T"), vec![Some(26.0), Some(1.0)]);
    assert_eq!(f64s(&b, "monetary_value"), vec![Some(7.5), Some(0.0)]);
}

// ---------------------------------------------------------------------------------------
// Reference fixtures (tests/fixtures/make_features_fixture.py)

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn fixture_meta() -> serde_like::Meta {
    serde_like::Meta::read(&fixture("features_fixture.json"))
}

/// A tiny reader for the flat JSON object the fixture script writes.
mod serde_like {
    use std::path::Path;
    pub struct Meta(String);
    impl Meta {
        pub fn read(p: &Path) -> Self {
            Meta(std::fs::read_to_string(p).expect("fixture json"))
        }
        pub fn get(&self, key: &str) -> String {
            let pat = format!("\"{key}\":");
            let start = self.0.find(&pat).expect("key in fixture json") + pat.len();
            let rest = self.0[start..].trim_start();
            let end = rest.find([',', '\n', '}']).unwrap_or(rest.len());
            rest[..end].trim().trim_matches('"').to_string()
        }
        pub fn num(&self, key: &str) -> u64 {
            self.get(key).parse().expect("a number")
        }
    }
}

fn fixture_batches(batch_rows: usize) -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, true),
        Field::new("date", DataType::Date32, true),
        Field::new("amount", DataType::Float64, true),
    ]));
    let file = std::fs::File::open(fixture("features_transactions.csv")).unwrap();
    arrow::csv::ReaderBuilder::new(schema)
        .with_header(true)
        .with_batch_size(batch_rows)
        .build(file)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn batch_columns(b: &RecordBatch) -> BatchColumns {
    BatchColumns {
        key: b.column(0).clone(),
        date: b.column(1).clone(),
        amount: b.column(2).clone(),
    }
}

fn run_fixture(opts: FeatureOptions, batch_rows: usize) -> FeatureOutput {
    let mut agg = FeatureAggregator::new("customer_id", &DataType::Int64, opts).unwrap();
    let batches: Vec<BatchColumns> = fixture_batches(batch_rows)
        .iter()
        .map(batch_columns)
        .collect();
    agg.push_batches(&batches).unwrap();
    agg.finish().unwrap()
}

/// Expected CSV: header plus rows; empty cells are nulls.
fn expected(name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Compare every column of `batch` named in the expected file.
fn compare(batch: &RecordBatch, file: &str, rename: &dyn Fn(&str) -> String) {
    let (header, rows) = expected(file);
    assert_eq!(batch.num_rows(), rows.len(), "{file}: row count");
    for (ci, name) in header.iter().enumerate() {
        let col = batch
            .column_by_name(&rename(name))
            .unwrap_or_else(|| panic!("{file}: no column {name}"));
        for (ri, row) in rows.iter().enumerate() {
            let want = &row[ci];
            let ctx = format!("{file} row {ri} column {name}");
            match col.data_type() {
                DataType::Int64 => {
                    let got = col.as_primitive::<Int64Type>().value(ri);
                    let want: f64 = want.parse().unwrap_or_else(|_| panic!("{ctx}: {want}"));
                    assert_eq!(got as f64, want, "{ctx}");
                }
                DataType::Float64 => {
                    let a = col.as_primitive::<Float64Type>();
                    if want.is_empty() {
                        assert!(a.is_null(ri), "{ctx}: expected null, got {}", a.value(ri));
                    } else {
                        let want: f64 = want.parse().unwrap();
                        assert!(a.is_valid(ri), "{ctx}: null");
                        assert!(close(a.value(ri), want), "{ctx}: {} != {want}", a.value(ri));
                    }
                }
                DataType::Date32 => {
                    let got = col.as_primitive::<Date32Type>().value(ri);
                    assert_eq!(got, day(want), "{ctx}");
                }
                other => panic!("{ctx}: unexpected type {other}"),
            }
        }
    }
}

#[test]
fn matches_polars_reference_features() {
    let meta = fixture_meta();
    let out = run_fixture(as_of(&meta.get("as_of")), 64);
    compare(&out.batch, "features_expected.csv", &|n| n.to_string());
    assert_eq!(out.stats.rows_in, meta.num("rows_in"));
    assert_eq!(out.stats.rows_used, meta.num("rows_used_as_of"));
    assert_eq!(out.stats.after_cutoff, meta.num("rows_after_as_of"));
    assert_eq!(
        out.stats.null_key + out.stats.null_date + out.stats.null_amount,
        meta.num("rows_null")
    );
    assert_eq!(out.batch.num_rows() as u64, meta.num("customers_as_of"));
}

#[test]
fn matches_lifetimes_summary_days_and_weeks() {
    let meta = fixture_meta();
    for (unit, file) in [
        (TimeUnit::Days, "calibration_expected_days.csv"),
        (TimeUnit::Weeks, "calibration_expected_weeks.csv"),
    ] {
        let opts = FeatureOptions {
            calibration_end: Some(day(&meta.get("calibration_end"))),
            time_unit: unit,
            ..Default::default()
        };
        let out = run_fixture(opts, 100);
        compare(&out.batch, file, &|n| n.to_string());
        assert_eq!(
            out.stats.after_cutoff,
            meta.num("rows_after_calibration_end")
        );
    }
}

#[test]
fn matches_lifetimes_calibration_and_holdout() {
    let meta = fixture_meta();
    let opts = FeatureOptions {
        as_of: Some(day(&meta.get("as_of"))),
        calibration_end: Some(day(&meta.get("calibration_end"))),
        ..Default::default()
    };
    let out = run_fixture(opts, 1000);
    // lifetimes only lists customers with calibration purchases: keep those rows.
    let mask: BooleanArray = out
        .batch
        .column_by_name("frequency_cal")
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .map(|v| Some(v.is_some()))
        .collect();
    let cohort = arrow::compute::filter_record_batch(&out.batch, &mask).unwrap();
    compare(&cohort, "holdout_expected.csv", &|n| n.to_string());
    // the features part is the same as with as_of alone
    compare(&out.batch, "features_expected.csv", &|n| n.to_string());
}

// ---------------------------------------------------------------------------------------
// Determinism

/// A small deterministic generator (splitmix64), so the test needs no RNG crate.
struct Mix(u64);
impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn random_columns(rows: usize, customers: u64, seed: u64) -> BatchColumns {
    let mut m = Mix(seed);
    let mut keys = Vec::with_capacity(rows);
    let mut days = Vec::with_capacity(rows);
    let mut amounts = Vec::with_capacity(rows);
    for _ in 0..rows {
        keys.push((m.next() % customers) as i64);
        days.push(19_000 + (m.next() % 800) as i32);
        amounts.push((m.next() % 1_000_000) as f64 / 7.0 - 10_000.0);
    }
    BatchColumns {
        key: Arc::new(Int64Array::from(keys)),
        date: Arc::new(Date32Array::from(days)),
        amount: Arc::new(Float64Array::from(amounts)),
    }
}

fn split(c: &BatchColumns, size: usize) -> Vec<BatchColumns> {
    let n = c.key.len();
    (0..n)
        .step_by(size)
        .map(|o| {
            let l = size.min(n - o);
            BatchColumns {
                key: c.key.slice(o, l),
                date: c.date.slice(o, l),
                amount: c.amount.slice(o, l),
            }
        })
        .collect()
}

fn bits(b: &RecordBatch) -> Vec<Vec<u64>> {
    b.columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Float64 => c
                .as_primitive::<Float64Type>()
                .iter()
                .map(|v| v.map_or(u64::MAX, f64::to_bits))
                .collect(),
            DataType::Int64 => c
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .map(|&v| v as u64)
                .collect(),
            DataType::Date32 => c
                .as_primitive::<Date32Type>()
                .values()
                .iter()
                .map(|&v| v as u64)
                .collect(),
            other => panic!("unexpected {other}"),
        })
        .collect()
}

#[test]
fn identical_for_any_thread_count_and_batching() {
    let data = random_columns(200_000, 5_000, 7);
    let opts = FeatureOptions {
        as_of: Some(19_700),
        calibration_end: Some(19_400),
        time_unit: TimeUnit::Weeks,
        record_exclusions: false,
        gap_stats: true,
    };
    let mut results = Vec::new();
    for (threads, batch, group) in [(1, 200_000, 1), (1, 4096, 3), (3, 1000, 8), (4, 65_536, 2)] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let out = pool.install(|| {
            let mut agg = FeatureAggregator::new("k", &DataType::Int64, opts).unwrap();
            for g in split(&data, batch).chunks(group) {
                agg.push_batches(g).unwrap();
            }
            agg.finish().unwrap()
        });
        results.push((out.stats, bits(&out.batch)));
    }
    for r in &results[1..] {
        assert!(r == &results[0], "results differ between runs");
    }
    assert!(results[0].1[0].len() > 4_000);
}

// ---------------------------------------------------------------------------------------
// Types

#[test]
fn string_keys_sort_lexicographically_and_keep_their_type() {
    for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
        let vals = ["b", "a10", "a9", "b", "ä"];
        let key: ArrayRef = match dt {
            DataType::Utf8 => Arc::new(StringArray::from(vals.to_vec())),
            DataType::LargeUtf8 => Arc::new(LargeStringArray::from(vals.to_vec())),
            _ => Arc::new(StringViewArray::from(vals.to_vec())),
        };
        let mut agg = FeatureAggregator::new("id", &dt, as_of("2024-12-31")).unwrap();
        let c = cols(
            vec![0; 5],
            vec!["2024-01-01"; 5],
            vec![1.0, 2.0, 3.0, 4.0, 5.0],
        );
        agg.push(&BatchColumns { key, ..c }).unwrap();
        let b = agg.finish().unwrap().batch;
        assert_eq!(b.column(0).data_type(), &dt);
        let keys = cast_with_options(b.column(0), &DataType::Utf8, &STRICT).unwrap();
        let keys: Vec<&str> = keys.as_string::<i32>().iter().flatten().collect();
        assert_eq!(keys, vec!["a10", "a9", "b", "ä"]);
        assert_eq!(f64s(&b, "monetary_sum")[2], Some(5.0));
    }
}

#[test]
fn int32_keys_timestamps_and_float32_amounts() {
    // 2024-01-01T23:30 in UTC is 2024-01-02 at +09:00.
    let ms = 1_704_151_800_000i64;
    let mut agg = FeatureAggregator::new("id", &DataType::Int32, as_of("2024-01-31")).unwrap();
    let date: ArrayRef = Arc::new(
        TimestampMillisecondArray::from(vec![ms, ms - 86_400_000 * 3]).with_timezone("+09:00"),
    );
    agg.push(&BatchColumns {
        key: Arc::new(Int32Array::from(vec![5, 5])),
        date,
        amount: Arc::new(Float32Array::from(vec![1.5, 2.5])),
    })
    .unwrap();
    let b = agg.finish().unwrap().batch;
    assert_eq!(b.column(0).data_type(), &DataType::Int32);
    assert_eq!(dates(&b, "last_purchase"), vec![day("2024-01-02")]);
    assert_eq!(dates(&b, "first_purchase"), vec![day("2023-12-30")]);
    assert_eq!(f64s(&b, "monetary_sum"), vec![Some(4.0)]);

    // Date64 before the epoch rounds down.
    let mut agg = FeatureAggregator::new("id", &DataType::Int64, as_of("2024-01-31")).unwrap();
    agg.push(&BatchColumns {
        key: Arc::new(Int64Array::from(vec![1])),
        date: Arc::new(Date64Array::from(vec![-1])),
        amount: Arc::new(Int64Array::from(vec![3])),
    })
    .unwrap();
    let b = agg.finish().unwrap().batch;
    assert_eq!(dates(&b, "first_purchase"), vec![-1]);
}

#[test]
fn exclusions_are_reported_per_row() {
    let opts = FeatureOptions {
        as_of: Some(day("2024-01-31")),
        record_exclusions: true,
        ..Default::default()
    };
    let mut agg = FeatureAggregator::new("k", &DataType::Int64, opts).unwrap();
    let c = BatchColumns {
        key: Arc::new(Int64Array::from(vec![
            Some(1),
            None,
            Some(2),
            Some(3),
            Some(4),
            Some(5),
        ])),
        date: Arc::new(Date32Array::from(vec![
            Some(day("2024-01-01")),
            Some(day("2024-01-01")),
            None,
            Some(day("2024-01-01")),
            Some(day("2024-01-01")),
            Some(day("2024-02-01")),
        ])),
        amount: Arc::new(Float64Array::from(vec![
            Some(1.0),
            Some(1.0),
            Some(1.0),
            None,
            Some(f64::NAN),
            Some(1.0),
        ])),
    };
    let ex = agg.push(&c).unwrap();
    assert_eq!(ex.rows, vec![1, 2, 3, 4, 5]);
    assert_eq!(
        ex.reasons,
        vec![
            ExclusionReason::NullKey,
            ExclusionReason::NullDate,
            ExclusionReason::NullAmount,
            ExclusionReason::NonFiniteAmount,
            ExclusionReason::AfterCutoff
        ]
    );
    let mask = exclusion_mask(6, &ex);
    assert_eq!(mask.true_count(), 5);
    let out = agg.finish().unwrap();
    assert_eq!(out.batch.num_rows(), 1);
    assert_eq!(out.stats.rows_excluded(), 5);
    for r in ExclusionReason::ALL {
        assert_eq!(out.stats.count(r), 1, "{}", r.code());
    }
}

#[test]
fn empty_input_gives_empty_table_with_schema() {
    let agg = FeatureAggregator::new("k", &DataType::Utf8, as_of("2024-01-31")).unwrap();
    let schema = agg.output_schema();
    let out = agg.finish().unwrap();
    assert_eq!(out.batch.num_rows(), 0);
    assert_eq!(out.batch.schema(), schema);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    assert!(matches!(
        FeatureAggregator::new("k", &DataType::Int64, FeatureOptions::default()),
        Err(FeatureError::NoCutoff)
    ));
    let both = FeatureOptions {
        as_of: Some(10),
        calibration_end: Some(10),
        ..Default::default()
    };
    let e = FeatureAggregator::new("k", &DataType::Int64, both)
        .err()
        .unwrap();
    assert!(e.to_string().contains("must be before as_of"), "{e}");
    assert!(matches!(
        FeatureAggregator::new("k", &DataType::Float64, as_of("2024-01-01")),
        Err(FeatureError::UnsupportedType { role: "key", .. })
    ));
    assert!(FeatureAggregator::new("frequency", &DataType::Int64, as_of("2024-01-01")).is_err());

    let mut agg = FeatureAggregator::new("k", &DataType::Int64, as_of("2024-01-31")).unwrap();
    let good = cols(vec![1], vec!["2024-01-01"], vec![1.0]);
    let e = agg
        .push(&BatchColumns {
            date: Arc::new(StringArray::from(vec!["2024-01-01"])),
            ..good.clone()
        })
        .unwrap_err();
    assert!(e.to_string().contains("date column has type Utf8"), "{e}");
    let e = agg
        .push(&BatchColumns {
            amount: Arc::new(StringArray::from(vec!["1"])),
            ..good.clone()
        })
        .unwrap_err();
    assert!(e.to_string().contains("amount column"), "{e}");
    let e = agg
        .push(&BatchColumns {
            amount: Arc::new(Float64Array::from(vec![1.0, 2.0])),
            ..good.clone()
        })
        .unwrap_err();
    assert!(matches!(e, FeatureError::LengthMismatch { .. }));
    let e = agg
        .push(&BatchColumns {
            key: Arc::new(Int32Array::from(vec![1])),
            ..good.clone()
        })
        .unwrap_err();
    assert!(matches!(e, FeatureError::KeyTypeChanged { .. }));
    // u64 keys beyond i64 are a conversion error
    let mut agg = FeatureAggregator::new("k", &DataType::UInt64, as_of("2024-01-31")).unwrap();
    let e = agg
        .push(&BatchColumns {
            key: Arc::new(arrow::array::UInt64Array::from(vec![u64::MAX])),
            ..good
        })
        .unwrap_err();
    assert!(e.to_string().contains("converting the key column"), "{e}");
}

#[test]
fn type_support_predicates() {
    assert!(supports_key_type(&DataType::UInt16));
    assert!(supports_key_type(&DataType::Dictionary(
        Box::new(DataType::Int32),
        Box::new(DataType::Utf8)
    )));
    assert!(!supports_key_type(&DataType::Boolean));
    assert!(supports_date_type(&DataType::Timestamp(
        arrow::datatypes::TimeUnit::Nanosecond,
        Some("UTC".into())
    )));
    assert!(!supports_date_type(&DataType::Utf8));
    assert!(supports_amount_type(&DataType::Decimal128(10, 2)));
    assert!(!supports_amount_type(&DataType::Utf8));
}
