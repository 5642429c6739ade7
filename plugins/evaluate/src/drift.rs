//! The `drift` component: what moved since a previous run.

use crate::common::Metrics;
use crate::inputs::{self, is_numeric, segmentation_name};
use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use segflow_ml::drift::{self as ml, PsiParams};
use segflow_sdk::arrow::array::{AsArray, Float64Array, Int64Array, StringArray};
use segflow_sdk::arrow::compute::cast;
use segflow_sdk::arrow::compute::concat_batches;
use segflow_sdk::arrow::datatypes::Int64Type;
use segflow_sdk::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

// SHA-256 shared with the collect plugin (the plugins do not depend on `sha2`).
#[path = "../../collect/src/sha256.rs"]
mod sha256;

/// The `from_segment` of customers who are new in this run.
pub const NEW: &str = "(new)";
/// The `to_segment` of customers of the previous run who are not in this one.
pub const GONE: &str = "(gone)";

/// What to do when the `previous` directory does not exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IfMissing {
    /// Fail the step with a message naming the path.
    #[default]
    Error,
    /// Warn, and write empty outputs with the fact `previous_found: false` (for the
    /// first run of a monthly pipeline).
    Skip,
}

/// Compare this run with a previous run directory: a segment migration matrix (how
/// many customers moved from segment A to B, with new customers coming from `(new)`
/// and departed ones going to `(gone)`), the change in every segment's size, and the
/// drift of every feature (population stability index over quantile bins of the
/// previous run, and the two-sample Kolmogorov-Smirnov statistic). Re-run the pipeline
/// monthly and point `previous:` at last month's run directory to see what moved.
///
/// `needs:` the current per-customer features (e.g. `customer_features`) and one
/// segmentation (a segmenter's `assignments`). The previous run's files are
/// `PREVIOUS/steps/<step>/<port>.parquet`: by default the same step ids and ports as
/// these inputs (`segments.assignments` → `steps/segments/assignments.parquet`).
/// Segments are matched across runs by label, so use segmenters whose labels mean the
/// same thing from run to run (RFM, rules, lifecycle); k-means cluster numbers can
/// change between runs.
///
/// PSI: the previous run's values are cut at their quantiles `1/bins, 2/bins, …`
/// (duplicate cut points dropped, bins right-closed); nulls form one more bin when
/// either run has any; `PSI = Σ (a − e) · ln(a / e)` over the current (`a`) and
/// previous (`e`) bin shares, an empty bin's share replaced by 0.0001. Common reading:
/// below 0.1 stable, 0.1–0.25 a moderate shift, above 0.25 a major shift (a warning is
/// logged). KS: the largest gap between the two empirical distribution functions
/// (0 = identical, 1 = no overlap); no p-value (with thousands of customers every
/// shift is "significant").
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    /// Directory of the previous run, e.g. `runs/quickstart/latest` or the `--out` of
    /// last month's run. Relative paths are resolved from the working directory;
    /// `${ENV}` interpolation works, e.g. `previous: ${PREVIOUS_RUN}` (its value then
    /// shows as `***` in messages, as every interpolated value does). It must not be
    /// this run's own `--out` directory (its outputs are cleared when this run starts).
    pub previous: String,
    /// The previous run's segmentation: `step` or `step.port` whose Parquet file to
    /// read. Default: the step (and port) of this step's segmentation input. A port
    /// left out is the input's port, else `assignments`.
    #[serde(default)]
    pub segmentation_step: Option<String>,
    /// The previous run's features: `step` or `step.port`. Default: the step (and
    /// port) of this step's features input. A port left out is the input's port, else
    /// `main`.
    #[serde(default)]
    pub features_step: Option<String>,
    /// Column identifying the customer, in both runs.
    #[serde(default = "default_key")]
    pub key: String,
    /// Numeric (or Boolean) columns to measure drift on. Default: every numeric column
    /// of the current features except the key.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Number of PSI bins: quantile bins of the previous run's values (fewer when
    /// values tie). At least 2.
    #[serde(default = "default_bins")]
    #[schemars(range(min = 2))]
    pub bins: usize,
    /// What to do when the `previous` directory does not exist: `error` (default), or
    /// `skip` (warn and write empty outputs; for a pipeline's first run).
    #[serde(default)]
    pub if_missing: IfMissing,
}

fn default_key() -> String {
    "customer_id".into()
}
fn default_bins() -> usize {
    ml::DEFAULT_BINS
}

/// PSI above which a feature is reported as a major shift.
const PSI_MAJOR: f64 = 0.25;

fn migration_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("from_segment", DataType::Utf8, false),
        Field::new("to_segment", DataType::Utf8, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("share_of_from", DataType::Float64, true),
    ]))
}

