//! Reading contact lists (SPEC §10): a `for_each` rule's CSV or YAML file,
//! or the JSON array a URL answers, into an [`event::list::List`] — read
//! once when the rule fires, whole or not at all (a failed read is an
//! error, never a partial list), and then frozen into the event.
//!
//! Parsing lives in [`csv`] and [`parse`]; [`check`] is what `waflow check`
//! and every load ask of the lists before the rules are used. This module
//! reads; it decides nothing about who gets a message.
//!
//! [`event::list::List`]: crate::event::list::List

pub mod check;
mod csv;
mod parse;

use std::path::Path;
use std::time::Duration;

use crate::event::list::List;
use crate::rules::ListSource;

pub use self::csv::{header_of, parse_csv};
pub use parse::{parse_json, parse_yaml};

/// The most rows one list may hold.
pub const MAX_ROWS: usize = 100_000;
/// The largest list file or answer read, in bytes.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;
/// How long a list URL may take to answer, whole.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a list could not be read. Each message names the list.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The file could not be read.
    #[error("list {path}: cannot read the file: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The URL did not answer a JSON array.
    #[error("list {url}: {reason}")]
    Http {
        /// The URL without its query.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The text is not a list of the kind expected.
    #[error("list {source_name}:{line}: {reason}")]
    Format {
        /// Where it came from.
        source_name: String,
        /// The line of the problem (0 when none applies).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// More rows than [`MAX_ROWS`].
    #[error("list {0}: more than {MAX_ROWS} rows; split it")]
    TooLong(String),
    /// `items:` lists come with the call, they are not read.
    #[error("list {0}: read from the call's body, not loaded")]
    NotLoaded(String),
}

/// Reads the list of a `for_each` rule (not `items:`, which the call brings).
pub async fn load(source: &ListSource, client: &reqwest::Client) -> Result<List, ListError> {
    match source {
        ListSource::Csv(_) | ListSource::Yaml(_) => {
            let source = source.clone();
            tokio::task::spawn_blocking(move || read_file(&source))
                .await
                .map_err(|e| ListError::File {
                    path: String::new(),
                    reason: e.to_string(),
                })?
        }
        ListSource::Http { url, headers } => fetch(url, headers, client).await,
        ListSource::Items(_) => Err(ListError::NotLoaded(source.describe())),
    }
}

/// [`load`] for a command that has no runtime of its own.
pub fn load_blocking(source: &ListSource) -> Result<List, ListError> {
    if !matches!(source, ListSource::Http { .. }) {
        return read_file(source);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ListError::Http {
            url: source.describe(),
            reason: e.to_string(),
        })?;
    runtime.block_on(load(source, &client()))
}

/// The client list URLs are read with: rustls, a whole-answer timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .unwrap_or_default()
}

/// Reads a CSV or YAML list file.
pub fn read_file(source: &ListSource) -> Result<List, ListError> {
    let (path, csv) = match source {
        ListSource::Csv(p) => (p, true),
        ListSource::Yaml(p) => (p, false),
        other => return Err(ListError::NotLoaded(other.describe())),
    };
    let text = read_text(path)?;
    let name = path.display().to_string();
    if csv {
        parse_csv(&name, &text)
    } else {
        parse_yaml(path, &text)
    }
}

fn read_text(path: &Path) -> Result<String, ListError> {
    let fail = |reason: String| ListError::File {
        path: path.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if meta.len() > MAX_BYTES as u64 {
        return Err(fail(format!("larger than {} MiB", MAX_BYTES >> 20)));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "not UTF-8 (byte {}): export the list as UTF-8",
            e.utf8_error().valid_up_to()
        ))
    })
}

async fn fetch(
    url: &str,
    headers: &[(String, crate::secret::Secret)],
    client: &reqwest::Client,
) -> Result<List, ListError> {
    let shown = crate::rules::foreach::shown_url(url);
    let fail = |reason: String| ListError::Http {
        url: shown.clone(),
        reason,
    };
    let mut request = client.get(url).header("accept", "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.expose());
    }
    // Described without the URL: its query may hold a key.
    let describe = |e: reqwest::Error| {
        if e.is_timeout() {
            format!("no answer within {}s", HTTP_TIMEOUT.as_secs())
        } else if e.is_connect() {
            "cannot connect".to_owned()
        } else {
            "the request failed".to_owned()
        }
    };
    let mut answer = request.send().await.map_err(|e| fail(describe(e)))?;
    let status = answer.status();
    if !status.is_success() {
        return Err(fail(format!("answered HTTP {}", status.as_u16())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| fail(describe(e)))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BYTES {
            return Err(fail(format!("answered more than {} MiB", MAX_BYTES >> 20)));
        }
    }
    let text =
        String::from_utf8(body).map_err(|_| fail("answered text that is not UTF-8".into()))?;
    parse_json(&shown, &text)
}
