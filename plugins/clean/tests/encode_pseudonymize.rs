//! `encode` and `pseudonymize` driven through the real ABI entry points, against the
//! scikit-learn / pandas / Python `hmac` reference built by
//! `crates/segflow-ml/tests/fixtures/make_encode_pseudo_fixture.py`.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Int64Type, Int8Type};
use segflow_sdk::arrow::datatypes::{Schema, SchemaRef};
use segflow_sdk::arrow::util::display::array_value_to_string;
use segflow_sdk::ffi::abi;
use serde_json::{json, Value};
use std::sync::{Arc, Once};

const ENTRY: abi::EntryFn = segflow_clean::segflow_plugin_v1 as abi::EntryFn;

fn reference() -> Value {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crates/segflow-ml/tests/fixtures/encode_pseudo_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn strs(v: &Value) -> Vec<Option<String>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// A one-column-per-array table split into batches of `rows`.
fn table(columns: Vec<(&str, ArrayRef)>, rows: usize) -> (SchemaRef, Vec<RecordBatch>) {
    let schema: SchemaRef = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect()).unwrap();
    let batches = (0..batch.num_rows())
        .step_by(rows)
        .map(|o| batch.slice(o, rows.min(batch.num_rows() - o)))
        .collect();
    (schema, batches)
}

fn text(values: &[Option<String>]) -> ArrayRef {
    Arc::new(StringArray::from(
        values.iter().map(|v| v.as_deref()).collect::<Vec<_>>(),
    ))
}

fn one(out: &fake_host::Outcome, port: &str) -> RecordBatch {
    let batches = out.table(port);
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(out.schema(port).clone()));
    concat_batches(&schema, batches).unwrap()
}

fn names(s: &Schema) -> Vec<(String, DataType)> {
    s.fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect()
}

fn plan(name: &str, cfg: Value, schema: &SchemaRef) -> fake_host::Outcome {
    fake_host::plan(ENTRY, name, cfg, &[("in", schema.clone())])
}

fn run(name: &str, cfg: Value, schema: SchemaRef, b: Vec<RecordBatch>) -> fake_host::Outcome {
    fake_host::run(ENTRY, name, cfg, 2, vec![("in", schema, b)])
}

/// Plan and run, and check the run's output columns are the planned ones (the engine
/// fails a step whose output differs from its plan).
fn plan_and_run(
    name: &str,
    cfg: Value,
    schema: SchemaRef,
    b: Vec<RecordBatch>,
) -> fake_host::Outcome {
    let p = plan(name, cfg.clone(), &schema);
    assert_eq!(p.status, abi::STATUS_OK, "{cfg}: {:?}", p.error);
    let out = run(name, cfg.clone(), schema, b);
    assert_eq!(out.status, abi::STATUS_OK, "{cfg}: {:?}", out.error);
    for (port, s) in &p.schemas {
        assert_eq!(
            names(&one(&out, port).schema()),
            names(s),
            "{cfg} port {port}"
        );
    }
    out
}

fn assert_plan_error(name: &str, cfg: Value, schema: &SchemaRef, field: &str, message: &str) {
    let out = plan(name, cfg.clone(), schema);
    assert_eq!(out.status, abi::STATUS_ERROR, "{cfg}");
    assert!(
        out.error_message().contains(message),
        "{cfg}: {}",
        out.error_message()
    );
    if !field.is_empty() {
        assert_eq!(
            out.error_field().as_deref(),
            Some(field),
            "{cfg}: {}",
            out.error_message()
        );
    }
}

// ---------------------------------------------------------------- encode

fn encode_input(rows: usize) -> (SchemaRef, Vec<RecordBatch>) {
    let r = reference();
    let channel = strs(&r["channel"]);
    let mut region = strs(&r["region"]);
    region.resize(channel.len(), Some("north".into()));
    let n = channel.len() as i64;
    table(
        vec![
            (
                "id",
                Arc::new(Int64Array::from_iter_values(0..n)) as ArrayRef,
            ),
            ("channel", text(&channel)),
            ("region", text(&region)),
            (
                "amount",
                Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64))),
            ),
        ],
        rows,
    )
}

