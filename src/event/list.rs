//! A contact list as it was read when its rule fired (SPEC §10): the rows
//! travel frozen with the event they belong to, so that processing it
//! again after a crash sees the very same list. Reading files, URLs and
//! bodies into a [`List`] is [`crate::lists`]'s; this module only holds it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A list, read once for one fire of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List {
    /// Where it came from (a file path, a URL without its query, `body.PATH`), for messages.
    pub source: String,
    /// The rows in list order.
    pub rows: Vec<Row>,
}

/// One row of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The line it starts at (CSV, YAML), or its position (JSON), 1-based.
    pub line: u64,
    /// Its fields (`{{ row.NAME }}`); empty when the row could not be read.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    /// Why the row could not be read, if it could not: it is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Row {
    /// A readable row.
    pub fn of(line: u64, fields: Map<String, Value>) -> Row {
        Row {
            line,
            fields,
            problem: None,
        }
    }

    /// A row that could not be read, and why.
    pub fn bad(line: u64, problem: impl Into<String>) -> Row {
        Row {
            line,
            fields: Map::new(),
            problem: Some(problem.into()),
        }
    }
}

impl List {
    /// The rows of a JSON array: each must be an object; position = line.
    pub fn from_json_array(source: impl Into<String>, items: &[Value]) -> List {
        let rows = items
            .iter()
            .zip(1..)
            .map(|(item, line)| match item {
                Value::Object(map) => Row::of(line, map.clone()),
                other => Row::bad(line, format!("not an object but {}", kind(other))),
            })
            .collect();
        List {
            source: source.into(),
            rows,
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
