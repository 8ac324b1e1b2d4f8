//! Hook calls a stranger could replay or retry: a signed timestamp makes a
//! recorded call useless later, an `Idempotency-Key` makes a retry the same
//! event. The real binary, a local mock of the remote API.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

/// Posts a signed hook call with extra headers; the status.
async fn call(d: &Daemon, body: &str, headers: &[(&str, String)]) -> u16 {
    let mut req = reqwest::Client::new()
        .post(d.url("/hooks/shop"))
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap().status().as_u16()
}

fn order(id: &str) -> String {
    json!({"id": id, "status": "shipped", "customer": {"phone": "84933313000"}}).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_timestamp_stops_replays_and_a_changed_one_breaks_the_signature() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "").await;
    let body = order("T-1");
    let now = jiff::Timestamp::now().as_second();
    let signed = |ts: i64| {
        vec![
            ("X-Waflow-Timestamp", ts.to_string()),
            (
                "X-Waflow-Signature",
                waflow::server::sign_at(HOOK_SECRET, ts, body.as_bytes()),
            ),
        ]
    };
    // A call recorded an hour ago, replayed now.
    assert_eq!(call(&d, &body, &signed(now - 3600)).await, 401);
    // The timestamp changed under a valid signature.
    let mut moved = signed(now - 3600);
    moved[0].1 = now.to_string();
    assert_eq!(call(&d, &body, &moved).await, 401);
    assert!(settle(&api, "send").await.is_empty());
    assert_eq!(call(&d, &body, &signed(now)).await, 202);
    let got = wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    assert_eq!(got[0]["message"], "Order T-1 shipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_idempotency_key_is_the_same_event_and_sends_once() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "").await;
    let body = order("K-1");
    let headers = |key: &str| {
        vec![
            ("Idempotency-Key", key.to_owned()),
            (
                "X-Waflow-Signature",
                waflow::server::sign(HOOK_SECRET, body.as_bytes()),
            ),
        ]
    };
    for _ in 0..4 {
        assert_eq!(call(&d, &body, &headers("shop-order-K-1")).await, 202);
    }
    let got = settle(&api, "send").await;
    assert_eq!(got.len(), 1, "{}", d.log());
    // Another key is another event (the rule's own repeat guard aside).
    assert_eq!(call(&d, &body, &headers("shop-order-K-1-again")).await, 202);
    let metrics = metrics_of(&d).await;
    assert!(
        metrics.contains(r#"waflow_events_total{kind="webhook",outcome="duplicate"} 3"#),
        "{metrics}"
    );
}
