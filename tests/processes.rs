//! Several waflow processes on one PostgreSQL database (SPEC §9), each the
//! real binary with its own config folder and port: any of them takes
//! webhooks, one of them sends for the number (its lease), and when that
//! one is killed another takes the number over — no event lost, none
//! answered twice beyond the one send that may have been in flight.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// How each of the three daemons is set up.
struct Setup<'a> {
    lease: &'a str,
    rules: &'a str,
    /// More config.
    extra: &'a str,
    min_interval: &'a str,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            lease: "15s",
            rules: RULES,
            extra: "",
            min_interval: "0s",
        }
    }
}

/// Three daemons on one new database.
async fn three(
    api: &wiremock::MockServer,
    setup: Setup<'_>,
) -> Option<Vec<(Daemon, tempfile::TempDir)>> {
    let url = common::postgres::database()?;
    let mut daemons = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        write_config(dir.path(), &api.uri(), port, setup.extra);
        let lease = setup.lease;
        edit_config(
            dir.path(),
            "store: waflow.db",
            &format!("store: {{ path: \"{url}\", lease: {lease} }}"),
        );
        let pace = format!("min_interval: {}", setup.min_interval);
        edit_config(dir.path(), "min_interval: 0s", &pace);
        std::fs::write(dir.path().join("rules/rules.yaml"), setup.rules).unwrap();
        daemons.push((start_in(dir.path(), port).await, dir));
    }
    Some(daemons)
}

fn number(i: usize) -> String {
    format!("8490770{i:04}")
}

