//! The serde mirror of a rules file: every key a rule may have, nothing
//! checked yet beyond its shape. [`super::compile`] turns it into a
//! [`super::RuleSet`]. The same types give the JSON Schema of `waflow schema`.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::config::HumanDuration;
pub use crate::rules::spanned::Sp;

/// A rules file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "waflow rules")]
pub struct RawFile {
    /// The rules, evaluated in order.
    pub rules: Vec<Sp<RawRule>>,
}

/// The skeleton of a rules file: where each rule starts and its name, so that
/// each rule can be read on its own and a mistake in one does not hide the
/// others (nor its name from the duplicate check).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSkeleton {
    /// One entry per rule.
    pub rules: Vec<Sp<SkeletonRule>>,
}

/// A rule seen by the skeleton: only its name; other keys are read later.
#[derive(Debug, Deserialize)]
pub struct SkeletonRule {
    /// The rule's name, if it has a readable one.
    pub name: Option<Sp<ScalarOrAny>>,
}

/// Any YAML value; a scalar is kept as text.
#[derive(Debug)]
pub struct ScalarOrAny(pub Option<String>);

impl<'de> Deserialize<'de> for ScalarOrAny {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(ScalarOrAny(match value {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }))
    }
}

/// What a rule reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawTrigger {
    /// A message arrives.
    Message,
    /// A sent message's status changes (delivered, read, …).
    Status,
    /// A contact's presence changes.
    Presence,
    /// A cron schedule fires.
    Schedule,
    /// Another system calls `POST /hooks/{hook}`.
    Webhook,
}

impl fmt::Display for RawTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RawTrigger::Message => "message",
            RawTrigger::Status => "status",
            RawTrigger::Presence => "presence",
            RawTrigger::Schedule => "schedule",
            RawTrigger::Webhook => "webhook",
        })
    }
}

/// One rule.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique across all files; used in logs, metrics and the outbox.
    pub name: Sp<String>,
    /// What the rule reacts to.
    pub on: Sp<RawTrigger>,
    /// Optional words about the rule, ignored.
    pub description: Option<String>,
    /// Filters on the event; all must hold.
    #[serde(rename = "match")]
    pub matcher: Option<Sp<RawMatch>>,
    /// An expression (same language as templates) that must be true.
    #[serde(rename = "if")]
    pub condition: Option<Sp<String>>,
    /// This rule fires at most once per chat within this duration.
    #[schemars(with = "Option<String>")]
    pub cooldown: Option<Sp<HumanDuration>>,
    /// Later rules do not see an event this rule matched.
    #[serde(default)]
    pub stop: bool,
    /// Cron expression (on: schedule): 5 fields, 6 with seconds first, or a macro.
    pub cron: Option<Sp<String>>,
    /// IANA zone of `cron` and `{{ now }}`; default: the config's timezone.
    pub timezone: Option<Sp<String>>,
    /// A run missed while the daemon was down fires on start if at most this late (on: schedule).
    #[schemars(with = "Option<String>")]
    pub catch_up: Option<Sp<HumanDuration>>,
    /// The hook name (on: webhook): the rule listens on `POST /hooks/{hook}`.
    pub hook: Option<Sp<String>>,
    /// The hook's secret (on: webhook): HMAC-SHA256 signature key, or `?secret=`.
    pub secret: Option<Sp<String>>,
    /// The instances (numbers) this rule serves; default: every one.
    pub instance: Option<Sp<StringList>>,
    /// Run the actions once per row of a list (on: schedule, on: webhook).
    pub for_each: Option<Sp<RawForEach>>,
    /// What to do, in order.
    pub actions: Vec<Sp<RawAction>>,
}

/// `for_each:`: where the rows come from (one of `csv`, `yaml`, `http`,
/// `items`), and which rows count.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawForEach {
    /// A CSV file (header = column names; `,` or `;`; UTF-8, BOM or not), relative to the rules file.
    pub csv: Option<Sp<String>>,
    /// A YAML file holding a list of maps, relative to the rules file.
    pub yaml: Option<Sp<String>>,
    /// A URL answering a JSON array of objects to a GET.
    pub http: Option<Sp<RawListHttp>>,
    /// On webhook rules: an array of the call's body, `body.PATH`.
    pub items: Option<Sp<String>>,
    /// A condition per row (same language as `if:`), e.g. `row.date == now.tomorrow`.
    #[serde(rename = "where")]
    pub condition: Option<Sp<String>>,
}

