//! `report` through the real ABI entry points: small hand-built inputs of every kind the
//! report reads plus a hand-written run description give a page with every section, a
//! table under every chart, no external references, escaped data text, and markup that
//! parses cleanly (html5ever via `scraper`, and a strict tag-balance check of our own).
//! A run with only assignments lists the missing sections; config errors name their
//! field; one million assignments are only counted.

#[path = "../../support/fake_host.rs"]
mod fake_host;

use segflow_sdk::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use segflow_sdk::ffi::abi;
use serde_json::{json, Value};
use std::sync::Arc;

const ENTRY: abi::EntryFn = segflow_evaluate::segflow_plugin_v1 as abi::EntryFn;

const EVIL: &str = "<script>alert(1)</script> & \"x\"";
const EVIL_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;";
const CJK: &str = "高價值客戶";

type Input = (&'static str, SchemaRef, Vec<RecordBatch>);

fn table(name: &'static str, cols: Vec<(&str, ArrayRef)>) -> Input {
    let schema = Arc::new(Schema::new(
        cols.iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(schema.clone(), cols.into_iter().map(|(_, a)| a).collect()).unwrap();
    (name, schema, vec![batch])
}

fn s(v: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}
fn f(v: &[f64]) -> ArrayRef {
    Arc::new(Float64Array::from(v.to_vec()))
}
fn i32s(v: &[i32]) -> ArrayRef {
    Arc::new(Int32Array::from(v.to_vec()))
}
fn i64s(v: &[i64]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}

const LABELS: [&str; 3] = ["Champions", EVIL, CJK];

fn profiles() -> Input {
    table(
        "profile.profiles",
        vec![
            ("segmentation", s(&["segments"; 3])),
            ("segment_id", i32s(&[0, 1, 2])),
            ("segment", s(&LABELS)),
            ("customers", i64s(&[50, 30, 20])),
            ("customer_share", f(&[0.5, 0.3, 0.2])),
            ("revenue", f(&[5000.0, 1500.0, 500.0])),
            ("revenue_share", f(&[0.714, 0.214, 0.071])),
            ("recency_days_mean", f(&[12.0, 80.0, 300.0])),
            ("recency_days_median", f(&[10.0, 75.0, 290.0])),
            ("recency_days_std", f(&[5.0, 20.0, 60.0])),
            ("recency_days_index", f(&[16.0, 105.0, 400.0])),
            ("recency_days_z", f(&[-1.1, 0.1, 2.0])),
            ("monetary_sum_mean", f(&[100.0, 50.0, 25.0])),
            ("monetary_sum_median", f(&[90.0, 45.0, 20.0])),
            ("monetary_sum_std", f(&[30.0, 10.0, 8.0])),
            ("monetary_sum_index", f(&[143.0, 71.0, 36.0])),
            ("monetary_sum_z", f(&[1.2, -0.4, -0.9])),
            ("region_top", s(&["north", "south", "east"])),
            ("region_top_share", f(&[0.4, 0.5, 0.6])),
            ("region_top_lift", f(&[1.1, 1.3, 1.6])),
            ("region_distinctive", s(&["north", "south", "east"])),
            ("region_distinctive_share", f(&[0.4, 0.5, 0.6])),
            ("region_distinctive_lift", f(&[1.1, 1.3, 1.6])),
        ],
    )
}

fn personas() -> Input {
    table(
        "personas.personas",
        vec![
            ("segmentation", s(&["segments"; 3])),
            ("segment_id", i32s(&[0, 1, 2])),
            ("segment", s(&LABELS)),
            ("name", s(&["Recent, high spend", EVIL, "Lapsed"])),
            (
                "description",
                s(&[
                    "50 customers (50%). recency_days averages 12.",
                    "30 customers.",
                    "20 customers; 客戶畫像.",
                ]),
            ),
            (
                "descriptors",
                s(&["recent, high spend", "", "lapsed, low spend"]),
            ),
            ("demographics", s(&["region: mostly north (40%)", "", ""])),
            (
                "spending",
                s(&["monetary_sum 100 (index 143): high spend", "", ""]),
            ),
            (
                "behaviour",
                s(&["recency_days 12 (index 16): recent", "", ""]),
            ),
            (
                "value",
                s(&[
                    "50 customers (50%)",
                    "30 customers (30%)",
                    "20 customers (20%)",
                ]),
            ),
        ],
    )
}

fn playbook() -> Input {
    table(
        "playbook.playbook",
        vec![
            ("segmentation", s(&["segments"; 3])),
            ("segment_id", i32s(&[0, 1, 2])),
            ("segment", s(&LABELS)),
            ("action", s(&["retain", "call <now>", "win_back"])),
            (
                "why",
                s(&["best customers", "who knows", "lapsed big spenders"]),
            ),
            (
                "offer",
                s(&["exclusive offers (專屬優惠)", "", "a discount"]),
            ),
            (
                "rule",
                s(&["segment == 'Champions'", "default", "recency_days_z >= 0.5"]),
            ),
            ("rule_index", i32s(&[0, -1, 2])),
            ("customers", i64s(&[50, 30, 20])),
            ("revenue_share", f(&[0.714, 0.214, 0.071])),
        ],
    )
}

fn map_and_loadings() -> Vec<Input> {
    vec![
        table(
            "map.map",
            vec![
                ("segmentation", s(&["segments"; 3])),
                ("segment_id", i32s(&[0, 1, 2])),
                ("segment", s(&LABELS)),
                ("x", f(&[1.5, -0.2, -1.3])),
                ("y", f(&[0.3, -0.8, 0.5])),
                ("customers", i64s(&[50, 30, 20])),
                ("customer_share", f(&[0.5, 0.3, 0.2])),
                ("value", f(&[0.714, 0.214, 0.071])),
            ],
        ),
        table(
            "map.loadings",
            vec![
                ("segmentation", s(&["segments"; 2])),
                ("feature", s(&["recency_days", "monetary_sum"])),
                ("pc1", f(&[-0.7, 0.7])),
                ("pc2", f(&[0.7, 0.7])),
            ],
        ),
    ]
}

/// RFM assignments: customer i gets segment i % 3 and R/FM scores from it.
fn assignments(n: usize) -> Input {
    let ids: Vec<i32> = (0..n).map(|i| (i % 3) as i32).collect();
    let labels: Vec<&str> = ids.iter().map(|&i| LABELS[i as usize]).collect();
    let r: Vec<i32> = ids.iter().map(|&i| [5, 3, 1][i as usize]).collect();
    let fm: Vec<i32> = (0..n).map(|k| [5, 3, 1][k % 3] - (k % 2) as i32).collect();
    let rfm: Vec<String> = (0..n)
        .map(|k| format!("{}{}{}", r[k], fm[k], fm[k]))
        .collect();
    table(
        "segments.assignments",
        vec![
            ("customer_id", i64s(&(0..n as i64).collect::<Vec<_>>())),
            ("segment_id", i32s(&ids)),
            ("segment", s(&labels)),
            ("r_score", i32s(&r)),
            ("f_score", i32s(&fm)),
            ("m_score", i32s(&fm)),
            ("fm_score", i32s(&fm)),
            ("rfm_score", Arc::new(StringArray::from(rfm)) as ArrayRef),
        ],
    )
}

fn rfm_model() -> Input {
    let none: Vec<Option<i32>> = vec![None; 3];
    let n = |v: &[i32]| Arc::new(Int32Array::from(v.to_vec())) as ArrayRef;
    let nn = || Arc::new(Int32Array::from(none.clone())) as ArrayRef;
    table(
        "segments.model",
        vec![
            ("segment_id", i32s(&[0, 1, 2])),
            ("segment", s(&LABELS)),
            ("r_low", n(&[4, 2, 1])),
            ("r_high", n(&[5, 3, 1])),
            ("f_low", nn()),
            ("f_high", nn()),
            ("m_low", nn()),
            ("m_high", nn()),
            ("fm_low", n(&[4, 1, 1])),
            ("fm_high", n(&[5, 5, 5])),
            ("size", i64s(&[34, 33, 33])),
            ("share", f(&[0.34, 0.33, 0.33])),
            ("recency_min", f(&[0.0, 30.0, 200.0])),
            ("recency_max", f(&[29.0, 199.0, 700.0])),
            ("frequency_min", f(&[3.0, 1.0, 1.0])),
            ("frequency_max", f(&[40.0, 10.0, 3.0])),
            ("monetary_min", f(&[200.0, 10.0, 5.0])),
            ("monetary_max", f(&[9000.0, 900.0, 300.0])),
        ],
    )
}

/// A long metrics table from step `name` (`step.metrics`).
fn metrics_table(name: &'static str, rows: &[(&str, &str, Option<&str>, f64)]) -> Input {
    let seg: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let metric: Vec<&str> = rows.iter().map(|r| r.1).collect();
    let segment: Vec<Option<&str>> = rows.iter().map(|r| r.2).collect();
    let value: Vec<f64> = rows.iter().map(|r| r.3).collect();
    table(
        name,
        vec![
            ("segmentation", s(&seg)),
            ("metric", s(&metric)),
            ("segment", Arc::new(StringArray::from(segment)) as ArrayRef),
            ("value", f(&value)),
        ],
    )
}

/// Metrics of a validity, a stability, a kpis and an unknown evaluator (whose metrics
/// are placed by name), and the stability step's re-fits.
fn metrics() -> Vec<Input> {
    let mut validity = Vec::new();
    for (sg, sil) in [("segments", 0.41), ("km", 0.55)] {
        validity.push((sg, "silhouette", None, sil));
        validity.push((sg, "calinski_harabasz", None, 812.5));
        validity.push((sg, "davies_bouldin", None, 0.93));
    }
    let mut stability = vec![("segments", "ari_mean", None, 0.97)];
    let mut kpis = vec![("segments", "repeat_rate", None, 0.44)];
    for (i, l) in LABELS.iter().enumerate() {
        stability.push(("segments", "jaccard_mean", Some(*l), 0.9 - 0.2 * i as f64));
        kpis.push((
            "segments",
            "average_order_value",
            Some(*l),
            80.0 - 20.0 * i as f64,
        ));
        kpis.push(("segments", "repeat_rate", Some(*l), 0.7 - 0.25 * i as f64));
    }
    let custom = vec![
        ("segments", "nmi_mean", None, 0.88),
        ("segments", "uplift", None, 0.05),
    ];
    vec![
        metrics_table("validity.metrics", &validity),
        metrics_table("stability.metrics", &stability),
        metrics_table("kpis.metrics", &kpis),
        metrics_table("custom.metrics", &custom),
        table(
            "stability.resamples",
            vec![
                ("resample", i32s(&[0, 1, 2, 3])),
                ("customers", i64s(&[80, 80, 80, 80])),
                ("segments", i32s(&[3, 3, 3, 2])),
                ("ari", f(&[0.99, 0.97, 0.93, 0.61])),
            ],
        ),
    ]
}

fn clv_segments() -> Input {
    table(
        "clv.segments",
        vec![
            ("segmentation", s(&["segments"; 3])),
            ("segment_id", i32s(&[0, 1, 2])),
            ("segment", s(&LABELS)),
            ("customers", i64s(&[50, 30, 20])),
            ("clv_total", f(&[25000.0, 6000.0, 900.0])),
            ("clv_mean", f(&[500.0, 200.0, 45.0])),
        ],
    )
}

fn compare() -> Vec<Input> {
    vec![
        table(
            "compare.pairs",
            vec![
                ("segmentation_a", s(&["segments"])),
                ("segmentation_b", s(&["km"])),
                ("customers", i64s(&[100])),
                ("ari", f(&[0.42])),
                ("nmi", f(&[0.51])),
            ],
        ),
        table(
            "compare.crosstab",
            vec![
                ("segmentation_a", s(&["segments"; 4])),
                ("segment_a", s(&["Champions", "Champions", EVIL, CJK])),
                ("segmentation_b", s(&["km"; 4])),
                ("segment_b", s(&["k0", "k1", "k1", "k2"])),
                ("customers", i64s(&[40, 10, 30, 20])),
                ("share_of_a", f(&[0.8, 0.2, 1.0, 1.0])),
                ("share_of_b", f(&[1.0, 0.25, 0.75, 1.0])),
            ],
        ),
    ]
}

fn drift() -> Vec<Input> {
    vec![
        table(
            "drift.migration",
            vec![
                ("segmentation", s(&["segments"; 4])),
                (
                    "segment_previous",
                    s(&["Champions", "Champions", EVIL, CJK]),
                ),
                ("segment_current", s(&["Champions", EVIL, EVIL, CJK])),
                ("customers", i64s(&[45, 5, 30, 20])),
            ],
        ),
        table(
            "drift.sizes",
            vec![
                ("segment", s(&LABELS)),
                ("customers_previous", i64s(&[50, 30, 20])),
                ("customers", i64s(&[45, 35, 20])),
                ("change", f(&[-0.1, 0.167, 0.0])),
            ],
        ),
        table(
            "drift.features",
            vec![
                ("feature", s(&["recency_days", "monetary_sum"])),
                ("psi", f(&[0.03, 0.31])),
                ("ks", f(&[0.04, 0.22])),
            ],
        ),
    ]
}

fn targets_and_rules() -> Vec<Input> {
    vec![
        table(
            "targets.targets",
            vec![
                ("segmentation", s(&["segments"; 3])),
                ("segment_id", i32s(&[0, 1, 2])),
                ("segment", s(&LABELS)),
                ("rank", i32s(&[1, 2, 3])),
                ("score", f(&[0.9, 0.5, 0.1])),
                ("value", f(&[0.714, 0.214, 0.071])),
                ("value_score", f(&[1.0, 0.3, 0.0])),
                ("value_points", f(&[0.5, 0.15, 0.0])),
                ("customers", i64s(&[50, 30, 20])),
                ("customer_share", f(&[0.5, 0.3, 0.2])),
                (
                    "chosen",
                    Arc::new(BooleanArray::from(vec![true, true, false])) as ArrayRef,
                ),
                ("reason", s(&["rank 1", "rank 2", "below min_customers"])),
            ],
        ),
        table(
            "explain.rules",
            vec![
                ("segmentation", s(&["segments"; 3])),
                ("segment_id", i32s(&[0, 1, 2])),
                ("segment", s(&LABELS)),
                (
                    "rule",
                    s(&[
                        "recency_days <= 30",
                        "recency_days > 30 and x < 5",
                        "recency_days > 200",
                    ]),
                ),
                ("customers", i64s(&[48, 31, 21])),
                ("precision", f(&[0.95, 0.8, 0.9])),
                ("recall", f(&[0.9, 0.85, 0.95])),
                ("depth", i32s(&[1, 2, 1])),
            ],
        ),
    ]
}

fn every_input() -> Vec<Input> {
    let mut v = vec![
        profiles(),
        personas(),
        playbook(),
        assignments(99),
        rfm_model(),
        clv_segments(),
    ];
    v.extend(metrics());
    v.extend(map_and_loadings());
    v.extend(compare());
    v.extend(drift());
    v.extend(targets_and_rules());
    v
}

fn run_info() -> Value {
    let step = |id: &str,
                stage: &str,
                component: &str,
                needs: &[&str],
                status: Value,
                ms: f64,
                rows: Value,
                facts: Value| {
        json!({
            "id": id, "stage": stage, "component": component,
            "needs": needs.iter().map(|n| {
                let (s, p) = n.split_once('.').unwrap_or((n, "main"));
                json!({"name": n, "step": s, "port": p})
            }).collect::<Vec<_>>(),
            "status": status, "error": null, "duration_ms": ms, "rows": rows, "facts": facts,
        })
    };
    json!({
        "pipeline": "report_test",
        "description": "A hand-written run with <b>markup</b> in its description",
        "steps": [
            step("orders", "collect", "collect/synthetic", &[], json!("succeeded"), 812.0,
                 json!({"main": 1200}), json!({"source": "synthetic", "customers": 100})),
            step("quality", "clean", "clean/quality", &["orders"], json!("succeeded"), 40.0,
                 json!({"main": 1200, "quarantine": 0}),
                 json!({"rows_in": 1200, "rows_out": 1200, "rows_quarantined": 0,
                        "score": {"completeness": 0.99, "validity": 1.0, "uniqueness": null, "consistency": 0.97},
                        "columns": {"amount": {"data_type": "Float64", "rows": 1200, "missing": 12, "completeness": 0.99,
                                               "validity": 1.0, "uniqueness": 0.8, "consistency": 0.97}},
                        "rules": [{"rule": "amount >= 0", "checked": 1200, "passed": 1190, "consistency": 0.9917}]})),
            step("features", "clean", "clean/customer_features", &["quality"], json!("succeeded"), 120.5,
                 json!({"main": 100, "quarantine": 25}),
                 json!({"rows_in": 1200, "rows_used": 1175, "rows_quarantined": 25, "customers": 100,
                        "quarantine_reasons": {"amount is not a number": 20, EVIL: 5}})),
            step("segments", "segment", "segment/rfm", &["features"], json!("succeeded"), 15.0,
                 json!({"assignments": 100, "model": 3}), json!({"bins": 5})),
            step("profile", "position", "position/profile", &["features", "segments.assignments"],
                 json!("succeeded"), 9.0, json!({"profiles": 3}), json!({})),
            step("personas", "position", "position/persona", &["profile.profiles"], json!("succeeded"), 2.0,
                 json!({"personas": 3}), json!({})),
            step("map", "position", "position/map", &["profile.profiles"], json!("succeeded"), 3.0,
                 json!({"map": 3, "loadings": 2}),
                 json!({"method": "pca", "value": "revenue_share",
                        "segmentations": {"segments": {"axes": {"method": "pca", "x": "PC1: +monetary_sum −recency_days", "y": "PC2: +recency_days +monetary_sum"},
                                                       "explained_variance_ratio": [0.7, 0.3]}}})),
            step("broken", "evaluate", "evaluate/validity", &["features", "segments.assignments"], json!("failed"), 1.0,
                 json!({}), json!({})),
            step("test_step", "evaluate", "evaluate/report", &["profile.profiles", "segments", "map.map"], Value::Null, 0.0,
                 json!({}), Value::Null),
        ]
    })
}

fn run(config: Value, inputs: Vec<Input>, info: Option<Value>) -> fake_host::Outcome {
    fake_host::run_with(
        ENTRY,
        "report",
        config,
        2,
        inputs,
        fake_host::Services {
            nested: vec![],
            run_info: info,
        },
    )
}

fn html_of(o: &fake_host::Outcome) -> String {
    assert_eq!(o.status, abi::STATUS_OK, "{}", o.error_message());
    assert_eq!(o.rows("report"), 1);
    let b = &o.table("report")[0];
    let html = b
        .column_by_name("html")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_string();
    let bytes = b
        .column_by_name("bytes")
        .unwrap()
        .as_primitive::<segflow_sdk::arrow::datatypes::Int64Type>()
        .value(0);
    assert_eq!(bytes as usize, html.len());
    html
}

/// Section titles, as the page's `<h2>` headings.
const TITLES: [&str; 15] = [
    "Pipeline",
    "Data quality and quarantine",
    "Segment sizes",
    "Profile heatmap",
    "RFM grid",
    "Positioning map",
    "Target segments",
    "Customer lifetime value by segment",
    "Validity and stability",
    "Segment KPIs",
    "Comparison of segmentations",
    "Migration and drift",
    "Personas",
    "Playbook",
    "Segment rules",
];

/// The body of section `id` (from its opening tag to the next section).
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<section id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id}"));
    let end = html[start..].find("</section>").map(|e| start + e).unwrap();
    &html[start..end]
}

/// Every element closed in order (void elements excepted), attributes quoted, raw text
/// of `<style>` and `<script>` skipped: a strict check of the structure we write.
fn check_balanced(html: &str) {
    const VOID: [&str; 6] = ["meta", "br", "hr", "img", "link", "input"];
    let mut stack: Vec<String> = Vec::new();
    let b = html.as_bytes();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let at = i + off;
        let rest = &html[at..];
        if rest.starts_with("<!DOCTYPE") || rest.starts_with("<!--") {
            let close = if rest.starts_with("<!--") { "-->" } else { ">" };
            i = at + rest.find(close).expect("unterminated") + close.len();
            continue;
        }
        // find the end of the tag, honouring quoted attribute values
        let mut j = at + 1;
        let mut quote: Option<u8> = None;
        while j < b.len() {
            match (quote, b[j]) {
                (None, b'"') | (None, b'\'') => quote = Some(b[j]),
                (Some(q), c) if c == q => quote = None,
                (None, b'>') => break,
                (None, b'<') => panic!(
                    "`<` inside a tag at byte {at}: {}",
                    &html[at..(at + 80).min(html.len())]
                ),
                _ => {}
            }
            j += 1;
        }
        assert!(j < b.len(), "unterminated tag at byte {at}");
        let tag = &html[at + 1..j];
        let self_closing = tag.ends_with('/');
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim().to_ascii_lowercase();
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("`</{name}>` closes nothing at byte {at}"));
            assert_eq!(open, name, "`</{name}>` closes `<{open}>` at byte {at}");
        } else {
            let name: String = tag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == ':')
                .collect::<String>()
                .to_ascii_lowercase();
            assert!(
                !name.is_empty(),
                "bad tag at byte {at}: {}",
                &html[at..j + 1]
            );
            if name == "style" || name == "script" {
                let end = html[j..]
                    .find(&format!("</{name}>"))
                    .expect("raw text closed")
                    + j;
                i = end + name.len() + 3;
                continue;
            }
            if !self_closing && !VOID.contains(&name.as_str()) {
                stack.push(name);
            }
        }
        i = j + 1;
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

