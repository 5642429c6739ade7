//! The `quarantine` port shared by the row-level clean components: the input columns
//! plus a Utf8 `reason` column.

use segflow_sdk::arrow::array::{StringArray, UInt32Array};
use segflow_sdk::arrow::compute::take_record_batch;
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// The quarantine schema for an input schema: its columns plus `reason` (Utf8).
pub fn schema(input: &SchemaRef) -> Result<SchemaRef> {
    if input.field_with_name("reason").is_ok() {
        return Err(Error::new(
            "the input already has a column named `reason`, which the quarantine output \
             adds; rename it upstream",
        ));
    }
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("reason", DataType::Utf8, false));
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        input.metadata().clone(),
    )))
}

/// Rows `rows` of `batch` with their reasons, as a quarantine batch.
pub fn batch(
    schema: &SchemaRef,
    batch: &RecordBatch,
    rows: &[u32],
    reasons: &[String],
) -> Result<RecordBatch> {
    let taken = take_record_batch(batch, &UInt32Array::from(rows.to_vec()))?;
    let mut columns = taken.columns().to_vec();
    columns.push(Arc::new(StringArray::from_iter_values(reasons)));
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Rows `rows` of `batch` (any schema).
pub fn take(batch: &RecordBatch, rows: &[u32]) -> Result<RecordBatch> {
    Ok(take_record_batch(batch, &UInt32Array::from(rows.to_vec()))?)
}

/// Split `all` (the step's output rows, one per input row) into `main` and the
/// quarantine: rows with a reason go to quarantine as they came in (`input`), the
/// others stay in `main`. Records the facts `rows_in`, `rows_out` and
/// `rows_quarantined`.
pub fn split(
    all: &RecordBatch,
    input: &RecordBatch,
    q_schema: &SchemaRef,
    reason: Vec<Option<String>>,
    ctx: &mut Context,
) -> Result<Outputs<Table>> {
    let n = input.num_rows();
    let keep: Vec<u32> = (0..n as u32)
        .filter(|&r| reason[r as usize].is_none())
        .collect();
    let (q_rows, q_reasons): (Vec<u32>, Vec<String>) = reason
        .into_iter()
        .enumerate()
        .filter_map(|(r, why)| why.map(|w| (r as u32, w)))
        .unzip();
    let main = take(all, &keep)?;
    let quar = batch(q_schema, input, &q_rows, &q_reasons)?;
    ctx.fact("rows_in", n);
    ctx.fact("rows_out", main.num_rows());
    ctx.fact("rows_quarantined", quar.num_rows());
    Ok(Outputs::new().port("main", Table::from_batch(main)).port(
        "quarantine",
        Table::from_batches(q_schema.clone(), vec![quar]),
    ))
}
