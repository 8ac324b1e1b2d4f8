//! The list preview of `waflow simulate` (SPEC §10): for a `for_each`
//! rule, each row in list order with the message it would get or why it is
//! left out — by `where:`, as a bad row, or (when the store is at hand) by
//! a protection as it stands now — and `--schedule RULE`, the fire event
//! with its list read as the daemon would read it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::CliError;
use crate::config::{Config, StoreLocation};
use crate::event::{Event, EventKind, Fire};
use crate::rules::{ListRun, PlannedAction, RulePlan, RuleSet, Trigger};
use crate::store::Direct;

/// The fire of schedule rule `name` at `now`, its list read.
pub(super) fn schedule_event(
    rules: &RuleSet,
    name: &str,
    now: jiff::Timestamp,
) -> Result<Event, CliError> {
    let Some(rule) = rules.rule(name) else {
        let names: Vec<&str> = rules.rules.iter().map(|r| r.name.as_str()).collect();
        let hint = match crate::config::diagnostic::did_you_mean(name, &names) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("the rules: {}", names.join(", ")),
        };
        return Err(CliError::Invalid(format!(
            "--schedule {name}: no such rule; {hint}"
        )));
    };
    if !matches!(rule.trigger, Trigger::Schedule(_)) {
        return Err(CliError::Invalid(format!(
            "--schedule {name}: the rule is `on: {}`, not `on: schedule`",
            rule.trigger.name()
        )));
    }
    let list = match &rule.for_each {
        Some(each) => Some(
            crate::lists::load_blocking(&each.source)
                .map_err(|e| CliError::Invalid(e.to_string()))?,
        ),
        None => None,
    };
    Ok(Event {
        instance_id: None,
        kind: EventKind::Schedule(Fire {
            rule: name.to_owned(),
            at: now,
            list,
        }),
        raw: Value::Null,
    })
}

/// What the protections would say at send time, from the store when there is one.
pub(super) struct SendCheck {
    store: Option<Direct>,
}

impl SendCheck {
    pub(super) fn open(config: &Config) -> SendCheck {
        let store = match &config.store {
            StoreLocation::File(path) if path.exists() => Direct::open(path).ok(),
            StoreLocation::Postgres(url) => Direct::connect(url.expose()).ok(),
            _ => None,
        };
        SendCheck { store }
    }

    /// Why `action` would be blocked now, if it would.
    fn blocked(&self, config: &Config, rule: &str, action: &PlannedAction) -> Option<String> {
        let (Some(store), PlannedAction::Send(out)) = (&self.store, action) else {
            return None;
        };
        let now = crate::units::now_ms();
        let block = store
            .run(|tx| crate::guard::blocked(tx, &config.safety, config.name(), rule, out, now))
            .ok()
            .flatten()?;
        Some(block.note)
    }
}

/// A `for_each` rule's verdict: a line per row in `text`, and its JSON report.
pub(super) fn report_list(
    config: &Config,
    check: &SendCheck,
    name: &str,
    plans: &[RulePlan],
    run: &ListRun,
    text: &mut String,
) -> Value {
    if let Some(why) = &run.missing {
        text.push_str(&format!("  ✗ {name}: matched, but {why}\n"));
        return json!({ "rule": name, "matched": true, "list": run.source, "error": why });
    }
    let mut rows: BTreeMap<u64, Value> = BTreeMap::new();
    let mut lines: BTreeMap<u64, String> = BTreeMap::new();
    let mut blocked = 0;
    for plan in plans {
        let line = plan.row.map_or(0, |r| r.line);
        let actions: Vec<Value> = plan.actions.iter().map(PlannedAction::display).collect();
        let stop = plan
            .actions
            .iter()
            .find_map(|a| check.blocked(config, name, a));
        let shown = actions
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let row = match &stop {
            Some(why) => {
                blocked += 1;
                lines.insert(line, format!("line {line}: blocked now: {why} ({shown})"));
                json!({ "line": line, "actions": actions, "blocked": why })
            }
            None => {
                lines.insert(line, format!("line {line}: {shown}"));
                json!({ "line": line, "actions": actions })
            }
        };
        rows.insert(line, row);
    }
    for left in &run.left_out {
        let kind = if left.bad { "bad row" } else { "left out" };
        lines.insert(
            left.line,
            format!("line {}: {kind}: {}", left.line, left.reason),
        );
        rows.insert(
            left.line,
            json!({ "line": left.line, "left_out": left.reason, "bad": left.bad }),
        );
    }
    let bad = run.left_out.iter().filter(|l| l.bad).count();
    text.push_str(&format!(
        "  ✓ {name}: list {}: {} rows, {} to send{}, {} left out by where, {bad} bad\n",
        run.source,
        run.total,
        run.planned - blocked,
        if blocked > 0 {
            format!(", {blocked} blocked now")
        } else {
            String::new()
        },
        run.left_out.len() - bad,
    ));
    for line in lines.values() {
        text.push_str(&format!("      {line}\n"));
    }
    json!({
        "rule": name,
        "matched": true,
        "list": run.source,
        "total": run.total,
        "planned": run.planned,
        "blocked": blocked,
        "bad": bad,
        "rows": rows.into_values().collect::<Vec<_>>(),
    })
}
