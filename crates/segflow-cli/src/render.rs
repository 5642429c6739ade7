//! Printing diagnostics: miette's graphical report (coloured on a terminal, plain when piped),
//! one JSON object per line with `--log-format json`.

use crate::LogFormat;
use miette::{GraphicalReportHandler, GraphicalTheme};
use segflow_engine::diag::Diagnostic;
use std::io::IsTerminal;

pub fn diagnostics(diags: &[Diagnostic], format: LogFormat) {
    let n = diags.len();
    for d in diags {
        match format {
            LogFormat::Json => {
                let mut v = d.to_json();
                v["level"] = "error".into();
                eprintln!("{v}");
            }
            LogFormat::Text => eprintln!("{}", render(d)),
        }
    }
    if n > 1 && format == LogFormat::Text {
        eprintln!("{n} errors");
    }
}

pub fn render(d: &Diagnostic) -> String {
    let tty = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if tty {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    // Wrap for a person at a terminal; keep each sentence on one line when piped, so logs
    // stay greppable.
    let width = if tty { 100 } else { 400 };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_context_lines(1);
    let mut out = String::new();
    // A snippet of a very long line (a minified or generated file) helps nobody: name
    // the location in the message instead.
    let long_line = d
        .source
        .as_ref()
        .zip(d.labels.first())
        .is_some_and(|(src, (loc, _))| {
            let start = src.text[..loc.offset.min(src.text.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            src.text[start..]
                .split('\n')
                .next()
                .is_some_and(|l| l.len() > 400)
        });
    if long_line {
        let mut plain = d.clone();
        plain.message = format!("{}: {}", d.location().unwrap_or_default(), d.message);
        plain.source = None;
        plain.labels.clear();
        if handler.render_report(&mut out, &plain).is_ok() {
            return out;
        }
    }
    if handler.render_report(&mut out, d).is_err() {
        out = match d.location() {
            Some(loc) => format!("error: {loc}: {}", d.message),
            None => format!("error: {}", d.message),
        };
    }
    out
}
