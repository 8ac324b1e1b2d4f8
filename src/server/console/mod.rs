//! The web console under `/console/` (SPEC §8): the person who runs a
//! number sees every conversation live, why the bot did what it did, and
//! mends what went wrong — retry or drop a send, opt someone in or out,
//! answer by hand, log the number in again.
//!
//! Server-rendered pages ([`view`]: minijinja templates with HTML escaping
//! of everything a stranger wrote), one small script of our own for live
//! updates ([`live`]), all embedded in the binary. Access ([`auth`]): a
//! password, its argon2 hash, or a login token logged at start; an
//! `HttpOnly; SameSite=Strict` session cookie; a CSRF token on every POST;
//! rate-limited logins; a Content-Security-Policy without inline scripts.
//! Pages read the store ([`pages`]); the few writes ([`actions`]) are the
//! store's own operations (a reply is an outbox row like any send).

mod actions;
mod auth;
mod live;
mod pages;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub(super) use auth::Console;

use crate::runtime::Shared;

/// The security headers of every console answer.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, under `/console/`.
pub(super) fn router(console: Arc<Console>) -> Router<Arc<Shared>> {
    let pages = Router::new()
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/chats", get(pages::chats))
        .route("/chat", get(pages::chat))
        .route("/chat/timeline", get(pages::timeline))
        .route("/chat/live", get(live::changes))
        .route("/reply", post(actions::reply))
        .route("/outbox", get(pages::outbox))
        .route("/outbox/retry", post(actions::retry))
        .route("/outbox/drop", post(actions::drop_row))
        .route("/optouts", get(pages::optouts))
        .route("/optouts/add", post(actions::opt_out))
        .route("/optouts/remove", post(actions::opt_in))
        .route("/rules", get(pages::rules))
        .route("/qr", get(pages::qr))
        .route("/assets/console.css", get(view::css))
        .route("/assets/console.js", get(view::js));
    let mut routes = Router::new().route(
        "/console",
        get(|| async { axum::response::Redirect::permanent("/console/") }),
    );
    // `/console/` itself, and every page below it.
    routes = routes.route("/console/", get(pages::overview));
    routes
        .nest("/console", pages)
        .layer(axum::middleware::from_fn(secure_headers))
        .layer(axum::Extension(console))
}

/// CSP, no sniffing, no referrer, no caching, no framing.
async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// What a console request can fail with: each is a page of its own.
#[derive(Debug)]
pub(super) enum ConsoleError {
    /// The console is off (`server.console: off`).
    Off,
    /// Not logged in: to the login page.
    Login,
    /// A POST without the session's CSRF token.
    Forbidden,
    /// Bad input, with what to do.
    Bad(String),
    /// The store failed.
    Store(crate::store::StoreError),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::Off => StatusCode::NOT_FOUND.into_response(),
            ConsoleError::Login => (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, "/console/login")],
            )
                .into_response(),
            ConsoleError::Forbidden => (
                StatusCode::FORBIDDEN,
                "the form is stale or did not come from the console: reload the page",
            )
                .into_response(),
            ConsoleError::Bad(why) => (StatusCode::BAD_REQUEST, why).into_response(),
            ConsoleError::Store(err) => {
                tracing::error!(error = %err, "console: the store failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the store is unavailable; retry later",
                )
                    .into_response()
            }
        }
    }
}

impl From<crate::store::StoreError> for ConsoleError {
    fn from(err: crate::store::StoreError) -> Self {
        ConsoleError::Store(err)
    }
}
