//! What evaluating the rules produces: planned actions, not performed ones.
//!
//! A [`PlannedAction`] is a typed API request or a state change, fully
//! rendered. Executing it is the daemon's job; showing it is `simulate`'s;
//! comparing it with an expectation is `waflow test`'s. [`PlannedAction::display`]
//! is the one readable form all three share.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{ApiRequest, Button, Content, TemplateMessage};
use crate::units::format_duration;

/// One action, rendered and ready to perform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PlannedAction {
    /// A call of the remote API that sends a message.
    Send(Outgoing),
    /// A call of another system.
    Http(HttpCall),
    /// Set per-chat state keys.
    Set {
        /// The values.
        values: BTreeMap<String, Value>,
    },
    /// Remove per-chat state keys.
    Clear {
        /// The keys.
        keys: Vec<String>,
    },
    /// Wait before the next action.
    Delay {
        /// How long, in milliseconds.
        millis: u64,
    },
    /// Write a log line.
    Log {
        /// The text.
        text: String,
    },
}

/// A message to send, with what the safety checks need to know of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The request.
    pub request: ApiRequest,
    /// What the action allows past the protections.
    #[serde(default)]
    pub allow: Allowances,
    /// An answer in the chat of the event (`reply:`, or buttons and lists
    /// without `to`); quiet hours hold back only messages that are not.
    #[serde(default)]
    pub reply: bool,
    /// `fallback: auto`: the text menu to send when the interactive message is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<ApiRequest>,
    /// The choices a buttons or list message offers, remembered for `msg.choice`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub menu: Vec<MenuOption>,
}

impl Outgoing {
    /// A message with no allowances, not a reply.
    pub fn new(request: ApiRequest) -> Self {
        Outgoing {
            request,
            allow: Allowances::default(),
            reply: false,
            fallback: None,
            menu: Vec::new(),
        }
    }

    /// Whether a message this number sent to `address` (an
    /// [`address_key`](crate::event::jid::address_key)) with content
    /// `digest` can be the echo of this send, or of its text fallback.
    pub fn is_echoed_by(&self, address: &str, digest: &str) -> bool {
        let to = |request: &ApiRequest| {
            request
                .recipient()
                .is_some_and(|r| crate::event::jid::address_key(&r) == address)
                && request.digest() == digest
        };
        to(&self.request) || self.fallback.as_ref().is_some_and(to)
    }
}

/// What an action allows past the safety protections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowances {
    /// `allow_repeat: true`: the same text again within the repeat window.
    #[serde(default)]
    pub repeat: bool,
    /// `allow_cold: true`: a number that never wrote.
    #[serde(default)]
    pub cold: bool,
}

/// One choice of a menu: the id a rule matches and the label a person sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuOption {
    /// The button or row id.
    pub id: String,
    /// Its label.
    pub label: String,
}

/// An `http` action, rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCall {
    /// GET, POST, …
    pub method: String,
    /// The URL.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// A text body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl PlannedAction {
    /// A `delay` of `d`.
    pub fn delay(d: Duration) -> Self {
        PlannedAction::Delay {
            millis: d.as_millis() as u64,
        }
    }

    /// The readable form used by `simulate` and by the expectations of `waflow test`:
    /// `{send: {to, text}}`, `{send_group: {group, media, …}}`, `{send_buttons: …}`,
    /// `{send_list: …}`, `{send_template: …}`, `{http: …}`, `{set: …}`, `{clear: […]}`,
    /// `{delay: "2s"}`, `{log: "…"}`.
    pub fn display(&self) -> Value {
        match self {
            PlannedAction::Send(out) => display_request(&out.request),
            PlannedAction::Http(call) => json!({ "http": call }),
            PlannedAction::Set { values } => json!({ "set": values }),
            PlannedAction::Clear { keys } => json!({ "clear": keys }),
            PlannedAction::Delay { millis } => {
                json!({ "delay": format_duration(Duration::from_millis(*millis)) })
            }
            PlannedAction::Log { text } => json!({ "log": text }),
        }
    }
}