#[test]
fn encode_plan_errors_name_the_field() {
    let (schema, _) = encode_input(100);
    let cases = [
        (
            json!({"columns": {"channel": {"method": "one_hot", "max_categories": 5}}}),
            "columns.channel",
            "method `one_hot` needs `categories:`",
        ),
        (
            json!({"columns": {"channel": {"method": "one_hot", "categories": ["web"], "max_categories": 5}}}),
            "columns.channel.max_categories",
            "the listed `categories` are the cap",
        ),
        (
            json!({"columns": {"chanel": {"method": "frequency"}}}),
            "columns.chanel",
            "column `chanel` is not in the input",
        ),
        (
            json!({"columns": {"amount": {"method": "frequency"}}}),
            "columns.amount",
            "has type Float64; encode takes text",
        ),
        (
            json!({"columns": {"channel": {"method": "one_hot", "categories": ["a b", "a-b"]}}}),
            "columns.channel.categories",
            "would both be written as column `channel_a_b`",
        ),
        (
            json!({"columns": {"channel": {"method": "one_hot", "categories": ["web", "other"]}}}),
            "columns.channel.categories",
            "column `channel_other`",
        ),
        (
            json!({"columns": {"channel": {"method": "one_hot", "categories": ["web", "web"]}}}),
            "columns.channel.categories",
            "listed twice",
        ),
        (
            json!({"columns": {"channel": {"method": "one_hot", "categories": [1.5]}}}),
            "columns.channel.categories.0",
            "text or integers",
        ),
        (
            json!({"columns": {"id": {"method": "one_hot", "categories": [1, "web"]}}}),
            "columns.id.categories.1",
            "can never match: the column holds integers",
        ),
        (
            json!({"columns": {"channel": {"method": "one_hot", "categories": ["web"], "unknown": "null"}}}),
            "columns.channel.unknown",
            "one_hot takes",
        ),
        (
            json!({"columns": {"channel": {"method": "ordinal", "categories": ["web"], "order": "frequency"}}}),
            "columns.channel.order",
            "whole code book",
        ),
        (
            json!({"columns": {"channel": {"method": "ordinal", "max_categories": 0}}}),
            "columns.channel.max_categories",
            "at least 1",
        ),
        (
            json!({"columns": {"channel": {"method": "ordinal", "min_frequency": 1.5}}}),
            "columns.channel.min_frequency",
            "share in (0, 1]",
        ),
        (
            json!({"columns": {"channel": {"method": "ordinal", "unknown": "error"}}}),
            "columns.channel.unknown",
            "knows every value",
        ),
        (
            json!({"columns": {"channel": {"method": "frequency", "nulls": "category"}}}),
            "columns.channel.nulls",
            "takes only `as`",
        ),
        (
            json!({"columns": {"channel": {"method": "frequency"}, "region": {"method": "frequency", "keep_original": true}}, }),
            "",
            "",
        ),
        (json!({"columns": {}}), "columns", "at least one column"),
        (
            json!({"columns": {"channel": {"method": "hash"}}}),
            "columns.channel.method",
            "unknown variant",
        ),
    ];
    for (cfg, field, message) in cases {
        if message.is_empty() {
            assert_eq!(
                plan("encode", cfg.clone(), &schema).status,
                abi::STATUS_OK,
                "{cfg}"
            );
            continue;
        }
        assert_plan_error("encode", cfg, &schema, field, message);
    }
    // A generated column that the input already has.
    let (clash, _) = table(
        vec![
            ("channel", text(&[Some("web".into())])),
            ("channel_count", text(&[Some("x".into())])),
        ],
        1,
    );
    assert_plan_error(
        "encode",
        json!({"columns": {"channel": {"method": "frequency"}}}),
        &clash,
        "columns.channel",
        "writes column `channel_count`, which the input already has",
    );
}

