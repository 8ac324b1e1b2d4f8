//! `GET /readyz`: whether the store takes a real write (a commit, as a
//! webhook needs), which rules are loaded, and whether sending is paused,
//! over all and per instance.

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
    let mut detail = serde_json::Map::new();
    let mut paused_any = None;
    for instance in &loaded.instances {
        let key =
            crate::store::meta::instance_key(&instance.name, crate::store::meta::SENDING_PAUSED);
        let paused = shared
            .store
            .call_lazy(move |c| c.meta_get(&key))
            .await
            .ok()
            .flatten();
        let sending = paused.map_or_else(|| "ok".to_owned(), |p| format!("paused: {p}"));
        if sending != "ok" && paused_any.is_none() {
            paused_any = Some(sending.clone());
        }
        detail.insert(
            instance.name.clone(),
            json!({
                "rules": instance.rules.rules.len(),
                "dry_run": instance.config.dry_run,
                "sending": sending,
            }),
        );
    }
    let body = json!({
        "ready": store_ok,
        "store": if store_ok { "ok" } else { "unavailable" },
        "rules": loaded.instances.iter().map(|i| i.rules.rules.len()).max().unwrap_or(0),
        "dry_run": loaded.instances.iter().all(|i| i.config.dry_run),
        "sending": paused_any.unwrap_or_else(|| "ok".to_owned()),
        "instances": detail,
    });
    let status = if store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    answer(status, body)
}
