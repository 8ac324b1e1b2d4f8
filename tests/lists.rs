//! Contact lists through the real daemon (SPEC §10): a 1,000-row CSV
//! reminder reaches every person on it once, and no one who opted out or
//! whose row is bad; the same with the daemon killed ten times mid-list;
//! pacing, quiet hours and the daily cap of first contacts hold a list
//! without dropping anyone; a list URL that fails sends nothing and is
//! read again at the next tick.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The schedule of every list here fires at 18:00 in Berlin; the daemon
/// starts a second before.
const JUST_BEFORE: &str = "2026-03-02T17:59:59+01:00";
/// The start of a clock that runs 7,200 times faster: the daemon starts
/// an hour (half a second) before the fire.
const HOUR_BEFORE: &str = "2026-03-02T17:00:00+01:00";

fn rule(source: &str) -> String {
    format!(
        r#"rules:
  - name: reminders
    on: schedule
    cron: "0 18 * * *"
    timezone: Europe/Berlin
    # A daemon that starts late on a loaded machine still fires the run.
    catch_up: 1h
    for_each: {{ {source} }}
    actions:
      - send: {{ to: "{{{{ row.phone }}}}", text: "Hi {{{{ row.name }}}}, see you tomorrow", allow_cold: true }}
"#
    )
}

/// A list of `valid` people, then `opted` more (to be put on the opt-out
/// list), with `bad` malformed rows spread among them; the numbers of each.
struct People {
    csv: String,
    valid: Vec<String>,
    opted: Vec<String>,
}

fn people(valid: usize, opted: usize, bad: usize) -> People {
    let number = |i: usize| format!("8490{:07}", 1_000_000 + i);
    let mut csv = String::from("\u{feff}name;phone;note\r\n");
    let (mut valid_numbers, mut opted_numbers) = (Vec::new(), Vec::new());
    let mut bad_left = bad;
    for i in 0..valid + opted {
        if bad_left > 0 && i % 40 == 7 {
            // Three kinds of bad rows: no phone, not a number, a field short.
            csv.push_str(match bad_left % 3 {
                0 => "Nobody;;no phone\r\n",
                1 => "\"Letters, Only\";call-me-maybe;x\r\n",
                _ => "Short;849\r\n",
            });
            bad_left -= 1;
        }
        let n = number(i);
        csv.push_str(&format!(
            "\"Person {i}\";+{n};\"a note; with a separator\"\r\n"
        ));
        if i < valid {
            valid_numbers.push(n);
        } else {
            opted_numbers.push(n);
        }
    }
    assert_eq!(bad_left, 0, "not enough rows to spread the bad ones in");
    People {
        csv,
        valid: valid_numbers,
        opted: opted_numbers,
    }
}

/// Writes config, rule and list; `extra` is more config.
fn setup(dir: &Path, api: &str, port: u16, extra: &str, source: &str, csv: Option<&str>) {
    write_config(dir, api, port, extra);
    edit_config(
        dir,
        "relogin_probe: 500ms\n",
        "relogin_probe: 500ms\n  echo_wait: 1s\n",
    );
    std::fs::write(dir.join("rules/rules.yaml"), rule(source)).unwrap();
    if let Some(csv) = csv {
        std::fs::create_dir_all(dir.join("rules/lists")).unwrap();
        std::fs::write(dir.join("rules/lists/people.csv"), csv).unwrap();
    }
}

/// A folder with config, rule and the list `csv` (`extra` more config),
/// and the port its daemon is to listen on.
fn prepared(api: &MockServer, extra: &str, csv: &str) -> (tempfile::TempDir, u16) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let source = "csv: ./lists/people.csv";
    setup(dir.path(), &api.uri(), port, extra, source, Some(csv));
    (dir, port)
}

fn waflow(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_waflow"))
        .current_dir(dir)
        .args(["-c", "waflow.yaml"])
        .args(args)
        .output()
        .unwrap()
}

/// `at` moved on by `by`, as RFC 3339.
fn later(at: &str, by: Duration) -> String {
    let t: jiff::Timestamp = at.parse().unwrap();
    (t + jiff::SignedDuration::try_from(by).unwrap()).to_string()
}

