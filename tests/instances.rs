//! Several numbers in one daemon (SPEC §7), through the real binary against
//! mocks of the remote API that tell the instances apart by their tokens:
//! each event answered as its own number only, and one number's trouble
//! (rate limit, logout, opt-out) never touching the others.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const RULES_ALL: &str = r#"rules:
  - name: prices
    on: message
    match: { text: '(?i)price' }
    actions:
      - reply: "Prices of {{ vars.shop }}"
"#;

/// shop and support on mock `a`, sales on mock `b` (its own base_url).
fn write_instances(dir: &Path, a: &str, b: &str, port: u16, extra_instances: &str) {
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
async fn api_for(tokens: &[&str]) -> MockServer {
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
fn message_to(instance_id: &str, id: &str, from: &str, text: &str) -> Value {
    let mut body = message(id, from, text);
    body["instance_id"] = json!(instance_id);
    body
}

/// (token, number, text) of every send the mock received.
async fn sends_by_token(api: &MockServer) -> Vec<(String, String, String)> {
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

async fn start_three(a: &MockServer, b: &MockServer) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_instances(dir.path(), &a.uri(), &b.uri(), port, "");
    (start_in(dir.path(), port).await, dir)
}

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
    let ready: Value = reqwest::get(d.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
    for i in 0..3 {
        for (instance, n) in [("SHOP1", 1), ("SUP1", 2), ("SALES1", 3)] {
            let body = message_to(
                instance,
                &format!("R{instance}{i}"),
                &format!("8490000{n}00{i}"),
                "price",
            );
            assert_eq!(post(&d, &body).await, 200);
        }
    }
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
    for i in 0..2 {
        for (instance, n) in [("SHOP1", 1), ("SUP1", 2), ("SALES1", 3)] {
            let body = message_to(
                instance,
                &format!("L{instance}{i}"),
                &format!("8490000{n}00{i}"),
                "price",
            );
            assert_eq!(post(&d, &body).await, 200);
        }
    }
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
    let ready: Value = reqwest::get(d.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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

#[tokio::test]
async fn a_reload_adds_an_instance_without_a_restart() {
    let a = api_for(&["tok-shop", "tok-support", "tok-new"]).await;
    let b = api_for(&["tok-sales"]).await;
    let (d, dir) = start_three(&a, &b).await;
    assert_eq!(
        post(&d, &message_to("NEW1", "N1", "84900000011", "price")).await,
        200
    );
    write_instances(
        dir.path(),
        &a.uri(),
        &b.uri(),
        d.port,
        "  fourth:\n    instance_id: NEW1\n    access_token: tok-new\n",
    );
    wait_for_log(&d, "reloaded config and rules").await;
    assert_eq!(
        post(&d, &message_to("NEW1", "N2", "84900000012", "price")).await,
        200
    );
    wait_for_sends(&a, "send", 1, Duration::from_secs(10)).await;
    settle(&a, "send").await;
    let settled = sends_by_token(&a).await;
    assert_eq!(
        settled,
        [(
            "tok-new".into(),
            "84900000012".into(),
            "Prices of Main".into()
        )],
        "the event before the reload was for an unknown instance: ignored"
    );
    // Removing an instance keeps its rows: `status` still shows them.
    post(&d, &message_to("SALES1", "N3", "84900000013", "price")).await;
    wait_for_sends(&b, "send", 1, Duration::from_secs(10)).await;
    let text = std::fs::read_to_string(dir.path().join("waflow.yaml")).unwrap();
    let without_sales = text.replace(
        &format!("  sales:\n    instance_id: SALES1\n    access_token: tok-sales\n    base_url: {}/api\n", b.uri()),
        "",
    );
    assert_ne!(text, without_sales);
    std::fs::write(dir.path().join("waflow.yaml"), without_sales).unwrap();
    let status = status_when(&d, |s| {
        s["instances"].as_array().is_some_and(|l| {
            l.iter()
                .any(|i| i["name"] == "sales" && i["configured"] == false)
        })
    })
    .await;
    let sales = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "sales")
        .cloned();
    assert!(sales.is_some_and(|s| s["configured"] == false), "{status}");
}

#[tokio::test]
async fn an_instance_webhook_secret_admits_only_its_own_events() {
    let a = api_for(&["tok-shop", "tok-support"]).await;
    let b = api_for(&["tok-sales"]).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_instances(dir.path(), &a.uri(), &b.uri(), port, "");
    edit_config(
        dir.path(),
        "    vars: { shop: Shop }\n",
        "    vars: { shop: Shop }\n    webhook_secret: shop-only\n",
    );
    let d = start_in(dir.path(), port).await;
    let post_to = |secret: &'static str, body: Value| {
        let url = d.url(&format!("/webhook/{secret}"));
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post_to(
            "shop-only",
            message_to("SUP1", "W1", "84900000041", "price")
        )
        .await,
        200
    );
    assert_eq!(
        post_to(
            "shop-only",
            message_to("SHOP1", "W2", "84900000042", "price")
        )
        .await,
        200
    );
    assert_eq!(
        post_to("wrong", message_to("SHOP1", "W3", "84900000043", "price")).await,
        404
    );
    wait_for_sends(&a, "send", 1, Duration::from_secs(10)).await;
    settle(&a, "send").await;
    assert_eq!(
        sends_by_token(&a).await,
        [(
            "tok-shop".into(),
            "84900000042".into(),
            "Prices of Shop".into()
        )],
        "support's event on shop's URL is recorded and ignored"
    );
}

#[tokio::test]
async fn commands_choose_their_instance() {
    let a = api_for(&["tok-shop", "tok-support"]).await;
    let b = api_for(&["tok-sales"]).await;
    let dir = tempfile::tempdir().unwrap();
    write_instances(dir.path(), &a.uri(), &b.uri(), free_port(), "");
    let waflow = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_waflow"))
            .current_dir(dir.path())
            .env_remove("WAFLOW_INSTANCE")
            .args(["-c", "waflow.yaml"])
            .args(args)
            .output()
            .unwrap()
    };
    let o = waflow(&["send", "--to", "84900000021", "--text", "hello"]);
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(String::from_utf8_lossy(&o.stderr).trim(), @"error: several instances are configured: choose one with --instance NAME (sales, shop, support)");
    let o = waflow(&[
        "--instance",
        "support",
        "send",
        "--to",
        "84900000021",
        "--text",
        "hello",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        sends_by_token(&a).await,
        [("tok-support".into(), "84900000021".into(), "hello".into())]
    );
    let o = waflow(&[
        "--instance",
        "suport",
        "send",
        "--to",
        "84900000021",
        "--text",
        "hello",
    ]);
    insta::assert_snapshot!(String::from_utf8_lossy(&o.stderr).trim(), @"error: no instance `suport` is configured: did you mean `support`? the instances are sales, shop, support");
    let o = waflow(&["check"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    insta::assert_snapshot!(String::from_utf8_lossy(&o.stdout).trim().replace(&dir.path().display().to_string(), "DIR"), @r"
        ok: waflow.yaml
          sales: 1 rules in 1 files (1 message, 0 status, 0 presence, 0 schedule, 0 webhook)
          shop: 1 rules in 1 files (1 message, 0 status, 0 presence, 0 schedule, 0 webhook)
          support: 1 rules in 1 files (1 message, 0 status, 0 presence, 0 schedule, 0 webhook)
        ");
    let o = waflow(&["--instance", "shop", "simulate", "--text", "price"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Prices of Shop"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[tokio::test]
async fn rules_serve_the_instances_they_name_and_schedules_fire_once_for_each() {
    let a = api_for(&["tok-shop", "tok-support"]).await;
    let b = api_for(&["tok-sales"]).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_instances(dir.path(), &a.uri(), &b.uri(), port, "");
    std::fs::write(
        dir.path().join("rules/rules.yaml"),
        r#"rules:
  - name: shop-only
    on: message
    instance: shop
    actions:
      - reply: "shop here"
  - name: tick
    on: schedule
    cron: "* * * * * *"
    instance: [shop, support]
    actions:
      - send: { to: "84900000099", text: "tick {{ now.iso }}", allow_cold: true, allow_repeat: true }
"#,
    )
    .unwrap();
    let d = start_in(dir.path(), port).await;
    post(&d, &message_to("SHOP1", "S1", "84900000031", "hi")).await;
    post(&d, &message_to("SALES1", "S2", "84900000032", "hi")).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // The schedule ends with a reload: both instances' fires of an instant
    // come in one round of the scheduler, so none is left half-fired.
    std::fs::write(dir.path().join("rules/rules.yaml"), "rules: []\n").unwrap();
    wait_for_log(&d, "reloaded config and rules").await;
    settle(&a, "send").await;
    let on_a = sends_by_token(&a).await;
    let ticks = |token: &str| {
        on_a.iter()
            .filter(|s| s.0 == token && s.2.starts_with("tick "))
            .map(|s| s.2.clone())
            .collect::<Vec<_>>()
    };
    let (shop, support) = (ticks("tok-shop"), ticks("tok-support"));
    assert!(!shop.is_empty(), "{on_a:?}");
    assert_eq!(
        shop, support,
        "each tick fires once for each named instance: {on_a:?}"
    );
    let mut unique = shop.clone();
    unique.dedup();
    assert_eq!(unique, shop, "no tick twice: {on_a:?}");
    assert!(on_a.contains(&("tok-shop".into(), "84900000031".into(), "shop here".into())));
    assert!(
        sends_by_token(&b).await.is_empty(),
        "sales has no rule of its own here"
    );
}

#[test]
fn with_several_instances_schedule_rules_must_name_theirs() {
    let dir = tempfile::tempdir().unwrap();
    write_instances(
        dir.path(),
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        free_port(),
        "",
    );
    std::fs::write(
        dir.path().join("rules/rules.yaml"),
        "rules:\n  - name: tick\n    on: schedule\n    cron: \"0 9 * * *\"\n    actions:\n      - log: hi\n  - name: typo\n    on: message\n    instance: [shpo]\n    actions:\n      - log: hi\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_waflow"))
        .current_dir(dir.path())
        .args(["-c", "waflow.yaml", "check"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).replace(&dir.path().display().to_string(), "DIR");
    insta::assert_snapshot!(err.trim(), @r"
        rules/rules.yaml:3:9: with several instances, an `on: schedule` rule must say which it is for
          hint: add `instance: [NAME, ...]`; configured: sales, shop, support
        rules/rules.yaml:9:15: no instance `shpo` is configured
          hint: did you mean `shop`?
        2 problems found
        ");
}

/// A store written by the version before instances (schema 4, one number
/// with the API id `I1`): its rows become the instance `default`'s, and
/// the single-instance config keeps working on it.
#[tokio::test]
async fn a_store_of_the_single_number_version_keeps_its_rows() {
    let api = api_ok().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, "");
    std::fs::copy("tests/fixtures/store-v4.db", dir.path().join("waflow.db")).unwrap();
    let d = start_in(dir.path(), port).await;
    let status = status_of(&d);
    let only = &status["instances"][0];
    assert_eq!(status["instances"].as_array().unwrap().len(), 1, "{status}");
    assert_eq!(only["name"], "default");
    assert_eq!(only["report"]["sent"], 2, "{status}");
    assert_eq!(only["report"]["events"], 2, "{status}");
    assert_eq!(only["report"]["schedules"][0][0], "daily", "{status}");
    assert!(
        only["report"]["sending_paused"]
            .as_str()
            .unwrap()
            .starts_with("relogin required"),
        "{status}"
    );
    // The same message again is a duplicate; the number that opted out stays out.
    let again = message("OLD-M1", "84900000001", "price?");
    let opted_out = message("NEW-M3", "84900000002", "price?");
    let fresh = message("NEW-M4", "84900000003", "price?");
    for body in [again, opted_out, fresh] {
        assert_eq!(post(&d, &body).await, 200);
    }
    wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    let sent = settle(&api, "send").await;
    let numbers: Vec<&str> = sent.iter().map(|s| s["number"].as_str().unwrap()).collect();
    assert_eq!(numbers, ["84900000003"], "{}", d.log());
    let status = status_of(&d);
    assert_eq!(status["instances"][0]["report"]["blocked"], 1, "{status}");
}
