//! The `report` component: one self-contained `report.html` about the run.

mod charts;
mod esc;
mod read;
mod sections;

pub use sections::SectionId;

use esc::{esc, int};
use read::{Data, Run};
use sections::{Cx, Tbl};
use segflow_sdk::arrow::array::{Int64Array, StringArray};
use segflow_sdk::prelude::*;
use std::fmt::Write;
use std::sync::Arc;

const STYLE: &str = include_str!("report/style.css");

/// Opens every folded table before printing, so a PDF has the numbers under each chart
/// (the stylesheet does the same in browsers that can style `::details-content`).
const PRINT_SCRIPT: &str = "addEventListener('beforeprint',function(){document.querySelectorAll('details').forEach(function(d){d.open=true})});";

/// One self-contained HTML page about the run, written to `report.html` at the top of
/// the run directory: the pipeline graph with each step's status and time, data quality
/// and quarantine counts, segment sizes, the profile heatmap, the RFM grid, the
/// positioning map, target segments, CLV by segment, validity and stability, segment
/// KPIs, the comparison of segmentations, migration and drift, persona cards, the
/// playbook and the segment rules. Every chart is inline SVG with its numbers in a table
/// right under it; the page has no scripts to speak of, no fonts, images or styles from
/// anywhere else, and prints to PDF (one section per page, tables unfolded).
///
/// Give it any outputs of earlier steps in `needs:`; each is recognised by its columns
/// (and, for `compare` and `drift` outputs, its port name) and feeds the sections that
/// use it. A section with nothing to show is left out and listed under "Not in this
/// run"; inputs it does not recognise are listed there too. Per-customer inputs
/// (`assignments`) are only counted, so a report on millions of customers stays small
/// and fast. `docs/report.md` lists the recognition rules and how to read each section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The page title. Default: the pipeline's name.
    #[serde(default)]
    pub title: Option<String>,
    /// The sections to show, in this order. Default: every section, in the order
    /// pipeline, quality, sizes, profiles, rfm, map, targets, clv, validity, kpis,
    /// comparison, migration, personas, playbook, rules.
    #[serde(default)]
    pub sections: Option<Vec<SectionId>>,
    /// Most rows in any table, and most segments in any chart; the rest are counted in
    /// a note (the full tables are in the run directory).
    #[serde(default = "default_max_rows")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_rows: usize,
    /// The page's language, a BCP 47 tag such as `en`, `zh-Hant` or `ja` (sets
    /// `<html lang>`, which browsers use for fonts, hyphenation and reading aloud; the
    /// report's own words stay English).
    #[serde(default = "default_lang")]
    pub lang: String,
}

fn default_max_rows() -> usize {
    50
}
fn default_lang() -> String {
    "en".into()
}

fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("html", DataType::Utf8, false),
        Field::new("bytes", DataType::Int64, false),
    ]))
}

