//! `segflow new-plugin NAME --stage STAGE`: write a ready vendor plugin crate.
//!
//! The crate depends on `segflow-sdk` by version only (and on nothing else: the SDK
//! re-exports arrow, serde, serde_json, schemars and tracing). Because segflow-sdk may
//! not be published where the vendor builds, `--sdk-path` (default: the SDK in the
//! source tree the running binary was built from, when it exists) writes
//! `.cargo/config.toml` patching that version to a local checkout.

use crate::{Failure, EXIT_INVALID};
use segflow_engine::diag::Diagnostic;
use std::path::{Path, PathBuf};

/// The SDK version this binary belongs to (the workspace shares one version).
const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NewStage {
    Collect,
    Clean,
    Segment,
    Position,
    Evaluate,
}

impl NewStage {
    fn as_str(self) -> &'static str {
        match self {
            NewStage::Collect => "collect",
            NewStage::Clean => "clean",
            NewStage::Segment => "segment",
            NewStage::Position => "position",
            NewStage::Evaluate => "evaluate",
        }
    }
}

fn fail(message: String, help: &str) -> Failure {
    Failure::one(
        EXIT_INVALID,
        Diagnostic::new("segflow::new-plugin", message).help(help),
    )
}

/// The SDK source next to the running binary's source tree, if this binary was built
/// from a checkout that still exists.
fn default_sdk_path() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../segflow-sdk");
    p.join("Cargo.toml")
        .is_file()
        .then(|| p.canonicalize().ok())
        .flatten()
}

