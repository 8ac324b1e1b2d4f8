//! `store.keep`: finished events, outbox rows, sends and unmatched echoes
//! older than it are deleted in the background by the real binary; the daemon keeps working.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn counts(d: &Daemon) -> (i64, i64, i64, i64) {
    let conn = rusqlite::Connection::open(d.dir.join("waflow.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM inbox), (SELECT COUNT(*) FROM outbox), (SELECT COUNT(*) FROM sent), (SELECT COUNT(*) FROM echoes)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn records_older_than_keep_are_deleted_and_new_ones_stay() {
    let api = api_ok().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, "");
    edit_config(
        dir.path(),
        "store: waflow.db",
        "store: { path: waflow.db, keep: 2s }",
    );
    let d = start_in(dir.path(), port).await;
    for i in 0..3 {
        let m = message(&format!("K{i}"), &format!("8493331302{i}"), "price?");
        assert_eq!(post(&d, &m).await, 200);
    }
    // A message this number sent that matches none of our sends.
    let mut echo = with_key(
        message("E1", "84933313099", "typed elsewhere"),
        "fromMe",
        true.into(),
    );
    echo["data"]["data"]["type"] = "append".into();
    assert_eq!(post(&d, &echo).await, 200);
    assert_eq!(counts(&d).3, 1, "the echo is recorded");
    wait_for_sends(&api, "send", 3, Duration::from_secs(10)).await;
    status_when(&d, |r| r["report"]["sent"] == 3).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while counts(&d) != (0, 0, 0, 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(counts(&d), (0, 0, 0, 0), "{}", d.log());
    assert!(d.log().contains("retention: deleted"), "{}", d.log());
    // Still working, and a duplicate within ignore_older_than is still dropped.
    let m = message("K9", "84933313029", "price?");
    assert_eq!(post(&d, &m).await, 200);
    assert_eq!(post(&d, &m).await, 200);
    assert_eq!(settle(&api, "send").await.len(), 4);
}
