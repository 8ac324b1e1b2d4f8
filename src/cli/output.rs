//! How commands print: text for people on stdout, or one JSON object with `--json`.
//! Errors go to stderr as text; with `--json` a JSON object also goes to stdout
//! so a script always finds one.

use serde_json::{Value, json};

use super::CliError;
use crate::api::ErrorClass;

/// Where and how a command prints its result.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// One JSON object per command instead of text.
    pub json: bool,
}

impl Output {
    /// Prints a success: `text` for people, `data` (plus `"ok": true`) for scripts.
    pub fn success(&self, text: &str, data: Value) {
        if self.json {
            let mut object = json!({ "ok": true });
            if let (Some(map), Value::Object(extra)) = (object.as_object_mut(), data) {
                map.extend(extra);
            }
            println!("{object}");
        } else {
            println!("{text}");
        }
    }

    /// Prints a failure.
    pub fn error(&self, err: &CliError) {
        match err {
            // Located problems stand alone, one per line: FILE:LINE:COL: message.
            CliError::Config(crate::config::ConfigError::Invalid(problems)) => {
                eprintln!("{problems}");
                eprintln!(
                    "{} problem{} found",
                    problems.0.len(),
                    if problems.0.len() == 1 { "" } else { "s" }
                );
            }
            _ => eprintln!("error: {err}"),
        }
        if self.json {
            let class = match err {
                CliError::Api(api) => match api.class() {
                    ErrorClass::Retryable => "retryable",
                    ErrorClass::Permanent => "permanent",
                    ErrorClass::Relogin => "relogin",
                    ErrorClass::RateLimited => "rate_limited",
                },
                _ => "invalid",
            };
            println!(
                "{}",
                json!({ "ok": false, "error": err.to_string(), "class": class })
            );
        }
    }
}
