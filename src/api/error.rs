//! Everything that can go wrong talking to the remote API, and what to do about it.
//!
//! Each error says which endpoint failed and why, in words a user can act on,
//! and [`ApiError::class`] tells the outbox whether to retry, give up, or stop
//! all sending until a person logs the number in again. No error ever holds a
//! URL (it would carry the access token) or the token itself.

/// How the caller should react to an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A later attempt may succeed: connection errors, timeouts, 5xx, "try again later".
    Retryable,
    /// Retrying will not help: a rejected parameter, a bad token, the monthly quota.
    Permanent,
    /// The WhatsApp session is logged out; nothing can be sent until the QR code is scanned.
    Relogin,
    /// The API or WhatsApp is limiting this number; slow down before trying again.
    RateLimited,
}

/// An error from one API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// A required setting is missing from the config.
    #[error("{endpoint}: {what} is not set in the config")]
    NotConfigured {
        /// The endpoint that was to be called.
        endpoint: &'static str,
        /// The missing setting, e.g. `api.instance_id`.
        what: &'static str,
    },
    /// No answer within the configured timeout.
    #[error("{endpoint}: the API did not answer within {seconds}s")]
    Timeout {
        /// The endpoint.
        endpoint: &'static str,
        /// The timeout that ran out.
        seconds: u64,
    },
    /// The connection could not be made or broke.
    #[error("{endpoint}: cannot reach the API: {detail}")]
    Connect {
        /// The endpoint.
        endpoint: &'static str,
        /// The network error, without the URL.
        detail: String,
    },
    /// An HTTP status other than 2xx.
    #[error("{endpoint}: the API answered HTTP {status}{}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Http {
        /// The endpoint.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The API's message, when the body carried one.
        message: Option<String>,
    },
    /// The PHP front answered `[]`: its WhatsApp server behind it is down.
    #[error("{endpoint}: the API's WhatsApp server is down (it answered `[]`); waflow will retry")]
    BackendDown {
        /// The endpoint.
        endpoint: &'static str,
    },
    /// The WhatsApp session is logged out.
    #[error(
        "{endpoint}: the WhatsApp number is logged out ({message}); run `waflow instance qrcode` and scan the code with the phone"
    )]
    ReloginRequired {
        /// The endpoint.
        endpoint: &'static str,
        /// The API's words.
        message: String,
    },
    /// The monthly message quota of the API plan is used up.
    #[error(
        "{endpoint}: the monthly message quota is used up ({message}); upgrade the plan or wait for the next month"
    )]
    QuotaExceeded {
        /// The endpoint.
        endpoint: &'static str,
        /// The API's words.
        message: String,
    },
    /// The API or WhatsApp limits how fast this number may send.
    #[error("{endpoint}: rate limited: {message}")]
    RateLimited {
        /// The endpoint.
        endpoint: &'static str,
        /// The API's words.
        message: String,
    },
    /// The API answered `"status":"error"` with a message.
    #[error("{endpoint}: the API refused: {message}")]
    Refused {
        /// The endpoint.
        endpoint: &'static str,
        /// The API's words.
        message: String,
        /// Whether the words mean "try again later".
        retryable: bool,
    },
    /// A send answered "success" without a message key id: not a confirmed send.
    #[error(
        "{endpoint}: the API answered success but without a message id ({detail}); the message is not confirmed as sent"
    )]
    NotConfirmed {
        /// The endpoint.
        endpoint: &'static str,
        /// What the body held instead.
        detail: String,
    },
    /// A body that is not any shape the API is known to answer with.
    #[error("{endpoint}: unexpected answer from the API: {detail}")]
    InvalidResponse {
        /// The endpoint.
        endpoint: &'static str,
        /// A short, token-free excerpt or description.
        detail: String,
    },
}

impl ApiError {
    /// Whether WhatsApp or the plan limits this number: rate-limited,
    /// restricted, or the monthly quota used up. Sending more makes it worse
    /// (or is useless) until it passes, so all sending should pause.
    pub fn is_ban_signal(&self) -> bool {
        self.class() == ErrorClass::RateLimited || matches!(self, ApiError::QuotaExceeded { .. })
    }

