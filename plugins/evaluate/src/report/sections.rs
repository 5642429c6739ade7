//! The report's sections. Each renders from whatever inputs it finds and returns
//! `None` when it has none, so the page lists it under "Not in this run" instead.

use super::charts::{self, Bar, Bubble, Cell, GridCell, Heatmap, Ids};
use super::esc::{duration, esc, int, num, opt, pct, truncate};
use super::read::{group, text_type, Data, Frame, Kind, Run, Sizes, StepInfo};
use crate::inputs::is_numeric;
use schemars::JsonSchema;
use segflow_sdk::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write;

/// A section of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SectionId {
    /// The pipeline graph with each step's status and time (from the run description).
    Pipeline,
    /// Rows in and out of the collect and clean steps, quarantine counts and reasons,
    /// and `quality` profiles (from the run description).
    Quality,
    /// Customers per segment (from `assignments`, else `profiles`, an `rfm` `model` or a
    /// `map`).
    Sizes,
    /// The profile heatmap: each segment's feature index against the base (`profiles`).
    Profiles,
    /// The RFM grid, R score × FM score (`rfm`'s `model`, and its `assignments` for the
    /// customers per cell).
    Rfm,
    /// The positioning map (`map`'s `map` and `loadings`).
    Map,
    /// The target ranking (`target`'s `targets`).
    Targets,
    /// Customer lifetime value by segment (`clv`'s `segments`).
    Clv,
    /// Segmentation-level metrics and per-segment stability (`metrics`).
    Validity,
    /// Other per-segment metrics, e.g. `kpis` (`metrics`).
    Kpis,
    /// ARI / NMI between segmentations and their crosstab (`compare`'s `pairs`,
    /// `crosstab`).
    Comparison,
    /// Migration between runs, size changes and feature drift (`drift`'s `migration`,
    /// `sizes`, `features`).
    Migration,
    /// Persona cards (`persona`'s `personas`).
    Personas,
    /// The playbook: an action per segment (`playbook`'s `playbook`).
    Playbook,
    /// Rules that describe each segment (`explain`'s `rules`).
    Rules,
}

impl SectionId {
    pub const ALL: [SectionId; 15] = [
        SectionId::Pipeline,
        SectionId::Quality,
        SectionId::Sizes,
        SectionId::Profiles,
        SectionId::Rfm,
        SectionId::Map,
        SectionId::Targets,
        SectionId::Clv,
        SectionId::Validity,
        SectionId::Kpis,
        SectionId::Comparison,
        SectionId::Migration,
        SectionId::Personas,
        SectionId::Playbook,
        SectionId::Rules,
    ];

    /// The anchor id (also the config name).
    pub fn id(self) -> &'static str {
        match self {
            SectionId::Pipeline => "pipeline",
            SectionId::Quality => "quality",
            SectionId::Sizes => "sizes",
            SectionId::Profiles => "profiles",
            SectionId::Rfm => "rfm",
            SectionId::Map => "map",
            SectionId::Targets => "targets",
            SectionId::Clv => "clv",
            SectionId::Validity => "validity",
            SectionId::Kpis => "kpis",
            SectionId::Comparison => "comparison",
            SectionId::Migration => "migration",
            SectionId::Personas => "personas",
            SectionId::Playbook => "playbook",
            SectionId::Rules => "rules",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            SectionId::Pipeline => "Pipeline",
            SectionId::Quality => "Data quality and quarantine",
            SectionId::Sizes => "Segment sizes",
            SectionId::Profiles => "Profile heatmap",
            SectionId::Rfm => "RFM grid",
            SectionId::Map => "Positioning map",
            SectionId::Targets => "Target segments",
            SectionId::Clv => "Customer lifetime value by segment",
            SectionId::Validity => "Validity and stability",
            SectionId::Kpis => "Segment KPIs",
            SectionId::Comparison => "Comparison of segmentations",
            SectionId::Migration => "Migration and drift",
            SectionId::Personas => "Personas",
            SectionId::Playbook => "Playbook",
            SectionId::Rules => "Segment rules",
        }
    }

    /// What would put the section in the report.
    pub fn needs(self) -> &'static str {
        match self {
            SectionId::Pipeline => {
                "the run description, which the engine gives every evaluate step"
            }
            SectionId::Quality => "collect or clean steps in the run",
            SectionId::Sizes => "a segmenter's `assignments` (or a `profile` step's `profiles`)",
            SectionId::Profiles => "a `profile` step's `profiles` port",
            SectionId::Rfm => "an `rfm` step's `model` (or its `assignments`)",
            SectionId::Map => "a `map` step's `map` port (and `loadings` to name the axes)",
            SectionId::Targets => "a `target` step's `targets` port",
            SectionId::Clv => "a `clv` step's `segments` port",
            SectionId::Validity => "the `metrics` of a `validity` or `stability` step",
            SectionId::Kpis => "per-segment `metrics`, e.g. of a `kpis` step",
            SectionId::Comparison => "a `compare` step's `pairs` or `crosstab` port",
            SectionId::Migration => "a `drift` step's `migration`, `sizes` or `features` port",
            SectionId::Personas => "a `persona` step's `personas` port",
            SectionId::Playbook => "a `playbook` step's `playbook` port",
            SectionId::Rules => "an `explain` step's `rules` port",
        }
    }

    /// How to read the section, one or two sentences under its heading.
    pub fn lead(self) -> &'static str {
        match self {
            SectionId::Pipeline => "Each box is a step, coloured by stage and outlined by status (green succeeded, red failed, grey dashed skipped, blue dashed still running), with its time. Arrows run from a step to the steps that read its output.",
            SectionId::Quality => "How many rows each collect and clean step read, kept and set aside. Quarantined rows are not lost: they are in the step's <code>quarantine</code> port with a <code>reason</code>.",
            SectionId::Sizes => "Customers in each segment. Very small segments are hard to act on; one very large segment often means the segmentation does not separate much.",
            SectionId::Profiles => "Each cell is a segment's average of a feature as an index against all customers: 100 is average, 200 twice the average, 50 half. Red is above the base, blue below.",
            SectionId::Rfm => "Customers placed by recency score (left to right: longer ago to recent) and the mean of their frequency and monetary scores (bottom to top). Each colour is a segment; small numbers are customers per cell.",
            SectionId::Map => "Segments placed by two axes; bubble area is customers, colour the value column (dark low, yellow high). Segments close together are alike on the mapped features.",
            SectionId::Targets => "Segments ranked by a weighted score of value, size and reach; the chosen ones are the ones to go after.",
            SectionId::Clv => "Expected customer lifetime value per segment: the total (bars) and the mean per customer.",
            SectionId::Validity => "How well the segments separate (silhouette, Calinski-Harabasz, Davies-Bouldin, dispersion) and how stable they are when re-fitted on resampled customers (ARI, Jaccard).",
            SectionId::Kpis => "Per-segment figures from the evaluators; the small bars compare segments within a column.",
            SectionId::Comparison => "How much two segmentations agree (adjusted Rand index and normalised mutual information: 1 identical, 0 no more than chance), and where their segments overlap.",
            SectionId::Migration => "Where last run's customers are now (rows: previous segment, columns: current segment; shade: share of the row), how segment sizes changed, and which features drifted.",
            SectionId::Personas => "A readable name and description per segment, from what sets it apart from the base.",
            SectionId::Playbook => "What to do with each segment, and why.",
            SectionId::Rules => "Simple rules that describe who is in each segment, with how often they are right (precision) and how much of the segment they cover (recall).",
        }
    }

    /// The section's body, or `None` when the run has nothing for it.
    pub fn render(self, cx: &mut Cx) -> Result<Option<String>> {
        match self {
            SectionId::Pipeline => pipeline(cx),
            SectionId::Quality => quality(cx),
            SectionId::Sizes => sizes(cx),
            SectionId::Profiles => profiles(cx),
            SectionId::Rfm => rfm(cx),
            SectionId::Map => map(cx),
            SectionId::Targets => targets(cx),
            SectionId::Clv => clv(cx),
            SectionId::Validity => validity(cx),
            SectionId::Kpis => kpis(cx),
            SectionId::Comparison => comparison(cx),
            SectionId::Migration => migration(cx),
            SectionId::Personas => Ok(personas(cx)),
            SectionId::Playbook => Ok(playbook(cx)),
            SectionId::Rules => Ok(rules(cx)),
        }
    }
}

/// What every section reads.
pub struct Cx<'a> {
    pub data: &'a Data,
    pub max_rows: usize,
    pub ids: Ids,
}

// ---------------------------------------------------------------------------------
// tables

/// An HTML table built row by row; cells are HTML (escape text with [`esc`]).
pub struct Tbl {
    head: Vec<(String, bool)>,
    rows: Vec<Vec<String>>,
    class: Vec<Option<&'static str>>,
}

impl Tbl {
    /// Columns: `(title, numeric)`.
    pub fn new(head: &[(&str, bool)]) -> Tbl {
        Tbl {
            head: head.iter().map(|(h, n)| (h.to_string(), *n)).collect(),
            rows: Vec::new(),
            class: vec![None; head.len()],
        }
    }

    pub fn with_head(head: Vec<(String, bool)>) -> Tbl {
        let n = head.len();
        Tbl {
            head,
            rows: Vec::new(),
            class: vec![None; n],
        }
    }

