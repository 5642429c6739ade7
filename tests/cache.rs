//! The step cache through the real binary: what hits and what misses for each kind of
//! change, damaged and half-written entries, two runs at once, `--resume`, and
//! `segflow cache`. Every assertion reads the manifests and files the runs wrote.

mod common;

use common::{read_json, run, segflow};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const PIPELINE: &str = "tests/pipelines/cache.yaml";
const STEPS: [&str; 7] = [
    "orders",
    "features",
    "rfm",
    "km",
    "km_profile",
    "rfm_profile",
    "validity",
];

/// `segflow run PIPELINE --out OUT` on the cache at `cache`; the manifest.
fn run_cached(cache: &Path, out: &Path, extra: &[&str]) -> Value {
    let mut cmd = segflow();
    cmd.env("SEGFLOW_CACHE_DIR", cache)
        .args(["run", PIPELINE, "--out"])
        .arg(out)
        .args(extra);
    let r = run(&mut cmd);
    let manifest = read_json(&out.join("manifest.json"));
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    manifest
}

fn step<'a>(manifest: &'a Value, id: &str) -> &'a Value {
    manifest["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

/// Step ids whose results came from the cache.
fn hits(manifest: &Value) -> Vec<String> {
    manifest["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["cache_hit"] == true)
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn sha_of(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Per step and port: the sha256 of the file in the run directory, computed here.
fn files(out: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for s in STEPS {
        let dir = out.join("steps").join(s);
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".parquet") {
                m.insert(format!("{s}/{name}"), sha_of(&e.path()));
            }
        }
    }
    m
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn unchanged_steps_are_cached_and_changing_k_reruns_only_its_branch() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let first = run_cached(&cache, &tmp.path().join("r1"), &[]);
    assert_eq!(first["status"], "succeeded");
    assert!(hits(&first).is_empty(), "a cold cache has nothing");
    for s in STEPS {
        assert_eq!(step(&first, s)["cache"], "stored", "{s}");
    }

    let second = run_cached(&cache, &tmp.path().join("r2"), &[]);
    assert_eq!(second["status"], "succeeded");
    assert_eq!(
        hits(&second),
        ids(&STEPS),
        "an unchanged pipeline is all cached"
    );
    assert_eq!(second["steps_cached"], 7);
    // Same files as the run that computed them, and each recorded with its checksum.
    let (f1, f2) = (files(&tmp.path().join("r1")), files(&tmp.path().join("r2")));
    assert_eq!(f1, f2);
    for s in STEPS {
        for (port, o) in step(&second, s)["outputs"].as_object().unwrap() {
            assert_eq!(
                o["sha256"],
                f2[&format!("{s}/{port}.parquet")],
                "{s}.{port}"
            );
            assert_eq!(
                o["rows"],
                step(&first, s)["rows"][port],
                "{s}.{port}: rows as the first run counted them"
            );
        }
        // The facts come back too.
        let facts = |run: &str| {
            read_json(
                &tmp.path()
                    .join(run)
                    .join("steps")
                    .join(s)
                    .join("facts.json"),
            )
        };
        assert_eq!(facts("r1"), facts("r2"), "{s}");
    }

    // A new k: the k-means step and the profile of its segments run; nothing else does.
    let third = run_cached(&cache, &tmp.path().join("r3"), &["--set", "km.k=5"]);
    assert_eq!(third["status"], "succeeded");
    assert_eq!(
        hits(&third),
        ids(&["orders", "features", "rfm", "rfm_profile", "validity"])
    );
    assert_eq!(step(&third, "km")["rows"]["model"], 5);
    assert_eq!(step(&third, "km_profile")["rows"]["profiles"], 5);

    // Back to k = 4: everything is in the cache again.
    let fourth = run_cached(&cache, &tmp.path().join("r4"), &[]);
    assert_eq!(hits(&fourth), ids(&STEPS));
    assert_eq!(files(&tmp.path().join("r4")), f1);
}

#[test]
fn no_cache_runs_everything_and_refresh_reruns_one_step() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    run_cached(&cache, &tmp.path().join("r1"), &[]);
    let off = run_cached(&cache, &tmp.path().join("r2"), &["--no-cache"]);
    assert!(hits(&off).is_empty());
    for s in STEPS {
        assert_eq!(step(&off, s)["cache"], "off", "{s}");
    }
    assert_eq!(files(&tmp.path().join("r1")), files(&tmp.path().join("r2")));

    let refreshed = run_cached(&cache, &tmp.path().join("r3"), &["--refresh", "rfm"]);
    assert_eq!(step(&refreshed, "rfm")["cache_hit"], false);
    assert_eq!(step(&refreshed, "rfm")["cache"], "stored");
    for s in ["orders", "features", "km", "km_profile"] {
        assert_eq!(step(&refreshed, s)["cache_hit"], true, "{s}");
    }

    let mut cmd = segflow();
    cmd.env("SEGFLOW_CACHE_DIR", &cache)
        .args(["run", PIPELINE, "--refresh", "kmeans"])
        .arg("--out")
        .arg(tmp.path().join("r4"));
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--refresh names step `kmeans`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("km_profile"),
        "lists the steps: {}",
        r.stderr
    );
}

