//! What the black-box tests of the daemon share: starting the real binary in
//! a temporary folder, a mock of the remote API, webhook bodies, and waiting
//! for sends. Each test binary uses a part of it.
#![allow(dead_code)]

pub mod numbers;
pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const SECRET: &str = "s3cret";
pub const HOOK_SECRET: &str = "hook-secret";

pub const RULES: &str = r#"rules:
  - name: prices
    on: message
    match: { text: '(?i)price' }
    actions:
      - reply: "Prices: 15 EUR"
  - name: shipped
    on: webhook
    hook: shop
    secret: hook-secret
    if: "body.status == 'shipped'"
    actions:
      - send: { to: "{{ body.customer.phone }}", text: "Order {{ body.id }} shipped", allow_cold: true }
"#;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Daemon {
    pub child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

impl Daemon {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        Command::new("kill").args([sig, &pid]).status().unwrap();
    }

    pub fn kill9(&mut self) {
        self.signal("-KILL");
        let _ = self.child.take().unwrap().wait();
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits (up to 10 s) until the daemon's log contains `needle`.
pub async fn wait_for_log(d: &Daemon, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.log().contains(needle) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes the config (with `extra` YAML appended) and rules into `dir`.
pub fn write_config(dir: &Path, api: &str, port: u16, extra: &str) {
    // Quiet hours would make tests depend on the time of day they run at;
    // only the tests about them turn them on.
    let extra = if extra.contains("quiet_hours") {
        extra.to_owned()
    } else if extra.contains("safety:\n") {
        extra.replace("safety:\n", "safety:\n  quiet_hours: off\n")
    } else {
        format!("{extra}safety:\n  quiet_hours: off\n")
    };
    let store = store_address();
    std::fs::write(
        dir.join("waflow.yaml"),
        format!(
            "api:\n  base_url: {api}/api\n  instance_id: I1\n  access_token: tok-secret\n  timeout: 2s\n\
             server:\n  listen: 127.0.0.1:{port}\n  webhook_secret: {SECRET}\n  max_body: 4KiB\n\
             store: {store}\nrules: rules\n\
             pacing:\n  min_interval: 0s\n  per_chat: 100/min\n  typing_delay: 0s\n\
             retry:\n  attempts: 3\n  backoff: 200ms\n  max_backoff: 1s\n  relogin_probe: 500ms\n{extra}"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/rules.yaml"), RULES).unwrap();
}

/// The store a daemon of the tests runs on: `waflow.db` beside its
/// config, or, in the test binary `on_postgres` (the same tests again), a
/// new database on the tests' PostgreSQL server.
pub fn store_address() -> String {
    if env!("CARGO_CRATE_NAME") != "on_postgres" {
        return "waflow.db".into();
    }
    // Without PostgreSQL (and not required): SQLite again, after a note.
    postgres::database().unwrap_or_else(|| "waflow.db".into())
}

pub async fn start_in(dir: &Path, port: u16) -> Daemon {
    start_with(dir, port, &[]).await
}

/// Starts the daemon with extra environment variables (the test clock).
pub async fn start_with(dir: &Path, port: u16, env: &[(&str, &str)]) -> Daemon {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_waflow"))
        .current_dir(dir)
        .envs(env.iter().copied())
        .env_remove("WAFLOW_CONFIG")
        .env("RUST_LOG", "waflow=debug")
        .args(["-c", "waflow.yaml", "--log-format", "json", "run"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let daemon = Daemon {
        child: Some(child),
        port,
        dir: dir.to_owned(),
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if reqwest::get(daemon.url("/healthz")).await.is_ok() {
            return daemon;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the daemon did not start:\n{}", daemon.log());
}

pub async fn start(api: &MockServer, extra: &str) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, extra);
    (start_in(dir.path(), port).await, dir)
}

pub fn sent(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string(
        json!({"status":"success","message":{"key":{"remoteJid":"x@c.us","fromMe":true,"id":id}}})
            .to_string(),
    )
}

pub async fn api_ok() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/send"))
        .respond_with(sent("BAE5OK"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/send_group"))
        .respond_with(sent("BAE5GRP"))
        .mount(&server)
        .await;
    server
}

/// Answers a send like the API and notes when it came.
pub struct Timed(pub Arc<Mutex<Vec<Instant>>>);

impl Respond for Timed {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().push(Instant::now());
        sent("BAE5TIMED")
    }
}

/// A mock API whose sends succeed, and when each of them came.
pub async fn api_timed() -> (MockServer, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/send"))
        .respond_with(Timed(arrivals.clone()))
        .mount(&api)
        .await;
    (api, arrivals)
}

/// A mock API whose `send` answers `first` the first `times` times, then succeeds.
pub async fn api_failing_then_ok(first: ResponseTemplate, times: u64) -> MockServer {
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/send"))
        .respond_with(first)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/send"))
        .respond_with(sent("AFTER"))
        .mount(&api)
        .await;
    api
}

/// The daemon's `/metrics` page.
pub async fn metrics_of(d: &Daemon) -> String {
    reqwest::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Replaces `from` with `to` in the config `write_config` wrote in `dir`.
pub fn edit_config(dir: &Path, from: &str, to: &str) {
    let path = dir.join("waflow.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "`{from}` is not in the config");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

/// `waflow status --json` of a daemon's folder.
pub fn status_of(d: &Daemon) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_waflow"))
        .current_dir(&d.dir)
        .args(["-c", "waflow.yaml", "--json", "status"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `waflow status --json` once `done` holds for it (or after 5 s): a
/// confirmed send is recorded a moment after the API answered.
pub async fn status_when(d: &Daemon, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let report = status_of(d);
        if done(&report) || Instant::now() > deadline {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `messages.upsert` body as the API posts it, timestamped now.
pub fn message(id: &str, from: &str, text: &str) -> Value {
    json!({
        "instance_id": "I1",
        "data": { "event": "messages.upsert", "data": { "type": "notify", "messages": [{
            "key": { "remoteJid": format!("{from}@s.whatsapp.net"), "fromMe": false, "id": id },
            "messageTimestamp": jiff::Timestamp::now().as_second(),
            "pushName": "Customer",
            "message": { "conversation": text }
        }]}}
    })
}

pub fn with_key(mut body: Value, key: &str, value: Value) -> Value {
    body["data"]["data"]["messages"][0]["key"][key] = value;
    body
}

pub async fn post(d: &Daemon, body: &Value) -> u16 {
    reqwest::Client::new()
        .post(d.url(&format!("/webhook/{SECRET}")))
        .json(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Posts `body` to `/hooks/{hook}`, signed with the test hook secret; the status.
pub async fn post_hook(d: &Daemon, hook: &str, body: &str) -> u16 {
    reqwest::Client::new()
        .post(d.url(&format!("/hooks/{hook}")))
        .header(
            "X-Waflow-Signature",
            waflow::server::sign(HOOK_SECRET, body.as_bytes()),
        )
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Replaces the daemon's rule file and waits until it is reloaded.
pub async fn use_rules(d: &Daemon, yaml: &str) {
    std::fs::write(d.dir.join("rules/rules.yaml"), yaml).unwrap();
    wait_for_log(d, "reloaded config and rules").await;
}

/// The bodies of sends the mock received on `endpoint`.
pub async fn sends(api: &MockServer, endpoint: &str) -> Vec<Value> {
    api.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == format!("/api/{endpoint}"))
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

pub async fn wait_for_sends(
    api: &MockServer,
    endpoint: &str,
    n: usize,
    within: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let got = sends(api, endpoint).await;
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lets the daemon finish what it might still do, then returns the sends.
pub async fn settle(api: &MockServer, endpoint: &str) -> Vec<Value> {
    tokio::time::sleep(Duration::from_millis(700)).await;
    sends(api, endpoint).await
}

pub fn texts(sends: &[Value]) -> Vec<String> {
    sends
        .iter()
        .map(|s| s["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The test clock starts at `start` and runs `rate` times faster than real time.
pub async fn run_clock(dir: &Path, port: u16, start: &str, rate: &str) -> Daemon {
    start_with(
        dir,
        port,
        &[
            ("WAFLOW_TEST_CLOCK", start),
            ("WAFLOW_TEST_CLOCK_RATE", rate),
        ],
    )
    .await
}

/// A mock API whose first send fails for good (a dead letter), the rest succeed.
pub async fn api_dead_first() -> MockServer {
    let refused = ResponseTemplate::new(400)
        .set_body_string(r#"{"status":"error","message":"Invalid number"}"#);
    api_failing_then_ok(refused, 1).await
}

/// Answers `get_qrcode` with a login QR code image; its base64.
pub async fn mount_qr(api: &MockServer) -> String {
    let png = waflow::qr::encode_png("2@scan-me", 5).unwrap();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png);
    Mock::given(method("POST"))
        .and(path("/api/get_qrcode"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"status": "success", "message": "Success", "base64": format!("data:image/png;base64,{b64}")}),
        ))
        .mount(api)
        .await;
    b64
}