fn display_request(request: &ApiRequest) -> Value {
    let content = |map: &mut serde_json::Map<String, Value>, content: &Content| match content {
        Content::Text { text } => {
            map.insert("text".into(), json!(text));
        }
        Content::Media {
            media_url,
            filename,
            caption,
        } => {
            map.insert("media".into(), json!(media_url));
            if let Some(f) = filename {
                map.insert("filename".into(), json!(f));
            }
            if let Some(c) = caption {
                map.insert("text".into(), json!(c));
            }
        }
    };
    match request {
        ApiRequest::Send { number, content: c } => {
            let mut map = serde_json::Map::new();
            map.insert("to".into(), json!(number));
            content(&mut map, c);
            json!({ "send": map })
        }
        ApiRequest::SendGroup {
            group_id,
            content: c,
        } => {
            let mut map = serde_json::Map::new();
            map.insert("group".into(), json!(group_id));
            content(&mut map, c);
            json!({ "send_group": map })
        }
        ApiRequest::SendTemplate { number, message } => {
            match message {
                TemplateMessage::Interactive(m) => {
                    let mut v = json!({ "to": number, "text": m.text, "buttons": display_buttons(&m.buttons) });
                    put(&mut v, "title", &m.title);
                    put(&mut v, "footer", &m.footer);
                    json!({ "send_buttons": v })
                }
                TemplateMessage::Template(m) => {
                    let mut v = json!({ "to": number, "text": m.text, "buttons": display_buttons(&m.buttons) });
                    put(&mut v, "footer", &m.footer);
                    json!({ "send_template": v })
                }
                TemplateMessage::List(m) => {
                    let mut v = json!({ "to": number, "text": m.text, "button": m.button, "sections": m.sections });
                    put(&mut v, "title", &m.title);
                    put(&mut v, "footer", &m.footer);
                    json!({ "send_list": v })
                }
            }
        }
        other => json!({ other.endpoint(): {} }),
    }
}

fn put(v: &mut Value, key: &str, value: &Option<String>) {
    if let (Some(map), Some(value)) = (v.as_object_mut(), value) {
        map.insert(key.into(), json!(value));
    }
}

fn display_buttons(buttons: &[Button]) -> Vec<Value> {
    buttons
        .iter()
        .map(|b| match b {
            Button::QuickReply { text, id } => json!({ "id": id, "text": text }),
            Button::Url { text, url } => json!({ "url": url, "text": text }),
            Button::Call { text, phone } => json!({ "call": phone, "text": text }),
            Button::Copy { text, code } => json!({ "copy": code, "text": text }),
        })
        .collect()
}

/// The plan of one matched rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulePlan {
    /// The rule's name.
    pub rule: String,
    /// The rule's position in the rule set.
    pub rule_index: usize,
    /// The chat the rule acted in (state and cooldown key), if the event has one.
    pub chat: Option<String>,
    /// The actions, rendered, in order.
    pub actions: Vec<PlannedAction>,
    /// Actions from this index on wait for the result of the `http` action before them.
    pub continue_at: Option<usize>,
    /// The action that failed to render, and why; the rule stops there.
    pub failed: Option<ActionFailure>,
    /// The list row it is for (a `for_each` rule): part of its outbox keys.
    pub row: Option<RowRef>,
}

/// The row of a list a plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowRef {
    /// Its position in the list, from 0: unique within one fire.
    pub index: usize,
    /// The line it starts at in its file (its position, for JSON).
    pub line: u64,
}

impl Outgoing {
    /// The words of a message (its text, or a file's caption or name),
    /// for people reading what was sent; `None` for other requests.
    pub fn words(&self) -> Option<String> {
        match &self.request {
            crate::api::ApiRequest::Send { content, .. }
            | crate::api::ApiRequest::SendGroup { content, .. } => Some(match content {
                crate::api::Content::Text { text } => text.clone(),
                crate::api::Content::Media {
                    caption,
                    filename,
                    media_url,
                } => caption
                    .clone()
                    .or_else(|| filename.clone())
                    .unwrap_or_else(|| media_url.clone()),
            }),
            crate::api::ApiRequest::SendTemplate { message, .. } => serde_json::to_value(message)
                .ok()?
                .get("text")?
                .as_str()
                .map(str::to_owned),
            _ => None,
        }
    }
}

/// An action that could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionFailure {
    /// Its index among the rule's actions.
    pub action: usize,
    /// Why.
    pub message: String,
}