/// A copy of the binary and every plugin library in a directory of their own, so a
/// test can change a library's bytes as a rebuild would.
fn private_install(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let bin = common::bin();
    let src = bin.parent().unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "segflow" || (name.starts_with("libsegflow_") && name.ends_with(".so")) {
            std::fs::copy(e.path(), dir.join(&name)).unwrap();
        }
    }
    dir.join("segflow")
}

#[test]
fn a_rebuilt_library_reruns_its_components_and_what_reads_them() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let bin = private_install(&tmp.path().join("bin"));
    let go = |out: &str| {
        let r = run(Command::new(&bin)
            .env_remove("SEGFLOW_PLUGIN_PATH")
            .env("SEGFLOW_CACHE_DIR", &cache)
            .current_dir(common::repo_root())
            .args(["run", PIPELINE, "--out"])
            .arg(tmp.path().join(out)));
        assert_eq!(r.code, 0, "{}", r.stderr);
        read_json(&tmp.path().join(out).join("manifest.json"))
    };
    let first = go("r1");
    // The bytes change (as with a rebuild); the code does not.
    let lib = tmp.path().join("bin").join("libsegflow_segment.so");
    let mut bytes = std::fs::read(&lib).unwrap();
    bytes.extend_from_slice(b"rebuilt");
    std::fs::write(&lib, bytes).unwrap();
    let second = go("r2");
    assert_ne!(
        step(&first, "km")["library"]["sha256"],
        step(&second, "km")["library"]["sha256"]
    );
    // The segmenters miss. Their outputs are the same bytes, so a step reading one of
    // them through a materialised port (rfm.assignments has two readers) is looked up
    // and hits; a streamed port (km.assignments) is not looked up, so km_profile runs.
    // validity (evaluate) keys on every loaded library and runs.
    assert_eq!(hits(&second), ids(&["orders", "features", "rfm_profile"]));
    assert_eq!(files(&tmp.path().join("r1")), files(&tmp.path().join("r2")));
}

/// The cache entry directory the step `id` stored.
fn entry_of(cache: &Path, id: &str) -> PathBuf {
    let mut found = Vec::new();
    for p in std::fs::read_dir(cache.join("entries")).unwrap().flatten() {
        for k in std::fs::read_dir(p.path()).unwrap().flatten() {
            let meta = read_json(&k.path().join("meta.json"));
            if meta["step"] == id {
                found.push(k.path());
            }
        }
    }
    assert_eq!(found.len(), 1, "{id}: {found:?}");
    found.remove(0)
}

fn make_writable(p: &Path) {
    let mut perm = std::fs::metadata(p).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(p, perm).unwrap();
}

