//! The baseline: the benchmark's regex-and-forward job with no durability
//! at all, and the parts of that job the floor ([`crate::floor`]) shares:
//! reading a webhook body, which messages it answers, the reply it sends.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

use crate::SECRET;

/// The messages the job answers.
pub fn matcher() -> regex::Regex {
    regex::Regex::new(r"(?i)\b(price|how much)\b").expect("regex")
}

/// The webhook body, when the secret in the path is right and it is JSON.
pub fn read(secret: &str, body: &[u8]) -> Result<Value, StatusCode> {
    if secret != SECRET {
        return Err(StatusCode::NOT_FOUND);
    }
    serde_json::from_slice(body).map_err(|_| StatusCode::BAD_REQUEST)
}

/// An incoming message of a webhook body.
pub struct Incoming {
    pub id: String,
    pub number: String,
    /// Whether the job answers it.
    pub answered: bool,
}

/// The incoming messages of `body` (those this number sent left out).
pub fn incoming(body: &Value, re: &regex::Regex) -> Vec<Incoming> {
    let mut found = Vec::new();
    for m in body["data"]["data"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if m["key"]["fromMe"] == true {
            continue;
        }
        let text = m["message"]["conversation"].as_str().unwrap_or_default();
        let jid = m["key"]["remoteJid"].as_str().unwrap_or_default();
        found.push(Incoming {
            id: m["key"]["id"].as_str().unwrap_or_default().to_owned(),
            number: jid.split('@').next().unwrap_or_default().to_owned(),
            answered: re.is_match(text),
        });
    }
    found
}

/// The API request that answers `number`.
pub fn reply(number: &str) -> Value {
    json!({"number": number, "type": "text", "message": "Our prices: https://shop.example.com/prices", "instance_id": "BENCH", "access_token": "bench-token"})
}

/// Serves `app` on 127.0.0.1:`port`.
pub async fn serve(port: u16, app: Router) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    let _ = axum::serve(listener, app).await;
}

#[derive(Clone)]
struct Baseline {
    re: regex::Regex,
    api: String,
    http: reqwest::Client,
}

/// Serves the baseline on `port`, sending through the API at `api`.
pub async fn baseline(port: u16, api: String) {
    let state = Baseline {
        re: matcher(),
        api,
        http: reqwest::Client::new(),
    };
    let app = Router::new()
        .route("/webhook/{secret}", post(hook))
        .with_state(state);
    serve(port, app).await;
}

async fn hook(
    State(s): State<Baseline>,
    axum::extract::Path(secret): axum::extract::Path<String>,
    body: Bytes,
) -> (StatusCode, String) {
    let v = match read(&secret, &body) {
        Ok(v) => v,
        Err(status) => return (status, String::new()),
    };
    let answered: Vec<String> = incoming(&v, &s.re)
        .into_iter()
        .filter(|m| m.answered)
        .map(|m| m.number)
        .collect();
    let accepted = answered.len();
    for number in answered {
        let (http, api) = (s.http.clone(), s.api.clone());
        tokio::spawn(async move {
            let _ = http
                .post(format!("{api}/send"))
                .json(&reply(&number))
                .send()
                .await;
        });
    }
    (StatusCode::OK, json!({"accepted": accepted}).to_string())
}
