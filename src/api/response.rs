//! What the API's answers mean, read as the backend really sends them.
//!
//! The API answers HTTP 200 for most failures and puts the outcome in the
//! body: `"status":"success"` or `"error"` (also `true`/`"true"` in some
//! forks), a `message` that may be a string or, for sends, the sent message
//! object. A send is confirmed only by a message key id; `[]` means the
//! WhatsApp server behind the API is down; `logout` may answer plain text.
//! [`interpret`] turns all of that into an [`ApiReply`] or an [`ApiError`].

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

use super::error::{ApiError, classify_message, clip};
use super::request::ApiRequest;

/// A successful answer, by endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ApiReply {
    /// A message left; `message_id` correlates with later status events.
    Sent {
        /// The WhatsApp message key id.
        message_id: String,
    },
    /// `create_instance` made (or returned the unused) instance id.
    InstanceCreated {
        /// The new instance id.
        instance_id: String,
    },
    /// The login QR code.
    QrCode {
        /// The image or the code's content.
        #[serde(skip)]
        qr: QrCode,
    },
    /// `reconnect` found the number logged in.
    Connected {
        /// The account's own JID (`84933313xxx:12@s.whatsapp.net`).
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        /// The account's name.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Any other success, with the API's words.
    Done {
        /// What the API said.
        message: String,
    },
}

/// A QR code as the API delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrCode {
    /// A PNG image (from a `data:image/png;base64,` URL).
    Png(Vec<u8>),
    /// The code's content itself (some backends send the raw string).
    Content(String),
}

/// Reads the answer of `request` (HTTP `status` and `body`, already stripped of the token).
pub fn interpret(request: &ApiRequest, status: u16, body: &str) -> Result<ApiReply, ApiError> {
    let endpoint = request.endpoint();
    let trimmed = body.trim();
    let parsed: Option<Value> = serde_json::from_str(trimmed).ok();
    if !(200..300).contains(&status) {
        return Err(http_error(endpoint, status, parsed.as_ref(), trimmed));
    }
    let value = match parsed {
        Some(value) => json_object(endpoint, value)?,
        // A logout may answer in plain text.
        None if matches!(request, ApiRequest::Logout)
            && trimmed.to_ascii_lowercase().contains("logout") =>
        {
            return Ok(ApiReply::Done {
                message: trimmed.to_owned(),
            });
        }
        None => {
            return Err(ApiError::InvalidResponse {
                endpoint,
                detail: if trimmed.is_empty() {
                    "an empty body".to_owned()
                } else {
                    format!("not JSON: {}", excerpt(trimmed))
                },
            });
        }
    };
    check_status(request, endpoint, &value)?;
    reply(request, endpoint, &value)
}

/// What a status other than 2xx means: a known error text, else the status.
fn http_error(
    endpoint: &'static str,
    status: u16,
    parsed: Option<&Value>,
    trimmed: &str,
) -> ApiError {
    let message = parsed.and_then(message_text).map(str::to_owned);
    if let Some(message) = &message {
        let specific = classify_message(endpoint, message.clone());
        if !matches!(specific, ApiError::Refused { .. }) {
            return specific;
        }
    }
    ApiError::Http {
        endpoint,
        status,
        message: message
            .map(|m| clip(&m))
            .or_else(|| (!trimmed.is_empty()).then(|| excerpt(trimmed))),
    }
}

/// The answer as a non-empty JSON object: `null`, `[]` and `{}` mean the
/// backend behind the API is down.
fn json_object(endpoint: &'static str, value: Value) -> Result<Value, ApiError> {
    match value {
        Value::Object(ref map) if !map.is_empty() => Ok(value),
        Value::Null | Value::Object(_) => Err(ApiError::BackendDown { endpoint }),
        Value::Array(ref items) if items.is_empty() => Err(ApiError::BackendDown { endpoint }),
        other => Err(ApiError::InvalidResponse {
            endpoint,
            detail: format!(
                "expected a JSON object, got {}",
                excerpt(&other.to_string())
            ),
        }),
    }
}

/// The answer's own verdict: `relogin`, or a `status` word (without one
/// only a send with a key id is understood).
fn check_status(
    request: &ApiRequest,
    endpoint: &'static str,
    value: &Value,
) -> Result<(), ApiError> {
    if value.get("relogin").is_some_and(truthy) {
        return Err(ApiError::ReloginRequired {
            endpoint,
            message: message_text(value).unwrap_or("relogin required").to_owned(),
        });
    }
    match value.get("status").map(status_word) {
        Some(Status::Error) => {
            let message = message_text(value).unwrap_or("no message").to_owned();
            return Err(classify_message(endpoint, message));
        }
        Some(Status::Success) => {}
        Some(Status::Other) | None => {
            // Without a status word only a send with a key id is understood.
            if !(request.is_send() && message_id(value).is_some()) {
                return Err(ApiError::InvalidResponse {
                    endpoint,
                    detail: format!("no \"status\" in {}", excerpt(&value.to_string())),
                });
            }
        }
    }
    Ok(())
}

