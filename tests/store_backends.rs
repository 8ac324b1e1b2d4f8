//! The store on both backends: the same operations on SQLite and on a real
//! PostgreSQL server (a throwaway cluster, see `common/postgres.rs`) give
//! the same answers — duplicates refused, one outbox row per key, a chat's
//! rows claimed in order, pauses that only grow, the status report — and
//! two processes opening an empty PostgreSQL database at once migrate it once.

mod common;

use waflow::config::StoreLocation;
use waflow::rules::PlannedAction;
use waflow::store::{NewEvent, NewOutbox, Store, StoreError, Tx};

fn event(key: &str, chat: &str) -> NewEvent {
    NewEvent {
        instance: "default".into(),
        key: key.into(),
        kind: "message".into(),
        event: format!(r#"{{"key":"{key}"}}"#),
        status: "new",
        note: None,
        chat: Some(chat.into()),
    }
}

fn outbox(key: &str, inbox_id: Option<i64>, chat: &str, next_at: i64) -> NewOutbox {
    NewOutbox {
        instance: "default".into(),
        idem_key: key.into(),
        inbox_id,
        rule: "r".into(),
        action_index: 0,
        chat: Some(chat.into()),
        action: PlannedAction::Log {
            text: format!("for {key}"),
        },
        next_at,
        state: "pending",
    }
}

/// One line per answer, to compare the backends by.
fn transcript(tx: &Tx) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let ids = tx.record_events(&[event("msg:A", "c1"), event("msg:B", "c2")], 1_000)?;
    out.push(format!(
        "recorded {:?}",
        ids.iter().map(Option::is_some).collect::<Vec<_>>()
    ));
    let again = tx.record_events(&[event("msg:A", "c1")], 1_001)?;
    out.push(format!("again {again:?}"));
    let a = ids[0];
    for (key, chat, at) in [
        ("k/A/0", "c1", 0),
        ("k/A/1", "c1", 0),
        ("k/B/0", "c2", 5_000),
    ] {
        out.push(format!(
            "insert {key} {}",
            tx.insert_outbox(&outbox(key, a, chat, at), 1_000)?
        ));
    }
    out.push(format!(
        "insert k/A/0 again {}",
        tx.insert_outbox(&outbox("k/A/0", a, "c1", 0), 1_000)?
    ));
    let claimed = tx.claim_due("default", 1_000, 16)?;
    out.push(format!(
        "claimed {:?}",
        claimed
            .iter()
            .map(|r| (r.idem_key.as_str(), r.attempts))
            .collect::<Vec<_>>()
    ));
    out.push(format!("more due {}", tx.more_due("default", 1_000, 1)?));
    out.push(format!("next due {:?}", tx.next_due("default", 1_000)?));
    tx.mark_sent(&claimed[0], Some("WAMID1"), 1_100)?;
    out.push(format!("own send {}", tx.is_own_send("WAMID1")?));
    out.push(format!(
        "delivery {}",
        tx.record_delivery("default", "WAMID1", "read", 1_200)?
    ));
    out.push(format!(
        "delivery back {}",
        tx.record_delivery("default", "WAMID1", "delivered", 1_300)?
    ));
    let next = tx.claim_due("default", 1_000, 16)?;
    out.push(format!(
        "then {:?}",
        next.iter().map(|r| r.idem_key.as_str()).collect::<Vec<_>>()
    ));
    tx.pause_chat("default", "c1", 9_000, "a person took over")?;
    tx.pause_chat("default", "c1", 5_000, "the loop breaker")?;
    out.push(format!("pause {:?}", tx.pause_of("default", "c1", 1_000)?));
    tx.upsert_contact("x@lid", Some("84900000001"), Some("Ann"), 1)?;
    tx.upsert_contact("x@lid", None, Some("Anna"), 2)?;
    out.push(format!("phone {:?}", tx.phone_of("x@lid")?));
    out.push(format!(
        "opt out {} {}",
        tx.opt_out("default", "849", 1)?,
        tx.opt_out("default", "849", 2)?
    ));
    out.push(format!("meta {:?}", {
        tx.meta_set("k", Some("v"))?;
        tx.meta_get("k")?
    }));
    let report = tx.status_report("default", 1_000)?;
    out.push(format!(
        "status events={} waiting={} depth={} sent={} paused={:?}",
        report.events, report.inbox_waiting, report.queue_depth, report.sent, report.paused_chats
    ));
    out.push(format!("instances {:?}", tx.stored_instances()?));
    out.push(format!(
        "listed {:?}",
        tx.list_outbox(None, &["pending"], 10)?
            .iter()
            .map(|r| r.idem_key.clone())
            .collect::<Vec<_>>()
    ));
    out.push(format!("pruned {:?}", tx.prune(1_150, 100)?));
    Ok(out)
}

async fn run_on(location: &StoreLocation) -> Vec<String> {
    let store = Store::open(location).unwrap();
    let lines = store.call(transcript).await.unwrap();
    store.close().await.unwrap();
    lines
}

