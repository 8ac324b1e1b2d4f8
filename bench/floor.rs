//! The floor: the least work the delivery promise (SPEC §5) needs, and
//! nothing else — the baseline's regex-and-forward job made durable.
//!
//! A webhook's 200 comes after its events (every incoming message, answered
//! or not, as SPEC §5 asks) and their planned sends are committed (WAL,
//! `synchronous=FULL`, dedupe by message id, commits shared by the
//! requests that wait together); one send in flight for the number, its
//! confirmation committed before the next one leaves (the confirmation's
//! commit also picks the next row, one commit per send). No rules, no
//! protections, no ledger, no metrics: what it costs is the price of the
//! promise on this machine, the part of waflow's CPU that no cut can remove
//! while the promise holds.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

use crate::baseline;

/// Work for the store thread.
enum Job {
    /// Record these messages and the sends of those answered; reply how many
    /// sends were planned.
    Accept(Vec<baseline::Incoming>, oneshot::Sender<usize>),
    /// Confirm a send (outbox id, message id) and pick the next one (id, number).
    Settle(
        Option<(i64, String)>,
        oneshot::Sender<Option<(i64, String)>>,
    ),
}

#[derive(Clone)]
struct Floor {
    re: regex::Regex,
    jobs: mpsc::Sender<Job>,
    wake: Arc<Notify>,
}

/// Serves the floor on `port`, sending through the API at `api`, its store at `db`.
pub async fn floor(port: u16, api: String, db: &Path) {
    let conn = open(db).expect("the floor's store");
    let (jobs, rx) = mpsc::channel();
    std::thread::spawn(move || store(conn, rx));
    let wake = Arc::new(Notify::new());
    tokio::spawn(sender(jobs.clone(), wake.clone(), api));
    let state = Floor {
        re: baseline::matcher(),
        jobs,
        wake,
    };
    let app = Router::new()
        .route("/webhook/{secret}", post(hook))
        .with_state(state);
    baseline::serve(port, app).await;
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE);
         CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, inbox_id INTEGER NOT NULL,
             number TEXT NOT NULL, state TEXT NOT NULL, message_id TEXT);
         CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE state = 'pending';",
    )?;
    Ok(conn)
}

async fn hook(
    State(s): State<Floor>,
    axum::extract::Path(secret): axum::extract::Path<String>,
    body: Bytes,
) -> (StatusCode, String) {
    let v = match baseline::read(&secret, &body) {
        Ok(v) => v,
        Err(status) => return (status, String::new()),
    };
    let messages = baseline::incoming(&v, &s.re);
    let (reply, done) = oneshot::channel();
    if s.jobs.send(Job::Accept(messages, reply)).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, String::new());
    }
    // The 200 only after the commit.
    let Ok(accepted) = done.await else {
        return (StatusCode::SERVICE_UNAVAILABLE, String::new());
    };
    if accepted > 0 {
        s.wake.notify_one();
    }
    (StatusCode::OK, json!({"accepted": accepted}).to_string())
}

/// The number's one sender: send, confirm durably, then the next.
async fn sender(jobs: mpsc::Sender<Job>, wake: Arc<Notify>, api: String) {
    let http = reqwest::Client::new();
    let mut confirmed = None;
    loop {
        let (reply, done) = oneshot::channel();
        if jobs.send(Job::Settle(confirmed.take(), reply)).is_err() {
            return;
        }
        let Ok(next) = done.await else { return };
        let Some((id, number)) = next else {
            wake.notified().await;
            continue;
        };
        let answer = http
            .post(format!("{api}/send"))
            .json(&baseline::reply(&number))
            .send()
            .await;
        let message_id = match answer {
            Ok(answer) => answer
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["message"]["key"]["id"].as_str().map(str::to_owned)),
            Err(_) => None,
        };
        // A failed send stays pending and is tried again.
        confirmed = message_id.map(|message_id| (id, message_id));
    }
}

/// The store thread: every waiting job in one transaction, one commit.
fn store(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        let replies: Vec<Box<dyn FnOnce()>> =
            batch.into_iter().map(|job| run(&conn, job)).collect();
        conn.execute_batch("COMMIT").expect("commit");
        for reply in replies {
            reply();
        }
    }
}

fn run(conn: &Connection, job: Job) -> Box<dyn FnOnce()> {
    match job {
        Job::Accept(messages, reply) => {
            let mut accepted = 0;
            for m in messages {
                let mut insert = conn
                    .prepare_cached(
                        "INSERT INTO inbox (message_id) VALUES (?1) ON CONFLICT DO NOTHING",
                    )
                    .expect("insert inbox");
                if insert.execute(params![m.id]).expect("inbox") == 1 && m.answered {
                    conn.prepare_cached(
                        "INSERT INTO outbox (inbox_id, number, state) VALUES (?1, ?2, 'pending')",
                    )
                    .expect("insert outbox")
                    .execute(params![conn.last_insert_rowid(), m.number])
                    .expect("outbox");
                    accepted += 1;
                }
            }
            Box::new(move || {
                let _ = reply.send(accepted);
            })
        }
        Job::Settle(confirmed, reply) => {
            if let Some((id, message_id)) = confirmed {
                conn.prepare_cached(
                    "UPDATE outbox SET state = 'sent', message_id = ?2 WHERE id = ?1",
                )
                .expect("update")
                .execute(params![id, message_id])
                .expect("sent");
            }
            let next = conn
                .prepare_cached(
                    "SELECT id, number FROM outbox WHERE state = 'pending' ORDER BY id LIMIT 1",
                )
                .expect("select")
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                .ok();
            Box::new(move || {
                let _ = reply.send(next);
            })
        }
    }
}
