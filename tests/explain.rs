//! The decision trail through the real daemon (SPEC §8): `waflow explain`
//! tells, for a message, which rules matched and why the others did not,
//! what was sent and its delivery status as the webhook reported it.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const RULES: &str = r#"rules:
  - name: greeting
    on: message
    match: { text: '(?i)^(hello|hi)\b' }
    actions:
      - reply: "Hello!"
  - name: vip
    on: message
    match: { from: ["84999999999"] }
    actions:
      - reply: "Welcome back"
  - name: evenings
    on: message
    if: "now.hour >= 25"
    actions:
      - reply: "Good evening"
  - name: prices
    on: message
    match: { text: '(?i)price' }
    actions:
      - reply: "Prices: 15 EUR"
"#;

fn status(id: &str, code: i64) -> Value {
    json!({
        "instance_id": "I1",
        "data": { "event": "messages.update", "data": [{
            "key": { "remoteJid": "84933313000@s.whatsapp.net", "fromMe": true, "id": id },
            "update": { "status": code }
        }]}
    })
}

fn explain(d: &Daemon, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_waflow"))
        .current_dir(&d.dir)
        .args(["-c", "waflow.yaml", "explain"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The text with its times (which the test does not choose) replaced.
fn timeless(text: &str) -> String {
    let stamp = regex_automata::meta::Regex::new(
        r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?( UTC|Z|[+-]\d{2}:\d{2})?",
    )
    .unwrap();
    let mut out = String::new();
    let mut last = 0;
    for m in stamp.find_iter(text) {
        out.push_str(&text[last..m.start()]);
        out.push_str("TIME");
        last = m.end();
    }
    out.push_str(&text[last..]);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_tells_why_each_rule_did_or_did_not_answer_and_what_became_of_the_send() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "").await;
    use_rules(&d, RULES).await;
    assert_eq!(
        post(&d, &message("M1", "84933313000", "what is the price?")).await,
        200
    );
    wait_for_sends(&api, "send", 1, Duration::from_secs(5)).await;
    assert_eq!(
        post(&d, &message("M2", "84933313000", "thanks, bye")).await,
        200
    );
    // Delivery reports: delivered, read, then a late "delivered" that changes nothing.
    for code in [3, 4, 3] {
        assert_eq!(post(&d, &status("BAE5OK", code)).await, 200);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (ok, text, err) = explain(&d, &["M1"]);
    assert!(ok, "{err}");
    insta::assert_snapshot!(timeless(&text), @r#"
    TIME — text message from 84933313000 (direct): "what is the price?"
      ✓ prices: matched
      ✗ vip: sender 84933313000 is not in match.from
      ✗ evenings: if: `now.hour >= 25` is false
      - 1 more message rule not considered: their text patterns need words this text lacks
      → #1 prices {"send":{"to":"84933313000","text":"Prices: 15 EUR"}}: sent as BAE5OK, read at TIME
    "#);

    // One of our sends' ids leads to the event it answered.
    let (ok, by_send, _) = explain(&d, &["BAE5OK"]);
    assert!(ok);
    assert_eq!(by_send, text);

    let (ok, json_text, _) = explain(&d, &["--json", "M1"]);
    assert!(ok);
    let report: Value = serde_json::from_str(&json_text).unwrap();
    let send = &report["events"][0]["sends"][0];
    assert_eq!(
        (&send["state"], &send["delivery"]),
        (&json!("sent"), &json!("read")),
        "{report}"
    );
    assert_eq!(report["events"][0]["trail"]["matched"], json!(["prices"]));

    let (ok, chat, err) = explain(&d, &["--chat", "+84 933 313 000", "--limit", "5"]);
    assert!(ok, "{err}");
    insta::assert_snapshot!(timeless(&chat), @r#"
    TIME — text message from 84933313000 (direct): "what is the price?"
      ✓ prices: matched
      ✗ vip: sender 84933313000 is not in match.from
      ✗ evenings: if: `now.hour >= 25` is false
      - 1 more message rule not considered: their text patterns need words this text lacks
      → #1 prices {"send":{"to":"84933313000","text":"Prices: 15 EUR"}}: sent as BAE5OK, read at TIME
    TIME — text message from 84933313000 (direct): "thanks, bye"
      no rule matched
      ✗ vip: sender 84933313000 is not in match.from
      ✗ evenings: if: `now.hour >= 25` is false
      - 2 more message rules not considered: their text patterns need words this text lacks
    "#);

    let (ok, _, err) = explain(&d, &["NOPE"]);
    assert!(!ok);
    assert!(err.contains("no message NOPE in the store"), "{err}");
}
