//! Conversation safety through the real daemon: opt-out, repeat suppression,
//! the per-chat ceiling, cold contacts, the loop breaker, quiet hours, the
//! ban-signal breaker and interactive fallbacks, each against a mock of the
//! remote API.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "multi_thread")]
async fn stop_opts_out_once_and_nothing_reaches_the_number_afterwards() {
    let api = api_ok().await;
    // The messages below follow each other faster than a person types: no loop breaker here.
    let (d, _dir) = start(&api, "safety:\n  loop_breaker:\n    enabled: false\n").await;
    assert_eq!(post(&d, &message("S1", "84933313000", "Stop!")).await, 200);
    let got = wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{}", d.log());
    assert!(
        got[0]["message"].as_str().unwrap().contains("START"),
        "{got:?}"
    );
    // A second STOP changes nothing and is not confirmed again.
    post(&d, &message("S2", "84933313000", "stop")).await;
    // A matching message, and a hook send to the same number: both blocked.
    post(&d, &message("S3", "84933313000", "price?")).await;
    let body =
        json!({"id": "A-1", "status": "shipped", "customer": {"phone": "84933313000"}}).to_string();
    post_hook(&d, "shop", &body).await;
    assert_eq!(settle(&api, "send").await.len(), 1);
    assert_eq!(status_of(&d)["report"]["blocked"], 2, "{}", d.log());
    // START takes the number off the list; then it is answered again.
    post(&d, &message("S4", "84933313000", "START")).await;
    post(&d, &message("S5", "84933313000", "what is the price")).await;
    let got = wait_for_sends(&api, "send", 3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3, "{}", d.log());
    assert_eq!(got[2]["message"], "Prices: 15 EUR");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_reply_is_not_repeated_and_the_ceiling_holds() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "").await;
    // Two questions, same answer: the second is a repeat within the hour.
    post(&d, &message("P1", "84933313000", "price?")).await;
    wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    post(&d, &message("P2", "84933313000", "price again?")).await;
    assert_eq!(settle(&api, "send").await.len(), 1);
    // Another chat still gets it.
    post(&d, &message("P3", "84900000009", "price?")).await;
    assert_eq!(
        wait_for_sends(&api, "send", 2, Duration::from_secs(10))
            .await
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn safety_can_be_turned_down() {
    let api = api_ok().await;
    let (d, _dir) = start(
        &api,
        "safety:\n  repeat_window: 0s\n  per_chat_ceiling: 2/10m\n  opt_out:\n    enabled: false\n  loop_breaker:\n    enabled: false\n",
    )
    .await;
    for (i, text) in ["price?", "price??", "price???", "stop"].iter().enumerate() {
        post(&d, &message(&format!("T{i}"), "84933313000", text)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // No repeat suppression, STOP is an ordinary message, and the ceiling of 2 holds.
    let got = settle(&api, "send").await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|g| g["message"] == "Prices: 15 EUR"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cold_contacts_need_allow_cold_and_a_daily_cap_holds() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "safety:\n  cold_daily_cap: 1\n").await;
    use_rules(&d, &format!(
        "{RULES}  - name: notify\n    on: webhook\n    hook: notify\n    secret: {HOOK_SECRET}\n    actions:\n      - send: {{ to: \"{{{{ body.phone }}}}\", text: \"Hello {{{{ body.phone }}}}\" }}\n"
    ))
    .await;
    let call = |hook: &'static str, phone: &'static str| {
        let body =
            json!({"id": "X", "status": "shipped", "phone": phone, "customer": {"phone": phone}})
                .to_string();
        let d = &d;
        async move { post_hook(d, hook, &body).await }
    };
    // A number that never wrote: blocked without allow_cold.
    assert_eq!(call("notify", "84911111111").await, 202);
    // One that wrote first: fine.
    post(&d, &message("K1", "84922222222", "hello")).await;
    assert_eq!(call("notify", "84922222222").await, 202);
    // With allow_cold: the first cold number passes, the second hits the daily cap of 1.
    assert_eq!(call("shop", "84933333333").await, 202);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(call("shop", "84944444444").await, 202);
    let got = settle(&api, "send").await;
    let numbers: Vec<&str> = got.iter().map(|g| g["number"].as_str().unwrap()).collect();
    assert_eq!(numbers, ["84922222222", "84933333333"], "{}", d.log());
    let listed = Command::new(env!("CARGO_BIN_EXE_waflow"))
        .current_dir(&d.dir)
        .args(["-c", "waflow.yaml", "outbox", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("cold contact") && listed.contains("daily cap"),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cold_cap_holds_for_sends_that_leave_together() {
    let api = api_ok().await;
    // No pacing: the three sends of one event are claimed and sent as one batch.
    let (d, _dir) = start(&api, "safety:\n  cold_daily_cap: 2\n").await;
    let sends = ["84955500001", "84955500002", "84955500003"]
        .map(|n| format!("      - send: {{ to: \"{n}\", text: \"Hello\", allow_cold: true }}\n"))
        .concat();
    use_rules(&d, &format!(
        "rules:\n  - name: blast\n    on: webhook\n    hook: blast\n    secret: {HOOK_SECRET}\n    actions:\n{sends}"
    ))
    .await;
    assert_eq!(post_hook(&d, "blast", "{}").await, 202);
    let got = settle(&api, "send").await;
    assert_eq!(got.len(), 2, "{got:?}\n{}", d.log());
    assert!(d.log().contains("daily cap"), "{}", d.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_answering_our_bot_gets_muted() {
    let api = api_ok().await;
    let (d, dir) = start(&api, "safety:\n  per_chat_ceiling: off\n").await;
    std::fs::write(
        dir.path().join("rules/rules.yaml"),
        "rules:\n  - name: echo\n    on: message\n    actions:\n      - reply: \"You said: {{ msg.text }}\"\n",
    )
    .unwrap();
    wait_for_log(&d, "reloaded config and rules").await;
    // The peer answers each of our replies within a fraction of a second.
    for i in 1..=5 {
        post(
            &d,
            &message(&format!("BOT{i}"), "84955555555", &format!("ping {i}")),
        )
        .await;
        wait_for_sends(&api, "send", i, Duration::from_secs(3)).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let got = settle(&api, "send").await;
    // Ping 1 is answered; pings 2 and 3 come fast (streak 1, 2) and are answered; ping 4 makes 3: muted.
    assert_eq!(
        texts(&got),
        ["You said: ping 1", "You said: ping 2", "You said: ping 3"],
        "{}",
        d.log()
    );
    assert!(d.log().contains("answers like a bot"), "{}", d.log());
    let metrics = metrics_of(&d).await;
    assert!(
        metrics.contains("waflow_loops_broken_total{instance=\"default\"} 1"),
        "{metrics}"
    );
    // Another chat is not affected.
    post(&d, &message("HUMAN1", "84966666666", "hello")).await;
    assert_eq!(
        wait_for_sends(&api, "send", 4, Duration::from_secs(5))
            .await
            .len(),
        4
    );
}

/// Rules for the quiet-hours tests: an evening broadcast to a group, and
/// an answer that depends on the office calendar.
const EVENING: &str = r#"rules:
  - name: evening-news
    on: schedule
    cron: "CRON"
    timezone: Europe/Berlin
    actions:
      - send_group: { group: "120363025246125486@g.us", text: "News of {{ now.date }}" }
  - name: order
    on: message
    match: { text: '(?i)order' }
    stop: true
    actions:
      - reply: "Thanks for your order!"
      - send: { to: "84900000001", text: "New order from {{ msg.sender }}", allow_cold: true }
  - name: open
    on: message
    if: "in_hours('office')"
    actions:
      - reply: "We are open"
  - name: closed
    on: message
    if: "not in_hours('office')"
    actions:
      - reply: "We are closed; we answer on the next working day"
"#;

const OFFICE: &str = "timezone: Europe/Berlin\n\
    hours:\n  office:\n    open: [\"mon-fri 09:00-18:00\"]\n    holidays: [2026-03-27]\n";

/// A daemon on the test clock with the evening rules.
async fn evening(
    api: &MockServer,
    cron: &str,
    extra: &str,
    start: &str,
    rate: &str,
) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, extra);
    std::fs::write(
        dir.path().join("rules/rules.yaml"),
        EVENING.replace("CRON", cron),
    )
    .unwrap();
    (run_clock(dir.path(), port, start, rate).await, dir)
}

/// Waits until the daemon held the broadcast, and checks until when (UTC).
async fn assert_held_until(d: &Daemon, utc: &str) {
    wait_for_log(d, "quiet hours: send held").await;
    let log = d.log();
    assert!(
        log.contains(&format!("{utc} UTC")),
        "not held until {utc}: {log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn default_quiet_hours_hold_a_scheduled_broadcast_until_eight() {
    let api = api_ok().await;
    // The default quiet hours (21:00-08:00 in the config's zone) stay on.
    let extra = format!("{OFFICE}# quiet_hours: the default\n");
    // Thursday 21:00 CET; the broadcast is due at 21:30; one hour passes per
    // second. The half hour before it gives a slow start half a second.
    let (mut d, _dir) = evening(&api, "30 21 * * *", &extra, "2026-03-26T20:00:00Z", "3600").await;
    // 08:00 CET.
    assert_held_until(&d, "2026-03-27 07:00:00").await;
    // A customer writing at night is answered; the note to the owner (not a
    // reply) waits, and does not hold up the next answer in that chat.
    post(&d, &message("Q1", "84933313000", "I want to order")).await;
    wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    post(&d, &message("Q2", "84933313000", "hello?")).await;
    let got = wait_for_sends(&api, "send", 2, Duration::from_secs(10)).await;
    assert_eq!(
        texts(&got),
        [
            "Thanks for your order!",
            "We are closed; we answer on the next working day"
        ],
        "{}",
        d.log()
    );
    assert!(sends(&api, "send_group").await.is_empty());
    // After 08:00 the broadcast and the note go out, once each.
    let got = wait_for_sends(&api, "send_group", 1, Duration::from_secs(20)).await;
    let notes = wait_for_sends(&api, "send", 3, Duration::from_secs(5)).await;
    d.stop();
    assert_eq!(got.len(), 1, "{}", d.log());
    assert_eq!(got[0]["message"], "News of 2026-03-26");
    assert_eq!(notes.len(), 3, "{}", d.log());
    assert_eq!(notes[2]["message"], "New order from 84933313000");
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_outside_a_calendar_skips_holidays_weekends_and_dst() {
    let api = api_ok().await;
    let extra = format!("{OFFICE}safety:\n  quiet_hours: outside office\n");
    // Thursday 16:00 CET: the 19:00 broadcast is outside office hours; Friday
    // is a holiday, then the weekend, and the clocks go forward on Sunday.
    // The three hours before it give a slow start a quarter of a second.
    let (mut d, _dir) = evening(&api, "0 19 * * *", &extra, "2026-03-26T15:00:00Z", "40000").await;
    // Monday 09:00 CEST.
    assert_held_until(&d, "2026-03-30 07:00:00").await;
    let got = wait_for_sends(&api, "send_group", 1, Duration::from_secs(30)).await;
    d.stop();
    assert!(!got.is_empty(), "{}", d.log());
    // The first broadcast out is Thursday's, sent on Monday morning.
    assert_eq!(got[0]["message"], "News of 2026-03-26");
}

/// The text menu and the choice rule of the fallback tests.
const MENU: &str = r#"rules:
  - name: menu
    on: message
    match: { text: '(?i)^menu$' }
    actions:
      - send_buttons:
          text: "How can we help?"
          fallback: auto
          buttons:
            - { id: prices, text: "Prices" }
            - { id: hours, text: "Opening hours" }
  - name: prices
    on: message
    match: { choice: prices }
    actions:
      - reply: "{Our prices|Prices}: 15 EUR"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn refused_buttons_become_a_text_menu_and_a_typed_number_chooses() {
    let api = api_ok().await;
    Mock::given(method("POST"))
        .and(path("/api/send_template"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(
                json!({"status": "error", "message": "Interactive messages are not supported"})
                    .to_string(),
            ),
        )
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, "");
    std::fs::write(dir.path().join("rules/rules.yaml"), MENU).unwrap();
    let d = start_in(dir.path(), port).await;
    post(&d, &message("F1", "84933313000", "menu")).await;
    let got = wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{}", d.log());
    assert_eq!(sends(&api, "send_template").await.len(), 1);
    assert_eq!(
        got[0]["message"],
        "How can we help?\n\n1. Prices\n2. Opening hours"
    );
    // A person types "1": the same rule as a tap on "Prices" answers.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    post(&d, &message("F2", "84933313000", "1")).await;
    let got = wait_for_sends(&api, "send", 2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "{}", d.log());
    let answer = got[1]["message"].as_str().unwrap();
    assert!(
        answer == "Our prices: 15 EUR" || answer == "Prices: 15 EUR",
        "{answer}"
    );
    assert_eq!(status_of(&d)["report"]["dead_letters"], 0, "{}", d.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_answer_pauses_all_sending_then_it_resumes_slowly() {
    let limited = ResponseTemplate::new(200)
        .set_body_string(json!({"status": "error", "message": "rate-overlimit (429)"}).to_string());
    let api = api_failing_then_ok(limited, 1).await;
    let (d, _dir) = start(
        &api,
        "safety:\n  ban_breaker:\n    pause: 3s\n    slow_start: 2\n    slow_interval: 400ms\n",
    )
    .await;
    post(&d, &message("B1", "84933313000", "price?")).await;
    wait_for_log(&d, "all sending paused").await;
    // Reported everywhere an operator looks.
    let ready: Value = reqwest::get(d.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sending = ready["sending"].as_str().unwrap_or_default();
    assert!(
        sending.contains("paused") && sending.contains("limited"),
        "{ready}"
    );
    let status = status_of(&d);
    assert!(
        status["report"]["sending_paused"]
            .as_str()
            .is_some_and(|s| s.contains("rate-overlimit")),
        "{status}"
    );
    let metrics = metrics_of(&d).await;
    assert!(
        metrics.contains("waflow_ban_breaker_open{instance=\"default\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("waflow_ban_breaker_trips_total{instance=\"default\"} 1"),
        "{metrics}"
    );
    // Another chat's reply waits with the first: nothing is tried during the pause.
    post(&d, &message("B2", "84900000009", "price?")).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(sends(&api, "send").await.len(), 1);
    // After the pause both go out, each once, and nothing became a dead letter.
    let got = wait_for_sends(&api, "send", 3, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 3, "{}", d.log());
    assert!(
        d.log()
            .contains("sending resumed after the ban-signal pause")
    );
    assert_eq!(settle(&api, "send").await.len(), 3);
    let status = status_of(&d);
    assert_eq!(status["report"]["dead_letters"], 0, "{status}");
    assert!(status["report"]["sending_paused"].is_null(), "{status}");
}
