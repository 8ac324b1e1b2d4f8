//! The HTTP listener: the API's webhook, generic hooks of other systems,
//! health, readiness and metrics.
//!
//! A webhook request is answered only after its events are committed to the
//! store, so a 200 means "nothing will be lost". This module records; it
//! never evaluates rules or calls the API (the pipeline and the outbox do).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::event::{Event, EventKind, Hook, normalize};
use crate::rules::Trigger;
use crate::runtime::Shared;
use crate::secret::Secret;
use crate::store::NewEvent;

/// The header a hook caller signs its body in: `sha256=<hex HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "x-waflow-signature";

/// The router; `max_body` bounds request bodies (larger ones get 413).
pub fn router(shared: Arc<Shared>, max_body: usize) -> Router {
    Router::new()
        .route("/webhook/{secret}", post(webhook))
        .route("/hooks/{name}", post(hook))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|| async { crate::metrics::render() }))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(shared)
}

/// Counts a request in `Shared::webhooks_busy` while it is answered.
struct Busy<'a>(&'a Shared);

impl<'a> Busy<'a> {
    fn enter(shared: &'a Shared) -> Busy<'a> {
        shared.webhooks_busy.fetch_add(1, Ordering::Relaxed);
        Busy(shared)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.webhooks_busy.fetch_sub(1, Ordering::Relaxed);
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn webhook(
    State(shared): State<Arc<Shared>>,
    Path(secret): Path<String>,
    body: Bytes,
) -> Response {
    let _busy = Busy::enter(&shared);
    let loaded = shared.loaded();
    let config = &loaded.config;
    let valid = config
        .server
        .webhook_secret
        .as_ref()
        .is_some_and(|s| s.matches(secret.as_bytes()));
    if !valid {
        return answer(StatusCode::NOT_FOUND, json!({ "error": "not found" }));
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            metrics::counter!(crate::metrics::EVENTS, "kind" => "invalid", "outcome" => "rejected")
                .increment(1);
            return answer(
                StatusCode::BAD_REQUEST,
                json!({ "error": format!("the body is not JSON: {e}") }),
            );
        }
    };
    let normalized = normalize(parsed);
    if normalized.unknown {
        let name = if normalized.event_name.is_empty() {
            "none".to_owned()
        } else {
            normalized.event_name.clone()
        };
        tracing::debug!(event = %name, "ignored an event kind waflow does not read");
        metrics::counter!(crate::metrics::EVENTS, "kind" => "unknown", "outcome" => "ignored")
            .increment(1);
        return answer(StatusCode::OK, json!({ "accepted": 0 }));
    }
    let configured = config.api.instance_id.clone();
    let records: Vec<NewEvent> = normalized
        .events
        .iter()
        .map(|event| {
            let instance = event
                .instance_id
                .clone()
                .or_else(|| configured.clone())
                .unwrap_or_else(|| "default".into());
            let other = configured.as_ref().is_some_and(|c| *c != instance);
            NewEvent {
                status: if other { "ignored" } else { "new" },
                note: other.then(|| format!("instance {instance} is not the configured one")),
                instance,
                ..NewEvent::of(event)
            }
        })
        .collect();
    match crate::pipeline::record_and_process(&shared, records, normalized.events, |_| Ok(())).await
    {
        Ok(outcomes) => {
            let mut accepted = 0;
            for (kind, outcome) in outcomes {
                if outcome == "accepted" {
                    accepted += 1;
                }
                metrics::counter!(crate::metrics::EVENTS, "kind" => kind, "outcome" => outcome)
                    .increment(1);
            }
            answer(StatusCode::OK, json!({ "accepted": accepted }))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record webhook events");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "the store is unavailable; retry later" }),
            )
        }
    }
}

async fn hook(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _busy = Busy::enter(&shared);
    let loaded = shared.loaded();
    let secret: Option<Secret> = loaded
        .rules
        .rules
        .iter()
        .find_map(|r| match &r.trigger {
            Trigger::Webhook(h) if h.hook == name => Some(h.secret.clone()),
            _ => None,
        })
        .flatten();
    let known = loaded.rules.hook_rules(&name).next().is_some();
    if !known {
        return answer(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no rule listens on hook `{name}`") }),
        );
    }
    let Some(secret) = secret else {
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "this hook has no secret configured" }),
        );
    };
    if !authorized(&secret, &headers, &query, &body) {
        metrics::counter!(crate::metrics::EVENTS, "kind" => "webhook", "outcome" => "unauthorized")
            .increment(1);
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "missing or wrong signature: send X-Waflow-Signature: sha256=<hex HMAC-SHA256 of the body>, or ?secret=" }),
        );
    }
    let parsed: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return answer(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": format!("the body is not JSON: {e}") }),
                );
            }
        }
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
    match crate::pipeline::record_and_process(&shared, vec![record], vec![event], |_| Ok(())).await
    {
        Ok(_) => {
            metrics::counter!(crate::metrics::EVENTS, "kind" => "webhook", "outcome" => "accepted")
                .increment(1);
            answer(StatusCode::ACCEPTED, json!({ "accepted": 1 }))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record a hook call");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "the store is unavailable; retry later" }),
            )
        }
    }
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

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let loaded = shared.loaded();
    let store_ok = shared.store.flush().await.is_ok();
    let paused = shared
        .store
        .call(|c| c.meta_get("sending_paused"))
        .await
        .ok()
        .flatten();
    let body = json!({
        "ready": store_ok,
        "store": if store_ok { "ok" } else { "unavailable" },
        "rules": loaded.rules.rules.len(),
        "dry_run": loaded.config.dry_run,
        "sending": paused.map_or_else(|| "ok".to_owned(), |p| format!("paused: {p}")),
    });
    let status = if store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    answer(status, body)
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