    /// Give column `i` a class (e.g. `wrap-text`).
    pub fn class(mut self, i: usize, class: &'static str) -> Tbl {
        if let Some(c) = self.class.get_mut(i) {
            *c = Some(class);
        }
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table, at most `max_rows` rows, in a horizontally scrolling box.
    pub fn html(&self, max_rows: usize) -> String {
        let mut s = String::from("<div class=\"scroll\"><table><thead><tr>");
        for (h, n) in &self.head {
            let _ = write!(
                s,
                "<th{} scope=\"col\">{}</th>",
                if *n { " class=\"n\"" } else { "" },
                esc(h)
            );
        }
        s.push_str("</tr></thead><tbody>");
        for row in self.rows.iter().take(max_rows) {
            s.push_str("<tr>");
            for (j, c) in row.iter().enumerate() {
                let numeric = self.head.get(j).is_some_and(|h| h.1);
                match (numeric, self.class.get(j).copied().flatten()) {
                    (true, _) => s.push_str("<td class=\"n\">"),
                    (false, Some(cl)) => {
                        let _ = write!(s, "<td class=\"{cl}\">");
                    }
                    (false, None) => s.push_str("<td>"),
                }
                s.push_str(c);
                s.push_str("</td>");
            }
            s.push_str("</tr>");
        }
        s.push_str("</tbody></table></div>");
        if self.rows.len() > max_rows {
            let _ = write!(
                s,
                "<p class=\"more\">{} more rows not shown (the step's <code>max_rows</code> is {}); the full table is in the run directory.</p>",
                int((self.rows.len() - max_rows) as i64),
                max_rows
            );
        }
        s
    }
}

/// A chart's numbers, folded under it (and unfolded for print).
fn details(summary: &str, inner: &str) -> String {
    format!(
        "<details class=\"numbers\"><summary>{}</summary>{inner}</details>",
        esc(summary)
    )
}

fn figure(svg: &str, wide: bool, caption: Option<&str>) -> String {
    let mut s = format!(
        "<figure><div class=\"scroll{}\">{svg}</div>",
        if wide { " wide" } else { "" }
    );
    if let Some(c) = caption {
        let _ = write!(s, "<figcaption>{c}</figcaption>");
    }
    s.push_str("</figure>");
    s
}

fn h3(s: &mut String, text: &str) {
    let _ = write!(s, "<h3>{}</h3>", esc(text));
}

/// A table of every column of `frame`'s `rows` (numbers formatted, text escaped).
fn frame_table(frame: &Frame, rows: &[usize], skip: &[&str]) -> Tbl {
    let schema = frame.batch.schema();
    let cols: Vec<(String, bool)> = schema
        .fields()
        .iter()
        .filter(|f| !skip.contains(&f.name().as_str()))
        .map(|f| (f.name().clone(), is_numeric(f.data_type())))
        .collect();
    let values: Vec<Vec<String>> = cols
        .iter()
        .map(|(name, numeric)| {
            if *numeric {
                let v = frame.f64(name);
                let integer = schema
                    .field_with_name(name)
                    .map(|f| f.data_type().is_integer())
                    .unwrap_or(false);
                v.into_iter()
                    .map(|x| match x {
                        Some(x) if integer => int(x as i64),
                        other => opt(other),
                    })
                    .collect()
            } else {
                frame
                    .text(name)
                    .into_iter()
                    .map(|t| esc(&t.unwrap_or_default()))
                    .collect()
            }
        })
        .collect();
    let mut t = Tbl::with_head(cols);
    for &r in rows {
        t.row(values.iter().map(|c| c[r].clone()).collect());
    }
    t
}

/// A value with a small bar scaled to `max` (the largest |value| of its column).
fn bar_cell(v: Option<f64>, max: f64, text: String) -> String {
    match v {
        Some(x) if max > 0.0 && x.is_finite() => {
            let w = (64.0 * x.abs() / max).clamp(0.0, 64.0);
            format!(
                "<span class=\"bars\">{text}<span class=\"track\"><span class=\"bar{}\" style=\"width:{w:.0}px\"></span></span></span>",
                if x < 0.0 { " neg" } else { "" }
            )
        }
        _ => text,
    }
}

fn max_abs(v: impl IntoIterator<Item = Option<f64>>) -> f64 {
    v.into_iter()
        .flatten()
        .filter(|x| x.is_finite())
        .fold(0.0, |a, x| a.max(x.abs()))
}

// ---------------------------------------------------------------------------------
// pipeline and data quality

fn pipeline(cx: &mut Cx) -> Result<Option<String>> {
    let Some(run) = &cx.data.run else {
        return Ok(None);
    };
    if run.steps.is_empty() {
        return Ok(None);
    }
    let mut s = String::new();
    let count = |st: Option<&str>| {
        run.steps
            .iter()
            .filter(|x| x.status.as_deref() == st)
            .count()
    };
    let total: f64 = run.steps.iter().filter_map(|x| x.duration_ms).sum();
    let cached = run.steps.iter().filter(|x| x.cached).count();
    let cached = if cached > 0 {
        format!(" ({cached} taken from the step cache)")
    } else {
        String::new()
    };
    let _ = write!(
        s,
        "<p class=\"note\">{} steps: {} succeeded{}, {} failed, {} skipped, {} running; {} of step time in all.</p>",
        run.steps.len(),
        count(Some("succeeded")),
        cached,
        count(Some("failed")),
        count(Some("skipped")),
        count(None),
        duration(total)
    );
    let svg = charts::dag(&run.steps, &mut cx.ids);
    let mut legend = String::from("<div class=\"legend-row\">");
    for stage in ["collect", "clean", "segment", "position", "evaluate"] {
        let _ = write!(
            legend,
            "<span><span class=\"swatch\" style=\"background:{}\"></span>{stage}</span>",
            charts::hex(charts::stage_colour(stage))
        );
    }
    legend.push_str("</div>");
    s.push_str(&figure(&svg, false, Some(&legend)));
    let mut t = Tbl::new(&[
        ("step", false),
        ("stage", false),
        ("component", false),
        ("inputs", false),
        ("status", false),
        ("time", true),
        ("rows out", false),
    ])
    .class(6, "wrap-text");
    for st in &run.steps {
        let needs: Vec<String> = st.needs.iter().map(|n| esc(&n.name)).collect();
        let rows: Vec<String> = st
            .rows
            .iter()
            .map(|(p, n)| format!("{}: {}", esc(p), int(*n as i64)))
            .collect();
        let mut status = esc(st.status.as_deref().unwrap_or("running"));
        if st.cached {
            status.push_str(" (cached)");
        }
        if let Some(e) = &st.error {
            let _ = write!(status, "<br><span class=\"warn\">{}</span>", esc(e));
        }
        t.row(vec![
            format!("<code>{}</code>", esc(&st.id)),
            esc(&st.stage),
            esc(&st.component),
            needs.join(", "),
            status,
            st.duration_ms.map(duration).unwrap_or_default(),
            rows.join(", "),
        ]);
    }
    s.push_str(&details(
        "Steps as a table",
        &t.html(cx.max_rows.max(run.steps.len())),
    ));
    Ok(Some(s))
}

fn quality(cx: &mut Cx) -> Result<Option<String>> {
    let Some(run) = &cx.data.run else {
        return Ok(None);
    };
    let steps: Vec<&StepInfo> = run
        .steps
        .iter()
        .filter(|s| s.stage == "collect" || s.stage == "clean")
        .collect();
    if steps.is_empty() {
        return Ok(None);
    }
    let mut s = String::new();
    let mut t = Tbl::new(&[
        ("step", false),
        ("component", false),
        ("rows in", true),
        ("rows out", true),
        ("quarantined", true),
        ("share quarantined", true),
        ("customers", true),
    ]);
    let mut any_quarantine = false;
    for st in &steps {
        let rows_in = st.fact_f64("rows_in");
        let rows_out = st
            .fact_f64("rows_out")
            .or_else(|| st.fact_f64("rows_used"))
            .or_else(|| st.port_rows("main").map(|n| n as f64));
        let quarantined = st
            .fact_f64("rows_quarantined")
            .or_else(|| st.port_rows("quarantine").map(|n| n as f64));
        any_quarantine |= quarantined.is_some_and(|q| q > 0.0);
        let share = match (quarantined, rows_in) {
            (Some(q), Some(i)) if i > 0.0 => pct(q / i),
            _ => String::new(),
        };
        let cnt = |v: Option<f64>| v.map(|x| int(x as i64)).unwrap_or_default();
        t.row(vec![
            format!("<code>{}</code>", esc(&st.id)),
            esc(&st.component),
            cnt(rows_in),
            cnt(rows_out),
            cnt(quarantined),
            share,
            cnt(st.fact_f64("customers")),
        ]);
    }
    s.push_str(&t.html(cx.max_rows.max(steps.len())));

    // quarantine reasons
    let with_reasons: Vec<(&StepInfo, Vec<(String, f64)>)> = steps
        .iter()
        .filter_map(|st| {
            let m = st.facts.get("quarantine_reasons")?.as_object()?;
            let v: Vec<(String, f64)> = m
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .filter(|(_, n)| *n > 0.0)
                .collect();
            (!v.is_empty()).then_some((*st, v))
        })
        .collect();
    if !with_reasons.is_empty() {
        h3(&mut s, "Why rows were quarantined");
        let several = with_reasons.len() > 1;
        let mut bars = Vec::new();
        let mut rt = Tbl::new(&[("step", false), ("reason", false), ("rows", true)]);
        for (st, reasons) in &with_reasons {
            for (reason, n) in reasons {
                bars.push(Bar {
                    label: if several {
                        format!("{}: {reason}", st.id)
                    } else {
                        reason.clone()
                    },
                    value: *n,
                    note: int(*n as i64),
                });
                rt.row(vec![
                    format!("<code>{}</code>", esc(&st.id)),
                    esc(reason),
                    int(*n as i64),
                ]);
            }
        }
        bars.sort_by(|a, b| b.value.total_cmp(&a.value));
        bars.truncate(cx.max_rows);
        let svg = charts::hbars(
            &bars,
            "rows quarantined",
            (225, 87, 89),
            "rows quarantined by reason",
        )?;
        s.push_str(&figure(&svg, false, None));
        s.push_str(&details(
            "Quarantine reasons as a table",
            &rt.html(cx.max_rows),
        ));
    } else if !any_quarantine {
        s.push_str("<p class=\"note\">No rows were quarantined.</p>");
    }

    // quality profiles
    for st in &steps {
        let Some(score) = st.facts.get("score").and_then(Value::as_object) else {
            continue;
        };
        h3(&mut s, &format!("Quality profile of {}", st.id));
        let mut q = Tbl::new(&[("dimension", false), ("score", true)]);
        for (dim, v) in score {
            let v = v.as_f64();
            q.row(vec![
                esc(dim),
                bar_cell(v, 1.0, v.map(pct).unwrap_or_else(|| "not assessed".into())),
            ]);
        }
        s.push_str(&q.html(cx.max_rows));
        if let Some(cols) = st.facts.get("columns").and_then(Value::as_object) {
            let mut c = Tbl::new(&[
                ("column", false),
                ("type", false),
                ("missing", true),
                ("completeness", true),
                ("validity", true),
                ("uniqueness", true),
                ("consistency", true),
            ]);
            let share = |v: &Value, k: &str| {
                v.get(k)
                    .and_then(Value::as_f64)
                    .map(pct)
                    .unwrap_or_default()
            };
            for (name, v) in cols {
                c.row(vec![
                    esc(name),
                    esc(v.get("data_type").and_then(Value::as_str).unwrap_or("")),
                    v.get("missing")
                        .and_then(Value::as_f64)
                        .map(|x| int(x as i64))
                        .unwrap_or_default(),
                    share(v, "completeness"),
                    share(v, "validity"),
                    share(v, "uniqueness"),
                    share(v, "consistency"),
                ]);
            }
            s.push_str(&details("Per column", &c.html(cx.max_rows)));
        }
        if let Some(rules) = st.facts.get("rules").and_then(Value::as_array) {
            if !rules.is_empty() {
                let mut r = Tbl::new(&[
                    ("rule", false),
                    ("checked", true),
                    ("passed", true),
                    ("consistency", true),
                ]);
                for rule in rules {
                    let n = |k: &str| {
                        rule.get(k)
                            .and_then(Value::as_f64)
                            .map(|x| int(x as i64))
                            .unwrap_or_default()
                    };
                    r.row(vec![
                        format!(
                            "<code>{}</code>",
                            esc(rule.get("rule").and_then(Value::as_str).unwrap_or(""))
                        ),
                        n("checked"),
                        n("passed"),
                        rule.get("consistency")
                            .and_then(Value::as_f64)
                            .map(pct)
                            .unwrap_or_default(),
                    ]);
                }
                s.push_str(&details("Consistency rules", &r.html(cx.max_rows)));
            }
        }
    }
    Ok(Some(s))
}

// ---------------------------------------------------------------------------------
// sizes

/// Sizes per segmentation: counted assignments first, then profiles, the RFM model and
/// the map for segmentations without assignments.
fn all_sizes(data: &Data) -> Vec<Sizes> {
    let mut out: Vec<Sizes> = data.sizes.clone();
    let mut seen: Vec<String> = out.iter().map(|s| s.segmentation.clone()).collect();
    let mut from = |kind: Kind, count_col: &str| {
        for f in data.of(kind) {
            let labels = f.text_or_empty("segment");
            let ids = f.f64("segment_id");
            let counts = f.f64(count_col);
            for (seg, rows) in f.groups() {
                if seen.contains(&seg) {
                    continue;
                }
                let segments: Vec<super::read::SegSize> = rows
                    .iter()
                    .map(|&r| super::read::SegSize {
                        id: ids[r].map(|x| x as i32),
                        label: labels[r].clone(),
                        customers: counts[r].unwrap_or(0.0).max(0.0) as u64,
                    })
                    .collect();
                let total = segments.iter().map(|s| s.customers).sum();
                seen.push(seg.clone());
                out.push(Sizes {
                    segmentation: seg,
                    segments,
                    total,
                });
            }
        }
    };
    from(Kind::Profiles, "customers");
    from(Kind::RfmModel, "size");
    from(Kind::Map, "customers");
    out
}

fn sizes(cx: &mut Cx) -> Result<Option<String>> {
    let all = all_sizes(cx.data);
    if all.is_empty() {
        return Ok(None);
    }
    let mut s = String::new();
    for sz in &all {
        h3(
            &mut s,
            &format!(
                "{} — {} customers, {} segments",
                sz.segmentation,
                int(sz.total as i64),
                sz.segments.len()
            ),
        );
        let share = |n: u64| {
            if sz.total > 0 {
                n as f64 / sz.total as f64
            } else {
                0.0
            }
        };
        let bars: Vec<Bar> = sz
            .segments
            .iter()
            .take(cx.max_rows)
            .map(|g| Bar {
                label: g.label.clone(),
                value: g.customers as f64,
                note: format!("{} ({})", int(g.customers as i64), pct(share(g.customers))),
            })
            .collect();
        let svg = charts::hbars(
            &bars,
            "customers",
            charts::CATEGORICAL[0],
            &format!("customers per segment of {}", sz.segmentation),
        )?;
        s.push_str(&figure(&svg, false, None));
        if sz.segments.len() > cx.max_rows {
            let _ = write!(
                s,
                "<p class=\"more\">The chart shows the first {} of {} segments.</p>",
                cx.max_rows,
                sz.segments.len()
            );
        }
        let mut t = Tbl::new(&[
            ("segment_id", true),
            ("segment", false),
            ("customers", true),
            ("share", true),
        ]);
        for g in &sz.segments {
            t.row(vec![
                g.id.map(|i| i.to_string()).unwrap_or_default(),
                esc(&g.label),
                int(g.customers as i64),
                pct(share(g.customers)),
            ]);
        }
        s.push_str(&details("Sizes as a table", &t.html(cx.max_rows)));
    }
    Ok(Some(s))
}

// ---------------------------------------------------------------------------------
// profiles

/// Features of a profiles table: every `f` with `f_mean` and `f_index`.
fn profile_features(frame: &Frame) -> Vec<String> {
    let schema = frame.batch.schema();
    schema
        .fields()
        .iter()
        .filter_map(|f| f.name().strip_suffix("_mean").map(str::to_string))
        .filter(|f| f != "clv" && schema.field_with_name(&format!("{f}_index")).is_ok())
        .collect()
}

fn profile_categories(frame: &Frame) -> Vec<String> {
    let schema = frame.batch.schema();
    schema
        .fields()
        .iter()
        .filter_map(|f| f.name().strip_suffix("_distinctive").map(str::to_string))
        .filter(|c| {
            ["top", "distinctive_share", "distinctive_lift"]
                .iter()
                .all(|s| schema.field_with_name(&format!("{c}_{s}")).is_ok())
        })
        .collect()
}

fn profiles(cx: &mut Cx) -> Result<Option<String>> {
    let frames: Vec<&Frame> = cx.data.of(Kind::Profiles).collect();
    if frames.is_empty() {
        return Ok(None);
    }
    let mut s = String::new();
    for f in frames {
        let feats = profile_features(f);
        let cats = profile_categories(f);
        let labels = f.text_or_empty("segment");
        let customers = f.f64("customers");
        let cshare = f.f64("customer_share");
        let rshare = f.f64("revenue_share");
        let means: Vec<Vec<Option<f64>>> =
            feats.iter().map(|x| f.f64(&format!("{x}_mean"))).collect();
        let index: Vec<Vec<Option<f64>>> =
            feats.iter().map(|x| f.f64(&format!("{x}_index"))).collect();
        let z: Vec<Vec<Option<f64>>> = feats.iter().map(|x| f.f64(&format!("{x}_z"))).collect();
        for (seg, rows) in f.groups() {
            h3(&mut s, &seg);
            if feats.is_empty() {
                s.push_str("<p class=\"note\">These profiles have no numeric features.</p>");
            } else {
                let shown: Vec<usize> = rows.iter().copied().take(cx.max_rows).collect();
                let hm = Heatmap {
                    rows: shown.iter().map(|&r| labels[r].clone()).collect(),
                    cols: feats.clone(),
                    cells: shown
                        .iter()
                        .map(|&r| {
                            (0..feats.len())
                                .map(|j| {
                                    let ix = index[j][r];
                                    Cell {
                                        fill: ix.map(charts::index_colour),
                                        text: ix
                                            .map(|v| format!("{v:.0}"))
                                            .unwrap_or_else(|| "–".into()),
                                        title: format!(
                                            "{} · {}: mean {}, index {}, z {}",
                                            labels[r],
                                            feats[j],
                                            opt(means[j][r]),
                                            opt(ix),
                                            opt(z[j][r])
                                        ),
                                    }
                                })
                                .collect()
                        })
                        .collect(),
                    aria: format!("feature index by segment of {seg}"),
                    corner: Some("segment \\ feature".into()),
                };
                let legend = charts::legend(
                    &charts::DIVERGING,
                    "≤ 50 (half)",
                    Some("100 (the base)"),
                    "≥ 200 (double)",
                    &mut cx.ids,
                );
                s.push_str(&figure(&charts::heatmap(&hm), true, Some(&legend)));
                if rows.len() > cx.max_rows {
                    let _ = write!(
                        s,
                        "<p class=\"more\">The heatmap shows the first {} of {} segments.</p>",
                        cx.max_rows,
                        rows.len()
                    );
                }
            }
            let mut head: Vec<(String, bool)> = vec![
                ("segment".into(), false),
                ("customers".into(), true),
                ("share".into(), true),
                ("revenue share".into(), true),
            ];
            for x in &feats {
                head.push((format!("{x} mean"), true));
                head.push((format!("{x} index"), true));
            }
            let mut t = Tbl::with_head(head);
            for &r in &rows {
                let mut row = vec![
                    esc(&labels[r]),
                    customers[r].map(|c| int(c as i64)).unwrap_or_default(),
                    cshare[r].map(pct).unwrap_or_default(),
                    rshare[r].map(pct).unwrap_or_default(),
                ];
                for j in 0..feats.len() {
                    row.push(opt(means[j][r]));
                    row.push(
                        index[j][r]
                            .map(|v| format!("{v:.0}"))
                            .unwrap_or_else(|| "–".into()),
                    );
                }
                t.row(row);
            }
            s.push_str(&details(
                "Profile as a table (mean and index)",
                &t.html(cx.max_rows),
            ));
            if !cats.is_empty() {
                let mut head = vec![("segment".to_string(), false)];
                head.extend(cats.iter().map(|c| (c.clone(), false)));
                let mut ct = Tbl::with_head(head);
                let cols: Vec<CategoryColumns> = cats
                    .iter()
                    .map(|c| {
                        (
                            f.text(&format!("{c}_distinctive")),
                            f.f64(&format!("{c}_distinctive_share")),
                            f.f64(&format!("{c}_distinctive_lift")),
                        )
                    })
                    .collect();
                for &r in &rows {
                    let mut row = vec![esc(&labels[r])];
                    for (v, sh, l) in &cols {
                        row.push(match (&v[r], sh[r], l[r]) {
                            (Some(v), Some(sh), Some(l)) => format!(
                                "{} <span class=\"note\">{} · lift {}</span>",
                                esc(v),
                                pct(sh),
                                num(l)
                            ),
                            (Some(v), _, _) => esc(v),
                            _ => String::new(),
                        });
                    }
                    ct.row(row);
                }
                s.push_str(&details(
                    "Most over-represented category values (share of the segment, lift against the base)",
                    &ct.html(cx.max_rows),
                ));
            }
        }
    }
    Ok(Some(s))
}

// ---------------------------------------------------------------------------------
// RFM

fn range_text(lo: Option<f64>, hi: Option<f64>) -> String {
    match (lo, hi) {
        (Some(a), Some(b)) if a == b => format!("{a:.0}"),
        (Some(a), Some(b)) => format!("{a:.0}–{b:.0}"),
        (Some(a), None) => format!("≥ {a:.0}"),
        (None, Some(b)) => format!("≤ {b:.0}"),
        (None, None) => "any".into(),
    }
}

fn rfm(cx: &mut Cx) -> Result<Option<String>> {
    let models: Vec<&Frame> = cx.data.of(Kind::RfmModel).collect();
    let model_steps: Vec<&str> = models.iter().map(|m| m.step()).collect();
    let lone_cells: Vec<&super::read::RfmCells> = cx
        .data
        .rfm_cells
        .iter()
        .filter(|c| !model_steps.contains(&c.segmentation.as_str()))
        .collect();
    if models.is_empty() && lone_cells.is_empty() {
        return Ok(None);
    }
    let mut s = String::new();
    for m in &models {
        let seg = m.step().to_string();
        let cells = cx.data.rfm_cells.iter().find(|c| c.segmentation == seg);
        let labels = m.text_or_empty("segment");
        let size = m.f64("size");
        let share = m.f64("share");
        let part = |p: &str| (m.f64(&format!("{p}_low")), m.f64(&format!("{p}_high")));
        let (rl, rh) = part("r");
        let (fl, fh) = part("f");
        let (ml, mh) = part("m");
        let (fml, fmh) = part("fm");
        let facts_bins = cx
            .data
            .run
            .as_ref()
            .and_then(|r| r.step(&seg))
            .and_then(|st| st.fact_f64("bins"));
        let from_model = rh
            .iter()
            .chain(fmh.iter())
            .chain(fh.iter())
            .chain(mh.iter())
            .flatten()
            .fold(0.0f64, |a, b| a.max(*b));
        let from_cells = cells
            .map(|c| {
                c.cells
                    .keys()
                    .map(|(r, fm)| (*r).max(*fm))
                    .max()
                    .unwrap_or(0) as f64
            })
            .unwrap_or(0.0);
        let bins = facts_bins
            .unwrap_or(from_model.max(from_cells))
            .clamp(1.0, 10.0) as usize;
        let bins = if bins < 2 { 5 } else { bins };
        let inside = |lo: Option<f64>, hi: Option<f64>, v: usize| {
            lo.is_none_or(|l| v as f64 >= l) && hi.is_none_or(|h| v as f64 <= h)
        };
        let n = m.rows();
        // an F or M range narrower than 1..=bins is something an R × FM grid cannot show
        let full = |lo: Option<f64>, hi: Option<f64>| {
            lo.is_none_or(|l| l <= 1.0) && hi.is_none_or(|h| h >= bins as f64)
        };
        let grid_only: Vec<bool> = (0..n)
            .map(|i| full(fl[i], fh[i]) && full(ml[i], mh[i]))
            .collect();
        let by_range = |r: usize, fm: usize| -> Option<usize> {
            (0..n).find(|&i| grid_only[i] && inside(rl[i], rh[i], r) && inside(fml[i], fmh[i], fm))
        };
        let segments: Vec<(String, Option<u64>)> = (0..n)
            .map(|i| (labels[i].clone(), size[i].map(|x| x as u64)))
            .collect();
        let cell = |r: usize, fm: usize| -> GridCell {
            let key = (r as i32, fm as i32);
            let from_data = cells
                .and_then(|c| c.dominant.get(&key))
                .and_then(|l| labels.iter().position(|x| x == l));
            GridCell {
                segment: from_data.or_else(|| by_range(r, fm)),
                customers: cells.map(|c| c.cells.get(&key).copied().unwrap_or(0)),
            }
        };
        h3(&mut s, &format!("{seg} — {bins} scores per measure"));
        let svg = charts::rfm_grid(bins, &cell, &segments, &format!("RFM grid of {seg}"));
        s.push_str(&figure(&svg, false, None));
        if grid_only.iter().any(|g| !g) && cells.is_none() {
            s.push_str("<p class=\"note\">Some segments of this map are defined by separate F or M ranges, which an R × FM grid cannot show; give the report the rfm step's <code>assignments</code> too, to colour each cell by the segment that holds most of its customers.</p>");
        }
        let mut t = Tbl::new(&[
            ("segment", false),
            ("R", false),
            ("FM", false),
            ("F", false),
            ("M", false),
            ("customers", true),
            ("share", true),
            ("recency", false),
            ("frequency", false),
            ("monetary", false),
        ]);
        let minmax = |name: &str| {
            let lo = m.f64(&format!("{name}_min"));
            let hi = m.f64(&format!("{name}_max"));
            (0..n)
                .map(|i| match (lo[i], hi[i]) {
                    (Some(a), Some(b)) => format!("{} – {}", num(a), num(b)),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
        };
        let (rec, fre, mon) = (minmax("recency"), minmax("frequency"), minmax("monetary"));
        for i in 0..n {
            t.row(vec![
                format!(
                    "<span class=\"swatch\" style=\"background:{}\"></span>{}",
                    charts::hex(charts::CATEGORICAL[i % charts::CATEGORICAL.len()]),
                    esc(&labels[i])
                ),
                range_text(rl[i], rh[i]),
                range_text(fml[i], fmh[i]),
                range_text(fl[i], fh[i]),
                range_text(ml[i], mh[i]),
                size[i].map(|x| int(x as i64)).unwrap_or_default(),
                share[i].map(pct).unwrap_or_default(),
                rec[i].clone(),
                fre[i].clone(),
                mon[i].clone(),
            ]);
        }
        s.push_str(&details(
            "Segments as a table (score ranges, customers, value ranges in original units)",
            &t.html(cx.max_rows),
        ));
    }
    for c in lone_cells {
        let bins = c
            .cells
            .keys()
            .map(|(r, fm)| (*r).max(*fm))
            .max()
            .unwrap_or(5)
            .clamp(2, 10) as usize;
        let mut names: Vec<String> = c.dominant.values().cloned().collect();
        names.sort();
        names.dedup();
        let segments: Vec<(String, Option<u64>)> =
            names.iter().map(|n| (n.clone(), None)).collect();
        let cell = |r: usize, fm: usize| -> GridCell {
            let key = (r as i32, fm as i32);
            GridCell {
                segment: c
                    .dominant
                    .get(&key)
                    .and_then(|l| names.iter().position(|x| x == l)),
                customers: Some(c.cells.get(&key).copied().unwrap_or(0)),
            }
        };
        h3(
            &mut s,
            &format!("{} — {bins} scores per measure", c.segmentation),
        );
        let svg = charts::rfm_grid(
            bins,
            &cell,
            &segments,
            &format!("RFM grid of {}", c.segmentation),
        );
        s.push_str(&figure(&svg, false, None));
        let mut t = Tbl::new(&[
            ("R", true),
            ("FM", true),
            ("customers", true),
            ("main segment", false),
        ]);
        let mut keys: Vec<&(i32, i32)> = c.cells.keys().collect();
        keys.sort();
        for k in keys {
            t.row(vec![
                k.0.to_string(),
                k.1.to_string(),
                int(c.cells[k] as i64),
                esc(c.dominant.get(k).map(String::as_str).unwrap_or("")),
            ]);
        }
        s.push_str(&details("Cells as a table", &t.html(cx.max_rows)));
    }
    Ok(Some(s))
}

// ---------------------------------------------------------------------------------
// map

/// `PC1: +a +b −c`: the two or three features with the largest loadings (the third
/// only when at least half the largest), as the `map` component names its axes.
fn axis_name(prefix: &str, features: &[String], loadings: &[f64]) -> String {
    let mut order: Vec<usize> = (0..features.len()).collect();
    order.sort_by(|&a, &b| loadings[b].abs().total_cmp(&loadings[a].abs()));
    let top = order.first().map(|&i| loadings[i].abs()).unwrap_or(0.0);
    if top <= 1e-12 {
        return format!("{prefix}: none");
    }
    let parts: Vec<String> = order
        .iter()
        .take(3)
        .enumerate()
        .filter(|(k, &i)| *k < 2 || loadings[i].abs() >= top / 2.0)
        .filter(|(_, &i)| loadings[i].abs() > 1e-12)
        .map(|(_, &i)| {
            format!(
                "{}{}",
                if loadings[i] >= 0.0 { "+" } else { "−" },
                features[i]
            )
        })
        .collect();
    format!("{prefix}: {}", parts.join(" "))
}

fn map(cx: &mut Cx) -> Result<Option<String>> {
    let frames: Vec<&Frame> = cx.data.of(Kind::Map).collect();
    if frames.is_empty() {
        return Ok(None);
    }
    let mut s = String::new();
    for f in frames {
        let step = cx.data.run.as_ref().and_then(|r| r.step(f.step()));
        let value_name = step
            .and_then(|st| st.facts.get("value"))
            .and_then(Value::as_str)
            .unwrap_or("value")
            .to_string();
        let labels = f.text_or_empty("segment");
        let (x, y) = (f.f64("x"), f.f64("y"));
        let customers = f.f64("customers");
        let cshare = f.f64("customer_share");
        let value = f.f64("value");
        let loadings: Vec<&Frame> = cx
            .data
            .of(Kind::Loadings)
            .filter(|l| l.step() == f.step())
            .collect();
        for (seg, rows) in f.groups() {
            let seg_facts = step
                .and_then(|st| st.facts.get("segmentations"))
                .and_then(|m| m.get(&seg));
            let axis_fact = |k: &str| {
                seg_facts
                    .and_then(|v| v.get("axes"))
                    .and_then(|a| a.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            // loadings of this segmentation
            let mut lf: Vec<String> = Vec::new();
            let mut l1: Vec<f64> = Vec::new();
            let mut l2: Vec<f64> = Vec::new();
            let mut ltable: Option<(&Frame, Vec<usize>)> = None;
            for l in &loadings {
                for (lseg, lrows) in l.groups() {
                    if lseg != seg {
                        continue;
                    }
                    let feats = l.text_or_empty("feature");
                    let (p1, p2) = (l.f64("pc1"), l.f64("pc2"));
                    for &r in &lrows {
                        lf.push(feats[r].clone());
                        l1.push(p1[r].unwrap_or(0.0));
                        l2.push(p2[r].unwrap_or(0.0));
                    }
                    ltable = Some((l, lrows));
                }
            }
            let x_name = axis_fact("x")
                .or_else(|| (!lf.is_empty()).then(|| axis_name("PC1", &lf, &l1)))
                .unwrap_or_else(|| "x".into());
            let y_name = axis_fact("y")
                .or_else(|| (!lf.is_empty()).then(|| axis_name("PC2", &lf, &l2)))
                .unwrap_or_else(|| "y".into());
            h3(&mut s, &seg);
            let points: Vec<Bubble> = rows
                .iter()
                .take(cx.max_rows)
                .filter_map(|&r| {
                    Some(Bubble {
                        label: labels[r].clone(),
                        x: x[r]?,
                        y: y[r]?,
                        size: customers[r].unwrap_or(0.0),
                        value: value[r],
                    })
                })
                .collect();
            let svg = charts::bubbles(
                &points,
                &x_name,
                &y_name,
                &format!("positioning map of {seg}"),
            )?;
            let vals: Vec<f64> = rows.iter().filter_map(|&r| value[r]).collect();
            let mut caption = String::new();
            if !vals.is_empty() {
                let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let _ = write!(
                    caption,
                    "Colour: <code>{}</code> {}",
                    esc(&value_name),
                    charts::legend(&charts::VIRIDIS, &num(lo), None, &num(hi), &mut cx.ids)
                );
            }
            if let Some(ev) = seg_facts
                .and_then(|v| v.get("explained_variance_ratio"))
                .and_then(Value::as_array)
            {
                let r: Vec<f64> = ev.iter().filter_map(Value::as_f64).collect();
                if r.len() == 2 {
                    let _ = write!(
                        caption,
                        "<br>PC1 explains {} and PC2 {} of the variance between segments.",
                        pct(r[0]),
                        pct(r[1])
                    );
                }
            }
            if let Some(note) = seg_facts
                .and_then(|v| v.get("note"))
                .and_then(Value::as_str)
            {
                let _ = write!(caption, "<br>{}", esc(note));
            }
            s.push_str(&figure(
                &svg,
                false,
                (!caption.is_empty()).then_some(caption.as_str()),
            ));
            let mut t = Tbl::with_head(vec![
                ("segment".into(), false),
                (x_name.clone(), true),
                (y_name.clone(), true),
                ("customers".into(), true),
                ("share".into(), true),
                (value_name.clone(), true),
            ]);
            for &r in &rows {
                t.row(vec![
                    esc(&labels[r]),
                    opt(x[r]),
                    opt(y[r]),
                    customers[r].map(|c| int(c as i64)).unwrap_or_default(),
                    cshare[r].map(pct).unwrap_or_default(),
                    opt(value[r]),
                ]);
            }
            let mut inner = t.html(cx.max_rows);
            if let Some((l, lrows)) = ltable {
                inner.push_str(
                    "<p class=\"note\">Loadings: how much each feature pulls along each axis.</p>",
                );
                inner.push_str(&frame_table(l, &lrows, &["segmentation"]).html(cx.max_rows));
            }
            s.push_str(&details("Map as a table", &inner));
        }
    }
    Ok(Some(s))
}

// ---------------------------------------------------------------------------------
// targets, CLV

fn targets(cx: &mut Cx) -> Result<Option<String>> {
    let frames: Vec<&Frame> = cx.data.of(Kind::Targets).collect();
    if frames.is_empty() {
        return Ok(None);
    }
    let mut s = String::new();
    for f in frames {
        let labels = f.text_or_empty("segment");
        let rank = f.f64("rank");
        let score = f.f64("score");
        let chosen = f.text("chosen");
        let customers = f.f64("customers");
        let cshare = f.f64("customer_share");
        let reason = f.text_or_empty("reason");
        for (seg, mut rows) in f.groups() {
            rows.sort_by(|&a, &b| {
                rank[a]
                    .unwrap_or(f64::MAX)
                    .total_cmp(&rank[b].unwrap_or(f64::MAX))
            });
            h3(&mut s, &seg);
            let top = max_abs(rows.iter().map(|&r| score[r]));
            let mut t = Tbl::new(&[
                ("rank", true),
                ("segment", false),
                ("score", true),
                ("target", false),
                ("customers", true),
                ("share", true),
                ("reason", false),
            ])
            .class(6, "wrap-text");
            for &r in &rows {
                let yes = chosen[r].as_deref() == Some("true");
                t.row(vec![
                    rank[r].map(|x| format!("{x:.0}")).unwrap_or_default(),
                    esc(&labels[r]),
                    bar_cell(score[r], top, opt(score[r])),
                    if yes {
                        "<span class=\"badge yes\">target</span>".into()
                    } else {
                        String::new()
                    },
                    customers[r].map(|c| int(c as i64)).unwrap_or_default(),
                    cshare[r].map(pct).unwrap_or_default(),
                    esc(&reason[r]),
                ]);
            }
            s.push_str(&t.html(cx.max_rows));
            s.push_str(&details(
                "Every criterion (raw value, 0–1 score and points)",
                &frame_table(f, &rows, &["segmentation", "reason"]).html(cx.max_rows),
            ));
        }
    }
    Ok(Some(s))
}

/// One metric of one segmentation, per segment: (segmentation, metric, [(segment,
/// value)]).
type SegMetric = (String, String, Vec<(String, Option<f64>)>);

/// Per-segment metric values by (segmentation, metric), in order.
type PerSegment = Vec<SegMetric>;

/// One row of a long metrics table: (segmentation, metric, segment, value).
type MetricRow = (String, String, Option<String>, Option<f64>);

/// A category's distinctive value, its share and lift, per profile row.
type CategoryColumns = (Vec<Option<String>>, Vec<Option<f64>>, Vec<Option<f64>>);

/// (segment, CLV total, CLV mean) per segment.
type ClvRows = Vec<(String, Option<f64>, Option<f64>)>;

/// A segmentation's CLV rows and the table rows they came from (none for metrics).
type ClvGroup<'a> = (String, ClvRows, Option<(&'a Frame, Vec<usize>)>);

/// Which section a metric belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Validity,
    Kpis,
    Drift,
}

/// The family of every metric of `frame`, from the component of the step that wrote it
/// (validity, stability, compare: validity; drift: drift; kpis, clv: KPIs), or from the
/// step id when the run description does not say; `None` when neither tells.
fn family_of(data: &Data, frame: &Frame) -> Option<Family> {
    let component = data
        .run
        .as_ref()
        .and_then(|r| r.step(frame.step()))
        .map(|s| s.component.rsplit('/').next().unwrap_or("").to_string());
    let by = |name: &str| -> Option<Family> {
        match name {
            "validity" | "stability" | "compare" => Some(Family::Validity),
            "drift" => Some(Family::Drift),
            "kpis" | "clv" => Some(Family::Kpis),
            _ => None,
        }
    };
    component
        .as_deref()
        .and_then(by)
        .or_else(|| by(frame.step()))
}

/// Long metrics rows of one family: (segmentation, metric, segment, value).
fn metric_rows(data: &Data, family: Family) -> Vec<MetricRow> {
    let mut out = Vec::new();
    for f in data.of(Kind::Metrics) {
        let known = family_of(data, f);
        let seg = f.segmentations();
        let metric = f.text_or_empty("metric");
        let segment = f.text("segment");
        let value = f.f64("value");
        for r in 0..f.rows() {
            let fam = known.unwrap_or(if is_quality_metric(&metric[r]) {
                Family::Validity
            } else {
                Family::Kpis
            });
            if fam != family {
                continue;
            }
            out.push((
                seg[r].clone(),
                metric[r].clone(),
                segment[r].clone(),
                value[r],
            ));
        }
    }
    out
}

/// Per-segment metrics of one family grouped by segmentation and metric.
fn per_segment(data: &Data, family: Family, keep: &dyn Fn(&str) -> bool) -> PerSegment {
    let mut out: PerSegment = Vec::new();
    for (seg, metric, segment, value) in metric_rows(data, family) {
        let Some(segment) = segment else { continue };
        if !keep(&metric) {
            continue;
        }
        match out.iter_mut().find(|(s, m, _)| *s == seg && *m == metric) {
            Some((_, _, v)) => v.push((segment, value)),
            None => out.push((seg, metric, vec![(segment, value)])),
        }
    }
    out
}

fn clv(cx: &mut Cx) -> Result<Option<String>> {
    let frames: Vec<&Frame> = cx.data.of(Kind::ClvSegments).collect();
    // (segmentation, [(segment, total, mean)], source frame rows)
    let mut groups: Vec<ClvGroup> = Vec::new();
    for f in &frames {
        let labels = f.text_or_empty("segment");
        let (tot, mean) = (f.f64("clv_total"), f.f64("clv_mean"));
        for (seg, rows) in f.groups() {
            let v = rows
                .iter()
                .map(|&r| (labels[r].clone(), tot[r], mean[r]))
                .collect();
            groups.push((seg, v, Some((*f, rows))));
        }
    }
    if groups.is_empty() {
        // per-segment clv metrics
        let ps = per_segment(cx.data, Family::Kpis, &|m| {
            m == "clv_total" || m == "clv_mean"
        });
        let mut segs: Vec<String> = ps.iter().map(|(s, _, _)| s.clone()).collect();
        segs.dedup();
        for seg in segs {
            let get = |metric: &str| {
                ps.iter()
                    .find(|(s, m, _)| *s == seg && m == metric)
                    .map(|(_, _, v)| v.clone())
                    .unwrap_or_default()
            };
            let (tot, mean) = (get("clv_total"), get("clv_mean"));
            let mut v: Vec<(String, Option<f64>, Option<f64>)> =
                tot.iter().map(|(l, t)| (l.clone(), *t, None)).collect();
            for (l, m) in mean {
                match v.iter_mut().find(|e| e.0 == l) {
                    Some(e) => e.2 = m,
                    None => v.push((l, None, m)),
                }
            }
            groups.push((seg, v, None));
        }
    }
    if groups.is_empty() {
        return Ok(None);
    }
    let mut s = String::new();
    for (seg, v, src) in groups {
        let all: f64 = v.iter().filter_map(|e| e.1).sum();
        h3(&mut s, &format!("{seg} — total CLV {}", num(all)));
        let use_total = v.iter().any(|e| e.1.is_some());
        let bars: Vec<Bar> = v
            .iter()
            .take(cx.max_rows)
            .map(|(l, t, m)| Bar {
                label: l.clone(),
                value: if use_total {
                    t.unwrap_or(0.0)
                } else {
                    m.unwrap_or(0.0)
                },
                note: match (t, m) {
                    (Some(t), Some(m)) if use_total => format!(
                        "{} ({}), mean {}",
                        num(*t),
                        if all != 0.0 {
                            pct(t / all)
                        } else {
                            "–".into()
                        },
                        num(*m)
                    ),
                    (Some(t), None) => num(*t),
                    (_, Some(m)) => format!("mean {}", num(*m)),
                    _ => String::new(),
                },
            })
            .collect();
        let svg = charts::hbars(
            &bars,
            if use_total {
                "total CLV"
            } else {
                "mean CLV per customer"
            },
            charts::CATEGORICAL[4],
            &format!("CLV by segment of {seg}"),
        )?;
        s.push_str(&figure(&svg, false, None));
        let inner = match src {
            Some((f, rows)) => frame_table(f, &rows, &["segmentation"]).html(cx.max_rows),
            None => {
                let mut t =
                    Tbl::new(&[("segment", false), ("clv_total", true), ("clv_mean", true)]);
                for (l, tot, m) in &v {
                    t.row(vec![esc(l), opt(*tot), opt(*m)]);
                }
                t.html(cx.max_rows)
            }
        };
        s.push_str(&details("CLV as a table", &inner));
    }
    Ok(Some(s))
}

// ---------------------------------------------------------------------------------
// validity, stability, KPIs

/// How to read a metric, from the words of its name (`ari_mean` → `ari`, `mean`).
fn metric_hint(metric: &str) -> &'static str {
    let m = metric.to_ascii_lowercase();
    let words: Vec<&str> = m.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    let has = |w: &str| words.contains(&w);
    if has("rows") || has("resamples") || has("customers") || has("segments") {
        ""
    } else if has("silhouette") {
        "−1 to 1, higher is better; above 0.5 strong, 0.25–0.5 reasonable, below 0.25 weak"
    } else if has("calinski") {
        "higher is better; compare segmentations of the same customers"
    } else if has("davies") {
        "0 or more, lower is better"
    } else if has("dispersion") && has("between") {
        "spread of segment centres; higher separates more"
    } else if has("dispersion") && has("within") {
        "spread inside segments; lower is tighter"
    } else if has("jaccard") && has("dissolved") {
        "share of re-fits in which the segment dissolved (best Jaccard below 0.5); lower is better"
    } else if has("jaccard") && has("recovered") {
        "share of re-fits that found the segment again (Jaccard at least 0.75); higher is better"
    } else if has("jaccard") {
        "0 to 1; above 0.75 stable, 0.5–0.75 fair, below 0.5 unstable"
    } else if has("ari") && has("std") {
        "spread of the ARI across re-fits; small is stable"
    } else if has("ari") || has("rand") {
        "adjusted Rand index: 1 identical, 0 chance agreement"
    } else if has("nmi") || has("mutual") {
        "normalised mutual information: 1 identical, 0 independent"
    } else if has("eta") {
        "share of the variance of customer value that lies between segments (0 to 1); higher separates value better"
    } else if has("variance") && has("value") {
        "variance of customer value (between segment means, or in total)"
    } else if has("separation") {
        "variance of segment CLV means; higher separates value more"
    } else {
        ""
    }
}

/// A metric's value: shares and rates as percentages, other values as numbers.
fn metric_value(metric: &str, v: Option<f64>) -> String {
    let m = metric.to_ascii_lowercase();
    match v {
        Some(x) if m.ends_with("_share") || m.ends_with("_rate") || m == "share" => pct(x),
        other => opt(other),
    }
}

/// Metrics about how well segments separate or how stable they are (the validity
/// section); every other metric is a KPI. Used when the step that wrote them does not
/// say.
fn is_quality_metric(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    let words: Vec<&str> = m.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    [
        "silhouette",
        "calinski",
        "harabasz",
        "davies",
        "bouldin",
        "dispersion",
        "jaccard",
        "stability",
        "ari",
        "nmi",
        "rand",
        "mutual",
        "eta",
        "separation",
        "resamples",
        "bootstrap",
    ]
    .iter()
    .any(|k| words.contains(k))
        || m == "customers"
        || m == "segments"
}

/// Segmentation-level metrics as a table: one row per metric, one column per
/// segmentation (with bars comparing segmentations when there are several).
fn level_table(rows: &[&MetricRow], hints: bool, max_rows: usize) -> String {
    let mut segs: Vec<String> = Vec::new();
    let mut metrics: Vec<String> = Vec::new();
    let mut val: HashMap<(String, String), Option<f64>> = HashMap::new();
    for (seg, metric, _, v) in rows {
        if !segs.contains(seg) {
            segs.push(seg.clone());
        }
        if !metrics.contains(metric) {
            metrics.push(metric.clone());
        }
        val.insert((metric.clone(), seg.clone()), *v);
    }
    let mut head: Vec<(String, bool)> = vec![("metric".into(), false)];
    if hints {
        head.push(("how to read".into(), false));
    }
    head.extend(segs.iter().map(|x| (x.clone(), true)));
    let mut t = Tbl::with_head(head);
    if hints {
        t = t.class(1, "wrap-text");
    }
    for m in &metrics {
        let get = |sg: &String| val.get(&(m.clone(), sg.clone())).copied().flatten();
        let top = max_abs(segs.iter().map(get));
        let mut row = vec![format!("<code>{}</code>", esc(m))];
        if hints {
            row.push(esc(metric_hint(m)));
        }
        for sg in &segs {
            let v = get(sg);
            row.push(if segs.len() > 1 {
                bar_cell(v, top, metric_value(m, v))
            } else {
                metric_value(m, v)
            });
        }
        t.row(row);
    }
    let mut s = t.html(max_rows);
    if segs.len() > 1 {
        s.push_str("<p class=\"note\">Bars compare segmentations within a row.</p>");
    }
    s
}

/// Per-segment metrics of one segmentation as a table: one row per segment, one column
/// per metric, with bars comparing segments within a column.
fn segment_table(cols: &[&SegMetric], max_rows: usize) -> String {
    let mut segments: Vec<String> = Vec::new();
    for (_, _, v) in cols {
        for (l, _) in v {
            if !segments.contains(l) {
                segments.push(l.clone());
            }
        }
    }
    let mut head: Vec<(String, bool)> = vec![("segment".into(), false)];
    head.extend(cols.iter().map(|(_, m, _)| (m.clone(), true)));
    let mut t = Tbl::with_head(head).class(0, "label");
    let lookup: Vec<HashMap<&str, Option<f64>>> = cols
        .iter()
        .map(|(_, _, v)| v.iter().map(|(l, x)| (l.as_str(), *x)).collect())
        .collect();
    let tops: Vec<f64> = lookup
        .iter()
        .map(|m| max_abs(m.values().copied()))
        .collect();
    for l in &segments {
        let mut row = vec![esc(l)];
        for (j, m) in lookup.iter().enumerate() {
            let v = m.get(l.as_str()).copied().flatten();
            row.push(bar_cell(v, tops[j], metric_value(&cols[j].1, v)));
        }
        t.row(row);
    }
    t.html(max_rows)
}

/// The segmentations of per-segment metrics, in order of appearance.
fn segmentations_of(ps: &PerSegment) -> Vec<String> {
    let mut segs: Vec<String> = Vec::new();
    for (seg, _, _) in ps {
        if !segs.contains(seg) {
            segs.push(seg.clone());
        }
    }
    segs
}

/// The ARI of each re-fit of a stability step, as a histogram in tenths.
fn resample_histogram(s: &mut String, f: &Frame, max_rows: usize) -> Result<()> {
    let ari: Vec<f64> = f.f64("ari").into_iter().flatten().collect();
    h3(
        s,
        &format!("{}: agreement of each re-fit with the full fit", f.step()),
    );
    if ari.is_empty() {
        s.push_str("<p class=\"note\">No re-fit could be compared.</p>");
        return Ok(());
    }
    let mut counts = [0u64; 10];
    for a in &ari {
        let b = ((a.clamp(0.0, 1.0) * 10.0).floor() as usize).min(9);
        counts[b] += 1;
    }
    let first = counts.iter().position(|c| *c > 0).unwrap_or(0).min(7);
    let n = ari.len() as f64;
    let bars: Vec<Bar> = (first..10)
        .rev()
        .map(|b| Bar {
            label: format!("ARI {:.1}–{:.1}", b as f64 / 10.0, (b + 1) as f64 / 10.0),
            value: counts[b] as f64,
            note: format!("{} ({})", counts[b], pct(counts[b] as f64 / n)),
        })
        .collect();
    let svg = charts::hbars(
        &bars,
        "re-fits",
        charts::CATEGORICAL[3],
        &format!("ARI of each re-fit of {}", f.step()),
    )?;
    let below = ari.iter().filter(|a| **a < 0.0).count();
    let mean = ari.iter().sum::<f64>() / n;
    let mut caption = format!(
        "{} re-fits, mean ARI {}: 1 means a re-fit found the same segments.",
        ari.len(),
        num(mean)
    );
    if below > 0 {
        let _ = write!(caption, " {below} below 0 are counted in the lowest bar.");
    }
    s.push_str(&figure(&svg, false, Some(&esc(&caption))));
    let rows: Vec<usize> = (0..f.rows()).collect();
    s.push_str(&details(
        "Re-fits as a table",
        &frame_table(f, &rows, &[]).html(max_rows),
    ));
    Ok(())
}

fn validity(cx: &mut Cx) -> Result<Option<String>> {
    let rows = metric_rows(cx.data, Family::Validity);
    let level: Vec<&MetricRow> = rows.iter().filter(|r| r.2.is_none()).collect();
    let per = per_segment(cx.data, Family::Validity, &|m| m != "customers");
    let resamples: Vec<&Frame> = cx.data.of(Kind::Resamples).collect();
    if level.is_empty() && per.is_empty() && resamples.is_empty() {
        return Ok(None);
    }
    let mut s = String::new();
    if !level.is_empty() {
        h3(&mut s, "Per segmentation");
        s.push_str(&level_table(&level, true, cx.max_rows));
    }
    for seg in segmentations_of(&per) {
        let cols: Vec<&SegMetric> = per.iter().filter(|(s, _, _)| *s == seg).collect();
        h3(&mut s, &format!("{seg}: per segment"));
        s.push_str(&segment_table(&cols, cx.max_rows));
        let hints: Vec<String> = cols
            .iter()
            .filter(|(_, m, _)| !metric_hint(m).is_empty())
            .map(|(_, m, _)| format!("<code>{}</code>: {}", esc(m), esc(metric_hint(m))))
            .collect();
        if !hints.is_empty() {
            let _ = write!(s, "<p class=\"note\">{}</p>", hints.join("; "));
        }
    }
    for f in resamples {
        resample_histogram(&mut s, f, cx.max_rows)?;
    }
    Ok(Some(s))
}

fn kpis(cx: &mut Cx) -> Result<Option<String>> {
    let rows = metric_rows(cx.data, Family::Kpis);
    let level: Vec<&MetricRow> = rows.iter().filter(|r| r.2.is_none()).collect();
    // `customers` only next to other per-segment KPIs
    let with_kpis = segmentations_of(&per_segment(cx.data, Family::Kpis, &|m| m != "customers"));
    let per: PerSegment = per_segment(cx.data, Family::Kpis, &|_| true)
        .into_iter()
        .filter(|(s, _, _)| with_kpis.contains(s))
        .collect();
    let covered = segmentations_of(&per);
    let tables: Vec<(&Frame, String, Vec<usize>)> = cx
        .data
        .of(Kind::SegmentTable)
        .flat_map(|f| {
            f.groups()
                .into_iter()
                .filter(|(seg, _)| !covered.contains(seg))
                .map(move |(seg, rows)| (f, seg, rows))
        })
        .collect();
    if level.is_empty() && per.is_empty() && tables.is_empty() {
        return Ok(None);
    }
    let mut s = String::new();
    if !level.is_empty() {
        h3(&mut s, "Whole segmentation");
        s.push_str(&level_table(&level, false, cx.max_rows));
    }
    for seg in segmentations_of(&per) {
        let cols: Vec<&SegMetric> = per.iter().filter(|(s, _, _)| *s == seg).collect();
        h3(&mut s, &format!("{seg}: per segment"));
        s.push_str(&segment_table(&cols, cx.max_rows));
    }
    for (f, seg, rows) in tables {
        h3(&mut s, &format!("{seg}: per segment ({})", f.name));
        let mut t = frame_table(f, &rows, &["segmentation"]);
        for (j, (name, numeric)) in t.head.clone().iter().enumerate() {
            if !numeric || name == "segment_id" {
                continue;
            }
            let v = f.f64(name);
            let top = max_abs(rows.iter().map(|&r| v[r]));
            for (k, &r) in rows.iter().enumerate() {
                let text = std::mem::take(&mut t.rows[k][j]);
                t.rows[k][j] = bar_cell(v[r], top, text);
            }
        }
        s.push_str(&t.html(cx.max_rows));
    }
    Ok(Some(s))
}

// ---------------------------------------------------------------------------------
// comparison and migration: matrices

/// A labelled matrix read from a long or wide table.
struct Matrix {
    title: Option<String>,
    rows: Vec<String>,
    cols: Vec<String>,
    values: HashMap<(usize, usize), f64>,
}

fn text_columns(frame: &Frame) -> Vec<String> {
    frame
        .batch
        .schema()
        .fields()
        .iter()
        .filter(|f| text_type(f.data_type()))
        .map(|f| f.name().clone())
        .collect()
}

fn numeric_columns(frame: &Frame) -> Vec<String> {
    frame
        .batch
        .schema()
        .fields()
        .iter()
        .filter(|f| {
            is_numeric(f.data_type()) && !f.name().ends_with("_id") && f.name() != "segment_id"
        })
        .map(|f| f.name().clone())
        .collect()
}

/// Read matrices from `frame`. Long form (two or more text columns and a count): the
/// two label columns are those whose names contain `segment` but not `segmentation`,
/// else the last two text columns; other text columns split it into several matrices;
/// the count is `customers`, `count`, `n` or `size`, else the first numeric column that
/// is not a share or rate. Wide form (one text column): rows are its values, columns
/// the numeric columns.
fn matrices(frame: &Frame) -> Vec<Matrix> {
    let text = text_columns(frame);
    let nums = numeric_columns(frame);
    if nums.is_empty() {
        return Vec::new();
    }
    let index = |v: &mut Vec<String>, x: &str| -> usize {
        match v.iter().position(|e| e == x) {
            Some(i) => i,
            None => {
                v.push(x.to_string());
                v.len() - 1
            }
        }
    };
    if text.len() >= 2 {
        let labelled: Vec<&String> = text
            .iter()
            .filter(|c| c.contains("segment") && !c.contains("segmentation"))
            .collect();
        let (rc, cc) = if labelled.len() == 2 {
            (labelled[0].clone(), labelled[1].clone())
        } else {
            (text[text.len() - 2].clone(), text[text.len() - 1].clone())
        };
        let count = ["customers", "count", "n", "size"]
            .iter()
            .find(|c| nums.iter().any(|n| n == *c))
            .map(|c| c.to_string())
            .or_else(|| {
                nums.iter()
                    .find(|n| !(n.contains("share") || n.contains("rate") || n.contains("pct")))
                    .cloned()
            })
            .unwrap_or_else(|| nums[0].clone());
        let keys: Vec<String> = text
            .iter()
            .filter(|c| **c != rc && **c != cc)
            .cloned()
            .collect();
        let key_vals: Vec<Vec<String>> = keys.iter().map(|k| frame.text_or_empty(k)).collect();
        let group_key: Vec<String> = (0..frame.rows())
            .map(|r| {
                (0..keys.len())
                    .map(|i| key_vals[i][r].as_str())
                    .collect::<Vec<_>>()
                    .join(" × ")
            })
            .collect();
        let rv = frame.text_or_empty(&rc);
        let cv = frame.text_or_empty(&cc);
        let n = frame.f64(&count);
        return group(&group_key)
            .into_iter()
            .map(|(title, rows)| {
                let mut m = Matrix {
                    title: (!title.is_empty()).then_some(title),
                    rows: Vec::new(),
                    cols: Vec::new(),
                    values: HashMap::new(),
                };
                for r in rows {
                    let i = index(&mut m.rows, &rv[r]);
                    let j = index(&mut m.cols, &cv[r]);
                    if let Some(x) = n[r] {
                        *m.values.entry((i, j)).or_default() += x;
                    }
                }
                m
            })
            .collect();
    }
    if text.len() == 1 {
        let labels = frame.text_or_empty(&text[0]);
        let cols: Vec<Vec<Option<f64>>> = nums.iter().map(|c| frame.f64(c)).collect();
        let mut m = Matrix {
            title: None,
            rows: Vec::new(),
            cols: nums.clone(),
            values: HashMap::new(),
        };
        for (r, label) in labels.iter().enumerate() {
            let i = index(&mut m.rows, label);
            for (j, c) in cols.iter().enumerate() {
                if let Some(x) = c[r] {
                    m.values.insert((i, j), x);
                }
            }
        }
        return vec![m];
    }
    Vec::new()
}

/// A count matrix as a heatmap shaded by the share of its row.
fn count_heatmap(m: &Matrix, max_rows: usize, corner: &str, aria: &str) -> String {
    let nr = m.rows.len().min(max_rows);
    let nc = m.cols.len().min(max_rows);
    let cells = (0..nr)
        .map(|i| {
            let total: f64 = (0..m.cols.len())
                .filter_map(|j| m.values.get(&(i, j)))
                .sum();
            (0..nc)
                .map(|j| {
                    let v = m.values.get(&(i, j)).copied();
                    let share = v.filter(|_| total > 0.0).map(|x| x / total);
                    Cell {
                        fill: Some(charts::sequential(share.unwrap_or(0.0))),
                        text: v.map(num).unwrap_or_else(|| "0".into()),
                        title: format!(
                            "{} → {}: {} ({} of the row)",
                            m.rows[i],
                            m.cols[j],
                            v.map(num).unwrap_or_else(|| "0".into()),
                            share.map(pct).unwrap_or_else(|| "–".into())
                        ),
                    }
                })
                .collect()
        })
        .collect();
    charts::heatmap(&Heatmap {
        rows: m.rows[..nr].to_vec(),
        cols: m.cols[..nc].to_vec(),
        cells,
        aria: aria.to_string(),
        corner: Some(corner.to_string()),
    })
}

fn matrix_table(m: &Matrix, max_rows: usize) -> String {
    let mut head = vec![(String::new(), false)];
    head.extend(m.cols.iter().map(|c| (c.clone(), true)));
    let mut t = Tbl::with_head(head);
    for (i, r) in m.rows.iter().enumerate() {
        let mut row = vec![esc(r)];
        row.extend((0..m.cols.len()).map(|j| opt(m.values.get(&(i, j)).copied())));
        t.row(row);
    }
    t.html(max_rows)
}

fn comparison(cx: &mut Cx) -> Result<Option<String>> {
    let pairs: Vec<&Frame> = cx.data.of(Kind::Pairs).collect();
    let crosstabs: Vec<&Frame> = cx.data.of(Kind::Crosstab).collect();
    if pairs.is_empty() && crosstabs.is_empty() {
        return Ok(None);
    }
    let mut s = String::new();
    for f in pairs {
        let text = text_columns(f);
        let nums = numeric_columns(f);
        // (metric, a, b, value)
        let mut entries: Vec<(String, String, String, f64)> = Vec::new();
        let long = f.has("metric") && f.has("value");
        let labels: Vec<&String> = text
            .iter()
            .filter(|c| c.as_str() != "metric")
            .take(2)
            .collect();
        if labels.len() == 2 {
            let a = f.text_or_empty(labels[0]);
            let b = f.text_or_empty(labels[1]);
            if long {
                let metric = f.text_or_empty("metric");
                let value = f.f64("value");
                for r in 0..f.rows() {
                    if let Some(v) = value[r] {
                        entries.push((metric[r].clone(), a[r].clone(), b[r].clone(), v));
                    }
                }
            } else {
                for m in nums
                    .iter()
                    .filter(|m| !["customers", "count", "n", "rows", "size"].contains(&m.as_str()))
                {
                    let v = f.f64(m);
                    for r in 0..f.rows() {
                        if let Some(x) = v[r] {
                            entries.push((m.clone(), a[r].clone(), b[r].clone(), x));
                        }
                    }
                }
            }
        }
        let mut metrics: Vec<String> = Vec::new();
        for e in &entries {
            if !metrics.contains(&e.0) {
                metrics.push(e.0.clone());
            }
        }
        for metric in &metrics {
            let mut names: Vec<String> = Vec::new();
            for e in entries.iter().filter(|e| &e.0 == metric) {
                for n in [&e.1, &e.2] {
                    if !names.contains(n) {
                        names.push(n.clone());
                    }
                }
            }
            let names: Vec<String> = names.into_iter().take(cx.max_rows).collect();
            let mut val: HashMap<(usize, usize), f64> = HashMap::new();
            for e in entries.iter().filter(|e| &e.0 == metric) {
                if let (Some(i), Some(j)) = (
                    names.iter().position(|n| *n == e.1),
                    names.iter().position(|n| *n == e.2),
                ) {
                    val.insert((i, j), e.3);
                    val.entry((j, i)).or_insert(e.3);
                }
            }
            let identity = {
                let m = metric.to_ascii_lowercase();
                m.contains("ari") || m.contains("nmi") || m.contains("rand") || m.contains("mutual")
            };
            let cells = (0..names.len())
                .map(|i| {
                    (0..names.len())
                        .map(|j| {
                            let v = val
                                .get(&(i, j))
                                .copied()
                                .or((i == j && identity).then_some(1.0));
                            Cell {
                                fill: v.map(|x| charts::sequential(x.clamp(0.0, 1.0))),
                                text: v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "–".into()),
                                title: format!("{} vs {}: {metric} {}", names[i], names[j], opt(v)),
                            }
                        })
                        .collect()
                })
                .collect();
            h3(&mut s, &format!("{metric} between segmentations"));
            let svg = charts::heatmap(&Heatmap {
                rows: names.clone(),
                cols: names.clone(),
                cells,
                aria: format!("{metric} between segmentations"),
                corner: None,
            });
            let legend = charts::legend(&charts::SEQUENTIAL, "0", None, "1", &mut cx.ids);
            let hint = metric_hint(metric);
            s.push_str(&figure(
                &svg,
                true,
                Some(&format!("{legend} {}", esc(hint))),
            ));
            let m = Matrix {
                title: None,
                rows: names.clone(),
                cols: names.clone(),
                values: val,
            };
            s.push_str(&details(
                &format!("{metric} as a table"),
                &matrix_table(&m, cx.max_rows),
            ));
        }
        if metrics.is_empty() {
            s.push_str(&frame_table(f, &(0..f.rows()).collect::<Vec<_>>(), &[]).html(cx.max_rows));
        }
    }
    for f in crosstabs {
        let ms = matrices(f);
        if ms.is_empty() {
            h3(&mut s, &format!("Crosstab ({})", f.name));
            s.push_str(&frame_table(f, &(0..f.rows()).collect::<Vec<_>>(), &[]).html(cx.max_rows));
            continue;
        }
        for m in ms {
            let title = m
                .title
                .clone()
                .map(|t| format!("Crosstab: {t}"))
                .unwrap_or_else(|| "Crosstab".into());
            h3(&mut s, &title);
            let svg = count_heatmap(&m, cx.max_rows, "rows \\ columns", &title);
            let legend = charts::legend(
                &charts::SEQUENTIAL,
                "0% of the row",
                None,
                "100% of the row",
                &mut cx.ids,
            );
            s.push_str(&figure(&svg, true, Some(&legend)));
            s.push_str(&details(
                "Crosstab as a table",
                &matrix_table(&m, cx.max_rows),
            ));
        }
    }
    Ok(Some(s))
}

