//! Process isolation (`isolation: process`, `segflow run --isolate`): a crash in an
//! isolated step fails only that step with a message naming the cause (signal, stack
//! overflow, memory_limit, timeout), the other branches finish, no child process is left
//! behind, and an isolated step's outputs are byte-identical to an in-process run.

mod common;
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn write(dir: &Path, name: &str, yaml: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, yaml).unwrap();
    p
}

/// One isolated `crash` step per mode next to an in-process branch that must finish.
const CRASHES: &str = r#"
name: crashes
steps:
  - id: rows
    stage: collect
    plugin: source
    with: { rows: 50000, batch_rows: 4096 }
  - id: fine
    stage: clean
    plugin: passthrough
    needs: [rows]
  - id: segv
    stage: clean
    plugin: crash
    needs: [rows]
    isolation: process
    with: { mode: segfault }
  - id: abrt
    stage: clean
    plugin: crash
    needs: [rows]
    isolation: process
    with: { mode: abort }
  - id: deep
    stage: clean
    plugin: crash
    needs: [rows]
    isolation: process
    with: { mode: stack_overflow }
  - id: hungry
    stage: clean
    plugin: crash
    needs: [rows]
    isolation: process
    memory_limit: 256MiB
    with: { mode: allocate, max_mib: 4096 }
  - id: slow
    stage: clean
    plugin: crash
    needs: [rows]
    isolation: process
    timeout: 1s
    with: { mode: sleep, ms: 60000 }
  - id: calm
    stage: clean
    plugin: crash
    needs: [rows]
    isolation: process
    timeout: 5m
    memory_limit: 1GiB
    with: { mode: none }
"#;

