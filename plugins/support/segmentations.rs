//! Telling a component's inputs apart and joining segmentations to the features.
//! Shared by the `position` and `evaluate` plugin crates (included by path, so each
//! cdylib compiles its own copy).
//!
//! A position step that works per customer (`profile`, `explain`) takes one
//! per-customer table (the features) and one or more segmentations: tables with an
//! Int32 `segment_id` and a Utf8 `segment` column, as every segmenter's `assignments`
//! port has. Segmentations are joined to the features on the key.

use ahash::AHashMap as HashMap;
use segflow_sdk::arrow::array::{AsArray, Float64Array, Int32Array, Int64Array, StringArray};
use segflow_sdk::arrow::compute::cast;
use segflow_sdk::prelude::*;
use std::collections::BTreeMap;

/// The numeric types a feature column may have (Boolean counts as 0/1).
pub const NUMERIC: &[DataType] = &[
    DataType::Int8,
    DataType::Int16,
    DataType::Int32,
    DataType::Int64,
    DataType::UInt8,
    DataType::UInt16,
    DataType::UInt32,
    DataType::UInt64,
    DataType::Float32,
    DataType::Float64,
    DataType::Boolean,
];

/// True when a column of this type can be profiled as a number.
pub fn is_numeric(t: &DataType) -> bool {
    NUMERIC.contains(t) || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
}

/// True when a column of this type is text.
pub fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// True when `schema` looks like a segmentation: Int32 `segment_id` and text `segment`.
pub fn is_segmentation(schema: &Schema) -> bool {
    let id = schema.field_with_name("segment_id").ok();
    let label = schema.field_with_name("segment").ok();
    matches!((id, label), (Some(i), Some(l)) if i.data_type() == &DataType::Int32 && is_text(l.data_type()))
}

/// The name a segmentation goes by in outputs: the step id of its `needs:` reference
/// (`segments.assignments` → `segments`).
pub fn segmentation_name(reference: &str) -> String {
    reference
        .split_once('.')
        .map(|(s, _)| s)
        .unwrap_or(reference)
        .to_string()
}

/// Which input is the features table and which are segmentations.
#[derive(Debug, Clone)]
pub struct Roles {
    /// Index of the per-customer features table.
    pub features: usize,
    /// Indices of the segmentations, in `needs:` order.
    pub segmentations: Vec<usize>,
}