fn migration(cx: &mut Cx) -> Result<Option<String>> {
    let mig: Vec<&Frame> = cx.data.of(Kind::Migration).collect();
    let sizes: Vec<&Frame> = cx.data.of(Kind::DriftSizes).collect();
    let feats: Vec<&Frame> = cx.data.of(Kind::DriftFeatures).collect();
    let drift_rows = metric_rows(cx.data, Family::Drift);
    // per-feature PSI and KS are in the feature drift table when there is one
    let per_feature = |m: &str| m.starts_with("psi_") || m.starts_with("ks_statistic_");
    let drift_level: Vec<&MetricRow> = drift_rows
        .iter()
        .filter(|r| r.2.is_none() && (feats.is_empty() || !per_feature(&r.1)))
        .collect();
    if mig.is_empty() && sizes.is_empty() && feats.is_empty() && drift_level.is_empty() {
        return Ok(None);
    }
    let mut s = String::new();
    if !drift_level.is_empty() {
        h3(&mut s, "Since the previous run");
        s.push_str(&level_table(&drift_level, false, cx.max_rows));
    }
    for f in mig {
        let ms = matrices(f);
        if ms.is_empty() {
            h3(&mut s, "Migration");
            s.push_str(&frame_table(f, &(0..f.rows()).collect::<Vec<_>>(), &[]).html(cx.max_rows));
            continue;
        }
        for m in ms {
            let title = m
                .title
                .clone()
                .map(|t| format!("Migration: {t}"))
                .unwrap_or_else(|| "Migration matrix".into());
            h3(&mut s, &title);
            // among customers in both runs: drift marks arrivals `(new)`, departures `(gone)`
            let both = |i: &usize, j: &usize| {
                m.rows.get(*i).is_some_and(|r| r != "(new)")
                    && m.cols.get(*j).is_some_and(|c| c != "(gone)")
            };
            let moved: f64 = m
                .values
                .iter()
                .filter(|((i, j), _)| both(i, j) && m.rows.get(*i) != m.cols.get(*j))
                .map(|(_, v)| v)
                .sum();
            let all: f64 = m
                .values
                .iter()
                .filter(|((i, j), _)| both(i, j))
                .map(|(_, v)| v)
                .sum();
            if all > 0.0 {
                let _ = write!(
                    s,
                    "<p class=\"note\">{} of the {} customers in both runs ({}) changed segment.</p>",
                    num(moved),
                    num(all),
                    pct(moved / all)
                );
            }
            let svg = count_heatmap(&m, cx.max_rows, "previous \\ current", &title);
            let legend = charts::legend(
                &charts::SEQUENTIAL,
                "0% of the row",
                None,
                "100% of the row",
                &mut cx.ids,
            );
            s.push_str(&figure(&svg, true, Some(&legend)));
            s.push_str(&details(
                "Migration as a table",
                &matrix_table(&m, cx.max_rows),
            ));
        }
    }
    for f in sizes {
        h3(&mut s, "Size changes");
        let rows: Vec<usize> = (0..f.rows()).collect();
        let mut t = frame_table(f, &rows, &[]);
        // bars on the change column, when there is one
        if let Some(ci) = t
            .head
            .iter()
            .position(|(h, _)| h.contains("change") || h.contains("growth"))
        {
            let name = t.head[ci].0.clone();
            let v = f.f64(&name);
            let top = max_abs(v.iter().copied());
            for (r, row) in t.rows.iter_mut().enumerate() {
                let text = std::mem::take(&mut row[ci]);
                row[ci] = bar_cell(v[r], top, text);
            }
        }
        s.push_str(&t.html(cx.max_rows));
    }
    for f in feats {
        h3(&mut s, "Feature drift");
        let rows: Vec<usize> = (0..f.rows()).collect();
        let mut t = frame_table(f, &rows, &[]);
        if let Some(ci) = t.head.iter().position(|(h, _)| h == "psi") {
            let v = f.f64("psi");
            let top = max_abs(v.iter().copied()).max(0.25);
            t.head.push(("PSI reading".into(), false));
            for (r, row) in t.rows.iter_mut().enumerate() {
                let text = std::mem::take(&mut row[ci]);
                row[ci] = bar_cell(v[r], top, text);
                row.push(
                    match v[r] {
                        Some(p) if p < 0.1 => "stable",
                        Some(p) if p < 0.25 => "moderate shift",
                        Some(_) => "large shift",
                        None => "",
                    }
                    .into(),
                );
            }
            t.class.push(None);
        }
        s.push_str(&t.html(cx.max_rows));
        s.push_str("<p class=\"note\">PSI (population stability index): below 0.1 stable, 0.1–0.25 a moderate shift, above 0.25 a large one. KS: the largest gap between the two runs' cumulative distributions (0 to 1).</p>");
    }
    Ok(Some(s))
}