/// Creates the store (a first short run), puts `numbers` on its opt-out list.
async fn opt_out(dir: &Path, port: u16, numbers: &[String]) {
    let mut d = run_clock(dir, port, "2026-03-02T12:00:00+01:00", "1").await;
    d.stop();
    for n in numbers {
        let out = waflow(dir, &["optout", "add", n]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// How many times each number got a message.
async fn per_number(api: &MockServer) -> BTreeMap<String, usize> {
    let mut got = BTreeMap::new();
    for send in sends(api, "send").await {
        *got.entry(send["number"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    got
}

fn list_status(dir: &Path) -> Value {
    let out = waflow(dir, &["--json", "status"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["instances"][0]["report"]["lists"][0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_row_list_reaches_everyone_once_but_the_opted_out_and_the_bad_rows() {
    let api = api_ok().await;
    let list = people(930, 50, 20);
    let (dir, port) = prepared(&api, "safety:\n  cold_daily_cap: 5000\n", &list.csv);
    opt_out(dir.path(), port, &list.opted).await;
    let d = run_clock(dir.path(), port, JUST_BEFORE, "1").await;
    wait_for_sends(&api, "send", 930, Duration::from_secs(90)).await;
    settle(&api, "send").await;
    let got = per_number(&api).await;
    let expected: BTreeMap<String, usize> = list.valid.iter().map(|n| (n.clone(), 1)).collect();
    assert_eq!(got, expected, "{}", d.log());
    let status = list_status(dir.path());
    assert_eq!(
        (
            &status["total"],
            &status["planned"],
            &status["bad"],
            &status["sent"]
        ),
        (&json!(1000), &json!(980), &json!(20), &json!(930)),
        "{status}"
    );
    assert_eq!(status["blocked"], json!({"opted_out": 50}), "{status}");
    let bad: Vec<&str> = status["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert!(
        bad.iter()
            .any(|r| r.contains("fields where the header has 3")),
        "{bad:?}"
    );
    assert!(
        bad.iter().any(|r| r.contains("is not a phone number")),
        "{bad:?}"
    );
    let text = String::from_utf8(waflow(dir.path(), &["status"]).stdout).unwrap();
    assert!(
        text.contains("reminders (rules/lists/people.csv)")
            && text.contains("1000 rows, 980 planned, 0 left out by where, 20 bad")
            && text.contains("sent 930, waiting 0, blocked 50 (opted_out 50), dead letters 0"),
        "{text}"
    );
    let metrics = metrics_of(&d).await;
    assert!(
        metrics.contains(
            r#"waflow_list_rows_total{instance="default",rule="reminders",outcome="bad"} 20"#
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_killed_ten_times_mid_way_reaches_everyone_with_at_most_one_repeat_per_kill() {
    use rand::Rng;
    let api = api_ok().await;
    let list = people(930, 50, 20);
    let (dir, port) = prepared(&api, "safety:\n  cold_daily_cap: 5000\n", &list.csv);
    // Paced so that the kills land mid-list.
    edit_config(dir.path(), "min_interval: 0s", "min_interval: 8ms");
    opt_out(dir.path(), port, &list.opted).await;
    let started = Instant::now();
    // Each restart's clock goes on from where the last one was.
    let clock = || later(JUST_BEFORE, started.elapsed());
    let mut d = run_clock(dir.path(), port, &clock(), "1").await;
    // The kills come once the list is going out.
    wait_for_sends(&api, "send", 1, Duration::from_secs(30)).await;
    let (mut waits, mut sent_at_kill) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        let wait = rand::rng().random_range(300..900);
        waits.push(wait);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        sent_at_kill.push(sends(&api, "send").await.len());
        d.kill9();
        d = run_clock(dir.path(), port, &clock(), "1").await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while per_number(&api).await.len() < 930 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    settle(&api, "send").await;
    let got = per_number(&api).await;
    let reached: Vec<&String> = got.keys().collect();
    let mut expected: Vec<&String> = list.valid.iter().collect();
    expected.sort();
    assert_eq!(reached, expected, "kills after {waits:?} ms\n{}", d.log());
    let repeats: usize = got.values().map(|n| n - 1).sum();
    assert!(
        repeats <= 10,
        "{repeats} repeats in 10 kills (after {waits:?} ms)"
    );
    // The kills came while the list was going out, not after.
    let mid_list = sent_at_kill.iter().filter(|n| **n < 930).count();
    assert!(mid_list >= 5, "sends at each kill: {sent_at_kill:?}");
    eprintln!("10 kills after {waits:?} ms, at {sent_at_kill:?} sends: {repeats} repeats");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_keeps_the_numbers_pace() {
    let (api, arrivals) = api_timed().await;
    let list = people(25, 0, 0);
    let (dir, port) = prepared(&api, "safety:\n  cold_daily_cap: 5000\n", &list.csv);
    edit_config(dir.path(), "min_interval: 0s", "min_interval: 200ms");
    let d = run_clock(dir.path(), port, JUST_BEFORE, "1").await;
    wait_for_sends(&api, "send", 25, Duration::from_secs(30)).await;
    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 25, "{}", d.log());
    // No two sends closer than the minimum interval (a little slack for
    // the loopback): at most 300 in any 60 s window at 200 ms.
    let closest = arrivals
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .min()
        .unwrap();
    assert!(
        closest >= Duration::from_millis(190),
        "closest sends {closest:?} apart"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_hours_hold_a_list_until_the_morning() {
    let api = api_ok().await;
    let list = people(12, 0, 0);
    let (dir, port) = prepared(
        &api,
        "safety:\n  cold_daily_cap: 5000\n  quiet_hours: \"17:00-08:00\"\n",
        &list.csv,
    );
    edit_config_rules(dir.path(), "0 18 * * *", "0 18 2 3 *");
    // 18:00 is quiet: the list waits for 08:00, 14 hours on, 7 s at 7,200×.
    let d = run_clock(dir.path(), port, HOUR_BEFORE, "7200").await;
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(sends(&api, "send").await.is_empty(), "sent in quiet hours");
    let status = list_status(dir.path());
    assert_eq!(
        status["waiting"],
        json!({"quiet_hours": 12}),
        "{status}\n{}",
        d.log()
    );
    let got = wait_for_sends(&api, "send", 12, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 12, "{}", d.log());
    assert_eq!(per_number(&api).await.len(), 12);
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_the_daily_cap_of_first_contacts_a_list_waits_for_the_next_day() {
    let api = api_ok().await;
    let list = people(5, 0, 0);
    let (dir, port) = prepared(&api, "safety:\n  cold_daily_cap: 3\n", &list.csv);
    // Only this day's fire (the next day's would be a list of its own).
    edit_config_rules(dir.path(), "0 18 * * *", "0 18 2 3 *");
    // A day is 12 s at 7,200×.
    let d = run_clock(dir.path(), port, HOUR_BEFORE, "7200").await;
    wait_for_sends(&api, "send", 3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(sends(&api, "send").await.len(), 3, "{}", d.log());
    let status = list_status(dir.path());
    assert_eq!(status["waiting"], json!({"cold_cap": 2}), "{status}");
    // The next day the other two go: reported, not dropped.
    wait_for_sends(&api, "send", 5, Duration::from_secs(30)).await;
    assert_eq!(settle(&api, "send").await.len(), 5, "{}", d.log());
    assert_eq!(per_number(&api).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_url_that_fails_sends_nothing_and_is_read_again_at_the_next_tick() {
    let api = api_ok().await;
    let rows = json!([
        {"name": "Ana", "phone": "84900000001"},
        {"name": "Bo", "phone": "84900000002"},
    ]);
    Mock::given(method("GET"))
        .and(path("/crm/today"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/today"))
        .respond_with(ResponseTemplate::new(200).set_body_json(rows))
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let source = format!(
        "http: {{ url: \"{}/crm/today?key=list-key-123\", headers: {{ X-Api-Key: k-456 }} }}",
        api.uri()
    );
    setup(
        dir.path(),
        &api.uri(),
        port,
        "safety:\n  cold_daily_cap: 5000\n",
        &source,
        None,
    );
    // Every minute: the next tick is a second away at 60×.
    edit_config_rules(dir.path(), "0 18 * * *", "* * * * *");
    let d = run_clock(dir.path(), port, "2026-03-02T17:59:59+01:00", "60").await;
    wait_for_log(&d, "the list could not be read").await;
    assert!(sends(&api, "send").await.is_empty());
    let got = wait_for_sends(&api, "send", 2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "{}", d.log());
    let mut d = d;
    d.stop();
    let log = d.log();
    assert!(log.contains("answered HTTP 500"), "{log}");
    assert!(
        !log.contains("list-key-123") && !log.contains("k-456"),
        "{log}"
    );
    let requests = api.received_requests().await.unwrap();
    let list_call = requests
        .iter()
        .find(|r| r.url.path() == "/crm/today")
        .unwrap();
    assert_eq!(list_call.headers.get("x-api-key").unwrap(), "k-456");
}

fn edit_config_rules(dir: &Path, from: &str, to: &str) {
    let path = dir.join("rules/rules.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_call_reaches_each_item_of_its_body_once() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "safety:\n  cold_daily_cap: 5000\n").await;
    use_rules(
        &d,
        &format!(
            r#"rules:
  - name: ready
    on: webhook
    hook: orders
    secret: {HOOK_SECRET}
    for_each: {{ items: body.orders, where: "row.status == 'ready'" }}
    actions:
      - send: {{ to: "{{{{ row.phone }}}}", text: "Order {{{{ row.id }}}} is ready", allow_cold: true }}
"#
        ),
    )
    .await;
    let body = json!({"orders": [
        {"id": "A1", "phone": "84900000001", "status": "ready"},
        {"id": "A2", "phone": "84900000002", "status": "packing"},
        {"id": "A3", "phone": "not a number", "status": "ready"},
        {"id": "A4", "phone": "84900000004", "status": "ready"},
    ]})
    .to_string();
    assert_eq!(post_hook(&d, "orders", &body).await, 202);
    wait_for_sends(&api, "send", 2, Duration::from_secs(10)).await;
    let got = settle(&api, "send").await;
    assert_eq!(
        texts(&got),
        ["Order A1 is ready", "Order A4 is ready"],
        "{}",
        d.log()
    );
    assert!(d.log().contains("bad list row skipped"), "{}", d.log());
}

#[test]
fn the_example_list_can_be_previewed_before_it_runs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_waflow"))
        .current_dir(root)
        .env_remove("WAFLOW_ACCESS_TOKEN")
        // No store: the preview says nothing of what protections would do now.
        .env(
            "WAFLOW_STORE",
            std::env::temp_dir().join("waflow-no-such-store.db"),
        )
        .args([
            "-c",
            "examples/waflow.yaml",
            "simulate",
            "--schedule",
            "appointment-reminders",
        ])
        .args(["--now", "2026-03-30T18:00:00+02:00"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!(String::from_utf8(out.stdout).unwrap(), @r#"
    event: schedule appointment-reminders at 2026-03-30T16:00:00Z
      ✓ appointment-reminders: list examples/../rules/lists/appointments.csv: 5 rows, 3 to send, 1 left out by where, 1 bad
          line 2: {"send":{"to":"84900000001","text":"Hi Ana Souza, a reminder of your appointment tomorrow at 09:30. Reply STOP to get no more reminders."}}
          line 3: {"send":{"to":"84900000002","text":"Hi Bảo, Trần, a reminder of your appointment tomorrow at 11:00. Reply STOP to get no more reminders."}}
          line 4: left out: where: `row.date == now.tomorrow` is false
          line 5: bad row: action #1: send: `` is not a phone number: write the digits with the country code, without +, e.g. 84933313000
          line 6: {"send":{"to":"84900000005","text":"Hi Emil, a reminder of your appointment tomorrow at 16:30. Reply STOP to get no more reminders."}}
    (dry-run: no api.access_token is set (WAFLOW_ACCESS_TOKEN))
    "#);
    let out = Command::new(env!("CARGO_BIN_EXE_waflow"))
        .current_dir(root)
        .args([
            "-c",
            "examples/waflow.yaml",
            "simulate",
            "--schedule",
            "appointment-remind",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did you mean `appointment-reminders`?"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
