//! What a message says: the content of a Baileys message (text, media,
//! location, buttons, lists, reactions …) unwrapped from its wrappers
//! (ephemeral, view-once, edited …) into a kind and a text.

use serde_json::Value;

use super::normalize::{float_of, text_of};
use super::{Location, Media, MessageType};

/// Wrappers Baileys nests real content in; unwrapped up to [`MAX_UNWRAP`] deep.
const WRAPPERS: [&str; 9] = [
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "editedMessage",
    "associatedChildMessage",
    "groupStatusMessage",
    "groupStatusMessageV2",
];

const MAX_UNWRAP: usize = 5;

/// Follows wrappers to the real content; `true` when an edit wrapper was crossed.
pub(super) fn unwrap(mut content: &Value) -> (&Value, bool) {
    let mut edited = false;
    for _ in 0..MAX_UNWRAP {
        let inner = WRAPPERS.iter().find_map(|w| {
            content
                .get(*w)
                .and_then(|v| v.get("message"))
                .filter(|m| m.is_object())
                .map(|m| (*w, m))
        });
        match inner {
            Some((wrapper, inner)) => {
                edited |= wrapper == "editedMessage";
                content = inner;
            }
            None => break,
        }
    }
    (content, edited)
}

pub(super) struct Extracted {
    pub(super) kind: MessageType,
    pub(super) text: Option<String>,
    pub(super) button_id: Option<String>,
    pub(super) media: Option<Media>,
    pub(super) location: Option<Location>,
    pub(super) reaction_to: Option<String>,
    pub(super) edited: bool,
}

impl Extracted {
    fn new(kind: MessageType, text: Option<String>) -> Self {
        Extracted {
            kind,
            text,
            button_id: None,
            media: None,
            location: None,
            reaction_to: None,
            edited: false,
        }
    }
}

/// The type, text and details of unwrapped content; `None` when it holds nothing a person sent.
pub(super) fn extract(content: &Value) -> Option<Extracted> {
    if let Some(e) = text_or_media(content)
        .or_else(|| reply(content))
        .or_else(|| other_kind(content))
    {
        return Some(e);
    }
    if let Some(p) = content.get("protocolMessage") {
        // An edit arriving as a protocol message carries the new content.
        let edited = p.get("editedMessage").filter(|m| m.is_object())?;
        let (inner, _) = unwrap(edited);
        let mut e = extract(inner)?;
        e.edited = true;
        return Some(e);
    }
    let ignorable = ["messageContextInfo", "senderKeyDistributionMessage"];
    let map = content.as_object()?;
    if map.keys().all(|k| ignorable.contains(&k.as_str())) {
        return None;
    }
    Some(Extracted::new(MessageType::Other, None))
}

/// A text, or an image, video, audio, document or sticker with its caption.
fn text_or_media(content: &Value) -> Option<Extracted> {
    let get = |path: &[&str]| -> Option<String> {
        let mut at = content;
        for key in path {
            at = at.get(key)?;
        }
        text_of(at).filter(|s| !s.is_empty())
    };
    if let Some(text) = get(&["conversation"]) {
        return Some(Extracted::new(MessageType::Text, Some(text)));
    }
    if let Some(text) = get(&["extendedTextMessage", "text"]) {
        return Some(Extracted::new(MessageType::Text, Some(text)));
    }
    for (field, kind) in [
        ("imageMessage", MessageType::Image),
        ("videoMessage", MessageType::Video),
        ("ptvMessage", MessageType::Video),
        ("audioMessage", MessageType::Audio),
        ("documentMessage", MessageType::Document),
        ("stickerMessage", MessageType::Sticker),
    ] {
        if let Some(m) = content.get(field).filter(|m| m.is_object()) {
            let caption = m.get("caption").and_then(text_of).filter(|s| !s.is_empty());
            let mut e = Extracted::new(kind, caption.clone());
            e.media = Some(Media {
                url: m.get("url").and_then(text_of),
                mimetype: m.get("mimetype").and_then(text_of),
                filename: m.get("fileName").and_then(text_of),
                caption,
            });
            return Some(e);
        }
    }
    None
}