// ---------------------------------------------------------------------------------
// personas, playbook, rules

fn personas(cx: &Cx) -> Option<String> {
    let frames: Vec<&Frame> = cx.data.of(Kind::Personas).collect();
    if frames.is_empty() {
        return None;
    }
    let several = frames.iter().map(|f| f.groups().len()).sum::<usize>() > 1;
    let mut s = String::new();
    for f in frames {
        let labels = f.text_or_empty("segment");
        let name = f.text_or_empty("name");
        let desc = f.text_or_empty("description");
        let descriptors = f.text_or_empty("descriptors");
        let parts: Vec<(&str, Vec<String>)> = [
            ("demographics", "Who they are"),
            ("spending", "What they buy"),
            ("behaviour", "How they buy"),
            ("value", "What they are worth"),
        ]
        .iter()
        .filter(|(c, _)| f.has(c))
        .map(|(c, title)| (*title, f.text_or_empty(c)))
        .collect();
        for (seg, rows) in f.groups() {
            if several {
                h3(&mut s, &seg);
            }
            s.push_str("<div class=\"cards\">");
            for &r in rows.iter().take(cx.max_rows) {
                let _ = write!(
                    s,
                    "<article class=\"card\"><h3>{}</h3><p class=\"meta\">segment <b>{}</b> · {}</p><p>{}</p>",
                    esc(&name[r]),
                    esc(&labels[r]),
                    esc(&seg),
                    esc(&desc[r])
                );
                let chips: Vec<&str> = descriptors[r]
                    .split(", ")
                    .filter(|x| !x.trim().is_empty())
                    .collect();
                if !chips.is_empty() {
                    s.push_str("<ul class=\"chips\">");
                    for c in chips {
                        let _ = write!(s, "<li class=\"chip\">{}</li>", esc(c));
                    }
                    s.push_str("</ul>");
                }
                let filled: Vec<&(&str, Vec<String>)> = parts
                    .iter()
                    .filter(|(_, v)| !v[r].trim().is_empty())
                    .collect();
                if !filled.is_empty() {
                    s.push_str("<dl>");
                    for (title, v) in filled {
                        let _ = write!(s, "<dt>{}</dt><dd><ul>", esc(title));
                        for item in v[r].split("; ").filter(|x| !x.trim().is_empty()) {
                            let _ = write!(s, "<li>{}</li>", esc(item));
                        }
                        s.push_str("</ul></dd>");
                    }
                    s.push_str("</dl>");
                }
                s.push_str("</article>");
            }
            s.push_str("</div>");
            if rows.len() > cx.max_rows {
                let _ = write!(
                    s,
                    "<p class=\"more\">{} more personas not shown (<code>max_rows</code> is {}).</p>",
                    rows.len() - cx.max_rows,
                    cx.max_rows
                );
            }
        }
    }
    Some(s)
}

