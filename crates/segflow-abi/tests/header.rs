//! `include/segflow_abi.h` is generated from `src/lib.rs` by cbindgen and committed, so C
//! and C++ plugin authors get it without building segflow. This test regenerates it and
//! fails when the committed copy is stale. `SEGFLOW_UPDATE_HEADER=1` rewrites it instead.

use std::path::{Path, PathBuf};

const REGENERATE: &str = "SEGFLOW_UPDATE_HEADER=1 cargo test -p segflow-abi --test header";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate(dir: &Path) -> String {
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.join("cbindgen.toml").display()));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen cannot generate the header: {e}"));
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("cbindgen writes UTF-8")
}

#[test]
fn committed_header_matches_the_abi_crate() {
    let dir = crate_dir();
    let generated = generate(&dir);
    let path = dir.join("include/segflow_abi.h");
    if std::env::var_os("SEGFLOW_UPDATE_HEADER").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()))
            + 1;
        panic!(
            "{} is out of date with src/lib.rs (first difference at line {line}). Regenerate it with\n\n    {REGENERATE}\n\nand commit the result.",
            path.display()
        );
    }
}

/// What C authors rely on is in the header: the version, the constants under the
/// `SEGFLOW_` prefix, the appended host fields, and the standard Arrow definitions under
/// their guards.
#[test]
fn header_declares_the_abi() {
    let h = generate(&crate_dir());
    for needle in [
        "#ifndef SEGFLOW_ABI_H",
        "#define SEGFLOW_ABI_VERSION 1",
        "#define SEGFLOW_ENTRY_SYMBOL \"segflow_plugin_v1\"",
        "#define SEGFLOW_STATUS_OK 0",
        "#define SEGFLOW_STATUS_CANCELLED 3",
        "#define SEGFLOW_STAGE_CLEAN 1",
        "#define SEGFLOW_STAGE_EVALUATE 4",
        "#define SEGFLOW_LOG_ERROR 1",
        "#define SEGFLOW_LOG_TRACE 5",
        "#ifndef ARROW_C_DATA_INTERFACE",
        "#ifndef ARROW_C_STREAM_INTERFACE",
        "typedef struct SegflowHost {",
        "typedef struct SegflowLibrary {",
        "typedef struct SegflowComponent {",
        "SegflowRunComponentFn run_component;",
        "SegflowFingerprintFn fingerprint;",
        "const char *run_info;",
        "uint32_t abi_version;",
        "size_t n_components;",
    ] {
        assert!(h.contains(needle), "the header lacks `{needle}`:\n{h}");
    }
    // `abi_version` is the first field of the library descriptor.
    let lib = &h[h.find("typedef struct SegflowLibrary {").unwrap()..];
    let first_field = lib
        .lines()
        .skip(1)
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("/*") && !l.starts_with('*'))
        .unwrap();
    assert_eq!(first_field, "uint32_t abi_version;");
    // Doc comments are kept.
    assert!(h.contains("Added after the first release of ABI v1"), "{h}");
}