pub fn run(
    name: &str,
    stage: NewStage,
    dir: Option<&Path>,
    sdk_path: Option<&Path>,
) -> Result<u8, Failure> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        return Err(fail(
            format!("`{name}` is not a valid plugin name: it must start with a lowercase letter and contain only lowercase letters, digits and `-` (pattern [a-z][a-z0-9-]*, not ending in `-`)"),
            "choose a name such as `acme-lookalike`; it becomes the crate, library and component name",
        ));
    }
    let parent = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let root = parent.join(name);
    if let Ok(mut entries) = std::fs::read_dir(&root) {
        if entries.next().is_some() {
            return Err(fail(
                format!(
                    "`{}` already exists and is not empty; new-plugin never overwrites files",
                    root.display()
                ),
                "pick another name or --dir, or remove the directory first",
            ));
        }
    } else if root.exists() {
        return Err(fail(
            format!("`{}` exists and is not a directory", root.display()),
            "pick another name or --dir",
        ));
    }
    let sdk = match sdk_path {
        Some(p) => {
            let canon = p
                .canonicalize()
                .ok()
                .filter(|c| c.join("Cargo.toml").is_file());
            match canon {
                Some(c) => Some(c),
                None => {
                    return Err(fail(
                        format!("--sdk-path `{}` is not a segflow-sdk source directory (no Cargo.toml there)", p.display()),
                        "pass the path of crates/segflow-sdk in a segflow checkout, or leave --sdk-path out to use a published segflow-sdk",
                    ))
                }
            }
        }
        None => default_sdk_path(),
    };
    let crate_ident = name.replace('-', "_");
    let mut files: Vec<(PathBuf, String)> = vec![
        (root.join("Cargo.toml"), cargo_toml(name)),
        (root.join("src/lib.rs"), lib_rs(name, &crate_ident, stage)),
        (root.join("tests/host.rs"), test_rs(&crate_ident, stage)),
        (root.join("README.md"), readme(name, &crate_ident, stage)),
        (root.join(".gitignore"), "/target\n".to_string()),
    ];
    if let Some(sdk) = &sdk {
        files.push((root.join(".cargo/config.toml"), cargo_config(sdk)));
    }
    for (path, text) in &files {
        let write = || -> std::io::Result<()> {
            if let Some(d) = path.parent() {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(path, text)
        };
        if let Err(e) = write() {
            return Err(fail(
                format!("cannot write `{}`: {e}", path.display()),
                "check that the directory is writable",
            ));
        }
    }
    // Lay the generated code out as `cargo fmt` would, when rustfmt is installed (the
    // templates are valid, just not wrapped for every name length, without it).
    let _ = std::process::Command::new("rustfmt")
        .args(["--edition", "2021"])
        .arg(root.join("src/lib.rs"))
        .arg(root.join("tests/host.rs"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    println!(
        "Created plugin crate `{name}` ({} stage) in {}",
        stage.as_str(),
        root.display()
    );
    match &sdk {
        Some(p) => println!("  segflow-sdk {SDK_VERSION} is patched to {} in .cargo/config.toml", p.display()),
        None => println!("  depends on segflow-sdk {SDK_VERSION} from crates.io (pass --sdk-path to build against a local checkout)"),
    }
    println!("Next:\n  cd {}\n  cargo build\n  segflow plugins test target/debug/lib{crate_ident}.{}\n  segflow plugins list --plugin-path target/debug", root.display(), std::env::consts::DLL_EXTENSION);
    Ok(0)
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
description = "A segflow plugin library"

# A standalone crate; delete this table to make it a member of an enclosing workspace.
[workspace]

[lib]
# cdylib: the library segflow loads; rlib: lets unit tests and other crates use the code.
crate-type = ["cdylib", "rlib"]

[dependencies]
# The SDK re-exports arrow, serde, serde_json, schemars and tracing: no other deps needed.
segflow-sdk = "{SDK_VERSION}"
"#
    )
}

fn cargo_config(sdk: &Path) -> String {
    let abi = sdk
        .parent()
        .map(|p| p.join("segflow-abi"))
        .unwrap_or_default();
    format!(
        r#"# Build against a local segflow checkout while depending on segflow-sdk by version.
# Delete this file to use the published segflow-sdk instead.
[patch.crates-io]
segflow-sdk = {{ path = {sdk:?} }}
segflow-abi = {{ path = {abi:?} }}
"#,
        sdk = sdk.display().to_string(),
        abi = abi.display().to_string(),
    )
}

fn lib_rs(name: &str, ident: &str, stage: NewStage) -> String {
    let body = match stage {
        NewStage::Segment => SEGMENT,
        NewStage::Collect => COLLECT,
        NewStage::Clean => CLEAN,
        NewStage::Position => POSITION,
        NewStage::Evaluate => EVALUATE,
    };
    format!(
        "//! `{name}`: a segflow plugin library ({stage} stage).\n\n{body}\nexport_plugin!(name: \"{name}\", components: [Config]);\n",
        stage = stage.as_str(),
        body = body.replace("COMPONENT", ident),
    )
}

const SEGMENT: &str = r#"use segflow_sdk::arrow::{array::*, compute::cast};
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// Splits customers in two by one numeric column: `high` (segment 0) when the value is
/// at least `threshold`, else `low` (1; missing values too).
#[derive(Deserialize, JsonSchema)]
// The SDK re-exports serde and schemars; these attributes point the derives at them.
#[serde(crate = "segflow_sdk::serde", deny_unknown_fields)]
#[schemars(crate = "segflow_sdk::schemars")]
pub struct Config {
    /// Column identifying the customer.
    #[serde(default = "default_key")]
    pub key: String,
    /// Numeric column to compare.
    pub column: String,
    /// Values at or above this are `high`.
    pub threshold: f64,
}

fn default_key() -> String {
    "customer_id".into()
}

const NUMERIC: &[DataType] = &[DataType::Float64, DataType::Int64, DataType::Int32, DataType::Float32];

impl Component for Config {
    const NAME: &'static str = "COMPONENT";
    const STAGE: Stage = Stage::Segment;

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let input = single(inputs)?;
        let key = require_column(input, &self.key, "key", &[])?.clone();
        require_column(input, &self.column, "column", NUMERIC)?;
        let assignments = Schema::new(vec![
            key,
            Field::new("segment_id", DataType::Int32, false),
            Field::new("segment", DataType::Utf8, false),
        ]);
        let model = Schema::new(vec![Field::new("threshold", DataType::Float64, false)]);
        Ok(Outputs::new()
            .port("assignments", Arc::new(assignments))
            .port("model", Arc::new(model)))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let planned = self.plan(&[Named { name: inputs[0].name.clone(), value: inputs[0].value.schema() }])?;
        let batch = inputs.into_iter().next().ok_or_else(|| Error::new("no input"))?.value.concat()?;
        let values = cast(batch.column_by_name(&self.column).expect("checked by plan"), &DataType::Float64)?;
        let values = values.as_any().downcast_ref::<Float64Array>().expect("cast to Float64");
        let high: Vec<bool> = values.iter().map(|v| v.is_some_and(|v| v >= self.threshold)).collect();
        ctx.fact("high", high.iter().filter(|h| **h).count());
        let ids: Int32Array = high.iter().map(|&h| if h { 0 } else { 1 }).collect();
        let labels: StringArray = high.iter().map(|&h| Some(if h { "high" } else { "low" })).collect();
        let key = batch.column_by_name(&self.key).expect("checked by plan").clone();
        let assignments = RecordBatch::try_new(planned.0[0].value.clone(), vec![key, Arc::new(ids), Arc::new(labels)])?;
        let model = RecordBatch::try_new(planned.0[1].value.clone(), vec![Arc::new(Float64Array::from(vec![self.threshold]))])?;
        Ok(Outputs::new()
            .port("assignments", Table::from_batch(assignments))
            .port("model", Table::from_batch(model)))
    }
}
"#;

