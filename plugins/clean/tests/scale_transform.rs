//! `scale` and `transform` driven through the real ABI entry points, on the columns of
//! segflow-ml's scikit-learn/scipy reference (crates/segflow-ml/tests/fixtures/
//! scale_transform_reference.json, made by make_scale_transform_fixture.py).

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_ml::transform::{inv_box_cox, inv_yeo_johnson};
use segflow_sdk::arrow::array::{
    Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use segflow_sdk::ffi::abi;
use serde_json::{json, Value};
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_clean::segflow_plugin_v1 as abi::EntryFn;

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crates/segflow-ml/tests/fixtures/scale_transform_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<Option<f64>> {
    v.as_array().unwrap().iter().map(Value::as_f64).collect()
}

/// The reference columns as a table: `customer_id` int64, `monetary` float64 with
/// nulls, `recency` float64, `frequency` int64, `constant` and `margin` (with
/// negatives) float64, `label` utf8.
fn table() -> (SchemaRef, RecordBatch) {
    let r = reference();
    let c = &r["columns"];
    let n = c["monetary"].as_array().unwrap().len();
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("monetary", DataType::Float64, true),
        Field::new("recency", DataType::Float64, true),
        Field::new("frequency", DataType::Int64, true),
        Field::new("constant", DataType::Float64, true),
        Field::new("margin", DataType::Float64, true),
        Field::new("label", DataType::Utf8, true),
    ]));
    let f = |k: &str| Arc::new(Float64Array::from(floats(&c[k]))) as Arc<dyn Array>;
    let freq: Int64Array = floats(&c["frequency"])
        .into_iter()
        .map(|v| v.map(|v| v as i64))
        .collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            f("monetary"),
            f("recency"),
            Arc::new(freq),
            f("constant"),
            f("margin"),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("c{i}")),
            )),
        ],
    )
    .unwrap();
    (schema, batch)
}

fn run(name: &str, cfg: Value, batch: &RecordBatch) -> fake_host::Outcome {
    // two input batches, to check the component reads all of them
    let half = batch.num_rows() / 2;
    let parts = vec![
        batch.slice(0, half),
        batch.slice(half, batch.num_rows() - half),
    ];
    let out = fake_host::run(ENTRY, name, cfg, 2, vec![("in", batch.schema(), parts)]);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    out
}

fn one(out: &fake_host::Outcome, port: &str) -> RecordBatch {
    let batches = out.table(port);
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(out.schema(port).clone()));
    concat_batches(&schema, batches).unwrap()
}

fn assert_accounts(out: &fake_host::Outcome, rows_in: usize) {
    let (m, q) = (out.rows("main"), out.rows("quarantine"));
    assert_eq!(m + q, rows_in);
    assert_eq!(out.fact("rows_in"), &json!(rows_in));
    assert_eq!(out.fact("rows_out"), &json!(m));
    assert_eq!(out.fact("rows_quarantined"), &json!(q));
}

