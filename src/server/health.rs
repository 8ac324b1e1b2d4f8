//! `GET /readyz`: whether the store takes a real write (a commit, as a
//! webhook needs), which rules are loaded, and whether sending is paused.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::answer;
use crate::runtime::Shared;

/// `GET /readyz`.
pub(super) async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let loaded = shared.loaded();
    let now = shared.now().as_millisecond().to_string();
    let probe = shared
        .store
        .call(move |c| c.meta_set("ready_probe", Some(&now)))
        .await;
    if let Err(err) = &probe {
        tracing::warn!(error = %err, "readiness: the store cannot commit");
    }
    let store_ok = probe.is_ok();
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