#[test]
fn damaged_entries_are_detected_rebuilt_and_never_used() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let first = run_cached(&cache, &tmp.path().join("r1"), &[]);
    let expected: BTreeMap<String, String> = STEPS
        .iter()
        .flat_map(|s| {
            step(&first, s)["outputs"]
                .as_object()
                .unwrap()
                .iter()
                .map(move |(p, o)| {
                    (
                        format!("{s}/{p}.parquet"),
                        o["sha256"].as_str().unwrap().to_string(),
                    )
                })
        })
        .collect();

    // A truncated port file, garbage bytes in another, a damaged facts file.
    let km = entry_of(&cache, "km").join("assignments.parquet");
    make_writable(&km);
    let len = std::fs::metadata(&km).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&km)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let rfm = entry_of(&cache, "rfm").join("model.parquet");
    make_writable(&rfm);
    let mut bytes = std::fs::read(&rfm).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 8].copy_from_slice(b"GARBAGE!");
    std::fs::write(&rfm, &bytes).unwrap();
    let facts = entry_of(&cache, "validity").join("facts.json");
    make_writable(&facts);
    std::fs::write(&facts, b"{\"silhouette\": 0.99}\n").unwrap();

    let mut verify = segflow();
    verify
        .env("SEGFLOW_CACHE_DIR", &cache)
        .args(["cache", "stats", "--verify"]);
    let r = run(&mut verify);
    assert_eq!(r.code, 1, "stats --verify reports damage: {}", r.stdout);
    assert!(
        r.stdout.contains("does not match its checksum"),
        "{}",
        r.stdout
    );

    let second = run_cached(&cache, &tmp.path().join("r2"), &[]);
    assert_eq!(second["status"], "succeeded");
    for s in ["km", "rfm", "validity"] {
        assert_eq!(
            step(&second, s)["cache_hit"],
            false,
            "{s} must not come from a damaged entry"
        );
        let note = step(&second, s)["cache_note"].as_str().unwrap_or("");
        assert!(note.contains("damaged"), "{s}: {note}");
    }
    // Rebuilt from scratch: the same bytes as the first run computed.
    assert_eq!(files(&tmp.path().join("r2")), expected);
    let r = run(&mut verify);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let third = run_cached(&cache, &tmp.path().join("r3"), &[]);
    assert_eq!(hits(&third), ids(&STEPS));
}

#[test]
fn killed_runs_leave_no_entry_that_looks_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let reference = run_cached(
        &tmp.path().join("other-cache"),
        &tmp.path().join("ref"),
        &["--set", "orders.customers=20000"],
    );
    assert_eq!(reference["status"], "succeeded");
    // Kill runs at different moments: while steps run and while entries are written.
    for (i, ms) in [40u64, 120, 250, 400, 600, 900].iter().enumerate() {
        let mut child = segflow()
            .env("SEGFLOW_CACHE_DIR", &cache)
            .args(["run", PIPELINE, "--set", "orders.customers=20000", "--out"])
            .arg(tmp.path().join(format!("killed{i}")))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(*ms));
        let _ = child.kill(); // SIGKILL: no cleanup runs
        let _ = child.wait();
        let mut verify = segflow();
        verify
            .env("SEGFLOW_CACHE_DIR", &cache)
            .args(["cache", "stats", "--verify"]);
        let r = run(&mut verify);
        assert_eq!(r.code, 0, "after a kill at {ms} ms: {}", r.stdout);
    }
    let after = run_cached(
        &cache,
        &tmp.path().join("after"),
        &["--set", "orders.customers=20000"],
    );
    assert_eq!(after["status"], "succeeded");
    assert_eq!(
        files(&tmp.path().join("after")),
        files(&tmp.path().join("ref"))
    );
}

#[test]
fn two_runs_at_once_share_the_cache_safely() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let start = |name: &str| {
        segflow()
            .env("SEGFLOW_CACHE_DIR", &cache)
            .args(["run", PIPELINE, "--out"])
            .arg(tmp.path().join(name))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start("a"), start("b"));
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (fa, fb) = (files(&tmp.path().join("a")), files(&tmp.path().join("b")));
    assert_eq!(fa, fb);
    let mut verify = segflow();
    verify
        .env("SEGFLOW_CACHE_DIR", &cache)
        .args(["cache", "stats", "--verify", "--json"]);
    let r = run(&mut verify);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let stats: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        stats["entries"], 7,
        "one entry per step, whoever stored it first"
    );
    assert_eq!(stats["unfinished"], 0);
    let third = run_cached(&cache, &tmp.path().join("c"), &[]);
    assert_eq!(hits(&third), ids(&STEPS));
    assert_eq!(files(&tmp.path().join("c")), fa);
}

