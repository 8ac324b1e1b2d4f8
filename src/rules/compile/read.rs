//! Reading one rule file into raw rules, each rule on its own so that a
//! mistake in one does not hide mistakes in the others.

use std::collections::HashMap;
use std::path::Path;

use super::{reword_action, trimmed};
use crate::config::Diagnostics;
use crate::config::diagnostic::from_yaml;
use crate::rules::raw::{RawFile, RawRule, RawSkeleton, Sp};

/// Reads the rules of one file, each on its own so every broken rule is reported.
pub(super) fn read_rules(
    path: &Path,
    text: &str,
    env: &HashMap<String, String>,
    problems: &mut Diagnostics,
) -> (Vec<Sp<RawRule>>, Vec<Sp<String>>) {
    if text.trim().is_empty() {
        return (Vec::new(), Vec::new());
    }
    // The common case, a file without mistakes in its shape, is read in one pass.
    if let Ok(file) = from_yaml::<RawFile>(path, text, env) {
        let names = file.rules.iter().map(|r| trimmed(&r.value.name)).collect();
        return (file.rules, names);
    }
    let skeleton: RawSkeleton = match from_yaml(path, text, env) {
        Ok(s) => s,
        Err(d) => {
            problems.push(reword_action(d));
            return (Vec::new(), Vec::new());
        }
    };
    let names: Vec<Sp<String>> = skeleton
        .rules
        .iter()
        .filter_map(|r| {
            let name = r.value.name.as_ref()?;
            Some(Sp {
                value: name.value.0.clone()?.trim().to_owned(),
                line: name.line,
                column: name.column,
            })
        })
        .collect();
    let starts: Vec<(u64, u64)> = skeleton.rules.iter().map(|s| (s.line, s.column)).collect();
    let separable =
        starts.iter().all(|(l, c)| *l > 0 && *c > 0) && starts.windows(2).all(|w| w[0].0 < w[1].0);
    let whole = |problems: &mut Diagnostics| match from_yaml::<RawFile>(path, text, env) {
        Ok(file) => file.rules,
        Err(d) => {
            problems.push(reword_action(d));
            Vec::new()
        }
    };
    if !separable {
        return (whole(problems), names);
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut rules = Vec::new();
    let mut local = Diagnostics::default();
    for (i, &(line, column)) in starts.iter().enumerate() {
        let end = starts
            .get(i + 1)
            .map_or(lines.len(), |next| next.0 as usize - 1);
        let doc = rule_document(&lines, line, column, end);
        match from_yaml::<RawRule>(path, &doc, env) {
            Ok(rule) => rules.push(Sp {
                value: rule,
                line,
                column,
            }),
            Err(d) => local.push(reword_action(d)),
        }
    }
    // Anchors shared between rules cannot be read rule by rule: read the file whole.
    if local
        .0
        .iter()
        .any(|d| d.message.contains("anchor") || d.message.contains("alias"))
    {
        return (whole(problems), names);
    }
    problems.0.extend(local.0);
    (rules, names)
}

/// The text of one rule, from its start (`line`, `column`, both from 1) to
/// line `end`, placed at its own line and column so that the YAML reader's
/// positions stay those of the file.
fn rule_document(lines: &[&str], line: u64, column: u64, end: usize) -> String {
    let first = lines.get(line as usize - 1).copied().unwrap_or_default();
    let skip = first
        .char_indices()
        .nth(column as usize - 1)
        .map_or(first.len(), |(b, _)| b);
    let mut doc = "\n".repeat(line as usize - 1);
    doc.push_str(&" ".repeat(column as usize - 1));
    doc.push_str(&first[skip..]);
    for l in lines.iter().take(end).skip(line as usize) {
        doc.push('\n');
        doc.push_str(l);
    }
    doc.push('\n');
    doc
}
