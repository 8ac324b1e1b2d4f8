//! The store: inbox, outbox, the ledger of sends, per-chat memory,
//! schedule bookkeeping — SQLite (bundled, WAL, `synchronous=FULL`). The
//! only module with SQL.
//!
//! The rest of the program sees a [`Store`] handle and, inside
//! [`Store::call`], a typed transaction [`Tx`] whose methods are the
//! operations of one table group each ([`inbox`], [`outbox`], [`ledger`],
//! [`echo`], [`chat`], [`meta`], [`status`]). One thread owns the writing connection
//! ([`writer`]): callers send it jobs; it commits every waiting job in one
//! transaction and a job's future resolves after that commit. No caller
//! knows which database is behind `Tx`.

mod backend;
pub mod chat;
pub mod console;
pub mod copy;
pub mod echo;
pub mod inbox;
pub mod lease;
pub mod ledger;
pub mod lists;
pub mod meta;
pub mod outbox;
mod pg;
pub mod retention;
mod schema;
mod sql;
pub mod status;
pub mod trail;
mod tx;
mod writer;

use std::sync::mpsc;

pub use console::ChatSummary;
pub use echo::{Echo, Reconciled};
pub use inbox::{InboxRow, NewEvent};
pub use lease::LeaseRow;
pub use lists::{LeftOutRow, ListProgress, NewList};
pub use outbox::{Block, Claim, NewOutbox, OutboxRow};
pub use retention::Pruned;
pub use schema::{Direct, SCHEMA_VERSION};
pub use status::StatusReport;
pub use trail::{TrailEvent, TrailSend};
pub use tx::Tx;

