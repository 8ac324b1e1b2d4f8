//! CSV lists as spreadsheets export them: a header row naming the columns,
//! `,` or `;` between fields (whichever the header uses), quoted fields
//! (with separators, quotes and line breaks inside), UTF-8 with or without
//! a byte-order mark. A row with the wrong number of fields is a bad row;
//! a row of empty fields (the tail of many exports) is not a row.

use serde_json::{Map, Value};

use super::{ListError, MAX_ROWS};
use crate::event::list::{List, Row};

/// Reads CSV text; `source` names it in messages.
pub fn parse_csv(source: &str, text: &str) -> Result<List, ListError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let fail = |line: u64, reason: String| ListError::Format {
        source_name: source.to_owned(),
        line,
        reason,
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(separator(text))
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| fail(1, format!("cannot read the header: {e}")))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    check_header(&header).map_err(|reason| fail(1, reason))?;
    let lines = Lines::of(text);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(fail(line, format!("unreadable CSV: {e}")));
            }
        };
        let line = record.position().map_or(0, |p| lines.line_of(p.byte()));
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if rows.len() == MAX_ROWS {
            return Err(ListError::TooLong(source.to_owned()));
        }
        if record.len() != header.len() {
            rows.push(Row::bad(
                line,
                format!(
                    "{} fields where the header has {}",
                    record.len(),
                    header.len()
                ),
            ));
            continue;
        }
        let fields: Map<String, Value> = header
            .iter()
            .zip(record.iter())
            .map(|(name, value)| (name.clone(), Value::String(value.trim().to_owned())))
            .collect();
        rows.push(Row::of(line, fields));
    }
    Ok(List {
        source: source.to_owned(),
        rows,
    })
}

/// Line numbers from byte offsets (the reader's own count lags a line
/// behind in files with `\r\n` endings).
struct Lines(Vec<usize>);

impl Lines {
    fn of(text: &str) -> Lines {
        Lines(
            text.bytes()
                .enumerate()
                .filter_map(|(i, b)| (b == b'\n').then_some(i))
                .collect(),
        )
    }

    /// The 1-based line of byte `offset`.
    fn line_of(&self, offset: u64) -> u64 {
        // With `\r\n`, a record's offset is that of the `\n` before it.
        self.0.partition_point(|&nl| (nl as u64) <= offset) as u64 + 1
    }
}

/// The column names of a CSV text's header, for checks (`None`: unreadable).
pub fn header_of(text: &str) -> Option<Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(separator(text))
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader.headers().ok()?;
    Some(header.iter().map(|h| h.trim().to_owned()).collect())
}

/// `;` when the header line holds more of them than of `,` (the export
/// of spreadsheets in locales that write decimal commas), else `,`.
fn separator(text: &str) -> u8 {
    let first = text.lines().next().unwrap_or_default();
    let count = |c: char| first.chars().filter(|x| *x == c).count();
    if count(';') > count(',') { b';' } else { b',' }
}

fn check_header(header: &[String]) -> Result<(), String> {
    if header.iter().all(String::is_empty) {
        return Err("the first line must name the columns (name,phone,…)".into());
    }
    if let Some(at) = header.iter().position(String::is_empty) {
        return Err(format!("column {} of the header has no name", at + 1));
    }
    for (i, name) in header.iter().enumerate() {
        if header[..i].contains(name) {
            return Err(format!("the header names column `{name}` twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &List) -> Vec<Vec<String>> {
        list.rows
            .iter()
            .map(|r| {
                r.fields
                    .values()
                    .map(|v| v.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_spreadsheet_export_with_bom_semicolons_and_quotes_is_read() {
        let text = "\u{feff}name;phone;note\r\nAna;+84 900 000 001;\"says \"\"hi\"\"; twice\"\r\n\"Bo\nBa\";84900000002;x\r\n;;\r\n";
        let list = parse_csv("a.csv", text).unwrap();
        assert_eq!(
            fields(&list),
            [
                vec!["Ana", "+84 900 000 001", "says \"hi\"; twice"],
                vec!["Bo\nBa", "84900000002", "x"],
            ]
        );
        let lines: Vec<u64> = list.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3]);
        assert_eq!(list.rows[0].fields.keys().next().unwrap(), "name");
    }

    #[test]
    fn a_row_with_the_wrong_number_of_fields_is_a_bad_row_with_its_line() {
        let list = parse_csv("a.csv", "name,phone\nAna,1\nBo\nCy,3,extra\nDi,4\n").unwrap();
        let bad: Vec<(u64, &str)> = list
            .rows
            .iter()
            .filter_map(|r| r.problem.as_deref().map(|p| (r.line, p)))
            .collect();
        assert_eq!(
            bad,
            [
                (3, "1 fields where the header has 2"),
                (4, "3 fields where the header has 2")
            ]
        );
        assert_eq!(list.rows.len(), 4);
    }

    #[test]
    fn a_header_must_name_each_column_once() {
        for (text, says) in [
            ("", "must name the columns"),
            ("name,,phone\n", "column 2 of the header has no name"),
            ("phone,name,phone\n", "`phone` twice"),
        ] {
            let err = parse_csv("a.csv", text).unwrap_err().to_string();
            assert!(err.contains(says), "{text:?}: {err}");
            assert!(err.starts_with("list a.csv:1: "), "{err}");
        }
        assert_eq!(header_of("\u{feff}a;b\n").unwrap(), ["a", "b"]);
    }
}