/// A reply to buttons, a template or a list, or a native-flow answer: the
/// label as text, the chosen id as `button_id`.
fn reply(content: &Value) -> Option<Extracted> {
    if let Some(m) = content.get("buttonsResponseMessage") {
        let mut e = Extracted::new(
            MessageType::Button,
            m.get("selectedDisplayText").and_then(text_of),
        );
        e.button_id = m.get("selectedButtonId").and_then(text_of);
        return Some(e);
    }
    if let Some(m) = content.get("templateButtonReplyMessage") {
        let mut e = Extracted::new(
            MessageType::Button,
            m.get("selectedDisplayText").and_then(text_of),
        );
        e.button_id = m.get("selectedId").and_then(text_of);
        return Some(e);
    }
    if let Some(m) = content.get("listResponseMessage") {
        let mut e = Extracted::new(MessageType::List, m.get("title").and_then(text_of));
        e.button_id = m
            .get("singleSelectReply")
            .and_then(|r| r.get("selectedRowId"))
            .and_then(text_of);
        return Some(e);
    }
    if let Some(m) = content.get("interactiveResponseMessage") {
        let flow = m.get("nativeFlowResponseMessage");
        let params: Option<Value> = flow
            .and_then(|f| f.get("paramsJson"))
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str(s).ok());
        let kind = match flow.and_then(|f| f.get("name")).and_then(Value::as_str) {
            Some("single_select") => MessageType::List,
            _ => MessageType::Button,
        };
        let mut e = Extracted::new(
            kind,
            m.get("body")
                .and_then(|b| b.get("text"))
                .and_then(text_of)
                .or_else(|| {
                    params
                        .as_ref()
                        .and_then(|p| p.get("title"))
                        .and_then(text_of)
                })
                .or_else(|| {
                    params
                        .as_ref()
                        .and_then(|p| p.get("display_text"))
                        .and_then(text_of)
                }),
        );
        e.button_id = params.as_ref().and_then(|p| p.get("id")).and_then(text_of);
        return Some(e);
    }
    None
}

/// A location, contact card, reaction or poll.
fn other_kind(content: &Value) -> Option<Extracted> {
    for field in ["locationMessage", "liveLocationMessage"] {
        if let Some(m) = content.get(field).filter(|m| m.is_object()) {
            let name = m.get("name").and_then(text_of);
            let address = m.get("address").and_then(text_of);
            let mut e = Extracted::new(MessageType::Location, name.clone().or(address.clone()));
            e.location = Some(Location {
                latitude: m.get("degreesLatitude").and_then(float_of),
                longitude: m.get("degreesLongitude").and_then(float_of),
                name,
                address,
            });
            return Some(e);
        }
    }
    if let Some(m) = content.get("contactMessage") {
        return Some(Extracted::new(
            MessageType::Contact,
            m.get("displayName").and_then(text_of),
        ));
    }
    if let Some(m) = content.get("contactsArrayMessage") {
        return Some(Extracted::new(
            MessageType::Contact,
            m.get("displayName").and_then(text_of),
        ));
    }
    if let Some(m) = content.get("reactionMessage") {
        let mut e = Extracted::new(MessageType::Reaction, m.get("text").and_then(text_of));
        e.reaction_to = m.get("key").and_then(|k| k.get("id")).and_then(text_of);
        return Some(e);
    }
    for field in [
        "pollCreationMessage",
        "pollCreationMessageV2",
        "pollCreationMessageV3",
    ] {
        if let Some(m) = content.get(field) {
            return Some(Extracted::new(
                MessageType::Poll,
                m.get("name").and_then(text_of),
            ));
        }
    }
    None
}