impl Report {
    fn check(&self) -> Result<()> {
        if self.max_rows == 0 {
            return Err(Error::config(
                "max_rows",
                "max_rows must be at least 1 (it is the most rows any table of the report shows)",
            ));
        }
        let lang = self.lang.trim();
        if lang.is_empty()
            || lang.len() > 35
            || !lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || lang.starts_with('-')
            || lang.ends_with('-')
        {
            return Err(Error::config(
                "lang",
                format!(
                    "`{}` is not a language tag; write a BCP 47 tag such as `en`, `de`, `zh-Hant` or `ja`",
                    self.lang
                ),
            ));
        }
        if let Some(list) = &self.sections {
            if list.is_empty() {
                return Err(Error::config(
                    "sections",
                    "the list is empty; leave `sections` out to show every section, or name the ones to show",
                ));
            }
            for (i, s) in list.iter().enumerate() {
                if list[..i].contains(s) {
                    return Err(Error::config(
                        &format!("sections.{i}"),
                        format!("`{}` is listed twice; list each section once", s.id()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The whole page.
    fn render(&self, data: &Data) -> Result<(String, Vec<&'static str>, Vec<&'static str>)> {
        let pipeline = data
            .run
            .as_ref()
            .map(|r| r.pipeline.clone())
            .filter(|p| !p.is_empty());
        let title = self
            .title
            .clone()
            .or_else(|| pipeline.clone())
            .unwrap_or_else(|| "segflow report".into());
        let order: Vec<SectionId> = self
            .sections
            .clone()
            .unwrap_or_else(|| SectionId::ALL.to_vec());
        let mut cx = Cx {
            data,
            max_rows: self.max_rows,
            ids: Default::default(),
        };
        let mut shown: Vec<(SectionId, String)> = Vec::new();
        let mut missing: Vec<SectionId> = Vec::new();
        for id in order {
            match id.render(&mut cx)? {
                Some(body) => shown.push((id, body)),
                None => missing.push(id),
            }
        }

        let mut h =
            String::with_capacity(64 * 1024 + shown.iter().map(|s| s.1.len()).sum::<usize>());
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"segflow {}\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
            esc(self.lang.trim()),
            env!("CARGO_PKG_VERSION"),
            esc(&title)
        );
        let _ = write!(
            h,
            "<header class=\"top\"><div class=\"wrap\"><p class=\"kicker\">segflow report{}</p><h1>{}</h1>",
            pipeline
                .as_ref()
                .filter(|p| **p != title)
                .map(|p| format!(" · pipeline <code>{}</code>", esc(p)))
                .unwrap_or_default(),
            esc(&title)
        );
        if let Some(d) = data.run.as_ref().and_then(|r| r.description.as_ref()) {
            let _ = write!(h, "<p class=\"desc\">{}</p>", esc(d));
        }
        let stats = sections::headline(data);
        if !stats.is_empty() {
            h.push_str("<dl class=\"stats\">");
            for (k, v) in stats {
                let _ = write!(h, "<div><dt>{}</dt><dd>{}</dd></div>", esc(&k), esc(&v));
            }
            h.push_str("</dl>");
        }
        h.push_str("</div></header>\n");
        if !shown.is_empty() {
            h.push_str("<nav class=\"toc wrap\" aria-label=\"sections\"><ol>");
            for (id, _) in &shown {
                let _ = write!(
                    h,
                    "<li><a href=\"#{}\">{}</a></li>",
                    id.id(),
                    esc(id.title())
                );
            }
            if !missing.is_empty() || !data.ignored.is_empty() {
                h.push_str("<li><a href=\"#not-in-this-run\">Not in this run</a></li>");
            }
            h.push_str("</ol></nav>\n");
        }
        h.push_str("<main class=\"wrap\">\n");
        for (id, body) in &shown {
            let _ = writeln!(
                h,
                "<section id=\"{}\"><h2>{}</h2><p class=\"lead\">{}</p>{body}</section>",
                id.id(),
                esc(id.title()),
                id.lead()
            );
        }
        if !missing.is_empty() || !data.ignored.is_empty() {
            h.push_str(
                "<section id=\"not-in-this-run\" class=\"missing\"><h2>Not in this run</h2>",
            );
            if !missing.is_empty() {
                h.push_str("<p class=\"lead\">These sections had nothing to show. Each needs the input named; add it to the report step's <code>needs:</code>.</p>");
                let mut t = Tbl::new(&[("section", false), ("needs", false)]);
                for id in &missing {
                    t.row(vec![esc(id.title()), esc(id.needs()).replace("`", "")]);
                }
                h.push_str(&t.html(usize::MAX));
            }
            if !data.ignored.is_empty() {
                h.push_str("<p class=\"lead\">These inputs were not recognised, so no section uses them:</p><ul>");
                for (name, cols) in &data.ignored {
                    let _ = write!(
                        h,
                        "<li><code>{}</code> (columns: {})</li>",
                        esc(name),
                        esc(&sections::columns_text(cols))
                    );
                }
                h.push_str("</ul>");
            }
            h.push_str("</section>\n");
        }
        h.push_str("</main>\n");
        let _ = write!(
            h,
            "<footer class=\"wrap\">Made by segflow {}. This page is self-contained: it loads nothing from anywhere, and prints to PDF with one section per page.</footer>\n<script>{PRINT_SCRIPT}</script>\n</body>\n</html>\n",
            env!("CARGO_PKG_VERSION")
        );
        Ok((
            h,
            shown.iter().map(|(id, _)| id.id()).collect(),
            missing.iter().map(|id| id.id()).collect(),
        ))
    }
}

impl Component for Report {
    const NAME: &'static str = "report";
    const STAGE: Stage = Stage::Evaluate;

    fn ports() -> Ports {
        Ports::new(Stage::Evaluate, 0, usize::MAX)
            .inputs_doc("any outputs of earlier steps: profiles, personas, playbook, targets, map and loadings, rules, assignments, an rfm model, metrics, stability resamples, clv segments, compare pairs and crosstab, drift migration, sizes and features; each is recognised by its columns")
            .outputs(&[(
                "report",
                "one row: html (the whole page, which the engine writes to report.html) and bytes",
            )])
    }

    /// Never cached: the report describes the run it is part of.
    fn fingerprint(&self) -> Result<Fingerprint> {
        Ok(Fingerprint::Never(
            "the report describes the run it is part of (timings, statuses)".into(),
        ))
    }

    fn plan(&self, _inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        self.check()?;
        Ok(Outputs::new().port("report", output_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        self.check()?;
        let run = ctx.run_info().map(|v| Run::parse(&v));
        let me = ctx.step_id();
        let needs: Vec<(String, String)> = run
            .as_ref()
            .and_then(|r| r.step(&me))
            .map(|s| {
                s.needs
                    .iter()
                    .map(|n| (n.name.clone(), n.port.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let port = |name: &str| {
            needs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p.clone())
        };
        let cancelled = || ctx.is_cancelled();
        let data = Data::load(inputs, run, &port, &cancelled)?;
        for (name, _) in &data.ignored {
            segflow_sdk::tracing::warn!(
                input = %name,
                "the report does not recognise input `{name}`, so no section uses it; docs/report.md lists the tables it reads"
            );
        }
        let (html, shown, missing) = self.render(&data)?;
        let bytes = html.len() as i64;
        segflow_sdk::tracing::info!(
            bytes,
            sections = shown.len(),
            "report written ({} KB)",
            int(bytes / 1024)
        );
        ctx.fact("bytes", bytes);
        ctx.fact("sections", &shown);
        ctx.fact("not_in_this_run", &missing);
        ctx.fact(
            "inputs_not_recognised",
            data.ignored
                .iter()
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>(),
        );
        let batch = RecordBatch::try_new(
            output_schema(),
            vec![
                Arc::new(StringArray::from(vec![html])),
                Arc::new(Int64Array::from(vec![bytes])),
            ],
        )?;
        Ok(Outputs::new().port("report", Table::from_batch(batch)))
    }
}