fn check_parses(html: &str) {
    let doc = scraper::Html::parse_document(html);
    assert!(
        doc.errors.is_empty(),
        "html5ever parse errors: {:?}",
        doc.errors
    );
    let scripts = scraper::Selector::parse("script").unwrap();
    assert_eq!(
        doc.select(&scripts).count(),
        1,
        "only the print helper is a script"
    );
}

fn assert_self_contained(html: &str) {
    for bad in [
        "http://", "https://", "//cdn", "src=", "@import", "<link", "<img", "<iframe",
    ] {
        assert!(!html.to_ascii_lowercase().contains(bad), "found `{bad}`");
    }
    // every url() points inside the document
    for (k, _) in html.match_indices("url(") {
        assert!(
            html[k..].starts_with("url(#"),
            "external url(): {}",
            &html[k..k + 40]
        );
    }
}

#[test]
fn a_full_run_has_every_section_with_a_table_under_every_chart() {
    let o = run(json!({}), every_input(), Some(run_info()));
    let html = html_of(&o);
    std::fs::write(std::env::temp_dir().join("segflow_report_test.html"), &html).unwrap();
    for t in TITLES {
        assert!(
            html.contains(&format!("<h2>{t}</h2>")),
            "missing section {t}"
        );
    }
    assert!(
        !html.contains("Not in this run"),
        "every section has its inputs"
    );
    // charts and their fallbacks
    for id in [
        "pipeline",
        "quality",
        "sizes",
        "profiles",
        "rfm",
        "map",
        "clv",
        "comparison",
        "migration",
    ] {
        let sec = section(&html, id);
        let charts = sec.matches("<svg class=\"chart\"").count();
        assert!(charts >= 1, "{id} has no chart");
        let tables = sec.matches("<details class=\"numbers\">").count();
        assert!(
            tables >= charts.min(1),
            "{id}: {charts} charts, {tables} tables"
        );
        // each chart is followed by its numbers before the next chart
        for (k, _) in sec.match_indices("<svg class=\"chart\"") {
            let next_chart = sec[k + 1..]
                .find("<svg class=\"chart\"")
                .map(|e| k + 1 + e)
                .unwrap_or(sec.len());
            assert!(
                sec[k..next_chart].contains("<table>"),
                "{id}: a chart without a table before the next chart"
            );
        }
    }
    // the contents the sections were given
    assert!(section(&html, "pipeline").contains("customer_features"));
    assert!(section(&html, "pipeline").contains("812 ms"));
    assert!(section(&html, "quality").contains("amount is not a number"));
    assert!(section(&html, "quality").contains("Quality profile of quality"));
    assert!(section(&html, "sizes").contains("99 customers, 3 segments"));
    assert!(
        section(&html, "profiles").contains(">400<"),
        "index printed in the cell"
    );
    assert!(section(&html, "rfm").contains("Recency score (R)"));
    assert!(section(&html, "map").contains("PC1: +monetary_sum −recency_days"));
    assert!(section(&html, "map").contains("PC1 explains 70.0%"));
    assert!(section(&html, "clv").contains("25,000"));
    assert!(section(&html, "validity").contains("calinski_harabasz"));
    assert!(section(&html, "validity").contains("jaccard_mean"));
    assert!(
        section(&html, "validity").contains("nmi_mean"),
        "placed by name"
    );
    assert!(section(&html, "validity").contains("agreement of each re-fit"));
    assert!(!section(&html, "validity").contains("average_order_value"));
    assert!(section(&html, "kpis").contains("average_order_value"));
    assert!(section(&html, "kpis").contains("uplift"), "placed by name");
    assert!(
        section(&html, "kpis").contains("44.0%"),
        "rates as percentages"
    );
    assert!(!section(&html, "kpis").contains("silhouette"));
    assert!(section(&html, "comparison").contains("ari between segmentations"));
    assert!(section(&html, "comparison").contains("Crosstab: segments × km"));
    assert!(section(&html, "migration")
        .contains("5 of the 100 customers in both runs (5.0%) changed segment"));
    assert!(section(&html, "migration").contains("large shift"));
    assert!(section(&html, "personas").contains("Recent, high spend"));
    assert!(section(&html, "playbook").contains("badge a-retain"));
    assert!(section(&html, "playbook").contains("call &lt;now&gt;"));
    assert!(section(&html, "targets").contains("badge yes"));
    assert!(section(&html, "rules").contains("recency_days &lt;= 30"));
    assert_eq!(o.fact("sections").as_array().unwrap().len(), 15);
    assert_eq!(o.fact("not_in_this_run"), &json!([]));
    check_balanced(&html);
    check_parses(&html);
    assert_self_contained(&html);
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<title>report_test</title>"));
    assert!(html.contains("@media print"));
}

