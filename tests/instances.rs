//! Several numbers in one daemon (SPEC §7), through the real binary against
//! mocks of the remote API that tell the instances apart by their tokens:
//! each event answered as its own number only, and one number's trouble
//! (rate limit, logout, opt-out) never touching the others.

mod common;

use std::process::Command;
use std::time::Duration;

use common::numbers::*;
use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn each_event_is_answered_by_its_own_number_only() {
    let (a, b) = (
        api_for(&["tok-shop", "tok-support"]).await,
        api_for(&["tok-sales"]).await,
    );
    let (d, _dir) = start_three(&a, &b).await;
    for (instance, id, from) in [
        ("SHOP1", "M1", "84900000001"),
        ("SUP1", "M2", "84900000002"),
        ("SALES1", "M3", "84900000003"),
        ("NOBODY9", "M4", "84900000004"),
    ] {
        assert_eq!(
            post(&d, &message_to(instance, id, from, "price?")).await,
            200
        );
    }
    wait_for_sends(&a, "send", 2, Duration::from_secs(10)).await;
    wait_for_sends(&b, "send", 1, Duration::from_secs(10)).await;
    settle(&a, "send").await;
    let on_a = sends_by_token(&a).await;
    assert_eq!(
        on_a,
        [
            (
                "tok-shop".into(),
                "84900000001".into(),
                "Prices of Shop".into()
            ),
            (
                "tok-support".into(),
                "84900000002".into(),
                "Prices of Main".into()
            ),
        ]
    );
    assert_eq!(
        sends_by_token(&b).await,
        [(
            "tok-sales".into(),
            "84900000003".into(),
            "Prices of Main".into()
        )]
    );
    let metrics = metrics_of(&d).await;
    assert!(
        metrics.contains("waflow_events_ignored_total{reason=\"unknown_instance\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("instance=\"shop\""),
        "metrics carry the instance: {metrics}"
    );
    let status = status_of(&d);
    let names: Vec<&str> = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sales", "shop", "support"]);
    assert_eq!(status["unknown_instances"], json!([["NOBODY9", 1]]));
    let ready = readyz(&d).await;
    assert_eq!(ready["instances"]["shop"]["sending"], "ok", "{ready}");
}

#[tokio::test]
async fn a_rate_limit_pauses_that_number_while_the_others_answer() {
    let a = api_for(&["tok-support"]).await;
    let limited = ResponseTemplate::new(200)
        .set_body_string(json!({"status": "error", "message": "rate-overlimit (429)"}).to_string());
    Mock::given(method("POST"))
        .and(path("/api/send"))
        .and(body_partial_json(json!({ "access_token": "tok-shop" })))
        .respond_with(limited)
        .mount(&a)
        .await;
    let b = api_for(&["tok-sales"]).await;
    let (d, _dir) = start_three(&a, &b).await;
    post_to_each(&d, "R", 3).await;
    wait_for_sends(&b, "send", 3, Duration::from_secs(10)).await;
    let mut support = Vec::new();
    for _ in 0..200 {
        support = sends_by_token(&a).await;
        if support.iter().filter(|s| s.0 == "tok-support").count() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let settled = {
        tokio::time::sleep(Duration::from_millis(700)).await;
        sends_by_token(&a).await
    };
    let count =
        |t: &str, list: &[(String, String, String)]| list.iter().filter(|s| s.0 == t).count();
    assert_eq!(count("tok-support", &settled), 3, "{support:?}");
    assert_eq!(
        count("tok-shop", &settled),
        1,
        "the breaker stops shop after its first ban signal: {settled:?}"
    );
    assert_eq!(sends_by_token(&b).await.len(), 3);
    let status = status_of(&d);
    let paused = |name: &str| {
        status["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap()["report"]["sending_paused"]
            .clone()
    };
    assert!(paused("shop").is_string(), "{status}");
    assert!(paused("support").is_null(), "{status}");
    assert!(paused("sales").is_null(), "{status}");
}

#[tokio::test]
async fn a_logged_out_number_pauses_only_itself() {
    let a = api_for(&["tok-shop"]).await;
    let relogin = r#"{"status":"error","message":"This WhatsApp account relogin required"}"#;
    Mock::given(method("POST"))
        .and(path("/api/send"))
        .and(body_partial_json(json!({ "access_token": "tok-support" })))
        .respond_with(ResponseTemplate::new(200).set_body_string(relogin))
        .mount(&a)
        .await;
    let b = api_for(&["tok-sales"]).await;
    let (d, _dir) = start_three(&a, &b).await;
    post_to_each(&d, "L", 2).await;
    wait_for_sends(&b, "send", 2, Duration::from_secs(10)).await;
    wait_for_sends(&a, "send", 3, Duration::from_secs(10)).await;
    let settled = settle(&a, "send").await;
    let tokens: Vec<&str> = settled
        .iter()
        .map(|s| s["access_token"].as_str().unwrap())
        .collect();
    assert_eq!(
        tokens.iter().filter(|t| **t == "tok-shop").count(),
        2,
        "{tokens:?}"
    );
    assert_eq!(
        tokens.iter().filter(|t| **t == "tok-support").count(),
        1,
        "a logged-out number waits for its probe (30 s): {tokens:?}"
    );
    let ready = readyz(&d).await;
    let sending = |name: &str| {
        ready["instances"][name]["sending"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        sending("support").starts_with("paused: relogin required"),
        "{ready}"
    );
    assert_eq!(sending("shop"), "ok");
    assert_eq!(sending("sales"), "ok");
}

#[tokio::test]
async fn an_opt_out_to_one_number_does_not_silence_the_others() {
    let a = api_for(&["tok-shop", "tok-support"]).await;
    let b = api_for(&["tok-sales"]).await;
    let (d, _dir) = start_three(&a, &b).await;
    let customer = "84900000077";
    post(&d, &message_to("SHOP1", "O1", customer, "STOP")).await;
    // The confirmation of the opt-out goes out as shop.
    wait_for_sends(&a, "send", 1, Duration::from_secs(10)).await;
    post(&d, &message_to("SHOP1", "O2", customer, "price")).await;
    post(&d, &message_to("SUP1", "O3", customer, "price")).await;
    wait_for_sends(&a, "send", 2, Duration::from_secs(10)).await;
    settle(&a, "send").await;
    let settled = sends_by_token(&a).await;
    let texts: Vec<(&str, &str)> = settled
        .iter()
        .map(|s| (s.0.as_str(), s.2.as_str()))
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts.contains(&("tok-support", "Prices of Main")),
        "{texts:?}"
    );
    assert!(
        !texts.contains(&("tok-shop", "Prices of Shop")),
        "{texts:?}"
    );
    let list = Command::new(env!("CARGO_BIN_EXE_waflow"))
        .current_dir(&d.dir)
        .args(["-c", "waflow.yaml", "--json", "optout", "list"])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list["opt_outs"][0]["instance"], "shop", "{list}");
}

/// `rounds` price questions to each of the three numbers, from a sender of its own.
async fn post_to_each(d: &Daemon, prefix: &str, rounds: usize) {
    for i in 0..rounds {
        for (instance, n) in [("SHOP1", 1), ("SUP1", 2), ("SALES1", 3)] {
            let id = format!("{prefix}{instance}{i}");
            let body = message_to(instance, &id, &format!("8490000{n}00{i}"), "price");
            assert_eq!(post(d, &body).await, 200);
        }
    }
}

/// The daemon's `/readyz` answer.
async fn readyz(d: &Daemon) -> Value {
    reqwest::get(d.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
