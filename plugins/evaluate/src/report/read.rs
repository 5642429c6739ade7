//! What the report's inputs are, recognised by their columns (and port name), and the
//! run description the host hands to evaluate steps.
//!
//! Small tables (one row per segment, feature or metric) are read whole; a segmentation's
//! `assignments` (one row per customer, possibly millions) are only counted, batch by
//! batch, into segment sizes and, for RFM, customers per R × FM cell.

use crate::inputs::{is_numeric, is_text};
use ahash::AHashMap as HashMap;
use segflow_sdk::arrow::array::{AsArray, Float64Array, Int32Array};
use segflow_sdk::arrow::compute::cast;
use segflow_sdk::arrow::util::display::{ArrayFormatter, FormatOptions};
use segflow_sdk::prelude::*;
use serde_json::Value;

/// What an input table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `profile`'s `profiles`.
    Profiles,
    /// An evaluator's `metrics` (segmentation, metric, segment, value).
    Metrics,
    /// `persona`'s `personas`.
    Personas,
    /// `playbook`'s `playbook`.
    Playbook,
    /// `target`'s `targets`.
    Targets,
    /// `map`'s `map`.
    Map,
    /// `map`'s `loadings`.
    Loadings,
    /// `explain`'s `rules`.
    Rules,
    /// `rfm`'s `model`.
    RfmModel,
    /// `compare`'s `pairs`.
    Pairs,
    /// `stability`'s `resamples` (one row per re-fit with its `ari`).
    Resamples,
    /// `compare`'s `crosstab`.
    Crosstab,
    /// `drift`'s `migration`.
    Migration,
    /// `drift`'s `sizes`.
    DriftSizes,
    /// `drift`'s `features`.
    DriftFeatures,
    /// `clv`'s `segments`.
    ClvSegments,
    /// A segmenter's `assignments` (one row per customer).
    Assignments,
    /// Another per-segment table (segmentation, segment, customers, ...), e.g. `kpis`'
    /// `kpis` port.
    SegmentTable,
}

/// The port part of a `needs:` reference (`step.port`), if it names one.
pub fn port_of(reference: &str) -> Option<&str> {
    reference.split_once('.').map(|(_, p)| p)
}

/// The step part of a `needs:` reference.
pub fn step_of(reference: &str) -> &str {
    reference
        .split_once('.')
        .map(|(s, _)| s)
        .unwrap_or(reference)
}

fn has(schema: &Schema, name: &str) -> bool {
    schema.field_with_name(name).is_ok()
}

fn has_text(schema: &Schema, name: &str) -> bool {
    schema
        .field_with_name(name)
        .is_ok_and(|f| is_text(f.data_type()) || is_dictionary_text(f.data_type()))
}

fn has_num(schema: &Schema, name: &str) -> bool {
    schema
        .field_with_name(name)
        .is_ok_and(|f| is_numeric(f.data_type()))
}

fn is_dictionary_text(t: &DataType) -> bool {
    matches!(t, DataType::Dictionary(_, v) if is_text(v))
}

/// Text of any kind: Utf8, LargeUtf8, Utf8View or a dictionary of them.
pub fn text_type(t: &DataType) -> bool {
    is_text(t) || is_dictionary_text(t)
}

