//! [`ServerError`]: every way a request to the listener is refused, with
//! its status and the JSON body that tells the caller what to do.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// The most events (and skipped items) one webhook request may carry. Real
/// bodies carry one to a few hundred; the cap bounds the work of one request.
pub const MAX_EVENTS: usize = 2_000;

/// Why a request is refused.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A webhook path whose secret is wrong (or no secret is configured).
    #[error("not found")]
    NotFound,
    /// A hook call that is not authorized: an unknown hook, a hook without
    /// a secret, a missing, wrong or stale signature all look the same.
    #[error(
        "not authorized: send X-Waflow-Signature: sha256=<hex HMAC-SHA256 of the body> (of \"{{timestamp}}.{{body}}\" with X-Waflow-Timestamp), or ?secret="
    )]
    Unauthorized,
    /// The body is not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(serde_json::Error),
    /// The body holds more events than one request may carry.
    #[error(
        "the body holds {0} events; at most {MAX_EVENTS} are read from one request: send them in smaller batches"
    )]
    TooManyEvents(usize),
    /// The store could not commit the events: nothing was accepted.
    #[error("the store is unavailable; retry later")]
    Store(#[source] StoreError),
    /// A list a rule of the hook reads could not be read: nothing was accepted.
    #[error("a list this hook's rules read could not be read; nothing was accepted: retry later")]
    List(#[source] crate::lists::ListError),
}

impl ServerError {
    fn status(&self) -> StatusCode {
        match self {
            ServerError::NotFound => StatusCode::NOT_FOUND,
            ServerError::Unauthorized => StatusCode::UNAUTHORIZED,
            ServerError::NotJson(_) => StatusCode::BAD_REQUEST,
            ServerError::TooManyEvents(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServerError::Store(_) | ServerError::List(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        if let ServerError::Store(err) = &self {
            tracing::error!(error = %err, "cannot record the events of a request: answered 503");
        }
        if let ServerError::List(err) = &self {
            tracing::error!(error = %err, "cannot read a hook rule's list: answered 503");
        }
        let body = json!({ "error": self.to_string() });
        (self.status(), axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_status() {
        let cases = [
            (ServerError::NotFound, 404),
            (ServerError::Unauthorized, 401),
            (ServerError::Store(StoreError::Closed), 503),
            (ServerError::TooManyEvents(2_001), 413),
        ];
        for (err, status) in cases {
            assert_eq!(err.into_response().status().as_u16(), status);
        }
        let not_json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert_eq!(
            ServerError::NotJson(not_json).into_response().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