/// A column as `Option<f64>`s (any numeric type).
fn col(b: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let c = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let c = segflow_sdk::arrow::compute::cast(c, &DataType::Float64).unwrap();
    c.as_primitive::<Float64Type>().iter().collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn plan_errors_name_the_field() {
    let (schema, _) = table();
    let cases = [
        (
            "scale",
            json!({"columns": {"amt": {"method": "zscore"}}}),
            "columns.amt",
            "not in the input",
        ),
        (
            "scale",
            json!({"columns": {"label": {"method": "zscore"}}}),
            "columns.label",
            "has type Utf8",
        ),
        (
            "scale",
            json!({"columns": {"recency": {"method": "minmax", "range": [1, 0]}}}),
            "columns.recency.range",
            "low < high",
        ),
        (
            "scale",
            json!({"columns": {"recency": {"method": "zscore", "range": [0, 1]}}}),
            "columns.recency.range",
            "only used with method `minmax`",
        ),
        (
            "scale",
            json!({"columns": {"recency": {"method": "robust", "quantile_range": [75, 25]}}}),
            "columns.recency.quantile_range",
            "q_low < q_high",
        ),
        (
            "scale",
            json!({"columns": {"recency": {"method": "minmax", "quantile_range": [5, 95]}}}),
            "columns.recency.quantile_range",
            "only used with method `robust`",
        ),
        (
            "scale",
            json!({"columns": {}}),
            "columns",
            "at least one column",
        ),
        (
            "scale",
            json!({"columns": {"recency": {"method": "zscore"}}, "suffix": ""}),
            "suffix",
            "must not be empty",
        ),
        (
            "transform",
            json!({"columns": {"monetary": {"method": "log1p", "lambda": 0.5}}}),
            "columns.monetary.lambda",
            "only used by box_cox and yeo_johnson",
        ),
        (
            "transform",
            json!({"columns": {"label": {"method": "box_cox"}}}),
            "columns.label",
            "has type Utf8",
        ),
        (
            "transform",
            json!({"columns": {"x": {"method": "yeo_johnson"}}}),
            "columns.x",
            "not in the input",
        ),
        (
            "transform",
            json!({"columns": {}}),
            "columns",
            "at least one column",
        ),
    ];
    for (name, cfg, field, message) in cases {
        let out = fake_host::plan(ENTRY, name, cfg.clone(), &[("in", schema.clone())]);
        assert_eq!(out.status, abi::STATUS_ERROR, "{name} {cfg}");
        assert_eq!(
            out.error_field().as_deref(),
            Some(field),
            "{name} {cfg}: {}",
            out.error_message()
        );
        assert!(
            out.error_message().contains(message),
            "{name} {cfg}: {}",
            out.error_message()
        );
    }
    // schema errors: unknown method, unknown key
    for (name, cfg, message) in [
        (
            "scale",
            json!({"columns": {"recency": {"method": "standard"}}}),
            "unknown variant",
        ),
        (
            "transform",
            json!({"columns": {"recency": {"method": "boxcox"}}}),
            "unknown variant",
        ),
        (
            "transform",
            json!({"columns": {"recency": {"method": "box_cox", "lamda": 1}}}),
            "unknown field `lamda`",
        ),
        (
            "scale",
            json!({"columns": {"recency": {"method": "zscore"}}, "output": "x"}),
            "unknown field `output`",
        ),
    ] {
        let out = fake_host::plan(ENTRY, name, cfg.clone(), &[("in", schema.clone())]);
        assert_eq!(out.status, abi::STATUS_ERROR, "{name} {cfg}");
        assert!(
            out.error_message().contains(message),
            "{name} {cfg}: {}",
            out.error_message()
        );
    }
    // a suffix that would collide with an input column
    let s: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Float64, true),
        Field::new("a_t", DataType::Float64, true),
    ]));
    for name in ["scale", "transform"] {
        let method = if name == "scale" {
            "zscore"
        } else {
            "yeo_johnson"
        };
        let cfg = json!({"columns": {"a": {"method": method}}, "suffix": "_t"});
        let out = fake_host::plan(ENTRY, name, cfg, &[("in", s.clone())]);
        assert_eq!(out.status, abi::STATUS_ERROR);
        assert_eq!(
            out.error_field().as_deref(),
            Some("suffix"),
            "{}",
            out.error_message()
        );
    }
}

#[test]
fn plan_returns_float64_columns_and_the_quarantine_schema() {
    let (schema, _) = table();
    let cfg = json!({"columns": {"frequency": {"method": "robust"}}});
    let out = fake_host::plan(ENTRY, "scale", cfg, &[("in", schema.clone())]);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    assert_eq!(out.schema("main").field(3).data_type(), &DataType::Float64);
    assert_eq!(out.schema("main").fields().len(), 7);
    let q = out.schema("quarantine");
    assert_eq!(
        (q.fields().len(), q.field(7).name().as_str()),
        (8, "reason")
    );
    assert_eq!(q.field(3).data_type(), &DataType::Int64);
    let cfg = json!({"columns": {"frequency": {"method": "log1p"}}, "suffix": "_log"});
    let out = fake_host::plan(ENTRY, "transform", cfg, &[("in", schema)]);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    let main = out.schema("main");
    assert_eq!(main.field(3).data_type(), &DataType::Int64);
    assert_eq!(main.field(7).name(), "frequency_log");
    assert_eq!(main.field(7).data_type(), &DataType::Float64);
}