/// Sort the inputs into one features table and at least one segmentation, checking
/// that the key is in all of them with compatible types.
pub fn roles<T>(
    inputs: &[Named<T>],
    schema_of: impl Fn(&T) -> SchemaRef,
    key: &str,
) -> Result<Roles> {
    let mut features = Vec::new();
    let mut segmentations = Vec::new();
    for (i, inp) in inputs.iter().enumerate() {
        if is_segmentation(&schema_of(&inp.value)) {
            segmentations.push(i);
        } else {
            features.push(i);
        }
    }
    let names = |ix: &[usize]| {
        ix.iter()
            .map(|&i| format!("`{}`", inputs[i].name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if segmentations.is_empty() {
        return Err(Error::new(format!(
            "none of the inputs ({}) is a segmentation (a table with an Int32 `segment_id` and a text `segment` column); add a segmenter's assignments to `needs:`, e.g. `needs: [features, segments.assignments]`",
            names(&(0..inputs.len()).collect::<Vec<_>>())
        )));
    }
    if features.len() != 1 {
        let what = if features.is_empty() {
            "no per-customer features table".to_string()
        } else {
            format!(
                "{} tables that are not segmentations ({})",
                features.len(),
                names(&features)
            )
        };
        return Err(Error::new(format!(
            "expected one per-customer features table and one or more segmentations in `needs:`, got {what}; list the features step (e.g. customer_features) once, then the segmenters' assignments"
        )));
    }
    let mut seen = BTreeMap::new();
    for &i in &segmentations {
        let name = segmentation_name(&inputs[i].name);
        if let Some(prev) = seen.insert(name.clone(), i) {
            return Err(Error::new(format!(
                "`{}` and `{}` are both segmentation `{name}`; give each segmentation once",
                inputs[prev].name, inputs[i].name
            )));
        }
    }
    let fschema = schema_of(&inputs[features[0]].value);
    let fkey = require_column(&fschema, key, "key", &[])?;
    let fkind = key_kind(fkey.data_type()).ok_or_else(|| {
        Error::config(
            "key",
            format!(
                "key column `{key}` of `{}` is {}; a key must be an integer or text column",
                inputs[features[0]].name,
                fkey.data_type()
            ),
        )
    })?;
    for &i in &segmentations {
        let s = schema_of(&inputs[i].value);
        let k = s.field_with_name(key).map_err(|_| {
            Error::config(
                "key",
                format!(
                    "segmentation `{}` has no key column `{key}`; set `key:` to the column both tables share",
                    inputs[i].name
                ),
            )
        })?;
        if key_kind(k.data_type()) != Some(fkind) {
            return Err(Error::config(
                "key",
                format!(
                    "key column `{key}` is {} in `{}` but {} in `{}`; the key must be the same kind (integer or text) in both",
                    fkey.data_type(),
                    inputs[features[0]].name,
                    k.data_type(),
                    inputs[i].name
                ),
            ));
        }
    }
    Ok(Roles {
        features: features[0],
        segmentations,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Int,
    Text,
}

fn key_kind(t: &DataType) -> Option<KeyKind> {
    if t.is_integer() {
        Some(KeyKind::Int)
    } else if is_text(t) {
        Some(KeyKind::Text)
    } else {
        None
    }
}

/// Row of each key in the features table.
enum KeyIndex {
    Int(HashMap<i64, usize>),
    Text(HashMap<String, usize>),
}

fn key_values(col: &ArrayRef, table: &str, key: &str) -> Result<Keys> {
    if let Some(i) = (0..col.len()).find(|&i| col.is_null(i)) {
        return Err(Error::new(format!(
            "`{table}` has a null key `{key}` at row {i}; every customer needs a key (add a `validate` step that quarantines null keys)"
        )));
    }
    if col.data_type().is_integer() {
        let c = cast(col, &DataType::Int64)?;
        Ok(Keys::Int(
            c.as_primitive::<segflow_sdk::arrow::datatypes::Int64Type>()
                .values()
                .to_vec(),
        ))
    } else {
        let c = cast(col, &DataType::Utf8)?;
        let c = c.as_string::<i32>();
        Ok(Keys::Text(
            (0..c.len()).map(|i| c.value(i).to_string()).collect(),
        ))
    }
}

enum Keys {
    Int(Vec<i64>),
    Text(Vec<String>),
}

impl Keys {
    fn display(&self, i: usize) -> String {
        match self {
            Keys::Int(v) => v[i].to_string(),
            Keys::Text(v) => format!("{:?}", v[i]),
        }
    }
}

fn index(keys: &Keys, table: &str) -> Result<KeyIndex> {
    fn build<K: std::hash::Hash + Eq + Clone>(
        v: &[K],
        show: impl Fn(usize) -> String,
        table: &str,
    ) -> Result<HashMap<K, usize>> {
        let mut m = HashMap::with_capacity(v.len());
        for (i, k) in v.iter().enumerate() {
            if let Some(prev) = m.insert(k.clone(), i) {
                return Err(Error::new(format!(
                    "`{table}` has key {} on rows {prev} and {i}; the features table must have one row per customer (aggregate with customer_features or add a `dedup` step)",
                    show(i)
                )));
            }
        }
        Ok(m)
    }
    Ok(match keys {
        Keys::Int(v) => KeyIndex::Int(build(v, |i| keys.display(i), table)?),
        Keys::Text(v) => KeyIndex::Text(build(v, |i| keys.display(i), table)?),
    })
}

/// One segmentation joined to the features.
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// The segmentation's name (its step id).
    pub name: String,
    /// Row in the features table of each assigned customer, in assignment order.
    pub rows: Vec<usize>,
    /// `segment_id` of each assigned customer.
    pub ids: Vec<i32>,
    /// Every segment: its id and label, by id.
    pub segments: Vec<(i32, String)>,
}

impl Segmentation {
    /// Position of each customer's segment in `segments`.
    pub fn positions(&self) -> Vec<usize> {
        let pos: HashMap<i32, usize> = self
            .segments
            .iter()
            .enumerate()
            .map(|(p, (id, _))| (*id, p))
            .collect();
        self.ids.iter().map(|id| pos[id]).collect()
    }
}

/// The features table and the segmentations joined to it.
pub struct Joined {
    pub features: RecordBatch,
    pub segmentations: Vec<Segmentation>,
}

/// Read the inputs and join each segmentation to the features on `key`. A customer of
/// a segmentation missing from the features, a segment id with two labels, or a
/// duplicate key is an error.
pub fn join(inputs: Vec<Named<Table>>, key: &str) -> Result<Joined> {
    let roles = roles(&inputs, |t: &Table| t.schema(), key)?;
    let mut tables: Vec<Option<Named<Table>>> = inputs.into_iter().map(Some).collect();
    let fin = tables[roles.features].take().expect("features input");
    let fname = fin.name.clone();
    let features = fin.value.concat()?;
    let fkeys = key_values(
        features
            .column_by_name(key)
            .ok_or_else(|| Error::config("key", format!("column `{key}` is missing")))?,
        &fname,
        key,
    )?;
    let idx = std::cell::OnceCell::new();
    let mut segmentations = Vec::new();
    for &i in &roles.segmentations {
        let inp = tables[i].take().expect("segmentation input");
        let sname = inp.name.clone();
        let batch = inp.value.concat()?;
        let keys = key_values(
            batch
                .column_by_name(key)
                .ok_or_else(|| Error::config("key", format!("column `{key}` is missing")))?,
            &sname,
            key,
        )?;
        let mut rows = Vec::with_capacity(batch.num_rows());
        let mut missing = 0usize;
        let mut first_missing = None;
        // Segmenters write assignments in the order of their input, so the keys are
        // usually the features' own: then the join is the identity, no hashing needed.
        let same_order = match (&fkeys, &keys) {
            (Keys::Int(a), Keys::Int(b)) => a == b,
            (Keys::Text(a), Keys::Text(b)) => a == b,
            _ => false,
        };
        if same_order {
            rows.extend(0..batch.num_rows());
        }
        for r in (0..batch.num_rows()).filter(|_| !same_order) {
            let idx = match idx.get() {
                Some(i) => i,
                None => {
                    let built = index(&fkeys, &fname)?;
                    idx.get_or_init(|| built)
                }
            };
            let found = match (idx, &keys) {
                (KeyIndex::Int(m), Keys::Int(v)) => m.get(&v[r]).copied(),
                (KeyIndex::Text(m), Keys::Text(v)) => m.get(&v[r]).copied(),
                _ => None,
            };
            match found {
                Some(row) => rows.push(row),
                None => {
                    missing += 1;
                    first_missing.get_or_insert(r);
                }
            }
        }
        if let Some(r) = first_missing {
            return Err(Error::new(format!(
                "{missing} customer(s) of segmentation `{sname}` are not in the features table `{fname}` (the first is key {}); profile the same customers that were segmented",
                keys.display(r)
            )));
        }
        let ids = batch
            .column_by_name("segment_id")
            .and_then(|c| c.as_any().downcast_ref::<Int32Array>().cloned())
            .ok_or_else(|| Error::new(format!("`{sname}` has no Int32 `segment_id` column")))?;
        let labels = cast(
            batch
                .column_by_name("segment")
                .ok_or_else(|| Error::new(format!("`{sname}` has no `segment` column")))?,
            &DataType::Utf8,
        )?;
        let labels: &StringArray = labels.as_string::<i32>();
        let mut segments: BTreeMap<i32, String> = BTreeMap::new();
        let mut id_vec = Vec::with_capacity(ids.len());
        for r in 0..ids.len() {
            if ids.is_null(r) || labels.is_null(r) {
                return Err(Error::new(format!(
                    "segmentation `{sname}` has a null segment_id or segment at row {r}"
                )));
            }
            let (id, label) = (ids.value(r), labels.value(r));
            match segments.get(&id) {
                Some(l) if l != label => {
                    return Err(Error::new(format!(
                        "segmentation `{sname}` gives segment_id {id} two labels, `{l}` and `{label}`; each segment needs one label"
                    )))
                }
                Some(_) => {}
                None => {
                    segments.insert(id, label.to_string());
                }
            }
            id_vec.push(id);
        }
        segmentations.push(Segmentation {
            name: segmentation_name(&sname),
            rows,
            ids: id_vec,
            segments: segments.into_iter().collect(),
        });
    }
    Ok(Joined {
        features,
        segmentations,
    })
}

/// A numeric column as 64-bit floats; null and NaN become `None`. Boolean is 0/1.
pub fn numeric(batch: &RecordBatch, name: &str, field: &str) -> Result<Vec<Option<f64>>> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| Error::config(field, format!("column `{name}` is missing")))?;
    let col = if col.data_type() == &DataType::Boolean {
        cast(&cast(col, &DataType::UInt8)?, &DataType::Float64)?
    } else {
        cast(col, &DataType::Float64)?
    };
    let col = col
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| Error::new("cast to Float64 failed"))?;
    Ok((0..col.len())
        .map(|i| (!col.is_null(i) && !col.value(i).is_nan()).then(|| col.value(i)))
        .collect())
}

/// A text column; nulls become `None`.
pub fn text(batch: &RecordBatch, name: &str, field: &str) -> Result<Vec<Option<String>>> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| Error::config(field, format!("column `{name}` is missing")))?;
    let col = cast(col, &DataType::Utf8)?;
    let col = col.as_string::<i32>();
    Ok((0..col.len())
        .map(|i| (!col.is_null(i)).then(|| col.value(i).to_string()))
        .collect())
}