const COLLECT: &str = r#"use segflow_sdk::arrow::array::*;
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// Produces `rows` customers: `customer_id` (Int64) and `value` (Float64, a
/// deterministic function of the id and `seed`).
#[derive(Deserialize, JsonSchema)]
// The SDK re-exports serde and schemars; these attributes point the derives at them.
#[serde(crate = "segflow_sdk::serde", deny_unknown_fields)]
#[schemars(crate = "segflow_sdk::schemars")]
pub struct Config {
    /// Number of rows to produce.
    pub rows: u64,
    /// Seed of the values.
    #[serde(default)]
    pub seed: u64,
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
    ]))
}

impl Component for Config {
    const NAME: &'static str = "COMPONENT";
    const STAGE: Stage = Stage::Collect;

    fn plan(&self, _inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::main(schema()))
    }

    fn run(&self, _inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let ids: Vec<i64> = (1..=self.rows as i64).collect();
        let values: Vec<f64> = ids
            .iter()
            .map(|&i| ((i as u64).wrapping_mul(2654435761).wrapping_add(self.seed) % 1000) as f64 / 10.0)
            .collect();
        ctx.fact("rows", self.rows);
        let batch = RecordBatch::try_new(
            schema(),
            vec![Arc::new(Int64Array::from(ids)), Arc::new(Float64Array::from(values))],
        )?;
        Ok(Outputs::main(Table::from_batch(batch)))
    }
}
"#;

const CLEAN: &str = r#"use segflow_sdk::arrow::{array::*, compute::{cast, filter_record_batch, not}};
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// Keeps rows whose `column` is at least `min`; the others (and missing values) go to
/// `quarantine` with a `reason`.
#[derive(Deserialize, JsonSchema)]
// The SDK re-exports serde and schemars; these attributes point the derives at them.
#[serde(crate = "segflow_sdk::serde", deny_unknown_fields)]
#[schemars(crate = "segflow_sdk::schemars")]
pub struct Config {
    /// Numeric column to check.
    pub column: String,
    /// Smallest value kept.
    pub min: f64,
}

const NUMERIC: &[DataType] = &[DataType::Float64, DataType::Int64, DataType::Int32, DataType::Float32];