/// Recognise a table by its columns, with its port name (when known) for the ports whose
/// columns are not fixed. The rules, in order (the first that holds wins):
/// see `docs/report.md`, "How inputs are recognised".
pub fn recognise(port: Option<&str>, schema: &Schema) -> Option<Kind> {
    let all = |cols: &[&str]| cols.iter().all(|c| has(schema, c));
    let port = port.unwrap_or("");
    if all(&[
        "segmentation",
        "segment_id",
        "segment",
        "customers",
        "customer_share",
        "revenue",
        "revenue_share",
    ]) {
        return Some(Kind::Profiles);
    }
    if has_text(schema, "segmentation") && has_text(schema, "metric") && has_num(schema, "value") {
        return Some(Kind::Metrics);
    }
    if has(schema, "segment") {
        if all(&["name", "description"]) {
            return Some(Kind::Personas);
        }
        if all(&["action", "why"]) {
            return Some(Kind::Playbook);
        }
        if all(&["rank", "score", "chosen"]) {
            return Some(Kind::Targets);
        }
        if all(&["x", "y", "customers"]) {
            return Some(Kind::Map);
        }
        if all(&["rule", "precision", "recall"]) {
            return Some(Kind::Rules);
        }
        if all(&["r_low", "r_high", "fm_low", "fm_high", "size"]) {
            return Some(Kind::RfmModel);
        }
    }
    if all(&["feature", "pc1", "pc2"]) {
        return Some(Kind::Loadings);
    }
    if port == "resamples" || (has(schema, "resample") && has_num(schema, "ari")) {
        return Some(Kind::Resamples);
    }
    if port == "pairs" || (has_num(schema, "ari") && has_num(schema, "nmi")) {
        return Some(Kind::Pairs);
    }
    if port == "crosstab" {
        return Some(Kind::Crosstab);
    }
    if port == "migration" {
        return Some(Kind::Migration);
    }
    if port == "sizes" && !schema.fields().is_empty() {
        return Some(Kind::DriftSizes);
    }
    if has_num(schema, "psi") || (port == "features" && has_num(schema, "ks")) {
        return Some(Kind::DriftFeatures);
    }
    if has(schema, "segment") && has_num(schema, "clv_total") && has_num(schema, "clv_mean") {
        return Some(Kind::ClvSegments);
    }
    if has(schema, "segmentation") && has(schema, "segment") && has_num(schema, "customers") {
        return Some(Kind::SegmentTable);
    }
    if has_text(schema, "segment")
        && !has(schema, "segmentation")
        && (schema
            .field_with_name("segment_id")
            .is_ok_and(|f| f.data_type() == &DataType::Int32)
            || port == "assignments")
    {
        return Some(Kind::Assignments);
    }
    None
}

/// One input read into memory.
pub struct Frame {
    /// The `needs:` reference it came in under.
    pub name: String,
    pub batch: RecordBatch,
}

impl Frame {
    pub fn step(&self) -> &str {
        step_of(&self.name)
    }

    pub fn has(&self, col: &str) -> bool {
        self.batch.column_by_name(col).is_some()
    }

    pub fn rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// A numeric column as f64 (null and NaN are `None`); all `None` when missing or
    /// not numeric.
    pub fn f64(&self, col: &str) -> Vec<Option<f64>> {
        let n = self.batch.num_rows();
        let Some(c) = self.batch.column_by_name(col) else {
            return vec![None; n];
        };
        let c = if c.data_type() == &DataType::Boolean {
            cast(c, &DataType::UInt8).and_then(|c| cast(&c, &DataType::Float64))
        } else if is_numeric(c.data_type()) {
            cast(c, &DataType::Float64)
        } else {
            return vec![None; n];
        };
        let Ok(c) = c else {
            return vec![None; n];
        };
        let Some(c) = c.as_any().downcast_ref::<Float64Array>() else {
            return vec![None; n];
        };
        (0..n)
            .map(|i| (!c.is_null(i) && !c.value(i).is_nan()).then(|| c.value(i)))
            .collect()
    }

    /// A column as display text (null is `None`); all `None` when missing.
    pub fn text(&self, col: &str) -> Vec<Option<String>> {
        let n = self.batch.num_rows();
        match self.batch.column_by_name(col) {
            Some(c) => display(c.as_ref()),
            None => vec![None; n],
        }
    }

    /// A text column with nulls as empty text.
    pub fn text_or_empty(&self, col: &str) -> Vec<String> {
        self.text(col)
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect()
    }

    /// The `segmentation` column, or the input's step id for tables without one.
    pub fn segmentations(&self) -> Vec<String> {
        if self.has("segmentation") {
            self.text("segmentation")
                .into_iter()
                .map(|s| s.unwrap_or_else(|| self.step().to_string()))
                .collect()
        } else {
            vec![self.step().to_string(); self.rows()]
        }
    }

    /// The rows of each segmentation, in order of first appearance.
    pub fn groups(&self) -> Vec<(String, Vec<usize>)> {
        group(&self.segmentations())
    }
}

/// Row indices grouped by key, in order of first appearance.
pub fn group(keys: &[String]) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for (r, k) in keys.iter().enumerate() {
        match at.get(k.as_str()) {
            Some(&i) => out[i].1.push(r),
            None => {
                at.insert(k, out.len());
                out.push((k.clone(), vec![r]));
            }
        }
    }
    out
}

/// Any column as display text; null is `None`.
pub fn display(col: &dyn Array) -> Vec<Option<String>> {
    let n = col.len();
    if let Ok(c) = cast(col, &DataType::Utf8) {
        let c = c.as_string::<i32>();
        return (0..n)
            .map(|i| (!c.is_null(i)).then(|| c.value(i).to_string()))
            .collect();
    }
    match ArrayFormatter::try_new(col, &FormatOptions::default()) {
        Ok(f) => (0..n)
            .map(|i| (!col.is_null(i)).then(|| f.value(i).to_string()))
            .collect(),
        Err(_) => vec![None; n],
    }
}

