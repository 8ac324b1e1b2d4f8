//! The normalized inbound event: the rule engine's only input type.
//!
//! The webhook sends raw Baileys events in one of several envelopes (see
//! [`normalize`]); schedules and generic hooks produce events too. Whatever
//! the source, the rest of the program sees an [`Event`]: typed fields,
//! phone numbers resolved, and the original JSON kept in `raw` for templates.
//! This module parses; it never decides what to do with an event.

use unicode_normalization::UnicodeNormalization;

mod content;
pub mod jid;
mod key;
pub mod list;
pub mod normalize;
mod phones;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use normalize::{Normalized, normalize};

/// One thing that happened, ready for the rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The instance (WhatsApp number) it belongs to; `None` for schedules and hooks.
    pub instance_id: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// The original JSON the event came from (`{{ event.raw }}`).
    #[serde(default)]
    pub raw: Value,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A message, incoming or outgoing.
    Message(Message),
    /// A delivery status of a message sent by this number.
    Status(StatusUpdate),
    /// A contact is online, typing, …
    Presence(Presence),
    /// Contact details, among them LID → phone number links.
    Contacts(Vec<Contact>),
    /// Group metadata changed.
    Groups(Vec<GroupUpdate>),
    /// A call offer, reject, …
    Call(Call),
    /// A POST to `/hooks/{name}` from another system.
    Hook(Hook),
    /// A schedule rule's fire time came.
    Schedule(Fire),
}

impl EventKind {
    /// The trigger name of rules that react to this kind (`message`, `status`, …).
    pub fn trigger(&self) -> &'static str {
        match self {
            EventKind::Message(_) => "message",
            EventKind::Status(_) => "status",
            EventKind::Presence(_) => "presence",
            EventKind::Contacts(_) => "contacts",
            EventKind::Groups(_) => "groups",
            EventKind::Call(_) => "call",
            EventKind::Hook(_) => "webhook",
            EventKind::Schedule(_) => "schedule",
        }
    }
}

/// The message types rules can filter on (`match.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    /// Plain or extended text.
    Text,
    /// A picture.
    Image,
    /// A video.
    Video,
    /// A voice note or audio file.
    Audio,
    /// A document.
    Document,
    /// A sticker.
    Sticker,
    /// A shared location.
    Location,
    /// A shared contact card.
    Contact,
    /// A reply to buttons.
    Button,
    /// A reply to a list message.
    List,
    /// An emoji reaction.
    Reaction,
    /// A poll.
    Poll,
    /// Anything else (protocol messages are not events at all).
    Other,
}

/// How Baileys delivered a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Live (`notify`).
    Notify,
    /// Catch-up after being offline, or an echo of our own send (`append`).
    Append,
}

/// A message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The message key id; the unit of de-duplication.
    pub id: String,
    /// The chat's JID, normalized: the group, or the other party of a direct chat.
    pub chat: String,
    /// Whether the chat is a group.
    pub is_group: bool,
    /// The sender's phone number when known, else their JID.
    pub sender: String,
    /// The sender's JID as sent (normalized, no device).
    pub sender_jid: String,
    /// The sender's phone number, when one could be found.
    pub sender_phone: Option<String>,
    /// `pushName` (or the enrichment's name).
    pub sender_name: Option<String>,
    /// Sent by this number (from the phone, or an echo of an API send).
    pub from_me: bool,
    /// Unix seconds of the message itself.
    pub timestamp: Option<i64>,
    /// `notify` or `append`.
    pub delivery: Delivery,
    /// The message type.
    #[serde(rename = "msg_type")]
    pub kind: MessageType,
    /// The text: body, caption, button label or list row title.
    pub text: Option<String>,
    /// The id of the chosen button or list row.
    pub button_id: Option<String>,
    /// Media details for image, video, audio, document and sticker messages.
    pub media: Option<Media>,
    /// Latitude, longitude, name and address of a location.
    pub location: Option<Location>,
    /// The message reacted to, for a reaction.
    pub reaction_to: Option<String>,
    /// Whether the message was edited (the text is the new one).
    pub edited: bool,
}

impl Message {
    /// Who `reply` answers: the group, else the sender's phone (or JID when no phone is known).
    pub fn reply_target(&self) -> ReplyTarget {
        if self.is_group {
            ReplyTarget::Group(self.chat.clone())
        } else {
            ReplyTarget::Number(
                self.sender_phone
                    .clone()
                    .unwrap_or_else(|| self.sender_jid.clone()),
            )
        }
    }
}

/// Where a reply goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyTarget {
    /// `send` to this number (digits, or a JID when no number is known).
    Number(String),
    /// `send_group` to this group JID.
    Group(String),
}

/// Media fields of a message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Media {
    /// The (encrypted) CDN URL.
    pub url: Option<String>,
    /// The MIME type.
    pub mimetype: Option<String>,
    /// The file name (documents).
    pub filename: Option<String>,
    /// The caption.
    pub caption: Option<String>,
}

/// A shared location.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Location {
    /// Degrees north.
    pub latitude: Option<f64>,
    /// Degrees east.
    pub longitude: Option<f64>,
    /// The place's name.
    pub name: Option<String>,
    /// The place's address.
    pub address: Option<String>,
}

/// A delivery status of a message this number sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// The message key id (matches the `message_id` of the send).
    pub id: String,
    /// The chat (normalized JID).
    pub chat: String,
    /// The chat's phone number, when it is a phone JID.
    pub phone: Option<String>,
    /// The numeric code: 0 error, 1 pending, 2 sent, 3 delivered, 4 read, 5 played.
    pub code: i64,
    /// The name: `failed`, `pending`, `sent`, `delivered`, `read`, `played`, or `deleted`/`edited`.
    pub name: String,
    /// The error code of a failed message, when given.
    pub error: Option<String>,
}