fn quarantine_schema(input: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("reason", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

impl Component for Config {
    const NAME: &'static str = "COMPONENT";
    const STAGE: Stage = Stage::Clean;

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let input = single(inputs)?;
        require_column(input, &self.column, "column", NUMERIC)?;
        Ok(Outputs::new().port("main", input.clone()).port("quarantine", quarantine_schema(input)))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let batch = inputs.into_iter().next().ok_or_else(|| Error::new("no input"))?.value.concat()?;
        let values = cast(batch.column_by_name(&self.column).expect("checked by plan"), &DataType::Float64)?;
        let values = values.as_any().downcast_ref::<Float64Array>().expect("cast to Float64");
        let keep: BooleanArray = values.iter().map(|v| Some(v.is_some_and(|v| v >= self.min))).collect();
        let kept = filter_record_batch(&batch, &keep)?;
        let dropped = filter_record_batch(&batch, &not(&keep)?)?;
        ctx.fact("quarantined", dropped.num_rows());
        let reason = format!("{} below {} or missing", self.column, self.min);
        let mut columns = dropped.columns().to_vec();
        columns.push(Arc::new(StringArray::from(vec![reason; dropped.num_rows()])));
        let quarantine = RecordBatch::try_new(quarantine_schema(&batch.schema()), columns)?;
        Ok(Outputs::new()
            .port("main", Table::from_batch(kept))
            .port("quarantine", Table::from_batch(quarantine)))
    }
}
"#;

const POSITION: &str = r#"use segflow_sdk::arrow::array::*;
use segflow_sdk::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One row per segment of an upstream segmentation's `assignments`: its size and share
/// of all customers.
#[derive(Deserialize, JsonSchema)]
// The SDK re-exports serde and schemars; these attributes point the derives at them.
#[serde(crate = "segflow_sdk::serde", deny_unknown_fields)]
#[schemars(crate = "segflow_sdk::schemars")]
pub struct Config {
    /// Column holding the segment label.
    #[serde(default = "default_segment")]
    pub segment: String,
}

fn default_segment() -> String {
    "segment".into()
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("segment", DataType::Utf8, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("share", DataType::Float64, false),
    ]))
}

impl Component for Config {
    const NAME: &'static str = "COMPONENT";
    const STAGE: Stage = Stage::Position;

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        require_column(single(inputs)?, &self.segment, "segment", &[DataType::Utf8])?;
        Ok(Outputs::main(schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, _ctx: &mut Context) -> Result<Outputs<Table>> {
        let batch = inputs.into_iter().next().ok_or_else(|| Error::new("no input"))?.value.concat()?;
        let labels = batch.column_by_name(&self.segment).expect("checked by plan");
        let labels = labels.as_any().downcast_ref::<StringArray>().expect("Utf8, checked by plan");
        let mut sizes: BTreeMap<&str, i64> = BTreeMap::new();
        for l in labels.iter().flatten() {
            *sizes.entry(l).or_default() += 1;
        }
        let total = batch.num_rows().max(1) as f64;
        let out = RecordBatch::try_new(schema(), vec![
            Arc::new(StringArray::from(sizes.keys().copied().collect::<Vec<_>>())),
            Arc::new(Int64Array::from(sizes.values().copied().collect::<Vec<_>>())),
            Arc::new(Float64Array::from(sizes.values().map(|&n| n as f64 / total).collect::<Vec<_>>())),
        ])?;
        Ok(Outputs::main(Table::from_batch(out)))
    }
}
"#;

const EVALUATE: &str = r#"use segflow_sdk::arrow::array::*;
use segflow_sdk::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;

/// Size metrics of an upstream segmentation's `assignments`: customers, segments and
/// the largest segment's share, as a long `metrics` table.
#[derive(Deserialize, JsonSchema)]
// The SDK re-exports serde and schemars; these attributes point the derives at them.
#[serde(crate = "segflow_sdk::serde", deny_unknown_fields)]
#[schemars(crate = "segflow_sdk::schemars")]
pub struct Config {
    /// Column holding the segment label.
    #[serde(default = "default_segment")]
    pub segment: String,
}

fn default_segment() -> String {
    "segment".into()
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("segmentation", DataType::Utf8, false),
        Field::new("metric", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
    ]))
}

