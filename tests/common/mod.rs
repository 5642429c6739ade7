//! Helpers shared by the end-to-end tests: the real `segflow` binary and the plugin
//! libraries cargo built next to it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_segflow"))
}

/// The directory holding the binary, where cargo also puts the plugin cdylibs.
pub fn plugin_dir() -> PathBuf {
    bin().parent().unwrap().to_path_buf()
}

/// Fail early with a helpful message when the plugin libraries were not built.
pub fn require_plugins() {
    for lib in ["segflow_collect", "segflow_clean", "segflow_testkit"] {
        let p = plugin_dir().join(format!("lib{lib}.{}", std::env::consts::DLL_EXTENSION));
        assert!(
            p.exists(),
            "{} is missing: run `cargo build --workspace` before `cargo test` (the README's test command does both)",
            p.display()
        );
    }
}

pub fn segflow() -> Command {
    require_plugins();
    let mut c = Command::new(bin());
    c.env_remove("SEGFLOW_PLUGIN_PATH")
        .env_remove("SEGFLOW_LOG")
        .env("NO_COLOR", "1")
        .env("SEGFLOW_CACHE_DIR", fresh_cache_dir())
        .current_dir(repo_root());
    c
}

/// A step cache of its own for every command, so that a test runs what it means to run
/// (a result cached by another test would make it pass without running anything); the
/// cache tests pass a shared directory explicitly.
pub fn fresh_cache_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "caches/{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("running segflow");
    let r = Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(
        !r.stderr.contains("panicked at") && !r.stderr.contains("RUST_BACKTRACE"),
        "segflow panicked:\n{}",
        r.stderr
    );
    r
}

pub fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

/// Row count of a Parquet file, from its metadata.
pub fn parquet_rows(p: &Path) -> i64 {
    let f = std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let r = parquet::file::reader::SerializedFileReader::new(f).unwrap();
    use parquet::file::reader::FileReader;
    r.metadata().file_metadata().num_rows()
}

/// Read a whole Parquet file as Arrow batches.
pub fn parquet_batches(p: &Path) -> Vec<arrow::array::RecordBatch> {
    let f = std::fs::File::open(p).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// Compile a C file into a shared library with the system C compiler.
pub fn build_c_library(src: &str, out_dir: &Path, name: &str) -> PathBuf {
    let c = out_dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let lib = out_dir.join(format!("lib{name}.{}", std::env::consts::DLL_EXTENSION));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(&cc)
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&c)
        .status()
        .unwrap_or_else(|e| panic!("running the C compiler `{cc}`: {e}"));
    assert!(st.success(), "compiling {}", c.display());
    lib
}

/// A whole Parquet file as one Arrow batch.
pub fn parquet_table(p: &Path) -> arrow::array::RecordBatch {
    let batches = parquet_batches(p);
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| panic!("{} has no batches", p.display()));
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

/// A numeric column as `f64` (null and NaN as `None`).
pub fn f64_column(b: &arrow::array::RecordBatch, name: &str) -> Vec<Option<f64>> {
    use arrow::array::{Array, AsArray};
    let c = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Float64).unwrap();
    let c = c.as_primitive::<arrow::datatypes::Float64Type>();
    (0..c.len())
        .map(|i| (!c.is_null(i) && !c.value(i).is_nan()).then(|| c.value(i)))
        .collect()
}

/// A text column (null as `None`).
pub fn str_column(b: &arrow::array::RecordBatch, name: &str) -> Vec<Option<String>> {
    use arrow::array::{Array, AsArray};
    let c = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).unwrap();
    let c = c.as_string::<i32>();
    (0..c.len())
        .map(|i| (!c.is_null(i)).then(|| c.value(i).to_string()))
        .collect()
}

/// [`build_c_library`] with header search directories (`-I`), compiled as C99 with
/// warnings as errors, so a callback whose signature disagrees with the header fails
/// the build. The compiler's messages are shown when it fails.
pub fn build_c_library_with_includes(
    src: &str,
    out_dir: &Path,
    name: &str,
    include_dirs: &[&Path],
) -> PathBuf {
    let c = out_dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let lib = out_dir.join(format!("lib{name}.{}", std::env::consts::DLL_EXTENSION));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut cmd = Command::new(&cc);
    cmd.args([
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-shared",
        "-fPIC",
    ]);
    for dir in include_dirs {
        cmd.arg("-I").arg(dir);
    }
    let out = cmd
        .arg("-o")
        .arg(&lib)
        .arg(&c)
        .output()
        .unwrap_or_else(|e| panic!("running the C compiler `{cc}`: {e}"));
    assert!(
        out.status.success(),
        "compiling {}:\n{}",
        c.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}