#[test]
fn data_text_is_escaped_everywhere() {
    let o = run(json!({"title": EVIL}), every_input(), Some(run_info()));
    let html = html_of(&o);
    assert!(!html.contains("<script>alert"), "raw markup from the data");
    assert!(!html.contains("<b>markup</b>"));
    assert!(html.contains(EVIL_ESCAPED));
    assert!(html.contains(&format!("<title>{EVIL_ESCAPED}</title>")));
    assert!(html.contains(CJK), "CJK text kept as is");
    check_balanced(&html);
    check_parses(&html);
}

#[test]
fn a_run_with_only_assignments_lists_what_is_missing() {
    let o = run(json!({}), vec![assignments(10)], None);
    let html = html_of(&o);
    assert!(html.contains("<h2>Segment sizes</h2>"));
    assert!(
        html.contains("<h2>RFM grid</h2>"),
        "rfm scores give the grid"
    );
    assert!(html.contains("<h2>Not in this run</h2>"));
    let missing = section(&html, "not-in-this-run");
    for t in TITLES {
        if t != "Segment sizes" && t != "RFM grid" {
            assert!(
                missing.contains(&format!("<td>{t}</td>")),
                "{t} not listed as missing"
            );
            assert!(!html.contains(&format!("<h2>{t}</h2>")));
        }
    }
    assert!(html.contains("<title>segflow report</title>"));
    check_balanced(&html);
    check_parses(&html);
    assert_self_contained(&html);
    assert_eq!(o.fact("sections"), &json!(["sizes", "rfm"]));
}

