//! The rule-based segmenters through the real `segflow` binary: a malformed `when:`
//! condition is reported at its YAML `FILE:LINE:COLUMN` with the character inside the
//! condition, and `pipelines/rfm.yaml` (synthetic → customer_features → rfm, lifecycle,
//! rules) runs from the repository root with consistent outputs.

mod common;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, Int64Type};
use common::*;

fn require_segment_plugin() {
    let p = plugin_dir().join(format!(
        "libsegflow_segment.{}",
        std::env::consts::DLL_EXTENSION
    ));
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` before `cargo test`",
        p.display()
    );
}

/// 1-based line and column of `needle` in `text`.
fn line_col(text: &str, needle: &str) -> (usize, usize) {
    for (i, line) in text.lines().enumerate() {
        if let Some(c) = line.find(needle) {
            return (i + 1, line[..c].chars().count() + 1);
        }
    }
    panic!("{needle:?} is not in the pipeline");
}

const BAD_RULES: &str = "name: bad_rules
steps:
  - { id: orders, stage: collect, plugin: synthetic, with: { customers: 200, seed: 3 } }
  - id: features
    stage: clean
    plugin: customer_features
    needs: [orders]
    with: { as_of: \"2025-01-01\" }
  - id: tiers
    stage: segment
    plugin: rules
    needs: [features]
    with:
      rules:
        - name: Recent
          when: recency_days <= 30
        - name: Loyal
          when: frequency >= 5 and and recency_days <= 90
      default: Other
";

#[test]
fn a_malformed_condition_points_at_its_yaml_line() {
    require_segment_plugin();
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        // (pipeline text, the condition as written, what the message says)
        (
            BAD_RULES.to_string(),
            "frequency >= 5 and and recency_days <= 90",
            "at character 20: expected a column or a value after `and`, found `and`",
        ),
        (
            BAD_RULES.replace(
                "frequency >= 5 and and recency_days <= 90",
                "monetary_sum >= 'lots'",
            ),
            "monetary_sum >= 'lots'",
            "at character 17: column `monetary_sum` is numeric, but 'lots' is text",
        ),
        (
            BAD_RULES.replace("frequency >= 5 and and recency_days <= 90", "frequncy >= 5"),
            "frequncy >= 5",
            "at character 1: column `frequncy` is not in the input",
        ),
    ];
    for (i, (yaml, when, needle)) in cases.iter().enumerate() {
        let name = format!("bad_rules_{i}.yaml");
        std::fs::write(tmp.path().join(&name), yaml).unwrap();
        let r = run(segflow().current_dir(tmp.path()).arg("validate").arg(&name));
        assert_eq!(r.code, 2, "{}", r.stderr);
        let (line, col) = line_col(yaml, when);
        let loc = format!("{name}:{line}:{col}");
        assert!(
            r.stderr.contains(&loc),
            "the message lacks {loc}:\n{}",
            r.stderr
        );
        assert!(r.stderr.contains(needle), "{needle}\n{}", r.stderr);
        assert!(r.stderr.contains("rule `Loyal`"), "{}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
}

fn ints(b: &RecordBatch, col: &str) -> Vec<i64> {
    let c = b.column_by_name(col).unwrap();
    match c.data_type() {
        arrow::datatypes::DataType::Int32 => c
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .map(|&v| v as i64)
            .collect(),
        _ => c.as_primitive::<Int64Type>().values().to_vec(),
    }
}

fn texts(b: &RecordBatch, col: &str) -> Vec<String> {
    b.column_by_name(col)
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect()
}

fn floats(b: &RecordBatch, col: &str) -> Vec<f64> {
    let c = arrow::compute::cast(
        b.column_by_name(col).unwrap(),
        &arrow::datatypes::DataType::Float64,
    )
    .unwrap();
    c.as_primitive::<arrow::datatypes::Float64Type>()
        .values()
        .to_vec()
}

const STANDARD: [&str; 11] = [
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
];

#[test]
fn the_rfm_pipeline_runs_end_to_end() {
    require_segment_plugin();
    let r = run(segflow().args(["validate", "pipelines/rfm.yaml"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let r = run(segflow()
        .args(["run", "pipelines/rfm.yaml", "--out"])
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = read_json(&out.join("manifest.json"));
    let steps = m["steps"].as_array().unwrap();
    for id in ["rfm", "lifecycle", "tiers"] {
        let s = steps.iter().find(|s| s["id"] == id).unwrap();
        assert_eq!(s["status"], "succeeded", "{id}");
    }
    let features = parquet_table(&out.join("steps/features/main.parquet"));
    let n = features.num_rows();
    assert!(n > 15_000, "{n} customers");

    // rfm: one row per customer, keyed like the features, quintiles of equal size.
    let dir = out.join("steps/rfm");
    let a = parquet_table(&dir.join("assignments.parquet"));
    assert_eq!(a.num_rows(), n);
    assert_eq!(ints(&a, "customer_id"), ints(&features, "customer_id"));
    let (r, f, mm, fm) = (
        ints(&a, "r_score"),
        ints(&a, "f_score"),
        ints(&a, "m_score"),
        ints(&a, "fm_score"),
    );
    for scores in [&r, &f, &mm] {
        for s in 1..=5 {
            let c = scores.iter().filter(|&&x| x == s).count();
            assert!(c.abs_diff(n / 5) <= 1, "score {s}: {c} of {n}");
        }
    }
    // Scores follow the values: a better score never has a worse value.
    let check_monotone = |values: Vec<f64>, scores: &[i64], lower_is_better: bool| {
        for s in 1..5 {
            let at = |k: i64| {
                values
                    .iter()
                    .zip(scores)
                    .filter(move |(_, &x)| x == k)
                    .map(|(v, _)| *v)
            };
            if lower_is_better {
                let worst_of_better = at(s + 1).fold(f64::MIN, f64::max);
                let best_of_worse = at(s).fold(f64::MAX, f64::min);
                assert!(worst_of_better <= best_of_worse, "score {s}");
            } else {
                let best_of_worse = at(s).fold(f64::MIN, f64::max);
                let worst_of_better = at(s + 1).fold(f64::MAX, f64::min);
                assert!(best_of_worse <= worst_of_better, "score {s}");
            }
        }
    };
    check_monotone(floats(&features, "recency_days"), &r, true);
    check_monotone(floats(&features, "frequency"), &f, false);
    check_monotone(floats(&features, "monetary_sum"), &mm, false);
    let seg = texts(&a, "segment");
    let code = texts(&a, "rfm_score");
    for i in 0..n {
        assert!(STANDARD.contains(&seg[i].as_str()), "{}", seg[i]);
        assert_eq!(fm[i], (f[i] + mm[i] + 1) / 2);
        assert_eq!(code[i], format!("{}{}{}", r[i], f[i], mm[i]));
        match seg[i].as_str() {
            "Champions" => assert!(r[i] == 5 && fm[i] >= 4),
            "Lost" => assert!(r[i] == 1 && fm[i] <= 2),
            "Can't Lose Them" => assert!(r[i] <= 2 && fm[i] == 5),
            "New Customers" => assert!(r[i] == 5 && fm[i] == 1),
            _ => {}
        }
    }
    let model = parquet_table(&dir.join("model.parquet"));
    assert_eq!(texts(&model, "segment"), STANDARD);
    assert_eq!(ints(&model, "size").iter().sum::<i64>(), n as i64);
    let thresholds = parquet_table(&dir.join("thresholds.parquet"));
    assert_eq!(thresholds.num_rows(), 15);
    let facts = read_json(&dir.join("facts.json"));
    assert_eq!(
        facts["thresholds"]["recency"]["cuts"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(facts["customers"], n);

    // lifecycle with Chinese labels, and the rules with their default.
    let l = parquet_table(&out.join("steps/lifecycle/assignments.parquet"));
    assert_eq!(l.num_rows(), n);
    let labels = texts(&l, "segment");
    assert!(labels
        .iter()
        .all(|s| ["新客戶", "活躍", "沉睡", "流失"].contains(&s.as_str())));
    let t = parquet_table(&out.join("steps/tiers/model.parquet"));
    assert_eq!(
        texts(&t, "segment"),
        ["VIP", "Regular", "One-off", "Occasional"]
    );
    assert_eq!(ints(&t, "size").iter().sum::<i64>(), n as i64);
    assert!(!t.column_by_name("when").unwrap().is_null(0));
}

/// Every step snippet in the three segmenter pages validates and runs after the
/// quickstart's collect and features steps.
#[test]
fn the_doc_examples_validate_and_run() {
    require_segment_plugin();
    let tmp = tempfile::tempdir().unwrap();
    let mut n = 0;
    for page in ["segment-rfm.md", "segment-rules.md", "segment-lifecycle.md"] {
        let doc = std::fs::read_to_string(repo_root().join("docs").join(page)).unwrap();
        for (i, snippet) in doc
            .split("```yaml\n")
            .skip(1)
            .map(|s| s.split("```").next().unwrap())
            .filter(|s| s.starts_with("  - id:"))
            .enumerate()
        {
            let yaml = format!(
                "name: doc_example
steps:
  - {{ id: orders, stage: collect, plugin: synthetic, with: {{ customers: 500, seed: 5 }} }}
  - {{ id: features, stage: clean, plugin: customer_features, needs: [orders], with: {{ as_of: \"2025-01-01\" }} }}
{snippet}"
            );
            let file = tmp.path().join(format!("{page}_{i}.yaml"));
            std::fs::write(&file, &yaml).unwrap();
            let r = run(segflow().arg("validate").arg(&file));
            assert_eq!(r.code, 0, "{page} snippet {i}:\n{yaml}\n{}", r.stderr);
            let out = tmp.path().join(format!("out_{page}_{i}"));
            let r = run(segflow().arg("run").arg(&file).arg("--out").arg(&out));
            assert_eq!(r.code, 0, "{page} snippet {i}:\n{yaml}\n{}", r.stderr);
            n += 1;
        }
    }
    assert!(n >= 4, "{n} snippets");
}
