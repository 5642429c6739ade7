//! `validate` and `dedup` driven through the real ABI entry points, against the pandas
//! reference built by `tests/fixtures/make_clean_fixture.py`.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{Array, AsArray, RecordBatch};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};
use segflow_sdk::arrow::util::display::array_value_to_string;
use segflow_sdk::ffi::abi;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_clean::segflow_plugin_v1 as abi::EntryFn;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// The dirty fixture with every column read as text, in batches of `rows`.
fn dirty(rows: usize) -> (SchemaRef, Vec<RecordBatch>) {
    let schema: SchemaRef = Arc::new(Schema::new(
        ["customer_id", "date", "amount", "channel"]
            .map(|n| Field::new(n, DataType::Utf8, true))
            .to_vec(),
    ));
    // One row is Latin-1 in a UTF-8 file: decode as the csv collector's
    // `utf-8-or-windows-1252` does (those bytes are all Latin-1 letters here).
    let bytes = std::fs::read(fixture("dirty_transactions.csv")).unwrap();
    let text = utf8_or_latin1(&bytes);
    let batches = segflow_sdk::arrow::csv::ReaderBuilder::new(schema.clone())
        .with_header(true)
        .with_batch_size(rows)
        .build(std::io::Cursor::new(text.into_bytes()))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (schema, batches)
}

fn utf8_or_latin1(mut bytes: &[u8]) -> String {
    let mut out = String::new();
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, rest) = bytes.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap());
                out.push(char::from(rest[0]));
                bytes = &rest[1..];
            }
        }
    }
}

/// Rows of a committed reference CSV, split on commas (no quoting in these files).
fn expected(name: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn validate_config() -> serde_json::Value {
    json!({
        "columns": {"customer_id": "int64", "date": "date", "amount": "float64", "channel": "utf8"},
        "rules": {
            "customer_id": {"not_null": true},
            "date": {"max": "2025-12-31"},
            "amount": {"min": 0, "max": 10000},
            "channel": {"in": ["web", "store", "app"], "policy": "fix"}
        }
    })
}

fn one(out: &fake_host::Outcome, port: &str) -> RecordBatch {
    let batches = out.table(port);
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(out.schema(port).clone()));
    concat_batches(&schema, batches).unwrap()
}

fn cell(b: &RecordBatch, col: &str, row: usize) -> String {
    let c = b.column_by_name(col).unwrap();
    if c.is_null(row) {
        String::new()
    } else {
        array_value_to_string(c, row).unwrap()
    }
}

fn assert_accounts(out: &fake_host::Outcome, rows_in: usize) {
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    let (m, q) = (out.rows("main"), out.rows("quarantine"));
    assert_eq!(m + q, rows_in);
    assert_eq!(out.fact("rows_in"), &json!(rows_in));
    assert_eq!(out.fact("rows_out"), &json!(m));
    assert_eq!(out.fact("rows_quarantined"), &json!(q));
}

fn run(
    name: &str,
    cfg: serde_json::Value,
    threads: u32,
    schema: SchemaRef,
    b: Vec<RecordBatch>,
) -> fake_host::Outcome {
    fake_host::run(ENTRY, name, cfg, threads, vec![("in", schema, b)])
}

#[test]
fn validate_matches_the_pandas_reference() {
    let exp = expected("clean_validate_expected.csv");
    for batch_rows in [7, 100] {
        let (schema, batches) = dirty(batch_rows);
        let out = run("validate", validate_config(), 2, schema, batches);
        assert_accounts(&out, exp.len());
        let main = one(&out, "main");
        let q = one(&out, "quarantine");
        assert_eq!(main.schema().field(0).data_type(), &DataType::Int64);
        assert_eq!(main.schema().field(1).data_type(), &DataType::Date32);
        assert_eq!(main.schema().field(2).data_type(), &DataType::Float64);
        assert_eq!(q.schema().field(4).name(), "reason");
        let (mut mi, mut qi) = (0, 0);
        for e in &exp {
            if e[1] == "main" {
                assert_eq!(cell(&main, "customer_id", mi), e[2], "row {}", e[0]);
                assert_eq!(cell(&main, "date", mi), e[3], "row {}", e[0]);
                let amount = main.column(2).as_primitive::<Float64Type>();
                if e[4].is_empty() {
                    assert!(amount.is_null(mi), "row {}", e[0]);
                } else {
                    let want: f64 = e[4].parse().unwrap();
                    assert_eq!(amount.value(mi), want, "row {}", e[0]);
                }
                assert_eq!(cell(&main, "channel", mi), e[5], "row {}", e[0]);
                mi += 1;
            } else {
                assert_eq!(cell(&q, "reason", qi), e[1], "row {}", e[0]);
                qi += 1;
            }
        }
        assert_eq!(
            out.fact("quarantine_reasons")["range: amount > 10000"],
            json!(2)
        );
        assert_eq!(out.fact("values_fixed")["in: channel"], json!(3)); // fax and two wéb
    }
}

