//! `POST /webhook/{secret}`: the API's webhook. Its events are normalized,
//! recorded and processed in one transaction; the answer comes after the
//! commit, so a 200 means nothing will be lost.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Busy, ServerError, answer};
use crate::event::normalize;
use crate::runtime::{Instance, Loaded, Shared};
use crate::store::NewEvent;

/// `POST /webhook/{secret}`: the API's events, 200 once committed.
pub(super) async fn webhook(
    State(shared): State<Arc<Shared>>,
    Path(secret): Path<String>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let _busy = Busy::enter(&shared);
    let loaded = shared.loaded();
    let Some(gate) = gate(&loaded, &secret) else {
        return Err(ServerError::NotFound);
    };
    let parsed: Value = serde_json::from_slice(&body).map_err(|e| {
        metrics::counter!(crate::metrics::EVENTS, "kind" => "invalid", "outcome" => "rejected")
            .increment(1);
        ServerError::NotJson(e)
    })?;
    let normalized = normalize(parsed);
    let items = normalized.events.len() + normalized.skipped.len();
    if items > super::error::MAX_EVENTS {
        metrics::counter!(crate::metrics::EVENTS, "kind" => "too_many", "outcome" => "rejected")
            .increment(1);
        return Err(ServerError::TooManyEvents(items));
    }
    if normalized.unknown {
        let name = if normalized.event_name.is_empty() {
            "none".to_owned()
        } else {
            normalized.event_name.clone()
        };
        tracing::debug!(event = %name, "ignored an event kind waflow does not read");
        metrics::counter!(crate::metrics::EVENTS, "kind" => "unknown", "outcome" => "ignored")
            .increment(1);
        return Ok(answer(StatusCode::OK, json!({ "accepted": 0 })));
    }
    let records: Vec<NewEvent> = normalized
        .events
        .iter()
        .map(|event| match route(&loaded, gate, event.instance_id.as_deref()) {
            Ok(name) => NewEvent::of(name, event),
            Err(note) => {
                metrics::counter!(crate::metrics::EVENTS_IGNORED, "reason" => "unknown_instance")
                    .increment(1);
                let id = event.instance_id.as_deref().unwrap_or("none");
                NewEvent {
                    status: "ignored",
                    note: Some(note),
                    ..NewEvent::of(&format!("unknown:{id}"), event)
                }
            }
        })
        .collect();
    // Labels only ever name configured instances: an id a stranger wrote is not one.
    let labels: Vec<String> = records
        .iter()
        .map(|r| match r.status {
            "ignored" => "unknown".to_owned(),
            _ => r.instance.clone(),
        })
        .collect();
    let outcomes =
        crate::pipeline::record_and_process(&shared, records, normalized.events, |_| Ok(()))
            .await
            .map_err(ServerError::Store)?;
    let mut accepted = 0;
    for ((kind, outcome), instance) in outcomes.into_iter().zip(labels) {
        if outcome == "accepted" {
            accepted += 1;
        }
        metrics::counter!(crate::metrics::EVENTS, "instance" => instance, "kind" => kind, "outcome" => outcome)
            .increment(1);
    }
    Ok(answer(StatusCode::OK, json!({ "accepted": accepted })))
}

/// Which instances a webhook URL's secret admits: every one for
/// `server.webhook_secret`, one for an instance's own `webhook_secret`;
/// `None`: the secret is wrong. Compared in constant time.
fn gate<'a>(loaded: &'a Loaded, secret: &str) -> Option<Option<&'a Instance>> {
    let matches = |s: &Option<crate::secret::Secret>| {
        s.as_ref().is_some_and(|s| s.matches(secret.as_bytes()))
    };
    if matches(&loaded.config.server.webhook_secret) {
        return Some(None);
    }
    let own = loaded
        .config
        .instances
        .iter()
        .find(|i| matches(&i.webhook_secret))?;
    loaded.instance(&own.name).map(|i| Some(i.as_ref()))
}

/// The name of the instance an event is for, by the body's `instance_id`;
/// why not, when no configured instance (that the URL admits) has it.
fn route<'a>(
    loaded: &'a Loaded,
    gate: Option<&'a Instance>,
    id: Option<&str>,
) -> Result<&'a str, String> {
    let found = match id {
        Some(id) => loaded.by_instance_id(id).or_else(|| {
            // One number whose id is not configured yet takes every event.
            let only = (loaded.instances.len() == 1).then(|| &loaded.instances[0]);
            only.filter(|i| i.config.api.instance_id.is_none())
        }),
        None => (loaded.instances.len() == 1).then(|| &loaded.instances[0]),
    };
    match (found, gate) {
        (Some(found), Some(only)) if found.name != only.name => Err(format!(
            "instance {} came in on the webhook URL of instance {}",
            id.unwrap_or("none"),
            only.name
        )),
        (Some(found), _) => Ok(&found.name),
        (None, _) => Err(format!(
            "instance {} is not configured",
            id.unwrap_or("none")
        )),
    }
}
