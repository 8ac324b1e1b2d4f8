//! Several numbers in one daemon (SPEC §7): instances coming and going on
//! reload, an instance's own webhook secret, commands choosing their
//! instance, rules and schedules naming theirs, and a store of the
//! single-number version carried over.

mod common;

use std::process::Command;
use std::time::Duration;

use common::numbers::*;
use common::*;
use serde_json::Value;

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
    let (d, dir) = start_three_with(
        &a,
        &b,
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
    .await;
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
    std::fs::copy(
        "tests/fixtures/store-v4.sqlite",
        dir.path().join("waflow.db"),
    )
    .unwrap();
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

#[tokio::test]
async fn a_hook_call_runs_once_for_each_instance_its_rule_names() {
    let a = api_for(&["tok-shop", "tok-support"]).await;
    let b = api_for(&["tok-sales"]).await;
    let rules = format!(
        "rules:\n  - name: shipped\n    on: webhook\n    hook: shop\n    secret: {HOOK_SECRET}\n    instance: [shop, support]\n    actions:\n      - send: {{ to: \"{{{{ body.phone }}}}\", text: \"Order {{{{ body.id }}}} shipped\", allow_cold: true }}\n"
    );
    let (d, _dir) = start_three_with(&a, &b, &rules).await;
    let body = r#"{"id": "A-7", "phone": "84900000051"}"#;
    assert_eq!(post_hook(&d, "shop", body).await, 202);
    wait_for_sends(&a, "send", 2, Duration::from_secs(10)).await;
    settle(&a, "send").await;
    let order = |token: &str| {
        (
            token.to_owned(),
            "84900000051".to_owned(),
            "Order A-7 shipped".to_owned(),
        )
    };
    assert_eq!(
        sends_by_token(&a).await,
        [order("tok-shop"), order("tok-support")]
    );
    assert!(sends_by_token(&b).await.is_empty());
}
