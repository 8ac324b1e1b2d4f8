//! `POST /hooks/{name}`: generic webhooks of other systems for the rules
//! with `on: webhook`, authorized by an HMAC-SHA256 signature of the body
//! (or `?secret=`), checked in constant time.
//!
//! A caller may sign a timestamp with the body (`X-Waflow-Timestamp`), so a
//! recorded call cannot be replayed later, and may name its call
//! (`Idempotency-Key`), so a retry is the same event. An unknown hook and a
//! bad signature get the same answer: a caller cannot probe hook names.

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
use crate::runtime::{Instance, Loaded, Shared};
use crate::secret::Secret;
use crate::store::NewEvent;

/// The header a hook caller signs its body in: `sha256=<hex HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "x-waflow-signature";

/// Unix seconds of the call; when present, the signature covers `"{timestamp}.{body}"`.
pub const TIMESTAMP_HEADER: &str = "x-waflow-timestamp";

/// A caller's name for its call: the same key is the same event.
const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// How far a signed timestamp may be from the daemon's clock, either way.
const TIMESTAMP_TOLERANCE_S: i64 = 300;

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
    let now = shared.now().as_second();
    let targets = callers_instances(&loaded, &name, &headers, &query, &body, now)?;
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
    let id = call_id(&headers);
    let lists = read_lists(&shared, &targets, &name).await?;
    // One event per instance whose rules listen on this hook.
    let events: Vec<Event> = targets
        .iter()
        .map(|instance| Event {
            instance_id: instance.config.api.instance_id.clone(),
            kind: EventKind::Hook(Hook {
                name: name.clone(),
                body: parsed.clone(),
                headers: header_map.clone(),
                query: query_map.clone(),
                id: id.clone(),
                lists: lists
                    .iter()
                    .filter(|(rule, _)| {
                        instance
                            .rules
                            .rule(rule)
                            .is_some_and(|r| r.serves(&instance.name))
                    })
                    .map(|(rule, list)| (rule.clone(), list.clone()))
                    .collect(),
            }),
            raw: parsed.clone(),
        })
        .collect();
    let records = targets
        .iter()
        .zip(&events)
        .map(|(instance, event)| NewEvent::of(&instance.name, event))
        .collect();
    let outcomes = crate::pipeline::record_and_process(&shared, records, events, |_| Ok(()))
        .await
        .map_err(ServerError::Store)?;
    let duplicate = outcomes.iter().all(|(_, outcome)| *outcome == "duplicate");
    let outcome = if duplicate { "duplicate" } else { "accepted" };
    metrics::counter!(crate::metrics::EVENTS, "kind" => "webhook", "outcome" => outcome)
        .increment(1);
    let body = if duplicate {
        json!({ "accepted": 0, "duplicate": true })
    } else {
        json!({ "accepted": 1 })
    };
    Ok(answer(StatusCode::ACCEPTED, body))
}

/// The lists of the hook's `for_each` rules that come from a file or URL,
/// read whole before the call is recorded, by rule name: a list that cannot
/// be read fails the call (503: the caller retries), never half a list.
async fn read_lists(
    shared: &Shared,
    targets: &[Arc<Instance>],
    hook: &str,
) -> Result<std::collections::BTreeMap<String, crate::event::list::List>, ServerError> {
    let mut lists = std::collections::BTreeMap::new();
    for instance in targets {
        for rule in &instance.rules.rules {
            let listens = matches!(&rule.trigger, Trigger::Webhook(h) if h.hook == hook);
            let Some(each) = rule
                .for_each
                .as_ref()
                .filter(|e| listens && e.source.is_external())
            else {
                continue;
            };
            if lists.contains_key(&rule.name) {
                continue;
            }
            let list = crate::lists::load(&each.source, &shared.list_client)
                .await
                .map_err(ServerError::List)?;
            lists.insert(rule.name.clone(), list);
        }
    }
    Ok(lists)
}

/// The call's id: from its `Idempotency-Key` (hashed, so any key is a safe
/// id and the same key gives the same event), else random.
fn call_id(headers: &HeaderMap) -> String {
    use sha2::Digest;
    match headers.get(IDEMPOTENCY_HEADER).map(|v| v.as_bytes()) {
        Some(key) if !key.is_empty() => {
            let digest = Sha256::digest(key);
            format!("key-{}", hex::encode(&digest[..16]))
        }
        _ => format!("{:032x}", rand::rng().random::<u128>()),
    }
}