impl Component for Config {
    const NAME: &'static str = "COMPONENT";
    const STAGE: Stage = Stage::Evaluate;

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        require_column(single(inputs)?, &self.segment, "segment", &[DataType::Utf8])?;
        Ok(Outputs::new().port("metrics", schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let input = inputs.into_iter().next().ok_or_else(|| Error::new("no input"))?;
        let name = input.name.clone();
        let batch = input.value.concat()?;
        let labels = batch.column_by_name(&self.segment).expect("checked by plan");
        let labels = labels.as_any().downcast_ref::<StringArray>().expect("Utf8, checked by plan");
        let distinct: HashSet<&str> = labels.iter().flatten().collect();
        let largest = distinct.iter().map(|d| labels.iter().filter(|l| l == &Some(*d)).count()).max().unwrap_or(0);
        let values = [batch.num_rows() as f64, distinct.len() as f64, largest as f64 / batch.num_rows().max(1) as f64];
        ctx.fact("segments", distinct.len());
        let out = RecordBatch::try_new(schema(), vec![
            Arc::new(StringArray::from(vec![name; 3])),
            Arc::new(StringArray::from(vec!["customers", "segments", "largest_share"])),
            Arc::new(Float64Array::from(values.to_vec())),
        ])?;
        Ok(Outputs::new().port("metrics", Table::from_batch(out)))
    }
}
"#;

/// The pipeline the scaffold's test runs: bundled steps upstream, then the component.
fn test_pipeline(ident: &str, stage: NewStage) -> String {
    let upstream = "  - { id: orders, stage: collect, plugin: synthetic, with: { customers: 300, seed: 7 } }\n  - { id: features, stage: clean, plugin: customer_features, needs: [orders], with: { key: customer_id, date: date, amount: amount, as_of: \"2025-01-01\" } }\n";
    let rfm = "  - { id: rfm, stage: segment, plugin: rfm, needs: [features] }\n";
    match stage {
        NewStage::Collect => format!("  - {{ id: mine, stage: collect, plugin: {ident}, with: {{ rows: 100 }} }}\n"),
        NewStage::Clean => format!("  - {{ id: orders, stage: collect, plugin: synthetic, with: {{ customers: 300, seed: 7 }} }}\n  - {{ id: mine, stage: clean, plugin: {ident}, needs: [orders], with: {{ column: amount, min: 20 }} }}\n"),
        NewStage::Segment => format!("{upstream}  - {{ id: mine, stage: segment, plugin: {ident}, needs: [features], with: {{ column: monetary_sum, threshold: 500 }} }}\n"),
        NewStage::Position => format!("{upstream}{rfm}  - {{ id: mine, stage: position, plugin: {ident}, needs: [rfm.assignments] }}\n"),
        NewStage::Evaluate => format!("{upstream}{rfm}  - {{ id: mine, stage: evaluate, plugin: {ident}, needs: [rfm.assignments] }}\n"),
    }
}

fn test_rs(ident: &str, stage: NewStage) -> String {
    let port = match stage {
        NewStage::Segment => "assignments",
        NewStage::Evaluate => "metrics",
        _ => "main",
    };
    format!(
        r#"//! Loads the built library through the real segflow host: `segflow plugins list` must
//! show the component, and a small pipeline must run it. Needs the `segflow` binary:
//! set SEGFLOW_BIN or put it on PATH (the test is skipped, with a message, otherwise).

use std::path::PathBuf;
use std::process::Command;

fn segflow() -> Option<PathBuf> {{
    if let Some(p) = std::env::var_os("SEGFLOW_BIN") {{
        return Some(PathBuf::from(p));
    }}
    let exe = format!("segflow{{}}", std::env::consts::EXE_SUFFIX);
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(&exe)).find(|p| p.is_file())
}}

/// The cdylib cargo built for this test run: `cargo test` leaves it in
/// target/<profile>/deps/ (next to this test executable); `cargo build` in target/<profile>/.
fn library() -> PathBuf {{
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("target/<profile>/deps");
    let file = format!("{{}}{ident}{{}}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let fresh = deps.join(&file);
    if fresh.is_file() {{
        return fresh;
    }}
    deps.parent().expect("target/<profile>").join(file)
}}

#[test]
fn loads_and_runs_through_the_segflow_host() {{
    let Some(bin) = segflow() else {{
        eprintln!("skipped: set SEGFLOW_BIN or put `segflow` on PATH to run this test");
        return;
    }};
    let lib = library();
    let list = Command::new(&bin).args(["plugins", "list", "--plugin-path"]).arg(&lib).output().expect("run segflow");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success() && text.contains("{ident}"), "segflow plugins list:\n{{text}}{{}}", String::from_utf8_lossy(&list.stderr));

    let dir = lib.parent().unwrap().join("segflow-test-{ident}");
    std::fs::create_dir_all(&dir).unwrap();
    let pipeline = dir.join("pipeline.yaml");
    std::fs::write(&pipeline, "name: plugin_test\nsteps:\n{pipeline}").unwrap();
    let out = dir.join("run");
    let run = Command::new(&bin).arg("run").arg(&pipeline).arg("--out").arg(&out).arg("--no-cache").arg("--plugin-path").arg(&lib).output().expect("run segflow");
    assert!(run.status.success(), "segflow run failed:\n{{}}", String::from_utf8_lossy(&run.stderr));
    assert!(out.join("steps/mine/{port}.parquet").is_file(), "no output port `{port}`");
}}
"#,
        pipeline = test_pipeline(ident, stage).escape_default(),
    )
}

