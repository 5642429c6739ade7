//! `segflow schema`: the JSON Schema of pipeline YAML with every loaded component's
//! config, for editors (yaml-language-server) and for the generated YAML reference.

use crate::{load_registry, Failure, Globals, EXIT_STEP_FAILED};
use clap::ValueEnum;
use segflow_engine::diag::Diagnostic;
use segflow_engine::host::{Component, Registry};
use segflow_engine::spec::Stage;
use serde_json::{json, Map, Value};
use std::path::Path;

#[derive(Clone, Copy, ValueEnum)]
pub enum SchemaFormat {
    Json,
    Markdown,
}

pub fn run(globals: &Globals, out: Option<&Path>, format: SchemaFormat) -> Result<u8, Failure> {
    let reg = load_registry(globals, &[])?;
    let text = match format {
        SchemaFormat::Json => {
            let mut s = serde_json::to_string_pretty(&pipeline_schema(&reg)).unwrap_or_default();
            s.push('\n');
            s
        }
        SchemaFormat::Markdown => markdown(&reg),
    };
    match out {
        Some(p) => segflow_engine::store::write_atomic(p, text.as_bytes()).map_err(|e| {
            Failure::one(
                EXIT_STEP_FAILED,
                Diagnostic::new(
                    "segflow::io",
                    format!("cannot write `{}`: {e}", p.display()),
                ),
            )
        })?,
        None => print!("{text}"),
    }
    Ok(0)
}

/// Rewrite `#/$defs/X` references inside `v` to `#/$defs/{prefix}X`.
fn rewrite_refs(v: &mut Value, prefix: &str) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref") {
                if let Some(name) = r.strip_prefix("#/$defs/") {
                    *r = format!("#/$defs/{prefix}{name}");
                }
            }
            for (_, x) in m.iter_mut() {
                rewrite_refs(x, prefix);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite_refs(x, prefix)),
        _ => {}
    }
}

fn sorted_components(reg: &Registry) -> Vec<&Component> {
    let mut v: Vec<&Component> = reg.components.iter().map(|c| c.as_ref()).collect();
    v.sort_by(|a, b| (a.stage, &a.library.name, &a.name).cmp(&(b.stage, &b.library.name, &b.name)));
    v
}

pub fn pipeline_schema(reg: &Registry) -> Value {
    let mut defs = Map::new();
    let mut branches = Vec::new();
    let mut names = Vec::new();
    for c in sorted_components(reg) {
        let key = format!("{}.{}", c.library.name, c.name);
        let mut schema = c.config_schema.clone();
        let prefix = format!("{key}.");
        if let Some(Value::Object(inner)) = schema.as_object_mut().and_then(|m| m.remove("$defs")) {
            for (name, mut d) in inner {
                rewrite_refs(&mut d, &prefix);
                defs.insert(format!("{prefix}{name}"), d);
            }
        }
        rewrite_refs(&mut schema, &prefix);
        if let Some(m) = schema.as_object_mut() {
            m.remove("$schema");
        }
        defs.insert(key.clone(), schema);
        let plugin_names = vec![c.name.clone(), c.qualified_name()];
        names.extend(plugin_names.clone());
        branches.push(json!({
            "if": {"properties": {"plugin": {"enum": plugin_names}}, "required": ["plugin"]},
            "then": {
                "properties": {
                    "stage": {"const": c.stage.as_str()},
                    "with": {"$ref": format!("#/$defs/{key}")},
                },
            },
        }));
    }
    names.sort();
    names.dedup();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://segflow.dev/pipeline.schema.json",
        "title": "segflow pipeline",
        "description": "A segflow pipeline: steps moving through collect → clean → segment → position → evaluate.",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "steps"],
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9_-]+$", "description": "Pipeline name; runs go to runs/<name>/."},
            "description": {"type": "string", "description": "What the pipeline is for."},
            "plugins": {"type": "array", "items": {"type": "string"}, "description": "Extra plugin libraries or directories, relative to this file."},
            "steps": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["id", "stage", "plugin"],
                    "properties": {
                        "id": {"type": "string", "pattern": "^[a-z0-9_]+$", "description": "Unique step id; other steps refer to it in `needs`."},
                        "stage": {"enum": Stage::NAMES, "description": "collect, clean, segment, position or evaluate; edges go forward in this order."},
                        "plugin": {"anyOf": [{"enum": names}, {"type": "string"}], "description": "Component name, or `library/component` when two libraries export it."},
                        "needs": {
                            "description": "Upstream ports: `step` (its `main` port) or `step.port`.",
                            "anyOf": [
                                {"type": "string", "pattern": "^[a-z0-9_]+(\\.[a-z0-9_]+)?$"},
                                {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9_]+(\\.[a-z0-9_]+)?$"}},
                            ],
                        },
                        "with": {"type": "object", "description": "Component config; `${VAR}` reads an environment variable."},
                        "persist": {"type": "boolean", "default": true, "description": "Write the step's ports to the run directory (default). `false` keeps them in memory only: for raw personal data before `pseudonymize`, or large intermediate tables."},
                        "cache": {"type": "boolean", "default": true, "description": "Re-use this step's result from the step cache when nothing it depends on changed (default), and store it when it runs. `false` runs it every time. Collectors are cached only when they can fingerprint their source; `persist: false` steps are never stored."},
                        "isolation": {"enum": ["in_process", "process"], "default": "in_process", "description": "`process` runs the step's component in a child process of its own: a crash (segfault, abort, out of memory) fails only this step. `segflow run --isolate` does this for every step."},
                        "timeout": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|min|h)$", "description": "Wall-clock limit of the step (`30s`, `5m`, `1h`); the step fails when it is exceeded. Needs `isolation: process` (or `--isolate`)."},
                        "memory_limit": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(B|KiB|MiB|GiB|TiB|kB|KB|MB|GB|TB)$", "description": "Address-space limit of the step's process (`512MiB`, `2GiB`, at least 64MiB); the step fails when it is exceeded. Needs `isolation: process` (or `--isolate`)."},
                    },
                    "allOf": branches,
                },
            },
        },
        "$defs": defs,
    })
}

