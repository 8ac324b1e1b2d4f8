//! `POST /hooks/{name}`: generic webhooks of other systems for the rules
//! with `on: webhook`, authorized by an HMAC-SHA256 signature of the body
//! (or `?secret=`), checked in constant time.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Busy, ServerError, answer};
use crate::event::{Event, EventKind, Hook};
use crate::rules::{RuleSet, Trigger};
use crate::runtime::Shared;
use crate::secret::Secret;
use crate::store::NewEvent;

/// The header a hook caller signs its body in: `sha256=<hex HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "x-waflow-signature";

/// `POST /hooks/{name}`: a call of another system, 202 once committed.
pub(super) async fn hook(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServerError> {
    let _busy = Busy::enter(&shared);
    let loaded = shared.loaded();
    check_caller(&loaded.rules, &name, &headers, &query, &body)?;
    let parsed: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(ServerError::NotJson)?
    };
    let header_map: serde_json::Map<String, Value> = headers
        .iter()
        .filter(|(k, _)| k.as_str() != SIGNATURE_HEADER && k.as_str() != "authorization")
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_owned(),
                Value::String(v.to_str().ok()?.to_owned()),
            ))
        })
        .collect();
    let query_map: serde_json::Map<String, Value> = query
        .into_iter()
        .filter(|(k, _)| k != "secret")
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let event = Event {
        instance_id: loaded.config.api.instance_id.clone(),
        kind: EventKind::Hook(Hook {
            name: name.clone(),
            body: parsed.clone(),
            headers: header_map,
            query: query_map,
            id: format!("{:032x}", rand::rng().random::<u128>()),
        }),
        raw: parsed,
    };
    let record = NewEvent::of(&event);
    crate::pipeline::record_and_process(&shared, vec![record], vec![event], |_| Ok(()))
        .await
        .map_err(ServerError::Store)?;
    metrics::counter!(crate::metrics::EVENTS, "kind" => "webhook", "outcome" => "accepted")
        .increment(1);
    Ok(answer(StatusCode::ACCEPTED, json!({ "accepted": 1 })))
}

/// Whether a rule listens on hook `name` and the caller proved it knows
/// that hook's secret.
fn check_caller(
    rules: &RuleSet,
    name: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
) -> Result<(), ServerError> {
    if rules.hook_rules(name).next().is_none() {
        return Err(ServerError::UnknownHook(name.to_owned()));
    }
    let secret = rules
        .rules
        .iter()
        .find_map(|r| match &r.trigger {
            Trigger::Webhook(h) if h.hook == name => Some(h.secret.as_ref()),
            _ => None,
        })
        .flatten()
        .ok_or(ServerError::NoHookSecret)?;
    if !authorized(secret, headers, query, body) {
        metrics::counter!(crate::metrics::EVENTS, "kind" => "webhook", "outcome" => "unauthorized")
            .increment(1);
        return Err(ServerError::Unauthorized);
    }
    Ok(())
}

/// The signature header (HMAC-SHA256 of the body) or `?secret=`, checked in constant time.
fn authorized(
    secret: &Secret,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
) -> bool {
    if let Some(signature) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) {
        let hex_part = signature
            .trim()
            .strip_prefix("sha256=")
            .unwrap_or(signature.trim());
        let Ok(expected) = hex::decode(hex_part) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
            return false;
        };
        mac.update(body);
        // verify_slice compares in constant time.
        return mac.verify_slice(&expected).is_ok();
    }
    query
        .get("secret")
        .is_some_and(|s| secret.matches(s.as_bytes()))
}

/// `sha256=<hex>` for `body` under `secret`: what a hook caller sends.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this never returns early.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify() {
        let secret = Secret::new("s3cret").unwrap();
        let body = br#"{"id":1}"#;
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, sign("s3cret", body).parse().unwrap());
        assert!(authorized(&secret, &headers, &HashMap::new(), body));
        assert!(!authorized(&secret, &headers, &HashMap::new(), b"{}"));
        headers.insert(SIGNATURE_HEADER, sign("wrong", body).parse().unwrap());
        assert!(!authorized(&secret, &headers, &HashMap::new(), body));
        let query = HashMap::from([("secret".to_owned(), "s3cret".to_owned())]);
        assert!(authorized(&secret, &HeaderMap::new(), &query, body));
        assert!(!authorized(
            &secret,
            &HeaderMap::new(),
            &HashMap::new(),
            body
        ));
    }
}
