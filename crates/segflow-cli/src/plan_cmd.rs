//! `segflow plan`: the execution plan as text, Graphviz dot, Mermaid or JSON.

use clap::ValueEnum;
use segflow_engine::validate::Plan;
use serde_json::json;

#[derive(Clone, Copy, ValueEnum)]
pub enum PlanFormat {
    Text,
    Dot,
    Mermaid,
    Json,
}

fn columns(schema: &arrow::datatypes::Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn print(plan: &Plan, format: PlanFormat) {
    match format {
        PlanFormat::Text => {
            println!(
                "pipeline {} — {} steps, {} layers",
                plan.spec.name,
                plan.steps.len(),
                plan.layers.len()
            );
            for (l, layer) in plan.layers.iter().enumerate() {
                println!("layer {}:", l + 1);
                for &i in layer {
                    let s = &plan.steps[i];
                    let needs: Vec<&str> = s.inputs.iter().map(|x| x.name.as_str()).collect();
                    println!(
                        "  {} [{}] {} {}{}",
                        s.spec.id,
                        s.spec.stage,
                        s.component.qualified_name(),
                        s.component.version,
                        if needs.is_empty() {
                            String::new()
                        } else {
                            format!(" <- {}", needs.join(", "))
                        }
                    );
                    for (port, schema) in &s.outputs {
                        println!("      {port}: {}", columns(schema));
                    }
                }
            }
        }
        PlanFormat::Dot => {
            println!(
                "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];",
                plan.spec.name
            );
            for s in &plan.steps {
                println!(
                    "  \"{}\" [label=\"{}\\n{} ({})\"];",
                    s.spec.id,
                    s.spec.id,
                    s.component.qualified_name(),
                    s.spec.stage
                );
            }
            for s in &plan.steps {
                for inp in &s.inputs {
                    println!(
                        "  \"{}\" -> \"{}\" [label=\"{}\"];",
                        plan.steps[inp.producer].spec.id, s.spec.id, inp.port
                    );
                }
            }
            println!("}}");
        }
        PlanFormat::Mermaid => {
            println!("flowchart LR");
            for s in &plan.steps {
                println!(
                    "  {}[\"{}<br/>{} ({})\"]",
                    s.spec.id,
                    s.spec.id,
                    s.component.qualified_name(),
                    s.spec.stage
                );
            }
            for s in &plan.steps {
                for inp in &s.inputs {
                    println!(
                        "  {} -->|{}| {}",
                        plan.steps[inp.producer].spec.id, inp.port, s.spec.id
                    );
                }
            }
        }
        PlanFormat::Json => {
            let steps: Vec<_> = plan
                .steps
                .iter()
                .map(|s| {
                    json!({
                        "id": s.spec.id,
                        "stage": s.spec.stage,
                        "component": s.component.qualified_name(),
                        "version": s.component.version,
                        "needs": s.inputs.iter().map(|i| json!({"name": i.name, "step": plan.steps[i.producer].spec.id, "port": i.port})).collect::<Vec<_>>(),
                        "outputs": s.outputs.iter().map(|(p, schema)| json!({
                            "port": p,
                            "columns": schema.fields().iter().map(|f| json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable()})).collect::<Vec<_>>(),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let layers: Vec<Vec<&str>> = plan
                .layers
                .iter()
                .map(|l| l.iter().map(|&i| plan.steps[i].spec.id.as_str()).collect())
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"pipeline": plan.spec.name, "layers": layers, "steps": steps})
                )
                .unwrap_or_default()
            );
        }
    }
}
