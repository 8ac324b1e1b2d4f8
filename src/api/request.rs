//! The requests waflow can make of the remote API, as typed values.
//!
//! An [`ApiRequest`] is plain data: it is planned by the rules, stored in the
//! outbox as JSON, shown by `simulate`, and only turned into HTTP by
//! [`ApiRequest::to_call`]. The access token is never part of it; the call
//! gets it at the last moment.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::SendMethod;

/// One call of the remote API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "endpoint", rename_all = "snake_case")]
pub enum ApiRequest {
    /// Create a new instance id (needs only the access token).
    CreateInstance,
    /// Log out WhatsApp Web and start a fresh scan.
    Reboot,
    /// Log out, change the instance id and delete the instance's data.
    ResetInstance,
    /// Re-initiate the connection; answers with the connected account when it is logged in.
    Reconnect,
    /// Log out of WhatsApp Web.
    Logout,
    /// The QR code to log in with.
    GetQrcode,
    /// Text or media to a phone number.
    Send {
        /// Digits only, country code first, no `+`.
        number: String,
        /// What to send.
        #[serde(flatten)]
        content: Content,
    },
    /// Text or media to a group.
    SendGroup {
        /// The group JID, `…@g.us`.
        group_id: String,
        /// What to send.
        #[serde(flatten)]
        content: Content,
    },
    /// Buttons, a legacy template or a list message to a phone number.
    SendTemplate {
        /// Digits only, or a group JID.
        number: String,
        /// The message.
        message: TemplateMessage,
    },
    /// Point the instance's webhook at `url`, or switch it off.
    SetWebhook {
        /// Where the API should POST events.
        url: String,
        /// `false` switches the webhook off.
        enable: bool,
    },
}

/// What a `send` or `send_group` carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// A text message.
    Text {
        /// The text.
        text: String,
    },
    /// A file by URL, with an optional caption.
    Media {
        /// Where the API downloads the file from.
        media_url: String,
        /// The file name shown for documents (`menu.pdf`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
        /// The caption.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
}

/// The three message shapes of `send_template`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TemplateMessage {
    /// Interactive (native-flow) buttons: the recommended shape.
    Interactive(Interactive),
    /// The deprecated `templateButtons` shape.
    Template(LegacyTemplate),
    /// A list message with sections and rows.
    List(ListMessage),
}

/// An interactive message with up to a few buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interactive {
    /// The body text.
    pub text: String,
    /// Optional title above the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Optional subtitle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    /// Optional footer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// The buttons, in order.
    pub buttons: Vec<Button>,
}

/// One interactive button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Button {
    /// Sends its id back as a reply (`quick_reply`).
    QuickReply {
        /// The label.
        text: String,
        /// The id the reply carries (`msg.button_id`).
        id: String,
    },
    /// Opens a URL (`cta_url`).
    Url {
        /// The label.
        text: String,
        /// The URL.
        url: String,
    },
    /// Calls a number (`cta_call`).
    Call {
        /// The label.
        text: String,
        /// The number, with `+`.
        phone: String,
    },
    /// Copies a code (`cta_copy`).
    Copy {
        /// The label.
        text: String,
        /// The code to copy.
        code: String,
    },
}

/// The deprecated template-buttons message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyTemplate {
    /// The body text.
    pub text: String,
    /// Optional footer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// The buttons (quick reply, URL or call).
    pub buttons: Vec<Button>,
}

/// A list message: a button that opens sections of rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMessage {
    /// The body text.
    pub text: String,
    /// Optional title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Optional footer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// The label of the button that opens the list.
    pub button: String,
    /// The sections.
    pub sections: Vec<ListSection>,
}

/// One section of a list message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSection {
    /// The section heading.
    pub title: String,
    /// The rows.
    pub rows: Vec<ListRow>,
}

/// One choice in a list message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    /// The id a reply carries (`msg.button_id`).
    pub id: String,
    /// The row's title (a reply's `msg.text`).
    pub title: String,
    /// Optional second line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The HTTP verb of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verb {
    /// GET with everything in the query.
    Get,
    /// POST, with or without a JSON body.
    Post,
}

/// Where the access token goes in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPlace {
    /// `?access_token=` in the query string.
    Query,
    /// `"access_token"` in the JSON body.
    Body,
}

/// A request ready for HTTP, without the token (see [`TokenPlace`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpCall {
    /// GET or POST.
    pub verb: Verb,
    /// The path below the base URL (`send`).
    pub path: &'static str,
    /// Query parameters in order.
    pub query: Vec<(String, String)>,
    /// The JSON body, if any.
    pub json: Option<Value>,
    /// Where the access token must be added.
    #[serde(skip)]
    pub token: TokenPlace,
}

