//! The web console through the real daemon (SPEC §8), over HTTP: logins
//! (wrong ones refused and limited, the start's token link), the session
//! cookie and CSRF tokens, a conversation with each decision and delivery
//! status, its live updates, the reply box (through the outbox; the bot
//! pauses), a dead letter retried, opt-outs, the QR page, and everything a
//! stranger writes escaped.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use wiremock::MockServer;

const PASSWORD: &str = "correct horse battery";

/// A daemon whose console has `console` as its `server.console`.
async fn daemon(api: &MockServer, console: &str) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, "");
    if !console.is_empty() {
        edit_config(
            dir.path(),
            "max_body: 4KiB\n",
            &format!("max_body: 4KiB\n  console: {console}\n"),
        );
    }
    (start_in(dir.path(), port).await, dir)
}

/// A client that keeps no cookies and follows no redirects: the test sees each answer.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A logged-in session: its cookie.
struct Session {
    cookie: String,
    base: String,
}

impl Session {
    async fn get(&self, path: &str) -> (u16, String) {
        let answer = client()
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> u16 {
        client()
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The CSRF token of the session, as its pages carry it.
    async fn csrf(&self) -> String {
        let (_, page) = self.get("/console/").await;
        let start = page.find("name=\"csrf\" value=\"").unwrap() + 19;
        page[start..start + 32].to_owned()
    }
}

async fn login(d: &Daemon, password: &str) -> reqwest::Response {
    client()
        .post(d.url("/console/login"))
        .form(&[("password", password)])
        .send()
        .await
        .unwrap()
}

fn cookie_of(answer: &reqwest::Response) -> Option<String> {
    let set = answer.headers().get("set-cookie")?.to_str().ok()?;
    Some(set.split(';').next()?.to_owned())
}

async fn session(d: &Daemon) -> Session {
    let answer = login(d, PASSWORD).await;
    assert_eq!(answer.status().as_u16(), 303);
    Session {
        cookie: cookie_of(&answer).unwrap(),
        base: d.url(""),
    }
}

fn chat_path(number: &str) -> String {
    format!("/console/chat?instance=default&chat={number}%40s.whatsapp.net")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_logs_in_wrong_ones_are_refused_and_limited_and_no_secret_shows() {
    let api = api_ok().await;
    let (d, _dir) = daemon(&api, &format!("{{ password: \"{PASSWORD}\" }}")).await;
    // Not logged in: every page leads to the login page.
    let answer = client().get(d.url("/console/")).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 303);
    assert_eq!(answer.headers()["location"], "/console/login");
    let csp = answer.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    // The right password: a session cookie only scripts and other sites cannot use.
    let answer = login(&d, PASSWORD).await;
    assert_eq!(answer.status().as_u16(), 303);
    let set = answer.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let s = Session {
        cookie: cookie_of(&answer).unwrap(),
        base: d.url(""),
    };
    for page in [
        "/console/",
        "/console/chats",
        "/console/outbox",
        "/console/optouts",
        "/console/rules",
    ] {
        let (status, html) = s.get(page).await;
        assert_eq!(status, 200, "{page}: {html}");
        for secret in ["tok-secret", SECRET, PASSWORD] {
            assert!(!html.contains(secret), "{page} shows a secret");
        }
    }
    // Wrong passwords: refused, and after five a minute even the right one waits.
    for _ in 0..5 {
        assert_eq!(login(&d, "guess").await.status().as_u16(), 401);
    }
    assert_eq!(login(&d, PASSWORD).await.status().as_u16(), 429);
    // A state change without the session's CSRF token is refused.
    assert_eq!(
        s.post(
            "/console/optouts/add",
            &[("instance", "default"), ("number", "84911111111")]
        )
        .await,
        422
    );
    assert_eq!(
        s.post(
            "/console/optouts/add",
            &[
                ("csrf", "0123456789abcdef0123456789abcdef"),
                ("instance", "default"),
                ("number", "84911111111")
            ]
        )
        .await,
        403
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_password_the_start_logs_a_ready_link_with_its_token() {
    let api = api_ok().await;
    let (d, _dir) = daemon(&api, "").await;
    wait_for_log(&d, "console/login?token=").await;
    let log = d.log();
    let start = log.find("console/login?token=").unwrap() + "console/login?token=".len();
    let token = &log[start..start + 32];
    let wrong = client()
        .get(d.url("/console/login?token=0000"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong.status().as_u16(),
        200,
        "a wrong token shows the login page"
    );
    let right = client()
        .get(d.url(&format!("/console/login?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 303);
    let s = Session {
        cookie: cookie_of(&right).unwrap(),
        base: d.url(""),
    };
    assert_eq!(s.get("/console/").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conversation_shows_each_decision_escaped_and_changes_live() {
    let api = api_ok().await;
    let (d, _dir) = daemon(&api, &format!("{{ password: \"{PASSWORD}\" }}")).await;
    let s = session(&d).await;
    let nasty = "price? <script>alert(\"x\")</script> 'q' \u{202E}gnp.exe \u{1b}[31mred";
    let mut body = message("M1", "84933313000", nasty);
    body["data"]["data"]["messages"][0]["pushName"] = json!("<img src=x onerror=alert(1)>");
    assert_eq!(post(&d, &body).await, 200);
    wait_for_sends(&api, "send", 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, chats) = s.get("/console/chats").await;
    let (_, chat) = s.get(&chat_path("84933313000")).await;
    for html in [&chats, &chat] {
        assert!(
            !html.contains("<script>alert") && !html.contains("<img src=x"),
            "{html}"
        );
        assert!(
            !html.contains('\u{202E}') && !html.contains('\u{1b}'),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
    assert!(chat.contains("✓ prices matched"), "{chat}");
    assert!(chat.contains("sent as BAE5OK"), "{chat}");
    // Live: the page's event stream says `change` when the chat gets a message.
    let mut live = client()
        .get(d.url("/console/chat/live?instance=default&chat=84933313000%40s.whatsapp.net"))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        post(&d, &message("M2", "84933313000", "and the sizes?")).await,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    while !seen.contains("event: change") && Instant::now() < deadline {
        if let Ok(Ok(Some(chunk))) =
            tokio::time::timeout(Duration::from_secs(1), live.chunk()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains("event: change"), "{seen:?}");
    let (_, timeline) = s
        .get("/console/chat/timeline?instance=default&chat=84933313000%40s.whatsapp.net")
        .await;
    assert!(timeline.contains("and the sizes?"), "{timeline}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_by_hand_goes_through_the_outbox_and_pauses_the_bot() {
    let api = api_ok().await;
    let (d, _dir) = daemon(&api, &format!("{{ password: \"{PASSWORD}\" }}")).await;
    let s = session(&d).await;
    assert_eq!(post(&d, &message("M1", "84933313000", "hello")).await, 200);
    let csrf = s.csrf().await;
    let form = [
        ("csrf", csrf.as_str()),
        ("instance", "default"),
        ("chat", "84933313000@s.whatsapp.net"),
        ("text", "Hi, this is Ana from the shop"),
    ];
    assert_eq!(s.post("/console/reply", &form).await, 303);
    let got = wait_for_sends(&api, "send", 1, Duration::from_secs(5)).await;
    assert_eq!(texts(&got), ["Hi, this is Ana from the shop"]);
    // The bot stays silent in that chat now.
    assert_eq!(
        post(&d, &message("M2", "84933313000", "what is the price?")).await,
        200
    );
    let got = settle(&api, "send").await;
    assert_eq!(got.len(), 1, "{:?}", texts(&got));
    let (_, chat) = s.get(&chat_path("84933313000")).await;
    assert!(chat.contains("answered from the console"), "{chat}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_is_retried_from_the_console_and_arrives() {
    let api = api_dead_first().await;
    let (d, _dir) = daemon(&api, &format!("{{ password: \"{PASSWORD}\" }}")).await;
    let s = session(&d).await;
    assert_eq!(post(&d, &message("M1", "84933313000", "price?")).await, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut outbox = String::new();
    while !outbox.contains("dead") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        outbox = s.get("/console/outbox").await.1;
    }
    let start = outbox.find("<tr id=\"row-").expect("a dead row") + 12;
    let id: String = outbox[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let csrf = s.csrf().await;
    assert_eq!(
        s.post("/console/outbox/retry", &[("csrf", &csrf), ("id", &id)])
            .await,
        303
    );
    let got = wait_for_sends(&api, "send", 2, Duration::from_secs(5)).await;
    assert_eq!(texts(&got), ["Prices: 15 EUR", "Prices: 15 EUR"]);
    let (_, chat) = s.get(&chat_path("84933313000")).await;
    assert!(chat.contains("sent as AFTER"), "{chat}");
}

#[tokio::test(flavor = "multi_thread")]
async fn opt_outs_are_added_and_removed_and_the_qr_page_shows_the_code() {
    let api = api_ok().await;
    let b64 = mount_qr(&api).await;
    let (d, dir) = daemon(&api, &format!("{{ password: \"{PASSWORD}\" }}")).await;
    let s = session(&d).await;
    let csrf = s.csrf().await;
    let form = [
        ("csrf", csrf.as_str()),
        ("instance", "default"),
        ("number", "+84 911 111 111"),
    ];
    assert_eq!(s.post("/console/optouts/add", &form).await, 303);
    assert!(optouts(dir.path()).contains("84911111111"));
    let (_, page) = s.get("/console/optouts").await;
    assert!(page.contains("84911111111"), "{page}");
    assert_eq!(s.post("/console/optouts/remove", &form).await, 303);
    assert!(!optouts(dir.path()).contains("84911111111"));
    let (status, qr) = s.get("/console/qr?instance=default").await;
    assert_eq!(status, 200);
    // The HTML escapes `/` as `&#x2f;`; the browser reads it back.
    let qr = qr.replace("&#x2f;", "/");
    assert!(
        qr.contains(&format!("src=\"data:image/png;base64,{b64}\"")),
        "{qr}"
    );
}

fn optouts(dir: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_waflow"))
        .current_dir(dir)
        .args(["-c", "waflow.yaml", "optout", "list"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_follows_a_list_in_progress() {
    let api = api_ok().await;
    let (d, _dir) = daemon(&api, &format!("{{ password: \"{PASSWORD}\" }}")).await;
    use_rules(
        &d,
        &format!(
            "rules:\n  - name: ready\n    on: webhook\n    hook: orders\n    secret: {HOOK_SECRET}\n    for_each: {{ items: body.orders }}\n    actions:\n      - send: {{ to: \"{{{{ row.phone }}}}\", text: \"Order {{{{ row.id }}}} is ready\", allow_cold: true }}\n"
        ),
    )
    .await;
    let body = json!({"orders": [{"id": "A1", "phone": "84900000001"}, {"id": "A2", "phone": "not a number"}]});
    // Under a loaded machine the reload may come late: the hook exists once it did.
    let deadline = Instant::now() + Duration::from_secs(20);
    while post_hook(&d, "orders", &body.to_string()).await != 202 {
        assert!(
            Instant::now() < deadline,
            "the hook never came: {}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for_sends(&api, "send", 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = session(&d).await;
    let (_, overview) = s.get("/console/").await;
    assert!(
        overview.contains("Contact lists") && overview.contains("<td>ready</td>"),
        "{overview}"
    );
    assert!(
        overview.contains("2 (1 planned, 0 left out by where)"),
        "{overview}"
    );
}
