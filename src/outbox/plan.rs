//! Writing a rule's plan: sends and `http` calls become outbox rows (one
//! per action, keyed `<instance>/<event key>/<rule>/<index>`, a list row's
//! `<instance>/<event key>/<rule>/r<row>/<index>`), state changes go to
//! the chat's memory, delays push back the rows after them.

use std::time::Duration;

use crate::config::Config;
use crate::rules::{PlannedAction, RulePlan};
use crate::store::{NewOutbox, StoreError, Tx};

/// Writes a rule's planned actions: sends and http calls to the outbox,
/// state changes to the store, delays into the due times of later rows.
#[allow(clippy::too_many_arguments)]
pub fn write_plan(
    tx: &Tx,
    config: &Config,
    instance: &str,
    event_key: &str,
    inbox_id: Option<i64>,
    plan: &RulePlan,
    first_index: usize,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let mut delay = Duration::ZERO;
    let mut written = 0;
    for (offset, action) in plan.actions.iter().enumerate() {
        let index = first_index + offset;
        match action {
            PlannedAction::Send(_) | PlannedAction::Http(_) => {
                if let PlannedAction::Send(out) = action
                    && !out.menu.is_empty()
                    && let Some(to) = out.request.recipient()
                {
                    tx.set_menu(instance, &to, &out.menu, now_ms)?;
                }
                let state = if config.dry_run { "dry_run" } else { "pending" };
                let row = NewOutbox {
                    instance: instance.to_owned(),
                    idem_key: match plan.row {
                        // A list's rows: one set of keys per row of the frozen list.
                        Some(row) => {
                            format!(
                                "{instance}/{event_key}/{}/r{}/{index}",
                                plan.rule, row.index
                            )
                        }
                        None => format!("{instance}/{event_key}/{}/{index}", plan.rule),
                    },
                    inbox_id,
                    rule: plan.rule.clone(),
                    action_index: index,
                    chat: plan.chat.clone(),
                    action: action.clone(),
                    next_at: now_ms + delay.as_millis() as i64,
                    state,
                };
                if tx.insert_outbox(&row, now_ms)? {
                    written += 1;
                    if config.dry_run {
                        metrics::counter!(crate::metrics::ACTIONS, "instance" => instance.to_owned(), "kind" => kind(action), "outcome" => "dry_run").increment(1);
                        tracing::info!(rule = %plan.rule, action = %action.display(), "dry-run: recorded, not sent");
                    }
                }
            }
            PlannedAction::Set { values } => {
                if let Some(chat) = &plan.chat {
                    tx.set_state(instance, chat, values)?;
                }
            }
            PlannedAction::Clear { keys } => {
                if let Some(chat) = &plan.chat {
                    tx.clear_state(instance, chat, keys)?;
                }
            }
            PlannedAction::Delay { millis } => delay += Duration::from_millis(*millis),
            PlannedAction::Log { text } => tracing::info!(rule = %plan.rule, "{text}"),
        }
    }
    if let Some(failure) = &plan.failed {
        metrics::counter!(crate::metrics::ACTIONS, "instance" => instance.to_owned(), "kind" => "template", "outcome" => "failed")
            .increment(1);
        tracing::warn!(rule = %plan.rule, action = failure.action + 1, error = %failure.message, "an action could not be planned; the rule stops there");
    }
    Ok(written)
}

/// The metric label of an action.
pub fn kind(action: &PlannedAction) -> &'static str {
    match action {
        PlannedAction::Send(out) => out.request.endpoint(),
        PlannedAction::Http(_) => "http",
        PlannedAction::Set { .. } => "set",
        PlannedAction::Clear { .. } => "clear",
        PlannedAction::Delay { .. } => "delay",
        PlannedAction::Log { .. } => "log",
    }
}
