use arrow::array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;

/// A table flowing along an edge: a schema and a stream of record batches.
///
/// Inputs arrive as streams so a component can process data larger than memory batch by
/// batch; [`Table::collect`] and [`Table::concat`] materialise it when the algorithm
/// needs everything at once.
pub struct Table {
    schema: SchemaRef,
    reader: Box<dyn RecordBatchReader + Send>,
}

impl Table {
    /// A table over batches already in memory.
    pub fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema.clone());
        Table {
            schema,
            reader: Box::new(reader),
        }
    }

    /// A table over one batch.
    pub fn from_batch(batch: RecordBatch) -> Self {
        Table::from_batches(batch.schema(), vec![batch])
    }

    /// A lazily produced table: batches are computed when the host pulls them.
    pub fn from_reader(reader: Box<dyn RecordBatchReader + Send>) -> Self {
        Table {
            schema: reader.schema(),
            reader,
        }
    }

    /// A lazy table from a schema and an iterator of batches.
    pub fn from_iter<I>(schema: SchemaRef, iter: I) -> Self
    where
        I: IntoIterator<Item = Result<RecordBatch, ArrowError>> + 'static,
        I::IntoIter: Send + 'static,
    {
        Table::from_reader(Box::new(RecordBatchIterator::new(iter, schema)))
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn into_reader(self) -> Box<dyn RecordBatchReader + Send> {
        self.reader
    }

    /// Read every batch.
    pub fn collect(self) -> crate::Result<Vec<RecordBatch>> {
        Ok(self.reader.collect::<Result<Vec<_>, _>>()?)
    }

    /// Read everything into one batch.
    pub fn concat(self) -> crate::Result<RecordBatch> {
        let schema = self.schema.clone();
        let batches = self.collect()?;
        Ok(arrow::compute::concat_batches(&schema, &batches)?)
    }
}

impl Iterator for Table {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.reader.next()
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("schema", &self.schema)
            .finish()
    }
}