#[test]
fn scale_matches_sklearn_and_inverts_from_the_facts() {
    let r = reference();
    let (_, batch) = table();
    let n = batch.num_rows();
    for case in r["scale"].as_array().unwrap() {
        let column = case["column"].as_str().unwrap();
        let mut spec = json!({"method": case["method"]});
        for k in ["range", "quantile_range"] {
            if let Some(v) = case.get(k) {
                spec[k] = v.clone();
            }
        }
        let cfg = json!({"columns": {column: spec}});
        let out = run("scale", cfg.clone(), &batch);
        assert_accounts(&out, n);
        assert_eq!(out.rows("quarantine"), 0);
        let main = one(&out, "main");
        let got = col(&main, column);
        let input = col(&batch, column);
        let want = floats(&case["output"]);
        let f = &out.fact("scaled")[column];
        let (center, scale, offset) = (num(&f["center"]), num(&f["scale"]), num(&f["offset"]));
        assert_eq!(f["constant"], json!(column == "constant"), "{cfg}");
        for ((g, w), x) in got.iter().zip(&want).zip(&input) {
            assert_eq!(g.is_none(), w.is_none(), "{cfg}: null stays null");
            if let (Some(g), Some(w), Some(x)) = (g, w, x) {
                assert!(close(*g, *w, 1e-9), "{cfg}: {g} vs scikit-learn {w}");
                // invert from the facts alone
                let back = (g - offset) * scale + center;
                assert!(close(back, *x, 1e-12), "{cfg}: {back} vs {x}");
            }
        }
        match case["method"].as_str().unwrap() {
            "zscore" => assert!(close(num(&f["mean"]), num(&case["mean"]), 1e-12)),
            "minmax" => {
                assert_eq!(f["min"], case["data_min"]);
                assert_eq!(f["max"], case["data_max"]);
            }
            _ => assert!(close(num(&f["median"]), num(&case["center"]), 1e-12)),
        }
        let valid = input.iter().filter(|v| v.is_some()).count();
        assert_eq!(f["n"], json!(valid));
    }
}

#[test]
fn scale_suffix_keeps_the_input_and_infinite_values_go_to_quarantine() {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, true),
    ]));
    let x = Float64Array::from(vec![
        Some(1.0),
        Some(2.0),
        Some(f64::INFINITY),
        Some(f64::NAN),
        None,
        Some(3.0),
        Some(4.0),
    ]);
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(Int64Array::from_iter_values(0..7)), Arc::new(x)],
    )
    .unwrap();
    let cfg = json!({"columns": {"x": {"method": "minmax"}}, "suffix": "_scaled"});
    let out = run("scale", cfg, &batch);
    assert_accounts(&out, 7);
    let q = one(&out, "quarantine");
    assert_eq!(q.num_rows(), 1);
    assert_eq!(
        q.column_by_name("reason")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "scale: x is infinite"
    );
    let main = one(&out, "main");
    // the input column is kept as it was (NaN compared by its text)
    let text = |v: Vec<Option<f64>>| format!("{v:?}");
    assert_eq!(
        text(col(&main, "x")),
        "[Some(1.0), Some(2.0), Some(NaN), None, Some(3.0), Some(4.0)]"
    );
    let s = col(&main, "x_scaled");
    assert_eq!(s[0..2], [Some(0.0), Some(1.0 / 3.0)]);
    assert!(s[2].unwrap().is_nan(), "NaN stays NaN");
    assert_eq!(s[3], None, "null stays null");
    assert_eq!(s[4..], [Some(2.0 / 3.0), Some(1.0)]);
    let f = &out.fact("scaled")["x"];
    assert_eq!(
        (f["min"].clone(), f["max"].clone(), f["n"].clone()),
        (json!(1.0), json!(4.0), json!(4))
    );
    assert_eq!(f["output"], json!("x_scaled"));
}

