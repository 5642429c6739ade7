//! Test-only components for the engine's end-to-end tests and benchmarks: a seeded
//! source, a zero-copy pass-through, and components that panic, fail or sleep on
//! purpose. Not built by `cargo build --release` (not a default workspace member).

use segflow_sdk::arrow::array::{Float64Array, Int64Array};
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// Deterministic rows: `id` (Int64), `value` (Float64), `group` (Int64).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Rows to produce.
    pub rows: u64,
    /// Rows per record batch.
    #[serde(default = "default_batch_rows")]
    #[schemars(range(min = 1))]
    pub batch_rows: u64,
    /// Seed of the values.
    #[serde(default)]
    pub seed: u64,
}

fn default_batch_rows() -> u64 {
    65536
}

fn source_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
        Field::new("group", DataType::Int64, false),
    ]))
}

impl Component for Source {
    const NAME: &'static str = "source";
    const STAGE: Stage = Stage::Collect;

    fn plan(&self, _inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::main(source_schema()))
    }

    // Generated from the config alone: the step cache may re-use it.
    fn fingerprint(&self) -> Result<Fingerprint> {
        Ok(Fingerprint::Pure)
    }

    fn run(&self, _inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let (rows, batch, seed) = (self.rows, self.batch_rows.max(1), self.seed);
        ctx.fact("rows", rows);
        tracing::info!(rows, "producing test rows");
        let schema = source_schema();
        let s = schema.clone();
        let batches = (0..rows.div_ceil(batch)).map(move |b| {
            let start = b * batch;
            let end = (start + batch).min(rows);
            let ids: Vec<i64> = (start as i64..end as i64).collect();
            // splitmix64: cheap, seeded, reproducible.
            let values: Vec<f64> = ids
                .iter()
                .map(|&i| {
                    let mut z = (i as u64)
                        .wrapping_add(seed)
                        .wrapping_add(0x9E3779B97F4A7C15);
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
                    (z ^ (z >> 31)) as f64 / u64::MAX as f64
                })
                .collect();
            let groups: Vec<i64> = ids.iter().map(|i| i % 7).collect();
            RecordBatch::try_new(
                s.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(Float64Array::from(values)),
                    Arc::new(Int64Array::from(groups)),
                ],
            )
        });
        Ok(Outputs::main(Table::from_iter(schema, batches)))
    }
}

/// Returns its input unchanged, lazily and without copying.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Passthrough {}

impl Component for Passthrough {
    const NAME: &'static str = "passthrough";
    const STAGE: Stage = Stage::Clean;
    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1).outputs(&[("main", "the input, unchanged")])
    }
    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::main(single(inputs)?.clone()))
    }
    fn run(&self, mut inputs: Vec<Named<Table>>, _ctx: &mut Context) -> Result<Outputs<Table>> {
        Ok(Outputs::main(inputs.remove(0).value))
    }
}

/// Panics in `run` with the message "testkit boom".
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Panic {}

impl Component for Panic {
    const NAME: &'static str = "panic";
    const STAGE: Stage = Stage::Clean;
    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1).outputs(&[("main", "never produced")])
    }
    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::main(single(inputs)?.clone()))
    }
    fn run(&self, _inputs: Vec<Named<Table>>, _ctx: &mut Context) -> Result<Outputs<Table>> {
        panic!("testkit boom");
    }
}

/// Returns a lazy stream that panics on its second batch.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PanicInStream {}

impl Component for PanicInStream {
    const NAME: &'static str = "panic_in_stream";
    const STAGE: Stage = Stage::Clean;
    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1).outputs(&[("main", "fails part-way")])
    }
    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::main(single(inputs)?.clone()))
    }
    fn run(&self, mut inputs: Vec<Named<Table>>, _ctx: &mut Context) -> Result<Outputs<Table>> {
        let input = inputs.remove(0).value;
        let schema = input.schema();
        let mut n = 0;
        let iter = input.inspect(move |_| {
            n += 1;
            if n == 2 {
                panic!("testkit stream boom");
            }
        });
        Ok(Outputs::main(Table::from_iter(schema, iter)))
    }
}

/// Fails with an ordinary error.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fail {}

impl Component for Fail {
    const NAME: &'static str = "fail";
    const STAGE: Stage = Stage::Clean;
    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1).outputs(&[("main", "never produced")])
    }
    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::main(single(inputs)?.clone()))
    }
    fn run(&self, _inputs: Vec<Named<Table>>, _ctx: &mut Context) -> Result<Outputs<Table>> {
        Err(Error::new("testkit failure on purpose"))
    }
}

/// Sleeps, then passes its input through (for parallelism tests).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sleep {
    /// Milliseconds to sleep.
    pub ms: u64,
}

impl Component for Sleep {
    const NAME: &'static str = "sleep";
    const STAGE: Stage = Stage::Clean;
    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1).outputs(&[("main", "the input, unchanged")])
    }
    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::main(single(inputs)?.clone()))
    }
    fn run(&self, mut inputs: Vec<Named<Table>>, _ctx: &mut Context) -> Result<Outputs<Table>> {
        std::thread::sleep(std::time::Duration::from_millis(self.ms));
        Ok(Outputs::main(inputs.remove(0).value))
    }
}