/// The digest of a text message (see [`ApiRequest::digest`]): what a text
/// send and the webhook's echo of it have in common.
pub fn text_digest(text: &str) -> String {
    use sha2::{Digest as _, Sha256};
    hex::encode(&Sha256::digest(text.trim().as_bytes())[..16])
}

impl ApiRequest {
    /// The number or group this request goes to, if it sends a message.
    pub fn recipient(&self) -> Option<String> {
        match self {
            ApiRequest::Send { number, .. } | ApiRequest::SendTemplate { number, .. } => {
                Some(number.clone())
            }
            ApiRequest::SendGroup { group_id, .. } => Some(group_id.clone()),
            _ => None,
        }
    }

    /// A hash of what this request says (not to whom): the same message to
    /// the same recipient twice has the same digest (repeat suppression).
    pub fn digest(&self) -> String {
        use sha2::{Digest as _, Sha256};
        let content = match self {
            ApiRequest::Send { content, .. } | ApiRequest::SendGroup { content, .. } => {
                match content {
                    Content::Text { text } => return text_digest(text),
                    other => serde_json::to_string(other).unwrap_or_default(),
                }
            }
            ApiRequest::SendTemplate { message, .. } => {
                serde_json::to_string(message).unwrap_or_default()
            }
            other => other.endpoint().to_owned(),
        };
        hex::encode(&Sha256::digest(content.as_bytes())[..16])
    }

    /// The endpoint's name, as in the API reference (`send_group`).
    pub fn endpoint(&self) -> &'static str {
        match self {
            ApiRequest::CreateInstance => "create_instance",
            ApiRequest::Reboot => "reboot",
            ApiRequest::ResetInstance => "reset_instance",
            ApiRequest::Reconnect => "reconnect",
            ApiRequest::Logout => "logout",
            ApiRequest::GetQrcode => "get_qrcode",
            ApiRequest::Send { .. } => "send",
            ApiRequest::SendGroup { .. } => "send_group",
            ApiRequest::SendTemplate { .. } => "send_template",
            ApiRequest::SetWebhook { .. } => "set_webhook",
        }
    }

    /// Whether a success means a message left, so the reply must carry its key id.
    pub fn is_send(&self) -> bool {
        matches!(
            self,
            ApiRequest::Send { .. }
                | ApiRequest::SendGroup { .. }
                | ApiRequest::SendTemplate { .. }
        )
    }

    /// Whether the call needs `instance_id` (all but `create_instance`).
    pub fn needs_instance(&self) -> bool {
        !matches!(self, ApiRequest::CreateInstance)
    }

    /// The HTTP shape of this request. `method` applies to `send` and
    /// `send_group`, the only endpoints the API offers both ways; the others
    /// are POSTs with query parameters, `send_template` with a JSON body.
    pub fn to_call(&self, method: SendMethod, instance_id: Option<&str>) -> HttpCall {
        let path = self.endpoint();
        let instance = instance_id.unwrap_or_default().to_owned();
        let with_instance = |mut query: Vec<(String, String)>| {
            if self.needs_instance() {
                query.push(("instance_id".into(), instance.clone()));
            }
            query
        };
        let post_query = |query: Vec<(String, String)>| HttpCall {
            verb: Verb::Post,
            path,
            query: with_instance(query),
            json: None,
            token: TokenPlace::Query,
        };
        match self {
            ApiRequest::CreateInstance
            | ApiRequest::Reboot
            | ApiRequest::ResetInstance
            | ApiRequest::Reconnect
            | ApiRequest::Logout
            | ApiRequest::GetQrcode => post_query(vec![]),
            ApiRequest::SetWebhook { url, enable } => post_query(vec![
                ("webhook_url".into(), url.clone()),
                ("enable".into(), enable.to_string()),
            ]),
            ApiRequest::Send { number, content } => {
                send_call(path, method, ("number", number), content, &instance)
            }
            ApiRequest::SendGroup { group_id, content } => {
                send_call(path, method, ("group_id", group_id), content, &instance)
            }
            ApiRequest::SendTemplate { number, message } => {
                let (kind, body) = template_body(message);
                HttpCall {
                    verb: Verb::Post,
                    path,
                    query: with_instance(vec![]),
                    json: Some(json!({ "number": number, "type": kind, "message": body })),
                    token: TokenPlace::Query,
                }
            }
        }
    }
}

