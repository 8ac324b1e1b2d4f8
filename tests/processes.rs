//! Several waflow processes on one PostgreSQL database (SPEC §9), each the
//! real binary with its own config folder and port: any of them takes
//! webhooks, one of them sends for the number (its lease), and when that
//! one is killed another takes the number over — no event lost, none
//! answered twice beyond the one send that may have been in flight.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Three daemons on one new database, leases of `lease`.
async fn three(
    api: &wiremock::MockServer,
    lease: &str,
) -> Option<Vec<(Daemon, tempfile::TempDir)>> {
    let url = common::postgres::database()?;
    let mut daemons = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        write_config(dir.path(), &api.uri(), port, "");
        edit_config(
            dir.path(),
            "store: waflow.db",
            &format!("store: {{ path: \"{url}\", lease: {lease} }}"),
        );
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
    let Some(daemons) = three(&api, "15s").await else {
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
    let Some(mut daemons) = three(&api, "2s").await else {
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