fn type_of(prop: &Value, defs: &Map<String, Value>) -> String {
    if let Some(r) = prop.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        if let Some(d) = defs.get(name) {
            return type_of(d, defs);
        }
        return name.to_string();
    }
    if let Some(e) = prop.get("enum").and_then(Value::as_array) {
        return e
            .iter()
            .map(|v| format!("`{}`", v.as_str().map_or(v.to_string(), str::to_string)))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    if let Some(c) = prop.get("const") {
        return format!("`{}`", c.as_str().map_or(c.to_string(), str::to_string));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = prop.get(key).and_then(Value::as_array) {
            return alts
                .iter()
                .map(|a| type_of(a, defs))
                .filter(|t| t != "null")
                .collect::<Vec<_>>()
                .join(" or ");
        }
    }
    match prop.get("type") {
        Some(Value::String(t)) if t == "array" => {
            let inner = prop
                .get("items")
                .map_or("any".to_string(), |i| type_of(i, defs));
            format!("list of {inner}")
        }
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_string(),
    }
}

/// The YAML reference (docs/reference.md), generated from the components' schemas.
pub fn markdown(reg: &Registry) -> String {
    let mut out = String::new();
    out.push_str("# YAML reference\n\n");
    out.push_str("<!-- Generated by `segflow schema --format markdown --out docs/reference.md`; do not edit by hand. -->\n\n");
    out.push_str("A pipeline file has `name` (required, `[a-z0-9_-]+`), `description`, `plugins` (extra library paths) and `steps` (required). ");
    out.push_str("Each step has `id` (`[a-z0-9_]+`, unique), `stage`, `plugin`, `needs` (`step` or `step.port`) and `with` (the component's config, below). ");
    out.push_str("Strings in `with` may use `${VAR}` or `${VAR:-default}` to read the environment; `$${` is a literal `${`.\n\n");
    for stage in Stage::ALL {
        let comps: Vec<&Component> = sorted_components(reg)
            .into_iter()
            .filter(|c| c.stage == stage)
            .collect();
        if comps.is_empty() {
            continue;
        }
        out.push_str(&format!("## {stage}\n\n"));
        for c in comps {
            out.push_str(&format!(
                "### `{}` ({} {})\n\n",
                c.name, c.library.name, c.version
            ));
            if !c.description.is_empty() {
                out.push_str(&format!("{}\n\n", c.description.trim()));
            }
            let ins = &c.ports.inputs;
            let inputs = match ins.max {
                Some(m) if m == ins.min => format!("{m}"),
                Some(m) => format!("{} to {m}", ins.min),
                None => format!("{} or more", ins.min),
            };
            out.push_str(&format!(
                "Inputs: {inputs}{}. ",
                if ins.doc.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", ins.doc)
                }
            ));
            let outs: Vec<String> = c
                .ports
                .outputs
                .iter()
                .map(|o| {
                    if o.doc.is_empty() {
                        format!("`{}`", o.name)
                    } else {
                        format!("`{}` ({})", o.name, o.doc)
                    }
                })
                .collect();
            out.push_str(&format!("Outputs: {}.\n\n", outs.join(", ")));
            let empty = Map::new();
            let defs = c
                .config_schema
                .get("$defs")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let required: Vec<&str> = c
                .config_schema
                .get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = c.config_schema.get("properties").and_then(Value::as_object) {
                out.push_str("| key | type | default | description |\n|---|---|---|---|\n");
                for (k, p) in props {
                    let default = match p.get("default") {
                        Some(d) => format!("`{d}`"),
                        None if required.contains(&k.as_str()) => "required".to_string(),
                        None => "—".to_string(),
                    };
                    let desc = p
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .replace('\n', " ")
                        .replace('|', "\\|");
                    out.push_str(&format!(
                        "| `{k}` | {} | {default} | {desc} |\n",
                        type_of(p, defs)
                    ));
                }
                out.push('\n');
            } else {
                out.push_str("No config.\n\n");
            }
        }
    }
    out
}