#[test]
fn each_crash_fails_only_its_step_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = write(tmp.path(), "crashes.yaml", CRASHES);
    let out = tmp.path().join("out");
    let t = Instant::now();
    // RUST_BACKTRACE would make the child's allocation failure print a backtrace,
    // which `run` takes for a panic of segflow itself.
    let r = run(segflow()
        .env_remove("RUST_BACKTRACE")
        .arg("run")
        .arg(&yaml)
        .arg("--out")
        .arg(&out)
        .args(["--threads", "2"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "the timeout did not stop the sleeping step: {:?}",
        t.elapsed()
    );
    let manifest = read_json(&out.join("manifest.json"));
    let step = |id: &str| {
        manifest["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    };
    for (id, needle) in [
        ("segv", "segmentation fault (SIGSEGV)"),
        ("abrt", "abort (SIGABRT)"),
        ("deep", "stack overflow"),
        ("hungry", "exceeded its memory_limit of 256MiB"),
        ("slow", "exceeded its timeout of 1s"),
    ] {
        let s = step(id);
        assert_eq!(s["status"], "failed", "{id}: {s}");
        let err = s["error"].as_str().unwrap();
        assert!(err.contains(needle), "{id}: {err:?} lacks {needle:?}");
        assert!(err.contains("testkit/crash"), "{id}: {err}");
        assert!(
            r.stderr.contains(&format!("step `{id}` failed: ")),
            "{id}:\n{}",
            r.stderr
        );
        assert_eq!(s["isolation"], "process");
    }
    // The in-process branch and the isolated step that behaved are intact.
    for id in ["fine", "calm"] {
        assert_eq!(step(id)["status"], "succeeded", "{}", step(id));
        assert_eq!(
            parquet_rows(&out.join(format!("steps/{id}/main.parquet"))),
            50000
        );
    }
    assert_eq!(step("fine")["isolation"], "in_process");
    assert_eq!(step("hungry")["memory_limit"], "256MiB");
    assert_eq!(step("slow")["timeout"], "1s");
    let a = parquet_table(&out.join("steps/rows/main.parquet"));
    let b = parquet_table(&out.join("steps/calm/main.parquet"));
    assert_eq!(a, b);
}

/// Processes whose parent is `pid`, with their state letter.
fn children(pid: u32) -> Vec<(u32, char, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if rest.len() < 2 {
            continue;
        }
        let state = rest[0].chars().next().unwrap_or('?');
        if rest[1].parse::<u32>().ok() == Some(pid) {
            out.push((stat[..open].trim().parse().unwrap_or(0), state, comm));
        }
    }
    out
}

#[test]
fn crashed_children_are_reaped_while_the_run_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = write(
        tmp.path(),
        "reap.yaml",
        r#"
name: reap
steps:
  - id: rows
    stage: collect
    plugin: source
    with: { rows: 1000 }
  - id: segv
    stage: clean
    plugin: crash
    needs: [rows]
    isolation: process
    with: { mode: segfault }
  - id: slow
    stage: clean
    plugin: crash
    needs: [rows]
    isolation: process
    timeout: 700ms
    with: { mode: sleep }
  - id: wait
    stage: clean
    plugin: sleep
    needs: [rows]
    with: { ms: 3000 }
"#,
    );
    let mut child = segflow()
        .arg("run")
        .arg(&yaml)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .args(["--threads", "3"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // By now the segfault and the timeout have happened; `wait` is still sleeping.
    std::thread::sleep(Duration::from_millis(2000));
    let kids = children(pid);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        kids.is_empty(),
        "segflow still has child processes (pid, state, name) after the isolated steps ended: {kids:?}"
    );
    let manifest = read_json(&tmp.path().join("out/manifest.json"));
    let statuses: Vec<String> = manifest["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}={}", s["id"], s["status"]))
        .collect();
    assert_eq!(
        statuses,
        vec![
            "\"rows\"=\"succeeded\"",
            "\"segv\"=\"failed\"",
            "\"slow\"=\"failed\"",
            "\"wait\"=\"succeeded\""
        ]
    );
}

const FEATURES: &str = r#"
name: features
steps:
  - id: orders
    stage: collect
    plugin: synthetic
    with: { customers: 3000, seed: 7 }
  - id: features
    stage: clean
    plugin: customer_features
    needs: [orders]
    ISOLATION
    with: { key: customer_id, date: date, amount: amount, as_of: "2025-01-01" }
"#;

#[test]
fn isolated_outputs_are_byte_identical_to_in_process() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = write(tmp.path(), "plain.yaml", &FEATURES.replace("ISOLATION", ""));
    let isolated = write(
        tmp.path(),
        "isolated.yaml",
        &FEATURES.replace("ISOLATION", "isolation: process"),
    );
    let mut outs = Vec::new();
    for (name, yaml, flag) in [
        ("plain", &plain, None),
        ("step", &isolated, None),
        ("all", &plain, Some("--isolate")),
    ] {
        let out = tmp.path().join(name);
        let r = run(segflow()
            .arg("run")
            .arg(yaml)
            .arg("--out")
            .arg(&out)
            .args(flag));
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        outs.push(out);
    }
    for file in [
        "steps/orders/main.parquet",
        "steps/features/main.parquet",
        "steps/features/facts.json",
    ] {
        let want = std::fs::read(outs[0].join(file)).unwrap();
        for o in &outs[1..] {
            assert!(
                want == std::fs::read(o.join(file)).unwrap(),
                "{file} differs between in-process and {}",
                o.display()
            );
        }
    }
    let all = read_json(&outs[2].join("manifest.json"));
    assert!(all["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["isolation"] == "process"));
    // What crossing the process boundary cost is recorded per isolated step.
    let features = all["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "features")
        .unwrap();
    let transfer = &features["transfer"];
    let orders_rows = features["rows_in"].as_u64().unwrap();
    assert!(orders_rows > 0);
    assert!(
        transfer["bytes_in"].as_u64().unwrap() > orders_rows * 8,
        "{transfer}"
    );
    assert!(transfer["bytes_out"].as_u64().unwrap() > 0, "{transfer}");
    assert!(transfer["answer_ms"].as_f64().unwrap() >= 0.0, "{transfer}");
    let send = transfer["send_ms"].as_f64().unwrap();
    let busy = transfer["send_busy_ms"].as_f64().unwrap();
    assert!(busy > 0.0 && busy <= send, "{transfer}");
    assert_eq!(transfer["mapped"], cfg!(target_os = "linux"), "{transfer}");
    let plain = read_json(&outs[0].join("manifest.json"));
    assert!(plain["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["transfer"].is_null()));
}

#[test]
fn limits_need_isolation() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = write(
        tmp.path(),
        "limits.yaml",
        &FEATURES.replace("ISOLATION", "timeout: 30s"),
    );
    let r = run(segflow().arg("validate").arg(&yaml));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("sets `timeout`") && r.stderr.contains("--isolate"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("limits.yaml:12:14"), "{}", r.stderr);
    let r = run(segflow().arg("validate").arg(&yaml).arg("--isolate"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(segflow()
        .arg("run")
        .arg(&yaml)
        .arg("--isolate")
        .arg("--out")
        .arg(tmp.path().join("out")));
    assert_eq!(r.code, 0, "{}", r.stderr);
}
