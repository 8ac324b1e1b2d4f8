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
use crate::runtime::Shared;
use crate::store::NewEvent;

/// `POST /webhook/{secret}`: the API's events, 200 once committed.
pub(super) async fn webhook(
    State(shared): State<Arc<Shared>>,
    Path(secret): Path<String>,
    body: Bytes,
) -> Result<Response, ServerError> {
    let _busy = Busy::enter(&shared);
    let loaded = shared.loaded();
    let config = &loaded.config;
    let valid = config
        .server
        .webhook_secret
        .as_ref()
        .is_some_and(|s| s.matches(secret.as_bytes()));
    if !valid {
        return Err(ServerError::NotFound);
    }
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
    let outcomes =
        crate::pipeline::record_and_process(&shared, records, normalized.events, |_| Ok(()))
            .await
            .map_err(ServerError::Store)?;
    let mut accepted = 0;
    for (kind, outcome) in outcomes {
        if outcome == "accepted" {
            accepted += 1;
        }
        metrics::counter!(crate::metrics::EVENTS, "kind" => kind, "outcome" => outcome)
            .increment(1);
    }
    Ok(answer(StatusCode::OK, json!({ "accepted": accepted })))
}