#[test]
fn resume_reuses_the_finished_steps_of_a_failed_run() {
    let tmp = tempfile::tempdir().unwrap();
    // No cache at all: resuming works from the failed run's own files.
    let failed_dir = tmp.path().join("failed");
    let mut cmd = segflow();
    cmd.args(["run", PIPELINE, "--no-cache", "--set", "km.k=5000", "--out"])
        .arg(&failed_dir);
    let r = run(&mut cmd);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let failed = read_json(&failed_dir.join("manifest.json"));
    assert_eq!(step(&failed, "km")["status"], "failed");
    assert_eq!(step(&failed, "km_profile")["status"], "skipped");

    let resumed_dir = tmp.path().join("resumed");
    let mut cmd = segflow();
    cmd.args(["run", PIPELINE, "--no-cache", "--set", "km.k=4", "--resume"])
        .arg(&failed_dir)
        .arg("--out")
        .arg(&resumed_dir);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let resumed = read_json(&resumed_dir.join("manifest.json"));
    assert_eq!(resumed["resumed_from"], failed_dir.display().to_string());
    for s in ["orders", "features", "rfm", "rfm_profile", "validity"] {
        assert_eq!(step(&resumed, s)["cache"], "reused", "{s}");
        assert_eq!(
            step(&resumed, s)["outputs"],
            step(&failed, s)["outputs"],
            "{s}"
        );
    }
    for s in ["km", "km_profile"] {
        assert_eq!(step(&resumed, s)["cache"], "off", "{s} ran");
        assert_eq!(step(&resumed, s)["status"], "succeeded");
    }
    // The same result as a run from scratch.
    let fresh_dir = tmp.path().join("fresh");
    let mut cmd = segflow();
    cmd.args(["run", PIPELINE, "--no-cache", "--out"])
        .arg(&fresh_dir);
    assert_eq!(run(&mut cmd).code, 0);
    assert_eq!(files(&resumed_dir), files(&fresh_dir));

    // Without PIPELINE and --set: the failed run's own (k = 5000) fails again in km only.
    let again_dir = tmp.path().join("again");
    let mut cmd = segflow();
    cmd.args(["run", "--no-cache", "--resume"])
        .arg(&failed_dir)
        .arg("--out")
        .arg(&again_dir);
    let r = run(&mut cmd);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let again = read_json(&again_dir.join("manifest.json"));
    assert_eq!(again["overrides"], serde_json::json!(["km.k=5000"]));
    assert_eq!(step(&again, "rfm")["cache"], "reused");
    assert_eq!(step(&again, "km")["status"], "failed");

    // Resuming into the run itself is refused before anything is deleted.
    let mut cmd = segflow();
    cmd.args(["run", "--resume"])
        .arg(&failed_dir)
        .arg("--out")
        .arg(&failed_dir);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(failed_dir.join("steps/rfm/assignments.parquet").exists());
    let mut cmd = segflow();
    cmd.args(["run", "--resume"])
        .arg(tmp.path().join("nowhere"));
    let r = run(&mut cmd);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("manifest.json"), "{}", r.stderr);
}