#[test]
fn validate_plan_returns_the_cast_schema_and_names_fields() {
    let (schema, _) = dirty(10);
    let out = fake_host::plan(
        ENTRY,
        "validate",
        validate_config(),
        &[("in", schema.clone())],
    );
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    let main = out.schema("main");
    assert_eq!(main.field(1).data_type(), &DataType::Date32);
    assert_eq!(main.field(3).data_type(), &DataType::Utf8);
    assert_eq!(
        out.schema("quarantine").field(2).data_type(),
        &DataType::Utf8
    );
    let cases = [
        (
            json!({"columns": {"amt": "float64"}}),
            "columns.amt",
            "column `amt` is not in the input",
        ),
        (
            json!({"rules": {"x": {"not_null": true}}}),
            "rules.x",
            "not in the input",
        ),
        (
            json!({"unique_key": ["customer_id", "y"]}),
            "unique_key.1",
            "not in the input",
        ),
        (
            json!({"columns": {"amount": "float64"}, "rules": {"amount": {"min": "lots"}}}),
            "rules.amount.min",
            "not a valid Float64",
        ),
        (
            json!({"columns": {"amount": "float64"}, "rules": {"amount": {"regex": "[0-9]+"}}}),
            "rules.amount.regex",
            "needs a utf8 column",
        ),
        (
            json!({"rules": {"channel": {"regex": "("}}}),
            "rules.channel.regex",
            "regular expression",
        ),
        (
            json!({"rules": {"channel": {"not_null": true, "policy": "fix"}}}),
            "rules.channel.policies",
            "not available for not_null",
        ),
        (
            json!({"columns": {"amount": "decimal"}}),
            "columns.amount",
            "unknown variant",
        ),
        (
            json!({"rules": {"amount": {"minimum": 0}}}),
            "",
            "unknown field `minimum`",
        ),
    ];
    for (cfg, field, message) in cases {
        let out = fake_host::plan(ENTRY, "validate", cfg.clone(), &[("in", schema.clone())]);
        assert_eq!(out.status, abi::STATUS_ERROR, "{cfg}");
        assert!(
            out.error_message().contains(message),
            "{cfg}: {}",
            out.error_message()
        );
        if !field.is_empty() {
            assert_eq!(out.error_field().as_deref(), Some(field), "{cfg}");
        }
    }
}

#[test]
fn validate_fail_policy_names_rule_column_and_row() {
    let (schema, batches) = dirty(5);
    let mut cfg = validate_config();
    cfg["rules"]["amount"]["policies"] = json!({"range": "fail"});
    let out = run("validate", cfg, 1, schema, batches);
    assert_eq!(out.status, abi::STATUS_ERROR);
    let msg = out.error_message();
    assert!(
        msg.contains("`range: amount < 0`") && msg.contains("input row 6"),
        "{msg}"
    );
    assert!(msg.contains("-50.00"), "{msg}");
}

#[test]
fn validate_unique_and_fix_policies() {
    let (schema, batches) = dirty(9);
    let cfg = json!({
        "columns": {"customer_id": "int64", "date": "date"},
        "unique_key": ["customer_id", "date"],
        "rules": {"amount": {"regex": "[0-9]+\\.[0-9]+", "policy": "fix"}}
    });
    let out = run("validate", cfg, 1, schema, batches);
    assert_accounts(&out, 54);
    let q = one(&out, "quarantine");
    let reasons: Vec<String> = (0..q.num_rows()).map(|i| cell(&q, "reason", i)).collect();
    // rows 1, 4, 16, 50, 51 repeat an earlier (customer_id, date); cast failures first
    let dups = reasons
        .iter()
        .filter(|r| *r == "unique_key: customer_id, date")
        .count();
    assert_eq!(dups, 5, "{reasons:?}");
    // `12,50`, `2.5e7`, `abc` and `10.00`-style values: only non-matching text is nulled
    assert!(out.fact("values_fixed")["regex: amount"].as_u64().unwrap() >= 3);
}

