//! Setting up the log on stderr: pretty lines or JSON objects.
//!
//! Log fields carry text that strangers wrote (sender names, message
//! texts, API answers). In pretty lines every field and the message are
//! written with their control characters escaped, so a name holding a
//! line break cannot start a forged log line; JSON escapes them itself.

use std::fmt::Write as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt as _;

use super::LogFormat;

/// Installs the process-wide log subscriber; `verbose` raises the default
/// level (`RUST_LOG` overrides it).
pub fn init(format: LogFormat, verbose: u8) {
    let default_level = match verbose {
        0 => "waflow=info",
        1 => "waflow=debug",
        _ => "waflow=trace",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => {
            let fields = tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
                let text = escape_controls(&format!("{value:?}"));
                if field.name() == "message" {
                    writer.write_str(&text)
                } else {
                    write!(writer, "{field}={text}")
                }
            })
            .delimited(" ");
            builder.with_target(false).fmt_fields(fields).init();
        }
        LogFormat::Json => builder.json().init(),
    }
}

/// `text` with line breaks, escapes and other control characters written
/// as `\n`, `\u{1b}` …: one log line stays one line.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_break_a_log_line() {
        assert_eq!(escape_controls("Ana"), "Ana");
        assert_eq!(
            escape_controls("Ana\n2026-01-01 ERROR forged\r\u{1b}[31m"),
            "Ana\\n2026-01-01 ERROR forged\\r\\u{1b}[31m"
        );
    }
}