#[test]
fn cache_stats_gc_and_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let cmd = |args: &[&str]| {
        let mut c = segflow();
        c.env("SEGFLOW_CACHE_DIR", &cache).args(args);
        run(&mut c)
    };
    let r = cmd(&["cache", "stats"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("no step cache"), "{}", r.stdout);

    run_cached(&cache, &tmp.path().join("r1"), &[]);
    let stats: Value = serde_json::from_str(&cmd(&["cache", "stats", "--json"]).stdout).unwrap();
    assert_eq!(stats["entries"], 7);
    let bytes = stats["bytes"].as_u64().unwrap();
    assert!(bytes > 0);
    assert_eq!(stats["by_step"]["cache_test/km"][0], 1);

    // Room for everything: nothing goes.
    let r = cmd(&["cache", "gc", "--max-size", "1GB"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("removed 0 entries"), "{}", r.stdout);
    // Room for less than half: the least recently used go first.
    let half = format!("{}", bytes / 2);
    let r = cmd(&["cache", "gc", "--max-size", &half]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let stats: Value = serde_json::from_str(&cmd(&["cache", "stats", "--json"]).stdout).unwrap();
    assert!(stats["bytes"].as_u64().unwrap() <= bytes / 2);
    assert!(stats["entries"].as_u64().unwrap() < 7);

    let r = cmd(&["cache", "gc", "--max-size", "5 parsecs"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown size unit"), "{}", r.stderr);

    let r = cmd(&["cache", "clear"]);
    assert_eq!(r.code, 0);
    let stats: Value = serde_json::from_str(&cmd(&["cache", "stats", "--json"]).stdout).unwrap();
    assert_eq!(stats["entries"], 0);
    // The run directory keeps its files: they are its own links, not borrowed ones.
    assert!(tmp.path().join("r1/steps/km/assignments.parquet").exists());
    let again = run_cached(&cache, &tmp.path().join("r2"), &[]);
    assert!(hits(&again).is_empty());
}

/// A CSV pipeline on a copy of a fixture; returns (pipeline path, data path).
fn csv_pipeline(dir: &Path, fingerprint: &str) -> (PathBuf, PathBuf) {
    let data = dir.join("orders.csv");
    std::fs::copy(
        common::repo_root().join("tests/fixtures/features_transactions.csv"),
        &data,
    )
    .unwrap();
    let yaml = format!(
        r#"name: cache_csv
steps:
  - id: orders
    stage: collect
    plugin: csv
    with: {{ path: "{}", fingerprint: {fingerprint} }}
  - id: features
    stage: clean
    plugin: customer_features
    needs: [orders]
    with: {{ key: customer_id, date: date, amount: amount, as_of: "2025-01-01" }}
  - id: rfm
    stage: segment
    plugin: rfm
    needs: [features]
"#,
        data.display()
    );
    let p = dir.join(format!("csv-{fingerprint}.yaml"));
    std::fs::write(&p, yaml).unwrap();
    (p, data)
}

fn run_pipeline(pipeline: &Path, cache: &Path, out: &Path) -> Value {
    let mut cmd = segflow();
    cmd.env("SEGFLOW_CACHE_DIR", cache)
        .arg("run")
        .arg(pipeline)
        .arg("--out")
        .arg(out);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    read_json(&out.join("manifest.json"))
}

fn set_mtime(p: &Path, t: std::time::SystemTime) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn changed_input_data_reruns_the_collector_and_everything_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (pipeline, data) = csv_pipeline(tmp.path(), "metadata");
    let t0 = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_750_000_000);
    set_mtime(&data, t0);
    let first = run_pipeline(&pipeline, &cache, &tmp.path().join("r1"));
    let n = step(&first, "features")["rows"]["main"].as_u64().unwrap();
    assert!(n > 0);
    let same = run_pipeline(&pipeline, &cache, &tmp.path().join("r2"));
    assert_eq!(hits(&same), ids(&["orders", "features", "rfm"]));

    // An order of a new customer: the file's size and time change.
    let mut text = std::fs::read_to_string(&data).unwrap();
    text.push_str("9001,2024-12-01,99.50\n");
    std::fs::write(&data, text).unwrap();
    let changed = run_pipeline(&pipeline, &cache, &tmp.path().join("r3"));
    assert!(hits(&changed).is_empty(), "{:?}", hits(&changed));
    assert_eq!(step(&changed, "features")["rows"]["main"], n + 1);

    // Only the time changes: by default (size and time) the collector runs again.
    set_mtime(&data, t0 + std::time::Duration::from_secs(60));
    let touched = run_pipeline(&pipeline, &cache, &tmp.path().join("r4"));
    assert_eq!(step(&touched, "orders")["cache_hit"], false);
}

#[test]
fn content_fingerprints_ignore_a_touch_but_not_an_edit() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (pipeline, data) = csv_pipeline(tmp.path(), "content");
    run_pipeline(&pipeline, &cache, &tmp.path().join("r1"));
    set_mtime(
        &data,
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    );
    let touched = run_pipeline(&pipeline, &cache, &tmp.path().join("r2"));
    assert_eq!(hits(&touched), ids(&["orders", "features", "rfm"]));
    // Same size, one amount changed.
    let text = std::fs::read_to_string(&data).unwrap();
    let edited = text.replacen("34.53", "34.54", 1);
    assert_eq!(text.len(), edited.len());
    std::fs::write(&data, edited).unwrap();
    let after = run_pipeline(&pipeline, &cache, &tmp.path().join("r3"));
    assert!(hits(&after).is_empty(), "{:?}", hits(&after));
}

#[test]
fn a_database_collector_without_a_fingerprint_query_is_never_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let pipeline = common::repo_root().join("pipelines/sqlite_example.yaml");
    run_pipeline(&pipeline, &cache, &tmp.path().join("r1"));
    let second = run_pipeline(&pipeline, &cache, &tmp.path().join("r2"));
    let orders = step(&second, "orders");
    assert_eq!(orders["cache_hit"], false);
    assert!(
        orders["cache_note"]
            .as_str()
            .unwrap()
            .contains("fingerprint_query"),
        "{orders}"
    );
    // Its output is the same, but it streamed into `features`, which is not looked up.
    assert_eq!(step(&second, "features")["cache_hit"], false);

    // With one, both are cached.
    let mut cmd = segflow();
    let q = "orders.fingerprint_query=SELECT count(*), max(date) FROM transactions";
    cmd.env("SEGFLOW_CACHE_DIR", &cache)
        .args(["run", "pipelines/sqlite_example.yaml", "--set", q, "--out"])
        .arg(tmp.path().join("r3"));
    assert_eq!(run(&mut cmd).code, 0);
    let mut cmd = segflow();
    cmd.env("SEGFLOW_CACHE_DIR", &cache)
        .args(["run", "pipelines/sqlite_example.yaml", "--set", q, "--out"])
        .arg(tmp.path().join("r4"));
    assert_eq!(run(&mut cmd).code, 0);
    let fourth = read_json(&tmp.path().join("r4/manifest.json"));
    assert_eq!(hits(&fourth), ids(&["orders", "features"]));
}