fn sizes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("segment", DataType::Utf8, false),
        Field::new("customers_previous", DataType::Int64, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("change", DataType::Int64, false),
        Field::new("change_pct", DataType::Float64, true),
        Field::new("share_previous", DataType::Float64, true),
        Field::new("share", DataType::Float64, true),
    ]))
}

fn features_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("feature", DataType::Utf8, false),
        Field::new("psi", DataType::Float64, true),
        Field::new("ks_statistic", DataType::Float64, true),
        Field::new("mean_previous", DataType::Float64, true),
        Field::new("mean", DataType::Float64, true),
        Field::new("null_share_previous", DataType::Float64, true),
        Field::new("null_share", DataType::Float64, true),
        Field::new("bins", DataType::Int64, true),
    ]))
}

/// `step` or `step.port`, split.
fn parse_ref(r: &str, field: &str) -> Result<(String, Option<String>)> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    };
    let (step, port) = match r.split_once('.') {
        Some((s, p)) => (s, Some(p)),
        None => (r, None),
    };
    if !ok(step) || port.is_some_and(|p| !ok(p)) {
        return Err(Error::config(
            field,
            format!("`{r}` is not a step reference; write a step id, optionally with a port: `segments` or `segments.assignments`"),
        ));
    }
    Ok((step.to_string(), port.map(str::to_string)))
}

/// What the plan resolved.
struct Resolved {
    features: Vec<String>,
    params: PsiParams,
    /// (step, port) of the previous segmentation and features files.
    seg_file: (String, String),
    feat_file: (String, String),
    seg_name: String,
}