#[test]
fn encode_plan_places_the_new_columns_where_the_original_was() {
    let (schema, _) = encode_input(100);
    let cfg = json!({"columns": {
        "channel": {"method": "one_hot", "categories": ["web", "store"], "keep_original": true},
        "region": {"method": "one_hot", "categories": ["north", "far east"], "nulls": "category", "unknown": "ignore"},
    }});
    let out = plan("encode", cfg, &schema);
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    let i8 = DataType::Int8;
    let want: Vec<(String, DataType)> = [
        ("id", DataType::Int64),
        ("channel", DataType::Utf8),
        ("channel_web", i8.clone()),
        ("channel_store", i8.clone()),
        ("channel_other", i8.clone()),
        ("region_north", i8.clone()),
        ("region_far_east", i8.clone()),
        ("region_null", i8.clone()),
        ("amount", DataType::Float64),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    assert_eq!(names(out.schema("main")), want);
    assert_eq!(
        out.schema("quarantine").fields().last().unwrap().name(),
        "reason"
    );
    let cfg = json!({"columns": {
        "channel": {"method": "ordinal"},
        "region": {"method": "frequency", "as": "share"},
        "id": {"method": "frequency", "keep_original": true},
    }});
    let out = plan("encode", cfg, &schema);
    let want: Vec<(String, DataType)> = [
        ("id", DataType::Int64),
        ("id_count", DataType::Int64),
        ("channel_ordinal", DataType::Int64),
        ("region_share", DataType::Float64),
        ("amount", DataType::Float64),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    assert_eq!(names(out.schema("main")), want);
}

fn ints(b: &RecordBatch, col: &str) -> Vec<Option<i64>> {
    let c = b
        .column_by_name(col)
        .unwrap_or_else(|| panic!("no column {col}"));
    match c.data_type() {
        DataType::Int8 => c
            .as_primitive::<Int8Type>()
            .iter()
            .map(|v| v.map(i64::from))
            .collect(),
        _ => c.as_primitive::<Int64Type>().iter().collect(),
    }
}

#[test]
fn encode_matches_the_reference_and_records_the_mapping() {
    let r = reference();
    let n_region = r["region"].as_array().unwrap().len();
    for rows in [5, 100] {
        let (schema, batches) = encode_input(rows);
        let cfg = json!({"columns": {
            "region": {"method": "one_hot", "categories": ["north", "south", "east"], "nulls": "category"},
            "channel": {"method": "ordinal", "max_categories": 3},
        }});
        let out = plan_and_run("encode", cfg, schema.clone(), batches.clone());
        let main = one(&out, "main");
        assert_eq!(out.rows("quarantine"), 0);
        assert_eq!(out.fact("rows_in"), &json!(main.num_rows()));
        assert_eq!(out.fact("rows_out"), &json!(main.num_rows()));
        assert_eq!(out.fact("rows_quarantined"), &json!(0));
        // pandas get_dummies on the listed categories (+ other, + null).
        let want = &r["onehot_listed"][1]["columns"];
        for (label, col) in [
            ("north", "region_north"),
            ("south", "region_south"),
            ("east", "region_east"),
            ("other", "region_other"),
            ("null", "region_null"),
        ] {
            let got = ints(&main, col);
            let w: Vec<Option<i64>> = want[label]
                .as_array()
                .unwrap()
                .iter()
                .map(Value::as_i64)
                .collect();
            assert_eq!(&got[..n_region], &w[..], "{col}");
        }
        // scikit-learn OrdinalEncoder(max_categories=3).
        let want: Vec<Option<i64>> = r["ordinal"][1]["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::as_i64)
            .collect();
        assert_eq!(ints(&main, "channel_ordinal"), want);
        // Facts: the mapping with counts, and what went to `other`.
        let f = &out.fact("encoded")["region"];
        assert_eq!(f["method"], "one_hot");
        assert_eq!(
            f["categories"][0],
            json!({"value": "north", "column": "region_north", "count": 5 + (main.num_rows() - n_region)})
        );
        assert_eq!(f["other"]["column"], "region_other");
        assert_eq!(f["other"]["count"], 3);
        assert_eq!(f["other"]["distinct"], 3);
        assert_eq!(
            f["other"]["values"][0],
            json!({"value": "far east", "count": 1})
        );
        assert_eq!(f["nulls"], 3);
        let f = &out.fact("encoded")["channel"];
        assert_eq!(f["order"], "sorted");
        assert_eq!(f["max_categories"], 3);
        assert_eq!(
            f["categories"],
            json!([{"value": "store", "code": 0, "count": 9}, {"value": "web", "code": 1, "count": 12}])
        );
        assert_eq!(f["other"]["code"], 2);
        assert_eq!(f["other"]["count"], 7 + 5 + 3 + 2 + 1);
        let rare: Vec<&str> = f["other"]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["value"].as_str().unwrap())
            .collect();
        assert_eq!(rare, ["app", "phone", "mail", "kiosk", "fax"]);
    }
}

#[test]
fn encode_frequency_and_frequency_ordinal_match_pandas() {
    let r = reference();
    let region = strs(&r["region"]);
    let channel = strs(&r["channel"]);
    let (schema, batches) = table(vec![("region", text(&region))], 4);
    let out = plan_and_run(
        "encode",
        json!({"columns": {"region": {"method": "frequency", "as": "share", "keep_original": true}}}),
        schema.clone(),
        batches.clone(),
    );
    let main = one(&out, "main");
    let share = main
        .column_by_name("region_share")
        .unwrap()
        .as_primitive::<Float64Type>();
    for (i, w) in r["frequency"]["share"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        match w.as_f64() {
            None => assert!(share.is_null(i)),
            Some(w) => assert!((share.value(i) - w).abs() < 1e-15),
        }
    }
    assert_eq!(main.column(0).as_string::<i32>().value(0), "north");
    let out = plan_and_run(
        "encode",
        json!({"columns": {"region": {"method": "frequency"}}}),
        schema,
        batches,
    );
    let want: Vec<Option<i64>> = r["frequency"]["count"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_i64)
        .collect();
    assert_eq!(ints(&one(&out, "main"), "region_count"), want);
    assert_eq!(
        out.fact("encoded")["region"]["top"][0],
        json!({"value": "north", "count": 5})
    );
    // Ordinal by frequency: the index of pandas value_counts().
    let (schema, batches) = table(vec![("channel", text(&channel))], 7);
    let out = plan_and_run(
        "encode",
        json!({"columns": {"channel": {"method": "ordinal", "order": "frequency"}}}),
        schema,
        batches,
    );
    let want: Vec<Option<i64>> = r["ordinal_frequency"]["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_i64)
        .collect();
    assert_eq!(ints(&one(&out, "main"), "channel_ordinal"), want);
}

#[test]
fn encode_takes_dictionary_and_integer_columns() {
    let dict: DictionaryArray<Int32Type> =
        vec![Some("web"), None, Some("app"), Some("web"), Some("tv")]
            .into_iter()
            .collect();
    let (schema, batches) = table(
        vec![
            ("channel", Arc::new(dict) as ArrayRef),
            (
                "tier",
                Arc::new(Int64Array::from(vec![
                    Some(3),
                    Some(1),
                    None,
                    Some(2),
                    Some(9),
                ])),
            ),
        ],
        2,
    );
    let cfg = json!({"columns": {
        "channel": {"method": "one_hot", "categories": ["web", "app"]},
        "tier": {"method": "ordinal", "categories": [1, 2, 3]},
    }});
    let out = plan_and_run("encode", cfg, schema.clone(), batches.clone());
    let main = one(&out, "main");
    assert_eq!(ints(&main, "channel_web"), [1, 0, 0, 1, 0].map(Some));
    assert_eq!(ints(&main, "channel_app"), [0, 0, 1, 0, 0].map(Some));
    assert_eq!(ints(&main, "channel_other"), [0, 0, 0, 0, 1].map(Some));
    assert_eq!(
        ints(&main, "tier_ordinal"),
        vec![Some(2), Some(0), None, Some(1), None]
    );
    assert_eq!(out.fact("encoded")["tier"]["unknown"], 1);
    // unknown: error fails the step, naming the column and row.
    let cfg = json!({"columns": {"tier": {"method": "ordinal", "categories": [1, 2, 3], "unknown": "error"}}});
    let out = run("encode", cfg, schema, batches);
    assert_eq!(out.status, abi::STATUS_ERROR);
    let msg = out.error_message();
    assert!(
        msg.contains("column `tier`") && msg.contains("row 4"),
        "{msg}"
    );
}

// ---------------------------------------------------------------- pseudonymize

const KEY_VAR: &str = "SEGFLOW_TEST_PSEUDO_KEY";
const OTHER_KEY_VAR: &str = "SEGFLOW_TEST_PSEUDO_OTHER_KEY";
const SHORT_KEY_VAR: &str = "SEGFLOW_TEST_PSEUDO_SHORT_KEY";
const SHORT_KEY: &str = "tiny-s3cret";
const UNSET_VAR: &str = "SEGFLOW_TEST_PSEUDO_UNSET_KEY";

/// Set the test keys once, before any test reads them.
fn keys() -> Value {
    static ONCE: Once = Once::new();
    let r = reference();
    ONCE.call_once(|| {
        std::env::set_var(KEY_VAR, r["hmac"]["key"].as_str().unwrap());
        std::env::set_var(OTHER_KEY_VAR, r["hmac"]["other_key"].as_str().unwrap());
        std::env::set_var(SHORT_KEY_VAR, SHORT_KEY);
        std::env::remove_var(UNSET_VAR);
    });
    r
}

fn pii() -> (SchemaRef, Vec<RecordBatch>) {
    let s = |v: &[Option<&str>]| -> ArrayRef { Arc::new(StringArray::from(v.to_vec())) };
    table(
        vec![
            (
                "customer_id",
                Arc::new(Int64Array::from(vec![Some(42), Some(-7), None, Some(42)])),
            ),
            (
                "email",
                s(&[
                    Some("alice@example.com"),
                    Some("Bob.Smith@Example.org"),
                    Some(""),
                    None,
                ]),
            ),
            (
                "name",
                s(&[
                    Some("Alice Liddell"),
                    Some("Bob Smith"),
                    None,
                    Some("Alice Liddell"),
                ]),
            ),
            (
                "phone",
                s(&[Some("+44 20 7946 0018"), None, Some("0161 496 0000"), None]),
            ),
            (
                "age",
                Arc::new(Float64Array::from(vec![
                    Some(34.0),
                    Some(91.0),
                    None,
                    Some(39.5),
                ])),
            ),
            (
                "postcode",
                s(&[Some("SW1A 1AA"), Some(" ec1v 9hq"), Some("M1 1AE"), None]),
            ),
            (
                "signup",
                s(&[
                    Some("2024-03-09"),
                    Some("1999-12-31"),
                    None,
                    Some("2025-01-01"),
                ]),
            ),
            (
                "spend",
                Arc::new(Float64Array::from(vec![
                    Some(52345.0),
                    Some(1499.0),
                    Some(1500.0),
                    None,
                ])),
            ),
        ],
        3,
    )
}

const PII_VALUES: &[&str] = &[
    "alice@example.com",
    "Bob.Smith@Example.org",
    "Alice Liddell",
    "Bob Smith",
    "+44 20 7946 0018",
    "0161 496 0000",
    "SW1A 1AA",
    "ec1v 9hq",
    "M1 1AE",
    "2024-03-09",
    "1999-12-31",
];

fn pseudo_config() -> Value {
    json!({
        "key_env": KEY_VAR,
        "hash": ["customer_id", "email"],
        "drop": ["name", "phone"],
        "generalise": {
            "age": {"band": 10, "top": 90},
            "postcode": {"prefix": 3},
            "signup": {"date": "month"},
            "spend": {"round": 1000},
        },
    })
}

fn cells(b: &RecordBatch) -> Vec<String> {
    let mut v = Vec::new();
    for c in b.columns() {
        for i in 0..c.len() {
            if c.is_valid(i) {
                v.push(array_value_to_string(c, i).unwrap());
            }
        }
    }
    v
}

#[test]
fn pseudonymize_plan_errors_name_the_field_and_never_the_key() {
    keys();
    let (schema, _) = pii();
    let cases = [
        (
            json!({"key_env": UNSET_VAR, "hash": ["email"]}),
            "key_env",
            "environment variable `SEGFLOW_TEST_PSEUDO_UNSET_KEY` is not set",
        ),
        (
            json!({"key_env": SHORT_KEY_VAR, "hash": ["email"]}),
            "key_env",
            "`SEGFLOW_TEST_PSEUDO_SHORT_KEY` is too short: it needs at least 16 bytes",
        ),
        (
            json!({"key_env": KEY_VAR, "hash": ["email"], "drop": ["email"]}),
            "drop.0",
            "column `email` is already under `hash`",
        ),
        (
            json!({"key_env": KEY_VAR, "hash": ["email"], "generalise": {"email": {"prefix": 3}}}),
            "generalise.email",
            "only one of hashed, dropped or generalised",
        ),
        (
            json!({"key_env": KEY_VAR, "drop": ["name", "name"]}),
            "drop.1",
            "named twice under `drop`",
        ),
        (
            json!({"key_env": KEY_VAR, "hash": ["email", "e_mail"]}),
            "hash.1",
            "column `e_mail` is not in the input",
        ),
        (
            json!({"drop": ["nom"]}),
            "drop.0",
            "column `nom` is not in the input",
        ),
        (
            json!({"key_env": KEY_VAR, "hash": ["age"]}),
            "hash.0",
            "has type Float64; `hash` takes text or integer columns",
        ),
        (
            json!({"key_env": KEY_VAR, "hash": ["email"], "length": 8}),
            "length",
            "between 16 and 64",
        ),
        (
            json!({"generalise": {"age": {"band": 10, "prefix": 2}}}),
            "generalise.age",
            "give one rule, not band and prefix",
        ),
        (
            json!({"generalise": {"age": {}}}),
            "generalise.age",
            "give one rule",
        ),
        (
            json!({"generalise": {"age": {"band": 0}}}),
            "generalise.age.band",
            "at least 1",
        ),
        (
            json!({"generalise": {"age": {"edges": [30, 18]}}}),
            "generalise.age.edges",
            "strictly increasing",
        ),
        (
            json!({"generalise": {"age": {"prefix": 3, "top": 90}}}),
            "generalise.age.top",
            "`top` goes with `band`",
        ),
        (
            json!({"generalise": {"email": {"band": 10}}}),
            "generalise.email",
            "has type Utf8; `band` takes a numeric column",
        ),
        (
            json!({"generalise": {"age": {"date": "year"}}}),
            "generalise.age",
            "`date` takes a date",
        ),
        (json!({}), "", "name at least one column"),
        (
            json!({"drop": ["customer_id", "email", "name", "phone", "age", "postcode", "signup", "spend"]}),
            "drop",
            "every column would be dropped",
        ),
        (
            json!({"hash": ["email"], "salt": "x"}),
            "",
            "unknown field `salt`",
        ),
    ];
    for (cfg, field, message) in cases {
        assert_plan_error("pseudonymize", cfg.clone(), &schema, field, message);
        let out = plan("pseudonymize", cfg, &schema);
        assert!(!out.error_message().contains(SHORT_KEY));
    }
    // No key is needed when nothing is hashed, even if the variable is unset.
    let out = plan(
        "pseudonymize",
        json!({"key_env": UNSET_VAR, "drop": ["name"], "generalise": {"age": {"edges": [18, 65]}}}),
        &schema,
    );
    assert_eq!(out.status, abi::STATUS_OK, "{:?}", out.error);
    // Only a `main` port, in input order, hashed columns as utf8, dropped ones gone.
    let out = plan("pseudonymize", pseudo_config(), &schema);
    assert_eq!(out.schemas.len(), 1);
    let want: Vec<(String, DataType)> = [
        ("customer_id", DataType::Utf8),
        ("email", DataType::Utf8),
        ("age", DataType::Utf8),
        ("postcode", DataType::Utf8),
        ("signup", DataType::Utf8),
        ("spend", DataType::Float64),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    assert_eq!(names(out.schema("main")), want);
}

#[test]
fn pseudonymize_matches_python_hmac_and_generalises() {
    let r = keys();
    let (schema, batches) = pii();
    let out = plan_and_run("pseudonymize", pseudo_config(), schema, batches);
    assert_eq!(out.tables.len(), 1, "only the main port");
    let main = one(&out, "main");
    let mac = |k: &str, v: &str| -> String {
        r["hmac"][k]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                p[0] == json!(v) || p[0].as_i64().map(|n| n.to_string()).as_deref() == Some(v)
            })
            .unwrap_or_else(|| panic!("no reference for {v}"))[1]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ids = main.column(0).as_string::<i32>();
    assert_eq!(ids.value(0), mac("ints", "42"));
    assert_eq!(ids.value(1), mac("ints", "-7"));
    assert!(ids.is_null(2));
    assert_eq!(ids.value(3), ids.value(0), "same value, same pseudonym");
    let emails = main.column(1).as_string::<i32>();
    assert_eq!(emails.value(0), mac("text", "alice@example.com"));
    assert_eq!(emails.value(1), mac("text", "Bob.Smith@Example.org"));
    assert_eq!(emails.value(2), mac("text", ""));
    assert!(emails.is_null(3));
    let col = |i: usize| -> Vec<Option<String>> {
        let c = main.column(i).as_string::<i32>();
        c.iter().map(|v| v.map(str::to_string)).collect()
    };
    let s = |v: &[Option<&str>]| -> Vec<Option<String>> {
        v.iter().map(|x| x.map(str::to_string)).collect()
    };
    assert_eq!(
        col(2),
        s(&[Some("30-39"), Some("90+"), None, Some("30-39")])
    );
    assert_eq!(col(3), s(&[Some("SW1"), Some("ec1"), Some("M11"), None]));
    assert_eq!(
        col(4),
        s(&[Some("2024-03"), Some("1999-12"), None, Some("2025-01")])
    );
    let spend = main.column(5).as_primitive::<Float64Type>();
    assert_eq!(
        spend.iter().collect::<Vec<_>>(),
        vec![Some(52000.0), Some(1000.0), Some(2000.0), None]
    );
    // No original value in the output or the facts; never the key.
    let key = r["hmac"]["key"].as_str().unwrap();
    let facts = serde_json::to_string(&out.facts).unwrap();
    for v in PII_VALUES.iter().chain([&key]) {
        assert!(
            !cells(&main).iter().any(|c| c.contains(v)),
            "{v} in the output"
        );
        assert!(!facts.contains(v), "{v} in the facts: {facts}");
    }
    // Facts: what was done, with counts.
    assert_eq!(out.fact("rows_in"), &json!(4));
    assert_eq!(out.fact("rows_out"), &json!(4));
    assert_eq!(
        out.fact("hashed"),
        &json!({"customer_id": {"values": 3, "nulls": 1}, "email": {"values": 3, "nulls": 1}})
    );
    assert_eq!(out.fact("dropped"), &json!(["name", "phone"]));
    let g = out.fact("generalised");
    assert_eq!(g["age"]["method"], "band");
    assert_eq!(g["age"]["band"], 10);
    assert_eq!(g["age"]["top"], 90);
    assert_eq!(g["age"]["values"], 3);
    assert_eq!(g["age"]["nulls"], 1);
    assert_eq!(g["age"]["groups"], 2);
    assert_eq!(g["age"]["smallest_group"], 1);
    assert_eq!(g["postcode"]["prefix"], 3);
    assert_eq!(g["signup"]["date"], "month");
    assert_eq!(g["spend"]["round"], 1000.0);
    let p = out.fact("pseudonyms");
    assert_eq!(p["algorithm"], "HMAC-SHA256");
    assert_eq!(p["key_env"], KEY_VAR);
    assert_eq!(p["length"], 64);
    assert_eq!(p["key_id"].as_str().unwrap().len(), 16);
}

#[test]
fn pseudonyms_are_stable_per_key_and_join_across_tables() {
    keys();
    let (schema, batches) = pii();
    let cfg =
        json!({"key_env": KEY_VAR, "hash": ["customer_id", "email"], "length": 20, "prefix": "p_"});
    let a = one(
        &plan_and_run("pseudonymize", cfg.clone(), schema.clone(), batches.clone()),
        "main",
    );
    // Another run, other batch sizes: the same pseudonyms.
    let b_out = plan_and_run(
        "pseudonymize",
        cfg.clone(),
        schema.clone(),
        vec![concat_batches(&schema, &batches).unwrap()],
    );
    let b = one(&b_out, "main");
    assert_eq!(a.column(0), b.column(0));
    assert_eq!(a.column(1), b.column(1));
    let first = a.column(1).as_string::<i32>().value(0);
    assert!(first.starts_with("p_") && first.len() == 22, "{first}");
    // Another table holding the same ids (as an integer column of another name) joins.
    let (orders, ob) = table(
        vec![(
            "customer_id",
            Arc::new(Int64Array::from(vec![-7, 42, 5])) as ArrayRef,
        )],
        2,
    );
    let o = one(
        &plan_and_run(
            "pseudonymize",
            json!({"key_env": KEY_VAR, "hash": ["customer_id"], "length": 20, "prefix": "p_"}),
            orders,
            ob,
        ),
        "main",
    );
    let ids = a.column(0).as_string::<i32>();
    let oids = o.column(0).as_string::<i32>();
    assert_eq!(oids.value(0), ids.value(1));
    assert_eq!(oids.value(1), ids.value(0));
    // Another key: other pseudonyms, another key id.
    let mut other = cfg.clone();
    other["key_env"] = json!(OTHER_KEY_VAR);
    let c_out = plan_and_run("pseudonymize", other, schema, batches);
    let c = one(&c_out, "main");
    assert_ne!(
        a.column(1).as_string::<i32>().value(0),
        c.column(1).as_string::<i32>().value(0)
    );
    assert_ne!(
        b_out.fact("pseudonyms")["key_id"],
        c_out.fact("pseudonyms")["key_id"]
    );
}

#[test]
fn pseudonymize_bad_dates_name_the_row_not_the_value() {
    keys();
    let (schema, batches) = table(
        vec![(
            "signup",
            Arc::new(StringArray::from(vec![
                Some("2024-01-01"),
                Some("Alice's birthday"),
            ])) as ArrayRef,
        )],
        1,
    );
    let out = run(
        "pseudonymize",
        json!({"generalise": {"signup": {"date": "year"}}}),
        schema,
        batches,
    );
    let err = match &out.tables[0].1 {
        Err(e) => e.clone(),
        Ok(_) => out.error_message(),
    };
    assert!(
        err.contains("input row 1: not a date") && err.contains("signup"),
        "{err}"
    );
    assert!(!err.contains("Alice"), "{err}");
}
