//! What a load asks of the lists before the rules are used: each list
//! file can be read and parsed, and every `row.NAME` a rule reads is a
//! column of its CSV file's header — reported at the rule, `FILE:LINE:COL`.
//! A list URL is not fetched here; a failure shows when the rule fires.

use crate::config::diagnostic::did_you_mean;
use crate::config::{Diagnostic, Diagnostics};
use crate::rules::{ForEach, ListSource, Rule, RuleSet};

/// The problems of every list file the rules read.
pub fn check(rules: &RuleSet) -> Diagnostics {
    let mut problems = Diagnostics::default();
    for rule in &rules.rules {
        if let Some(each) = &rule.for_each {
            check_rule(rule, each, &mut problems);
        }
    }
    problems
}

fn check_rule(rule: &Rule, each: &ForEach, problems: &mut Diagnostics) {
    let at = |line, column, message: String| Diagnostic::at(&rule.file, line, column, message);
    match &each.source {
        ListSource::Csv(_) | ListSource::Yaml(_) => {
            if let Err(e) = super::read_file(&each.source) {
                let hint = format!(
                    "rule `{}` reads it; a relative path starts at the folder of its rules file",
                    rule.name
                );
                problems.push(at(each.line, each.column, e.to_string()).with_hint(hint));
                return;
            }
            let ListSource::Csv(path) = &each.source else {
                return;
            };
            let Some(header) = std::fs::read_to_string(path)
                .ok()
                .and_then(|text| super::csv::header_of(&text))
            else {
                return;
            };
            let columns: Vec<&str> = header.iter().map(String::as_str).collect();
            for field in &each.fields {
                if columns.contains(&field.name.as_str()) {
                    continue;
                }
                let message = format!(
                    "`row.{}`: the list {} has no column `{}`",
                    field.name,
                    path.display(),
                    field.name
                );
                let hint = match did_you_mean(&field.name, &columns) {
                    Some(best) => format!("did you mean `row.{best}`?"),
                    None => format!("its columns: {}", columns.join(", ")),
                };
                problems.push(at(field.line, field.column, message).with_hint(hint));
            }
        }
        ListSource::Http { .. } | ListSource::Items(_) => {}
    }
}
