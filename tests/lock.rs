//! Pinning: `segflow lock` writes PIPELINE.lock; `run` and `validate` refuse a library
//! whose sha256 differs from the lock (until `--update-lock`), and plugin directories or
//! library files other users can write are refused at load.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const PIPELINE: &str = "name: pinned\nsteps:\n  - {id: src, stage: collect, plugin: source, with: {rows: 100, batch_rows: 30}}\n  - {id: pass, stage: clean, plugin: passthrough, needs: [src]}\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn testkit() -> PathBuf {
    plugin_dir().join(format!(
        "libsegflow_testkit.{}",
        std::env::consts::DLL_EXTENSION
    ))
}

/// A segflow whose own directory holds no plugins (a link or copy of the binary in
/// `tmp/bin`), and a private plugin directory `tmp/plugins` holding a copy of the
/// testkit library: the only `testkit` it sees is the copy.
struct Private {
    bin: PathBuf,
    plugins: PathBuf,
    lib: PathBuf,
}

#[cfg(unix)]
fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn private(tmp: &Path) -> Private {
    require_plugins();
    let bin_dir = tmp.join("bin");
    let plugins = tmp.join("plugins");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::fs::create_dir_all(&plugins).unwrap();
    let bin = bin_dir.join(bin().file_name().unwrap());
    if std::fs::hard_link(common::bin(), &bin).is_err() {
        std::fs::copy(common::bin(), &bin).unwrap();
    }
    let lib = plugins.join(testkit().file_name().unwrap());
    std::fs::copy(testkit(), &lib).unwrap();
    #[cfg(unix)]
    {
        chmod(&plugins, 0o755);
        chmod(&lib, 0o755);
    }
    Private { bin, plugins, lib }
}

impl Private {
    fn cmd(&self, args: &[&str], pipeline: &Path) -> Command {
        let mut c = Command::new(&self.bin);
        c.env_remove("SEGFLOW_PLUGIN_PATH")
            .env_remove("SEGFLOW_LOG")
            .env("NO_COLOR", "1")
            .current_dir(repo_root())
            .args(args)
            .arg(pipeline)
            .arg("--plugin-path")
            .arg(&self.plugins);
        c
    }
}

fn lock_of(pipeline: &Path) -> serde_json::Value {
    read_json(&pipeline.with_extension("lock"))
}

fn testkit_sha(lock: &serde_json::Value) -> String {
    let libs = lock["libraries"].as_array().unwrap();
    let e = libs
        .iter()
        .find(|l| l["name"] == "testkit")
        .unwrap_or_else(|| panic!("no testkit entry in {lock}"));
    e["sha256"].as_str().unwrap().to_string()
}

#[test]
fn lock_pins_the_libraries_and_a_matching_run_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "pinned.yaml", PIPELINE);
    let r = run(segflow().arg("lock").arg(&p));
    assert_eq!(r.code, 0, "{}", r.stderr);

    let lock = lock_of(&p);
    assert_eq!(lock["lock_version"], 1);
    assert_eq!(lock["pipeline"], "pinned");
    let libs = lock["libraries"].as_array().unwrap();
    assert_eq!(libs.len(), 1, "{lock}");
    let l = &libs[0];
    assert_eq!(l["name"], "testkit");
    assert_eq!(l["sha256"].as_str().unwrap().len(), 64);
    assert!(Path::new(l["path"].as_str().unwrap()).exists());
    assert!(l["version"].is_string() && l["sdk_version"].is_string());
    assert_eq!(
        l["components"],
        serde_json::json!(["passthrough", "source"])
    );
    // Written atomically: no temporary file left next to it.
    let stray: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    let r = run(segflow().arg("validate").arg(&p));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = tmp.path().join("run");
    let r = run(segflow().arg("run").arg(&p).arg("--out").arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(parquet_rows(&out.join("steps/pass/main.parquet")), 100);

    // A used library the lock does not list is refused, with the same fix.
    let mut emptied = lock.clone();
    emptied["libraries"] = serde_json::json!([]);
    std::fs::write(p.with_extension("lock"), emptied.to_string()).unwrap();
    let r = run(segflow().arg("run").arg(&p).arg("--out").arg(&out));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("`testkit`")
            && r.stderr.contains("is not listed in")
            && r.stderr.contains("segflow lock")
            && r.stderr.contains("--update-lock"),
        "{}",
        r.stderr
    );

    // A lock that is not JSON is reported, not ignored.
    std::fs::write(p.with_extension("lock"), "libraries: [").unwrap();
    let r = run(segflow().arg("validate").arg(&p));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a segflow lock file"), "{}", r.stderr);
}

