//! The `profiles` table that `profile` writes and `persona`, `target`, `map` and
//! `playbook` read.
//!
//! One row per segment of every segmentation, in segmentation then `segment_id` order:
//!
//! | column | meaning |
//! |---|---|
//! | `segmentation` | the segmenter's step id |
//! | `segment_id`, `segment` | the segment |
//! | `customers`, `customer_share` | size, and share of the segmentation's customers |
//! | `revenue`, `revenue_share` | sum of the revenue column and its share (null without one) |
//! | `clv_mean`, `clv_total`, `clv_share` | with `clv:` |
//! | `churn_rate` | with `churn:`: mean of the churn column (a probability or 0/1 flag) |
//! | `customers_previous`, `growth`, `stability` | with `previous:` |
//! | `<f>_mean`, `<f>_median`, `<f>_std`, `<f>_index`, `<f>_z` | for every feature `f` |
//! | `<c>_top`, `<c>_top_share`, `<c>_top_lift` | most common value of category `c` |
//! | `<c>_distinctive`, `<c>_distinctive_share`, `<c>_distinctive_lift` | most over-represented value |

use crate::inputs::is_text;
use segflow_sdk::arrow::array::{AsArray, Float64Array, Int32Array, Int64Array};
use segflow_sdk::arrow::compute::cast;
use segflow_sdk::prelude::*;

/// The statistics `profile` writes for every feature, as column suffixes.
pub const FEATURE_STATS: [&str; 5] = ["mean", "median", "std", "index", "z"];

/// The suffixes of the columns `profile` writes for every category.
pub const CATEGORY_STATS: [&str; 6] = [
    "top",
    "top_share",
    "top_lift",
    "distinctive",
    "distinctive_share",
    "distinctive_lift",
];

/// The columns every profiles table starts with.
pub const HEAD: [&str; 7] = [
    "segmentation",
    "segment_id",
    "segment",
    "customers",
    "customer_share",
    "revenue",
    "revenue_share",
];

/// The features of a profiles schema: every `f` with all of `f_mean`, `f_median`,
/// `f_std`, `f_index` and `f_z`, in column order.
pub fn features_of(schema: &Schema) -> Vec<String> {
    schema
        .fields()
        .iter()
        .filter_map(|f| f.name().strip_suffix("_mean").map(str::to_string))
        .filter(|f| {
            FEATURE_STATS
                .iter()
                .all(|s| schema.field_with_name(&format!("{f}_{s}")).is_ok())
        })
        .collect()
}

/// Check that `schema` is a profiles table; returns its features.
pub fn check(schema: &Schema, input: &str) -> Result<Vec<String>> {
    for h in HEAD {
        if schema.field_with_name(h).is_err() {
            return Err(Error::new(format!(
                "input `{input}` has no `{h}` column, so it is not a profiles table; give this step the `profiles` port of a `profile` step (e.g. `needs: [profile.profiles]`)"
            )));
        }
    }
    if schema.field_with_name("segment_id")?.data_type() != &DataType::Int32
        || !is_text(schema.field_with_name("segment")?.data_type())
    {
        return Err(Error::new(format!(
            "input `{input}` has `segment_id` or `segment` of the wrong type (Int32 and text expected); give this step the `profiles` port of a `profile` step"
        )));
    }
    Ok(features_of(schema))
}

/// A profiles table read into memory.
pub struct Profiles {
    pub batch: RecordBatch,
    /// The profiled features (see [`features_of`]).
    pub features: Vec<String>,
    /// Each segmentation and its rows, in table order.
    pub groups: Vec<(String, Vec<usize>)>,
}

impl Profiles {
    /// Read the single profiles input.
    pub fn read(inputs: Vec<Named<Table>>) -> Result<Profiles> {
        if inputs.len() != 1 {
            return Err(Error::new(format!(
                "expected one profiles input, got {}",
                inputs.len()
            )));
        }
        let inp = inputs.into_iter().next().expect("one input");
        let features = check(&inp.value.schema(), &inp.name)?;
        let batch = inp.value.concat()?;
        let seg = batch
            .column_by_name("segmentation")
            .map(|c| cast(c, &DataType::Utf8))
            .transpose()?
            .ok_or_else(|| Error::new("profiles have no `segmentation` column"))?;
        let seg = seg.as_string::<i32>();
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for r in 0..seg.len() {
            let name = if seg.is_null(r) { "" } else { seg.value(r) };
            match groups.iter_mut().find(|(n, _)| n == name) {
                Some((_, rows)) => rows.push(r),
                None => groups.push((name.to_string(), vec![r])),
            }
        }
        Ok(Profiles {
            batch,
            features,
            groups,
        })
    }

    /// A numeric column; null and NaN are `None`.
    pub fn f64(&self, name: &str) -> Result<Vec<Option<f64>>> {
        crate::inputs::numeric(&self.batch, name, name)
    }

    /// A text column; null is `None`.
    pub fn text(&self, name: &str) -> Result<Vec<Option<String>>> {
        crate::inputs::text(&self.batch, name, name)
    }

    /// The `segment_id` column.
    pub fn ids(&self) -> Result<Vec<i32>> {
        let c = self
            .batch
            .column_by_name("segment_id")
            .and_then(|c| c.as_any().downcast_ref::<Int32Array>())
            .ok_or_else(|| Error::new("profiles have no Int32 `segment_id`"))?;
        Ok(c.values().to_vec())
    }

    /// The `segment` labels (null as empty text).
    pub fn labels(&self) -> Result<Vec<String>> {
        Ok(self
            .text("segment")?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect())
    }

    /// The `customers` column (null as 0).
    pub fn customers(&self) -> Result<Vec<i64>> {
        let c = cast(
            self.batch
                .column_by_name("customers")
                .ok_or_else(|| Error::new("profiles have no `customers` column"))?,
            &DataType::Int64,
        )?;
        let c = c
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| Error::new("cast to Int64 failed"))?;
        Ok((0..c.len())
            .map(|i| if c.is_null(i) { 0 } else { c.value(i) })
            .collect())
    }
}

/// The three columns that identify a segment in every position output.
pub fn head_fields() -> Vec<Field> {
    vec![
        Field::new("segmentation", DataType::Utf8, false),
        Field::new("segment_id", DataType::Int32, false),
        Field::new("segment", DataType::Utf8, false),
    ]
}

/// A nullable Float64 column.
pub fn float64(v: Vec<Option<f64>>) -> ArrayRef {
    std::sync::Arc::new(Float64Array::from(v))
}
