//! Who may use the console: the password (or its argon2 hash) of
//! `server.console`, or — without one — a login token made at each start
//! and logged once as a ready link. A login makes a session: a random id
//! in an `HttpOnly; SameSite=Strict` cookie, and a CSRF token every form
//! carries. Failed logins are limited (five a minute, for everyone: a
//! guesser cannot try more by opening connections). Sessions live in
//! memory for 12 hours; a restart logs everyone out.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use rand::Rng;
use serde::Deserialize;

use super::ConsoleError;
use crate::config::ConsoleConfig;
use crate::runtime::Shared;
use crate::secret::Secret;

/// The session cookie's name.
const COOKIE: &str = "waflow_console";
/// How long a session lasts.
const SESSION: Duration = Duration::from_secs(12 * 3600);
/// Failed logins allowed per [`FAILURE_WINDOW`].
const FAILURES: usize = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The console's own state: sessions, the login token, failed logins.
pub struct Console {
    sessions: Mutex<HashMap<String, Session>>,
    /// The login token of this start (`None` only if it could not be made).
    token: Option<Secret>,
    failures: Mutex<VecDeque<Instant>>,
}

struct Session {
    csrf: String,
    expires: Instant,
}

/// A logged-in request: its session's CSRF token, for the forms of the page.
pub(super) struct Authed {
    pub(super) csrf: String,
}

/// A logged-in request to a console page, as a handler receives it: the
/// shared state, and the session's CSRF token for the page's forms. Not
/// logged in, it is the way to the login page; with the console off, 404.
pub(super) struct Page {
    pub(super) shared: Arc<Shared>,
    pub(super) csrf: String,
    session: Option<String>,
    console: Arc<Console>,
}

impl axum::extract::FromRequestParts<Arc<Shared>> for Page {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let console = parts
            .extensions
            .get::<Arc<Console>>()
            .cloned()
            .ok_or(ConsoleError::Off)?;
        let Authed { csrf } = authed(shared, &console, &parts.headers)?;
        Ok(Page {
            shared: shared.clone(),
            csrf,
            session: session_id(&parts.headers),
            console,
        })
    }
}

impl Page {
    /// For a state-changing request: its form's `csrf` must be the session's.
    pub(super) fn check(&self, csrf: &str) -> Result<Arc<Shared>, ConsoleError> {
        let expected = Secret::new(self.csrf.clone()).ok_or(ConsoleError::Forbidden)?;
        if !expected.matches(csrf.as_bytes()) {
            return Err(ConsoleError::Forbidden);
        }
        Ok(self.shared.clone())
    }
}

fn random_hex() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

impl Default for Console {
    fn default() -> Self {
        Console {
            sessions: Mutex::new(HashMap::new()),
            token: Secret::new(random_hex()),
            failures: Mutex::new(VecDeque::new()),
        }
    }
}

impl Console {
    /// Logs the ready link when no password is set: the one place the
    /// token is shown, once per start.
    pub fn announce(&self, listen: std::net::SocketAddr, config: Option<&ConsoleConfig>) {
        match config {
            None => tracing::info!("console: off (server.console: off)"),
            Some(c) if c.password.is_none() && c.password_hash.is_none() => {
                let token = self.token.as_ref().map_or("", Secret::expose);
                tracing::info!(
                    "console: no password set (server.console.password); log in at http://{listen}/console/login?token={token}"
                );
            }
            Some(_) => tracing::info!("console: at http://{listen}/console/ (password login)"),
        }
    }

    fn token_matches(&self, given: &str) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| t.matches(given.as_bytes()))
    }

    fn start_session(&self) -> String {
        let id = random_hex();
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(
            id.clone(),
            Session {
                csrf: random_hex(),
                expires: now + SESSION,
            },
        );
        id
    }

    fn csrf_of(&self, id: &str) -> Option<String> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions
            .get(id)
            .filter(|s| s.expires > Instant::now())
            .map(|s| s.csrf.clone())
    }

    fn end_session(&self, id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.remove(id);
    }

    /// Whether another failed login may be tried now.
    fn may_try(&self) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        while failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > FAILURE_WINDOW)
        {
            failures.pop_front();
        }
        failures.len() < FAILURES
    }

    fn failed(&self) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.push_back(Instant::now());
    }
}