    /// How the caller should react.
    pub fn class(&self) -> ErrorClass {
        match self {
            ApiError::Timeout { .. }
            | ApiError::Connect { .. }
            | ApiError::BackendDown { .. }
            | ApiError::NotConfirmed { .. }
            | ApiError::InvalidResponse { .. } => ErrorClass::Retryable,
            ApiError::Http { status, .. } => match status {
                429 => ErrorClass::RateLimited,
                // A redirect is not followed (it would carry the token to
                // another host): the base URL needs fixing.
                408 | 425 | 500..=599 => ErrorClass::Retryable,
                _ => ErrorClass::Permanent,
            },
            ApiError::Refused { retryable, .. } => {
                if *retryable {
                    ErrorClass::Retryable
                } else {
                    ErrorClass::Permanent
                }
            }
            ApiError::ReloginRequired { .. } => ErrorClass::Relogin,
            ApiError::RateLimited { .. } => ErrorClass::RateLimited,
            ApiError::NotConfigured { .. } | ApiError::QuotaExceeded { .. } => {
                ErrorClass::Permanent
            }
        }
    }

    /// Whether a later identical attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }
}

/// The longest piece of an API's own text kept in an error (and so in logs
/// and the store).
pub(crate) const MAX_TEXT: usize = 300;

/// `text` on one line and at most [`MAX_TEXT`] characters: an answer may
/// be huge or hold line breaks that would forge log lines.
pub(crate) fn clip(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_TEXT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX_TEXT).is_some() {
        out.push('…');
    }
    out
}

/// Sorts an error message of the API into the error it means.
pub(crate) fn classify_message(endpoint: &'static str, message: String) -> ApiError {
    let lower = message.to_lowercase();
    let message = clip(&message);
    if lower.contains("relogin") || lower.contains("logged out") {
        return ApiError::ReloginRequired { endpoint, message };
    }
    if lower.contains("per month") || lower.contains("maximum limit") {
        return ApiError::QuotaExceeded { endpoint, message };
    }
    // WhatsApp's own limits, relayed by some backends: 429 "rate-overlimit",
    // 463 and 475 (new-chat and spam restrictions).
    if lower.contains("rate-overlimit")
        || lower.contains("rate limit")
        || lower.contains("too many")
        || lower.contains("restricted")
        || has_code(&lower, "429")
        || has_code(&lower, "463")
        || has_code(&lower, "475")
    {
        return ApiError::RateLimited { endpoint, message };
    }
    let retryable = [
        "try again",
        "later",
        "timed out",
        "timeout",
        "disconnected",
        "session not found",
        "cannot connect",
        "connection closed",
        "not ready",
    ]
    .iter()
    .any(|needle| lower.contains(needle));
    ApiError::Refused {
        endpoint,
        message,
        retryable,
    }
}

/// Whether `code` stands in `text` as a number of its own, not inside a longer one.
fn has_code(text: &str, code: &str) -> bool {
    text.match_indices(code).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_classified() {
        let class = |m: &str| classify_message("send", m.to_owned()).class();
        assert_eq!(
            class("This WhatsApp account relogin required"),
            ErrorClass::Relogin
        );
        assert_eq!(
            class("The number of messages you have sent per month has exceeded the maximum limit"),
            ErrorClass::Permanent
        );
        assert_eq!(class("rate-overlimit"), ErrorClass::RateLimited);
        assert_eq!(class("error 463"), ErrorClass::RateLimited);
        assert_eq!(
            class("This account is restricted from messaging new contacts"),
            ErrorClass::RateLimited
        );
        assert!(
            classify_message("send", "exceeded the maximum limit".into()).is_ban_signal()
                && classify_message("send", "rate-overlimit".into()).is_ban_signal()
                && !classify_message("send", "Phone number is required".into()).is_ban_signal()
        );
        assert_eq!(class("id 14630"), ErrorClass::Permanent);
        assert_eq!(
            class("Cannot connect to WhatsApp server. Please try again later"),
            ErrorClass::Retryable
        );
        assert_eq!(class("Phone number is required"), ErrorClass::Permanent);
        assert_eq!(class("Access token does not exist"), ErrorClass::Permanent);
    }
}
