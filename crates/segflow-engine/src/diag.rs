//! Diagnostics: what failed, where (`FILE:LINE:COLUMN`), and what to do.

use miette::{LabeledSpan, NamedSource, SourceSpan};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A pipeline file as read from disk, kept for error reporting.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    /// Byte offset of each character, plus the end, to turn parser char indices into
    /// byte offsets.
    char_starts: Vec<usize>,
    named: NamedSource<String>,
}

impl SourceFile {
    pub fn new(path: &Path, text: String) -> Arc<Self> {
        let mut char_starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        char_starts.push(text.len());
        let named = NamedSource::new(path.display().to_string(), text.clone());
        Arc::new(SourceFile {
            path: path.to_path_buf(),
            text,
            char_starts,
            named,
        })
    }

    pub fn display_name(&self) -> String {
        self.path.display().to_string()
    }

    /// Byte offset of a character index.
    pub fn byte_of_char(&self, char_index: usize) -> usize {
        self.char_starts
            .get(char_index)
            .copied()
            .unwrap_or(self.text.len())
    }

    /// Byte offset of 1-based `line` and 1-based `column` (in characters).
    pub fn byte_of_line_col(&self, line: usize, column: usize) -> usize {
        let mut offset = 0;
        for (i, l) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                return offset
                    + l.char_indices()
                        .nth(column.saturating_sub(1))
                        .map_or(l.len(), |(b, _)| b);
            }
            offset += l.len();
        }
        self.text.len()
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

/// A byte range in a [`SourceFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub offset: usize,
    pub len: usize,
}

impl Loc {
    pub fn new(offset: usize, len: usize) -> Self {
        Loc { offset, len }
    }
}

/// One error (or warning) about a pipeline, pointing into its file where it can.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub code: &'static str,
    pub message: String,
    pub help: Option<String>,
    pub source: Option<Arc<SourceFile>>,
    /// Labelled ranges; the first is the primary location.
    pub labels: Vec<(Loc, String)>,
}

impl Diagnostic {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            help: None,
            source: None,
            labels: Vec::new(),
        }
    }

    pub fn at(mut self, source: &Arc<SourceFile>, loc: Loc, label: impl Into<String>) -> Self {
        self.source = Some(source.clone());
        self.labels.push((loc, label.into()));
        self
    }

    pub fn label(mut self, loc: Loc, label: impl Into<String>) -> Self {
        self.labels.push((loc, label.into()));
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `FILE:LINE:COLUMN` of the primary label, when there is one.
    pub fn location(&self) -> Option<String> {
        let src = self.source.as_ref()?;
        let (loc, _) = self.labels.first()?;
        let (line, col) = src.line_col(loc.offset);
        Some(format!("{}:{}:{}", src.display_name(), line, col))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "code": self.code,
            "message": self.message,
            "location": self.location(),
            "help": self.help,
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source
            .as_ref()
            .map(|s| &s.named as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        Some(Box::new(self.labels.iter().enumerate().map(
            |(i, (loc, text))| {
                let span = SourceSpan::new(loc.offset.into(), loc.len);
                let text = (!text.is_empty()).then(|| text.clone());
                if i == 0 {
                    LabeledSpan::new_primary_with_span(text, span)
                } else {
                    LabeledSpan::new_with_span(text, span)
                }
            },
        )))
    }
}

/// The closest candidate to `word`, if any is close enough to suggest.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Candidates sorted by similarity to `word`, the `n` closest.
pub fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    n: usize,
) -> Vec<&'a str> {
    let mut v: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .collect();
    v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    v.into_iter().take(n).map(|(_, c)| c).collect()
}
