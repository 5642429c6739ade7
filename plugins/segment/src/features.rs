//! Reading the feature matrix a segmenter clusters on.

use segflow_sdk::arrow::array::{Array, ArrayRef, Float64Array, RecordBatch};
use segflow_sdk::arrow::compute::cast;
use segflow_sdk::prelude::*;

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
