//! Turning a parsed pipeline into an executable [`Plan`]: resolving components,
//! checking every rule of a valid pipeline, and inferring schemas through the graph by
//! calling each component's `plan` — all before any data is read.

use crate::diag::{closest, did_you_mean, Diagnostic, Loc};
use crate::graph::StepGraph;
use crate::host::{CallOptions, Component, Redactor, Registry, Resolution};
use crate::spec::{PipelineSpec, StepSpec};
use arrow::datatypes::SchemaRef;
use std::collections::HashMap;
use std::sync::Arc;

/// One input edge of a step.
#[derive(Debug, Clone)]
pub struct PlannedInput {
    /// As written in `needs:`; the name the component sees.
    pub name: String,
    pub producer: usize,
    pub port: String,
}

/// A step ready to run.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    pub spec: StepSpec,
    pub component: Arc<Component>,
    pub inputs: Vec<PlannedInput>,
    /// Output ports and their schemas, from the component's `plan`.
    pub outputs: Vec<(String, SchemaRef)>,
}

/// A validated pipeline: the steps, their components and schemas, and the layers in
/// which they can run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub spec: PipelineSpec,
    pub steps: Vec<PlannedStep>,
    pub layers: Vec<Vec<usize>>,
    pub registry: Arc<Registry>,
}

impl Plan {
    /// How many input edges read each `(step, port)`.
    pub fn consumers(&self) -> HashMap<(usize, String), usize> {
        let mut m = HashMap::new();
        for s in &self.steps {
            for i in &s.inputs {
                *m.entry((i.producer, i.port.clone())).or_insert(0) += 1;
            }
        }
        m
    }

    pub fn graph(&self) -> StepGraph {
        let edges: Vec<(usize, usize, usize)> = self
            .steps
            .iter()
            .enumerate()
            .flat_map(|(c, s)| {
                s.inputs
                    .iter()
                    .enumerate()
                    .map(move |(k, i)| (i.producer, c, k))
            })
            .collect();
        StepGraph::new(self.steps.len(), &edges)
    }
}