/// The numeric columns of `schema` other than the key and `exclude`, in schema order:
/// the default feature list.
pub fn numeric_columns(schema: &Schema, key: &str, exclude: &[&str]) -> Vec<String> {
    schema
        .fields()
        .iter()
        .filter(|f| f.name() != key && !exclude.contains(&f.name().as_str()))
        .filter(|f| is_numeric(f.data_type()))
        .map(|f| f.name().clone())
        .collect()
}

/// The field of feature `f` (entry `i` of a `features:` list), or an error listing
/// the numeric columns the table does have.
pub fn feature_field<'a>(schema: &'a Schema, key: &str, i: usize, f: &str) -> Result<&'a Field> {
    schema.field_with_name(f).map_err(|_| {
        Error::config(
            &format!("features.{i}"),
            format!(
                "the features table has no column `{f}`; its numeric columns are {}",
                numeric_columns(schema, key, &[]).join(", ")
            ),
        )
    })
}

/// The current inputs and the earlier periods named in a `previous:` map.
pub type Split<T> = (Vec<Named<T>>, Vec<Named<T>>);

/// Split `inputs` into the current ones and the earlier periods that `previous`
/// (segmentation → `needs:` reference) names, checking every reference is an input.
pub fn split_previous<T>(
    previous: &BTreeMap<String, String>,
    inputs: Vec<Named<T>>,
) -> Result<Split<T>> {
    let names = |n: &str, r: &str| n == r || segmentation_name(n) == r;
    let (earlier, rest): (Vec<_>, Vec<_>) = inputs
        .into_iter()
        .partition(|inp| previous.values().any(|r| names(&inp.name, r)));
    for (seg, r) in previous {
        if !earlier.iter().any(|e| names(&e.name, r)) {
            return Err(Error::config(
                &format!("previous.{seg}"),
                format!("`{r}` is not one of this step's inputs; add it to `needs:`"),
            ));
        }
    }
    Ok((rest, earlier))
}

