//! `waflow simulate`: which rules an event matches, why the others do not,
//! and the exact API requests that would be made (token masked). Nothing is sent.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use serde_json::{Value, json};

use super::{Cli, CliError, Output};
use crate::api::ApiClient;
use crate::event::{Event, EventKind, MessageType, ShortMessage, normalize};
use crate::rules::{EvalInput, MemoryState, PlannedAction, Verdict, chat_of};

/// Arguments of `waflow simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The text of a simulated incoming message
    #[arg(long, conflicts_with_all = ["payload", "schedule"], required_unless_present_any = ["payload", "button_id", "schedule"])]
    pub text: Option<String>,
    /// Fire this schedule rule (its list read now) instead of a message
    #[arg(long, value_name = "RULE", conflicts_with_all = ["payload", "button_id"])]
    pub schedule: Option<String>,
    /// The sender's phone number [default: 84900000001]
    #[arg(long, value_name = "NUMBER")]
    pub from: Option<String>,
    /// The group the message is in (…@g.us)
    #[arg(long, value_name = "GROUP_ID")]
    pub group: Option<String>,
    /// The message type (text, image, button, list, …)
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// The id of a chosen button or list row
    #[arg(long, value_name = "ID")]
    pub button_id: Option<String>,
    /// A webhook body (JSON file) as the API would POST it
    #[arg(long, value_name = "FILE.json")]
    pub payload: Option<PathBuf>,
    /// The time of the event (RFC 3339) [default: now]
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Per-chat state before the event, repeatable: KEY=VALUE
    #[arg(long = "state", value_name = "KEY=VALUE")]
    pub state: Vec<String>,
}

/// Runs the simulation.
pub fn run(cli: &Cli, args: &SimulateArgs, out: &Output) -> Result<(), CliError> {
    let (config, names) = super::load_instance(cli)?;
    let rules = super::load_rules(&config, names)?;
    let api = ApiClient::new(&config.api)?;
    let now: jiff::Timestamp = match &args.now {
        Some(t) => t
            .parse()
            .map_err(|e| CliError::Invalid(format!("--now `{t}` is not an RFC 3339 time: {e}")))?,
        None => jiff::Timestamp::now(),
    };
    let instance_id = config
        .api
        .instance_id
        .clone()
        .unwrap_or_else(|| "default".into());
    let events = match &args.schedule {
        Some(rule) => vec![super::preview::schedule_event(&rules, rule, now)?],
        None => events(args, &instance_id, now)?,
    };
    let check = super::preview::SendCheck::open(&config);
    let state = state_values(&args.state)?;
    let mut reports = Vec::new();
    let mut text = String::new();
    if events.is_empty() {
        text.push_str("the payload holds no event waflow acts on (unknown event kind, or nothing but protocol messages)\n");
    }
    for event in &events {
        let mut memory = MemoryState::default();
        if let Some(chat) = chat_of(event) {
            memory.set(config.name(), &chat, &state);
        }
        let input = EvalInput {
            now,
            memory: &memory,
            ignore_older_than: Some(config.ignore_older_than),
            instance: config.name(),
        };
        let (ignored, verdicts) = rules
            .explain(event, &input)
            .map_err(|e| CliError::Invalid(e.to_string()))?;
        text.push_str(&format!("event: {}\n", describe(event)));
        if let Some(reason) = &ignored {
            text.push_str(&format!("  ignored: {reason}\n"));
        } else if verdicts.is_empty() {
            text.push_str(&format!(
                "  no rule reacts to {} events\n",
                event.kind.trigger()
            ));
        }
        let rule_reports: Vec<Value> = verdicts
            .iter()
            // `--schedule RULE` is about that rule only.
            .filter(|(name, _)| args.schedule.as_ref().is_none_or(|only| only == name))
            .map(|(name, verdict)| match verdict {
                Verdict::Each(plans, run) => {
                    super::preview::report_list(&config, &check, name, plans, run, &mut text)
                }
                other => report_verdict(&api, name, other, &mut text),
            })
            .collect();
        reports
            .push(json!({ "event": describe(event), "ignored": ignored, "rules": rule_reports }));
    }
    if let Some(reason) = config.dry_run_reason() {
        text.push_str(&format!("(dry-run: {reason})\n"));
    }
    out.success(text.trim_end(), json!({ "events": reports }));
    Ok(())
}

/// `--state KEY=VALUE` pairs as the chat's state.
fn state_values(pairs: &[String]) -> Result<BTreeMap<String, Value>, CliError> {
    let mut state = BTreeMap::new();
    for kv in pairs {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| CliError::Invalid(format!("--state `{kv}`: write KEY=VALUE")))?;
        state.insert(k.trim().to_owned(), Value::String(v.to_owned()));
    }
    Ok(state)
}

