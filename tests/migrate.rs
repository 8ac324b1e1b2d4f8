//! `waflow migrate --to URL`: an SQLite store's history, open work and
//! opt-out list copied into a new PostgreSQL database; the daemon started
//! on it recognises the old messages as duplicates and keeps the opted-out
//! number out. It refuses while a daemon runs on the file and into a
//! database that holds a store already.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

fn waflow(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_waflow"))
        .current_dir(dir)
        .args(["-c", "waflow.yaml"])
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sqlite_store_moves_to_postgres_with_its_history_and_opt_outs() {
    let Some(url) = common::postgres::database() else {
        return;
    };
    let api = api_ok().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, "");
    let mut d = start_in(dir.path(), port).await;
    for (id, from) in [("MIG1", "84907700401"), ("MIG2", "84907700402")] {
        assert_eq!(post(&d, &message(id, from, "price?")).await, 200);
    }
    wait_for_sends(&api, "send", 2, Duration::from_secs(10)).await;
    // Not while the daemon runs: the copy would miss what it writes meanwhile.
    let refused = waflow(dir.path(), &["migrate", "--to", &url]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("a daemon runs on"),
        "{}",
        text(&refused)
    );
    d.stop();
    let added = waflow(dir.path(), &["optout", "add", "84907700403"]);
    assert!(added.status.success(), "{}", text(&added));

    let copied = waflow(dir.path(), &["--json", "migrate", "--to", &url]);
    assert!(copied.status.success(), "{}", text(&copied));
    let report: serde_json::Value = serde_json::from_slice(&copied.stdout).unwrap();
    assert_eq!(report["copied"]["inbox"], 2, "{report}");
    assert_eq!(report["copied"]["opt_outs"], 1, "{report}");
    assert_eq!(report["copied"]["sent"], 2, "{report}");
    let again = waflow(dir.path(), &["migrate", "--to", &url]);
    assert!(
        text(&again).contains("holds a store already"),
        "{}",
        text(&again)
    );

    edit_config(dir.path(), "store: waflow.db", &format!("store: \"{url}\""));
    let d = start_in(dir.path(), port).await;
    // The API posts MIG1 again: a duplicate; the opted-out number gets nothing.
    assert_eq!(
        post(&d, &message("MIG1", "84907700401", "price?")).await,
        200
    );
    assert_eq!(
        post(&d, &message("MIG3", "84907700403", "price?")).await,
        200
    );
    assert_eq!(
        post(&d, &message("MIG4", "84907700404", "price?")).await,
        200
    );
    let got = wait_for_sends(&api, "send", 3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let numbers: Vec<String> = sends(&api, "send")
        .await
        .iter()
        .map(|s| s["number"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        numbers,
        ["84907700401", "84907700402", "84907700404"],
        "{got:?}\n{}",
        d.log()
    );
}
