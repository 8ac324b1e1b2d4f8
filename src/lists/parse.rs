//! YAML and JSON lists: a sequence of maps, each a row; anything else in
//! the sequence is a bad row, the rest of the list still counts.

use std::path::Path;

use serde_json::Value;

use super::{ListError, MAX_ROWS};
use crate::event::list::{List, Row};
use crate::rules::raw::Sp;

/// A YAML list file: a sequence of maps (`- { name: Ana, phone: "+84…" }`).
pub fn parse_yaml(path: &Path, text: &str) -> Result<List, ListError> {
    let name = path.display().to_string();
    let items: Vec<Sp<Value>> =
        crate::config::diagnostic::from_yaml(path, text, &Default::default()).map_err(|d| {
            ListError::Format {
                source_name: name.clone(),
                line: d.line,
                reason: format!("{} (a YAML list file is a sequence of maps)", d.message),
            }
        })?;
    if items.len() > MAX_ROWS {
        return Err(ListError::TooLong(name));
    }
    let rows = items
        .into_iter()
        .map(|item| match item.value {
            Value::Object(map) => Row::of(item.line, map),
            _ => Row::bad(item.line, "not a map of fields"),
        })
        .collect();
    Ok(List { source: name, rows })
}

/// A JSON array of objects (what a list URL answers).
pub fn parse_json(source: &str, text: &str) -> Result<List, ListError> {
    let fail = |line: u64, reason: String| ListError::Format {
        source_name: source.to_owned(),
        line,
        reason,
    };
    let value: Value =
        serde_json::from_str(text).map_err(|e| fail(e.line() as u64, format!("not JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(fail(0, "not a JSON array of objects".into()));
    };
    if items.len() > MAX_ROWS {
        return Err(ListError::TooLong(source.to_owned()));
    }
    Ok(List::from_json_array(source, &items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_rows_keep_their_lines_and_a_scalar_is_a_bad_row() {
        let text = "- name: Ana\n  phone: '+84 900 000 001'\n- just a string\n- { name: Bo, phone: 84900000002 }\n";
        let list = parse_yaml(Path::new("l.yaml"), text).unwrap();
        let lines: Vec<u64> = list.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 3, 4]);
        assert_eq!(list.rows[0].fields["name"], "Ana");
        assert!(list.rows[1].problem.is_some());
        assert_eq!(list.rows[2].fields["phone"], 84900000002u64);
    }

    #[test]
    fn a_yaml_file_that_is_not_a_sequence_says_where() {
        let err = parse_yaml(Path::new("l.yaml"), "name: Ana\n").unwrap_err();
        assert!(err.to_string().starts_with("list l.yaml:1:"), "{err}");
    }

    #[test]
    fn json_must_be_an_array_of_objects() {
        assert!(parse_json("u", "{\"a\": 1}").is_err());
        assert!(parse_json("u", "[1, {\"a\": 1}").is_err());
        let list = parse_json("u", "[1, {\"a\": 1}]").unwrap();
        assert_eq!(list.rows.len(), 2);
        assert!(list.rows[0].problem.is_some());
        assert_eq!(list.rows[1].line, 2);
    }
}
