//! The web console in a real browser (SPEC §8): headless Chromium from the
//! distribution (`/usr/bin/chromium`, `/usr/bin/chromedriver`), driven over
//! WebDriver, against the real daemon and a mock of the API. It logs in (a
//! wrong password refused), sees a conversation appear live after a
//! webhook, reads why a rule did not match, retries a dead letter and sees
//! the send arrive, replies from the box and sees the bot pause, and sees
//! the login QR code. It saves screenshots of the main pages in `docs/`.
//! Without Chromium on the machine the test says so and passes; CI
//! installs it (`.ci/run`), and `WAFLOW_BROWSER_TESTS=require` makes a
//! missing browser a failure.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PASSWORD: &str = "correct horse battery";

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn driver() -> Option<Driver> {
    let present =
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !present {
        let required = std::env::var("WAFLOW_BROWSER_TESTS").is_ok_and(|v| v == "require");
        assert!(
            !required,
            "Chromium and chromedriver are required (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no {CHROMIUM} or {CHROMEDRIVER} on this machine");
        return None;
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some(Driver { child, port })
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = ClientBuilder::rustls()
            .expect("a TLS connector")
            .capabilities(caps.clone())
            .connect(&url)
            .await;
        match attempt {
            Ok(client) => return client,
            Err(err) if Instant::now() > deadline => panic!("no browser session: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits (up to 10 s) until the page's HTML holds `needle`.
async fn wait_for_text(c: &Client, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let html = c.source().await.unwrap();
        if html.contains(needle) || Instant::now() > deadline {
            return html;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(c: &Client, name: &str) {
    if std::env::var("WAFLOW_SCREENSHOTS").is_ok() {
        let png = c.screenshot().await.unwrap();
        let path = format!("{}/docs/{name}.png", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(path, png).unwrap();
    }
}

async fn submit(c: &Client, form: &str) {
    c.find(Locator::Css(&format!("{form} button[type=submit]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owner_logs_in_follows_a_chat_live_mends_it_and_logs_the_number_in() {
    let Some(driver) = driver() else { return };
    // The first send of the chat fails for good: a dead letter to retry.
    let api = api_dead_first().await;
    mount_qr(&api).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, "");
    edit_config(
        dir.path(),
        "max_body: 4KiB\n",
        &format!("max_body: 4KiB\n  console: {{ password: \"{PASSWORD}\" }}\n"),
    );
    let d = start_in(dir.path(), port).await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;

    // A wrong password is refused; the right one opens the overview.
    c.goto(&d.url("/console/")).await.unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("guess")
        .await
        .unwrap();
    submit(&c, "form.login").await;
    let html = wait_for_text(&c, "login-error").await;
    assert!(html.contains("That was not right"), "{html}");
    screenshot(&c, "console-login").await;
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    submit(&c, "form.login").await;
    let html = wait_for_text(&c, "instance-default").await;
    assert!(html.contains("Waiting to be sent"), "{html}");
    screenshot(&c, "console-overview").await;

    // A first message: its reply fails for good (a dead letter).
    assert_eq!(
        post(&d, &message("M1", "84933313000", "what is the price?")).await,
        200
    );
    wait_for_sends(&api, "send", 1, Duration::from_secs(5)).await;
    c.goto(&d.url("/console/chat?instance=default&chat=84933313000%40s.whatsapp.net"))
        .await
        .unwrap();
    let html = wait_for_text(&c, "dead letter").await;
    assert!(html.contains("✓ prices matched"), "{html}");

    // A second message appears live, with why the rule did not match it.
    assert_eq!(
        post(&d, &message("M2", "84933313000", "and where are you?")).await,
        200
    );
    let html = wait_for_text(&c, "and where are you?").await;
    assert!(
        html.contains("and where are you?"),
        "the timeline did not update live: {html}"
    );
    assert!(
        html.contains("not considered") || html.contains("does not match"),
        "{html}"
    );
    screenshot(&c, "console-conversation").await;

    // Retry the dead letter from the timeline: the send arrives.
    submit(&c, "li.event form").await;
    let got = wait_for_sends(&api, "send", 2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "{}", d.log());

    // A reply by hand goes out and pauses the bot in this chat.
    wait_for_text(&c, "reply").await;
    c.find(Locator::Css("form.reply textarea"))
        .await
        .unwrap()
        .send_keys("Hi, Ana here from the shop")
        .await
        .unwrap();
    submit(&c, "form.reply").await;
    let got = wait_for_sends(&api, "send", 3, Duration::from_secs(10)).await;
    assert_eq!(texts(&got)[2], "Hi, Ana here from the shop");
    let html = wait_for_text(&c, "answered from the console").await;
    assert!(html.contains("id=\"paused\""), "{html}");
    assert_eq!(
        post(&d, &message("M3", "84933313000", "price again?")).await,
        200
    );
    assert_eq!(
        settle(&api, "send").await.len(),
        3,
        "the bot answered in a paused chat"
    );

    // The outbox and the QR code of the login page.
    c.goto(&d.url("/console/outbox")).await.unwrap();
    wait_for_text(&c, "Outbox").await;
    screenshot(&c, "console-outbox").await;
    c.goto(&d.url("/console/qr?instance=default"))
        .await
        .unwrap();
    let html = wait_for_text(&c, "login QR code").await;
    assert!(html.contains("data:image/png;base64,"), "{html}");
    let width = c
        .execute(
            "return document.querySelector('img#qr').naturalWidth",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        width.as_u64().is_some_and(|w| w > 0),
        "the QR image did not load: {width}"
    );
    screenshot(&c, "console-qr").await;
    c.close().await.unwrap();
}