/// A coloured badge for a playbook action.
fn action_badge(action: &str) -> String {
    let key = action.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    let class = match key.as_str() {
        "retain" => "a-retain",
        "upsell" => "a-upsell",
        "cross_sell" => "a-cross_sell",
        "nurture" => "a-nurture",
        "reactivate" => "a-reactivate",
        "win_back" => "a-win_back",
        "deprioritise" | "deprioritize" => "a-deprioritise",
        _ => "",
    };
    if class.is_empty() {
        let h = action
            .bytes()
            .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
        let c = charts::CATEGORICAL[h as usize % charts::CATEGORICAL.len()];
        let light = (
            (c.0 as u16 + 3 * 255) / 4,
            (c.1 as u16 + 3 * 255) / 4,
            (c.2 as u16 + 3 * 255) / 4,
        );
        format!(
            "<span class=\"badge\" style=\"background:#{:02x}{:02x}{:02x};border-color:{}\">{}</span>",
            light.0,
            light.1,
            light.2,
            charts::hex(c),
            esc(action)
        )
    } else {
        format!("<span class=\"badge {class}\">{}</span>", esc(action))
    }
}

fn playbook(cx: &Cx) -> Option<String> {
    let frames: Vec<&Frame> = cx.data.of(Kind::Playbook).collect();
    if frames.is_empty() {
        return None;
    }
    let mut s = String::new();
    for f in frames {
        let labels = f.text_or_empty("segment");
        let action = f.text_or_empty("action");
        let why = f.text_or_empty("why");
        let offer = f.text_or_empty("offer");
        let rule = f.text_or_empty("rule");
        let customers = f.f64("customers");
        let rshare = f.f64("revenue_share");
        let groups = f.groups();
        let several = groups.len() > 1;
        for (seg, rows) in groups {
            if several {
                h3(&mut s, &seg);
            }
            let mut t = Tbl::new(&[
                ("segment", false),
                ("action", false),
                ("why", false),
                ("offer", false),
                ("customers", true),
                ("revenue share", true),
                ("matched rule", false),
            ])
            .class(2, "wrap-text")
            .class(3, "wrap-text");
            for &r in &rows {
                t.row(vec![
                    esc(&labels[r]),
                    action_badge(&action[r]),
                    esc(&why[r]),
                    esc(&offer[r]),
                    customers[r].map(|c| int(c as i64)).unwrap_or_default(),
                    rshare[r].map(pct).unwrap_or_default(),
                    if rule[r].is_empty() {
                        String::new()
                    } else {
                        format!("<code>{}</code>", esc(&truncate(&rule[r], 80)))
                    },
                ]);
            }
            s.push_str(&t.html(cx.max_rows));
        }
    }
    Some(s)
}

