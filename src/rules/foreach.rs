//! `for_each:` (SPEC §10): a schedule or webhook rule whose actions run
//! once per row of a contact list. Here the compiled form; the list is
//! read by [`crate::lists`] when the rule fires and reaches the rules
//! frozen in the event; [`super::eval`] expands it row by row.

use std::path::PathBuf;

use crate::rules::expr::Text;
use crate::secret::Secret;

/// A rule's `for_each:`.
#[derive(Debug)]
pub struct ForEach {
    /// Where the rows come from.
    pub source: ListSource,
    /// `where:`, a condition per row.
    pub condition: Option<Text>,
    /// `where:` as written, for messages.
    pub condition_source: Option<String>,
    /// The `row.NAME` fields the rule reads, each where it is read: checked
    /// against a CSV file's header.
    pub fields: Vec<FieldUse>,
    /// Where `for_each` is written: problems with the list are reported here.
    pub line: u64,
    /// Its column.
    pub column: u64,
}

/// A `row.NAME` read by a template or condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldUse {
    /// `NAME`.
    pub name: String,
    /// The line of the template that reads it.
    pub line: u64,
    /// Its column.
    pub column: u64,
}

/// Where a list's rows come from.
#[derive(Debug, Clone)]
pub enum ListSource {
    /// `csv: FILE`: the header names the columns.
    Csv(PathBuf),
    /// `yaml: FILE`: a list of maps.
    Yaml(PathBuf),
    /// `http: {url, headers}`: a GET answering a JSON array of objects.
    Http {
        /// The URL.
        url: String,
        /// Request headers (they may hold keys: never shown).
        headers: Vec<(String, Secret)>,
    },
    /// `items: body.PATH` (webhook rules): an array of the call's body.
    Items(Vec<String>),
}

impl ListSource {
    /// The source in a few words, for messages: a file's path, a URL
    /// without its query, `body.PATH`.
    pub fn describe(&self) -> String {
        match self {
            ListSource::Csv(p) | ListSource::Yaml(p) => p.display().to_string(),
            ListSource::Http { url, .. } => shown_url(url),
            ListSource::Items(path) => format!("body.{}", path.join(".")),
        }
    }

    /// Whether the list must be read (a file or URL) before the event is recorded.
    pub fn is_external(&self) -> bool {
        !matches!(self, ListSource::Items(_))
    }
}

/// A list URL as messages show it: without its query or fragment, which
/// may hold a key.
pub fn shown_url(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or("").to_owned()
}