/// Re-runs component `inner` (with config `with`) on its input through the host, and
/// writes a tiny HTML report listing the steps the host's `run_info` describes: for the
/// engine's tests of nested runs, run info and `report.html`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Nested {
    /// Component to run inside this step.
    pub inner: String,
    /// Its config.
    #[serde(default)]
    pub with: serde_json::Value,
}

fn html_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("html", DataType::Utf8, false)]))
}

impl Component for Nested {
    const NAME: &'static str = "nested";
    const STAGE: Stage = Stage::Evaluate;
    fn ports() -> Ports {
        Ports::new(Stage::Evaluate, 1, 1).outputs(&[
            ("main", "the inner component's main port"),
            ("report", "an HTML page naming the run's steps"),
        ])
    }
    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::new()
            .port("main", single(inputs)?.clone())
            .port("report", html_schema()))
    }
    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let with = if self.with.is_null() {
            serde_json::json!({})
        } else {
            self.with.clone()
        };
        let outputs = ctx.run_component(&self.inner, &with, inputs)?;
        let ports: Vec<String> = outputs.iter().map(|o| o.name.clone()).collect();
        ctx.fact("inner_ports", &ports);
        let main = outputs
            .into_iter()
            .find(|o| o.name == "main")
            .ok_or_else(|| Error::new(format!("`{}` has no main port", self.inner)))?;
        let info = ctx.run_info().unwrap_or(serde_json::Value::Null);
        let steps: Vec<String> = info["steps"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        format!(
                            "{}:{}",
                            s["id"].as_str().unwrap_or(""),
                            s["status"].as_str().unwrap_or("pending")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let html = format!(
            "<!doctype html><title>{}</title><p>{}</p>",
            info["pipeline"].as_str().unwrap_or(""),
            steps.join(" ")
        );
        let report = RecordBatch::try_new(
            html_schema(),
            vec![Arc::new(segflow_sdk::arrow::array::StringArray::from(
                vec![html],
            ))],
        )?;
        Ok(Outputs::new()
            .port("main", main.value)
            .port("report", Table::from_batch(report)))
    }
}

/// How `crash` misbehaves.
#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CrashMode {
    /// Pass the input through (behave).
    None,
    /// Write through a null pointer (SIGSEGV).
    Segfault,
    /// `std::process::abort()` (SIGABRT).
    Abort,
    /// Unbounded recursion with a large stack frame.
    StackOverflow,
    /// Allocate and touch 16 MiB blocks until allocation fails (or `max_mib`).
    Allocate,
    /// Sleep `ms` milliseconds, then pass the input through.
    Sleep,
}

/// Crashes its process on purpose, for the tests of process isolation. Never use it
/// without `isolation: process`: in-process it takes segflow down with it.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Crash {
    /// What to do.
    pub mode: CrashMode,
    /// Milliseconds to sleep (`mode: sleep`).
    #[serde(default = "default_crash_ms")]
    pub ms: u64,
    /// Stop allocating after this many MiB (`mode: allocate`), so a run without a
    /// memory limit cannot take the machine's memory.
    #[serde(default = "default_crash_mib")]
    pub max_mib: u64,
}

fn default_crash_ms() -> u64 {
    60_000
}

fn default_crash_mib() -> u64 {
    2048
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    let frame = std::hint::black_box([n as u8; 8192]);
    if n == u64::MAX {
        return 0;
    }
    recurse(n + 1).wrapping_add(frame[(n % 8192) as usize] as u64)
}

impl Component for Crash {
    const NAME: &'static str = "crash";
    const STAGE: Stage = Stage::Clean;
    fn ports() -> Ports {
        Ports::new(Stage::Clean, 1, 1).outputs(&[("main", "the input, unless it crashed")])
    }
    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::main(single(inputs)?.clone()))
    }
    fn run(&self, mut inputs: Vec<Named<Table>>, _ctx: &mut Context) -> Result<Outputs<Table>> {
        match self.mode {
            CrashMode::None => {}
            // SAFETY: none; crashing is the point.
            CrashMode::Segfault => unsafe { std::ptr::null_mut::<u8>().write_volatile(1) },
            CrashMode::Abort => std::process::abort(),
            CrashMode::StackOverflow => {
                std::hint::black_box(recurse(0));
            }
            CrashMode::Allocate => {
                let mut held: Vec<Vec<u8>> = Vec::new();
                while (held.len() as u64) * 16 < self.max_mib {
                    let mut block = vec![0u8; 16 << 20];
                    block.iter_mut().step_by(4096).for_each(|b| *b = 1);
                    held.push(std::hint::black_box(block));
                }
                return Err(Error::new(format!(
                    "allocated {} MiB without reaching a limit",
                    self.max_mib
                )));
            }
            CrashMode::Sleep => std::thread::sleep(std::time::Duration::from_millis(self.ms)),
        }
        Ok(Outputs::main(inputs.remove(0).value))
    }
}

segflow_sdk::export_plugin!(
    name: "testkit",
    components: [Source, Passthrough, Panic, PanicInStream, Fail, Sleep, Nested, Crash]
);
