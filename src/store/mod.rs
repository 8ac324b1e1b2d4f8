//! The SQLite store: inbox, outbox, dead letters, per-chat state, cooldowns,
//! human-takeover pauses, schedule bookkeeping. The only module with SQL.
//!
//! One thread owns the writing connection. Callers send it jobs; it runs
//! every job that is waiting in one transaction and commits once (group
//! commit), so durability costs one fsync per batch, not per request, and a
//! caller's future resolves only after its job is committed. Each job runs
//! in a savepoint: one failing job does not undo the others of its batch.
//! WAL mode lets `waflow status` read while the daemon writes.

pub mod ops;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

pub use ops::*;

use crate::config::StoreLocation;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 2;
/// Jobs committed together at most.
const MAX_BATCH: usize = 512;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
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
    /// A stored value could not be read back.
    #[error("store: unreadable row: {0}")]
    Corrupt(String),
}

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Reply + Send>;

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (and creates or migrates) the store and starts its writer thread.
    pub fn open(location: &StoreLocation) -> Result<Store, StoreError> {
        let conn = open_connection(location)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("waflow-store".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok(Store { jobs: tx })
    }

    /// Runs `f` in the writer's transaction; resolves once it is committed.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn: &Connection| {
            let result = savepoint(conn, f);
            Box::new(move |commit: Result<(), String>| {
                let outcome = match (result, commit) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(e)) => Err(StoreError::Corrupt(format!("commit failed: {e}"))),
                };
                let _ = tx.send(outcome);
            }) as Reply
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Waits until every job sent before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.call(|_| Ok(())).await
    }
}

/// Opens a connection for reading next to a running daemon (`waflow status`).
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    check_version(&conn)?;
    Ok(conn)
}

fn open_connection(location: &StoreLocation) -> Result<Connection, StoreError> {
    let conn = match location {
        StoreLocation::Memory => Connection::open_in_memory()?,
        StoreLocation::File(path) => {
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Corrupt(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            Connection::open(path)?
        }
    };
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL: readers do not block the writer. FULL: a commit is on disk when it returns.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    migrate(&conn)?;
    // Every statement of a busy event stays prepared (the default of 16 is
    // smaller than one event's set, and re-parsing SQL showed in profiles).
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// Runs one fixed control statement (`SAVEPOINT`, `COMMIT` …) from the
/// statement cache instead of parsing it again.
pub(crate) fn control(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`], one version at a time.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version = check_version(conn)?;
    if version < 1 {
        conn.execute_batch(&format!(
            "BEGIN;\n{}\nPRAGMA user_version = 1;\nCOMMIT;",
            include_str!("schema.sql")
        ))?;
    }
    if version < 2 {
        conn.execute_batch(&format!(
            "BEGIN;\n{}\nPRAGMA user_version = 2;\nCOMMIT;",
            include_str!("v2.sql")
        ))?;
    }
    Ok(())
}

fn check_version(conn: &Connection) -> Result<i64, StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew { found: version });
    }
    Ok(version)
}

fn savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    control(conn, "SAVEPOINT job")?;
    match f(conn) {
        Ok(value) => {
            control(conn, "RELEASE job")?;
            Ok(value)
        }
        Err(err) => {
            let _ = control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"));
            Err(err)
        }
    }
}

/// The writer: takes every waiting job, runs them in one transaction, commits once.
fn writer(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let began = control(&conn, "BEGIN IMMEDIATE").map_err(|e| e.to_string());
        let mut replies = Vec::with_capacity(batch.len());
        if began.is_ok() {
            for job in batch {
                replies.push(job(&conn));
            }
        }
        let committed = began.and_then(|()| control(&conn, "COMMIT").map_err(|e| e.to_string()));
        if committed.is_err() {
            let _ = control(&conn, "ROLLBACK");
        }
        for reply in replies {
            reply(committed.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn temp_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("waflow-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("waflow.db")
    }

    #[test]
    fn a_version_1_store_is_migrated_and_keeps_its_rows() {
        let path = temp_db("migrate");
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
        }
        let conn = open_connection(&StoreLocation::File(path.clone())).unwrap();
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
        assert_eq!(indexes, ["outbox_dead", "outbox_open", "outbox_open_chat"]);
        conn.execute(
            "INSERT INTO menus (instance, recipient, options, at) VALUES ('I1', '1', '[]', 0)",
            [],
        )
        .unwrap();
        // Opening again changes nothing.
        drop(conn);
        assert!(open_connection(&StoreLocation::File(path)).is_ok());
    }

    #[test]
    fn a_store_from_a_newer_waflow_is_refused() {
        let path = temp_db("newer");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
        let err = open_connection(&StoreLocation::File(path)).unwrap_err();
        assert!(err.to_string().contains("newer than this waflow"), "{err}");
    }

    #[test]
    fn the_claim_uses_the_partial_indexes() {
        let conn = open_connection(&StoreLocation::Memory).unwrap();
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT id FROM outbox o INDEXED BY outbox_open
                 WHERE o.state IN ('pending', 'inflight') AND o.state = 'pending' AND o.next_at <= 1
                   AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.instance = o.instance AND p.chat = o.chat
                                   AND p.id < o.id AND p.state IN ('pending', 'inflight') AND p.chat <> '')
                 ORDER BY o.id LIMIT 1",
            )
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("outbox_open_chat"), "{plan}");
    }
}
