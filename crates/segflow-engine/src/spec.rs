//! The pipeline YAML model: parsing, structural checks, `${ENV}` interpolation and
//! `--set` overrides. Everything here works on the file alone; rules that need the
//! plugins (unknown component, config schema, columns) live in `validate`.

use crate::diag::{did_you_mean, Diagnostic, Loc, SourceFile};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Pipeline stages, in the order edges must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Collect,
    Clean,
    Segment,
    Position,
    Evaluate,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Collect,
        Stage::Clean,
        Stage::Segment,
        Stage::Position,
        Stage::Evaluate,
    ];
    pub const NAMES: [&'static str; 5] = ["collect", "clean", "segment", "position", "evaluate"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
    pub fn parse(s: &str) -> Option<Stage> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
    }
    pub fn from_abi(v: u32) -> Option<Stage> {
        Self::ALL.get(v as usize).copied()
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub const PIPELINE_KEYS: &[&str] = &["name", "description", "plugins", "steps"];
pub const STEP_KEYS: &[&str] = &[
    "id",
    "stage",
    "plugin",
    "needs",
    "with",
    "persist",
    "cache",
    "isolation",
    "timeout",
    "memory_limit",
];

/// Where a step's component runs: in the segflow process (default) or in a child
/// process of its own (`isolation: process`), where a crash fails only the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    #[default]
    InProcess,
    Process,
}

impl Isolation {
    pub const NAMES: &'static [&'static str] = &["in_process", "process"];
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::InProcess => "in_process",
            Isolation::Process => "process",
        }
    }
    pub fn parse(s: &str) -> Option<Isolation> {
        match s {
            "in_process" => Some(Isolation::InProcess),
            "process" => Some(Isolation::Process),
            _ => None,
        }
    }
}

/// A step limit (`timeout`, `memory_limit`): its value, the text as written (for
/// messages) and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit<T> {
    pub value: T,
    pub text: String,
    pub loc: Loc,
}