/// One rule's verdict: its lines in `text`, and its JSON report.
fn report_verdict(api: &ApiClient, name: &str, verdict: &Verdict, text: &mut String) -> Value {
    match verdict {
        Verdict::Matched(plan) => {
            text.push_str(&format!("  ✓ {name}: matched\n"));
            let mut actions = Vec::new();
            for action in &plan.actions {
                let (line, detail) = show(api, action);
                text.push_str(&format!("      {line}\n"));
                actions.push(detail);
            }
            if let Some(at) = plan.continue_at {
                text.push_str(&format!(
                    "      (actions from #{} on are planned after the http call answers)\n",
                    at + 1
                ));
            }
            if let Some(f) = &plan.failed {
                text.push_str(&format!(
                    "      ✗ action #{} failed: {}\n",
                    f.action + 1,
                    f.message
                ));
            }
            json!({ "rule": name, "matched": true, "actions": actions, "failed": plan.failed.as_ref().map(|f| &f.message) })
        }
        Verdict::NotMatched(reason) => {
            text.push_str(&format!("  ✗ {name}: {reason}\n"));
            json!({ "rule": name, "matched": false, "reason": reason })
        }
        Verdict::Each(_, run) => {
            text.push_str(&format!("  ✓ {name}: matched, a list of {}\n", run.total));
            json!({ "rule": name, "matched": true })
        }
        Verdict::Stopped(by) => {
            text.push_str(&format!(
                "  - {name}: not evaluated, `{by}` has stop: true\n"
            ));
            json!({ "rule": name, "matched": false, "reason": format!("stopped by {by}") })
        }
    }
}

fn events(
    args: &SimulateArgs,
    instance: &str,
    now: jiff::Timestamp,
) -> Result<Vec<Event>, CliError> {
    if let Some(path) = &args.payload {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Invalid(format!("{}: cannot read: {e}", path.display())))?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| CliError::Invalid(format!("{}: not JSON: {e}", path.display())))?;
        return Ok(normalize(body).events);
    }
    let kind = match &args.kind {
        Some(k) => Some(
            serde_json::from_value::<MessageType>(Value::String(k.to_lowercase()))
                .map_err(|_| CliError::Invalid(format!("--type `{k}`: not a message type")))?,
        ),
        None => None,
    };
    Ok(vec![
        ShortMessage {
            text: args.text.clone(),
            from: args.from.clone(),
            group: args.group.clone(),
            kind,
            button_id: args.button_id.clone(),
            ..Default::default()
        }
        .into_event(instance, now),
    ])
}

/// One line for people and the JSON detail of a planned action.
fn show(api: &ApiClient, action: &PlannedAction) -> (String, Value) {
    match action {
        PlannedAction::Send(out) => {
            let request = &out.request;
            let call = api.describe(request);
            let body = call
                .json
                .as_ref()
                .map(|j| format!("\n        {j}"))
                .unwrap_or_default();
            (
                format!("{} {}{body}", call.method, call.url),
                json!({ "action": action.display(), "request": call }),
            )
        }
        PlannedAction::Http(call) => (
            format!(
                "HTTP {} {}{}",
                call.method,
                call.url,
                call.json
                    .as_ref()
                    .map(|j| format!(" {j}"))
                    .unwrap_or_default()
            ),
            json!({ "action": action.display() }),
        ),
        other => (
            other.display().to_string(),
            json!({ "action": other.display() }),
        ),
    }
}

/// An event in a few words.
pub(super) fn describe(event: &Event) -> String {
    match &event.kind {
        EventKind::Message(m) => format!(
            "{:?} message from {}{}{}{}",
            m.kind,
            m.sender,
            if m.is_group {
                format!(" in group {}", m.chat)
            } else {
                " (direct)".into()
            },
            m.text
                .as_ref()
                .map(|t| format!(": {t:?}"))
                .unwrap_or_default(),
            m.button_id
                .as_ref()
                .map(|b| format!(" [button {b}]"))
                .unwrap_or_default(),
        )
        .to_lowercase_first(),
        EventKind::Status(s) => format!("status {} of message {} in {}", s.name, s.id, s.chat),
        EventKind::Presence(p) => format!("presence {} of {}", p.state, p.participant),
        EventKind::Contacts(c) => format!("{} contact update(s)", c.len()),
        EventKind::Groups(g) => format!("{} group update(s)", g.len()),
        EventKind::Call(c) => format!("call {} from {}", c.status, c.from),
        EventKind::Hook(h) => format!("hook {}", h.name),
        EventKind::Schedule(f) => format!("schedule {} at {}", f.rule, f.at),
    }
}

trait LowerFirst {
    fn to_lowercase_first(self) -> String;
}

impl LowerFirst for String {
    fn to_lowercase_first(self) -> String {
        let mut chars = self.chars();
        match chars.next() {
            Some(c) => c.to_lowercase().chain(chars).collect(),
            None => self,
        }
    }
}