fn component_list(reg: &Registry) -> String {
    if reg.libraries.is_empty() {
        return "no plugin libraries were found".to_string();
    }
    reg.libraries
        .iter()
        .map(|l| format!("{} {} ({})", l.name, l.version, l.path.display()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Validate `spec` against the components in `registry` and infer every schema.
pub fn plan(spec: PipelineSpec, registry: Arc<Registry>) -> Result<Plan, Vec<Diagnostic>> {
    let src = spec.source.clone();
    let mut diags: Vec<Diagnostic> = Vec::new();

    // Unique ids.
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    for (i, s) in spec.steps.iter().enumerate() {
        if let Some(&first) = index_of.get(s.id.as_str()) {
            diags.push(
                Diagnostic::new(
                    "segflow::duplicate-id",
                    format!("step id `{}` is used twice", s.id),
                )
                .at(&src, s.id_loc, "second use")
                .label(spec.steps[first].id_loc, "first use")
                .help("give every step its own id; `needs:` refers to steps by id"),
            );
        } else {
            index_of.insert(&s.id, i);
        }
    }

    // Components.
    let mut components: Vec<Option<Arc<Component>>> = Vec::new();
    for s in &spec.steps {
        let resolved = match registry.resolve(&s.plugin) {
            Resolution::Found(c) => Some(c),
            Resolution::Missing => {
                let names: Vec<String> =
                    registry.components.iter().map(|c| c.name.clone()).collect();
                let near = closest(
                    s.plugin.rsplit('/').next().unwrap_or(&s.plugin),
                    names.iter().map(String::as_str),
                    3,
                );
                let mut help = String::new();
                if let Some(m) = did_you_mean(&s.plugin, names.iter().map(String::as_str)) {
                    help.push_str(&format!("did you mean `{m}`? "));
                } else if !near.is_empty() {
                    help.push_str(&format!("close matches: {}. ", near.join(", ")));
                }
                help.push_str(&format!("Loaded libraries: {}.", component_list(&registry)));
                let refused: Vec<String> = registry
                    .refused
                    .iter()
                    .filter(|r| !r.not_a_plugin)
                    .map(|r| format!("{} ({})", r.path.display(), r.reason))
                    .collect();
                if !refused.is_empty() {
                    help.push_str(&format!(" Refused: {}.", refused.join("; ")));
                }
                help.push_str(" `segflow plugins list` shows every component; add libraries with --plugin-path DIR.");
                diags.push(
                    Diagnostic::new(
                        "segflow::unknown-plugin",
                        format!(
                            "step `{}` uses plugin `{}`, which no loaded library provides",
                            s.id, s.plugin
                        ),
                    )
                    .at(&src, s.plugin_loc, "unknown plugin")
                    .help(help),
                );
                None
            }
            Resolution::Ambiguous(list) => {
                let names: Vec<String> = list
                    .iter()
                    .map(|c| format!("`{}` ({})", c.qualified_name(), c.library.path.display()))
                    .collect();
                diags.push(
                    Diagnostic::new(
                        "segflow::ambiguous-plugin",
                        format!(
                            "plugin `{}` of step `{}` is exported by more than one library",
                            s.plugin, s.id
                        ),
                    )
                    .at(&src, s.plugin_loc, "ambiguous")
                    .help(format!(
                        "qualify it as `library/component`: {}",
                        names.join(", ")
                    )),
                );
                None
            }
        };
        if let Some(c) = &resolved {
            if c.stage != s.stage {
                diags.push(
                    Diagnostic::new(
                        "segflow::wrong-stage",
                        format!(
                            "`{}` is a {} component, but step `{}` is in stage {}",
                            c.qualified_name(),
                            c.stage,
                            s.id,
                            s.stage
                        ),
                    )
                    .at(&src, s.stage_loc, format!("should be `{}`", c.stage))
                    .label(s.plugin_loc, format!("registered for stage {}", c.stage))
                    .help(format!(
                        "set `stage: {}`, or pick a {} component",
                        c.stage, s.stage
                    )),
                );
            }
        }
        components.push(resolved);
    }

    // Edges.
    let mut edges = Vec::new();
    let mut inputs: Vec<Vec<PlannedInput>> = vec![Vec::new(); spec.steps.len()];
    for (c, s) in spec.steps.iter().enumerate() {
        for (k, need) in s.needs.iter().enumerate() {
            match index_of.get(need.step.as_str()) {
                None => {
                    let ids: Vec<&str> = spec.steps.iter().map(|x| x.id.as_str()).collect();
                    let help = match did_you_mean(&need.step, ids.iter().copied()) {
                        Some(m) => format!("did you mean `{m}`? The steps are: {}", ids.join(", ")),
                        None => format!("the steps are: {}", ids.join(", ")),
                    };
                    diags.push(
                        Diagnostic::new(
                            "segflow::missing-step",
                            format!(
                                "step `{}` needs `{}`, but there is no step `{}`",
                                s.id, need.text, need.step
                            ),
                        )
                        .at(&src, need.loc, "no such step")
                        .help(help),
                    );
                }
                Some(&p) => {
                    edges.push((p, c, k));
                    inputs[c].push(PlannedInput {
                        name: need.text.clone(),
                        producer: p,
                        port: need.port_or_main().to_string(),
                    });
                    let ps = &spec.steps[p];
                    if ps.stage > s.stage {
                        diags.push(
                            Diagnostic::new(
                                "segflow::backwards-edge",
                                format!("step `{}` ({}) needs `{}` ({}), but edges must go forward through collect → clean → segment → position → evaluate", s.id, s.stage, ps.id, ps.stage),
                            )
                            .at(&src, need.loc, "backwards edge")
                            .label(ps.stage_loc, format!("`{}` is in stage {}", ps.id, ps.stage))
                            .help("move the step to a later stage, or reorganise the pipeline so data flows forward"),
                        );
                    }
                }
            }
        }
    }
    let graph = StepGraph::new(spec.steps.len(), &edges);
    let cycles = graph.cycles();
    for cycle in &cycles {
        let names: Vec<&str> = cycle.iter().map(|&i| spec.steps[i].id.as_str()).collect();
        let path = format!("{} → {}", names.join(" → "), names[0]);
        let mut d = Diagnostic::new("segflow::cycle", format!("steps form a cycle: {path}"))
            .help("a pipeline is a DAG: remove one of these `needs` entries to break the cycle");
        // Label the `needs` entry that closes each hop.
        for (j, &consumer) in cycle.iter().enumerate() {
            let producer = cycle[(j + cycle.len() - 1) % cycle.len()];
            let pid = &spec.steps[producer].id;
            if let Some(n) = spec.steps[consumer].needs.iter().find(|n| &n.step == pid) {
                let label = format!("`{}` needs `{}`", spec.steps[consumer].id, pid);
                d = if d.labels.is_empty() {
                    d.at(&src, n.loc, label)
                } else {
                    d.label(n.loc, label)
                };
            }
        }
        diags.push(d);
    }

    // Config against each component's JSON Schema, and input counts.
    for (i, s) in spec.steps.iter().enumerate() {
        let Some(c) = &components[i] else { continue };
        let n = s.needs.len();
        let ports = &c.ports.inputs;
        if n < ports.min || ports.max.is_some_and(|m| n > m) {
            let want = match ports.max {
                Some(m) if m == ports.min => format!("exactly {m}"),
                Some(m) => format!("{} to {m}", ports.min),
                None => format!("at least {}", ports.min),
            };
            let loc = if s.needs.is_empty() {
                s.plugin_loc
            } else {
                spec.key_loc(&format!("/steps/{}/needs", s.index))
            };
            let doc = if ports.inputs_doc_is_empty() {
                String::new()
            } else {
                format!(" ({})", ports.doc)
            };
            diags.push(
                Diagnostic::new(
                    "segflow::input-count",
                    format!(
                        "`{}` takes {want} input(s){doc}, but step `{}` gives it {n}",
                        c.qualified_name(),
                        s.id
                    ),
                )
                .at(&src, loc, "here")
                .help(if n < ports.min {
                    "list the upstream step(s) in `needs:`".to_string()
                } else {
                    "remove the extra `needs:` entries".to_string()
                }),
            );
        }
        diags.extend(check_config(&spec, s, c));
    }
    if !diags.is_empty() {
        return Err(diags);
    }

    // Schema inference, in topological order.
    let layers = graph.layers();
    let mut outputs: Vec<Option<Vec<(String, SchemaRef)>>> = vec![None; spec.steps.len()];
    let redact = Arc::new(Redactor::new(spec.secrets()));
    for layer in &layers {
        for &i in layer {
            let s = &spec.steps[i];
            let c = components[i].as_ref().expect("resolved above");
            let mut in_schemas = Vec::new();
            let mut upstream_ok = true;
            for (k, inp) in inputs[i].iter().enumerate() {
                let Some(prod) = &outputs[inp.producer] else {
                    upstream_ok = false;
                    continue;
                };
                match prod.iter().find(|(n, _)| *n == inp.port) {
                    Some((_, schema)) => in_schemas.push((inp.name.clone(), schema.clone())),
                    None => {
                        upstream_ok = false;
                        let pstep = &spec.steps[inp.producer];
                        let have: Vec<&str> = prod.iter().map(|(n, _)| n.as_str()).collect();
                        let help = match did_you_mean(&inp.port, have.iter().copied()) {
                            Some(m) => format!(
                                "did you mean `{}.{m}`? `{}` has ports: {}",
                                pstep.id,
                                pstep.id,
                                have.join(", ")
                            ),
                            None => format!("`{}` has ports: {}", pstep.id, have.join(", ")),
                        };
                        diags.push(
                            Diagnostic::new(
                                "segflow::missing-port",
                                format!(
                                    "step `{}` needs `{}`, but step `{}` has no port `{}`",
                                    s.id, inp.name, pstep.id, inp.port
                                ),
                            )
                            .at(&src, s.needs[k].loc, "no such port")
                            .help(help),
                        );
                    }
                }
            }
            if !upstream_ok {
                continue;
            }
            let mut opts = CallOptions::new(&s.id);
            opts.redact = redact.clone();
            match c.plan(&opts, &s.with, &in_schemas) {
                Ok(outs) => outputs[i] = Some(outs),
                Err(e) => {
                    let (loc, label) = match &e.field {
                        Some(f) => (config_loc(&spec, s, f), format!("`{f}`")),
                        None => (s.plugin_loc, "this component".to_string()),
                    };
                    let code = if e.panicked {
                        "segflow::plugin-panic"
                    } else {
                        "segflow::plan"
                    };
                    diags.push(
                        Diagnostic::new(code, format!("step `{}` ({}) cannot run as configured: {}", s.id, c.qualified_name(), e.message))
                            .at(&src, loc, label)
                            .help(format!("check the step's `with:` config and the columns its inputs provide; `segflow plugins info {}` documents the config", c.name)),
                    );
                }
            }
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let steps = spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| PlannedStep {
            spec: s.clone(),
            component: components[i].clone().expect("resolved"),
            inputs: inputs[i].clone(),
            outputs: outputs[i].clone().expect("planned"),
        })
        .collect();
    Ok(Plan {
        spec,
        steps,
        layers,
        registry,
    })
}

trait InputsDocExt {
    fn inputs_doc_is_empty(&self) -> bool;
}
impl InputsDocExt for crate::host::InputsDecl {
    fn inputs_doc_is_empty(&self) -> bool {
        self.doc.is_empty()
    }
}

/// Location of config field `field` (dotted or JSON-pointer path) of step `s`.
fn config_loc(spec: &PipelineSpec, s: &StepSpec, field: &str) -> Loc {
    let rel = field.trim_start_matches('/').replace(['.', '/'], "/");
    let path = format!("/steps/{}/with/{}", s.index, rel);
    if spec.spans.value(&path).is_some() {
        spec.loc(&path)
    } else if spec
        .spans
        .value(&format!("/steps/{}/with", s.index))
        .is_some()
    {
        spec.key_loc(&format!("/steps/{}/with", s.index))
    } else {
        s.plugin_loc
    }
}

/// One config error, reduced to what the diagnostic needs.
struct ConfigIssue {
    /// JSON pointer into `with:`.
    ptr: String,
    /// Keys the schema does not allow, for an additional-properties error.
    unexpected: Option<Vec<String>>,
    message: String,
}

/// The errors worth showing for `err`. An optional field's schema is `anyOf: [the
/// type, null]`, so a bad value there fails as "not valid under any of the schemas";
/// when exactly one alternative has the value's type, its own errors (a minimum, an
/// unknown key, ...) say what is actually wrong.
fn config_issues(err: &jsonschema::ValidationError<'_>, out: &mut Vec<ConfigIssue>) {
    use jsonschema::error::ValidationErrorKind as Kind;
    let ptr = err.instance_path().as_str().to_string();
    match err.kind() {
        Kind::AnyOf { context } | Kind::OneOfNotValid { context } => {
            let typed: Vec<&Vec<jsonschema::ValidationError<'static>>> = context
                .iter()
                .filter(|branch| {
                    !branch.iter().any(|e| {
                        matches!(e.kind(), Kind::Type { .. })
                            && e.instance_path().as_str() == ptr.as_str()
                    })
                })
                .collect();
            if let [branch] = typed.as_slice() {
                if !branch.is_empty() {
                    for e in branch.iter() {
                        config_issues(e, out);
                    }
                    return;
                }
            }
        }
        Kind::AdditionalProperties { unexpected } => {
            out.push(ConfigIssue {
                ptr,
                unexpected: Some(unexpected.clone()),
                message: err.to_string(),
            });
            return;
        }
        _ => {}
    }
    out.push(ConfigIssue {
        ptr,
        unexpected: None,
        message: err.to_string(),
    });
}

fn check_config(spec: &PipelineSpec, s: &StepSpec, c: &Component) -> Vec<Diagnostic> {
    let src = &spec.source;
    let validator = match jsonschema::validator_for(&c.config_schema) {
        Ok(v) => v,
        Err(e) => {
            return vec![Diagnostic::new(
                "segflow::plugin-schema",
                format!(
                    "`{}` ships a config JSON Schema that cannot be compiled: {e}",
                    c.qualified_name()
                ),
            )
            .at(src, s.plugin_loc, "this component")
            .help("this is a bug in the plugin library; report it to its vendor")];
        }
    };
    let top_props: Vec<String> = c
        .config_schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    // The expanded config is what the component gets, so that is what is checked;
    // messages are redacted in case they echo a value read from the environment.
    let mut issues = Vec::new();
    for err in validator.iter_errors(&s.with) {
        config_issues(&err, &mut issues);
    }
    for issue in issues {
        let ConfigIssue {
            ptr,
            unexpected,
            message,
        } = issue;
        let shown = if ptr.is_empty() {
            "with".to_string()
        } else {
            format!("with{}", ptr.replace('/', "."))
        };
        let within = if ptr.is_empty() {
            String::new()
        } else {
            format!(", under `{shown}`")
        };
        if let Some(unexpected) = unexpected {
            for key in &unexpected {
                let path = format!("/steps/{}/with{}/{}", s.index, ptr, key);
                let loc = spec.key_loc(&path);
                let mut d = Diagnostic::new(
                    "segflow::unknown-config-key",
                    format!(
                        "`{}` has no config key `{key}` (step `{}`{within})",
                        c.qualified_name(),
                        s.id
                    ),
                )
                .at(src, loc, "unknown key");
                let props: Vec<&str> = top_props.iter().map(String::as_str).collect();
                d = d.help(
                    match (ptr.is_empty(), did_you_mean(key, props.iter().copied())) {
                        (true, Some(m)) => {
                            format!("did you mean `{m}`? Keys: {}", props.join(", "))
                        }
                        (true, None) => format!("the keys it accepts are: {}", props.join(", ")),
                        _ => format!("see `segflow plugins info {}` for the config", c.name),
                    },
                );
                out.push(d);
            }
            continue;
        }
        let path = format!("/steps/{}/with{}", s.index, ptr);
        let loc = if ptr.is_empty() {
            spec.key_loc(&format!("/steps/{}/with", s.index))
        } else {
            spec.loc(&path)
        };
        let loc = if spec
            .spans
            .value(&format!("/steps/{}/with", s.index))
            .is_none()
        {
            s.plugin_loc
        } else {
            loc
        };
        let message = Redactor::new(s.secrets.clone()).apply(&message);
        let set_by = s
            .overridden
            .iter()
            .find(|(p, _)| !ptr.is_empty() && (ptr == *p || ptr.starts_with(&format!("{p}/"))));
        let d = Diagnostic::new(
            "segflow::config",
            format!(
                "step `{}`: `{shown}` is invalid for `{}`: {message}",
                s.id,
                c.qualified_name()
            ),
        )
        .help(format!(
            "`segflow plugins info {}` documents every config key",
            c.name
        ));
        out.push(match set_by {
            Some((_, flag)) => {
                let mut d = d;
                d.message = format!("{} (the value comes from `--set {flag}`)", d.message);
                d
            }
            None => d.at(src, loc, "invalid value"),
        });
    }
    out
}