#[test]
fn box_cox_quarantines_non_positive_rows_with_a_reason() {
    let r = reference();
    let (_, batch) = table();
    let n = batch.num_rows();
    let margin = col(&batch, "margin");
    for (shift, bound) in [(None, "0"), (Some(2.0), "-2")] {
        let mut spec = json!({"method": "box_cox"});
        if let Some(s) = shift {
            spec["shift"] = json!(s);
        }
        let out = run("transform", json!({"columns": {"margin": spec}}), &batch);
        assert_accounts(&out, n);
        let s = shift.unwrap_or(0.0);
        let bad: Vec<usize> = (0..n).filter(|&i| margin[i].unwrap() + s <= 0.0).collect();
        assert!(!bad.is_empty());
        let q = one(&out, "quarantine");
        assert_eq!(q.num_rows(), bad.len());
        let reasons = q.column_by_name("reason").unwrap().as_string::<i32>();
        let want = format!("transform: margin <= {bound} (box_cox)");
        assert!(reasons.iter().all(|r| r == Some(want.as_str())), "{want}");
        // the quarantine holds the input rows unchanged
        let ids: Vec<i64> = q
            .column(0)
            .as_primitive::<segflow_sdk::arrow::datatypes::Int64Type>()
            .values()
            .to_vec();
        assert_eq!(ids, bad.iter().map(|&i| i as i64).collect::<Vec<_>>());
        assert_eq!(
            col(&q, "margin"),
            bad.iter().map(|&i| margin[i]).collect::<Vec<_>>()
        );
        let f = &out.fact("transformed")["margin"];
        assert_eq!(f["quarantined"], json!(bad.len()));
        assert_eq!(f["n"], json!(n - bad.len()));
        assert_eq!(f["lambda_fitted"], json!(true));
        // the component's lambda is segflow-ml's on the rows kept
        let kept: Vec<f64> = (0..n)
            .filter(|i| !bad.contains(i))
            .map(|i| margin[i].unwrap() + s)
            .collect();
        let want = segflow_ml::transform::box_cox_lambda(&kept).unwrap();
        assert_eq!(num(&f["lambda"]), want);
    }
    // with a shift that clears every value, nothing is quarantined and the lambda is
    // scipy's
    let case = r["transform"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "margin" && c["method"] == "box_cox" && c["shift"] == json!(4.0))
        .unwrap();
    let out = run(
        "transform",
        json!({"columns": {"margin": {"method": "box_cox", "shift": 4}}}),
        &batch,
    );
    assert_eq!(out.rows("quarantine"), 0);
    let f = &out.fact("transformed")["margin"];
    assert!(close(
        num(&f["lambda"]),
        num(&case["expected_lambda"]),
        1e-6
    ));
    assert!(close(
        num(&f["log_likelihood"]),
        num(&case["log_likelihood"]),
        1e-9
    ));
    // log1p: <= -1 goes
    let out = run(
        "transform",
        json!({"columns": {"margin": {"method": "log1p"}}}),
        &batch,
    );
    assert_accounts(&out, n);
    let bad = margin.iter().filter(|m| m.unwrap() <= -1.0).count();
    assert_eq!(out.rows("quarantine"), bad);
    let q = one(&out, "quarantine");
    assert_eq!(
        q.column_by_name("reason")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "transform: margin <= -1 (log1p)"
    );
}