/// A presence change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The chat.
    pub chat: String,
    /// The participant whose presence changed.
    pub participant: String,
    /// Their phone number when known.
    pub phone: Option<String>,
    /// `available`, `unavailable`, `composing`, `recording` or `paused`.
    pub state: String,
}

/// Details of one contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The contact's JID (may be `@lid`).
    pub id: String,
    /// The linked id, when given beside a phone JID.
    pub lid: Option<String>,
    /// The phone number, when known.
    pub phone: Option<String>,
    /// The best name known.
    pub name: Option<String>,
}

/// A change of group metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupUpdate {
    /// The group JID.
    pub id: String,
    /// The new subject, when it changed.
    pub subject: Option<String>,
}

/// A call event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The call id.
    pub id: String,
    /// The caller's JID.
    pub from: String,
    /// The caller's phone number, when known.
    pub phone: Option<String>,
    /// `offer`, `ringing`, `timeout`, `reject`, `accept` or `terminate`.
    pub status: String,
    /// Video or voice.
    pub is_video: bool,
}

/// A generic inbound hook call (`POST /hooks/{name}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hook {
    /// The hook name of the URL.
    pub name: String,
    /// The JSON body (`null` when the body was not JSON).
    pub body: Value,
    /// Request headers, names in lower case.
    pub headers: serde_json::Map<String, Value>,
    /// Query parameters.
    pub query: serde_json::Map<String, Value>,
    /// A unique id given on receipt, for de-duplication and outbox keys.
    pub id: String,
    /// The lists of its `for_each` rules that are read from a file or URL,
    /// by rule name, as they were when the call came.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub lists: std::collections::BTreeMap<String, list::List>,
}

/// A schedule rule's fire time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fire {
    /// The rule that fires.
    pub rule: String,
    /// The occurrence, as an instant.
    pub at: jiff::Timestamp,
    /// The rule's `for_each` list, as read when it fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<list::List>,
}

/// A message described in a few words, for `simulate --text` and rule tests.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShortMessage {
    /// The text (or the button / row label).
    pub text: Option<String>,
    /// The sender's phone number; default `84900000001`.
    pub from: Option<String>,
    /// A group id (`…@g.us`): the message is in that group.
    pub group: Option<String>,
    /// The message type; default `text`, or `button` with `button_id`.
    #[serde(rename = "type")]
    pub kind: Option<MessageType>,
    /// The id of a chosen button or list row.
    pub button_id: Option<String>,
    /// The sender's display name; default `Test User`.
    pub sender_name: Option<String>,
    /// Sent by this number.
    #[serde(default)]
    pub from_me: bool,
    /// The message id; default derived from the other fields.
    pub id: Option<String>,
}

/// The sender of short messages that name none.
pub const DEFAULT_SENDER: &str = "84900000001";

impl ShortMessage {
    /// The event this describes, sent at `now`.
    pub fn into_event(self, instance_id: &str, now: jiff::Timestamp) -> Event {
        let sender = self
            .from
            .as_deref()
            .and_then(jid::phone_from_any)
            .unwrap_or_else(|| DEFAULT_SENDER.to_owned());
        let sender_jid = format!("{sender}@s.whatsapp.net");
        let chat = self.group.clone().unwrap_or_else(|| sender_jid.clone());
        let kind = self.kind.unwrap_or(if self.button_id.is_some() {
            MessageType::Button
        } else {
            MessageType::Text
        });
        let id = self.id.clone().unwrap_or_else(|| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (
                &self.text,
                &sender,
                &self.group,
                &self.button_id,
                now.as_second(),
            )
                .hash(&mut h);
            format!("SIM{:016X}", h.finish())
        });
        let message = Message {
            id,
            is_group: self.group.is_some(),
            chat,
            sender: sender.clone(),
            sender_jid,
            sender_phone: Some(sender),
            sender_name: Some(self.sender_name.unwrap_or_else(|| "Test User".into())),
            from_me: self.from_me,
            timestamp: Some(now.as_second()),
            delivery: Delivery::Notify,
            kind,
            text: self.text,
            button_id: self.button_id,
            media: None,
            location: None,
            reaction_to: None,
            edited: false,
        };
        Event {
            instance_id: Some(instance_id.to_owned()),
            kind: EventKind::Message(message),
            raw: Value::Null,
        }
    }
}

/// Text as people mean it when they type a keyword or a menu label: trimmed,
/// without accents or surrounding punctuation, upper case.
pub fn fold_text(text: &str) -> String {
    // Nearly every message is ASCII: nothing to decompose, and the
    // character-by-character path showed in profiles of busy numbers.
    if text.is_ascii() {
        return text
            .trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
            .to_ascii_uppercase();
    }
    fold_unicode(text)
}

fn fold_unicode(text: &str) -> String {
    text.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .collect::<String>()
        .replace(['Đ', 'đ'], "D")
        .trim()
        .trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::{fold_text, fold_unicode};

    #[test]
    fn ascii_text_folds_as_the_general_path_does() {
        for text in [
            "stop",
            " Stop! ",
            "\t...how much?\n",
            "",
            "  ",
            "!!",
            "a-b c",
            "PRICE 12.5$",
            "\u{b}x\u{c}",
        ] {
            assert_eq!(fold_text(text), fold_unicode(text), "{text:?}");
        }
        assert_eq!(fold_text(" Dừng! "), "DUNG");
    }
}