/// The console's settings now (they follow reloads); `Off` when it is off.
pub(super) fn settings(shared: &Shared) -> Result<ConsoleConfig, ConsoleError> {
    shared
        .loaded()
        .config
        .server
        .console
        .clone()
        .ok_or(ConsoleError::Off)
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The request's session, or the way to the login page.
pub(super) fn authed(
    shared: &Shared,
    console: &Console,
    headers: &HeaderMap,
) -> Result<Authed, ConsoleError> {
    settings(shared)?;
    let id = session_id(headers).ok_or(ConsoleError::Login)?;
    let csrf = console.csrf_of(&id).ok_or(ConsoleError::Login)?;
    Ok(Authed { csrf })
}

#[derive(Deserialize)]
pub(super) struct TokenQuery {
    token: Option<String>,
}

/// `GET /console/login`: the form, or — with the start's token — straight in.
pub(super) async fn login_page(
    State(shared): State<Arc<Shared>>,
    Extension(console): Extension<Arc<Console>>,
    Query(query): Query<TokenQuery>,
) -> Result<Response, ConsoleError> {
    let config = settings(&shared)?;
    let by_token = config.password.is_none() && config.password_hash.is_none();
    if let Some(token) = &query.token {
        if by_token && console.may_try() && console.token_matches(token) {
            return Ok(logged_in(&console));
        }
        console.failed();
    }
    let page = super::view::render(
        "login.html",
        minijinja::context! { by_token, failed => query.token.is_some() },
    );
    Ok(Html(page).into_response())
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    password: String,
}

/// `POST /console/login`: checks the password (or token), starts a session.
pub(super) async fn login(
    State(shared): State<Arc<Shared>>,
    Extension(console): Extension<Arc<Console>>,
    Form(form): Form<LoginForm>,
) -> Result<Response, ConsoleError> {
    let config = settings(&shared)?;
    if !console.may_try() {
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins: wait a minute",
        )
            .into_response());
    }
    let given = form.password;
    let right = match (&config.password, &config.password_hash) {
        (Some(password), _) => password.matches(given.as_bytes()),
        (None, Some(hash)) => {
            let hash = hash.clone();
            tokio::task::spawn_blocking(move || verify_hash(&hash, &given))
                .await
                .unwrap_or(false)
        }
        (None, None) => console.token_matches(&given),
    };
    if !right {
        console.failed();
        tracing::warn!("console: a failed login");
        let page = super::view::render(
            "login.html",
            minijinja::context! { by_token => config.password.is_none() && config.password_hash.is_none(), failed => true },
        );
        return Ok((StatusCode::UNAUTHORIZED, Html(page)).into_response());
    }
    Ok(logged_in(&console))
}

fn verify_hash(hash: &str, password: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn logged_in(console: &Console) -> Response {
    let id = console.start_session();
    let cookie = format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION.as_secs()
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/console/".to_owned()),
        ],
    )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    csrf: String,
}

/// `POST /console/logout`.
pub(super) async fn logout(
    page: Page,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    page.check(&form.csrf)?;
    if let Some(id) = &page.session {
        page.console.end_session(id);
    }
    let cookie = format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/console/login".to_owned()),
        ],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_argon2_hash_admits_its_password_only() {
        use argon2::PasswordHasher;
        let salt = argon2::password_hash::SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
        let hash = argon2::Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_hash(&hash, "correct horse"));
        assert!(!verify_hash(&hash, "correct horse "));
        assert!(!verify_hash("$argon2id$not-a-hash", "correct horse"));
    }

    #[test]
    fn five_failed_logins_a_minute_then_none() {
        let console = Console::default();
        for _ in 0..FAILURES {
            assert!(console.may_try());
            console.failed();
        }
        assert!(!console.may_try());
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; waflow_console=abc; b=2".parse().unwrap(),
        );
        assert_eq!(session_id(&headers).as_deref(), Some("abc"));
    }
}