#[test]
fn transform_matches_scipy_and_inverts_from_the_facts() {
    let r = reference();
    let (_, batch) = table();
    let n = batch.num_rows();
    for case in r["transform"].as_array().unwrap() {
        let column = case["column"].as_str().unwrap();
        let method = case["method"].as_str().unwrap();
        let shift = num(&case["shift"]);
        for standardize in [false, true] {
            if standardize && case.get("standardized").is_none() {
                continue;
            }
            let mut spec = json!({"method": method, "shift": shift, "standardize": standardize});
            if let Some(l) = case["lambda"].as_f64() {
                spec["lambda"] = json!(l);
            }
            let cfg = json!({"columns": {column: spec}});
            let out = run("transform", cfg.clone(), &batch);
            assert_accounts(&out, n);
            assert_eq!(out.rows("quarantine"), 0, "{cfg}");
            let f = &out.fact("transformed")[column];
            if let Some(l) = case["expected_lambda"].as_f64() {
                assert!(close(num(&f["lambda"]), l, 1e-6), "{cfg}: {f}");
            } else {
                assert_eq!(f["lambda"], Value::Null);
            }
            assert_eq!(f["constant"], json!(column == "constant"));
            let got = col(&one(&out, "main"), column);
            let input = col(&batch, column);
            let want = floats(if standardize {
                &case["standardized"]
            } else {
                &case["output"]
            });
            let (mean, std) = if standardize {
                (num(&f["mean"]), num(&f["std"]))
            } else {
                assert_eq!((&f["mean"], &f["std"]), (&Value::Null, &Value::Null));
                (0.0, 1.0)
            };
            let lambda = f["lambda"].as_f64();
            for ((g, w), x) in got.iter().zip(&want).zip(&input) {
                assert_eq!(g.is_none(), w.is_none(), "{cfg}: null stays null");
                let (Some(g), Some(w), Some(x)) = (g, w, x) else {
                    continue;
                };
                // 1e-6: values at the fitted lambda (see segflow-ml's test)
                assert!(close(*g, *w, 1e-6), "{cfg}: {g} vs {w}");
                // invert from the facts alone
                let y = g * std + mean;
                let back = match (method, lambda) {
                    ("log1p", _) => y.exp_m1(),
                    ("box_cox", Some(l)) => inv_box_cox(y, l),
                    (_, Some(l)) => inv_yeo_johnson(y, l),
                    _ => unreachable!(),
                } - shift;
                assert!(close(back, *x, 1e-9), "{cfg}: {back} vs {x}");
            }
        }
    }
}

#[test]
fn transform_nan_null_infinite_and_suffix() {
    let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, true)]));
    let x = Float64Array::from(vec![
        Some(-2.0),
        Some(0.0),
        Some(f64::NEG_INFINITY),
        Some(f64::NAN),
        None,
        Some(3.0),
        Some(10.0),
        Some(0.5),
    ]);
    let batch = RecordBatch::try_new(schema, vec![Arc::new(x)]).unwrap();
    let cfg = json!({"columns": {"x": {"method": "yeo_johnson", "lambda": 0.5}}, "suffix": "_yj"});
    let out = run("transform", cfg, &batch);
    assert_accounts(&out, 8);
    let q = one(&out, "quarantine");
    assert_eq!(
        q.column_by_name("reason")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "transform: x is infinite"
    );
    let main = one(&out, "main");
    let y = col(&main, "x_yj");
    assert_eq!(y.len(), 7);
    assert!(close(
        y[0].unwrap(),
        segflow_ml::transform::yeo_johnson(-2.0, 0.5),
        1e-15
    ));
    assert!(y[2].unwrap().is_nan() && y[3].is_none());
    assert_eq!(col(&main, "x")[5], Some(10.0));
    let f = &out.fact("transformed")["x"];
    assert_eq!(
        (
            f["lambda"].clone(),
            f["lambda_fitted"].clone(),
            f["n"].clone()
        ),
        (json!(0.5), json!(false), json!(5))
    );
    assert_eq!(f["quarantined"], json!(1));
}
