//! Three numbers in one daemon for the tests of instances: shop and
//! support on one mock API, sales on another (its own base_url), each
//! confirmed only with its own token.

use std::path::Path;

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer};

use super::*;

pub const RULES_ALL: &str = r#"rules:
  - name: prices
    on: message
    match: { text: '(?i)price' }
    actions:
      - reply: "Prices of {{ vars.shop }}"
"#;

/// shop and support on mock `a`, sales on mock `b` (its own base_url).
pub fn write_instances(dir: &Path, a: &str, b: &str, port: u16, extra_instances: &str) {
    std::fs::write(
        dir.join("waflow.yaml"),
        format!(
            "api:\n  base_url: {a}/api\n  timeout: 2s\n\
             server:\n  listen: 127.0.0.1:{port}\n  webhook_secret: {SECRET}\n\
             store: waflow.db\nrules: rules\nvars: {{ shop: Main }}\n\
             pacing:\n  min_interval: 0s\n  per_chat: 100/min\n  typing_delay: 0s\n\
             retry:\n  attempts: 3\n  backoff: 200ms\n  max_backoff: 1s\n  relogin_probe: 30s\n\
             safety:\n  quiet_hours: off\n  ban_breaker: {{ pause: 1m }}\n\
             instances:\n\
             \x20 shop:\n    instance_id: SHOP1\n    access_token: tok-shop\n    vars: {{ shop: Shop }}\n\
             \x20 support:\n    instance_id: SUP1\n    access_token: tok-support\n\
             \x20 sales:\n    instance_id: SALES1\n    access_token: tok-sales\n    base_url: {b}/api\n\
             {extra_instances}"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/rules.yaml"), RULES_ALL).unwrap();
}

/// A mock API that confirms every send, naming the token it came with.
pub async fn api_for(tokens: &[&str]) -> MockServer {
    let server = MockServer::start().await;
    for token in tokens {
        Mock::given(method("POST"))
            .and(path("/api/send"))
            .and(body_partial_json(json!({ "access_token": token })))
            .respond_with(sent(&format!("OK-{token}")))
            .mount(&server)
            .await;
    }
    server
}

/// A customer's message to the number of `instance_id`.
pub fn message_to(instance_id: &str, id: &str, from: &str, text: &str) -> Value {
    let mut body = message(id, from, text);
    body["instance_id"] = json!(instance_id);
    body
}

/// (token, number, text) of every send the mock received.
pub async fn sends_by_token(api: &MockServer) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = sends(api, "send")
        .await
        .iter()
        .map(|s| {
            let field = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
            (field("access_token"), field("number"), field("message"))
        })
        .collect();
    out.sort();
    out
}

pub async fn start_three(a: &MockServer, b: &MockServer) -> (Daemon, tempfile::TempDir) {
    start_three_with(a, b, RULES_ALL).await
}

/// The three numbers with `rules` as their one rule file.
pub async fn start_three_with(
    a: &MockServer,
    b: &MockServer,
    rules: &str,
) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_instances(dir.path(), &a.uri(), &b.uri(), port, "");
    std::fs::write(dir.path().join("rules/rules.yaml"), rules).unwrap();
    (start_in(dir.path(), port).await, dir)
}