/// `for_each.http`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawListHttp {
    /// The URL (`${VAR}` for secrets in it).
    pub url: Sp<String>,
    /// Request headers, e.g. an API key: `${LIST_TOKEN}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Which chats a message rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChatScope {
    /// One-to-one chats only (the default).
    #[default]
    Direct,
    /// Groups only.
    Group,
    /// Both.
    Any,
}

/// Filters of a rule; all that are given must hold.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// Regex on the message text; named groups become `{{ match.NAME }}`.
    pub text: Option<Sp<String>>,
    /// direct (default), group or any.
    pub chat: Option<ChatScope>,
    /// Senders: phone numbers or JIDs.
    pub from: Option<Sp<StringList>>,
    /// Groups (…@g.us).
    pub group: Option<Sp<StringList>>,
    /// Message types: text image video audio document sticker location contact button list reaction poll.
    #[serde(rename = "type")]
    pub types: Option<Sp<StringList>>,
    /// Ids of the chosen button or list row (`msg.button_id`).
    pub button_id: Option<Sp<StringList>>,
    /// Ids of the chosen option, tapped or typed as its number or label (`msg.choice`).
    pub choice: Option<Sp<StringList>>,
    /// Per-chat state that must hold these values (`null` = not set).
    pub state: Option<BTreeMap<String, Value>>,
    /// Status names (on: status): failed pending sent delivered read played.
    pub status: Option<Sp<StringList>>,
    /// Presence states (on: presence): available unavailable composing recording paused.
    pub presence: Option<Sp<StringList>>,
}

/// One string or a list of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = StringList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_owned()]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_string()]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<ScalarString>()? {
                    out.push(item.0);
                }
                Ok(StringList(out))
            }
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

impl JsonSchema for StringList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StringList".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    }
}

/// A scalar read as a string (numbers such as phone numbers included).
struct ScalarString(String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// One action: a map with exactly one key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawAction {
    /// Answer in the chat of the event: a text, or `{text, media, filename}`.
    Reply(RawSend),
    /// Send to a phone number: `{to, text, media, filename}`.
    Send(RawSend),
    /// Send to a group: `{group, text, media, filename}`.
    SendGroup(RawSend),
    /// Interactive buttons: `{to?, text, title?, footer?, buttons}`.
    SendButtons(RawButtons),
    /// A list message: `{to?, text, title?, footer?, button, sections}`.
    SendList(RawList),
    /// The legacy template-buttons message: `{to?, text, footer?, buttons}`.
    SendTemplate(RawButtons),
    /// Call any URL; later actions see `{{ http.status }}` and `{{ http.json }}`.
    Http(RawHttp),
    /// Set per-chat state: `{key: value}`; string values are templates.
    Set(BTreeMap<String, Sp<Value>>),
    /// Remove per-chat state keys.
    Clear(StringList),
    /// Wait before the next action.
    #[schemars(with = "String")]
    Delay(Sp<HumanDuration>),
    /// Write a log line (a template).
    Log(Sp<String>),
}

/// The fields of `reply`, `send` and `send_group`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSendFields {
    /// Recipient phone number (send): a template.
    pub to: Option<Sp<String>>,
    /// Recipient group id (send_group): a template.
    pub group: Option<Sp<String>>,
    /// The text, or the caption of `media`: a template.
    pub text: Option<Sp<String>>,
    /// URL of a file to send: a template.
    pub media: Option<Sp<String>>,
    /// File name shown for a document: a template.
    pub filename: Option<Sp<String>>,
    /// Allow the same text to the same chat within the repeat window.
    #[serde(default)]
    pub allow_repeat: bool,
    /// Allow sending to a number that never wrote to this instance.
    #[serde(default)]
    pub allow_cold: bool,
}

