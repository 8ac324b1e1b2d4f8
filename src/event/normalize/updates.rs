//! The events around messages, read from their Baileys payloads: delivery
//! statuses, presences, calls and contacts. Like the rest of
//! [`normalize`](super::normalize), nothing here fails: an unreadable item is
//! left out.

use serde_json::Value;

use super::Found;
use super::{as_items, text_of, truthy};
use crate::event::jid::{self, JidKind};
use crate::event::{Call, Contact, EventKind, Presence, StatusUpdate};

/// One event per participant of a `presence.update`.
pub(super) fn presences(payload: &Value) -> Found<'_> {
    let mut kinds = Vec::new();
    let chat = payload.get("id").and_then(text_of).unwrap_or_default();
    if let Some(map) = payload.get("presences").and_then(Value::as_object) {
        for (participant, p) in map {
            let state = p
                .get("lastKnownPresence")
                .and_then(text_of)
                .unwrap_or_else(|| "unavailable".to_owned());
            let participant = jid::normalize(participant);
            let presence = Presence {
                chat: jid::normalize(&chat),
                phone: jid::phone(&participant),
                participant,
                state,
            };
            kinds.push((EventKind::Presence(presence), p));
        }
    }
    kinds
}

/// The calls of a `call` event.
pub(super) fn calls(payload: &Value) -> Found<'_> {
    let mut kinds = Vec::new();
    for c in as_items(payload) {
        let Some(from) = c.get("from").and_then(text_of) else {
            continue;
        };
        let from = jid::normalize(&from);
        let call = Call {
            id: c.get("id").and_then(text_of).unwrap_or_default(),
            phone: c
                .get("callerPn")
                .and_then(text_of)
                .and_then(|p| jid::phone_from_any(&p))
                .or_else(|| jid::phone(&from)),
            from,
            status: c.get("status").and_then(text_of).unwrap_or_default(),
            is_video: c.get("isVideo").is_some_and(truthy),
        };
        kinds.push((EventKind::Call(call), c));
    }
    kinds
}

/// A `messages.update` item with a delivery status.
pub(super) fn status(item: &Value) -> Option<StatusUpdate> {
    let key = item.get("key")?;
    let update = item.get("update")?;
    let raw = update.get("status")?;
    let (code, name) = match raw {
        Value::Number(n) => {
            let code = n.as_i64()?;
            (code, status_name(code)?.to_owned())
        }
        Value::String(s) => match s.parse::<i64>() {
            Ok(code) => (code, status_name(code)?.to_owned()),
            Err(_) => {
                let code = match s.to_ascii_uppercase().as_str() {
                    "ERROR" | "FAILED" => 0,
                    "PENDING" => 1,
                    "SERVER_ACK" | "SENT" => 2,
                    "DELIVERY_ACK" | "DELIVERED" => 3,
                    "READ" => 4,
                    "PLAYED" => 5,
                    _ => return None,
                };
                (code, status_name(code)?.to_owned())
            }
        },
        _ => return None,
    };
    let chat = jid::normalize(&key.get("remoteJid").and_then(text_of).unwrap_or_default());
    Some(StatusUpdate {
        id: key.get("id").and_then(text_of)?,
        phone: jid::phone(&chat),
        chat,
        code,
        name,
        error: update
            .get("messageStubParameters")
            .and_then(|p| p.get(0))
            .and_then(text_of),
    })
}

fn status_name(code: i64) -> Option<&'static str> {
    Some(match code {
        0 => "failed",
        1 => "pending",
        2 => "sent",
        3 => "delivered",
        4 => "read",
        5 => "played",
        _ => return None,
    })
}

/// A `contacts.*` item; `None` without an id.
pub(super) fn contact(item: &Value) -> Option<Contact> {
    let id = jid::normalize(&item.get("id").and_then(text_of)?);
    let phone = item
        .get("phoneNumber")
        .and_then(text_of)
        .and_then(|p| jid::phone_from_any(&p))
        .or_else(|| jid::phone(&id));
    let lid = item
        .get("lid")
        .and_then(text_of)
        .map(|l| jid::normalize(&l))
        .or_else(|| (jid::kind(&id) == JidKind::Lid).then(|| id.clone()));
    let name = ["name", "notify", "verifiedName"]
        .iter()
        .find_map(|k| item.get(*k).and_then(text_of));
    Some(Contact {
        id,
        lid,
        phone,
        name,
    })
}