fn rules(cx: &Cx) -> Option<String> {
    let frames: Vec<&Frame> = cx.data.of(Kind::Rules).collect();
    if frames.is_empty() {
        return None;
    }
    let mut s = String::new();
    for f in frames {
        let labels = f.text_or_empty("segment");
        let rule = f.text_or_empty("rule");
        let customers = f.f64("customers");
        let precision = f.f64("precision");
        let recall = f.f64("recall");
        let fidelity = cx
            .data
            .run
            .as_ref()
            .and_then(|r| r.step(f.step()))
            .and_then(|st| st.facts.get("fidelity").cloned());
        for (seg, rows) in f.groups() {
            h3(&mut s, &seg);
            if let Some(fd) = fidelity
                .as_ref()
                .and_then(|v| v.get(&seg).or(Some(v)))
                .and_then(Value::as_f64)
            {
                let _ = write!(
                    s,
                    "<p class=\"note\">The rules put {} of customers in their own segment (fidelity).</p>",
                    pct(fd)
                );
            }
            let mut t = Tbl::new(&[
                ("segment", false),
                ("rule", false),
                ("customers", true),
                ("precision", true),
                ("recall", true),
            ])
            .class(1, "wrap-text");
            for &r in &rows {
                t.row(vec![
                    esc(&labels[r]),
                    format!("<code>{}</code>", esc(&rule[r])),
                    customers[r].map(|c| int(c as i64)).unwrap_or_default(),
                    bar_cell(precision[r], 1.0, precision[r].map(pct).unwrap_or_default()),
                    bar_cell(recall[r], 1.0, recall[r].map(pct).unwrap_or_default()),
                ]);
            }
            s.push_str(&t.html(cx.max_rows));
        }
    }
    Some(s)
}