impl Drift {
    fn resolve(&self, inputs: &[Named<SchemaRef>]) -> Result<Resolved> {
        let roles = inputs::roles(inputs, |s: &SchemaRef| s.clone(), &self.key)?;
        if roles.segmentations.len() != 1 {
            return Err(Error::new(format!(
                "drift compares one segmentation, got {} ({}); add one drift step per segmentation",
                roles.segmentations.len(),
                roles
                    .segmentations
                    .iter()
                    .map(|&i| format!("`{}`", inputs[i].name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if self.previous.trim().is_empty() {
            return Err(Error::config(
                "previous",
                "`previous` is empty; name the directory of an earlier run, e.g. `runs/<pipeline>/latest`",
            ));
        }
        let params = PsiParams::new(self.bins).map_err(|e| Error::config("bins", e.to_string()))?;
        let schema = &inputs[roles.features].value;
        let features = match &self.features {
            Some(list) => {
                let mut seen = HashSet::new();
                for (i, f) in list.iter().enumerate() {
                    let field = inputs::feature_field(schema, &self.key, i, f)?;
                    if !is_numeric(field.data_type()) {
                        return Err(Error::config(
                            &format!("features.{i}"),
                            format!(
                                "column `{f}` is {}, not numeric; drift is measured on numeric columns",
                                field.data_type()
                            ),
                        ));
                    }
                    if !seen.insert(f) {
                        return Err(Error::config(
                            &format!("features.{i}"),
                            format!("`{f}` is listed twice"),
                        ));
                    }
                }
                list.clone()
            }
            None => inputs::numeric_columns(schema, &self.key, &[]),
        };
        let seg_input = &inputs[roles.segmentations[0]].name;
        let feat_input = &inputs[roles.features].name;
        let file = |configured: &Option<String>, input: &str, field: &str, default_port: &str| {
            let (in_step, in_port) = parse_ref(input, field)?;
            Ok::<_, Error>(match configured {
                Some(r) => {
                    let (s, p) = parse_ref(r, field)?;
                    (s, p.or(in_port).unwrap_or_else(|| default_port.into()))
                }
                None => (in_step, in_port.unwrap_or_else(|| default_port.into())),
            })
        };
        Ok(Resolved {
            features,
            params,
            seg_file: file(
                &self.segmentation_step,
                seg_input,
                "segmentation_step",
                "assignments",
            )?,
            feat_file: file(&self.features_step, feat_input, "features_step", "main")?,
            seg_name: segmentation_name(seg_input),
        })
    }
}

impl Component for Drift {
    const NAME: &'static str = "drift";
    const STAGE: Stage = Stage::Evaluate;

    fn ports() -> Ports {
        Ports::new(Stage::Evaluate, 2, 2)
            .inputs_doc("the current per-customer features (e.g. customer_features) and the current segmentation (a segmenter's assignments), joined on the key; the previous run is read from the `previous` directory")
            .outputs(&[
                ("migration", "from_segment, to_segment, customers, share_of_from: every cell of the migration matrix from the previous run's segments (and `(new)`) to this run's (and `(gone)`)"),
                ("sizes", "one row per segment label of either run: customers_previous, customers, change, change_pct, share_previous, share"),
                ("features", "one row per feature: psi, ks_statistic, mean_previous, mean, null shares and the number of PSI bins"),
                ("metrics", "long table (segmentation, metric, segment, value): stayed_share, new/gone customers, size changes per segment, psi_<feature> and ks_statistic_<feature>"),
            ])
    }

    /// The previous run: the SHA-256 of its `manifest.json` and the size and
    /// modification time of the step files it could read (those of `segmentation_step`
    /// and `features_step` when both are set, else every step's), or `{"previous":
    /// "missing"}` when it does not exist and `if_missing: skip` applies.
    fn fingerprint(&self) -> Result<Fingerprint> {
        let dir = PathBuf::from(&self.previous);
        if !dir.exists() {
            return Ok(match self.if_missing {
                IfMissing::Skip => Fingerprint::Source(serde_json::json!({"previous": "missing"})),
                IfMissing::Error => Fingerprint::Never(
                    "the previous run directory does not exist (the run reports it)".into(),
                ),
            });
        }
        if !dir.is_dir() {
            return Ok(Fingerprint::Never(
                "`previous` is not a directory (the run reports it)".into(),
            ));
        }
        // `latest` is a symlink: name the run it points at.
        let resolved = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        let manifest = dir.join("manifest.json");
        let manifest_sha = if manifest.exists() {
            Some(sha256::file_hex(&manifest).map_err(|e| {
                Error::new(format!(
                    "cannot read `{}/manifest.json`: {e}",
                    self.previous
                ))
            })?)
        } else {
            None
        };
        let steps = dir.join("steps");
        let step_dirs: Vec<PathBuf> = match (&self.segmentation_step, &self.features_step) {
            (Some(a), Some(b)) => [a, b]
                .iter()
                .filter_map(|r| parse_ref(r, "").ok())
                .map(|(step, _)| steps.join(step))
                .collect(),
            _ => std::fs::read_dir(&steps)
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default(),
        };
        let mut files = Vec::new();
        for d in step_dirs {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().and_then(|x| x.to_str()) != Some("parquet") {
                    continue;
                }
                if let Ok(m) = std::fs::metadata(&p) {
                    let mtime = m.modified().ok().and_then(|t| {
                        t.duration_since(std::time::UNIX_EPOCH)
                            .ok()
                            .and_then(|d| i64::try_from(d.as_nanos()).ok())
                    });
                    let rel = p.strip_prefix(&dir).unwrap_or(&p).display().to_string();
                    files.push(
                        serde_json::json!({"path": rel, "bytes": m.len(), "mtime_ns": mtime}),
                    );
                }
            }
        }
        files.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
        Ok(Fingerprint::Source(serde_json::json!({
            "previous": resolved.display().to_string(),
            "manifest_sha256": manifest_sha,
            "files": files,
        })))
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        self.resolve(inputs)?;
        Ok(Outputs::new()
            .port("migration", migration_schema())
            .port("sizes", sizes_schema())
            .port("features", features_schema())
            .port("metrics", crate::common::metrics_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let schemas: Vec<Named<SchemaRef>> = inputs
            .iter()
            .map(|i| Named {
                name: i.name.clone(),
                value: i.value.schema(),
            })
            .collect();
        let r = self.resolve(&schemas)?;
        let dir = PathBuf::from(&self.previous);
        if !dir.exists() {
            let what = format!(
                "the previous run directory `{}` does not exist (relative paths are resolved from {})",
                self.previous,
                cwd()
            );
            if self.if_missing == IfMissing::Skip {
                segflow_sdk::tracing::warn!("{what}; nothing to compare with, so the drift outputs are empty (if_missing: skip)");
                ctx.fact("previous_found", false);
                return Ok(Outputs::new()
                    .port(
                        "migration",
                        Table::from_batch(RecordBatch::new_empty(migration_schema())),
                    )
                    .port(
                        "sizes",
                        Table::from_batch(RecordBatch::new_empty(sizes_schema())),
                    )
                    .port(
                        "features",
                        Table::from_batch(RecordBatch::new_empty(features_schema())),
                    )
                    .port("metrics", Table::from_batch(Metrics::default().finish()?)));
            }
            return Err(Error::config(
                "previous",
                format!(
                    "{what}. Point `previous:` at the directory of an earlier run of this pipeline: `runs/<pipeline>/latest` after a run without `--out`, or the `--out DIR` you gave last time; for the very first run set `if_missing: skip`"
                ),
            ));
        }
        if !dir.is_dir() {
            return Err(Error::config(
                "previous",
                format!(
                    "`{}` is a file, not a run directory; point `previous:` at the directory that holds `manifest.json` and `steps/`",
                    self.previous
                ),
            ));
        }
        let manifest = read_manifest(&dir, &self.previous)?;
        if let Some(m) = &manifest {
            check_manifest(m, &self.previous, &[&r.seg_file.0, &r.feat_file.0])?;
            if let (Some(info), Some(prev)) =
                (ctx.run_info(), m.get("pipeline").and_then(|p| p.as_str()))
            {
                if let Some(now) = info.get("pipeline").and_then(|p| p.as_str()) {
                    if now != prev {
                        segflow_sdk::tracing::warn!(
                            previous = %prev,
                            current = %now,
                            "the previous run is of another pipeline; make sure its segments and features mean the same"
                        );
                    }
                }
            }
        }

        // the previous run's files
        let seg_path = step_file(&dir, &r.seg_file);
        let prev_seg = read_parquet(
            &seg_path,
            &self.previous,
            &[&self.key, "segment", "segment_id"],
            "segmentation_step",
        )?;
        for c in [self.key.as_str(), "segment"] {
            if prev_seg.column_by_name(c).is_none() {
                return Err(Error::config(
                    "segmentation_step",
                    format!(
                        "`{}` has no column `{c}`, so it is not a segmentation with key `{}`; set `segmentation_step:` to the previous run's segmenter step (its `assignments`)",
                        seg_path.display(),
                        self.key
                    ),
                ));
            }
        }
        let feat_path = step_file(&dir, &r.feat_file);
        let wanted: Vec<&str> = r.features.iter().map(String::as_str).collect();
        let prev_feat = if wanted.is_empty() {
            None
        } else {
            Some(read_parquet(
                &feat_path,
                &self.previous,
                &wanted,
                "features_step",
            )?)
        };

        // the current run
        let joined = inputs::join(inputs, &self.key)?;
        let seg = joined
            .segmentations
            .first()
            .ok_or_else(|| Error::new("no segmentation input"))?;
        let f = &joined.features;

        // previous segments, ordered by segment id (when there is one) then label
        let label_col = cast(
            prev_seg
                .column_by_name("segment")
                .ok_or_else(|| Error::new("no segment column"))?,
            &DataType::Utf8,
        )?;
        let prev_labels = label_col.as_string::<i32>();
        let prev_ids = if prev_seg.column_by_name("segment_id").is_some() {
            inputs::numeric(&prev_seg, "segment_id", "segmentation_step")?
        } else {
            vec![None; prev_seg.num_rows()]
        };
        if let Some(row) = (0..prev_labels.len()).find(|&i| prev_labels.is_null(i)) {
            return Err(Error::new(format!(
                "`{}` has a null segment at row {row}; the previous segmentation needs one for every customer",
                seg_path.display()
            )));
        }
        let mut first_seen: HashMap<&str, Option<i64>> = HashMap::new();
        for (i, id) in prev_ids.iter().enumerate() {
            first_seen
                .entry(prev_labels.value(i))
                .or_insert(id.map(|v| v as i64));
        }
        let mut prev_order: Vec<(Option<i64>, &str)> =
            first_seen.into_iter().map(|(l, id)| (id, l)).collect();
        prev_order.sort_by(|a, b| (a.0.is_none(), a.0, a.1).cmp(&(b.0.is_none(), b.0, b.1)));
        let prev_pos: HashMap<&str, usize> = prev_order
            .iter()
            .enumerate()
            .map(|(p, (_, l))| (*l, p))
            .collect();
        let prev_from: Vec<usize> = (0..prev_labels.len())
            .map(|i| prev_pos.get(prev_labels.value(i)).copied().unwrap_or(0))
            .collect();
        let from_labels: Vec<String> = prev_order.iter().map(|(_, l)| l.to_string()).collect();

        // migration counts: from = previous segment or NEW, to = current segment or GONE
        let to_labels: Vec<String> = seg.segments.iter().map(|(_, l)| l.clone()).collect();
        let (n_from, n_to) = (from_labels.len(), to_labels.len());
        let cur_to = seg.positions();
        let shape = Shape {
            n_from,
            n_to,
            path: &seg_path,
        };
        let fkey = f
            .column_by_name(&self.key)
            .ok_or_else(|| Error::config("key", format!("column `{}` is missing", self.key)))?;
        let pkey = prev_seg.column_by_name(&self.key).ok_or_else(|| {
            Error::config(
                "key",
                format!("`{}` has no column `{}`", seg_path.display(), self.key),
            )
        })?;
        let counts = if fkey.data_type().is_integer() && pkey.data_type().is_integer() {
            let ints = |c: &ArrayRef| -> Result<Vec<Option<i64>>> {
                let c = cast(c, &DataType::Int64)?;
                let c = c.as_primitive::<Int64Type>();
                Ok((0..c.len())
                    .map(|i| (!c.is_null(i)).then(|| c.value(i)))
                    .collect())
            };
            let fk = ints(fkey)?;
            let cur: Vec<Option<i64>> = seg.rows.iter().map(|&r| fk[r]).collect();
            migration_counts(&ints(pkey)?, &prev_from, &cur, &cur_to, &shape)?
        } else {
            let fk = inputs::text(f, &self.key, "key")?;
            let cur: Vec<Option<String>> = seg.rows.iter().map(|&r| fk[r].clone()).collect();
            let pk = inputs::text(&prev_seg, &self.key, "key")?;
            migration_counts(&pk, &prev_from, &cur, &cur_to, &shape)?
        };
        let mut mig = MigrationRows::default();
        let from_names: Vec<&str> = from_labels
            .iter()
            .map(String::as_str)
            .chain([NEW])
            .collect();
        let to_names: Vec<&str> = to_labels.iter().map(String::as_str).chain([GONE]).collect();
        for (fi, row) in counts.iter().enumerate() {
            let total: i64 = row.iter().sum();
            for (ti, &c) in row.iter().enumerate() {
                if fi == n_from && ti == n_to {
                    continue;
                }
                mig.push(
                    from_names[fi],
                    to_names[ti],
                    c,
                    (total > 0).then(|| c as f64 / total as f64),
                );
            }
        }
        let new_customers: i64 = counts[n_from].iter().sum();
        let gone_customers: i64 = counts.iter().map(|r| r[n_to]).sum();
        let stayed: i64 = (0..n_from)
            .filter_map(|fi| {
                to_labels
                    .iter()
                    .position(|l| *l == from_labels[fi])
                    .map(|ti| counts[fi][ti])
            })
            .sum();
        let in_both: i64 = counts[..n_from]
            .iter()
            .map(|r| r[..n_to].iter().sum::<i64>())
            .sum();
        let stayed_share = (in_both > 0).then(|| stayed as f64 / in_both as f64);

        // sizes: current labels first, then labels only the previous run had
        let n_prev = prev_seg.num_rows() as i64;
        let n_cur = seg.rows.len() as i64;
        let mut size_labels: Vec<&str> = to_labels.iter().map(String::as_str).collect();
        for l in &from_labels {
            if !to_labels.contains(l) {
                size_labels.push(l);
            }
        }
        let mut sizes = SizeRows::default();
        let mut metrics = Metrics::default();
        let name = &r.seg_name;
        for l in &size_labels {
            let before = from_labels
                .iter()
                .position(|x| x == l)
                .map_or(0, |fi| counts[fi].iter().sum::<i64>());
            let now = to_labels
                .iter()
                .position(|x| x == l)
                .map_or(0, |ti| counts.iter().map(|r| r[ti]).sum::<i64>());
            let change = now - before;
            let pct = (before > 0).then(|| 100.0 * change as f64 / before as f64);
            sizes.push(
                l,
                before,
                now,
                change,
                pct,
                (n_prev > 0).then(|| before as f64 / n_prev as f64),
                (n_cur > 0).then(|| now as f64 / n_cur as f64),
            );
            metrics.push_segment(name, "customers_previous", Some(l), Some(before as f64));
            metrics.push_segment(name, "customers", Some(l), Some(now as f64));
            metrics.push_segment(name, "change", Some(l), Some(change as f64));
            metrics.push_segment(name, "change_pct", Some(l), pct);
            if let Some(fi) = from_labels.iter().position(|x| x == l) {
                let total: i64 = counts[fi].iter().sum();
                let kept = to_labels
                    .iter()
                    .position(|x| x == l)
                    .map_or(0, |ti| counts[fi][ti]);
                metrics.push_segment(
                    name,
                    "stayed_share",
                    Some(l),
                    (total > 0).then(|| kept as f64 / total as f64),
                );
            }
        }
        metrics.push(name, "customers_previous", Some(n_prev as f64));
        metrics.push(name, "customers", Some(n_cur as f64));
        metrics.push(name, "new_customers", Some(new_customers as f64));
        metrics.push(name, "gone_customers", Some(gone_customers as f64));
        metrics.push(name, "stayed_customers", Some(stayed as f64));
        metrics.push(name, "moved_customers", Some((in_both - stayed) as f64));
        metrics.push(name, "stayed_share", stayed_share);

        // feature drift, features in parallel (same result at any thread count)
        let current: Vec<Vec<Option<f64>>> = r
            .features
            .iter()
            .enumerate()
            .map(|(i, c)| inputs::numeric(f, c, &format!("features.{i}")))
            .collect::<Result<_>>()?;
        let previous: Vec<Option<Vec<Option<f64>>>> = r
            .features
            .iter()
            .map(|c| {
                let Some(pf) = &prev_feat else {
                    return Ok(None);
                };
                match pf.schema().field_with_name(c) {
                    Ok(field) if is_numeric(field.data_type()) => {
                        inputs::numeric(pf, c, "features_step").map(Some)
                    }
                    Ok(field) => {
                        segflow_sdk::tracing::warn!(
                            feature = %c,
                            "`{c}` is {} in the previous run, not numeric; its drift is null",
                            field.data_type()
                        );
                        Ok(None)
                    }
                    Err(_) => {
                        segflow_sdk::tracing::warn!(
                            feature = %c,
                            file = %feat_path.display(),
                            "the previous run's features have no column `{c}`; its drift is null"
                        );
                        Ok(None)
                    }
                }
            })
            .collect::<Result<_>>()?;
        let drifts: Vec<Result<FeatureDrift>> = ctx.pool().install(|| {
            use rayon::prelude::*;
            r.features
                .par_iter()
                .zip(current.par_iter())
                .zip(previous.par_iter())
                .map(|((name, cur), prev)| feature_drift(name, prev.as_deref(), cur, &r.params))
                .collect()
        });
        let mut feats = FeatureRows::default();
        let mut max_psi: Option<f64> = None;
        let mut drifted = Vec::new();
        for (fname, d) in r.features.iter().zip(drifts) {
            let d = d?;
            if let Some(p) = d.psi {
                max_psi = Some(max_psi.map_or(p, |m: f64| m.max(p)));
                if p >= PSI_MAJOR {
                    drifted.push(fname.clone());
                    segflow_sdk::tracing::warn!(
                        feature = %fname,
                        psi = p,
                        "a major shift in `{fname}` since the previous run (PSI {p:.3} >= {PSI_MAJOR})"
                    );
                }
            }
            metrics.push(name, &format!("psi_{fname}"), d.psi);
            metrics.push(name, &format!("ks_statistic_{fname}"), d.ks);
            feats.push(fname, d);
        }
        metrics.push(name, "max_psi", max_psi);

        ctx.fact("previous_found", true);
        ctx.fact("previous", &self.previous);
        if let Some(m) = &manifest {
            ctx.fact(
                "previous_run",
                serde_json::json!({
                    "pipeline": m.get("pipeline"),
                    "started_at": m.get("started_at"),
                    "status": m.get("status"),
                }),
            );
        }
        ctx.fact(
            "files",
            serde_json::json!({
                "segmentation": seg_path.display().to_string(),
                "features": prev_feat.as_ref().map(|_| feat_path.display().to_string()),
            }),
        );
        ctx.fact("customers_previous", n_prev);
        ctx.fact("customers", n_cur);
        ctx.fact("new_customers", new_customers);
        ctx.fact("gone_customers", gone_customers);
        ctx.fact("stayed_share", stayed_share);
        ctx.fact("max_psi", max_psi);
        ctx.fact("major_shifts", &drifted);
        segflow_sdk::tracing::info!(
            new = new_customers,
            gone = gone_customers,
            stayed_share = stayed_share.unwrap_or(f64::NAN),
            "compared with the previous run"
        );
        Ok(Outputs::new()
            .port("migration", Table::from_batch(mig.finish()?))
            .port("sizes", Table::from_batch(sizes.finish()?))
            .port("features", Table::from_batch(feats.finish()?))
            .port("metrics", Table::from_batch(metrics.finish()?)))
    }
}

/// The size of the migration matrix and the file for messages.
struct Shape<'a> {
    n_from: usize,
    n_to: usize,
    path: &'a Path,
}

/// `counts[from][to]`: `from` is the previous segment's position or `n_from` (new),
/// `to` the current segment's position or `n_to` (gone). `prev` and `prev_from` are the
/// previous run's keys and segment positions; `cur` and `cur_to` this run's.
fn migration_counts<K: std::hash::Hash + Eq + std::fmt::Debug>(
    prev: &[Option<K>],
    prev_from: &[usize],
    cur: &[Option<K>],
    cur_to: &[usize],
    shape: &Shape,
) -> Result<Vec<Vec<i64>>> {
    let mut of: HashMap<&K, usize> = HashMap::with_capacity(prev.len());
    for (row, k) in prev.iter().enumerate() {
        let Some(k) = k else {
            return Err(Error::new(format!(
                "`{}` has a null key at row {row}; the previous segmentation needs one for every customer",
                shape.path.display()
            )));
        };
        if of.insert(k, row).is_some() {
            return Err(Error::new(format!(
                "`{}` has key {k:?} twice; a segmentation has one row per customer (is `segmentation_step` the right step?)",
                shape.path.display()
            )));
        }
    }
    let mut counts = vec![vec![0i64; shape.n_to + 1]; shape.n_from + 1];
    let mut seen = vec![false; prev.len()];
    for (k, &to) in cur.iter().zip(cur_to) {
        let from = match k.as_ref().and_then(|k| of.get(k)) {
            Some(&row) => {
                seen[row] = true;
                prev_from[row]
            }
            None => shape.n_from,
        };
        counts[from][to] += 1;
    }
    for (row, s) in seen.iter().enumerate() {
        if !s {
            counts[prev_from[row]][shape.n_to] += 1;
        }
    }
    Ok(counts)
}

fn cwd() -> String {
    std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "the current directory".into())
}

fn step_file(dir: &Path, (step, port): &(String, String)) -> PathBuf {
    dir.join("steps").join(step).join(format!("{port}.parquet"))
}

/// The previous run's `manifest.json`, when it has one.
fn read_manifest(dir: &Path, shown: &str) -> Result<Option<serde_json::Value>> {
    let path = dir.join("manifest.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::config(
            "previous",
            format!("cannot read `{shown}/manifest.json`: {e}"),
        )
    })?;
    match serde_json::from_str(&text) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            segflow_sdk::tracing::warn!("`{shown}/manifest.json` is not valid JSON ({e}); reading the step files without it");
            Ok(None)
        }
    }
}

/// Refuse a run that is still being written, and name steps the run does not have.
fn check_manifest(m: &serde_json::Value, shown: &str, steps: &[&str]) -> Result<()> {
    match m.get("status").and_then(|s| s.as_str()) {
        Some("running") => {
            return Err(Error::config(
                "previous",
                format!(
                    "the run in `{shown}` is still being written (its manifest says `running`): if it is this run's own `--out` directory, last run's outputs were cleared when this run started. Give every run its own directory (e.g. `--out runs/2025-02`) and point `previous:` at last month's"
                ),
            ))
        }
        Some("failed") => segflow_sdk::tracing::warn!(
            "the previous run in `{shown}` failed; comparing with the outputs it did write"
        ),
        _ => {}
    }
    if let Some(list) = m.get("steps").and_then(|s| s.as_array()) {
        let ids: Vec<&str> = list
            .iter()
            .filter_map(|s| s.get("id").and_then(|i| i.as_str()))
            .collect();
        for step in steps {
            match list.iter().find(|s| s.get("id").and_then(|i| i.as_str()) == Some(step)) {
                None => {
                    let field = if Some(step) == steps.first() {
                        "segmentation_step"
                    } else {
                        "features_step"
                    };
                    return Err(Error::config(
                        field,
                        format!(
                            "the previous run in `{shown}` has no step `{step}` (its steps are: {}); set `{field}:` to the step that played this part then",
                            ids.join(", ")
                        ),
                    ));
                }
                Some(s) if s.get("persisted").and_then(|p| p.as_bool()) == Some(false) => {
                    return Err(Error::config(
                        "previous",
                        format!(
                            "step `{step}` of the previous run in `{shown}` was not written to disk (`persist: false`); keep it persisted so that the next run can compare with it"
                        ),
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Read the listed columns (those present) of a Parquet file into one batch.
fn read_parquet(path: &Path, shown: &str, columns: &[&str], field: &str) -> Result<RecordBatch> {
    let file = std::fs::File::open(path).map_err(|e| {
        let listing = path
            .parent()
            .and_then(|d| std::fs::read_dir(d).ok())
            .map(|entries| {
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".parquet"))
                    .collect();
                names.sort();
                format!("; that step wrote: {}", names.join(", "))
            })
            .unwrap_or_else(|| {
                format!("; `{shown}` has no such step directory (is it a segflow run directory, and is `{field}` the right step?)")
            });
        Error::config(
            field,
            format!("cannot open `{}` in the previous run: {e}{listing}", path.display()),
        )
    })?;
    let bad = |e: &dyn std::fmt::Display| {
        Error::new(format!("cannot read `{}` as Parquet: {e}", path.display()))
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(&e))?;
    let schema = builder.schema().clone();
    let idx: Vec<usize> = columns
        .iter()
        .filter_map(|c| schema.index_of(c).ok())
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), idx);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()
        .map_err(|e| bad(&e))?;
    let out_schema = segflow_sdk::arrow::array::RecordBatchReader::schema(&reader);
    let batches: Vec<RecordBatch> = reader
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(&e))?;
    Ok(concat_batches(&out_schema, &batches)?)
}

/// The drift of one feature.
struct FeatureDrift {
    psi: Option<f64>,
    ks: Option<f64>,
    mean_previous: Option<f64>,
    mean: Option<f64>,
    null_share_previous: Option<f64>,
    null_share: Option<f64>,
    bins: Option<i64>,
}

fn feature_drift(
    name: &str,
    previous: Option<&[Option<f64>]>,
    current: &[Option<f64>],
    params: &PsiParams,
) -> Result<FeatureDrift> {
    let nulls = |v: &[Option<f64>]| {
        (!v.is_empty()).then(|| v.iter().filter(|x| x.is_none()).count() as f64 / v.len() as f64)
    };
    let finite = |v: &[Option<f64>], run: &str| -> Result<Vec<f64>> {
        let vals: Vec<f64> = v.iter().flatten().copied().collect();
        if let Some(x) = vals.iter().find(|x| !x.is_finite()) {
            return Err(Error::new(format!(
                "feature `{name}` has the value {x} in the {run} run; drift needs finite numbers (clip or impute it upstream)"
            )));
        }
        Ok(vals)
    };
    let cur = finite(current, "current")?;
    let mean = segflow_ml::stats::mean(&cur);
    let Some(previous) = previous else {
        return Ok(FeatureDrift {
            psi: None,
            ks: None,
            mean_previous: None,
            mean,
            null_share_previous: None,
            null_share: nulls(current),
            bins: None,
        });
    };
    let prev = finite(previous, "previous")?;
    let (psi, ks, bins) = if previous.is_empty() || current.is_empty() {
        (None, None, None)
    } else {
        let c = ml::compare(previous, current, params)
            .map_err(|e| Error::new(format!("feature `{name}`: {e}")))?;
        (Some(c.psi.psi), c.ks, Some(c.psi.bins() as i64))
    };
    Ok(FeatureDrift {
        psi,
        ks,
        mean_previous: segflow_ml::stats::mean(&prev),
        mean,
        null_share_previous: nulls(previous),
        null_share: nulls(current),
        bins,
    })
}

#[derive(Default)]
struct MigrationRows {
    from: Vec<String>,
    to: Vec<String>,
    customers: Vec<i64>,
    share: Vec<Option<f64>>,
}

impl MigrationRows {
    fn push(&mut self, from: &str, to: &str, customers: i64, share: Option<f64>) {
        self.from.push(from.to_string());
        self.to.push(to.to_string());
        self.customers.push(customers);
        self.share.push(share);
    }

    fn finish(self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            migration_schema(),
            vec![
                Arc::new(StringArray::from(self.from)),
                Arc::new(StringArray::from(self.to)),
                Arc::new(Int64Array::from(self.customers)),
                Arc::new(Float64Array::from(self.share)),
            ],
        )?)
    }
}

#[derive(Default)]
struct SizeRows {
    segment: Vec<String>,
    before: Vec<i64>,
    now: Vec<i64>,
    change: Vec<i64>,
    pct: Vec<Option<f64>>,
    share_before: Vec<Option<f64>>,
    share_now: Vec<Option<f64>>,
}

impl SizeRows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        segment: &str,
        before: i64,
        now: i64,
        change: i64,
        pct: Option<f64>,
        share_before: Option<f64>,
        share_now: Option<f64>,
    ) {
        self.segment.push(segment.to_string());
        self.before.push(before);
        self.now.push(now);
        self.change.push(change);
        self.pct.push(pct);
        self.share_before.push(share_before);
        self.share_now.push(share_now);
    }

    fn finish(self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            sizes_schema(),
            vec![
                Arc::new(StringArray::from(self.segment)),
                Arc::new(Int64Array::from(self.before)),
                Arc::new(Int64Array::from(self.now)),
                Arc::new(Int64Array::from(self.change)),
                Arc::new(Float64Array::from(self.pct)),
                Arc::new(Float64Array::from(self.share_before)),
                Arc::new(Float64Array::from(self.share_now)),
            ],
        )?)
    }
}

