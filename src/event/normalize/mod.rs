//! Every webhook envelope the API family sends, turned into [`Event`]s.
//!
//! Three envelopes exist (see the payload notes in the repository docs):
//! - stock Waziper: `{instance_id, data: {event, data}}`;
//! - gen-2: `{instance_id, event, data, timestamp}`, messages enriched with `_chat`/`_contact`;
//! - the `received_message` family: `{instance_id, data: {event, message: {message_key, body_message, …}}}`.
//!
//! Inside, the payloads are raw Baileys events. Numbers and timestamps may be
//! numbers or strings, enums may be numbers or names, fields may be missing.
//! Nothing here fails: an unknown event or an unreadable message is reported
//! in [`Normalized`] and skipped.

mod updates;

use serde_json::{Map, Value};

use super::content::{extract, unwrap};
use super::jid::{self, JidKind};
use super::{Contact, Delivery, Event, EventKind, GroupUpdate, Message, MessageType};
use updates::{calls, contact, presences, status};

/// The outcome of reading one webhook body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Normalized {
    /// The wire event name (`messages.upsert`), empty when there was none.
    pub event_name: String,
    /// The instance id of the envelope.
    pub instance_id: Option<String>,
    /// The events found.
    pub events: Vec<Event>,
    /// The event name is not one waflow reads: the body is ignored.
    pub unknown: bool,
    /// Items skipped inside a known event, with the reason (stub, protocol message, …).
    pub skipped: Vec<String>,
}

/// Reads one webhook body. Never fails: see [`Normalized`].
///
/// Each event keeps where it came from as `raw`: the whole body when it is
/// the body's only event (the usual case, no copy), otherwise a small
/// envelope `{instance_id, event, data}` holding only its own item. So a
/// body of N messages costs about N times one message, never N bodies.
pub fn normalize(body: Value) -> Normalized {
    let mut out = Normalized {
        instance_id: body.get("instance_id").and_then(text_of),
        ..Normalized::default()
    };
    let Some((name, payload)) = envelope(&body) else {
        out.unknown = true;
        return out;
    };
    out.event_name = name.to_owned();
    let Some(found) = kinds_of(name, payload, &mut out.skipped) else {
        out.unknown = true;
        return out;
    };
    // `None`: the event takes the whole body.
    let pairs: Vec<(EventKind, Option<Value>)> = if found.len() == 1 {
        found.into_iter().map(|(kind, _)| (kind, None)).collect()
    } else {
        let instance = body.get("instance_id").cloned().unwrap_or(Value::Null);
        found
            .into_iter()
            .map(|(kind, item)| {
                let raw = serde_json::json!({
                    "instance_id": instance.clone(),
                    "event": name,
                    "data": item.clone(),
                });
                (kind, Some(raw))
            })
            .collect()
    };
    let mut body = Some(body);
    for (kind, raw) in pairs {
        let raw = raw.unwrap_or_else(|| body.take().unwrap_or_default());
        out.events.push(Event {
            instance_id: out.instance_id.clone(),
            kind,
            raw,
        });
    }
    out
}

/// The event name and its payload, in whichever envelope the body uses.
fn envelope(body: &Value) -> Option<(&str, &Value)> {
    let data = body.get("data");
    let (name, payload) = match data.and_then(|d| d.get("event")).and_then(Value::as_str) {
        // Stock and received_message: the name sits inside `data`.
        Some(name) => (
            name,
            data.and_then(|d| d.get("data").or_else(|| d.get("message"))),
        ),
        // Gen-2: the name at the top, the payload in `data`.
        None => (body.get("event").and_then(Value::as_str)?, data),
    };
    Some((name, payload.unwrap_or(&Value::Null)))
}

/// Events with the item of the payload each was read from.
type Found<'a> = Vec<(EventKind, &'a Value)>;

