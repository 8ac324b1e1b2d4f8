//! Picking the text rules that could match a message, without running them all.
//!
//! For each `match.text` regex we derive a set of literal strings of which
//! any match must contain at least one (for `(?i)\b(price|how much)\b`:
//! `price` or `how much`). One Aho-Corasick pass over the message finds the
//! literals present, and only their rules run their regex. Regexes with no
//! usable literal (`.*`, `^\d+$`) are always tried. The cost of one event
//! thus grows with the rules that could match, not with the number of rules.
//!
//! Case is handled by folding: every character, in patterns and in text, is
//! replaced by the smallest member of its simple case-folding orbit, so a
//! literal found in a case-insensitive class is found in text of any case.
//! The filter may let through rules that do not match (their regex says no);
//! it never drops one that does.

use aho_corasick::{AhoCorasick, MatchKind};
use regex_syntax::hir::{Class, Hir, HirKind};

/// Literal sets larger than this are not worth combining.
const MAX_SET: usize = 64;

/// The rules worth trying for a text.
#[derive(Debug, Default)]
pub struct Prefilter {
    searcher: Option<AhoCorasick>,
    /// For each literal, the text rules (indices into the rule list) that need it.
    owners: Vec<Vec<usize>>,
    /// Text rules without a usable literal: always candidates.
    always: Vec<usize>,
}

impl Prefilter {
    /// Builds the filter from `(rule index, pattern)` pairs.
    pub fn new(patterns: &[(usize, &str)]) -> Prefilter {
        let mut literals: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        let mut index = std::collections::HashMap::new();
        let mut always = Vec::new();
        for &(rule, pattern) in patterns {
            match required_literals(pattern) {
                Some(set) => {
                    for literal in set {
                        let id = *index.entry(literal.clone()).or_insert_with(|| {
                            literals.push(literal);
                            owners.push(Vec::new());
                            owners.len() - 1
                        });
                        if owners[id].last() != Some(&rule) {
                            owners[id].push(rule);
                        }
                    }
                }
                None => always.push(rule),
            }
        }
        let searcher = (!literals.is_empty())
            .then(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&literals)
                    .ok()
            })
            .flatten();
        if searcher.is_none() {
            // Without a searcher every text rule must be tried.
            for o in &owners {
                always.extend(o.iter().copied());
            }
            owners.clear();
        }
        always.sort_unstable();
        always.dedup();
        Prefilter {
            searcher,
            owners,
            always,
        }
    }

    /// The text rules that could match `text`, unsorted, possibly with repeats.
    pub fn candidates(&self, text: &str, out: &mut Vec<usize>) {
        out.extend_from_slice(&self.always);
        let Some(searcher) = &self.searcher else {
            return;
        };
        let folded = fold_str(text);
        for m in searcher.find_overlapping_iter(&folded) {
            out.extend_from_slice(&self.owners[m.pattern().as_usize()]);
        }
    }
}

/// The smallest member of `c`'s simple case-folding orbit (`k`, `K` and the
/// Kelvin sign all become `K`).
pub fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let mut class =
        regex_syntax::hir::ClassUnicode::new([regex_syntax::hir::ClassUnicodeRange::new(c, c)]);
    class.case_fold_simple();
    class.ranges().first().map_or(c, |r| r.start())
}

fn fold_str(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_uppercase();
    }
    text.chars().map(fold).collect()
}

/// Strings (folded) of which every match of `pattern` contains one; `None`
/// when no such set is known (or the pattern can match the empty string).
pub fn required_literals(pattern: &str) -> Option<Vec<String>> {
    let hir = regex_syntax::parse(pattern).ok()?;
    let set = best(&analyze(&hir))?;
    (!set.is_empty() && set.iter().all(|s| !s.is_empty())).then_some(set)
}

/// What a piece of a regex says about the text it matches.
#[derive(Debug, Clone)]
enum Lits {
    /// It matches exactly one of these strings (`""` for look-arounds and empties).
    Exact(Vec<String>),
    /// Every match contains one of the strings of one of these sets; pick any set.
    Contains(Vec<Vec<String>>),
    /// Nothing useful is known.
    Any,
}

fn analyze(hir: &Hir) -> Lits {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Lits::Exact(vec![String::new()]),
        HirKind::Literal(lit) => match std::str::from_utf8(&lit.0) {
            Ok(s) => Lits::Exact(vec![fold_str(s)]),
            Err(_) => Lits::Any,
        },
        HirKind::Class(class) => match single_folded_char(class) {
            Some(c) => Lits::Exact(vec![c.to_string()]),
            None => Lits::Any,
        },
        HirKind::Capture(cap) => analyze(&cap.sub),
        HirKind::Repetition(rep) => {
            if rep.min == 0 {
                return Lits::Any;
            }
            match analyze(&rep.sub) {
                Lits::Exact(set) if rep.min == 1 && rep.max == Some(1) => Lits::Exact(set),
                Lits::Exact(set) => Lits::Contains(vec![set]),
                other => other,
            }
        }
        HirKind::Concat(items) => concat(items),
        HirKind::Alternation(items) => {
            let parts: Vec<Lits> = items.iter().map(analyze).collect();
            if parts.iter().all(|p| matches!(p, Lits::Exact(_))) {
                let mut all = Vec::new();
                for p in parts {
                    if let Lits::Exact(set) = p {
                        all.extend(set);
                    }
                }
                all.sort();
                all.dedup();
                return if all.len() <= MAX_SET {
                    Lits::Exact(all)
                } else {
                    Lits::Any
                };
            }
            let mut union = Vec::new();
            for p in &parts {
                match best(p) {
                    Some(set) => union.extend(set),
                    None => return Lits::Any,
                }
            }
            union.sort();
            union.dedup();
            Lits::Contains(vec![union])
        }
    }
}

