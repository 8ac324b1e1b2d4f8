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
    let counted = metrics_of(&d).await;
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

async fn ready(d: &Daemon) -> (u16, serde_json::Value) {
    let resp = reqwest::get(d.url("/readyz")).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_makes_a_real_write_and_recovers_when_the_store_does() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "").await;
    assert_eq!(ready(&d).await.0, 200);
    store(&d)
        .execute_batch(
            "CREATE TRIGGER full_meta_u BEFORE UPDATE ON meta BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END;
             CREATE TRIGGER full_meta_i BEFORE INSERT ON meta BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END;",
        )
        .unwrap();
    let (status, body) = ready(&d).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["store"], "unavailable");
    store(&d)
        .execute_batch("DROP TRIGGER full_meta_u; DROP TRIGGER full_meta_i;")
        .unwrap();
    assert_eq!(ready(&d).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_file_deleted_under_the_daemon_gets_503_never_a_false_200() {
    let api = api_ok().await;
    let (d, _dir) = start(&api, "").await;
    assert_eq!(post(&d, &message("D1", "84933313000", "price?")).await, 200);
    wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    std::fs::remove_file(d.dir.join("waflow.db")).unwrap();
    for i in 0..3 {
        let body = message(&format!("D{}", i + 2), "84933313001", "price?");
        assert_eq!(post(&d, &body).await, 503, "{}", d.log());
    }
    assert_eq!(ready(&d).await.0, 503);
    assert!(d.log().contains("was deleted or replaced"), "{}", d.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_leaves_a_database_file_that_is_complete_on_its_own() {
    let api = api_ok().await;
    let (mut d, _dir) = start(&api, "").await;
    for i in 0..5 {
        let body = message(&format!("T{i}"), &format!("8493331300{i}"), "price?");
        assert_eq!(post(&d, &body).await, 200);
    }
    wait_for_sends(&api, "send", 5, Duration::from_secs(10)).await;
    status_when(&d, |r| r["report"]["sent"] == 5).await;
    d.stop();
    assert!(
        d.log().contains("the store is checkpointed and closed"),
        "{}",
        d.log()
    );
    let wal = d.dir.join("waflow.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the WAL still holds data"
    );
    // The database file alone, as a file-level backup would copy it.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(d.dir.join("waflow.db"), copy.path().join("waflow.db")).unwrap();
    let conn = rusqlite::Connection::open(copy.path().join("waflow.db")).unwrap();
    let (events, sent): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM inbox), (SELECT COUNT(*) FROM outbox WHERE state = 'sent')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((events, sent), (5, 5));
}

/// A small tmpfs for the store; `None` (the test is skipped) unless root.
fn small_disk(size: &str) -> Option<(tempfile::TempDir, Unmount)> {
    let dir = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: mounting a tmpfs needs root (the disk-full test did not run)");
        return None;
    }
    let unmount = Unmount(dir.path().to_owned());
    Some((dir, unmount))
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the disk of `dir`; true when it ran out of space.
fn fill(dir: &std::path::Path) -> bool {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    loop {
        if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_all()) {
            return e.raw_os_error() == Some(28);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_gets_503_and_no_reply_is_sent_twice() {
    let Some((disk, _unmount)) = small_disk("3m") else {
        return;
    };
    // Two failed attempts, then the API takes the replies.
    let api = api_failing_then_ok(wiremock::ResponseTemplate::new(500), 2).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, "");
    let db = disk.path().join("waflow.db");
    edit_config(
        dir.path(),
        "store: waflow.db",
        &format!("store: {}", db.display()),
    );
    let d = start_in(dir.path(), port).await;
    assert_eq!(
        post(&d, &message("FULL1", "84933313000", "price?")).await,
        200
    );
    wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    assert!(fill(disk.path()), "the disk did not fill");
    // While the disk is full: the reply goes out once it can, and never again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = sends(&api, "send").await.len();
    assert!(
        during <= 3,
        "{during} attempts: a confirmed reply was sent again\n{}",
        d.log()
    );
    let refused = post(&d, &message("FULL2", "84933313001", "price?")).await;
    assert!(refused == 503 || refused == 200, "{refused}");
    // Room again: the daemon recovers by itself.
    std::fs::remove_file(disk.path().join("filler")).unwrap();
    let report = status_when(&d, |r| r["report"]["sent"].as_i64() >= Some(1)).await;
    assert!(report["report"]["sent"].as_i64() >= Some(1), "{report}");
    assert_eq!(
        post(&d, &message("FULL3", "84933313002", "price?")).await,
        200
    );
    let got = settle(&api, "send").await;
    eprintln!(
        "disk full: {} store errors logged",
        d.log().matches("store").count()
    );
    let to_first = got.iter().filter(|s| s["number"] == "84933313000").count();
    assert_eq!(to_first, 3, "two failures and one send: {}", d.log());
}
