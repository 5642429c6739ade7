//! Reading the feature matrix a segmenter clusters on, and the parts of `assignments`
//! and `model` every segmenter shares.

use segflow_sdk::arrow::array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use segflow_sdk::arrow::compute::cast;
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// The numeric types a feature column may have.
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
];

/// Check at plan time that the key and every feature exist and features are numeric.
pub fn check_columns(schema: &SchemaRef, key: &str, features: &[String]) -> Result<()> {
    require_column(schema, key, "key", &[])?;
    if features.is_empty() {
        return Err(Error::config(
            "features",
            "list at least one numeric column to cluster on",
        ));
    }
    for (i, f) in features.iter().enumerate() {
        require_column(schema, f, &format!("features.{i}"), NUMERIC)?;
    }
    Ok(())
}

/// Row-major `n × d` matrix of the feature columns. A null or non-finite value is an
/// error naming the column and row: segmenters need complete data (impute first).
pub fn matrix(batch: &RecordBatch, features: &[String]) -> Result<Vec<f64>> {
    let n = batch.num_rows();
    let d = features.len();
    let mut out = vec![0.0; n * d];
    for (j, name) in features.iter().enumerate() {
        let col: ArrayRef = batch
            .column_by_name(name)
            .ok_or_else(|| Error::config("features", format!("column `{name}` is missing")))?
            .clone();
        let col = cast(&col, &DataType::Float64)?;
        let col = col
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| Error::new("cast to Float64 failed"))?;
        for i in 0..n {
            if col.is_null(i) || !col.value(i).is_finite() {
                let what = if col.is_null(i) {
                    "null".to_string()
                } else {
                    col.value(i).to_string()
                };
                return Err(Error::config(
                    &format!("features.{j}"),
                    format!("column `{name}` is {what} at row {i}; segmenters need complete, finite features (add an `impute` or `validate` step before this one)"),
                ));
            }
            out[i * d + j] = col.value(i);
        }
    }
    Ok(out)
}

/// Per-column mean and population standard deviation; a zero deviation becomes 1 so a
/// constant column stays constant (0) instead of dividing by zero.
pub fn standardize(x: &mut [f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = (x.len() / d).max(1) as f64;
    let mut mean = vec![0.0; d];
    for row in x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut sd = vec![0.0; d];
    for row in x.chunks_exact(d) {
        for ((s, v), m) in sd.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    for s in sd.iter_mut() {
        *s = (*s / n).sqrt();
        if *s == 0.0 {
            *s = 1.0;
        }
    }
    for row in x.chunks_exact_mut(d) {
        for ((v, m), s) in row.iter_mut().zip(&mean).zip(&sd) {
            *v = (*v - m) / s;
        }
    }
    (mean, sd)
}

/// The label of the segment numbered `r`: `cluster_{r}`.
pub fn cluster_label(r: i32) -> String {
    format!("cluster_{r}")
}

/// How many of `labels` fall in each of the `k` clusters.
pub fn label_sizes(labels: &[u32], k: usize) -> Vec<i64> {
    let mut sizes = vec![0i64; k];
    for &l in labels {
        sizes[l as usize] += 1;
    }
    sizes
}

/// Number clusters by size, largest first (ties: lower original index first).
/// `order[r]` is the cluster numbered `r`; `rank[j]` is the number of cluster `j`.
pub fn size_order<T: Ord>(sizes: &[T]) -> (Vec<usize>, Vec<i32>) {
    let k = sizes.len();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let mut rank = vec![0i32; k];
    for (r, &j) in order.iter().enumerate() {
        rank[j] = r as i32;
    }
    (order, rank)
}

/// The key column of `batch` and its field.
pub fn key_column(batch: &RecordBatch, key: &str) -> Result<(Field, ArrayRef)> {
    let field = batch.schema().field_with_name(key)?.clone();
    let col = batch
        .column_by_name(key)
        .ok_or_else(|| Error::config("key", format!("column `{key}` is missing")))?
        .clone();
    Ok((field, col))
}

/// The first fields of `assignments`: the key, `segment_id` and `segment`.
pub fn assignments_head_fields(key: &Field) -> Vec<Field> {
    vec![
        key.clone(),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
    ]
}

/// The `assignments` batch: the `key` column of `input`, `ids`, `names`, then `extra`
/// (the per-row scores), with the schema `schema` gives for the key's field.
pub fn assignments_batch(
    schema: fn(&Field) -> SchemaRef,
    input: &RecordBatch,
    key: &str,
    ids: Vec<i32>,
    names: impl Into<StringArray>,
    extra: Vec<ArrayRef>,
) -> Result<RecordBatch> {
    let (key_field, key_col) = key_column(input, key)?;
    let mut columns: Vec<ArrayRef> = vec![
        key_col,
        Arc::new(Int32Array::from(ids)),
        Arc::new(names.into()),
    ];
    columns.extend(extra);
    Ok(RecordBatch::try_new(schema(&key_field), columns)?)
}

/// The first fields of a clustering `model`: `segment_id`, `segment` and `size`.
pub fn model_head_fields() -> Vec<Field> {
    vec![
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("size", DataType::Int64, false),
    ]
}

/// The columns of [`model_head_fields`], one row per segment in `order` (from
/// [`size_order`]): its number, its label and its size.
pub fn model_head(order: &[usize], sizes: &[i64]) -> Vec<ArrayRef> {
    let k = order.len() as i32;
    vec![
        Arc::new(Int32Array::from((0..k).collect::<Vec<_>>())),
        Arc::new(StringArray::from(
            (0..k).map(cluster_label).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            order.iter().map(|&j| sizes[j]).collect::<Vec<_>>(),
        )),
    ]
}

/// One Float64 column per feature with the centre of each cluster in `order`, from the
/// row-major `centres` (`d` per cluster), back in original units when `scaling` holds
/// the mean and standard deviation [`standardize`] returned.
pub fn centre_columns(
    order: &[usize],
    centres: &[f64],
    d: usize,
    scaling: Option<&(Vec<f64>, Vec<f64>)>,
) -> Vec<ArrayRef> {
    (0..d)
        .map(|f| {
            let vals: Vec<f64> = order
                .iter()
                .map(|&j| {
                    let v = centres[j * d + f];
                    match scaling {
                        Some((mean, sd)) => v * sd[f] + mean[f],
                        None => v,
                    }
                })
                .collect();
            Arc::new(Float64Array::from(vals)) as ArrayRef
        })
        .collect()
}
