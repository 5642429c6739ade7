//! Encodings against scikit-learn / pandas, and HMAC pseudonyms and generalisations
//! against Python (fixtures/encode_pseudo_reference.json, made by
//! fixtures/make_encode_pseudo_fixture.py).

use segflow_ml::encode::{
    frequency_count, frequency_share, Categorical, Infrequent, MinFrequency, NullEncoding, OneHot,
    OneHotLabel, Ordinal, OrdinalOrder, UnknownOneHot, UnknownOrdinal, ValueCounts,
};
use segflow_ml::pseudo::{DatePart, Generalisation, Pseudonymizer};
use serde_json::Value;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Date32Array, Float64Array, Int64Array, StringArray, StringViewArray,
};

fn reference() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/encode_pseudo_reference.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn strs(v: &Value) -> Vec<Option<String>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn column(v: &Value) -> Categorical {
    let s = strs(v);
    Categorical::from_strs(s.iter().map(|x| x.as_deref()))
}

fn min_frequency(v: &Value) -> Option<MinFrequency> {
    if v.is_u64() {
        Some(MinFrequency::Count(v.as_u64().unwrap()))
    } else {
        v.as_f64().map(MinFrequency::Share)
    }
}

fn label(l: &OneHotLabel) -> String {
    match l {
        OneHotLabel::Category(c) => c.clone(),
        OneHotLabel::Other => "other".into(),
        OneHotLabel::Null => "null".into(),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn one_hot_cap_matches_sklearn_infrequent_categories() {
    let r = reference();
    let channel = column(&r["channel"]);
    let counts = ValueCounts::of(&channel);
    for case in r["onehot_cap"].as_array().unwrap() {
        let inf = Infrequent::new(
            case["max_categories"].as_u64().map(|m| m as usize),
            min_frequency(&case["min_frequency"]),
        )
        .unwrap();
        let oh = OneHot::fit(&counts, &inf, NullEncoding::Zeros);
        let want_frequent: Vec<String> = strs(&case["frequent"]).into_iter().flatten().collect();
        let want_infrequent: Vec<String> =
            strs(&case["infrequent"]).into_iter().flatten().collect();
        // segflow orders columns by frequency, scikit-learn by value: compare as sets.
        assert_eq!(sorted(oh.categories().to_vec()), want_frequent, "{case}");
        let outside: Vec<String> = oh
            .outside(&counts)
            .into_iter()
            .map(|(v, _)| v.to_string())
            .collect();
        assert_eq!(sorted(outside), want_infrequent, "{case}");
        assert_eq!(oh.has_other(), !want_infrequent.is_empty(), "{case}");
        // Frequency order: counts never increase along the columns.
        let c: Vec<u64> = oh.categories().iter().map(|v| counts.count(v)).collect();
        assert!(c.windows(2).all(|w| w[0] >= w[1]), "{c:?}");
        let cols = oh.transform(&channel).unwrap();
        let labels = oh.labels();
        assert_eq!(labels.len(), case["columns"].as_object().unwrap().len());
        for (l, a) in labels.iter().zip(&cols) {
            let want: Vec<i8> = case["columns"][label(l)]
                .as_array()
                .unwrap_or_else(|| panic!("no column {} in {case}", label(l)))
                .iter()
                .map(|x| x.as_i64().unwrap() as i8)
                .collect();
            assert_eq!(a.values().to_vec(), want, "{} in {case}", label(l));
            assert_eq!(a.null_count(), 0);
        }
    }
}

#[test]
fn one_hot_listed_matches_pandas_get_dummies() {
    let r = reference();
    let region = column(&r["region"]);
    for case in r["onehot_listed"].as_array().unwrap() {
        let cats: Vec<String> = strs(&case["categories"]).into_iter().flatten().collect();
        let nulls = if case["nulls"] == "category" {
            NullEncoding::Category
        } else {
            NullEncoding::Zeros
        };
        let oh = OneHot::listed(cats, UnknownOneHot::Other, nulls).unwrap();
        let labels: Vec<String> = oh.labels().iter().map(label).collect();
        let want: Vec<String> = case["columns"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(labels, want, "listed order, then other, then null");
        for (l, a) in labels.iter().zip(oh.transform(&region).unwrap()) {
            let want: Vec<i8> = case["columns"][l]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap() as i8)
                .collect();
            assert_eq!(a.values().to_vec(), want, "{l}");
        }
    }
}

fn codes(v: &Value) -> Vec<Option<i64>> {
    v.as_array().unwrap().iter().map(Value::as_i64).collect()
}

#[test]
fn ordinal_matches_sklearn_ordinal_encoder() {
    let r = reference();
    let channel = column(&r["channel"]);
    let counts = ValueCounts::of(&channel);
    for case in r["ordinal"].as_array().unwrap() {
        let enc = if let Some(cats) = case.get("categories") {
            let cats: Vec<String> = strs(cats).into_iter().flatten().collect();
            Ordinal::listed(cats, UnknownOrdinal::Null).unwrap()
        } else {
            let inf = Infrequent::new(
                case.get("max_categories")
                    .and_then(Value::as_u64)
                    .map(|m| m as usize),
                case.get("min_frequency").and_then(min_frequency),
            )
            .unwrap();
            Ordinal::fit(&counts, OrdinalOrder::Sorted, &inf, UnknownOrdinal::Null)
        };
        let got: Vec<Option<i64>> = enc.transform(&channel).unwrap().iter().collect();
        assert_eq!(got, codes(&case["codes"]), "{case}");
    }
    // Integers sort numerically, as numpy.
    let ints = &r["ordinal_int"];
    let a: ArrayRef = Arc::new(Int64Array::from(
        ints["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::as_i64)
            .collect::<Vec<_>>(),
    ));
    let c = Categorical::new(&a).unwrap();
    let enc = Ordinal::fit(
        &ValueCounts::of(&c),
        OrdinalOrder::Sorted,
        &Infrequent::default(),
        UnknownOrdinal::Null,
    );
    let want: Vec<String> = ints["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(enc.categories(), want.as_slice());
    let got: Vec<Option<i64>> = enc.transform(&c).unwrap().iter().collect();
    assert_eq!(got, codes(&ints["codes"]));
    // Frequency order: pandas value_counts().
    let f = &r["ordinal_frequency"];
    let enc = Ordinal::fit(
        &counts,
        OrdinalOrder::Frequency,
        &Infrequent::default(),
        UnknownOrdinal::Null,
    );
    let want: Vec<String> = strs(&f["categories"]).into_iter().flatten().collect();
    assert_eq!(enc.categories(), want.as_slice());
    let got: Vec<Option<i64>> = enc.transform(&channel).unwrap().iter().collect();
    assert_eq!(got, codes(&f["codes"]));
}

#[test]
fn frequency_matches_pandas_value_counts() {
    let r = reference();
    let region = column(&r["region"]);
    let counts = ValueCounts::of(&region);
    let f = &r["frequency"];
    for (v, n) in f["value_counts"].as_object().unwrap() {
        assert_eq!(counts.count(v), n.as_u64().unwrap(), "{v}");
    }
    let got: Vec<Option<i64>> = frequency_count(&region, &counts).iter().collect();
    assert_eq!(got, codes(&f["count"]));
    let share = frequency_share(&region, &counts);
    for (i, want) in f["share"].as_array().unwrap().iter().enumerate() {
        match want.as_f64() {
            None => assert!(share.is_null(i)),
            Some(w) => assert!((share.value(i) - w).abs() < 1e-15, "row {i}"),
        }
    }
}

#[test]
fn hmac_matches_pythons_hmac_module() {
    let r = reference();
    let h = &r["hmac"];
    let p = Pseudonymizer::new(h["key"].as_str().unwrap().as_bytes(), 64, "").unwrap();
    let other = Pseudonymizer::new(h["other_key"].as_str().unwrap().as_bytes(), 64, "").unwrap();
    let pairs = |k: &str| -> Vec<(Value, String)> {
        h[k].as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].clone(), p[1].as_str().unwrap().to_string()))
            .collect()
    };
    let text = pairs("text");
    for (v, want) in &text {
        assert_eq!(&p.pseudonym(v.as_str().unwrap().as_bytes()), want);
    }
    // The same values as Utf8 and Utf8View arrays, with a null.
    let values: Vec<Option<&str>> = text.iter().map(|(v, _)| v.as_str()).chain([None]).collect();
    for a in [
        Arc::new(StringArray::from(values.clone())) as ArrayRef,
        Arc::new(StringViewArray::from(values.clone())) as ArrayRef,
    ] {
        let got = p.hash_array(&a).unwrap();
        for (i, (_, want)) in text.iter().enumerate() {
            assert_eq!(got.value(i), want);
        }
        assert!(got.is_null(text.len()));
    }
    let ints = pairs("ints");
    let a: ArrayRef = Arc::new(Int64Array::from(
        ints.iter()
            .map(|(v, _)| v.as_i64().unwrap())
            .collect::<Vec<_>>(),
    ));
    let got = p.hash_array(&a).unwrap();
    for (i, (_, want)) in ints.iter().enumerate() {
        assert_eq!(got.value(i), want);
    }
    for (v, want) in pairs("other_key_text") {
        assert_eq!(&other.pseudonym(v.as_str().unwrap().as_bytes()), &want);
    }
    // Truncation keeps the leading hex characters.
    let t = Pseudonymizer::new(h["key"].as_str().unwrap().as_bytes(), 16, "id_").unwrap();
    assert_eq!(
        t.pseudonym(text[0].0.as_str().unwrap().as_bytes()),
        format!("id_{}", &text[0].1[..16])
    );
}

fn out_strs(a: &ArrayRef) -> Vec<Option<String>> {
    let s = a.as_any().downcast_ref::<StringArray>().unwrap();
    s.iter().map(|x| x.map(str::to_string)).collect()
}

#[test]
fn generalisations_match_the_python_statement() {
    let r = reference();
    let g = &r["generalise"];
    let ages: ArrayRef = Arc::new(Float64Array::from(
        g["ages"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::as_f64)
            .collect::<Vec<_>>(),
    ));
    let cases = [
        (Generalisation::band(10, None).unwrap(), "band10"),
        (Generalisation::band(10, Some(90)).unwrap(), "band10_top90"),
        (Generalisation::band(5, Some(85)).unwrap(), "band5_top85"),
        (
            Generalisation::edges(
                g["edges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect(),
            )
            .unwrap(),
            "edges_labels",
        ),
    ];
    for (gen, key) in cases {
        assert_eq!(out_strs(&gen.apply(&ages).unwrap()), strs(&g[key]), "{key}");
    }
    let postcodes: ArrayRef = Arc::new(StringArray::from(
        strs(&g["postcodes"])
            .iter()
            .map(|s| s.as_deref())
            .collect::<Vec<_>>(),
    ));
    let p = Generalisation::prefix(3)
        .unwrap()
        .apply(&postcodes)
        .unwrap();
    assert_eq!(out_strs(&p), strs(&g["prefix3"]));
    let date_text: ArrayRef = Arc::new(StringArray::from(
        strs(&g["dates"])
            .iter()
            .map(|s| s.as_deref())
            .collect::<Vec<_>>(),
    ));
    let dates = arrow::compute::cast(&date_text, &arrow::datatypes::DataType::Date32).unwrap();
    assert!(dates.as_any().downcast_ref::<Date32Array>().is_some());
    for input in [&date_text, &dates] {
        let y = Generalisation::date(DatePart::Year).apply(input).unwrap();
        assert_eq!(out_strs(&y), strs(&g["year"]));
        let m = Generalisation::date(DatePart::Month).apply(input).unwrap();
        assert_eq!(out_strs(&m), strs(&g["month"]));
    }
    let amounts: ArrayRef = Arc::new(Float64Array::from(
        g["amounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::as_f64)
            .collect::<Vec<_>>(),
    ));
    let rounded = Generalisation::round(1000.0)
        .unwrap()
        .apply(&amounts)
        .unwrap();
    let rounded = rounded.as_any().downcast_ref::<Float64Array>().unwrap();
    let want: Vec<Option<f64>> = g["round1000"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_f64)
        .collect();
    assert_eq!(rounded.iter().collect::<Vec<_>>(), want);
}
