//! Pieces every evaluator shares: the `metrics` long table.

use segflow_sdk::arrow::array::{Float64Array, StringArray};
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// The schema of `metrics`: segmentation, metric, value (and an optional segment).
pub fn metrics_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("segmentation", DataType::Utf8, false),
        Field::new("metric", DataType::Utf8, false),
        Field::new("segment", DataType::Utf8, true),
        Field::new("value", DataType::Float64, true),
    ]))
}

/// Rows of the `metrics` table.
#[derive(Default)]
pub struct Metrics {
    segmentation: Vec<String>,
    metric: Vec<String>,
    segment: Vec<Option<String>>,
    value: Vec<Option<f64>>,
}

impl Metrics {
    /// A segmentation-level metric.
    pub fn push(&mut self, segmentation: &str, metric: &str, value: Option<f64>) {
        self.push_segment(segmentation, metric, None, value);
    }

    /// A metric of one segment (`segment` is its label), or of the whole segmentation.
    pub fn push_segment(
        &mut self,
        segmentation: &str,
        metric: &str,
        segment: Option<&str>,
        value: Option<f64>,
    ) {
        self.segmentation.push(segmentation.to_string());
        self.metric.push(metric.to_string());
        self.segment.push(segment.map(str::to_string));
        self.value.push(value.filter(|v| !v.is_nan()));
    }

    pub fn len(&self) -> usize {
        self.metric.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metric.is_empty()
    }

    pub fn finish(self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            metrics_schema(),
            vec![
                Arc::new(StringArray::from(self.segmentation)),
                Arc::new(StringArray::from(self.metric)),
                Arc::new(StringArray::from(self.segment)),
                Arc::new(Float64Array::from(self.value)),
            ],
        )?)
    }
}