fn readme(name: &str, ident: &str, stage: NewStage) -> String {
    let ext = std::env::consts::DLL_EXTENSION;
    let stage = stage.as_str();
    format!(
        r#"# {name}

A segflow plugin library with one {stage}-stage component, `{ident}` (see `src/lib.rs`:
the config struct's doc comments become `segflow plugins info {ident}` and editor help).

## Build

    cargo build --release          # target/release/lib{ident}.{ext}

The crate depends only on `segflow-sdk` (by version); the SDK re-exports arrow, serde,
serde_json, schemars and tracing. If `.cargo/config.toml` exists, it patches segflow-sdk
to a local segflow checkout; delete it to build against the published SDK.

## Test

    cargo test                                   # unit tests + tests/host.rs
    SEGFLOW_BIN=/path/to/segflow cargo test      # if segflow is not on PATH
    segflow plugins test target/release/lib{ident}.{ext}   # the host's pre-ship checks

`tests/host.rs` loads the built library through the real host (`segflow plugins list`)
and runs a small pipeline with it.

## Use

    segflow plugins list --plugin-path target/release
    segflow plugins info {ident} --plugin-path target/release

In a pipeline, name the component as `plugin: {ident}` (or `{name}/{ident}`) and pass the
library with `--plugin-path DIR`, `SEGFLOW_PLUGIN_PATH`, or the pipeline's
`plugins: [path/to/lib{ident}.{ext}]`.

## Ship

Ship `lib{ident}.{ext}` (built for each target platform). Users pin it with

    segflow lock PIPELINE.yaml

which records its path, version and sha256 in `PIPELINE.lock`; `segflow run` then refuses
a library whose hash differs (until `--update-lock`). Bump `version` in Cargo.toml for
every release: it is recorded in each run's manifest.
"#
    )
}