/// `reply`/`send`/`send_group`: a plain text, or the fields.
#[derive(Debug, Default)]
pub struct RawSend(pub RawSendFields);

impl<'de> Deserialize<'de> for RawSend {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SendVisitor;
        impl<'de> Visitor<'de> for SendVisitor {
            type Value = RawSend;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a text, or a mapping with text, media, filename")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSend, E> {
                Ok(RawSend(RawSendFields {
                    text: Some(Sp::unlocated(v.to_owned())),
                    ..RawSendFields::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawSend, A::Error> {
                RawSendFields::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawSend)
            }
        }
        deserializer.deserialize_any(SendVisitor)
    }
}

impl JsonSchema for RawSend {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Send".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let fields = generator.subschema_for::<RawSendFields>();
        schemars::json_schema!({
            "anyOf": [ { "type": "string" }, fields ]
        })
    }
}

/// What buttons and lists become on backends that drop interactive messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Always the interactive message.
    #[default]
    None,
    /// Always a numbered text menu.
    Text,
    /// The interactive message; the text menu when the API refuses it.
    Auto,
}

/// `send_buttons` and `send_template`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawButtons {
    /// Recipient number; default: the chat of the event.
    pub to: Option<Sp<String>>,
    /// The message text.
    pub text: Sp<String>,
    /// Title above the text.
    pub title: Option<Sp<String>>,
    /// Footer.
    pub footer: Option<Sp<String>>,
    /// The buttons, in order.
    pub buttons: Vec<Sp<RawButton>>,
    /// `text`: send a numbered text menu instead; `auto`: that menu only when
    /// the API refuses the interactive message. Replies by number or label
    /// set `msg.choice` like a tap does.
    #[serde(default)]
    pub fallback: Fallback,
    /// Allow the same message to the same chat within the repeat window.
    #[serde(default)]
    pub allow_repeat: bool,
    /// Allow sending to a number that never wrote to this instance.
    #[serde(default)]
    pub allow_cold: bool,
}

/// One button: `text` and exactly one of `id`, `url`, `call`, `copy`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawButton {
    /// The label.
    pub text: Sp<String>,
    /// A quick-reply button: the id a reply carries.
    pub id: Option<Sp<String>>,
    /// A URL button.
    pub url: Option<Sp<String>>,
    /// A call button: the phone number.
    pub call: Option<Sp<String>>,
    /// A copy-code button: the code.
    pub copy: Option<Sp<String>>,
}

/// `send_list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawList {
    /// Recipient number; default: the chat of the event.
    pub to: Option<Sp<String>>,
    /// The message text.
    pub text: Sp<String>,
    /// Title.
    pub title: Option<Sp<String>>,
    /// Footer.
    pub footer: Option<Sp<String>>,
    /// The label of the button that opens the list.
    pub button: Sp<String>,
    /// Sections of rows.
    pub sections: Vec<RawSection>,
    /// `text`: send a numbered text menu instead; `auto`: that menu only when
    /// the API refuses the interactive message.
    #[serde(default)]
    pub fallback: Fallback,
    /// Allow the same message to the same chat within the repeat window.
    #[serde(default)]
    pub allow_repeat: bool,
    /// Allow sending to a number that never wrote to this instance.
    #[serde(default)]
    pub allow_cold: bool,
}

/// One section of a list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSection {
    /// The heading.
    pub title: Sp<String>,
    /// The rows.
    pub rows: Vec<RawRow>,
}

/// One row of a list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRow {
    /// The id a reply carries (`msg.button_id`).
    pub id: Sp<String>,
    /// The title (a reply's `msg.text`).
    pub title: Sp<String>,
    /// A second line.
    pub description: Option<Sp<String>>,
}

/// `http`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// GET, POST, PUT, PATCH or DELETE; default POST with a body, else GET.
    pub method: Option<Sp<String>>,
    /// The URL: a template.
    pub url: Sp<String>,
    /// Request headers: templates.
    #[serde(default)]
    pub headers: BTreeMap<String, Sp<String>>,
    /// A JSON body; strings inside are templates.
    pub json: Option<Sp<Value>>,
    /// A text body: a template.
    pub body: Option<Sp<String>>,
}