#[test]
fn no_inputs_at_all_still_makes_a_page() {
    let o = run(json!({}), vec![], None);
    let html = html_of(&o);
    assert!(html.contains("<h2>Not in this run</h2>"));
    check_balanced(&html);
    check_parses(&html);
}

#[test]
fn sections_restrict_and_order_the_page_and_unknown_inputs_are_listed() {
    let mut inputs = every_input();
    inputs.push(table(
        "weird.main",
        vec![("a", f(&[1.0])), ("b", s(&["x"]))],
    ));
    let o = run(
        json!({"sections": ["playbook", "sizes", "pipeline"], "lang": "zh-Hant", "title": "月報"}),
        inputs,
        Some(run_info()),
    );
    let html = html_of(&o);
    let p = html.find("<h2>Playbook</h2>").unwrap();
    let z = html.find("<h2>Segment sizes</h2>").unwrap();
    let q = html.find("<h2>Pipeline</h2>").unwrap();
    assert!(p < z && z < q);
    assert!(!html.contains("<h2>Personas</h2>"));
    assert!(html.contains("<html lang=\"zh-Hant\">"));
    assert!(html.contains("<h1>月報</h1>"));
    let missing = section(&html, "not-in-this-run");
    assert!(missing.contains("<code>weird.main</code>"));
    assert!(
        !missing.contains("<td>Personas</td>"),
        "only listed sections count as missing"
    );
    assert_eq!(o.fact("inputs_not_recognised"), &json!(["weird.main"]));
}

