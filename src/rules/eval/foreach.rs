//! Expanding a `for_each` rule: its list's rows, each tested by `where:`
//! and planned on its own; bad rows are left out with their line and why,
//! and do not stop the others.

use std::borrow::Cow;
use std::collections::BTreeMap;

use minijinja::Value as JValue;
use serde_json::Value;

use super::EvalInput;
use super::context::Base;
use crate::event::list::List;
use crate::event::{Event, EventKind};
use crate::rules::expr::to_value;
use crate::rules::plan::{RowRef, RulePlan};
use crate::rules::{ForEach, ListSource, Rule, RuleSet};

/// What a `for_each` rule made of its list for one event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListRun {
    /// The rule.
    pub rule: String,
    /// Where the list came from.
    pub source: String,
    /// Rows in the list.
    pub total: usize,
    /// Rows planned (each with its own outbox rows).
    pub planned: usize,
    /// Rows left out, in list order.
    pub left_out: Vec<LeftOut>,
    /// Why there was no list at all, when there was none.
    pub missing: Option<String>,
}

/// A row left out of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftOut {
    /// Its line.
    pub line: u64,
    /// Why.
    pub reason: String,
    /// A bad row (unreadable, no or bad number, a template error), not
    /// one `where:` excluded.
    pub bad: bool,
}

impl RuleSet {
    /// The plans of each row of `rule`'s list, and the account of the list.
    pub(super) fn expand(
        &self,
        index: usize,
        each: &ForEach,
        event: &Event,
        input: &EvalInput,
        base: &Base<'_>,
        captures: BTreeMap<JValue, JValue>,
    ) -> (Vec<RulePlan>, ListRun) {
        let rule = &self.rules[index];
        let mut run = ListRun {
            rule: rule.name.clone(),
            source: each.source.describe(),
            ..ListRun::default()
        };
        let list = match rows_of(rule, each, event) {
            Ok(list) => list,
            Err(why) => {
                run.missing = Some(why);
                return (Vec::new(), run);
            }
        };
        run.total = list.rows.len();
        let mut plans = Vec::new();
        for (position, row) in list.rows.iter().enumerate() {
            let leave = |reason: String, bad: bool| LeftOut {
                line: row.line,
                reason,
                bad,
            };
            if let Some(problem) = &row.problem {
                run.left_out.push(leave(problem.clone(), true));
                continue;
            }
            let row_base = base.with_row(to_value(&row.fields), row.line);
            if let Some(condition) = &each.condition {
                let ctx =
                    self.rule_context(rule, input, &row_base, &captures, &BTreeMap::new(), None);
                match self.templates.is_true(condition, &ctx) {
                    Ok(true) => {}
                    Ok(false) => {
                        let written = each.condition_source.as_deref().unwrap_or_default();
                        run.left_out
                            .push(leave(format!("where: `{written}` is false"), false));
                        continue;
                    }
                    Err(e) => {
                        run.left_out
                            .push(leave(format!("where: failed: {e}"), true));
                        continue;
                    }
                }
            }
            let mut plan = self.plan(index, event, input, &row_base, captures.clone(), 0, None);
            if let Some(failed) = &plan.failed {
                let reason = format!("action #{}: {}", failed.action + 1, failed.message);
                run.left_out.push(leave(reason, true));
                continue;
            }
            plan.row = Some(RowRef {
                index: position,
                line: row.line,
            });
            plans.push(plan);
        }
        run.planned = plans.len();
        (plans, run)
    }
}

/// The list of `rule` for `event`: from the body (`items:`), or as it was
/// read when the rule fired.
fn rows_of<'e>(rule: &Rule, each: &ForEach, event: &'e Event) -> Result<Cow<'e, List>, String> {
    let read = match (&each.source, &event.kind) {
        (ListSource::Items(path), EventKind::Hook(hook)) => {
            let mut at = &hook.body;
            for part in path {
                at = at.get(part).unwrap_or(&Value::Null);
            }
            return match at {
                Value::Array(items) => Ok(Cow::Owned(List::from_json_array(
                    each.source.describe(),
                    items,
                ))),
                _ => Err(format!(
                    "{} is not a list in this call's body",
                    each.source.describe()
                )),
            };
        }
        (_, EventKind::Hook(hook)) => hook.lists.get(&rule.name),
        (_, EventKind::Schedule(fire)) => fire.list.as_ref(),
        _ => None,
    };
    read.map(Cow::Borrowed).ok_or_else(|| {
        format!(
            "the list {} was not read for this event",
            each.source.describe()
        )
    })
}
