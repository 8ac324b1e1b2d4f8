//! A string that must never be shown: the API access token and webhook secrets.
//!
//! `Secret` has no `Display`, and its `Debug` prints `***`, so a secret cannot
//! reach a log line, an error message or `{:?}` output by accident. The only
//! way to read it is [`Secret::expose`], which makes every use greppable.
//! [`Secret::redact`] scrubs the value out of text that came from elsewhere
//! (a response body echoing the request, a third-party error message).

use std::fmt;

/// A secret string. Compare with [`Secret::matches`], which runs in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// The value and its encoded forms, for [`Secret::redact`].
    forms: Vec<String>,
}

impl Secret {
    /// Wraps a value; `None` for an empty string (an unset `${VAR:-}`).
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        let value = value.trim();
        (!value.is_empty()).then(|| Secret {
            value: value.to_owned(),
            forms: encoded_forms(value),
        })
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Constant-time comparison: the time taken does not depend on where the
    /// first differing byte is, so a caller cannot guess the secret byte by byte.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        constant_time_eq(self.value.as_bytes(), candidate)
    }

    /// Replaces every occurrence of the secret in `text` with `***`: as it
    /// is, and in every encoded form it takes on the way (form-encoded as in
    /// a query string, percent-encoded, JSON-escaped), so an echo of the
    /// request or a URL in an error cannot carry it out.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for form in &self.forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), "***");
            }
        }
        out
    }
}

/// The secret as it is and as encoders write it, longest first so that a
/// form containing another is replaced whole.
fn encoded_forms(raw: &str) -> Vec<String> {
    let form: String = url::form_urlencoded::byte_serialize(raw.as_bytes()).collect();
    let percent = form.replace('+', "%20");
    let json = serde_json::to_string(raw).unwrap_or_default();
    let json = json.trim_matches('"').to_owned();
    let mut forms = vec![raw.to_owned(), form, percent, json];
    // Hex digits of percent escapes may be written in either case.
    let lower: Vec<String> = forms
        .iter()
        .filter(|f| f.contains('%'))
        .map(|f| lower_escapes(f))
        .collect();
    forms.extend(lower);
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
    forms
}

/// `text` with the hex digits of its percent escapes in lower case.
fn lower_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
        }
    }
    out
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    // Walk the longer input fully so the loop length does not leak a prefix match.
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new("6881c11f741a1").unwrap();
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(s)), "Some(***)");
    }

    #[test]
    fn empty_is_none() {
        assert!(Secret::new("").is_none());
        assert!(Secret::new("  ").is_none());
    }

    #[test]
    fn matches_only_the_same_bytes() {
        let s = Secret::new("abc").unwrap();
        assert!(s.matches(b"abc"));
        assert!(!s.matches(b"abd"));
        assert!(!s.matches(b"ab"));
        assert!(!s.matches(b"abcd"));
        assert!(!s.matches(b""));
    }

    #[test]
    fn redact_scrubs_every_occurrence() {
        let s = Secret::new("tok123").unwrap();
        assert_eq!(s.redact("a tok123 b tok123"), "a *** b ***");
    }

    #[test]
    fn redact_scrubs_the_encoded_forms_too() {
        let s = Secret::new("TOK/s+cr=t&98%7654 \"q\"").unwrap();
        let texts = [
            "TOK/s+cr=t&98%7654 \"q\"",
            "?access_token=TOK%2Fs%2Bcr%3Dt%2698%257654+%22q%22",
            "/x/TOK%2Fs%2Bcr%3Dt%2698%257654%20%22q%22",
            "?access_token=TOK%2fs%2bcr%3dt%2698%257654+%22q%22",
            r#"{"access_token":"TOK/s+cr=t&98%7654 \"q\""}"#,
        ];
        for text in texts {
            let out = s.redact(text);
            assert!(out.contains("***"), "{text} -> {out}");
            for part in ["TOK", "7654"] {
                assert!(!out.contains(part), "{text} -> {out}");
            }
        }
    }
}