#[test]
fn long_tables_stop_at_max_rows() {
    let n: i32 = 120;
    let labels: Vec<String> = (0..n).map(|i| format!("segment {i}")).collect();
    let ids: Vec<i32> = (0..n).collect();
    let lab: Vec<&str> = labels.iter().map(String::as_str).collect();
    let input = table(
        "km.assignments",
        vec![
            ("customer_id", i64s(&(0..n as i64).collect::<Vec<_>>())),
            ("segment_id", i32s(&ids)),
            ("segment", s(&lab)),
        ],
    );
    let o = run(json!({"max_rows": 40}), vec![input], None);
    let html = html_of(&o);
    assert!(html.contains("80 more rows not shown"));
    assert!(html.contains("The chart shows the first 40 of 120 segments"));
    assert!(!html.contains(">segment 41<"));
}

#[test]
fn config_errors_name_their_field() {
    let cases = [
        (json!({"max_rows": 0}), "max_rows"),
        (json!({"lang": "en us"}), "lang"),
        (json!({"sections": []}), "sections"),
        (json!({"sections": ["sizes", "sizes"]}), "sections.1"),
    ];
    for (config, field) in cases {
        let o = fake_host::plan(ENTRY, "report", config.clone(), &[]);
        assert_ne!(o.status, abi::STATUS_OK, "{config}");
        assert_eq!(
            o.error_field().as_deref(),
            Some(field),
            "{config}: {}",
            o.error_message()
        );
    }
    let o = fake_host::plan(ENTRY, "report", json!({"sections": ["nope"]}), &[]);
    assert_ne!(o.status, abi::STATUS_OK);
    assert!(o.error_message().contains("nope"), "{}", o.error_message());
    let o = fake_host::plan(ENTRY, "report", json!({"colour": 1}), &[]);
    assert_ne!(o.status, abi::STATUS_OK);
}