/// How many sends each number got.
async fn sends_per_number(api: &wiremock::MockServer) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for send in sends(api, "send").await {
        *counts
            .entry(send["number"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    counts
}

/// Waits (up to `within`) until every number of `numbers` got a send.
async fn until_answered(api: &wiremock::MockServer, numbers: &[String], within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let counts = sends_per_number(api).await;
        if numbers.iter().all(|n| counts.contains_key(n)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The live leases of `status --json`: (name, holder).
fn live_leases(status: &Value) -> Vec<(String, String)> {
    let now = waflow::units::now_ms();
    status["leases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["expires_at"].as_i64().unwrap_or(0) > now)
        .map(|l| {
            (
                l["name"].as_str().unwrap_or_default().to_owned(),
                l["holder"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Which of `daemons` holds the lease `name`.
fn holder_of(
    daemons: &[(Daemon, tempfile::TempDir)],
    leases: &[(String, String)],
    name: &str,
) -> usize {
    let holder = &leases.iter().find(|(n, _)| n == name).expect("a holder").1;
    daemons
        .iter()
        // A process is named `host:port`.
        .position(|(d, _)| d.child.is_some() && holder.ends_with(&format!(":{}", d.port)))
        .expect("the holder is one of the daemons")
}

#[tokio::test(flavor = "multi_thread")]
async fn three_processes_answer_every_event_once() {
    let api = api_ok().await;
    let Some(daemons) = three(&api, Setup::default()).await else {
        return;
    };
    let numbers: Vec<String> = (0..30).map(number).collect();
    for (i, n) in numbers.iter().enumerate() {
        let body = message(&format!("MP{i}"), n, "price please");
        // The API posts again when an answer is late; the second copy may
        // reach another process.
        for d in [&daemons[i % 3].0, &daemons[(i + 1) % 3].0] {
            assert_eq!(post(d, &body).await, 200);
        }
    }
    until_answered(&api, &numbers, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let counts = sends_per_number(&api).await;
    for n in &numbers {
        assert_eq!(counts.get(n), Some(&1), "{n}: {counts:?}");
    }
    let leases = live_leases(&status_of(&daemons[0].0));
    let processes = leases
        .iter()
        .filter(|(n, _)| n.starts_with("process:"))
        .count();
    assert_eq!(processes, 3, "{leases:?}");
    for name in ["send:default", "scheduler"] {
        let holders = leases.iter().filter(|(n, _)| n == name).count();
        assert_eq!(holders, 1, "{name}: {leases:?}");
    }
    // The sender heard of the work the other two planned as it was committed.
    let sender = holder_of(&daemons, &leases, "send:default");
    let metrics = metrics_of(&daemons[sender].0).await;
    assert!(
        metrics.contains("waflow_work_announced_total{instance=\"default\"}"),
        "{metrics}"
    );
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_waflow"))
        .current_dir(&daemons[1].0.dir)
        .args(["-c", "waflow.yaml", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("processes:") && text.contains("send:default (generation"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_sender_loses_nothing_and_another_process_takes_its_number() {
    let api = api_ok().await;
    let Some(mut daemons) = three(
        &api,
        Setup {
            lease: "2s",
            ..Setup::default()
        },
    )
    .await
    else {
        return;
    };
    let before: Vec<String> = (0..12).map(number).collect();
    for (i, n) in before.iter().enumerate() {
        assert_eq!(
            post(&daemons[i % 3].0, &message(&format!("K{i}"), n, "price")).await,
            200
        );
    }
    // Under load: the sender dies while the first events are being answered.
    wait_for_sends(&api, "send", 3, Duration::from_secs(20)).await;
    let leases = live_leases(&status_of(&daemons[0].0));
    let sender = holder_of(&daemons, &leases, "send:default");
    daemons[sender].0.kill9();
    let killed_at = Instant::now();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != sender).collect();
    let after: Vec<String> = (100..112).map(number).collect();
    for (i, n) in after.iter().enumerate() {
        let d = &daemons[survivors[i % 2]].0;
        assert_eq!(post(d, &message(&format!("A{i}"), n, "price")).await, 200);
    }
    let all: Vec<String> = before.iter().chain(&after).cloned().collect();
    until_answered(&api, &all, Duration::from_secs(40)).await;
    eprintln!(
        "the number's sends resumed {:?} after the kill",
        killed_at.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let counts = sends_per_number(&api).await;
    let missing: Vec<&String> = all.iter().filter(|n| !counts.contains_key(*n)).collect();
    assert!(missing.is_empty(), "never answered: {missing:?}");
    let repeats: usize = counts.values().map(|c| c - 1).sum();
    assert!(
        repeats <= 1,
        "more than the one send in flight went twice: {counts:?}"
    );
    let leases = live_leases(&status_of(&daemons[survivors[0]].0));
    let now_sender = holder_of(&daemons, &leases, "send:default");
    assert!(survivors.contains(&now_sender));
}

/// A tick a second to one group: above every limit meant for people.
const OPEN: &str = "safety:\n  per_chat_ceiling: off\n  loop_breaker: { enabled: false }\n";

const EVERY_SECOND: &str = r#"rules:
  - name: tick
    on: schedule
    cron: "* * * * * *"
    timezone: UTC
    actions:
      - send_group: { group: "120363025246125486@g.us", text: "{{ now.iso }}" }
"#;

/// The instants of the ticks sent so far, each with how often it was sent.
async fn ticks_sent(api: &wiremock::MockServer) -> std::collections::BTreeMap<i64, usize> {
    let mut ticks = std::collections::BTreeMap::new();
    for text in texts(&sends(api, "send_group").await) {
        let at: jiff::Timestamp = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        *ticks.entry(at.as_second()).or_default() += 1;
    }
    ticks
}

#[tokio::test(flavor = "multi_thread")]
async fn a_per_second_schedule_fires_every_tick_once_while_its_scheduler_is_killed_twice() {
    let api = api_ok().await;
    let Some(mut daemons) = three(
        &api,
        Setup {
            lease: "2s",
            rules: EVERY_SECOND,
            extra: OPEN,
            ..Setup::default()
        },
    )
    .await
    else {
        return;
    };
    let mut repeats_allowed = 0;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(20)).await;
        let leases = live_leases(&status_of(&daemons[0].0));
        let scheduler = holder_of(&daemons, &leases, "scheduler");
        // Killed while sending, it may send its last tick again on another process.
        if holder_of(&daemons, &leases, "send:default") == scheduler {
            repeats_allowed += 1;
        }
        daemons[scheduler].0.kill9();
    }
    tokio::time::sleep(Duration::from_secs(20)).await;
    let ticks = ticks_sent(&api).await;
    let (first, last) = (
        *ticks.keys().next().expect("ticks"),
        *ticks.keys().next_back().expect("ticks"),
    );
    let missing: Vec<i64> = (first..=last).filter(|t| !ticks.contains_key(t)).collect();
    assert!(
        missing.is_empty(),
        "ticks never sent: {missing:?} of {first}..={last}"
    );
    let logs: Vec<String> = daemons.iter().map(|(d, _)| d.log()).collect();
    assert!(
        last - first >= 55,
        "a minute of ticks: {first}..={last}\n{}",
        logs.join("\n-----\n")
    );
    let repeats: usize = ticks.values().map(|n| n - 1).sum();
    assert!(
        repeats <= repeats_allowed,
        "ticks sent twice beyond a send in flight: {:?}",
        ticks.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_numbers_pacing_holds_when_its_sender_changes() {
    let (api, arrivals) = api_timed().await;
    // A lease shorter than the interval: a takeover comes sooner than the next send may.
    let setup = Setup {
        lease: "1s",
        min_interval: "2s",
        ..Setup::default()
    };
    let Some(mut daemons) = three(&api, setup).await else {
        return;
    };
    let numbers: Vec<String> = (200..210).map(number).collect();
    for (i, n) in numbers.iter().enumerate() {
        let body = message(&format!("P{i}"), n, "price");
        assert_eq!(post(&daemons[i % 3].0, &body).await, 200);
    }
    // Right after a send its sender dies; later the next one stops
    // cleanly, giving the number up at once.
    for (sends_before, kill) in [(3, true), (6, false)] {
        wait_for_sends(&api, "send", sends_before, Duration::from_secs(30)).await;
        let leases = live_leases(&status_of(&daemons[0].0));
        let sender = holder_of(&daemons, &leases, "send:default");
        if kill {
            daemons[sender].0.kill9();
        } else {
            daemons[sender].0.stop();
        }
    }
    until_answered(&api, &numbers, Duration::from_secs(60)).await;
    let counts = sends_per_number(&api).await;
    let missing: Vec<&String> = numbers
        .iter()
        .filter(|n| !counts.contains_key(*n))
        .collect();
    assert!(missing.is_empty(), "never answered: {missing:?}");
    let repeats: usize = counts.values().map(|c| c - 1).sum();
    assert!(repeats <= 1, "{counts:?}");
    let arrivals = arrivals.lock().unwrap().clone();
    let gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
    // A little slack for the loopback.
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(1_950)),
        "sends to the number closer than min_interval: {gaps:?}"
    );
}