use crate::config::StoreLocation;
use writer::Msg;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// PostgreSQL refused, or the connection to it failed.
    #[error("store: PostgreSQL: {0}")]
    Pg(String),
    /// The PostgreSQL server cannot be reached or refused the login.
    #[error(
        "store: cannot connect to PostgreSQL: {0}; check the `store:` address, that the server runs and that the user may log in"
    )]
    Connect(String),
    /// The writer thread is gone (shutting down or crashed).
    #[error("store: the writer has stopped")]
    Closed,
    /// The file is from a newer waflow.
    #[error(
        "store: the database has schema version {found}, newer than this waflow ({SCHEMA_VERSION}); upgrade waflow"
    )]
    TooNew {
        /// The version found.
        found: i64,
    },
    /// A read of a chat's past failed while rules were evaluated.
    #[error("store: {0}")]
    Memory(#[from] crate::rules::MemoryError),
    /// A stored value could not be read back.
    #[error("store: unreadable row: {0}")]
    Corrupt(String),
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        // The driver's own text is one word ("db error"); the server's
        // message is its source.
        match std::error::Error::source(&e) {
            Some(source) => StoreError::Pg(format!("{e}: {source}")),
            None => StoreError::Pg(e.to_string()),
        }
    }
}

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Msg>,
    /// On PostgreSQL: the address, and the server process of the writer's
    /// connection (whose own announcements this process need not hear).
    shared: Option<(crate::secret::Secret, i32)>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (and creates or migrates) the store and starts its writer thread.
    pub fn open(location: &StoreLocation) -> Result<Store, StoreError> {
        let db = backend::Db::open(location)?;
        let shared = match (&db, location) {
            (backend::Db::Pg(conn), StoreLocation::Postgres(url)) => {
                Some((url.clone(), conn.backend_pid()))
            }
            _ => None,
        };
        let (tx, rx) = mpsc::channel::<Msg>();
        std::thread::Builder::new()
            .name("waflow-store".into())
            .spawn(move || writer::writer(db, rx))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok(Store { jobs: tx, shared })
    }

    /// The instances that other processes sharing the database plan work
    /// for, as each of their commits is announced (PostgreSQL); `None` on
    /// SQLite, whose file has one process.
    pub fn work_announced(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<String>> {
        let (url, own) = self.shared.clone()?;
        Some(pg::listen::spawn(url, own))
    }

    /// Runs `f` in the writer's transaction; resolves once it is committed.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Tx) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(writer::Kind::Durable, f).await
    }

    /// [`Store::call`] for a caller that sends its next job only once this
    /// one is committed (the outbox worker, one send in flight): the writer
    /// commits it without waiting for a next job to share the commit,
    /// since that next job is this caller's own and waits for this commit.
    pub async fn call_serial<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Tx) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(writer::Kind::Serial, f).await
    }

    /// Runs `f` in the writer's transaction and resolves as soon as it ran
    /// (or, when its batch holds jobs that wait for a commit, once that
    /// commit is done, since `f` may have read their work). For reads: what
    /// `f` writes is committed only with the next job that waits for a
    /// commit, or within the writer's lazy-commit bound.
    pub async fn call_lazy<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Tx) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(writer::Kind::Lazy, f).await
    }

    async fn submit<R, F>(&self, kind: writer::Kind, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Tx) -> Result<R, StoreError> + Send + 'static,
    {
        let (job, reply) = writer::job(kind, f);
        self.jobs
            .send(Msg::Work(job))
            .map_err(|_| StoreError::Closed)?;
        reply.await.map_err(|_| StoreError::Closed)?
    }

    /// Waits until every job sent before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.call(|_| Ok(())).await
    }

    /// Commits what is waiting, checkpoints the WAL into the database file
    /// and closes it. Every later call gets [`StoreError::Closed`].
    pub async fn close(&self) -> Result<(), StoreError> {
        let (reply, done) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Msg::Close(reply))
            .map_err(|_| StoreError::Closed)?;
        done.await.map_err(|_| StoreError::Closed)?
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use std::time::{Duration, Instant};

    use rusqlite::Connection;

    use super::schema::open_connection;
    use super::tx::control;
    use super::*;

    /// A store path in a folder removed when the test ends.
    fn temp_db(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::Builder::new()
            .prefix(&format!("waflow-store-{name}-"))
            .tempdir()
            .unwrap();
        let path = dir.path().join("waflow.db");
        (dir, path)
    }

    #[test]
    fn a_version_1_store_is_migrated_and_keeps_its_rows() {
        let (_dir, path) = temp_db("migrate");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "BEGIN;\n{}\nPRAGMA user_version = 1;\nCOMMIT;",
                include_str!("schema.sql")
            ))
            .unwrap();
            conn.execute(
                "INSERT INTO outbox (instance, idem_key, rule, action_index, chat, action, state, next_at, created_at, updated_at)
                 VALUES ('I1', 'k/r/0', 'r', 0, 'c', '{}', 'pending', 0, 0, 0)",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO known_numbers (instance, number, first_seen) VALUES ('I1', '8490', 7)",
                [],
            )
            .unwrap();
        }
        let conn = open_connection(Some(&path)).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let pending: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(pending, 1);
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' AND sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            indexes,
            [
                "outbox_dead",
                "outbox_inbox",
                "outbox_open",
                "outbox_open_chat",
                "outbox_unsure"
            ]
        );
        conn.execute(
            "INSERT INTO menus (instance, recipient, options, at) VALUES ('I1', '1', '[]', 0)",
            [],
        )
        .unwrap();
        // The numbers that wrote are kept, in a table without a rowid.
        let known: (String, i64) = conn
            .query_row(
                "SELECT number, first_seen FROM known_numbers WHERE instance = 'default'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(known, ("8490".to_owned(), 7));
        assert!(conn.prepare("SELECT rowid FROM known_numbers").is_err());
        // Opening again changes nothing.
        drop(conn);
        assert!(open_connection(Some(&path)).is_ok());
    }

    #[test]
    fn a_store_from_a_newer_waflow_is_refused() {
        let (_dir, path) = temp_db("newer");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
        let err = open_connection(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("newer than this waflow"), "{err}");
    }

    #[test]
    fn the_claim_uses_the_partial_indexes() {
        let conn = open_connection(None).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", outbox::claim_sql(1)))
            .unwrap()
            .query_map(rusqlite::params![1, "I1"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("outbox_open_chat"), "{plan}");
    }

    /// SQLite re-prepares a statement on every run when the value of a
    /// parameter can change its plan (a bound `LIMIT` does); the outbox's
    /// queries run for every send, so they must stay prepared.
    #[test]
    fn the_claim_queries_are_not_prepared_again_on_every_run() {
        let (_dir, path) = temp_db("reprepare");
        let conn = open_connection(Some(&path)).unwrap();
        for now in 0..20 {
            control(&conn, "BEGIN IMMEDIATE").unwrap();
            Tx::new(&conn)
                .savepoint(|c| {
                    for limit in [1, 16] {
                        c.claim_due("I1", now, limit)?;
                    }
                    c.more_due("I1", now, 1)?;
                    c.next_due("I1", now)
                })
                .unwrap();
            control(&conn, "COMMIT").unwrap();
        }
        let queries = [
            outbox::claim_sql(1),
            outbox::claim_sql(16),
            outbox::MORE_DUE_SQL.to_owned(),
            outbox::NEXT_DUE_SQL.to_owned(),
        ];
        for sql in queries {
            let statement = conn.prepare_cached(&sql).unwrap();
            let runs = statement.get_status(rusqlite::StatementStatus::Run);
            let again = statement.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(runs, 20, "{sql}");
            assert!(
                again <= 1,
                "prepared again {again} times in {runs} runs: {sql}"
            );
        }
    }

    /// A chat's second message may be due while the first waits for a
    /// retry: the worker must sleep until the first is due, not spin.
    #[test]
    fn the_next_due_time_is_the_waiting_first_row_of_a_chat() {
        let conn = open_connection(None).unwrap();
        for (key, next_at) in [("k/r/0", 1_000), ("k/r/1", 0)] {
            conn.execute(
                "INSERT INTO outbox (instance, idem_key, rule, action_index, chat, action, state, next_at, created_at, updated_at)
                 VALUES ('I1', ?1, 'r', 0, 'c', '{}', 'pending', ?2, 0, 0)",
                rusqlite::params![key, next_at],
            )
            .unwrap();
        }
        assert!(Tx::new(&conn).claim_due("I1", 500, 16).unwrap().is_empty());
        assert_eq!(Tx::new(&conn).next_due("I1", 500).unwrap(), Some(1_000));
        assert!(Tx::new(&conn).more_due("I1", 500, 0).unwrap());
        assert_eq!(Tx::new(&conn).next_due("other", 500).unwrap(), None);
    }

    #[tokio::test]
    async fn lazy_work_is_committed_with_the_next_commit_and_at_shutdown() {
        let (_dir, path) = temp_db("lazy");
        let store = Store::open(&StoreLocation::File(path.clone())).unwrap();
        let reader = Direct::open(&path).unwrap();
        let read = |key: &str| reader.run(|tx| tx.meta_get(key)).unwrap();
        // Lazy work is visible to the next job at once, committed or not.
        store
            .call_lazy(|c| c.meta_set("a", Some("1")))
            .await
            .unwrap();
        let seen = store.call_lazy(|c| c.meta_get("a")).await.unwrap();
        assert_eq!(seen.as_deref(), Some("1"));
        // A job that waits for its commit commits the lazy work before it.
        store
            .call_lazy(|c| c.meta_set("b", Some("2")))
            .await
            .unwrap();
        store.call(|c| c.meta_set("c", Some("3"))).await.unwrap();
        assert_eq!(read("b").as_deref(), Some("2"));
        assert_eq!(read("c").as_deref(), Some("3"));
        // Lazy work left when the store is dropped is committed, not lost.
        store
            .call_lazy(|c| c.meta_set("d", Some("4")))
            .await
            .unwrap();
        drop(store);
        let deadline = Instant::now() + Duration::from_secs(10);
        while read("d").is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(read("d").as_deref(), Some("4"));
        assert_eq!(read("a").as_deref(), Some("1"));
    }

    #[test]
    fn a_failed_savepoint_undoes_only_its_own_writes() {
        let conn = open_connection(None).unwrap();
        control(&conn, "BEGIN IMMEDIATE").unwrap();
        let tx = Tx::new(&conn);
        tx.meta_set("before", Some("1")).unwrap();
        let failed: Result<(), StoreError> = tx.savepoint(|tx| {
            tx.meta_set("inside", Some("2"))?;
            // A nested part that succeeds is undone with the part around it.
            tx.savepoint(|tx| tx.meta_set("nested", Some("3")))?;
            Err(StoreError::Corrupt("this part fails".into()))
        });
        assert!(matches!(failed, Err(StoreError::Corrupt(_))));
        let kept = tx.savepoint(|tx| tx.meta_set("after", Some("4")));
        assert!(kept.is_ok());
        control(&conn, "COMMIT").unwrap();
        let tx = Tx::new(&conn);
        assert_eq!(tx.meta_get("before").unwrap().as_deref(), Some("1"));
        assert_eq!(tx.meta_get("inside").unwrap(), None);
        assert_eq!(tx.meta_get("nested").unwrap(), None);
        assert_eq!(tx.meta_get("after").unwrap().as_deref(), Some("4"));
    }

    #[tokio::test]
    async fn a_failing_job_does_not_undo_the_jobs_committed_with_it() {
        let (_dir, path) = temp_db("jobs");
        let store = Store::open(&StoreLocation::File(path.clone())).unwrap();
        let (a, b, c) = tokio::join!(
            store.call(|tx| tx.meta_set("a", Some("1"))),
            store.call(|tx| {
                tx.meta_set("b", Some("2"))?;
                Err::<(), _>(StoreError::Corrupt("this job fails".into()))
            }),
            store.call(|tx| tx.meta_set("c", Some("3"))),
        );
        assert!(a.is_ok() && c.is_ok());
        assert!(matches!(b, Err(StoreError::Corrupt(_))));
        let reader = Direct::open(&path).unwrap();
        let read = |key: &str| reader.run(|tx| tx.meta_get(key)).unwrap();
        assert_eq!(read("a").as_deref(), Some("1"));
        assert_eq!(read("b"), None);
        assert_eq!(read("c").as_deref(), Some("3"));
    }
}