/// Plan-time check of a step with `previous:` periods: sort the current inputs into
/// features and segmentations, check that every `previous:` key is one of them and
/// every earlier period is a segmentation with the key. Returns the current schemas,
/// their roles and the segmentations' names.
pub fn plan_previous(
    previous: &BTreeMap<String, String>,
    inputs: &[Named<SchemaRef>],
    key: &str,
) -> Result<(Vec<Named<SchemaRef>>, Roles, Vec<String>)> {
    let (current, earlier) = split_previous(previous, inputs.to_vec())?;
    let roles = roles(&current, |s: &SchemaRef| s.clone(), key)?;
    let names: Vec<String> = roles
        .segmentations
        .iter()
        .map(|&i| segmentation_name(&current[i].name))
        .collect();
    for seg in previous.keys() {
        if !names.contains(seg) {
            return Err(Error::config(
                &format!("previous.{seg}"),
                format!(
                    "`{seg}` is not a segmentation of this step (they are: {})",
                    names.join(", ")
                ),
            ));
        }
    }
    for e in &earlier {
        if !is_segmentation(&e.value) || e.value.field_with_name(key).is_err() {
            return Err(Error::config(
                "previous",
                format!(
                    "`{}` is not a segmentation with a `{key}` key (it needs `segment_id`, `segment` and the key)",
                    e.name
                ),
            ));
        }
    }
    Ok((current, roles, names))
}

/// Key (as text) → segment label of an earlier segmentation `name`.
pub fn key_labels(
    batch: &RecordBatch,
    key: &str,
    name: &str,
) -> Result<std::collections::HashMap<String, String>> {
    let keys = text(batch, key, "key")?;
    let labels = text(batch, "segment", "previous")?;
    let mut out = std::collections::HashMap::with_capacity(keys.len());
    for (r, (k, l)) in keys.into_iter().zip(labels).enumerate() {
        let (Some(k), Some(l)) = (k, l) else {
            return Err(Error::new(format!(
                "earlier segmentation `{name}` has a null key or segment at row {r}; every customer needs both"
            )));
        };
        out.insert(k, l);
    }
    Ok(out)
}

/// An Int64 column from counts.
pub fn int64(v: Vec<i64>) -> ArrayRef {
    std::sync::Arc::new(Int64Array::from(v))
}