/// A concatenation: adjacent exact parts are joined (`pr` + `ice` = `price`).
fn concat(items: &[Hir]) -> Lits {
    let mut candidates: Vec<Vec<String>> = Vec::new();
    let mut run: Option<Vec<String>> = Some(vec![String::new()]);
    let mut all_exact = true;
    for item in items {
        match analyze(item) {
            Lits::Exact(set) => {
                run = match run.take() {
                    Some(current) if current.len() * set.len() <= MAX_SET => Some(
                        current
                            .iter()
                            .flat_map(|a| set.iter().map(move |b| format!("{a}{b}")))
                            .collect(),
                    ),
                    Some(current) => {
                        candidates.push(current);
                        Some(set)
                    }
                    None => Some(set),
                };
            }
            Lits::Contains(sets) => {
                all_exact = false;
                if let Some(current) = run.take() {
                    candidates.push(current);
                }
                candidates.extend(sets);
            }
            Lits::Any => {
                all_exact = false;
                if let Some(current) = run.take() {
                    candidates.push(current);
                }
            }
        }
    }
    if all_exact {
        return Lits::Exact(run.unwrap_or_default());
    }
    if let Some(current) = run {
        candidates.push(current);
    }
    Lits::Contains(candidates)
}

/// The most selective usable set: all strings non-empty, the shortest as long as possible.
fn best(lits: &Lits) -> Option<Vec<String>> {
    let sets: Vec<&Vec<String>> = match lits {
        Lits::Exact(set) => vec![set],
        Lits::Contains(sets) => sets.iter().collect(),
        Lits::Any => return None,
    };
    sets.into_iter()
        .filter(|s| !s.is_empty() && s.iter().all(|x| !x.is_empty()))
        .max_by_key(|s| {
            let shortest = s.iter().map(|x| x.chars().count()).min().unwrap_or(0);
            (shortest.min(8), std::cmp::Reverse(s.len()))
        })
        .cloned()
}

/// The one folded character a class stands for (`[kK]`, `(?i)k`), if it is one.
fn single_folded_char(class: &Class) -> Option<char> {
    match class {
        Class::Unicode(u) => {
            let mut folded: Option<char> = None;
            let mut count = 0u32;
            for range in u.ranges() {
                for c in range.start()..=range.end() {
                    count += 1;
                    if count > 8 {
                        return None;
                    }
                    let f = fold(c);
                    if *folded.get_or_insert(f) != f {
                        return None;
                    }
                }
            }
            folded
        }
        Class::Bytes(b) => {
            let mut folded: Option<char> = None;
            for range in b.ranges() {
                if range.end() - range.start() > 8 {
                    return None;
                }
                for byte in range.start()..=range.end() {
                    let f = fold(byte as char);
                    if !byte.is_ascii() || *folded.get_or_insert(f) != f {
                        return None;
                    }
                }
            }
            folded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(p: &str) -> Option<Vec<String>> {
        required_literals(p)
    }

    #[test]
    fn literals_of_common_patterns() {
        assert_eq!(
            lits(r"(?i)\b(price|how much)\b").unwrap(),
            ["HOW MUCH", "PRICE"]
        );
        assert_eq!(
            lits(r"(?i)^\s*(menu|start)\s*$").unwrap(),
            ["MENU", "START"]
        );
        assert_eq!(lits("order (?P<id>[0-9]+)").unwrap(), ["ORDER "]);
        assert_eq!(lits(r"(?i)question").unwrap(), ["QUESTION"]);
        assert_eq!(lits(r"(?i)giá|bao nhiêu").unwrap(), ["BAO NHIÊU", "GIÁ"]);
    }

    #[test]
    fn patterns_without_literals_are_always_tried() {
        for p in [r"^\d+$", ".*", "a*", r"(?i)^\s*(?P<size>S|M|L)\b", "", "x?"] {
            let got = lits(p);
            if let Some(set) = &got {
                assert!(set.iter().all(|s| s.chars().count() >= 1), "{p}: {set:?}");
            }
        }
        assert_eq!(lits(r"^\d+$"), None);
        assert_eq!(lits(".*"), None);
    }

    #[test]
    fn folding_is_consistent_for_odd_letters() {
        assert_eq!(fold('k'), fold('\u{212A}'));
        assert_eq!(fold('s'), fold('ſ'));
        assert_eq!(fold('é'), fold('É'));
    }

    #[test]
    fn candidates_find_the_right_rules() {
        let p = Prefilter::new(&[(0, r"(?i)\bprice\b"), (1, r"(?i)\bhours\b"), (2, r"^\d+$")]);
        let mut out = Vec::new();
        p.candidates("What's the PRICE?", &mut out);
        out.sort();
        assert_eq!(out, [0, 2]);
    }

    proptest::proptest! {
        /// Whatever the pattern and text: if the regex matches, its rule is a candidate.
        #[test]
        fn never_drops_a_matching_rule(
            pattern in r"(\(\?i\))?[a-zA-Zſé ]{1,6}(\|[a-zA-Z ]{1,4})?[0-9]?",
            text in r"[a-zA-ZſKé 0-9]{0,20}",
        ) {
            let Ok(re) = regex::Regex::new(&pattern) else { return Ok(()) };
            let p = Prefilter::new(&[(0, &pattern)]);
            let mut out = Vec::new();
            p.candidates(&text, &mut out);
            if re.is_match(&text) {
                proptest::prop_assert!(out.contains(&0), "pattern {pattern:?} text {text:?}");
            }
        }
    }
}