/// Facts of the header: (label, value) pairs.
pub fn headline(data: &Data) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(run) = &data.run {
        let failed = run
            .steps
            .iter()
            .filter(|s| s.status.as_deref() == Some("failed"))
            .count();
        out.push((
            "steps".into(),
            format!(
                "{}{}",
                run.steps.len(),
                if failed > 0 {
                    format!(" ({failed} failed)")
                } else {
                    String::new()
                }
            ),
        ));
        let total: f64 = run.steps.iter().filter_map(|s| s.duration_ms).sum();
        out.push(("step time".into(), duration(total)));
    }
    let customers = data
        .sizes
        .iter()
        .map(|s| s.total)
        .max()
        .map(|n| n as f64)
        .or_else(|| {
            data.run.as_ref().and_then(|r: &Run| {
                r.steps
                    .iter()
                    .rev()
                    .filter(|s| s.stage == "clean")
                    .find_map(|s| s.fact_f64("customers"))
            })
        });
    if let Some(c) = customers {
        out.push(("customers".into(), int(c as i64)));
    }
    let segs = all_sizes(data);
    if !segs.is_empty() {
        out.push(("segmentations".into(), segs.len().to_string()));
        let most = segs.iter().map(|s| s.segments.len()).max().unwrap_or(0);
        out.push(("segments".into(), most.to_string()));
    }
    out
}

/// A short description of an unrecognised input's columns.
pub fn columns_text(cols: &[String]) -> String {
    let shown: Vec<&str> = cols.iter().take(8).map(String::as_str).collect();
    let mut t = shown.join(", ");
    if cols.len() > 8 {
        let _ = write!(t, ", … ({} columns)", cols.len());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_names_match_the_map_component() {
        let f: Vec<String> = ["recency_days", "frequency", "monetary_sum", "tenure_days"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            axis_name("PC1", &f, &[-0.5, 0.55, 0.6, 0.1]),
            "PC1: +monetary_sum +frequency −recency_days"
        );
        assert_eq!(
            axis_name("PC2", &f, &[0.2, -0.1, 0.9, -0.4]),
            "PC2: +monetary_sum −tenure_days"
        );
        assert_eq!(axis_name("PC2", &f, &[0.0; 4]), "PC2: none");
    }

    #[test]
    fn badges_escape_unknown_actions() {
        assert!(action_badge("win_back").contains("a-win_back"));
        let b = action_badge("<b>call</b>");
        assert!(b.contains("&lt;b&gt;call&lt;/b&gt;"));
    }
}
