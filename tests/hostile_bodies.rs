//! Webhook bodies built to exhaust the daemon: many events in one body, deep
//! JSON. The real binary, a local mock of the remote API; what is checked is
//! what a body costs (bytes kept) and that the daemon keeps answering.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// One `messages.upsert` of `n` messages from different customers.
fn upsert_of(n: usize) -> Value {
    let mut body = message("M0", "84900000000", "just saying hello");
    let item = body["data"]["data"]["messages"][0].clone();
    let items: Vec<Value> = (0..n)
        .map(|i| {
            let mut m = item.clone();
            m["key"]["id"] = json!(format!("M{i}"));
            m["key"]["remoteJid"] = json!(format!("849{i:08}@s.whatsapp.net"));
            m
        })
        .collect();
    body["data"]["data"]["messages"] = json!(items);
    body
}

/// A daemon that takes bodies up to 2 MiB.
async fn daemon(api: &wiremock::MockServer) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, "");
    edit_config(dir.path(), "max_body: 4KiB", "max_body: 2MiB");
    (start_in(dir.path(), port).await, dir)
}

async fn post_raw(d: &Daemon, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(d.url(&format!("/webhook/{SECRET}")))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_of_800_messages_costs_about_800_messages_and_health_keeps_answering() {
    let api = api_ok().await;
    let (d, _dir) = daemon(&api).await;
    let body = upsert_of(800);
    let size = serde_json::to_vec(&body).unwrap().len();
    let health = {
        let url = d.url("/healthz");
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut answered = 0;
            for _ in 0..20 {
                if client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
                {
                    answered += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answered
        })
    };
    let (status, answer) = post_raw(&d, &body).await;
    assert_eq!(status, 200, "{answer} {}", d.log());
    assert_eq!(answer["accepted"], 800);
    assert_eq!(
        health.await.unwrap(),
        20,
        "/healthz did not answer every time"
    );
    let conn = rusqlite::Connection::open(d.dir.join("waflow.db")).unwrap();
    let (rows, kept): (i64, i64) = conn
        .query_row("SELECT COUNT(*), SUM(LENGTH(event)) FROM inbox", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(rows, 800);
    eprintln!("800 messages: a {size}-byte body, {kept} bytes kept in the inbox");
    // Each event keeps its own message (raw and normalized), never the body.
    assert!(
        (kept as usize) < 8 * size,
        "800 events keep {kept} bytes of a {size}-byte body"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_events_or_too_deep_json_get_a_clear_4xx_and_nothing_is_recorded() {
    let api = api_ok().await;
    let (d, _dir) = daemon(&api).await;
    let (status, answer) = post_raw(&d, &upsert_of(2_001)).await;
    assert_eq!(status, 413, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("2001 events") && error.contains("smaller"),
        "{error}"
    );
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let resp = reqwest::Client::new()
        .post(d.url(&format!("/webhook/{SECRET}")))
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let metrics = metrics_of(&d).await;
    assert!(
        metrics.contains(r#"waflow_events_total{kind="too_many",outcome="rejected"} 1"#),
        "{metrics}"
    );
    let conn = rusqlite::Connection::open(d.dir.join("waflow.db")).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM inbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    // Still serving.
    assert_eq!(post(&d, &message("OK1", "84933313000", "hi")).await, 200);
}
