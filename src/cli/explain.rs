//! `waflow explain`: the decision trail of an event (SPEC §8), read from
//! the store — what it was, which rules matched and why the others did not,
//! what was planned, and what became of each send, to its delivery status.

use clap::Args;
use serde_json::{Value, json};

use super::{Cli, CliError, Output};
use crate::event::Event;
use crate::rules::{PlannedAction, Trail};
use crate::store::{TrailEvent, TrailSend};
use crate::units::ms_text;

/// Arguments of `waflow explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The id of a message received, or of one of our sends
    #[arg(required_unless_present = "chat", conflicts_with = "chat")]
    pub message_id: Option<String>,
    /// A chat's latest messages instead: its phone number or group id
    #[arg(long, value_name = "NUMBER")]
    pub chat: Option<String>,
    /// How many of the chat's messages
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub limit: usize,
}

/// Runs `waflow explain`.
pub fn run(cli: &Cli, args: &ExplainArgs, out: &Output) -> Result<(), CliError> {
    let config = super::load_config(cli)?;
    let store = super::status::reader(&config)?;
    let err = |e: crate::store::StoreError| CliError::Invalid(e.to_string());
    let events = match (&args.message_id, &args.chat) {
        (Some(id), _) => {
            let instance = cli.instance.as_deref();
            let found = store
                .run(|tx| tx.trail_of_message(instance, id.trim()))
                .map_err(err)?;
            let Some(found) = found else {
                return Err(CliError::Invalid(format!(
                    "no message {id} in the store (received, or sent by us); `waflow explain --chat NUMBER` lists a chat's messages"
                )));
            };
            vec![found]
        }
        (None, Some(chat)) => {
            let name = config
                .select(cli.instance.as_deref())
                .map_err(CliError::Invalid)?;
            let jid = chat_jid(chat);
            store
                .run(|tx| tx.trail_of_chat(&name.name, &jid, args.limit))
                .map_err(err)?
        }
        (None, None) => {
            return Err(CliError::Invalid(
                "give a MESSAGE_ID or --chat NUMBER".into(),
            ));
        }
    };
    if events.is_empty() {
        out.success(
            "no messages of this chat in the store",
            json!({ "events": [] }),
        );
        return Ok(());
    }
    let mut text = String::new();
    let mut reports = Vec::new();
    // Oldest first, like a conversation.
    for event in events.iter().rev() {
        text.push_str(&event_text(event));
        reports.push(event_json(event));
    }
    out.success(text.trim_end(), json!({ "events": reports }));
    Ok(())
}

/// A phone number as the chat JID events are stored under; a group id or
/// JID as it is.
fn chat_jid(chat: &str) -> String {
    let chat = chat.trim();
    if chat.contains('@') {
        return crate::event::jid::normalize(chat);
    }
    let digits: String = chat.chars().filter(char::is_ascii_digit).collect();
    format!("{digits}@s.whatsapp.net")
}

fn event_text(e: &TrailEvent) -> String {
    let event: Option<Event> = serde_json::from_str(&e.event).ok();
    let what = event
        .as_ref()
        .map_or_else(|| e.key.clone(), super::simulate::describe);
    let mut text = format!("{} — {what}\n", ms_text(e.received_at));
    let trail: Option<Trail> = e
        .trail
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok());
    match (&e.status[..], &trail) {
        ("ignored", _) => {
            let why = e.note.as_deref().unwrap_or("ignored");
            text.push_str(&format!("  ignored: {why}\n"));
        }
        ("new", _) => text.push_str("  waiting to be processed\n"),
        (_, Some(trail)) => text.push_str(&trail_text(trail)),
        (_, None) => {
            let note = e.note.as_deref().unwrap_or("no rule looked at it");
            text.push_str(&format!("  {note}\n"));
        }
    }
    for send in &e.sends {
        text.push_str(&format!("  → {}\n", send_text(send)));
    }
    text
}

fn trail_text(trail: &Trail) -> String {
    let mut text = String::new();
    if trail.matched.is_empty() {
        text.push_str("  no rule matched\n");
    }
    for rule in &trail.matched {
        text.push_str(&format!("  ✓ {rule}: matched\n"));
    }
    for miss in &trail.not_matched {
        text.push_str(&format!("  ✗ {}: {}\n", miss.rule, miss.why));
    }
    if let Some(by) = &trail.stopped_by {
        text.push_str(&format!(
            "  - later rules not evaluated: `{by}` has stop: true\n"
        ));
    }
    if trail.skipped > 0 {
        let (n, rules) = match trail.skipped {
            1 => ("1".to_owned(), "rule"),
            n => (n.to_string(), "rules"),
        };
        text.push_str(&format!(
            "  - {n} more message {rules} not considered: their text patterns need words this text lacks\n"
        ));
    }
    text
}

fn send_text(send: &TrailSend) -> String {
    let row = &send.row;
    format!(
        "#{} {} {}: {}",
        row.id,
        row.rule,
        action_text(&row.action),
        send.outcome()
    )
}

fn action_text(action: &PlannedAction) -> String {
    action.display().to_string()
}

fn event_json(e: &TrailEvent) -> Value {
    let parse = |text: Option<&str>| {
        text.and_then(|t| serde_json::from_str::<Value>(t).ok())
            .unwrap_or(Value::Null)
    };
    json!({
        "id": e.id,
        "instance": e.instance,
        "key": e.key,
        "received_at": e.received_at,
        "status": e.status,
        "note": e.note,
        "trail": parse(e.trail.as_deref()),
        "event": parse(Some(&e.event)),
        "sends": e.sends.iter().map(|s| json!({
            "id": s.row.id,
            "rule": s.row.rule,
            "action": s.row.action.display(),
            "state": s.row.state,
            "attempts": s.row.attempts,
            "error": s.row.last_error,
            "reason": s.reason,
            "message_id": s.row.message_id,
            "delivery": s.delivery,
            "delivery_at": s.delivery_at,
        })).collect::<Vec<_>>(),
    })
}
