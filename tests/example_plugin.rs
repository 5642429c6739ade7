//! Vendor plugins built out of tree. **Slow** (each builds a crate with cargo; the first
//! run compiles the SDK's dependencies into `target/examples-plugins/`, later runs reuse
//! it), but part of CI: this is the path a vendor takes.
//!
//! - `plugins/examples/lookalike`, a crate outside the workspace that depends on
//!   segflow-sdk by version only, builds offline in its own target directory, passes
//!   `segflow plugins test`, and runs in a pipeline (synthetic -> customer_features ->
//!   rules seed -> lookalike) through the real binary.
//! - `segflow new-plugin` writes a crate that builds offline, shows up in `segflow plugins
//!   list`, and whose own test (which drives the real host) passes.

mod common;
use common::*;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One target directory for every out-of-tree crate: their dependencies are the same
/// versions, so they are compiled once.
fn target_dir() -> PathBuf {
    repo_root().join("target/examples-plugins")
}

fn cargo() -> Command {
    let mut c = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    // The crates are built as a vendor would, not with this test's build settings.
    c.env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_MANIFEST_DIR");
    c
}

/// Run cargo `args` in `dir` (where the crate's `.cargo/config.toml` is read).
fn cargo_in(dir: &Path, args: &[&str]) {
    let out = cargo()
        .current_dir(dir)
        .args(args)
        .arg("--offline")
        .arg("--target-dir")
        .arg(target_dir())
        .env("SEGFLOW_BIN", bin())
        .output()
        .expect("running cargo");
    assert!(
        out.status.success(),
        "cargo {} in {} failed (offline builds need every dependency in the local cargo cache; `cargo build --workspace` fills it):\n{}\n{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn dylib(name: &str) -> PathBuf {
    target_dir().join("debug").join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

const PIPELINE: &str = r#"name: lookalike_example
steps:
  - { id: orders, stage: collect, plugin: synthetic, with: { customers: 2000, seed: 11 } }
  - id: features
    stage: clean
    plugin: customer_features
    needs: [orders]
    with: { key: customer_id, date: date, amount: amount, as_of: "2025-01-01" }
  - id: seed
    stage: segment
    plugin: rules
    needs: [features]
    with:
      rules:
        - { name: best, when: "frequency >= 10 and recency_days <= 60" }
  - id: lookalike
    stage: segment
    plugin: lookalike
    needs: [features, seed.assignments]
    with: { features: [recency_days, frequency, monetary_sum], seed: best, k: 5, top_share: 0.1 }
"#;

#[test]
fn lookalike_example_builds_out_of_tree_and_runs_in_a_pipeline() {
    let krate = repo_root().join("plugins/examples/lookalike");
    let manifest = krate.join("Cargo.toml");
    cargo_in(
        &krate,
        // --locked: the committed Cargo.lock pins the versions already in the cache.
        &[
            "build",
            "--locked",
            "--manifest-path",
            manifest.to_str().unwrap(),
        ],
    );
    let lib = dylib("segflow_lookalike");
    assert!(lib.is_file(), "{} was not built", lib.display());

    // The pre-ship check passes with a config naming the generated input's columns.
    let r = run(segflow().args(["plugins", "test"]).arg(&lib).args([
        "--config",
        r#"lookalike={"features": ["value", "amount"], "seed_column": "flag"}"#,
    ]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("PASS         lookalike (segment)"),
        "{}",
        r.stdout
    );

    let tmp = tempfile::tempdir().unwrap();
    let pipeline = tmp.path().join("lookalike.yaml");
    std::fs::write(&pipeline, PIPELINE).unwrap();
    let out = tmp.path().join("run");
    let r = run(segflow()
        .arg("run")
        .arg(&pipeline)
        .arg("--out")
        .arg(&out)
        .arg("--no-cache")
        .arg("--plugin-path")
        .arg(&lib));
    assert_eq!(r.code, 0, "{}", r.stderr);

    let seed = parquet_table(&out.join("steps/seed/assignments.parquet"));
    let looka = parquet_table(&out.join("steps/lookalike/assignments.parquet"));
    let feats = parquet_table(&out.join("steps/features/main.parquet"));
    assert_eq!(looka.num_rows(), feats.num_rows());
    let keys = |b: &arrow::array::RecordBatch| -> Vec<i64> {
        f64_column(b, "customer_id")
            .iter()
            .map(|v| v.unwrap() as i64)
            .collect()
    };
    let seed_members: HashSet<i64> = keys(&seed)
        .into_iter()
        .zip(str_column(&seed, "segment"))
        .filter(|(_, s)| s.as_deref() == Some("best"))
        .map(|(k, _)| k)
        .collect();
    assert!(
        seed_members.len() > 50,
        "seed too small: {}",
        seed_members.len()
    );
    let labels = str_column(&looka, "segment");
    let scores = f64_column(&looka, "score");
    let ids = keys(&looka);
    let mut by_label: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, l) in labels.iter().enumerate() {
        by_label.entry(l.as_deref().unwrap()).or_default().push(i);
    }
    // The seed is exactly the rules' `best` segment, with score 1.
    let seeds: HashSet<i64> = by_label["seed"].iter().map(|&i| ids[i]).collect();
    assert_eq!(seeds, seed_members);
    assert!(by_label["seed"].iter().all(|&i| scores[i] == Some(1.0)));
    // top_share 0.1 of the non-members are lookalikes, and they outscore the rest.
    let rest = looka.num_rows() - seeds.len();
    assert_eq!(
        by_label["lookalike"].len(),
        (rest as f64 * 0.1).round() as usize
    );
    assert_eq!(by_label["other"].len(), rest - by_label["lookalike"].len());
    let min_look = by_label["lookalike"]
        .iter()
        .map(|&i| scores[i].unwrap())
        .fold(f64::MAX, f64::min);
    let max_other = by_label["other"]
        .iter()
        .map(|&i| scores[i].unwrap())
        .fold(0.0, f64::max);
    assert!(
        min_look >= max_other && max_other > 0.0,
        "{min_look} < {max_other}"
    );
    // Lookalikes resemble the seed: their mean frequency is closer to the seed's than
    // the other customers' is.
    let freq: HashMap<i64, f64> = keys(&feats)
        .into_iter()
        .zip(f64_column(&feats, "frequency"))
        .map(|(k, v)| (k, v.unwrap_or(0.0)))
        .collect();
    let mean =
        |rows: &[usize]| rows.iter().map(|&i| freq[&ids[i]]).sum::<f64>() / rows.len() as f64;
    let (s, l, o) = (
        mean(&by_label["seed"]),
        mean(&by_label["lookalike"]),
        mean(&by_label["other"]),
    );
    assert!(
        (s - l).abs() < (s - o).abs(),
        "seed {s}, lookalike {l}, other {o}"
    );

    let model = parquet_table(&out.join("steps/lookalike/model.parquet"));
    assert_eq!(
        str_column(&model, "feature"),
        vec![
            Some("recency_days".into()),
            Some("frequency".into()),
            Some("monetary_sum".into())
        ]
    );
    let facts = read_json(&out.join("steps/lookalike/facts.json"));
    assert_eq!(facts["seed_members"], seeds.len());
    let manifest = read_json(&out.join("manifest.json"));
    let step = manifest["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "lookalike")
        .unwrap();
    assert!(step.to_string().contains("libsegflow_lookalike"), "{step}");
}

#[test]
fn new_plugin_scaffold_builds_offline_and_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(segflow()
        .args(["new-plugin", "acme-scaffold", "--stage", "segment", "--dir"])
        .arg(tmp.path())
        .arg("--sdk-path")
        .arg(repo_root().join("crates/segflow-sdk")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let krate = tmp.path().join("acme-scaffold");
    for f in [
        "Cargo.toml",
        "src/lib.rs",
        "tests/host.rs",
        "README.md",
        ".gitignore",
        ".cargo/config.toml",
    ] {
        assert!(krate.join(f).is_file(), "new-plugin did not write {f}");
    }
    let toml = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(
        toml.contains(&format!("segflow-sdk = \"{}\"", env!("CARGO_PKG_VERSION"))),
        "{toml}"
    );
    assert!(
        !toml.contains("path ="),
        "the crate must depend on the SDK by version: {toml}"
    );

    cargo_in(&krate, &["build"]);
    let r = run(segflow()
        .args(["plugins", "list", "--plugin-path"])
        .arg(target_dir().join("debug")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("acme-scaffold 0.1.0"), "{}", r.stdout);
    assert!(r.stdout.contains("acme_scaffold"), "{}", r.stdout);
    assert!(dylib("acme_scaffold").is_file());

    // Its own test loads it through the real host and runs a pipeline with it.
    cargo_in(&krate, &["test"]);

    // A second scaffold into the same place is refused.
    let r = run(segflow()
        .args(["new-plugin", "acme-scaffold", "--stage", "segment", "--dir"])
        .arg(tmp.path()));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("already exists and is not empty"),
        "{}",
        r.stderr
    );
    for (name, needle) in [
        ("Acme", "not a valid plugin name"),
        ("9lives", "not a valid plugin name"),
        ("a_b", "not a valid plugin name"),
    ] {
        let r = run(segflow()
            .args(["new-plugin", name, "--stage", "segment", "--dir"])
            .arg(tmp.path()));
        assert_eq!(r.code, 2, "{name}");
        assert!(r.stderr.contains(needle), "{name}: {}", r.stderr);
    }
    let r = run(segflow()
        .args(["new-plugin", "ok-name", "--stage", "segmentation", "--dir"])
        .arg(tmp.path()));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("possible values: collect, clean, segment"),
        "{}",
        r.stderr
    );
}