#[test]
fn dedup_matches_pandas_exact_and_by_key() {
    let (schema, batches) = dirty(11);
    let v = run("validate", validate_config(), 2, schema, batches);
    let main = one(&v, "main");
    let n = main.num_rows();
    for (cfg, file, reasons) in [
        (
            json!({}),
            "clean_dedup_expected.csv",
            ["duplicate of row 0", "duplicate of row 8"],
        ),
        (
            json!({"key": ["customer_id", "date"], "keep": {"max_by": "amount"}}),
            "clean_dedup_key_expected.csv",
            ["duplicate key of row 0", "duplicate key of row 4"],
        ),
    ] {
        let want: Vec<u32> = expected(file)
            .iter()
            .map(|r| r[0].parse().unwrap())
            .collect();
        for threads in [1, 3] {
            let out = run(
                "dedup",
                cfg.clone(),
                threads,
                main.schema(),
                vec![main.slice(0, 20), main.slice(20, n - 20)],
            );
            assert_accounts(&out, n);
            let kept = one(&out, "main");
            assert_eq!(kept.num_rows(), want.len(), "{cfg}");
            let ids = kept.column(0).as_primitive::<Int64Type>();
            let amounts = kept.column(2).as_primitive::<Float64Type>();
            for (k, &row) in want.iter().enumerate() {
                assert_eq!(
                    ids.value(k),
                    main.column(0)
                        .as_primitive::<Int64Type>()
                        .value(row as usize)
                );
                assert_eq!(amounts.is_null(k), main.column(2).is_null(row as usize));
                if !amounts.is_null(k) {
                    assert_eq!(
                        amounts.value(k),
                        main.column(2)
                            .as_primitive::<Float64Type>()
                            .value(row as usize)
                    );
                }
            }
            let q = one(&out, "quarantine");
            assert_eq!(
                [cell(&q, "reason", 0), cell(&q, "reason", 1)],
                reasons,
                "{cfg}"
            );
        }
    }
}

#[test]
fn dedup_plan_errors_name_the_field() {
    let (schema, _) = dirty(10);
    for (cfg, field) in [
        (json!({"key": ["customer", "date"]}), "key.0"),
        (json!({"keep": {"max_by": "amt"}}), "keep.max_by"),
    ] {
        let out = fake_host::plan(ENTRY, "dedup", cfg.clone(), &[("in", schema.clone())]);
        assert_eq!(out.status, abi::STATUS_ERROR, "{cfg}");
        assert_eq!(out.error_field().as_deref(), Some(field), "{cfg}");
    }
    let out = fake_host::plan(ENTRY, "dedup", json!({"keep": "middle"}), &[("in", schema)]);
    assert_eq!(out.status, abi::STATUS_ERROR);
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
}

fn chain_expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("clean_chain_expected.json")).unwrap())
        .unwrap()
}

/// validate -> dedup (exact) on the dirty fixture: the table impute and outliers see.
fn deduped() -> RecordBatch {
    let (schema, batches) = dirty(13);
    let v = run("validate", validate_config(), 2, schema, batches);
    let main = one(&v, "main");
    one(
        &run("dedup", json!({}), 2, main.schema(), vec![main]),
        "main",
    )
}

fn amounts(b: &RecordBatch) -> Vec<f64> {
    let a = b
        .column_by_name("amount")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(a.null_count(), 0);
    a.values().to_vec()
}