/// The customers of one segment of a segmentation.
#[derive(Debug, Clone)]
pub struct SegSize {
    pub id: Option<i32>,
    pub label: String,
    pub customers: u64,
}

/// Segment sizes of one segmentation, counted from its assignments.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub segmentation: String,
    /// In `segment_id` order (unassigned rows last).
    pub segments: Vec<SegSize>,
    pub total: u64,
}

/// Customers per (R score, FM score) cell of an RFM segmentation, and the segment that
/// holds most of each cell.
#[derive(Debug, Clone, Default)]
pub struct RfmCells {
    pub segmentation: String,
    pub cells: HashMap<(i32, i32), u64>,
    /// Per cell: the label holding most of its customers.
    pub dominant: HashMap<(i32, i32), String>,
}

/// The label given to customers without a segment.
pub const UNASSIGNED: &str = "(no segment)";

/// Count a segmentation's assignments, batch by batch.
pub fn count_assignments(
    segmentation: &str,
    table: Table,
    cancelled: &dyn Fn() -> bool,
) -> Result<(Sizes, Option<RfmCells>)> {
    let schema = table.schema();
    let with_ids = schema
        .field_with_name("segment_id")
        .is_ok_and(|f| f.data_type() == &DataType::Int32);
    let with_scores = has_num(&schema, "r_score") && has_num(&schema, "fm_score");
    // by id: id → (label, count); by label when there is no id column
    let mut by_id: HashMap<Option<i32>, (String, u64)> = HashMap::new();
    let mut by_label: HashMap<String, u64> = HashMap::new();
    let mut cell_seg: HashMap<(i32, i32, Option<i32>), u64> = HashMap::new();
    let mut cell_label: HashMap<(i32, i32, String), u64> = HashMap::new();
    for batch in table {
        if cancelled() {
            return Err(Error::new("cancelled"));
        }
        let batch = batch?;
        let label_col = batch
            .column_by_name("segment")
            .ok_or_else(|| Error::new(format!("`{segmentation}` has no `segment` column")))?;
        let label_col = if label_col.data_type() == &DataType::Utf8 {
            label_col.clone()
        } else {
            cast(label_col, &DataType::Utf8)?
        };
        let labels = label_col.as_string::<i32>();
        let label_at = |i: usize| -> String {
            if labels.is_null(i) {
                UNASSIGNED.to_string()
            } else {
                labels.value(i).to_string()
            }
        };
        let scores = if with_scores {
            match (
                batch.column_by_name("r_score"),
                batch.column_by_name("fm_score"),
            ) {
                (Some(r), Some(fm)) => {
                    Some((cast(r, &DataType::Int32)?, cast(fm, &DataType::Int32)?))
                }
                _ => None,
            }
        } else {
            None
        };
        let scores = scores.as_ref().and_then(|(r, fm)| {
            Some((
                r.as_any().downcast_ref::<Int32Array>()?,
                fm.as_any().downcast_ref::<Int32Array>()?,
            ))
        });
        if with_ids {
            let ids = batch
                .column_by_name("segment_id")
                .and_then(|c| c.as_any().downcast_ref::<Int32Array>())
                .ok_or_else(|| Error::new("segment_id is not Int32"))?;
            let no_nulls = ids.null_count() == 0 && labels.null_count() == 0;
            let values = ids.values();
            for i in 0..batch.num_rows() {
                let id = if no_nulls || (!ids.is_null(i) && !labels.is_null(i)) {
                    Some(values[i])
                } else {
                    None
                };
                match by_id.get_mut(&id) {
                    Some(e) => e.1 += 1,
                    None => {
                        let l = if id.is_some() {
                            label_at(i)
                        } else {
                            UNASSIGNED.to_string()
                        };
                        by_id.insert(id, (l, 1));
                    }
                }
                if let Some((r, fm)) = scores {
                    if !r.is_null(i) && !fm.is_null(i) {
                        *cell_seg.entry((r.value(i), fm.value(i), id)).or_default() += 1;
                    }
                }
            }
        } else {
            for i in 0..batch.num_rows() {
                let key = if labels.is_null(i) {
                    UNASSIGNED
                } else {
                    labels.value(i)
                };
                match by_label.get_mut(key) {
                    Some(c) => *c += 1,
                    None => {
                        by_label.insert(key.to_string(), 1);
                    }
                }
                if let Some((r, fm)) = scores {
                    if !r.is_null(i) && !fm.is_null(i) {
                        *cell_label
                            .entry((r.value(i), fm.value(i), key.to_string()))
                            .or_default() += 1;
                    }
                }
            }
        }
    }
    let mut segments: Vec<SegSize> = if with_ids {
        let mut v: Vec<SegSize> = by_id
            .iter()
            .map(|(id, (label, n))| SegSize {
                id: *id,
                label: label.clone(),
                customers: *n,
            })
            .collect();
        v.sort_by_key(|s| (s.id.is_none(), s.id));
        v
    } else {
        let mut v: Vec<SegSize> = by_label
            .into_iter()
            .map(|(label, n)| SegSize {
                id: None,
                label,
                customers: n,
            })
            .collect();
        v.sort_by(|a, b| {
            (a.label == UNASSIGNED)
                .cmp(&(b.label == UNASSIGNED))
                .then_with(|| a.label.cmp(&b.label))
        });
        v
    };
    segments.retain(|s| s.customers > 0);
    let total = segments.iter().map(|s| s.customers).sum();
    let rfm = with_scores.then(|| {
        let mut cells = RfmCells {
            segmentation: segmentation.to_string(),
            ..Default::default()
        };
        let mut best: HashMap<(i32, i32), (u64, String)> = HashMap::new();
        let mut consider = |r: i32, fm: i32, label: String, n: u64| {
            *cells.cells.entry((r, fm)).or_default() += n;
            let e = best.entry((r, fm)).or_insert((0, String::new()));
            if n > e.0 || (n == e.0 && label < e.1) {
                *e = (n, label);
            }
        };
        for ((r, fm, id), n) in &cell_seg {
            let label = by_id
                .get(id)
                .map(|e| e.0.clone())
                .unwrap_or_else(|| UNASSIGNED.to_string());
            consider(*r, *fm, label, *n);
        }
        for ((r, fm, label), n) in cell_label {
            consider(r, fm, label, n);
        }
        cells.dominant = best.into_iter().map(|(k, (_, l))| (k, l)).collect();
        cells
    });
    Ok((
        Sizes {
            segmentation: segmentation.to_string(),
            segments,
            total,
        },
        rfm,
    ))
}

