//! `waflow schema`: the JSON Schema of rule files, for editor completion.

use crate::rules::raw::RawFile;

/// The schema as pretty JSON.
pub fn rules_schema() -> String {
    let schema = schemars::schema_for!(RawFile);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Prints the schema.
pub fn run() {
    print!("{}", rules_schema());
}