/// What a successful answer says, per request.
fn reply(
    request: &ApiRequest,
    endpoint: &'static str,
    value: &Value,
) -> Result<ApiReply, ApiError> {
    match request {
        ApiRequest::Send { .. }
        | ApiRequest::SendGroup { .. }
        | ApiRequest::SendTemplate { .. } => sent(endpoint, value),
        ApiRequest::CreateInstance => {
            let id = string_at(value, &["instance_id"])
                .or_else(|| string_at(value, &["data", "instance_id"]))
                .ok_or_else(|| ApiError::InvalidResponse {
                    endpoint,
                    detail: "success without an instance_id".to_owned(),
                })?;
            Ok(ApiReply::InstanceCreated { instance_id: id })
        }
        ApiRequest::GetQrcode => qr_reply(endpoint, value),
        ApiRequest::Reconnect => Ok(ApiReply::Connected {
            account: string_at(value, &["data", "id"]),
            name: string_at(value, &["data", "name"]),
        }),
        ApiRequest::Reboot
        | ApiRequest::ResetInstance
        | ApiRequest::Logout
        | ApiRequest::SetWebhook { .. } => Ok(ApiReply::Done {
            message: message_text(value).unwrap_or("Success").to_owned(),
        }),
    }
}

/// A send's answer: confirmed only with a message key id.
fn sent(endpoint: &'static str, value: &Value) -> Result<ApiReply, ApiError> {
    if let Some(id) = message_id(value) {
        return Ok(ApiReply::Sent { message_id: id });
    }
    match message_text(value) {
        Some(message) => {
            let meaning = classify_message(endpoint, message.to_owned());
            if matches!(meaning, ApiError::Refused { .. }) {
                Err(ApiError::NotConfirmed {
                    endpoint,
                    detail: format!("it said: {}", excerpt(message)),
                })
            } else {
                Err(meaning)
            }
        }
        None => Err(ApiError::NotConfirmed {
            endpoint,
            detail: "the body had no message".to_owned(),
        }),
    }
}

/// The QR code in a `get_qrcode` answer, wherever this host puts it.
fn qr_reply(endpoint: &'static str, value: &Value) -> Result<ApiReply, ApiError> {
    let candidates: [&[&str]; 6] = [
        &["base64"],
        &["qrcode"],
        &["qr_code"],
        &["data", "qrcode"],
        &["data", "base64"],
        &["data", "qr_code"],
    ];
    let raw = candidates
        .iter()
        .find_map(|path| string_at(value, path))
        .ok_or_else(|| ApiError::InvalidResponse {
            endpoint,
            detail: format!(
                "success without a QR code ({})",
                message_text(value).unwrap_or("no message")
            ),
        })?;
    Ok(ApiReply::QrCode {
        qr: decode_qr(&raw).ok_or_else(|| ApiError::InvalidResponse {
            endpoint,
            detail: "the QR code is neither a PNG image nor text".to_owned(),
        })?,
    })
}

enum Status {
    Success,
    Error,
    Other,
}

fn status_word(value: &Value) -> Status {
    match value {
        Value::Bool(true) => Status::Success,
        Value::Bool(false) => Status::Error,
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "success" | "true" | "ok" => Status::Success,
            "error" | "false" | "failed" | "fail" => Status::Error,
            _ => Status::Other,
        },
        _ => Status::Other,
    }
}

fn truthy(value: &Value) -> bool {
    matches!(value, Value::Bool(true)) || value.as_str() == Some("true")
}

/// `message` when it is text (for sends it is usually the sent message object).
fn message_text(value: &Value) -> Option<&str> {
    value
        .get("message")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// The sent message's key id: `message.key.id` (gen-1) or `data.key.id` (gen-2).
fn message_id(value: &Value) -> Option<String> {
    string_at(value, &["message", "key", "id"]).or_else(|| string_at(value, &["data", "key", "id"]))
}

fn string_at(value: &Value, path: &[&str]) -> Option<String> {
    let mut at = value;
    for key in path {
        at = at.get(key)?;
    }
    match at {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A `data:image/png;base64,…` URL or bare base64 PNG becomes the image; anything else is content.
fn decode_qr(raw: &str) -> Option<QrCode> {
    let payload = match raw.split_once(";base64,") {
        Some((prefix, data)) if prefix.starts_with("data:") => data,
        _ => raw,
    };
    let engine = base64::engine::general_purpose::STANDARD;
    match engine.decode(payload.trim()) {
        Ok(bytes) if bytes.starts_with(b"\x89PNG") => Some(QrCode::Png(bytes)),
        _ if raw.starts_with("data:") => None,
        _ => Some(QrCode::Content(raw.to_owned())),
    }
}

/// At most 200 characters of a body, on one line, for an error message.
fn excerpt(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out: String = one_line.chars().take(200).collect();
    if one_line.chars().count() > 200 {
        out.push('…');
    }
    out
}