/// `send` / `send_group`: the same fields as JSON (POST) or query (GET).
fn send_call(
    path: &'static str,
    method: SendMethod,
    recipient: (&str, &str),
    content: &Content,
    instance: &str,
) -> HttpCall {
    let mut fields: Vec<(String, String)> = vec![(recipient.0.into(), recipient.1.into())];
    match content {
        Content::Text { text } => {
            fields.push(("type".into(), "text".into()));
            fields.push(("message".into(), text.clone()));
        }
        Content::Media {
            media_url,
            filename,
            caption,
        } => {
            fields.push(("type".into(), "media".into()));
            fields.push(("message".into(), caption.clone().unwrap_or_default()));
            fields.push(("media_url".into(), media_url.clone()));
            if let Some(name) = filename {
                fields.push(("filename".into(), name.clone()));
            }
        }
    }
    fields.push(("instance_id".into(), instance.to_owned()));
    match method {
        SendMethod::Get => HttpCall {
            verb: Verb::Get,
            path,
            query: fields,
            json: None,
            token: TokenPlace::Query,
        },
        SendMethod::Post => {
            let body: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            HttpCall {
                verb: Verb::Post,
                path,
                query: vec![],
                json: Some(Value::Object(body)),
                token: TokenPlace::Body,
            }
        }
    }
}

/// The `type` and `message` of a `send_template` body, as the API reference shows them.
fn template_body(message: &TemplateMessage) -> (&'static str, Value) {
    match message {
        TemplateMessage::Interactive(m) => {
            let buttons: Vec<Value> = m.buttons.iter().map(interactive_button).collect();
            let mut body = json!({ "text": m.text, "interactiveButtons": buttons });
            insert_some(&mut body, "title", &m.title);
            insert_some(&mut body, "subtitle", &m.subtitle);
            insert_some(&mut body, "footer", &m.footer);
            ("interactive", body)
        }
        TemplateMessage::Template(m) => {
            let buttons: Vec<Value> = m
                .buttons
                .iter()
                .enumerate()
                .map(|(i, b)| legacy_button(i + 1, b))
                .collect();
            let mut body = json!({ "text": m.text, "templateButtons": buttons });
            insert_some(&mut body, "footer", &m.footer);
            ("template", body)
        }
        TemplateMessage::List(m) => {
            let sections: Vec<Value> = m
                .sections
                .iter()
                .map(|s| {
                    let rows: Vec<Value> = s
                        .rows
                        .iter()
                        .map(|r| {
                            let mut row = json!({ "title": r.title, "rowId": r.id });
                            insert_some(&mut row, "description", &r.description);
                            row
                        })
                        .collect();
                    json!({ "title": s.title, "rows": rows })
                })
                .collect();
            let mut body = json!({ "text": m.text, "buttonText": m.button, "sections": sections });
            insert_some(&mut body, "title", &m.title);
            insert_some(&mut body, "footer", &m.footer);
            ("list", body)
        }
    }
}

fn insert_some(object: &mut Value, key: &str, value: &Option<String>) {
    if let (Some(map), Some(v)) = (object.as_object_mut(), value) {
        map.insert(key.to_owned(), Value::String(v.clone()));
    }
}

/// An interactive button: `name` plus its parameters as a JSON *string*, as Baileys wants them.
fn interactive_button(button: &Button) -> Value {
    let (name, params) = match button {
        Button::QuickReply { text, id } => {
            ("quick_reply", json!({ "display_text": text, "id": id }))
        }
        Button::Url { text, url } => ("cta_url", json!({ "display_text": text, "url": url })),
        Button::Call { text, phone } => (
            "cta_call",
            json!({ "display_text": text, "phone_number": phone }),
        ),
        Button::Copy { text, code } => (
            "cta_copy",
            json!({ "display_text": text, "copy_code": code }),
        ),
    };
    json!({ "name": name, "buttonParamsJson": params.to_string() })
}