/// Parse a duration such as `500ms`, `30s`, `5m`, `1.5h`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "" => return Err(format!("`{text}` has no unit")),
        u => return Err(format!("`{text}` has an unknown unit `{u}`")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!("`{text}` is not a positive duration"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Parse a size such as `512MiB`, `2GiB`, `1.5GB`, `800KiB`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{text}` is not a size"))?;
    let mult: f64 = match unit.trim() {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "" => return Err(format!("`{text}` has no unit")),
        u => return Err(format!("`{text}` has an unknown unit `{u}`")),
    };
    let bytes = n * mult;
    if !bytes.is_finite() || !(1.0..=1.8e19).contains(&bytes) {
        return Err(format!("`{text}` is not a positive size"));
    }
    Ok(bytes as u64)
}

/// The smallest `memory_limit` accepted: below it the child process cannot even load
/// its plugin library.
pub const MIN_MEMORY_LIMIT: u64 = 64 * 1024 * 1024;

/// `timeout` and `memory_limit` are enforced only on a step that runs in its own
/// process: refuse them on a step that would run in-process. `isolate_all` is
/// `segflow run --isolate`.
pub fn check_isolation(spec: &PipelineSpec, isolate_all: bool) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if isolate_all {
        return out;
    }
    for s in spec
        .steps
        .iter()
        .filter(|s| s.isolation != Isolation::Process)
    {
        let limits = [
            s.timeout.as_ref().map(|l| ("timeout", l.loc)),
            s.memory_limit.as_ref().map(|l| ("memory_limit", l.loc)),
        ];
        for (key, loc) in limits.into_iter().flatten() {
            out.push(
                Diagnostic::new(
                    "segflow::needs-isolation",
                    format!(
                        "step `{}` sets `{key}`, which is enforced only when the step runs in its own process",
                        s.id
                    ),
                )
                .at(&spec.source, loc, "needs `isolation: process`")
                .help(format!(
                    "add `isolation: process` to step `{}`, or run every step isolated with `segflow run --isolate`",
                    s.id
                )),
            );
        }
    }
    out
}

/// A reference to an upstream port: `step` (its `main` port) or `step.port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedRef {
    pub step: String,
    pub port: Option<String>,
    /// As written, passed to the component as the input's name.
    pub text: String,
    pub loc: Loc,
}

impl NeedRef {
    pub fn port_or_main(&self) -> &str {
        self.port.as_deref().unwrap_or("main")
    }
}

/// One step of a pipeline.
#[derive(Debug, Clone)]
pub struct StepSpec {
    pub index: usize,
    pub id: String,
    pub id_loc: Loc,
    pub stage: Stage,
    pub stage_loc: Loc,
    pub plugin: String,
    pub plugin_loc: Loc,
    pub needs: Vec<NeedRef>,
    /// The `with:` mapping as written (secrets still as `${VAR}`), after `--set`.
    pub with_raw: Json,
    /// The `with:` mapping after `${VAR}` interpolation: what the component sees.
    pub with: Json,
    /// Values that came from the environment; never shown in logs or outputs.
    pub secrets: Vec<String>,
    /// `with:` paths set by `--set`, as JSON pointers (`/k`), with the flag as typed.
    pub overridden: Vec<(String, String)>,
    /// Whether the step's ports are written to the run directory (`persist: false`
    /// keeps them in memory, for raw personal data or very large intermediate tables).
    pub persist: bool,
    /// Whether the step cache may re-use and store this step's result (`cache: false`
    /// always runs it).
    pub cache: bool,
    /// In-process (default) or in a child process (`isolation: process`, `--isolate`).
    pub isolation: Isolation,
    /// Wall-clock limit of the step's run (isolated steps only).
    pub timeout: Option<Limit<std::time::Duration>>,
    /// Address-space limit of the step's process in bytes (isolated steps only).
    pub memory_limit: Option<Limit<u64>>,
    /// Where the step's mapping starts (for errors about the step as a whole).
    pub loc: Loc,
}

/// A parsed pipeline with the locations of its parts.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    pub source: Arc<SourceFile>,
    pub name: String,
    pub description: Option<String>,
    /// Extra plugin libraries or directories (relative to the pipeline file).
    pub plugins: Vec<(String, Loc)>,
    pub steps: Vec<StepSpec>,
    pub spans: SpanIndex,
}

impl PipelineSpec {
    pub fn step(&self, id: &str) -> Option<&StepSpec> {
        self.steps.iter().find(|s| s.id == id)
    }
    /// Location of the node at `path` (`steps/2/with/k`), or of its closest ancestor.
    pub fn loc(&self, path: &str) -> Loc {
        self.spans.value_or_parent(path)
    }
    /// Location of the key naming `path`, or of its value.
    pub fn key_loc(&self, path: &str) -> Loc {
        self.spans.key_or_value(path)
    }
    /// Every value read from the environment, for redaction.
    pub fn secrets(&self) -> Vec<String> {
        let mut v: Vec<String> = self.steps.iter().flat_map(|s| s.secrets.clone()).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// A `--set STEP.KEY=VALUE` override.
#[derive(Debug, Clone)]
pub struct Override {
    pub step: String,
    pub path: Vec<String>,
    pub value: Yaml,
    pub text: String,
}

impl Override {
    pub fn parse(text: &str) -> Result<Override, Diagnostic> {
        let usage = || {
            Diagnostic::new(
                "segflow::usage",
                format!("`--set {text}` is not of the form STEP.KEY=VALUE"),
            )
            .help("for example `--set kmeans.k=8` or `--set orders.path=data/2025-01.csv`")
        };
        let (lhs, rhs) = text.split_once('=').ok_or_else(usage)?;
        let mut parts = lhs.split('.');
        let step = parts.next().filter(|s| !s.is_empty()).ok_or_else(usage)?;
        let path: Vec<String> = parts.map(str::to_string).collect();
        if path.is_empty() || path.iter().any(|p| p.is_empty()) {
            return Err(usage());
        }
        // Parse the value as YAML so `k=8` is a number and `cols=[a, b]` a list.
        let value = if rhs.is_empty() {
            Yaml::String(String::new())
        } else {
            serde_yaml::from_str::<Yaml>(rhs).unwrap_or_else(|_| Yaml::String(rhs.to_string()))
        };
        Ok(Override {
            step: step.to_string(),
            path,
            value,
            text: text.to_string(),
        })
    }
}

/// Byte ranges of the keys and values of a YAML document, by path (`steps/0/with/k`).
#[derive(Debug, Clone, Default)]
pub struct SpanIndex {
    nodes: HashMap<String, (Option<Loc>, Loc)>,
}

impl SpanIndex {
    /// Index `source`. Aliases are not expanded, so this is linear in the file size.
    pub fn build(source: &SourceFile) -> SpanIndex {
        use saphyr_parser::{Event, Parser};
        enum Frame {
            Map {
                path: String,
                key: Option<(String, Loc)>,
            },
            Seq {
                path: String,
                next: usize,
            },
        }
        let mut nodes = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut parser = Parser::new_from_str(&source.text);
        let to_loc = |sp: &saphyr_parser::Span| {
            let start = source.byte_of_char(sp.start.index());
            let end = source.byte_of_char(sp.end.index()).max(start);
            Loc::new(start, end - start)
        };
        while let Some(Ok((event, span))) = parser.next_event() {
            let is_node = matches!(
                event,
                Event::Scalar(..)
                    | Event::MappingStart(..)
                    | Event::SequenceStart(..)
                    | Event::Alias(..)
            );
            if is_node {
                let loc = to_loc(&span);
                // Work out this node's path, or record it as a key.
                let node_path;
                match stack.last_mut() {
                    None => node_path = Some(String::new()),
                    Some(Frame::Seq { path, next }) => {
                        node_path = Some(format!("{path}/{next}"));
                        *next += 1;
                    }
                    Some(Frame::Map { path, key }) => match key.take() {
                        None => {
                            let text = match &event {
                                Event::Scalar(v, ..) => v.to_string(),
                                _ => "?".to_string(),
                            };
                            *key = Some((text, loc));
                            if !matches!(event, Event::Scalar(..)) {
                                // A complex key: its contents are not indexed.
                                stack.push(Frame::Seq {
                                    path: "\u{0}".into(),
                                    next: 0,
                                });
                            }
                            if let Event::MappingStart(..) = event {
                                if let Some(Frame::Seq { .. }) = stack.last() {
                                    stack.pop();
                                    stack.push(Frame::Map {
                                        path: "\u{0}".into(),
                                        key: None,
                                    });
                                }
                            }
                            continue;
                        }
                        Some((k, kloc)) => {
                            let p = format!("{path}/{k}");
                            nodes.insert(p.clone(), (Some(kloc), loc));
                            node_path = Some(p);
                        }
                    },
                }
                let p = node_path.unwrap_or_default();
                nodes.entry(p.clone()).or_insert((None, loc));
                match event {
                    Event::MappingStart(..) => stack.push(Frame::Map { path: p, key: None }),
                    Event::SequenceStart(..) => stack.push(Frame::Seq { path: p, next: 0 }),
                    _ => {}
                }
            } else if matches!(event, Event::MappingEnd | Event::SequenceEnd) {
                stack.pop();
            } else if matches!(event, Event::StreamEnd | Event::DocumentEnd) {
                break;
            }
        }
        SpanIndex { nodes }
    }

    pub fn value(&self, path: &str) -> Option<Loc> {
        self.nodes.get(path).map(|n| n.1)
    }

    pub fn key(&self, path: &str) -> Option<Loc> {
        self.nodes.get(path).and_then(|n| n.0)
    }

    pub fn value_or_parent(&self, path: &str) -> Loc {
        let mut p = path;
        loop {
            if let Some(l) = self.value(p) {
                // A container's span is only its start: show one line.
                return l;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Loc::new(0, 0),
            }
        }
    }

    pub fn key_or_value(&self, path: &str) -> Loc {
        self.key(path).unwrap_or_else(|| self.value_or_parent(path))
    }
}

fn yaml_type(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "null",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

fn valid_name(s: &str, allow_dash: bool) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (allow_dash && c == '-')
        })
}

/// Turns YAML into a [`PipelineSpec`], collecting every error it can find.
struct Loader<'a> {
    src: Arc<SourceFile>,
    spans: SpanIndex,
    diags: Vec<Diagnostic>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Loader<'_> {
    fn err(
        &mut self,
        code: &'static str,
        path: &str,
        message: String,
        label: &str,
    ) -> &mut Diagnostic {
        let loc = self.spans.value_or_parent(path);
        self.diags
            .push(Diagnostic::new(code, message).at(&self.src, loc, label));
        self.diags.last_mut().unwrap()
    }

    fn check_keys(&mut self, map: &serde_yaml::Mapping, path: &str, allowed: &[&str], what: &str) {
        for k in map.keys() {
            let Some(k) = k.as_str() else {
                let loc = self.spans.value_or_parent(path);
                self.diags.push(
                    Diagnostic::new(
                        "segflow::key-type",
                        format!("{what} has a key that is not a string"),
                    )
                    .at(&self.src, loc, "here"),
                );
                continue;
            };
            if !allowed.contains(&k) {
                let loc = self.spans.key_or_value(&format!("{path}/{k}"));
                let mut d = Diagnostic::new(
                    "segflow::unknown-key",
                    format!("unknown key `{k}` in {what}"),
                )
                .at(&self.src, loc, "unknown key");
                d = match did_you_mean(k, allowed.iter().copied()) {
                    Some(s) => d.help(format!(
                        "did you mean `{s}`? The keys allowed here are: {}",
                        allowed.join(", ")
                    )),
                    None => d.help(format!("the keys allowed here are: {}", allowed.join(", "))),
                };
                self.diags.push(d);
            }
        }
    }

    fn string_field(
        &mut self,
        map: &serde_yaml::Mapping,
        key: &str,
        path: &str,
        what: &str,
    ) -> Option<String> {
        match map.get(key) {
            None => None,
            Some(Yaml::String(s)) => Some(s.clone()),
            Some(other) => {
                let ty = yaml_type(other);
                self.err(
                    "segflow::type",
                    &format!("{path}/{key}"),
                    format!("`{key}` of {what} must be a string, but it is {ty}"),
                    "expected a string",
                )
                .help = Some(format!(
                    "write `{key}:` as plain text, quoted if it looks like a number or boolean"
                ));
                None
            }
        }
    }

    fn load(&mut self, root: Yaml, overrides: &[Override]) -> Option<PipelineSpec> {
        let Yaml::Mapping(top) = root else {
            let ty = yaml_type(&root);
            self.err(
                "segflow::top-level",
                "",
                format!("a pipeline file must be a mapping with `name` and `steps`, but this one is {ty}"),
                "the document",
            )
            .help = Some("start the file with `name: my_pipeline` and a `steps:` list".into());
            return None;
        };
        self.check_keys(&top, "", PIPELINE_KEYS, "the pipeline");
        let suggested: Vec<&str> = top
            .keys()
            .filter_map(|k| k.as_str())
            .filter(|k| !PIPELINE_KEYS.contains(k))
            .filter_map(|k| did_you_mean(k, PIPELINE_KEYS.iter().copied()))
            .collect();

        let name = self.string_field(&top, "name", "", "the pipeline");
        match &name {
            None if !top.contains_key("name") && !suggested.contains(&"name") => {
                self.diags.push(
                    Diagnostic::new("segflow::missing-key", "the pipeline has no `name`")
                        .at(&self.src, Loc::new(0, 0), "expected `name:` here")
                        .help("add `name: my_pipeline` (lowercase letters, digits, `_` and `-`)"),
                );
            }
            Some(n) if !valid_name(n, true) => {
                self.err(
                    "segflow::bad-name",
                    "/name",
                    format!(
                        "pipeline name `{n}` may only hold lowercase letters, digits, `_` and `-`"
                    ),
                    "invalid name",
                )
                .help = Some(
                    "the name becomes a directory under runs/; use something like `monthly_rfm`"
                        .into(),
                );
            }
            _ => {}
        }
        let description = self.string_field(&top, "description", "", "the pipeline");

        let mut plugins = Vec::new();
        match top.get("plugins") {
            None | Some(Yaml::Null) => {}
            Some(Yaml::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let path = format!("/plugins/{i}");
                    match item.as_str() {
                        Some(s) => plugins.push((s.to_string(), self.spans.value_or_parent(&path))),
                        None => {
                            self.err(
                                "segflow::type",
                                &path,
                                "each `plugins` entry must be a path (a string)".into(),
                                "expected a path",
                            );
                        }
                    }
                }
            }
            Some(other) => {
                let ty = yaml_type(other);
                self.err(
                    "segflow::type",
                    "/plugins",
                    format!("`plugins` must be a list of library paths, but it is {ty}"),
                    "expected a list",
                );
            }
        }

        let mut steps = Vec::new();
        match top.get("steps") {
            None if suggested.contains(&"steps") => {}
            None => {
                self.diags.push(
                    Diagnostic::new("segflow::missing-key", "the pipeline has no `steps`")
                        .at(&self.src, Loc::new(0, 0), "expected `steps:` in this file")
                        .help(
                            "add a `steps:` list; each step has an `id`, a `stage` and a `plugin`",
                        ),
                );
            }
            Some(Yaml::Sequence(items)) if items.is_empty() => {
                self.err("segflow::empty-steps", "/steps", "the pipeline's `steps` list is empty".into(), "no steps")
                    .help = Some("add at least one step, e.g. `- {id: orders, stage: collect, plugin: synthetic}`".into());
            }
            Some(Yaml::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(step) = self.load_step(i, item) {
                        steps.push(step);
                    }
                }
            }
            Some(other) => {
                let ty = yaml_type(other);
                self.err("segflow::type", "/steps", format!("`steps` must be a list, but it is {ty}"), "expected a list")
                    .help = Some("start each step with `- ` (a YAML list item), e.g. `- {id: orders, stage: collect, plugin: synthetic}`".into());
            }
        }

        for o in overrides {
            match steps.iter_mut().find(|s| s.id == o.step) {
                None => {
                    let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
                    let mut d = Diagnostic::new(
                        "segflow::usage",
                        format!(
                            "`--set {}` names step `{}`, which the pipeline does not have",
                            o.text, o.step
                        ),
                    );
                    d = d.help(match did_you_mean(&o.step, ids.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`? Steps: {}", ids.join(", ")),
                        None => format!("the steps are: {}", ids.join(", ")),
                    });
                    self.diags.push(d);
                }
                Some(step) => match serde_json::to_value(&o.value) {
                    Ok(v) => {
                        set_path(&mut step.with_raw, &o.path, v);
                        step.overridden
                            .push((format!("/{}", o.path.join("/")), o.text.clone()));
                    }
                    Err(e) => self.diags.push(Diagnostic::new(
                        "segflow::usage",
                        format!("`--set {}`: {e}", o.text),
                    )),
                },
            }
        }
        // Interpolate after overrides so `--set` values may use `${VAR}` too.
        for step in &mut steps {
            let mut secrets = Vec::new();
            let mut errors = Vec::new();
            step.with = interpolate(
                &step.with_raw,
                self.env,
                &mut secrets,
                &mut errors,
                &format!("/steps/{}/with", step.index),
            );
            step.secrets = secrets;
            for (path, var) in errors {
                self.err(
                    "segflow::unset-env",
                    &path,
                    format!(
                        "environment variable `{var}` is not set (used by step `{}`)",
                        step.id
                    ),
                    "needs ${VAR}",
                )
                .help = Some(format!(
                    "export {var}=... before running, or give a default with `${{{var}:-value}}`"
                ));
            }
        }
        self.diags.is_empty().then(|| PipelineSpec {
            source: self.src.clone(),
            name: name.unwrap_or_default(),
            description,
            plugins,
            steps,
            spans: self.spans.clone(),
        })
    }

    fn load_step(&mut self, index: usize, item: &Yaml) -> Option<StepSpec> {
        let path = format!("/steps/{index}");
        let Yaml::Mapping(map) = item else {
            let ty = yaml_type(item);
            self.err("segflow::type", &path, format!("step {} must be a mapping with `id`, `stage` and `plugin`, but it is {ty}", index + 1), "expected a mapping")
                .help = Some("write each step as `- id: ...` with `stage:` and `plugin:` indented under it, or as `- {id: ..., stage: ..., plugin: ...}`".into());
            return None;
        };
        let before = self.diags.len();
        let what = match map.get("id").and_then(Yaml::as_str) {
            Some(id) => format!("step `{id}`"),
            None => format!("step {}", index + 1),
        };
        self.check_keys(map, &path, STEP_KEYS, &what);
        // A misspelt key was already reported with a did-you-mean; don't report it missing too.
        let suggested: Vec<&str> = map
            .keys()
            .filter_map(|k| k.as_str())
            .filter(|k| !STEP_KEYS.contains(k))
            .filter_map(|k| did_you_mean(k, STEP_KEYS.iter().copied()))
            .collect();
        for key in ["id", "stage", "plugin"] {
            if !map.contains_key(key) && !suggested.contains(&key) {
                let help = match key {
                    "id" => {
                        "give the step an id (`id: features`); other steps refer to it in `needs:`"
                    }
                    "stage" => {
                        "add `stage:` with one of collect, clean, segment, position, evaluate"
                    }
                    _ => "add `plugin:` with a component name; `segflow plugins list` shows them",
                };
                self.err(
                    "segflow::missing-key",
                    &path,
                    format!("{what} has no `{key}`"),
                    &format!("this step needs `{key}:`"),
                )
                .help = Some(help.to_string());
            }
        }
        let id = self.string_field(map, "id", &path, &what);
        if let Some(id) = &id {
            if !valid_name(id, false) {
                self.err(
                    "segflow::bad-id",
                    &format!("{path}/id"),
                    format!("step id `{id}` may only hold lowercase letters, digits and `_`"),
                    "invalid id",
                )
                .help = Some(format!(
                    "try `{}`",
                    id.to_lowercase()
                        .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                ));
            }
        }
        let what = match &id {
            Some(id) => format!("step `{id}`"),
            None => what,
        };
        let stage_text = self.string_field(map, "stage", &path, &what);
        let stage = stage_text.as_deref().and_then(|s| {
            let st = Stage::parse(s);
            if st.is_none() {
                let help = match did_you_mean(s, Stage::NAMES) {
                    Some(m) => format!(
                        "did you mean `{m}`? The stages, in order, are: {}",
                        Stage::NAMES.join(", ")
                    ),
                    None => format!("the stages, in order, are: {}", Stage::NAMES.join(", ")),
                };
                self.err(
                    "segflow::unknown-stage",
                    &format!("{path}/stage"),
                    format!("unknown stage `{s}` in {what}"),
                    "unknown stage",
                )
                .help = Some(help);
            }
            st
        });
        let plugin = self.string_field(map, "plugin", &path, &what);
        let mut needs = Vec::new();
        match map.get("needs") {
            None | Some(Yaml::Null) => {}
            Some(Yaml::String(s)) => needs.extend(self.need(s, &format!("{path}/needs"))),
            Some(Yaml::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}/needs/{i}");
                    match item.as_str() {
                        Some(s) => needs.extend(self.need(s, &p)),
                        None => {
                            let ty = yaml_type(item);
                            self.err("segflow::type", &p, format!("each `needs` entry of {what} must be `step` or `step.port`, but this one is {ty}"), "expected a step reference")
                                .help = Some("write the id of an upstream step, e.g. `needs: [orders]` or `needs: [kmeans.assignments]`".into());
                        }
                    }
                }
            }
            Some(other) => {
                let ty = yaml_type(other);
                self.err(
                    "segflow::type",
                    &format!("{path}/needs"),
                    format!("`needs` of {what} must be a list of step references, but it is {ty}"),
                    "expected a list",
                );
            }
        }
        let mut flag = |key: &str, help: &str| match map.get(key) {
            None | Some(Yaml::Null) => true,
            Some(Yaml::Bool(b)) => *b,
            Some(other) => {
                let ty = yaml_type(other);
                self.err(
                    "segflow::type",
                    &format!("{path}/{key}"),
                    format!("`{key}` of {what} must be true or false, but it is {ty}"),
                    "expected true or false",
                )
                .help = Some(help.into());
                true
            }
        };
        let persist = flag(
            "persist",
            "`persist: false` keeps the step's outputs out of the run directory",
        );
        let cache = flag(
            "cache",
            "`cache: false` runs the step every time instead of re-using an earlier result",
        );
        let isolation = match map.get("isolation") {
            None | Some(Yaml::Null) => Isolation::InProcess,
            Some(v) => match v.as_str().and_then(Isolation::parse) {
                Some(i) => i,
                None => {
                    let shown = match v.as_str() {
                        Some(t) => format!("`{t}`"),
                        None => yaml_type(v).to_string(),
                    };
                    self.err(
                        "segflow::type",
                        &format!("{path}/isolation"),
                        format!("`isolation` of {what} must be `in_process` or `process`, but it is {shown}"),
                        "expected in_process or process",
                    )
                    .help = Some("`isolation: process` runs the step's component in a child process, so a crash fails only this step".into());
                    Isolation::InProcess
                }
            },
        };
        let timeout = self.limit(
            map,
            "timeout",
            &path,
            &what,
            parse_duration,
            "a duration such as `30s`, `5m` or `1h` (units: ms, s, m, h)",
        );
        let mut memory_limit = self.limit(
            map,
            "memory_limit",
            &path,
            &what,
            parse_bytes,
            "a size such as `512MiB` or `2GiB` (units: B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)",
        );
        if let Some(m) = memory_limit.as_ref().filter(|m| m.value < MIN_MEMORY_LIMIT) {
            let text = m.text.clone();
            self.err(
                "segflow::bad-limit",
                &format!("{path}/memory_limit"),
                format!("`memory_limit` of {what} is {text}, below the minimum of 64MiB"),
                "too small",
            )
            .help = Some("the step's process needs about 64MiB of address space to load its plugin library; give it at least `memory_limit: 64MiB`".into());
            memory_limit = None;
        }
        let with = match map.get("with") {
            None | Some(Yaml::Null) => Json::Object(Default::default()),
            Some(v @ Yaml::Mapping(_)) => match serde_json::to_value(v) {
                Ok(j) => j,
                Err(e) => {
                    self.err(
                        "segflow::type",
                        &format!("{path}/with"),
                        format!("`with` of {what} cannot be read as config: {e}"),
                        "here",
                    );
                    Json::Null
                }
            },
            Some(other) => {
                let ty = yaml_type(other);
                self.err(
                    "segflow::type",
                    &format!("{path}/with"),
                    format!("`with` of {what} must be a mapping of config keys, but it is {ty}"),
                    "expected a mapping",
                )
                .help = Some(
                    "write `with: {key: value, ...}` or indent `key: value` lines under `with:`"
                        .into(),
                );
                Json::Null
            }
        };
        if self.diags.len() > before {
            return None;
        }
        Some(StepSpec {
            index,
            id: id?,
            id_loc: self.spans.value_or_parent(&format!("{path}/id")),
            stage: stage?,
            stage_loc: self.spans.value_or_parent(&format!("{path}/stage")),
            plugin: plugin?,
            plugin_loc: self.spans.value_or_parent(&format!("{path}/plugin")),
            needs,
            with_raw: with.clone(),
            with,
            secrets: Vec::new(),
            overridden: Vec::new(),
            persist,
            cache,
            isolation,
            timeout,
            memory_limit,
            loc: self.spans.value_or_parent(&path),
        })
    }

    /// Read a `timeout`/`memory_limit` string with `parse`; on a bad value report it
    /// (saying what a good one looks like, `example`) and return `None`.
    fn limit<T>(
        &mut self,
        map: &serde_yaml::Mapping,
        key: &str,
        path: &str,
        what: &str,
        parse: fn(&str) -> Result<T, String>,
        example: &str,
    ) -> Option<Limit<T>> {
        let v = map.get(key)?;
        let p = format!("{path}/{key}");
        let result = match v {
            Yaml::Null => return None,
            Yaml::String(t) => parse(t).map(|value| Limit {
                value,
                text: t.trim().to_string(),
                loc: self.spans.value_or_parent(&p),
            }),
            Yaml::Number(n) => Err(format!("`{n}` has no unit")),
            other => Err(format!("it is {}", yaml_type(other))),
        };
        match result {
            Ok(l) => Some(l),
            Err(why) => {
                self.err(
                    "segflow::bad-limit",
                    &p,
                    format!("`{key}` of {what} must be {example}, but {why}"),
                    "invalid value",
                )
                .help = Some(format!(
                    "write `{key}:` as {example}; it applies when the step runs in its own process (`isolation: process`)"
                ));
                None
            }
        }
    }

    fn need(&mut self, s: &str, path: &str) -> Option<NeedRef> {
        let loc = self.spans.value_or_parent(path);
        let (step, port) = match s.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        if !valid_name(step, false) || port.is_some_and(|p| !valid_name(p, false)) {
            self.err("segflow::bad-need", path, format!("`{s}` is not a step reference"), "expected `step` or `step.port`")
                .help = Some("write the id of an earlier step, optionally with a port: `features` or `kmeans.assignments`".into());
            return None;
        }
        Some(NeedRef {
            step: step.to_string(),
            port: port.map(str::to_string),
            text: s.to_string(),
            loc,
        })
    }
}

fn set_path(target: &mut Json, path: &[String], value: Json) {
    let Some((key, rest)) = path.split_first() else {
        *target = value;
        return;
    };
    if let Json::Array(items) = target {
        if let Some(item) = key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
            return set_path(item, rest, value);
        }
    }
    if !target.is_object() {
        *target = Json::Object(Default::default());
    }
    let slot = target
        .as_object_mut()
        .expect("made an object above")
        .entry(key.clone())
        .or_insert(Json::Null);
    set_path(slot, rest, value);
}

/// Replace `${VAR}` and `${VAR:-default}` in every string of `v`. `$${` is a literal `${`.
fn interpolate(
    v: &Json,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
    errors: &mut Vec<(String, String)>,
    path: &str,
) -> Json {
    match v {
        Json::String(s) if s.contains("${") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(i) = rest.find('$') {
                out.push_str(&rest[..i]);
                let tail = &rest[i..];
                if let Some(t) = tail.strip_prefix("$${") {
                    out.push_str("${");
                    rest = t;
                } else if let Some(t) = tail.strip_prefix("${") {
                    match t.find('}') {
                        Some(end) => {
                            let inner = &t[..end];
                            let (var, default) = match inner.split_once(":-") {
                                Some((a, b)) => (a, Some(b)),
                                None => (inner, None),
                            };
                            match env(var).filter(|v| !v.is_empty()) {
                                Some(val) => {
                                    secrets.push(val.clone());
                                    out.push_str(&val);
                                }
                                None => match default {
                                    Some(d) => out.push_str(d),
                                    None => errors.push((path.to_string(), var.to_string())),
                                },
                            }
                            rest = &t[end + 1..];
                        }
                        None => {
                            out.push_str(tail);
                            rest = "";
                        }
                    }
                } else {
                    out.push('$');
                    rest = &tail[1..];
                }
            }
            out.push_str(rest);
            Json::String(out)
        }
        Json::Array(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| interpolate(x, env, secrets, errors, &format!("{path}/{i}")))
                .collect(),
        ),
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        interpolate(x, env, secrets, errors, &format!("{path}/{k}")),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Read and parse a pipeline file. `env` looks up environment variables.
pub fn load(
    path: &Path,
    overrides: &[Override],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PipelineSpec, Vec<Diagnostic>> {
    let bytes = std::fs::read(path).map_err(|e| {
        let what = if path.is_dir() {
            format!("`{}` is a directory, not a pipeline file", path.display())
        } else {
            format!("cannot read pipeline file `{}`: {e}", path.display())
        };
        vec![Diagnostic::new("segflow::io", what)
            .help("pass the path of a pipeline YAML file, e.g. `pipelines/quickstart.yaml`")]
    })?;
    load_bytes(path, bytes, overrides, env)
}

/// Parse pipeline text that was read from `path`.
pub fn load_bytes(
    path: &Path,
    bytes: Vec<u8>,
    overrides: &[Override],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PipelineSpec, Vec<Diagnostic>> {
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let prefix = String::from_utf8_lossy(&bytes[..good]).into_owned();
            let src = SourceFile::new(path, String::from_utf8_lossy(&bytes).into_owned());
            let (line, col) = {
                let line = prefix.matches('\n').count() + 1;
                let start = prefix.rfind('\n').map_or(0, |i| i + 1);
                (line, prefix[start..].chars().count() + 1)
            };
            let loc = Loc::new(src.byte_of_line_col(line, col), 1);
            return Err(vec![Diagnostic::new(
                "segflow::encoding",
                format!(
                    "the pipeline file is not valid UTF-8 (byte {good}, line {line}, column {col})"
                ),
            )
            .at(&src, loc, "invalid UTF-8 here")
            .help("save the file as UTF-8")]);
        }
    };
    let src = SourceFile::new(path, text);
    if src.text.trim().is_empty() {
        return Err(vec![Diagnostic::new(
            "segflow::empty",
            format!("the pipeline file `{}` is empty", path.display()),
        )
        .at(&src, Loc::new(0, 0), "empty file")
        .help(
            "a pipeline needs at least `name:` and a `steps:` list; see pipelines/quickstart.yaml",
        )]);
    }
    let root: Yaml = match serde_yaml::from_str(&src.text) {
        Ok(v) => v,
        Err(e) => return Err(vec![yaml_error(&src, &e)]),
    };
    let spans = SpanIndex::build(&src);
    let mut loader = Loader {
        src: src.clone(),
        spans,
        diags: Vec::new(),
        env,
    };
    match loader.load(root, overrides) {
        Some(spec) => Ok(spec),
        None => Err(loader.diags),
    }
}

fn yaml_error(src: &Arc<SourceFile>, e: &serde_yaml::Error) -> Diagnostic {
    let raw = e.to_string();
    // serde_yaml appends " at line L column C"; the location is shown separately.
    let message = match raw.find(" at line ") {
        Some(i) => raw[..i].to_string(),
        None => raw.clone(),
    };
    let (help, code) = if message.contains("recursion limit") {
        (
            "the file nests deeper than segflow reads (128 levels); pipelines need only a few",
            "segflow::too-deep",
        )
    } else if message.contains("repetition limit")
        || message.contains("alias") && message.contains("limit")
    {
        ("the file expands YAML aliases into too many nodes; write the repeated values out or use fewer aliases", "segflow::alias-bomb")
    } else if src.text.contains('\t')
        && (message.contains("tab") || message.contains("cannot start any token"))
    {
        (
            "YAML does not allow tab characters for indentation; indent with spaces",
            "segflow::yaml-tab",
        )
    } else {
        ("fix the YAML syntax at the marked position; a YAML linter or the JSON Schema from `segflow schema` in your editor helps", "segflow::yaml-syntax")
    };
    let mut d = Diagnostic::new(
        code,
        format!("the pipeline file is not valid YAML: {message}"),
    )
    .help(help);
    let loc = match e.location() {
        Some(l) => Loc::new(src.byte_of_line_col(l.line(), l.column()), 1),
        None => Loc::new(0, 0),
    };
    d = d.at(src, loc, "here");
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(
        text: &str,
        overrides: &[Override],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PipelineSpec, Vec<Diagnostic>> {
        load_bytes(
            Path::new("t.yaml"),
            text.as_bytes().to_vec(),
            overrides,
            env,
        )
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const BASIC: &str = "name: t\nsteps:\n  - id: a\n    stage: collect\n    plugin: csv\n    with: {path: \"${DIR}/x.csv\", n: 1}\n  - {id: b, stage: clean, plugin: f, needs: a.main}\n";

    #[test]
    fn parses_steps_needs_and_interpolates() {
        let env = |k: &str| (k == "DIR").then(|| "/data/secret".to_string());
        let spec = load_str(BASIC, &[], &env).unwrap();
        assert_eq!(spec.steps.len(), 2);
        let a = &spec.steps[0];
        assert_eq!(a.with["path"], "/data/secret/x.csv");
        assert_eq!(a.with_raw["path"], "${DIR}/x.csv");
        assert_eq!(a.secrets, vec!["/data/secret".to_string()]);
        let b = &spec.steps[1];
        assert_eq!(b.needs[0].step, "a");
        assert_eq!(b.needs[0].port.as_deref(), Some("main"));
        // Spans point at the right text.
        let loc = spec.loc("/steps/0/with/n");
        assert_eq!(&spec.source.text[loc.offset..loc.offset + loc.len], "1");
        let (line, col) = spec.source.line_col(b.plugin_loc.offset);
        assert_eq!((line, col), (7, 35));
    }

    #[test]
    fn unset_variables_and_defaults() {
        let errs = load_str(BASIC, &[], &no_env).unwrap_err();
        assert!(
            errs[0].message.contains("`DIR` is not set"),
            "{}",
            errs[0].message
        );
        assert_eq!(errs[0].location().unwrap(), "t.yaml:6:18");
        let text = BASIC
            .replace("${DIR}", "${DIR:-/tmp}")
            .replace("x.csv", "$${x}.csv");
        let spec = load_str(&text, &[], &no_env).unwrap();
        assert_eq!(spec.steps[0].with["path"], "/tmp/${x}.csv");
        assert!(spec.steps[0].secrets.is_empty());
    }

    #[test]
    fn overrides_parse_values_as_yaml() {
        let env = |_: &str| Some("d".to_string());
        let o = vec![
            Override::parse("a.n=8").unwrap(),
            Override::parse("a.cols=[x, y]").unwrap(),
            Override::parse("a.nested.deep=on-the-fly").unwrap(),
        ];
        let spec = load_str(BASIC, &o, &env).unwrap();
        let w = &spec.steps[0].with;
        assert_eq!(w["n"], 8);
        assert_eq!(w["cols"], serde_json::json!(["x", "y"]));
        assert_eq!(w["nested"]["deep"], "on-the-fly");
        assert!(Override::parse("a=1").is_err());
        assert!(Override::parse("a.b").is_err());
    }

    #[test]
    fn unknown_keys_get_did_you_mean() {
        let errs = load_str("name: t\nstepz: []\n", &[], &no_env).unwrap_err();
        assert_eq!(errs.len(), 1, "no second 'missing steps' error: {errs:?}");
        assert!(errs[0]
            .help
            .as_deref()
            .unwrap()
            .contains("did you mean `steps`"));
        assert_eq!(errs[0].location().unwrap(), "t.yaml:2:1");
    }

    #[test]
    fn span_index_handles_multibyte_text() {
        let text = "name: t\ndescription: \"naïve café\"\nsteps:\n  - {id: a, stage: collect, plugin: p}\n";
        let spec = load_str(text, &[], &no_env).unwrap();
        let loc = spec.loc("/steps/0/plugin");
        assert_eq!(&spec.source.text[loc.offset..loc.offset + loc.len], "p");
    }
}
