//! The daemon as a black box: the real binary, a real SQLite file, and a
//! local mock of the remote API. Each test starts its own daemon on a free
//! port in its own folder.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "multi_thread")]
async fn a_matching_message_gets_exactly_one_reply() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "").await;
    assert_eq!(
        post(&d, &message("M1", "84933313000", "what is the price?")).await,
        200
    );
    let got = wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{}", d.log());
    assert_eq!(got[0]["number"], "84933313000");
    assert_eq!(got[0]["message"], "Prices: 15 EUR");
    assert_eq!(got[0]["access_token"], "tok-secret");
    assert_eq!(settle(&api, "send").await.len(), 1);
    assert!(
        !d.log().contains("tok-secret"),
        "the token leaked into the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_webhook_twice_gives_one_send() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "").await;
    let body = message("DUP1", "84933313000", "price?");
    assert_eq!(post(&d, &body).await, 200);
    assert_eq!(post(&d, &body).await, 200);
    wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    assert_eq!(settle(&api, "send").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn unpaced_sends_to_many_chats_arrive_once_and_in_order_per_chat() {
    // A slow API: with `min_interval: 0s` sends to different chats overlap.
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/send"))
        .respond_with(sent("BAE5SLOW").set_delay(Duration::from_millis(100)))
        .mount(&api)
        .await;
    let (d, _dir) = start(&api, "").await;
    use_rules(
        &d,
        "rules:\n  - name: order\n    on: message\n    match: { text: '(?i)order' }\n    actions:\n\
         \x20     - reply: \"first {{ msg.text }}\"\n\x20     - reply: \"second {{ msg.text }}\"\n",
    )
    .await;
    let numbers: Vec<String> = (0..24).map(|i| format!("849666000{i:02}")).collect();
    let bodies: Vec<Value> = numbers
        .iter()
        .map(|n| message(&format!("ORD{n}"), n, &format!("order {n}")))
        .collect();
    let posts = bodies.iter().map(|body| post(&d, body));
    for status in futures_util::future::join_all(posts).await {
        assert_eq!(status, 200);
    }
    let got = wait_for_sends(&api, "send", 48, Duration::from_secs(20)).await;
    assert_eq!(settle(&api, "send").await.len(), 48, "{}", d.log());
    for n in &numbers {
        let to_n: Vec<&str> = got
            .iter()
            .filter(|g| g["number"] == n.as_str())
            .map(|g| g["message"].as_str().unwrap())
            .collect();
        assert_eq!(
            to_n,
            [format!("first order {n}"), format!("second order {n}")],
            "{n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn own_messages_status_broadcasts_and_groups_get_no_reply() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "").await;
    let own = with_key(
        message("OWN1", "84900000001", "price?"),
        "fromMe",
        json!(true),
    );
    let mut own_echo = own.clone();
    own_echo["data"]["data"]["type"] = json!("append");
    own_echo = with_key(own_echo, "id", json!("OWN2"));
    let status = with_key(
        message("ST1", "x", "price?"),
        "remoteJid",
        json!("status@broadcast"),
    );
    let mut group = with_key(
        message("G1", "x", "price?"),
        "remoteJid",
        json!("120363025246125486@g.us"),
    );
    group = with_key(group, "participant", json!("84900000002@s.whatsapp.net"));
    for body in [&own_echo, &status, &group] {
        assert_eq!(post(&d, body).await, 200);
    }
    // A control message in another chat is answered: the others had their chance first.
    assert_eq!(
        post(&d, &message("CTRL", "84900000003", "price?")).await,
        200
    );
    wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    let got = settle(&api, "send").await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["number"], "84900000003");
    assert!(sends(&api, "send_group").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn api_500_then_success_gives_one_confirmed_send() {
    let api = api_failing_then_ok(ResponseTemplate::new(500), 1).await;
    let (d, _dir) = start(&api, "").await;
    post(&d, &message("R1", "84933313000", "price")).await;
    let got = wait_for_sends(&api, "send", 2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "one failure, one success: {}", d.log());
    assert_eq!(settle(&api, "send").await.len(), 2);
    let report = status_of(&d);
    assert_eq!(report["report"]["sent"], 1);
    assert_eq!(report["report"]["dead_letters"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_outage_delays_the_send_but_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let port = free_port();
    write_config(
        dir.path(),
        &format!("http://127.0.0.1:{api_port}"),
        port,
        "",
    );
    // A bigger budget than the outage needs.
    let config = std::fs::read_to_string(dir.path().join("waflow.yaml"))
        .unwrap()
        .replace("attempts: 3", "attempts: 20");
    std::fs::write(dir.path().join("waflow.yaml"), config).unwrap();
    let d = start_in(dir.path(), port).await;
    post(&d, &message("OUT1", "84933313000", "price")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The API comes back on its port.
    let listener = std::net::TcpListener::bind(("127.0.0.1", api_port)).unwrap();
    let api = MockServer::builder().listener(listener).start().await;
    Mock::given(method("POST"))
        .and(path("/api/send"))
        .respond_with(sent("LATE"))
        .mount(&api)
        .await;
    let got = wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{}", d.log());
    assert_eq!(settle(&api, "send").await.len(), 1);
    assert!(d.log().contains("will retry"), "{}", d.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_after_the_200_then_restart_sends_exactly_once() {
    let api = api_ok().await;
    // A typing delay holds the send long enough for the kill to land before it.
    let (mut d, dir) = start(&api, "").await;
    let config = std::fs::read_to_string(dir.path().join("waflow.yaml"))
        .unwrap()
        .replace("typing_delay: 0s", "typing_delay: 1s");
    std::fs::write(dir.path().join("waflow.yaml"), config).unwrap();
    d.stop();
    let mut d = start_in(dir.path(), d.port).await;
    assert_eq!(
        post(&d, &message("KILL1", "84933313000", "price")).await,
        200
    );
    d.kill9();
    assert!(sends(&api, "send").await.is_empty(), "sent before the kill");
    let d = start_in(dir.path(), d.port).await;
    let got = wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{}", d.log());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sends(&api, "send").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_their_status_and_the_daemon_keeps_serving() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "").await;
    let client = reqwest::Client::new();
    let status = |r: reqwest::Response| r.status().as_u16();
    let malformed = client
        .post(d.url(&format!("/webhook/{SECRET}")))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(status(malformed), 400);
    let huge = client
        .post(d.url(&format!("/webhook/{SECRET}")))
        .body(vec![b' '; 8192])
        .send()
        .await
        .unwrap();
    assert_eq!(status(huge), 413);
    let wrong = client
        .post(d.url("/webhook/nope"))
        .json(&message("W1", "1", "price"))
        .send()
        .await
        .unwrap();
    assert_eq!(status(wrong), 404);
    let unknown = client
        .post(d.url(&format!("/webhook/{SECRET}")))
        .header("Content-Type", "text/plain")
        .body(r#"{"instance_id":"I1","data":{"event":"connection.update","data":{}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(status(unknown), 200);
    assert_eq!(
        post(&d, &message("AFTER", "84933313000", "price")).await,
        200
    );
    assert_eq!(
        wait_for_sends(&api, "send", 1, Duration::from_secs(10))
            .await
            .len(),
        1
    );
    let ready = client.get(d.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let metrics = client
        .get(d.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("waflow_events_total"), "{metrics}");
    assert!(
        metrics.contains("waflow_rule_matches_total{instance=\"default\",rule=\"prices\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_rule_file_on_reload_leaves_the_old_rules_working() {
    let api = api_ok().await;
    let (d, dir) = start(&api, "").await;
    std::fs::write(
        dir.path().join("rules/rules.yaml"),
        "rules:\n  - name: x\n    on: mesage\n    actions: []\n",
    )
    .unwrap();
    d.signal("-HUP");
    wait_for_log(&d, "reload rejected").await;
    assert!(d.log().contains("reload rejected"), "{}", d.log());
    assert!(d.log().contains("unknown value `mesage`"), "{}", d.log());
    post(&d, &message("RL1", "84933313000", "price")).await;
    let got = wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["message"], "Prices: 15 EUR");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_rule_file_is_picked_up_on_change() {
    let api = api_ok().await;
    let (d, dir) = start(&api, "").await;
    std::fs::write(
        dir.path().join("rules/rules.yaml"),
        RULES.replace("Prices: 15 EUR", "New prices"),
    )
    .unwrap();
    wait_for_log(&d, "reloaded config and rules").await;
    post(&d, &message("NEW1", "84933313000", "price")).await;
    let got = wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    assert_eq!(got[0]["message"], "New prices", "{}", d.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_typed_on_the_phone_pauses_the_bot_in_that_chat() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "human_pause: 30m\n").await;
    let typed = with_key(
        message("PHONE1", "84900000001", "I'll handle this"),
        "fromMe",
        json!(true),
    );
    assert_eq!(post(&d, &typed).await, 200);
    assert_eq!(post(&d, &message("C1", "84900000001", "price?")).await, 200);
    assert_eq!(post(&d, &message("C2", "84900000002", "price?")).await, 200);
    wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    let got = settle(&api, "send").await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["number"], "84900000002");
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_hook_calls_send_and_unsigned_ones_do_not() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "").await;
    let client = reqwest::Client::new();
    let body = json!({"id": "A-17", "status": "shipped", "customer": {"phone": "+84 933 313 000"}})
        .to_string();
    let unsigned = client
        .post(d.url("/hooks/shop"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    let wrong = client
        .post(d.url("/hooks/shop"))
        .header(
            "X-Waflow-Signature",
            waflow::server::sign("not-the-secret", body.as_bytes()),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let wrong_answer = wrong.text().await.unwrap();
    // An unknown hook looks like a bad signature: hook names cannot be probed.
    let unknown = client
        .post(d.url("/hooks/nope"))
        .header(
            "X-Waflow-Signature",
            waflow::server::sign("not-the-secret", body.as_bytes()),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 401);
    assert_eq!(unknown.text().await.unwrap(), wrong_answer);
    assert!(settle(&api, "send").await.is_empty());
    assert_eq!(post_hook(&d, "shop", &body).await, 202);
    let got = wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["number"], "84933313000");
    assert_eq!(got[0]["message"], "Order A-17 shipped");
    let by_query = client
        .post(d.url(&format!("/hooks/shop?secret={HOOK_SECRET}")))
        .body(
            json!({"id": "A-18", "status": "shipped", "customer": {"phone": "84933313001"}})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status().as_u16(), 202);
    assert_eq!(
        wait_for_sends(&api, "send", 2, Duration::from_secs(10))
            .await
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn relogin_required_pauses_sending_without_burning_the_budget() {
    let relogin = r#"{"status":"error","message":"This WhatsApp account relogin required"}"#;
    let api = api_failing_then_ok(ResponseTemplate::new(200).set_body_string(relogin), 5).await;
    let (d, _dir) = start(&api, "").await;
    post(&d, &message("LOGIN1", "84933313000", "price")).await;
    // Five relogin answers with attempts: 3 would make a dead letter if they counted.
    let got = wait_for_sends(&api, "send", 6, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 6, "{}", d.log());
    assert!(d.log().contains("sending paused"), "{}", d.log());
    let report = status_when(&d, |r| r["report"]["sent"] == 1).await;
    assert_eq!(report["report"]["sent"], 1, "{report}");
    assert_eq!(report["report"]["dead_letters"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_error_makes_a_dead_letter_that_can_be_retried() {
    let refused = r#"{"status":"error","message":"Phone number is required"}"#;
    let api = api_failing_then_ok(ResponseTemplate::new(200).set_body_string(refused), 1).await;
    let (d, _dir) = start(&api, "").await;
    post(&d, &message("DEAD1", "84933313000", "price")).await;
    wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waflow = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_waflow"))
            .current_dir(&d.dir)
            .args(["-c", "waflow.yaml"])
            .args(args)
            .output()
            .unwrap()
    };
    let listed =
        String::from_utf8_lossy(&waflow(&["outbox", "list", "--dead"]).stdout).into_owned();
    assert!(
        listed.contains("dead") && listed.contains("Phone number is required"),
        "{listed}"
    );
    let retried = waflow(&["outbox", "retry", "--all-dead"]);
    assert!(
        retried.status.success(),
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    assert_eq!(
        wait_for_sends(&api, "send", 2, Duration::from_secs(10))
            .await
            .len(),
        2
    );
}

const REMINDER: &str = r#"rules:
  - name: standup
    on: schedule
    cron: "0 9 * * MON-FRI"
    timezone: Europe/Berlin
    CATCH_UP
    actions:
      - send_group: { group: "120363025246125486@g.us", text: "Stand-up {{ now.iso }}" }
"#;

/// A folder with the reminder rule (`catch_up` given or not) and a config for `api`.
fn reminder_setup(api: &MockServer, catch_up: Option<&str>) -> (tempfile::TempDir, u16) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, "");
    let line = catch_up.map_or(String::new(), |c| format!("catch_up: {c}"));
    std::fs::write(
        dir.path().join("rules/rules.yaml"),
        REMINDER.replace("CATCH_UP", &line),
    )
    .unwrap();
    (dir, port)
}

/// The first three reminders sent when the test clock starts at `start`,
/// 40,000 times faster than real time (a weekend passes in seconds).
async fn first_three_reminders(start: &str) -> Vec<Value> {
    let api = api_ok().await;
    let (dir, port) = reminder_setup(&api, None);
    let mut d = run_clock(dir.path(), port, start, "40000").await;
    let got = wait_for_sends(&api, "send_group", 3, Duration::from_secs(30)).await;
    d.stop();
    assert!(got.len() >= 3, "{}", d.log());
    got[..3].to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weekday_reminder_arrives_at_nine_local_time_across_spring_forward() {
    // Friday 06:00 CET (three hours, a quarter of a second, for a slow start);
    // the clocks go forward on Sunday.
    let got = first_three_reminders("2026-03-27T05:00:00Z").await;
    assert_eq!(
        texts(&got),
        [
            "Stand-up 2026-03-27T09:00:00+01:00",
            "Stand-up 2026-03-30T09:00:00+02:00",
            "Stand-up 2026-03-31T09:00:00+02:00"
        ]
    );
    assert_eq!(got[0]["group_id"], "120363025246125486@g.us");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weekday_reminder_arrives_at_nine_local_time_across_fall_back() {
    // Friday 06:00 CEST; the clocks go back on Sunday.
    let got = first_three_reminders("2026-10-23T04:00:00Z").await;
    assert_eq!(
        texts(&got),
        [
            "Stand-up 2026-10-23T09:00:00+02:00",
            "Stand-up 2026-10-26T09:00:00+01:00",
            "Stand-up 2026-10-27T09:00:00+01:00"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restarts_never_fire_twice_and_catch_up_only_within_its_window() {
    let api = api_ok().await;
    let (dir, port) = reminder_setup(&api, Some("15m"));
    // Friday 08:59:50 CET at 10x: the 09:00 run fires about a second in.
    let mut d = run_clock(dir.path(), port, "2026-03-27T07:59:50Z", "10").await;
    assert_eq!(
        wait_for_sends(&api, "send_group", 1, Duration::from_secs(10))
            .await
            .len(),
        1,
        "{}",
        d.log()
    );
    d.stop();
    // Restarted 30 s after the run: it must not fire again.
    let mut d = run_clock(dir.path(), port, "2026-03-27T08:00:30Z", "10").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    d.stop();
    assert_eq!(sends(&api, "send_group").await.len(), 1, "{}", d.log());
    // Down over the weekend, back on Monday at 09:10 CEST: the 09:00 run is 10 min late, within catch_up.
    let mut d = run_clock(dir.path(), port, "2026-03-30T07:10:00Z", "1").await;
    let got = wait_for_sends(&api, "send_group", 2, Duration::from_secs(10)).await;
    d.stop();
    assert_eq!(
        texts(&got),
        [
            "Stand-up 2026-03-27T09:00:00+01:00",
            "Stand-up 2026-03-30T09:00:00+02:00"
        ],
        "{}",
        d.log()
    );
    // And once more: the caught-up run is not repeated.
    let mut d = run_clock(dir.path(), port, "2026-03-30T07:11:00Z", "1").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    d.stop();
    assert_eq!(sends(&api, "send_group").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_missed_beyond_catch_up_is_skipped_and_logged() {
    let api = api_ok().await;
    let (dir, port) = reminder_setup(&api, None);
    let mut d = run_clock(dir.path(), port, "2026-03-27T07:59:50Z", "10").await;
    assert_eq!(
        wait_for_sends(&api, "send_group", 1, Duration::from_secs(10))
            .await
            .len(),
        1
    );
    d.stop();
    // Back on Monday at 09:10 CEST without catch_up: the missed run is skipped.
    let mut d = run_clock(dir.path(), port, "2026-03-30T07:10:00Z", "1").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    d.stop();
    assert_eq!(sends(&api, "send_group").await.len(), 1);
    assert!(
        d.log()
            .contains("missed while the daemon was down are skipped"),
        "{}",
        d.log()
    );
}