#[test]
fn impute_matches_sklearn_and_pandas() {
    let exp = chain_expected();
    let input = deduped();
    let n = input.num_rows();
    for (method, key) in [("mean", "mean_fill"), ("median", "median_fill")] {
        let cfg = json!({"columns": {"amount": {"method": method}}});
        let out = run("impute", cfg, 1, input.schema(), vec![input.clone()]);
        assert_accounts(&out, n);
        let want = exp[key].as_f64().unwrap();
        let f = &out.fact("imputed")["amount"];
        assert!(close(f["fill"].as_f64().unwrap(), want), "{method}: {f}");
        assert_eq!(f["filled"], exp["missing"]);
        let before = input.column(2);
        let after = amounts(&one(&out, "main"));
        for r in (0..n).filter(|&r| before.is_null(r)) {
            assert!(close(after[r], want));
        }
    }
    let cfg = json!({"columns": {"amount": {"method": "median", "by": ["customer_id"]}}});
    let out = run("impute", cfg, 2, input.schema(), vec![input.clone()]);
    assert_accounts(&out, n);
    let got = amounts(&one(&out, "main"));
    let want: Vec<f64> = exp["imputed_by_customer_median"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(got.len(), want.len());
    assert!(got.iter().zip(&want).all(|(a, b)| close(*a, *b)), "{got:?}");
    let fills = &out.fact("imputed")["amount"]["group_fills"];
    for (k, v) in exp["group_median_fills"].as_object().unwrap() {
        assert!(
            close(fills[k].as_f64().unwrap(), v.as_f64().unwrap()),
            "{k}"
        );
    }
    assert_eq!(out.rows("quarantine"), 0);
    let cfg = json!({"columns": {"amount": {"method": "mean"}}});
    let plan = fake_host::plan(ENTRY, "impute", cfg, &[("in", input.schema())]);
    assert_eq!(plan.status, abi::STATUS_OK, "{:?}", plan.error);
    assert_eq!(plan.schema("quarantine").fields().len(), 5);
    assert_eq!(plan.schema("quarantine").field(4).name(), "reason");
}

#[test]
fn impute_text_mode_matches_pandas() {
    let exp = chain_expected();
    let input = deduped();
    let n = input.num_rows();
    let cfg = json!({"columns": {"channel": {"method": "mode", "by": ["customer_id"]}}});
    let out = run("impute", cfg, 2, input.schema(), vec![input.clone()]);
    assert_accounts(&out, n);
    let main = one(&out, "main");
    assert_eq!(main.schema().field(3).data_type(), &DataType::Utf8);
    let got: Vec<String> = (0..n).map(|r| cell(&main, "channel", r)).collect();
    let want: Vec<String> = exp["channel_imputed_by_customer_mode"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
    let f = &out.fact("imputed")["channel"];
    assert_eq!(f["fill"], exp["channel_mode_fill"]);
    assert_eq!(f["filled"], exp["channel_missing"]);
    let cfg = json!({"columns": {"channel": {"method": "constant", "value": "unknown"}}});
    let out = run("impute", cfg, 1, input.schema(), vec![input]);
    let main = one(&out, "main");
    let unknown = (0..n)
        .filter(|&r| cell(&main, "channel", r) == "unknown")
        .count();
    assert_eq!(json!(unknown), exp["channel_missing"]);
}

#[test]
fn impute_and_outliers_plan_errors_name_the_field() {
    let input = deduped().schema();
    let cases = [
        (
            "impute",
            json!({"columns": {"amt": {"method": "mean"}}}),
            "columns.amt",
        ),
        (
            "impute",
            json!({"columns": {"channel": {"method": "mean"}}}),
            "columns.channel.method",
        ),
        (
            "impute",
            json!({"columns": {"channel": {"method": "constant", "value": 1}}}),
            "columns.channel.value",
        ),
        (
            "impute",
            json!({"columns": {"amount": {"method": "constant", "value": "x"}}}),
            "columns.amount.value",
        ),
        (
            "impute",
            json!({"columns": {"date": {"method": "mode"}}}),
            "columns.date",
        ),
        (
            "impute",
            json!({"columns": {"amount": {"method": "constant"}}}),
            "columns.amount.value",
        ),
        (
            "impute",
            json!({"columns": {"amount": {"method": "mean", "by": ["x"]}}}),
            "columns.amount.by.0",
        ),
        (
            "outliers",
            json!({"columns": {"amount": {"method": "iqr", "k": -1}}}),
            "columns.amount.k",
        ),
        (
            "outliers",
            json!({"columns": {"amount": {"method": "zscore", "threshold": 0}}}),
            "columns.amount.threshold",
        ),
        (
            "outliers",
            json!({"columns": {"amount": {"method": "iqr", "threshold": 3}}}),
            "columns.amount.threshold",
        ),
        (
            "outliers",
            json!({"columns": {"date": {"method": "iqr"}}}),
            "columns.date",
        ),
    ];
    for (name, cfg, field) in cases {
        let out = fake_host::plan(ENTRY, name, cfg.clone(), &[("in", input.clone())]);
        assert_eq!(out.status, abi::STATUS_ERROR, "{cfg}");
        assert_eq!(
            out.error_field().as_deref(),
            Some(field),
            "{cfg}: {}",
            out.error_message()
        );
    }
}

#[test]
fn outliers_match_numpy_sklearn_scipy_fences() {
    let exp = chain_expected();
    let input = deduped();
    let imp = run(
        "impute",
        json!({"columns": {"amount": {"method": "median", "by": ["customer_id"]}}}),
        1,
        input.schema(),
        vec![input],
    );
    let imputed = one(&imp, "main");
    let n = imputed.num_rows();
    let values = amounts(&imputed);
    for method in ["iqr", "zscore", "robust_z"] {
        let e = &exp["fences"][method];
        let (lo, hi) = (e["lower"].as_f64().unwrap(), e["upper"].as_f64().unwrap());
        let rows: Vec<usize> = e["outlier_rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        // flag
        let cfg = json!({"columns": {"amount": {"method": method}}});
        let out = run("outliers", cfg, 1, imputed.schema(), vec![imputed.clone()]);
        assert_accounts(&out, n);
        let f = &out.fact("fences")["amount"];
        assert!(close(f["lower"].as_f64().unwrap(), lo), "{method} {f}");
        assert!(close(f["upper"].as_f64().unwrap(), hi), "{method} {f}");
        assert_eq!(f["outliers"], json!(rows.len()));
        let main = one(&out, "main");
        let flag = main.column_by_name("amount_outlier").unwrap().as_boolean();
        let flagged: Vec<usize> = (0..n).filter(|&r| flag.value(r)).collect();
        assert_eq!(flagged, rows, "{method}");
        // clip
        let cfg = json!({"columns": {"amount": {"method": method, "action": "clip"}}});
        let out = run("outliers", cfg, 1, imputed.schema(), vec![imputed.clone()]);
        assert_accounts(&out, n);
        let clipped = amounts(&one(&out, "main"));
        for (r, (&c, &v)) in clipped.iter().zip(&values).enumerate() {
            let want = v.clamp(lo, hi);
            assert!(close(c, want), "{method} row {r}: {c} vs {want}");
        }
        // quarantine
        let cfg = json!({"columns": {"amount": {"method": method, "action": "quarantine"}}});
        let out = run("outliers", cfg, 1, imputed.schema(), vec![imputed.clone()]);
        assert_accounts(&out, n);
        assert_eq!(out.rows("quarantine"), rows.len());
        if !rows.is_empty() {
            let q = one(&out, "quarantine");
            assert_eq!(cell(&q, "reason", 0), format!("outlier: amount ({method})"));
        }
    }
}

#[test]
fn chain_accounts_for_every_row_at_every_step() {
    let (schema, batches) = dirty(13);
    let rows_in: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let v = run("validate", validate_config(), 2, schema, batches);
    assert_accounts(&v, rows_in);
    let main = one(&v, "main");
    let d = run("dedup", json!({}), 2, main.schema(), vec![main.clone()]);
    assert_accounts(&d, main.num_rows());
    let deduped = one(&d, "main");
    let cfg = json!({"columns": {"amount": {"method": "median", "by": ["customer_id"]}}});
    let i = run("impute", cfg, 2, deduped.schema(), vec![deduped.clone()]);
    assert_accounts(&i, deduped.num_rows());
    let imputed = one(&i, "main");
    let cfg = json!({"columns": {"amount": {"method": "iqr", "action": "quarantine"}}});
    let o = run("outliers", cfg, 2, imputed.schema(), vec![imputed.clone()]);
    assert_accounts(&o, imputed.num_rows());
    let total_q: usize = [&v, &d, &i, &o].iter().map(|s| s.rows("quarantine")).sum();
    assert_eq!(o.rows("main") + total_q, rows_in);
    assert!(o.rows("quarantine") > 0 && d.rows("quarantine") > 0);
}
