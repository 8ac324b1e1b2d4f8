//! The daemon when its store fails under it: a real SQLite file whose
//! writes are made to fail (a trigger that aborts them, as a full disk
//! would), the real binary, a local mock of the remote API.

mod common;

use std::time::Duration;

use common::*;

/// Makes every write that confirms a send fail, as a full disk would.
const NO_CONFIRMATIONS: &str = "CREATE TRIGGER no_confirmations BEFORE UPDATE OF state ON outbox
     WHEN NEW.state = 'sent' BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END;";

fn store(d: &Daemon) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(d.dir.join("waflow.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

async fn metrics(d: &Daemon) -> String {
    reqwest::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confirmation_the_store_cannot_write_is_kept_and_the_send_is_not_made_again() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "").await;
    store(&d).execute_batch(NO_CONFIRMATIONS).unwrap();

    assert_eq!(post(&d, &message("F1", "84933313000", "price?")).await, 200);
    wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    wait_for_log(&d, "the store could not record an outcome of the outbox").await;
    // The worker keeps the confirmation and tries again; it neither claims
    // the row again nor sends anything else meanwhile.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sends(&api, "send").await.len(), 1, "{}", d.log());
    let counted = metrics(&d).await;
    assert!(
        counted.contains("waflow_store_errors_total{op=\"confirm\"}"),
        "{counted}"
    );

    // The disk has room again: the kept confirmation is written, and the
    // daemon goes on answering.
    store(&d)
        .execute_batch("DROP TRIGGER no_confirmations;")
        .unwrap();
    let report = status_when(&d, |r| r["report"]["sent"] == 1).await;
    assert_eq!(report["report"]["sent"], 1, "{report}");
    assert_eq!(post(&d, &message("F2", "84933313001", "price?")).await, 200);
    wait_for_sends(&api, "send", 2, Duration::from_secs(10)).await;
    assert_eq!(settle(&api, "send").await.len(), 2, "{}", d.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_read_of_a_chats_state_keeps_the_event_queued_instead_of_guessing() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "").await;
    use_rules(
        &d,
        "rules:\n  - name: ask-size\n    on: message\n    match: { text: '(?i)shirt', state: { step: null } }\n    actions:\n      - reply: \"Which size?\"\n",
    )
    .await;
    // Reads of per-chat state fail: read as "no state", the rule would match.
    store(&d)
        .execute_batch("ALTER TABLE chat_state RENAME TO chat_state_away;")
        .unwrap();
    assert_eq!(
        post(&d, &message("R1", "84933313000", "a shirt")).await,
        200
    );
    wait_for_log(&d, "cannot process an event now; it stays queued").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(sends(&api, "send").await.is_empty(), "{}", d.log());

    // The store reads again: the queued event is processed, once.
    store(&d)
        .execute_batch("ALTER TABLE chat_state_away RENAME TO chat_state;")
        .unwrap();
    let got = wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    assert_eq!(got[0]["message"], "Which size?");
    assert_eq!(settle(&api, "send").await.len(), 1, "{}", d.log());
}