#[test]
fn a_changed_library_is_refused_until_the_lock_is_updated() {
    let tmp = tempfile::tempdir().unwrap();
    let pv = private(tmp.path());
    let p = write(tmp.path(), "pinned.yaml", PIPELINE);
    let r = run(&mut pv.cmd(&["lock"], &p));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let old_sha = testkit_sha(&lock_of(&p));
    let r = run(pv
        .cmd(&["run"], &p)
        .arg("--out")
        .arg(tmp.path().join("run1")));
    assert_eq!(r.code, 0, "{}", r.stderr);

    // One more byte at the end: the library still loads, but it is not what was pinned.
    let mut bytes = std::fs::read(&pv.lib).unwrap();
    bytes.push(0);
    std::fs::write(&pv.lib, bytes).unwrap();

    let refused = run(pv
        .cmd(&["run"], &p)
        .arg("--out")
        .arg(tmp.path().join("run2")));
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    let e = &refused.stderr;
    assert!(e.contains("plugin library `testkit`"), "{e}");
    assert!(e.contains(&pv.lib.display().to_string()), "{e}");
    assert!(e.contains(&old_sha), "{e}");
    assert!(
        e.contains("segflow lock") && e.contains("--update-lock"),
        "{e}"
    );
    assert!(e.contains("its version is still"), "{e}");
    let r = run(&mut pv.cmd(&["validate"], &p));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(&old_sha), "{}", r.stderr);
    // The lock is left alone while refusing.
    assert_eq!(testkit_sha(&lock_of(&p)), old_sha);

    // --update-lock accepts the new library and rewrites the lock.
    let r = run(pv
        .cmd(&["run", "--update-lock"], &p)
        .arg("--out")
        .arg(tmp.path().join("run3")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let new_sha = testkit_sha(&lock_of(&p));
    assert_ne!(new_sha, old_sha);
    assert_eq!(new_sha.len(), 64);
    // Both hashes were in the refusal.
    assert!(e.contains(&new_sha), "{e}");
    assert!(r.stderr.contains(&new_sha), "{}", r.stderr);
    assert_eq!(
        lock_of(&p)["libraries"][0]["path"],
        pv.lib.display().to_string()
    );

    let r = run(pv
        .cmd(&["run"], &p)
        .arg("--out")
        .arg(tmp.path().join("run4")));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[cfg(unix)]
#[test]
fn a_world_writable_plugin_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pv = private(tmp.path());
    let p = write(tmp.path(), "pinned.yaml", PIPELINE);
    chmod(&pv.plugins, 0o777);
    let r = run(&mut pv.cmd(&["validate"], &p));
    assert_eq!(r.code, 2, "{}", r.stderr);
    let dir = pv.plugins.display().to_string();
    assert!(
        r.stderr.contains(&format!(
            "`{dir}` is writable by every user, so anyone could replace the code segflow runs"
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("chmod o-w {dir}")),
        "{}",
        r.stderr
    );
    // `plugins list` shows the refusal too.
    let r = run(Command::new(&pv.bin)
        .args(["plugins", "list", "--plugin-path"])
        .arg(&pv.plugins));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("refused") && r.stdout.contains("writable by every user"),
        "{}",
        r.stdout
    );

    chmod(&pv.plugins, 0o755);
    let r = run(&mut pv.cmd(&["validate"], &p));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[cfg(unix)]
#[test]
fn a_world_writable_library_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pv = private(tmp.path());
    chmod(&pv.lib, 0o757);
    let lib = pv.lib.display().to_string();

    // Found by scanning a directory.
    let p = write(tmp.path(), "pinned.yaml", PIPELINE);
    let r = run(&mut pv.cmd(&["validate"], &p));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("`{lib}` is writable by every user"))
            && r.stderr.contains(&format!("chmod o-w {lib}")),
        "{}",
        r.stderr
    );

    // Named in the pipeline's `plugins:`.
    let named = write(
        tmp.path(),
        "named.yaml",
        &format!(
            "name: named\nplugins: [plugins/{}]\n{}",
            pv.lib.file_name().unwrap().to_string_lossy(),
            &PIPELINE["name: pinned\n".len()..]
        ),
    );
    let r = run(Command::new(&pv.bin)
        .env_remove("SEGFLOW_PLUGIN_PATH")
        .env("NO_COLOR", "1")
        .arg("run")
        .arg(&named)
        .arg("--out")
        .arg(tmp.path().join("run")));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("is writable by every user"),
        "{}",
        r.stderr
    );

    chmod(&pv.lib, 0o755);
    let r = run(&mut pv.cmd(&["validate"], &p));
    assert_eq!(r.code, 0, "{}", r.stderr);
}