/// The sqlite example with its collector kept off disk (`persist: false`), with or
/// without a fingerprint query.
fn sqlite_off_disk(dir: &Path, fingerprint_query: Option<&str>) -> PathBuf {
    let db = common::repo_root().join("pipelines/data/cdnow.sqlite");
    let fq = fingerprint_query
        .map(|q| format!(", fingerprint_query: \"{q}\""))
        .unwrap_or_default();
    let yaml = format!(
        r#"name: cache_sqlite_off_disk
steps:
  - id: orders
    stage: collect
    plugin: sqlite
    persist: false
    with: {{ path: "{}", query: "SELECT customer_id, date, amount FROM transactions"{fq} }}
  - id: features
    stage: clean
    plugin: customer_features
    needs: [orders]
    with: {{ key: customer_id, date: date, amount: amount, as_of: "1998-07-01" }}
"#,
        db.display()
    );
    let p = dir.join(format!("sqlite-{}.yaml", fingerprint_query.is_some()));
    std::fs::write(&p, yaml).unwrap();
    p
}

#[test]
fn a_step_reading_an_unfingerprinted_off_disk_source_is_not_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // Without a fingerprint query nothing says whether the database changed, so the
    // step reading it must run every time even though its input is never written.
    let blind = sqlite_off_disk(tmp.path(), None);
    run_pipeline(&blind, &cache, &tmp.path().join("b1"));
    let again = run_pipeline(&blind, &cache, &tmp.path().join("b2"));
    assert!(hits(&again).is_empty(), "{:?}", hits(&again));
    // With one, `features` is keyed by the collector's key and cached; the collector
    // itself (off disk) runs.
    let pinned = sqlite_off_disk(
        tmp.path(),
        Some("SELECT count(*), max(date) FROM transactions"),
    );
    run_pipeline(&pinned, &cache, &tmp.path().join("p1"));
    let again = run_pipeline(&pinned, &cache, &tmp.path().join("p2"));
    assert_eq!(hits(&again), ids(&["features"]));
    assert!(step(&again, "orders")["cache_note"]
        .as_str()
        .unwrap()
        .contains("persist: false"));
}
