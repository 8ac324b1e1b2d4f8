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
pub struct Secret(String);

impl Secret {
    /// Wraps a value; `None` for an empty string (an unset `${VAR:-}`).
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        (!value.trim().is_empty()).then(|| Secret(value.trim().to_owned()))
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison: the time taken does not depend on where the
    /// first differing byte is, so a caller cannot guess the secret byte by byte.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), candidate)
    }

    /// Replaces every occurrence of the secret in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            return text.to_owned();
        }
        text.replace(&self.0, "***")
    }
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
}
