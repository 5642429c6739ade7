//! `segflow plugins list|info`.

use crate::schema_cmd;
use crate::{load_registry, Failure, Globals, EXIT_INVALID};
use segflow_engine::diag::{closest, Diagnostic};
use segflow_engine::host::Resolution;
use segflow_engine::spec::Stage;
use serde_json::json;

pub fn list(globals: &Globals, as_json: bool) -> Result<u8, Failure> {
    let reg = load_registry(globals, &[])?;
    if as_json {
        let libs: Vec<_> = reg
            .libraries
            .iter()
            .map(|l| {
                json!({
                    "name": l.name, "version": l.version, "sdk_version": l.sdk_version,
                    "path": l.path.display().to_string(), "sha256": l.sha256(),
                    "components": reg.components.iter().filter(|c| std::sync::Arc::ptr_eq(&c.library, l)).map(|c| json!({
                        "name": c.name, "stage": c.stage, "version": c.version, "description": c.description,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let refused: Vec<_> = reg.refused.iter().filter(|r| !r.not_a_plugin).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"libraries": libs, "refused": refused}))
                .unwrap_or_default()
        );
        return Ok(0);
    }
    if reg.libraries.is_empty() {
        println!("No plugin libraries found. segflow looks next to its executable, in SEGFLOW_PLUGIN_PATH and in --plugin-path.");
    }
    for l in &reg.libraries {
        println!(
            "{} {}  ({}, sha256 {}…)",
            l.name,
            l.version,
            l.path.display(),
            &l.sha256()[..12]
        );
        for stage in Stage::ALL {
            let names: Vec<&str> = reg
                .components
                .iter()
                .filter(|c| std::sync::Arc::ptr_eq(&c.library, l) && c.stage == stage)
                .map(|c| c.name.as_str())
                .collect();
            if !names.is_empty() {
                println!("  {:<9} {}", stage.as_str(), names.join(", "));
            }
        }
    }
    for r in reg.refused.iter().filter(|r| !r.not_a_plugin) {
        println!("refused {}: {}", r.path.display(), r.reason);
    }
    Ok(0)
}

pub fn info(globals: &Globals, name: &str, as_json: bool) -> Result<u8, Failure> {
    let reg = load_registry(globals, &[])?;
    let c = match reg.resolve(name) {
        Resolution::Found(c) => c,
        Resolution::Missing => {
            let names: Vec<String> = reg.components.iter().map(|c| c.name.clone()).collect();
            let near = closest(name, names.iter().map(String::as_str), 3);
            let help = if near.is_empty() {
                "no plugin libraries are loaded; add a directory with --plugin-path DIR".to_string()
            } else {
                format!(
                    "close matches: {}; `segflow plugins list` shows them all",
                    near.join(", ")
                )
            };
            return Err(Failure::one(
                EXIT_INVALID,
                Diagnostic::new(
                    "segflow::unknown-plugin",
                    format!("no loaded library provides a component `{name}`"),
                )
                .help(help),
            ));
        }
        Resolution::Ambiguous(list) => {
            let q: Vec<String> = list.iter().map(|c| c.qualified_name()).collect();
            return Err(Failure::one(
                EXIT_INVALID,
                Diagnostic::new(
                    "segflow::ambiguous-plugin",
                    format!("`{name}` is exported by several libraries"),
                )
                .help(format!("ask for one of: {}", q.join(", "))),
            ));
        }
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "name": c.name, "library": c.library.name, "library_version": c.library.version,
                "path": c.library.path.display().to_string(), "stage": c.stage, "version": c.version,
                "description": c.description, "ports": c.ports, "config_schema": c.config_schema,
            }))
            .unwrap_or_default()
        );
        return Ok(0);
    }
    // Reuse the reference renderer for one component.
    let mut single = segflow_engine::host::Registry::default();
    single.components.push(c.clone());
    single.libraries.push(c.library.clone());
    let md = schema_cmd::markdown(&single);
    let body = md.split_once("### ").map_or(md.as_str(), |(_, b)| b);
    println!(
        "{} — {} stage, library {} {} ({})\n",
        c.name,
        c.stage,
        c.library.name,
        c.library.version,
        c.library.path.display()
    );
    println!(
        "{}",
        body.split_once('\n').map_or(body, |(_, rest)| rest).trim()
    );
    Ok(0)
}
