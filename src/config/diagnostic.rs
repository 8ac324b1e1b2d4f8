//! Problems in a user's file, located: `FILE:LINE:COL: message` plus a hint.
//!
//! Everything that reads YAML written by a person (the config, rule files,
//! rule tests) reports through [`Diagnostic`], so `check`, `test`, `simulate`
//! and `run` print the same messages. This module also owns the one function
//! that turns YAML text into typed values, [`from_yaml`], with environment
//! interpolation and the YAML reader's limits.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// One problem at one place in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// What is wrong.
    pub message: String,
    /// What to do about it, when there is something specific to say.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A problem with no position inside the file (it cannot be read, say).
    pub fn file_level(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_owned(),
            line: 0,
            column: 0,
            message: message.into(),
            hint: None,
        }
    }

    /// A problem at `line:column` of `file`.
    pub fn at(file: &Path, line: u64, column: u64, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_owned(),
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint: what the user should do.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Converts an error of the YAML reader, improving the messages people hit most.
    pub fn from_yaml_error(file: &Path, err: &serde_saphyr::Error) -> Self {
        let (line, column) = err
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let mut message = err.to_string();
        // The reader appends its own position; ours is in front of the message.
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
        let mut diagnostic = Diagnostic::at(file, line, column, message.clone());
        if let Some(name) = between(&message, "missing property `", "`") {
            diagnostic.message = format!("environment variable `{name}` is not set");
            diagnostic.hint = Some(format!(
                "export {name}=..., or give a default in the file: ${{{name}:-value}}"
            ));
        } else if let Some(field) = between(&message, "unknown field `", "`") {
            let expected: Vec<&str> = message
                .split_once("expected one of ")
                .map(|(_, list)| list.split(", ").map(|s| s.trim_matches('`')).collect())
                .unwrap_or_default();
            diagnostic.message = format!("unknown key `{field}`");
            diagnostic.hint = Some(match did_you_mean(field, &expected) {
                Some(best) => format!("did you mean `{best}`?"),
                None if expected.is_empty() => "remove it".to_owned(),
                None => format!("valid keys here: {}", expected.join(", ")),
            });
        } else if let Some(variant) = between(&message, "unknown variant `", "`") {
            let expected: Vec<&str> = message
                .split_once("expected one of ")
                .or_else(|| message.split_once("expected "))
                .map(|(_, list)| list.split(", ").map(|s| s.trim_matches('`')).collect())
                .unwrap_or_default();
            diagnostic.message = format!("unknown value `{variant}`");
            diagnostic.hint = Some(match did_you_mean(variant, &expected) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("expected one of: {}", expected.join(", ")),
            });
        } else if message.starts_with("expected mapping start") {
            diagnostic.message = "expected a mapping here".to_owned();
            diagnostic.hint =
                Some("write `key: value` lines, indented under their parent".to_owned());
        } else if message.starts_with("expected sequence start") {
            diagnostic.message = "expected a list here".to_owned();
            diagnostic.hint = Some("write `- item` lines, or [a, b]".to_owned());
        } else if message.starts_with("expected string scalar") {
            diagnostic.message = "expected a single value here, not a list or a mapping".to_owned();
        } else if message.starts_with("duplicate mapping key") {
            diagnostic.message = message
                .split(", set DuplicateKeyPolicy")
                .next()
                .unwrap_or(&message)
                .to_owned();
            diagnostic.hint = Some("each key may appear once: remove one of them".to_owned());
        }
        diagnostic
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// All problems found in one pass over the user's files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one problem.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Err(self)` when there are problems, else `Ok(value)`.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to a misspelt `word`, if one is close enough to suggest.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// Reads YAML text into `T`, replacing `${VAR}` and `${VAR:-default}` from `env`.
///
/// Interpolation happens inside the YAML reader, on scalar values, so a
/// variable's value can never change the structure of the document.
pub fn from_yaml<T: DeserializeOwned>(
    file: &Path,
    text: &str,
    env: &HashMap<String, String>,
) -> Result<T, Diagnostic> {
    let mut options = serde_saphyr::Options::default().with_properties(env.clone());
    options.with_snippet = false;
    // YAML 1.2 booleans only: `yes`, `no`, `on`, `off` stay strings (button ids, answers).
    options.strict_booleans = true;
    serde_saphyr::from_str_with_options(text, options)
        .map_err(|err| Diagnostic::from_yaml_error(file, &err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_file_line_col_and_hint() {
        let d = Diagnostic::at(Path::new("a.yaml"), 3, 5, "bad").with_hint("fix it");
        assert_eq!(d.to_string(), "a.yaml:3:5: bad\n  hint: fix it");
        let d = Diagnostic::file_level(Path::new("a.yaml"), "unreadable");
        assert_eq!(d.to_string(), "a.yaml: unreadable");
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("rpely", &["reply", "send", "log"]),
            Some("reply")
        );
        assert_eq!(did_you_mean("zzz", &["reply", "send"]), None);
    }
}
