//! Reading numeric columns as `f64` for the statistics components.

use segflow_sdk::arrow::array::Float64Array;
use segflow_sdk::arrow::compute::cast;
use segflow_sdk::prelude::*;

/// The numeric types `impute` and `outliers` accept.
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

/// A numeric column as `Float64Array`.
pub fn as_f64(array: &ArrayRef) -> Result<Float64Array> {
    let c = cast(array, &DataType::Float64)?;
    c.as_any()
        .downcast_ref::<Float64Array>()
        .cloned()
        .ok_or_else(|| Error::new("internal: cast to Float64 did not give a Float64 array"))
}
