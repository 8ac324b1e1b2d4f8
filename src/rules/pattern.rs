//! `match.text` patterns: Rust regexes, built lean.
//!
//! A rule set may hold 10,000 of them, and the rule set's own prefilter
//! ([`super::prefilter`]) already decides which few run on a message. So a
//! pattern is built without the parts a lone regex uses to be fast on long
//! texts: no literal prefilter (for a case-insensitive alternation that was
//! most of its memory), no one-pass DFA and no backtracker; the lazy DFA
//! finds a match and the PikeVM its groups. That takes a pattern from about
//! 68 KiB to about 12 KiB (docs/performance.md). Its search cache lives for
//! one search, so memory does not grow with the patterns that have run.
//! The syntax and the meaning are those of the `regex` crate.

use regex_automata::Input;
use regex_automata::meta::{self, Regex};
use regex_automata::util::captures::Captures;

/// A compiled `match.text` pattern and the text it was written as.
pub struct Pattern {
    re: Regex,
    source: String,
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

impl Pattern {
    /// Compiles `source`; the error is the `regex` crate's message (for a
    /// syntax error: the pattern, a caret line and `error: WHAT`).
    pub fn new(source: &str) -> Result<Pattern, String> {
        let config = meta::Config::new()
            .auto_prefilter(false)
            .onepass(false)
            .backtrack(false);
        let re = meta::Builder::new()
            .configure(config)
            .build(source)
            .map_err(|err| match err.syntax_error() {
                Some(syntax) => syntax.to_string(),
                None => err.to_string(),
            })?;
        Ok(Pattern {
            re,
            source: source.to_owned(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The names of the groups, in order (`None` for group 0 and unnamed ones).
    pub fn capture_names(&self) -> impl Iterator<Item = Option<&str>> {
        self.re
            .group_info()
            .pattern_names(regex_automata::PatternID::ZERO)
    }

    /// The text of each group of the first match in `text` (group 0 is
    /// the whole match; `None` for a group that took no part), or `None`
    /// when nothing matches.
    pub fn captures<'t>(&self, text: &'t str) -> Option<Vec<Option<&'t str>>> {
        // A cache for this search only: a regex's own pooled cache stays
        // once used (about 19 KiB), which 10,000 rules cannot afford.
        let mut cache = self.re.create_cache();
        let mut caps: Captures = self.re.create_captures();
        self.re
            .search_captures_with(&mut cache, &Input::new(text), &mut caps);
        if !caps.is_match() {
            return None;
        }
        Some(
            (0..caps.group_len())
                .map(|i| caps.get_group(i).map(|span| &text[span.range()]))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_names_are_those_of_the_regex_crate() {
        let p = Pattern::new(r"(?i)\border (?P<id>\d+)( now)?").unwrap();
        assert_eq!(
            p.captures("ORDER 42 please"),
            Some(vec![Some("ORDER 42"), Some("42"), None])
        );
        assert_eq!(
            p.capture_names().collect::<Vec<_>>(),
            [None, Some("id"), None]
        );
        assert!(p.captures("no match").is_none());
        assert!(p.captures("order 7").is_some());
        assert_eq!(p.as_str(), r"(?i)\border (?P<id>\d+)( now)?");
    }

    #[test]
    fn unicode_word_boundaries_and_case_folding_hold() {
        let p = Pattern::new(r"(?i)\bgiá\b").unwrap();
        assert!(p.captures("GIÁ bao nhiêu?").is_some());
        assert!(p.captures("giáo").is_none());
        let k = Pattern::new(r"(?i)kelvin").unwrap();
        assert!(k.captures("\u{212A}ELVIN").is_some());
    }

    #[test]
    fn a_syntax_error_reads_like_the_regex_crates() {
        let broken = String::from("(unclosed");
        let err = Pattern::new(&broken).unwrap_err();
        let theirs = regex::Regex::new(&broken).unwrap_err().to_string();
        assert_eq!(err, theirs);
    }
}