/// The events of one payload; `None` for an event name waflow does not read.
fn kinds_of<'a>(name: &str, payload: &'a Value, skipped: &mut Vec<String>) -> Option<Found<'a>> {
    let mut kinds = Vec::new();
    match name {
        "messages.upsert" => kinds = upserted(payload, skipped),
        "received_message" => match received_message(payload) {
            Ok(m) => kinds.push((EventKind::Message(m), payload)),
            Err(reason) => skipped.push(reason),
        },
        "messages.update" => {
            for item in as_items(payload) {
                match status(item) {
                    Some(s) => kinds.push((EventKind::Status(s), item)),
                    None => skipped.push("an update without a delivery status".to_owned()),
                }
            }
        }
        "presence.update" => kinds = presences(payload),
        "contacts.update" | "contacts.upsert" => {
            let contacts: Vec<Contact> = as_items(payload).filter_map(contact).collect();
            if !contacts.is_empty() {
                kinds.push((EventKind::Contacts(contacts), payload));
            }
        }
        "groups.update" | "groups.upsert" => {
            let groups: Vec<GroupUpdate> = as_items(payload)
                .filter_map(|g| {
                    Some(GroupUpdate {
                        id: g.get("id").and_then(text_of)?,
                        subject: g.get("subject").and_then(text_of),
                    })
                })
                .collect();
            if !groups.is_empty() {
                kinds.push((EventKind::Groups(groups), payload));
            }
        }
        "call" => kinds = calls(payload),
        _ => return None,
    }
    Some(kinds)
}

/// The messages of a `messages.upsert` (`append` for ones this number sent elsewhere).
fn upserted<'a>(payload: &'a Value, skipped: &mut Vec<String>) -> Found<'a> {
    let mut kinds = Vec::new();
    let (items, delivery) = match payload {
        Value::Array(items) => (items.as_slice(), Delivery::Notify),
        other => (
            other
                .get("messages")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice),
            if other.get("type").and_then(Value::as_str) == Some("append") {
                Delivery::Append
            } else {
                Delivery::Notify
            },
        ),
    };
    for item in items {
        match message(item, delivery) {
            Ok(m) => kinds.push((EventKind::Message(m), item)),
            Err(reason) => skipped.push(reason),
        }
    }
    kinds
}

/// The items of a payload that is an array, or a single object.
fn as_items(payload: &Value) -> impl Iterator<Item = &Value> {
    let items: &[Value] = match payload {
        Value::Array(items) => items,
        Value::Object(_) => std::slice::from_ref(payload),
        _ => &[],
    };
    items.iter()
}

/// One Baileys `WebMessageInfo` → a [`Message`], or why it is not one.
fn message(item: &Value, delivery: Delivery) -> Result<Message, String> {
    let key = item
        .get("key")
        .and_then(Value::as_object)
        .ok_or("a message without a key")?;
    let id = key
        .get("id")
        .and_then(text_of)
        .ok_or("a message without an id")?;
    let remote = key
        .get("remoteJid")
        .and_then(text_of)
        .ok_or_else(|| format!("message {id} has no remoteJid"))?;
    let content = item
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| format!("message {id} has no content (a stub or a protocol event)"))?;
    let (content, mut edited) = unwrap(content);
    let extracted = extract(content).ok_or_else(|| {
        format!("message {id} carries no user content (protocol or key distribution)")
    })?;
    edited |= extracted.edited;

    let chat = jid::normalize(&remote);
    let is_group = jid::kind(&chat) == JidKind::Group;
    let from_me = key.get("fromMe").is_some_and(truthy);
    let (sender_jid, sender_phone) = sender(item, key, &chat, is_group);
    let sender_name = sender_name(item, is_group);

    Ok(Message {
        id,
        is_group,
        sender: sender_phone.clone().unwrap_or_else(|| sender_jid.clone()),
        sender_jid,
        sender_phone,
        sender_name,
        from_me,
        timestamp: item.get("messageTimestamp").and_then(number_of),
        delivery,
        kind: extracted.kind,
        text: extracted.text,
        button_id: extracted.button_id,
        media: extracted.media,
        location: extracted.location,
        reaction_to: extracted.reaction_to,
        edited,
        chat,
    })
}

