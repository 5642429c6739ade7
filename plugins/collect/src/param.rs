//! Named query parameters shared by the database collectors.

use segflow_sdk::prelude::*;

/// A query parameter value: a string (also dates such as `"2024-01-31"`), a number, a
/// boolean or null. Values are always bound, never pasted into the SQL.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ParamValue {
    /// A boolean (SQLite binds it as the integer 1 or 0).
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text; also dates and any value the database parses.
    Text(String),
    /// SQL NULL.
    Null(()),
}