#[derive(Default)]
struct FeatureRows {
    feature: Vec<String>,
    psi: Vec<Option<f64>>,
    ks: Vec<Option<f64>>,
    mean_previous: Vec<Option<f64>>,
    mean: Vec<Option<f64>>,
    null_previous: Vec<Option<f64>>,
    null: Vec<Option<f64>>,
    bins: Vec<Option<i64>>,
}

impl FeatureRows {
    fn push(&mut self, name: &str, d: FeatureDrift) {
        self.feature.push(name.to_string());
        self.psi.push(d.psi);
        self.ks.push(d.ks);
        self.mean_previous.push(d.mean_previous);
        self.mean.push(d.mean);
        self.null_previous.push(d.null_share_previous);
        self.null.push(d.null_share);
        self.bins.push(d.bins);
    }

    fn finish(self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            features_schema(),
            vec![
                Arc::new(StringArray::from(self.feature)),
                Arc::new(Float64Array::from(self.psi)),
                Arc::new(Float64Array::from(self.ks)),
                Arc::new(Float64Array::from(self.mean_previous)),
                Arc::new(Float64Array::from(self.mean)),
                Arc::new(Float64Array::from(self.null_previous)),
                Arc::new(Float64Array::from(self.null)),
                Arc::new(Int64Array::from(self.bins)),
            ],
        )?)
    }
}