#[test]
fn plan_gives_the_report_port() {
    let (_, schema, _) = profiles();
    let o = fake_host::plan(ENTRY, "report", json!({}), &[("profile.profiles", schema)]);
    assert_eq!(o.status, abi::STATUS_OK, "{}", o.error_message());
    let s = o.schema("report");
    assert_eq!(
        s.field_with_name("html").unwrap().data_type(),
        &DataType::Utf8
    );
    assert_eq!(
        s.field_with_name("bytes").unwrap().data_type(),
        &DataType::Int64
    );
}

/// One million RFM assignments (and the other inputs) are counted, never listed: the
/// page stays small. The time is asserted in release builds (the issue's budget is 3 s);
/// `cargo test --release -p segflow-evaluate --test report -- --nocapture million`
/// prints it.
#[test]
fn a_million_customers_are_only_counted() {
    let n = 1_000_000;
    let mut inputs = every_input();
    inputs[3] = assignments(n);
    // in batches of 64k rows, as the engine streams them
    let (name, schema, batches) = inputs.remove(3);
    let b = &batches[0];
    let parts: Vec<RecordBatch> = (0..n)
        .step_by(65_536)
        .map(|o| b.slice(o, 65_536.min(n - o)))
        .collect();
    inputs.insert(3, (name, schema, parts));
    let t = std::time::Instant::now();
    let o = run(json!({}), inputs, Some(run_info()));
    let secs = t.elapsed().as_secs_f64();
    let html = html_of(&o);
    println!(
        "report for {n} customers: {secs:.3} s, {} KB",
        html.len() / 1024
    );
    assert!(html.contains("1,000,000 customers, 3 segments"));
    assert!(html.len() < 600_000, "{} bytes", html.len());
    if !cfg!(debug_assertions) {
        assert!(secs < 3.0, "{secs} s");
    }
}

#[test]
fn report_is_never_cached() {
    use segflow_sdk::{Component, Fingerprint};
    let r: segflow_evaluate::report::Report = serde_json::from_value(json!({})).unwrap();
    assert!(
        matches!(r.fingerprint().unwrap(), Fingerprint::Never(why) if why.contains("run it is part of"))
    );
}

#[test]
fn steps_taken_from_the_step_cache_are_marked() {
    let mut info = run_info();
    let steps = info["steps"].as_array_mut().unwrap();
    steps[0]["cached"] = json!(true);
    steps[3]["cached"] = json!(true);
    let html = html_of(&run(json!({}), every_input(), Some(info)));
    assert!(
        html.contains("(2 taken from the step cache)"),
        "summary line"
    );
    assert_eq!(html.matches("succeeded (cached)").count(), 2);
    let plain = html_of(&run(json!({}), every_input(), Some(run_info())));
    assert!(!plain.contains("step cache"));
    assert!(!plain.contains("(cached)"));
}