/// One input of a step, as the run description gives it.
#[derive(Debug, Clone, Default)]
pub struct Need {
    pub name: String,
    pub step: String,
    pub port: String,
}

/// One step of the run, as the run description gives it.
#[derive(Debug, Clone, Default)]
pub struct StepInfo {
    pub id: String,
    pub stage: String,
    pub component: String,
    pub needs: Vec<Need>,
    /// `succeeded`, `failed`, `skipped`, ...; `None` while it has not finished.
    pub status: Option<String>,
    pub error: Option<String>,
    /// Taken from the step cache (or an earlier run by `--resume`) instead of run.
    pub cached: bool,
    pub duration_ms: Option<f64>,
    /// Rows per output port, in the order given.
    pub rows: Vec<(String, u64)>,
    pub facts: serde_json::Map<String, Value>,
}

impl StepInfo {
    /// A numeric fact.
    pub fn fact_f64(&self, key: &str) -> Option<f64> {
        self.facts.get(key).and_then(Value::as_f64)
    }
    /// Rows of a port.
    pub fn port_rows(&self, port: &str) -> Option<u64> {
        self.rows.iter().find(|(p, _)| p == port).map(|(_, n)| *n)
    }
}

/// The run so far, as the host describes it to evaluate steps.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub pipeline: String,
    pub description: Option<String>,
    pub steps: Vec<StepInfo>,
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Run {
    /// Read the host's run description leniently: missing or mistyped fields are left
    /// empty rather than failing the report.
    pub fn parse(v: &Value) -> Run {
        let steps = v
            .get("steps")
            .and_then(Value::as_array)
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|s| StepInfo {
                id: str_of(s, "id"),
                stage: str_of(s, "stage"),
                component: str_of(s, "component"),
                needs: s
                    .get("needs")
                    .and_then(Value::as_array)
                    .map(|a| a.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .map(|n| match n {
                        Value::String(name) => Need {
                            name: name.clone(),
                            step: step_of(name).to_string(),
                            port: port_of(name).unwrap_or("main").to_string(),
                        },
                        _ => Need {
                            name: str_of(n, "name"),
                            step: str_of(n, "step"),
                            port: str_of(n, "port"),
                        },
                    })
                    .collect(),
                status: s.get("status").and_then(Value::as_str).map(str::to_string),
                error: s.get("error").and_then(Value::as_str).map(str::to_string),
                cached: s.get("cached").and_then(Value::as_bool).unwrap_or(false),
                duration_ms: s.get("duration_ms").and_then(Value::as_f64),
                rows: s
                    .get("rows")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                            .collect()
                    })
                    .unwrap_or_default(),
                facts: s
                    .get("facts")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        Run {
            pipeline: str_of(v, "pipeline"),
            description: v
                .get("description")
                .and_then(Value::as_str)
                .filter(|d| !d.trim().is_empty())
                .map(str::to_string),
            steps,
        }
    }

    pub fn step(&self, id: &str) -> Option<&StepInfo> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// Everything the report was given.
#[derive(Default)]
pub struct Data {
    pub run: Option<Run>,
    /// Recognised tables, in input order.
    pub frames: Vec<(Kind, Frame)>,
    /// Segment sizes counted from each assignments input.
    pub sizes: Vec<Sizes>,
    /// R × FM cell counts of RFM assignments.
    pub rfm_cells: Vec<RfmCells>,
    /// Inputs the report did not recognise: reference and columns.
    pub ignored: Vec<(String, Vec<String>)>,
}

impl Data {
    /// The tables of one kind.
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = &Frame> {
        self.frames
            .iter()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, f)| f)
    }

    pub fn any(&self, kind: Kind) -> bool {
        self.of(kind).next().is_some()
    }

    /// Read and recognise the inputs. `port` resolves a reference without a port (plain
    /// `needs: [step]`) to the port it reads, when the run description says.
    pub fn load(
        inputs: Vec<Named<Table>>,
        run: Option<Run>,
        port: &dyn Fn(&str) -> Option<String>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Data> {
        let mut data = Data {
            run,
            ..Default::default()
        };
        for input in inputs {
            let schema = input.value.schema();
            let p = port_of(&input.name)
                .map(str::to_string)
                .or_else(|| port(&input.name));
            match recognise(p.as_deref(), &schema) {
                Some(Kind::Assignments) => {
                    let seg = step_of(&input.name).to_string();
                    let (sizes, cells) = count_assignments(&seg, input.value, cancelled)
                        .map_err(|e| e.context(format!("reading input `{}`", input.name)))?;
                    data.sizes.push(sizes);
                    data.rfm_cells.extend(cells);
                }
                Some(kind) => {
                    let batch = input
                        .value
                        .concat()
                        .map_err(|e| e.context(format!("reading input `{}`", input.name)))?;
                    data.frames.push((
                        kind,
                        Frame {
                            name: input.name,
                            batch,
                        },
                    ));
                }
                None => data.ignored.push((
                    input.name,
                    schema.fields().iter().map(|f| f.name().clone()).collect(),
                )),
            }
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(cols: &[(&str, DataType)]) -> Schema {
        Schema::new(
            cols.iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn recognises_by_columns_then_port() {
        use DataType::*;
        let assignments = schema(&[
            ("customer_id", Int64),
            ("segment_id", Int32),
            ("segment", Utf8),
        ]);
        assert_eq!(
            recognise(Some("assignments"), &assignments),
            Some(Kind::Assignments)
        );
        assert_eq!(recognise(None, &assignments), Some(Kind::Assignments));
        let metrics = schema(&[
            ("segmentation", Utf8),
            ("metric", Utf8),
            ("segment", Utf8),
            ("value", Float64),
        ]);
        assert_eq!(recognise(None, &metrics), Some(Kind::Metrics));
        let t = schema(&[("from", Utf8), ("to", Utf8), ("customers", Int64)]);
        assert_eq!(recognise(Some("migration"), &t), Some(Kind::Migration));
        assert_eq!(recognise(Some("crosstab"), &t), Some(Kind::Crosstab));
        assert_eq!(recognise(None, &t), None);
        let clv = schema(&[
            ("segment", Utf8),
            ("clv_total", Float64),
            ("clv_mean", Float64),
        ]);
        assert_eq!(recognise(Some("segments"), &clv), Some(Kind::ClvSegments));
        let feats = schema(&[("feature", Utf8), ("psi", Float64), ("ks", Float64)]);
        assert_eq!(
            recognise(Some("features"), &feats),
            Some(Kind::DriftFeatures)
        );
    }
}
