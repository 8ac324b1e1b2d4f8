//! The HTTP listener: the API's webhook ([`webhook`]), generic hooks of
//! other systems ([`hooks`]), health, readiness ([`health`]), metrics, and
//! the operator's web console ([`console`]).
//! Refusals are [`ServerError`]s.
//!
//! A webhook request is answered only after its events are committed to the
//! store, so a 200 means "nothing will be lost". This module records; it
//! never evaluates rules or calls the API (the pipeline and the outbox do).

mod console;
mod error;
mod health;
mod hooks;
mod listen;
mod webhook;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

pub use error::ServerError;
pub use hooks::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, sign_at};
pub use listen::{Limits, serve};

use crate::runtime::Shared;

/// The router; `max_body` bounds request bodies (larger ones get 413).
pub fn router(shared: Arc<Shared>, max_body: usize) -> Router {
    let console = Arc::new(console::Console::default());
    let config = &shared.loaded().config;
    console.announce(config.server.listen, config.server.console.as_ref());
    Router::new()
        .merge(console::router(console))
        .route("/webhook/{secret}", post(webhook::webhook))
        .route("/hooks/{name}", post(hooks::hook))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(health::readyz))
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