/// Whether a rule listens on hook `name` and the caller proved it knows
/// that hook's secret. Every refusal is the same [`ServerError::Unauthorized`];
/// the log says which it was.
fn callers_instances(
    loaded: &Loaded,
    name: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
    now: i64,
) -> Result<Vec<Arc<Instance>>, ServerError> {
    let mut why = "no rule listens on this hook";
    let mut targets = Vec::new();
    // Instances alike share one rule set: its signature is checked once.
    let mut checked: Vec<(&Arc<RuleSet>, Result<(), &'static str>)> = Vec::new();
    for instance in &loaded.instances {
        if !instance
            .rules
            .hook_rules(name)
            .any(|r| r.serves(&instance.name))
        {
            continue;
        }
        let set = &instance.rules;
        let verdict = match checked.iter().find(|(s, _)| Arc::ptr_eq(s, set)) {
            Some((_, verdict)) => *verdict,
            None => {
                let verdict = check_caller(&instance.rules, name, headers, query, body, now);
                checked.push((set, verdict));
                verdict
            }
        };
        match verdict {
            Ok(()) => targets.push(instance.clone()),
            Err(reason) => why = reason,
        }
    }
    if targets.is_empty() {
        tracing::info!(hook = %name, reason = why, "hook call refused: 401");
        metrics::counter!(crate::metrics::EVENTS, "kind" => "webhook", "outcome" => "unauthorized")
            .increment(1);
        return Err(ServerError::Unauthorized);
    }
    Ok(targets)
}

/// Whether the caller proves it knows the secret of the hook in `rules`; why not.
fn check_caller(
    rules: &RuleSet,
    name: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let secret = rules.rules.iter().find_map(|r| match &r.trigger {
        Trigger::Webhook(h) if h.hook == name => h.secret.as_ref(),
        _ => None,
    });
    let Some(secret) = secret else {
        return Err("the hook's rules name no secret");
    };
    authorized(secret, headers, query, body, now)
}

/// The signature header or `?secret=`, checked in constant time; why not.
fn authorized(
    secret: &Secret,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let Some(signature) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
        let known = query
            .get("secret")
            .is_some_and(|s| secret.matches(s.as_bytes()));
        return if known {
            Ok(())
        } else {
            Err("no signature and no valid ?secret=")
        };
    };
    let timestamp = match headers.get(TIMESTAMP_HEADER) {
        None => None,
        Some(v) => {
            let Some(ts) = v.to_str().ok().and_then(|t| t.trim().parse::<i64>().ok()) else {
                return Err("the timestamp is not Unix seconds");
            };
            if now.abs_diff(ts) > TIMESTAMP_TOLERANCE_S.unsigned_abs() {
                return Err("the signed timestamp is stale (or from the future)");
            }
            Some(ts)
        }
    };
    let hex_part = signature.trim();
    let hex_part = hex_part.strip_prefix("sha256=").unwrap_or(hex_part);
    let Ok(expected) = hex::decode(hex_part) else {
        return Err("the signature is not hex");
    };
    let Some(mut mac) = mac_of(secret.expose(), timestamp) else {
        return Err("the secret cannot key a MAC");
    };
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected).map_err(|_| "wrong signature")
}

/// The MAC a signature is checked against: over the body, or over
/// `"{timestamp}.{body}"` when a timestamp is signed.
/// (HMAC accepts keys of any length, so it is always `Some`.)
fn mac_of(secret: &str, timestamp: Option<i64>) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    if let Some(ts) = timestamp {
        mac.update(format!("{ts}.").as_bytes());
    }
    Some(mac)
}

/// `sha256=<hex>` for `body` under `secret`: what a hook caller sends.
pub fn sign(secret: &str, body: &[u8]) -> String {
    finish(mac_of(secret, None), body)
}

/// `sha256=<hex>` over `"{timestamp}.{body}"`: the signature to send with
/// `X-Waflow-Timestamp: {timestamp}`.
pub fn sign_at(secret: &str, timestamp: i64, body: &[u8]) -> String {
    finish(mac_of(secret, Some(timestamp)), body)
}

fn finish(mac: Option<Hmac<Sha256>>, body: &[u8]) -> String {
    let Some(mut mac) = mac else {
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
        let none = HashMap::new();
        let ok = |h: &HeaderMap, q: &HashMap<String, String>, b: &[u8]| {
            authorized(&secret, h, q, b, 1_000_000).is_ok()
        };
        let body = br#"{"id":1}"#;
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, sign("s3cret", body).parse().unwrap());
        assert!(ok(&headers, &none, body));
        assert!(!ok(&headers, &none, b"{}"));
        headers.insert(SIGNATURE_HEADER, sign("wrong", body).parse().unwrap());
        assert!(!ok(&headers, &none, body));
        let query = HashMap::from([("secret".to_owned(), "s3cret".to_owned())]);
        assert!(ok(&HeaderMap::new(), &query, body));
        assert!(!ok(&HeaderMap::new(), &none, body));
    }

    #[test]
    fn a_signed_timestamp_must_be_recent_and_is_part_of_the_signature() {
        let secret = Secret::new("s3cret").unwrap();
        let body = br#"{"id":1}"#;
        let at = |ts: i64, signed: String| {
            let mut h = HeaderMap::new();
            h.insert(SIGNATURE_HEADER, signed.parse().unwrap());
            h.insert(TIMESTAMP_HEADER, ts.to_string().parse().unwrap());
            authorized(&secret, &h, &HashMap::new(), body, 1_000_000)
        };
        assert!(at(1_000_000, sign_at("s3cret", 1_000_000, body)).is_ok());
        assert!(at(999_800, sign_at("s3cret", 999_800, body)).is_ok());
        // Stale, from the future, or the timestamp changed under the signature.
        assert!(at(999_000, sign_at("s3cret", 999_000, body)).is_err());
        assert!(at(1_000_400, sign_at("s3cret", 1_000_400, body)).is_err());
        assert!(at(1_000_001, sign_at("s3cret", 1_000_000, body)).is_err());
        // A body-only signature does not hold once a timestamp is sent.
        assert!(at(1_000_000, sign("s3cret", body)).is_err());
    }

    #[test]
    fn the_same_idempotency_key_gives_the_same_id() {
        let mut h = HeaderMap::new();
        h.insert(IDEMPOTENCY_HEADER, "order-77".parse().unwrap());
        assert_eq!(call_id(&h), call_id(&h));
        assert!(call_id(&h).starts_with("key-"));
        assert_ne!(call_id(&HeaderMap::new()), call_id(&HeaderMap::new()));
    }
}