/// A legacy `templateButtons` entry; copy buttons do not exist there and become quick replies.
fn legacy_button(index: usize, button: &Button) -> Value {
    match button {
        Button::QuickReply { text, id } => {
            json!({ "index": index, "quickReplyButton": { "displayText": text, "id": id } })
        }
        Button::Url { text, url } => {
            json!({ "index": index, "urlButton": { "displayText": text, "url": url } })
        }
        Button::Call { text, phone } => {
            json!({ "index": index, "callButton": { "displayText": text, "phoneNumber": phone } })
        }
        Button::Copy { text, code } => {
            json!({ "index": index, "quickReplyButton": { "displayText": text, "id": code } })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_through_json() {
        let req = ApiRequest::SendTemplate {
            number: "84933313000".into(),
            message: TemplateMessage::List(ListMessage {
                text: "Pick".into(),
                title: None,
                footer: Some("f".into()),
                button: "Open".into(),
                sections: vec![ListSection {
                    title: "S".into(),
                    rows: vec![ListRow {
                        id: "r1".into(),
                        title: "Row".into(),
                        description: None,
                    }],
                }],
            }),
        };
        let text = serde_json::to_string(&req).unwrap();
        assert_eq!(serde_json::from_str::<ApiRequest>(&text).unwrap(), req);
    }

    #[test]
    fn interactive_buttons_carry_params_as_a_json_string() {
        let call = ApiRequest::SendTemplate {
            number: "1".into(),
            message: TemplateMessage::Interactive(Interactive {
                text: "t".into(),
                title: None,
                subtitle: None,
                footer: None,
                buttons: vec![Button::Call {
                    text: "Call".into(),
                    phone: "+1234".into(),
                }],
            }),
        }
        .to_call(SendMethod::Post, Some("I"));
        let body = call.json.unwrap();
        assert_eq!(body["type"], "interactive");
        let params = body["message"]["interactiveButtons"][0]["buttonParamsJson"]
            .as_str()
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(params).unwrap(),
            json!({"display_text": "Call", "phone_number": "+1234"})
        );
    }
}

/// Why a recipient is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    /// Not a phone number.
    #[error(
        "`{0}` is not a phone number: write the digits with the country code, without +, e.g. 84933313000"
    )]
    Number(String),
    /// Not a group id.
    #[error("`{0}` is not a group id: it must end with @g.us, e.g. 120363025246125486@g.us")]
    Group(String),
}

/// The `number` the API wants: digits with the country code, no `+`, spaces or dashes.
///
/// `84933313000@s.whatsapp.net` and `…@c.us` become their digits; other JIDs
/// (`…@lid`) are passed on unchanged, as newer backends accept them.
pub fn normalize_number(text: &str) -> Result<String, RecipientError> {
    let trimmed = text.trim();
    if let Some((user, server)) = trimmed.split_once('@') {
        return match server {
            "s.whatsapp.net" | "c.us" => {
                let user = user.split(':').next().unwrap_or(user);
                normalize_number(user)
            }
            "g.us" | "" => Err(RecipientError::Number(text.to_owned())),
            _ if !user.is_empty() => Ok(trimmed.to_owned()),
            _ => Err(RecipientError::Number(text.to_owned())),
        };
    }
    let digits: String = trimmed
        .chars()
        .filter(|c| !matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
        .collect();
    if digits.len() >= 5 && digits.len() <= 20 && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err(RecipientError::Number(text.to_owned()))
    }
}

/// A group JID, checked: something before `@g.us`.
pub fn normalize_group(text: &str) -> Result<String, RecipientError> {
    let trimmed = text.trim();
    match trimmed.strip_suffix("@g.us") {
        Some(id) if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit() || c == '-') => {
            Ok(trimmed.to_owned())
        }
        _ => Err(RecipientError::Group(text.to_owned())),
    }
}

#[cfg(test)]
mod recipient_tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(normalize_number("+84 933-313 000").unwrap(), "84933313000");
        assert_eq!(
            normalize_number("84933313000@s.whatsapp.net").unwrap(),
            "84933313000"
        );
        assert_eq!(
            normalize_number("84933313000:12@c.us").unwrap(),
            "84933313000"
        );
        assert_eq!(
            normalize_number("123456789012345@lid").unwrap(),
            "123456789012345@lid"
        );
        for bad in ["", "abc", "12", "120363025246125486@g.us", "@lid"] {
            assert!(normalize_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn groups() {
        assert!(normalize_group("120363025246125486@g.us").is_ok());
        assert!(normalize_group("84987694574-1618740914@g.us").is_ok());
        assert!(normalize_group("84933313000").is_err());
        assert!(normalize_group("@g.us").is_err());
    }

    #[test]
    fn digests_ignore_the_recipient() {
        let a = ApiRequest::Send {
            number: "1".into(),
            content: Content::Text { text: "hi".into() },
        };
        let b = ApiRequest::Send {
            number: "2".into(),
            content: Content::Text { text: "hi".into() },
        };
        let c = ApiRequest::Send {
            number: "1".into(),
            content: Content::Text { text: "ho".into() },
        };
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
    }
}