/// The sender's JID (the participant in a group, else the chat) and its
/// phone number, from the JID itself or the alt/phone fields beside it.
fn sender(
    item: &Value,
    key: &serde_json::Map<String, Value>,
    chat: &str,
    is_group: bool,
) -> (String, Option<String>) {
    let enrichment = item.get("_chat");
    let (sender_jid, phone_fields): (String, [Option<&Value>; 3]) = if is_group {
        let participant = key
            .get("participant")
            .or_else(|| item.get("participant"))
            .and_then(text_of)
            .map(|p| jid::normalize(&p))
            .unwrap_or_default();
        (
            participant,
            [
                key.get("participantAlt"),
                key.get("participantPn"),
                enrichment.and_then(|c| c.get("participant_phone")),
            ],
        )
    } else {
        (
            chat.to_owned(),
            [
                key.get("remoteJidAlt"),
                key.get("senderPn"),
                enrichment.and_then(|c| c.get("phone")),
            ],
        )
    };
    let sender_phone = jid::phone(&sender_jid).or_else(|| {
        phone_fields
            .into_iter()
            .flatten()
            .filter_map(text_of)
            .find_map(|v| jid::phone_from_any(&v))
    });
    (sender_jid, sender_phone)
}

/// `pushName`, else the names the gen-2 and other envelopes carry.
fn sender_name(item: &Value, is_group: bool) -> Option<String> {
    let enrichment = item.get("_chat");
    item.get("pushName")
        .and_then(text_of)
        .or_else(|| {
            let field = if is_group { "participant_name" } else { "name" };
            enrichment.and_then(|c| c.get(field)).and_then(text_of)
        })
        .or_else(|| {
            item.get("_contact")
                .and_then(|c| c.get("name"))
                .and_then(text_of)
        })
        .or_else(|| item.get("push_name").and_then(text_of))
}

/// The `received_message` envelope's message, mapped onto the Baileys shape.
fn received_message(payload: &Value) -> Result<Message, String> {
    let key = payload
        .get("message_key")
        .ok_or("a received_message without message_key")?;
    let body = payload.get("body_message");
    let mut content = match body.and_then(|b| b.get("messages")) {
        Some(Value::Object(map)) if !map.is_empty() => Value::Object(map.clone()),
        _ => Value::Object(Map::new()),
    };
    // Legacy button replies sit directly in `messages` in this family.
    if let Some(map) = content.as_object_mut()
        && map.contains_key("selectedButtonId")
        && !map.contains_key("buttonsResponseMessage")
    {
        let inner = Value::Object(std::mem::take(map));
        map.insert("buttonsResponseMessage".into(), inner);
    }
    let text = body.and_then(|b| b.get("content")).and_then(text_of);
    if extract(&content).is_none()
        && let Some(text) = &text
    {
        content = serde_json::json!({ "conversation": text });
    }
    let mut item = serde_json::json!({ "key": key, "message": content });
    if let Some(name) = payload.get("push_name") {
        item["pushName"] = name.clone();
    }
    if let Some(ts) = payload
        .get("timestamp")
        .or_else(|| payload.get("messageTimestamp"))
    {
        item["messageTimestamp"] = ts.clone();
    }
    let mut m = message(&item, Delivery::Notify)?;
    if m.sender_phone.is_none()
        && let Some(phone) = payload
            .get("from_contact")
            .and_then(text_of)
            .and_then(|p| jid::phone_from_any(&p))
        && !m.is_group
    {
        m.sender = phone.clone();
        m.sender_phone = Some(phone);
    }
    if m.kind == MessageType::Text
        && let Some(text) = text
    {
        m.text = Some(text);
    }
    Ok(m)
}

/// A string, or a number written as one.
pub(super) fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An integer from a number, a numeric string, or a protobuf Long `{low, high}`.
fn number_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Object(o) => {
            let low = o.get("low")?.as_i64()?;
            let high = o.get("high").and_then(Value::as_i64).unwrap_or(0);
            Some((high << 32) | (low & 0xffff_ffff))
        }
        _ => None,
    }
}

pub(super) fn float_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => s == "true" || s == "1",
        Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}