#[tokio::test]
async fn both_backends_answer_alike() {
    let Some(url) = common::postgres::database() else {
        return;
    };
    let sqlite = run_on(&StoreLocation::Memory).await;
    let pg = run_on(&StoreLocation::Postgres(
        waflow::secret::Secret::new(url).unwrap(),
    ))
    .await;
    assert_eq!(sqlite, pg);
    let text = pg.join("\n");
    // The answers themselves, so that two backends wrong alike fail too.
    for line in [
        "recorded [true, true]",
        "again [None]",
        "insert k/A/0 again false",
        r#"claimed [("k/A/0", 1)]"#,
        "next due Some(5000)",
        "delivery true",
        "delivery back false",
        r#"then ["k/A/1"]"#,
        r#"pause Some((9000, "the loop breaker"))"#,
        r#"phone Some("84900000001")"#,
        "opt out true false",
        "status events=2 waiting=2 depth=2 sent=1",
        r#"listed ["k/B/0", "k/A/1"]"#,
        "pruned Pruned { events: 0, rows: 1, sends: 1, echoes: 0, lists: 0 }",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}

#[tokio::test]
async fn a_store_reopened_on_postgres_keeps_its_rows() {
    let Some(url) = common::postgres::database() else {
        return;
    };
    let location = StoreLocation::Postgres(waflow::secret::Secret::new(url.clone()).unwrap());
    let store = Store::open(&location).unwrap();
    store
        .call(|tx| tx.record_events(&[event("msg:K", "c")], 1))
        .await
        .unwrap();
    store.close().await.unwrap();
    let store = Store::open(&location).unwrap();
    let again = store
        .call(|tx| tx.record_events(&[event("msg:K", "c")], 2))
        .await
        .unwrap();
    assert_eq!(again, [None], "the event is remembered across a restart");
    let direct = waflow::store::Direct::connect(&url).unwrap();
    let waiting = direct.run(|tx| tx.new_inbox(10)).unwrap();
    assert_eq!(waiting.len(), 1);
}

#[test]
fn two_processes_starting_at_once_migrate_an_empty_database_once() {
    let Some(url) = common::postgres::database() else {
        return;
    };
    let location = StoreLocation::Postgres(waflow::secret::Secret::new(url.clone()).unwrap());
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let location = location.clone();
            std::thread::spawn(move || Store::open(&location).map(|_| ()))
        })
        .collect();
    for open in opened {
        open.join().unwrap().unwrap();
    }
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let versions: Vec<i64> = client
        .query("SELECT version FROM waflow_schema", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [waflow::store::SCHEMA_VERSION]);
}

#[test]
fn a_database_of_a_newer_waflow_is_refused() {
    let Some(url) = common::postgres::database() else {
        return;
    };
    let location = StoreLocation::Postgres(waflow::secret::Secret::new(url.clone()).unwrap());
    drop(Store::open(&location).unwrap());
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .batch_execute("UPDATE waflow_schema SET version = 99")
        .unwrap();
    let err = Store::open(&location).unwrap_err().to_string();
    assert!(err.contains("newer than this waflow"), "{err}");
}

#[test]
fn an_unreachable_server_is_a_clear_error_without_the_password() {
    let port = common::free_port();
    let url = format!("postgres://waflow:hunter2@127.0.0.1:{port}/nothing");
    let location = StoreLocation::Postgres(waflow::secret::Secret::new(url).unwrap());
    let err = Store::open(&location).unwrap_err().to_string();
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(!format!("{location:?}").contains("hunter2"));
}

/// A lease changes hands only when it expires, with a higher generation;
/// a released one is free at once.
fn lease_transcript(tx: &Tx) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let take = |who: &str, now: i64| tx.take_lease("send:default", who, now, 1_000);
    out.push(format!("A takes {:?}", take("A", 0)?));
    out.push(format!("B while A holds {:?}", take("B", 500)?));
    out.push(format!("A renews {:?}", take("A", 900)?));
    out.push(format!("B before the renewal ends {:?}", take("B", 1_800)?));
    out.push(format!("B after {:?}", take("B", 1_900)?));
    out.push(format!("A again {:?}", take("A", 2_000)?));
    tx.release_lease("send:default", "B", 2_100)?;
    out.push(format!("A after the release {:?}", take("A", 2_100)?));
    out.push(format!("leases {:?}", tx.leases()?));
    Ok(out)
}

#[tokio::test]
async fn leases_change_hands_only_when_they_expire_on_both_backends() {
    let Some(url) = common::postgres::database() else {
        return;
    };
    let mut answers = Vec::new();
    for location in [
        StoreLocation::Memory,
        StoreLocation::Postgres(waflow::secret::Secret::new(url).unwrap()),
    ] {
        let store = Store::open(&location).unwrap();
        answers.push(store.call(lease_transcript).await.unwrap());
        store.close().await.unwrap();
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(
        answers[0][..7],
        [
            "A takes Some(1)",
            "B while A holds None",
            "A renews Some(1)",
            "B before the renewal ends None",
            "B after Some(2)",
            "A again None",
            "A after the release Some(3)",
        ]
    );
}
