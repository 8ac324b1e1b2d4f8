//! Opening a store: the connection's settings (WAL, `synchronous=FULL`),
//! and the schema's numbered migrations (`PRAGMA user_version`; `schema.sql`
//! is version 1, `v2.sql` version 2, …), each applied once in its own
//! transaction. An older waflow refuses a newer store.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::backend::Db;
use super::pg::PgConn;
use super::{StoreError, Tx};

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 10;

pub(super) fn open_connection(file: Option<&Path>) -> Result<Connection, StoreError> {
    let conn = match file {
        None => Connection::open_in_memory()?,
        Some(path) => {
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

/// The migrations, in order: entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    include_str!("schema.sql"),
    include_str!("v2.sql"),
    include_str!("v3.sql"),
    include_str!("v4.sql"),
    include_str!("v5.sql"),
    include_str!("v6.sql"),
    include_str!("v7.sql"),
    include_str!("v8.sql"),
    include_str!("v9.sql"),
    include_str!("v10.sql"),
];

/// Brings the schema to [`SCHEMA_VERSION`], one version at a time.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version = check_version(conn)?;
    for (to, sql) in (1..).zip(MIGRATIONS).skip(version.max(0) as usize) {
        conn.execute_batch(&format!(
            "BEGIN;\n{sql}\nPRAGMA user_version = {to};\nCOMMIT;"
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

/// A connection of its own next to a running daemon (`waflow status`,
/// `outbox`, `optout`): SQLite's WAL lets it read while the daemon writes,
/// and its few writes wait for the daemon's writer (busy timeout);
/// PostgreSQL serves both anyway.
pub struct Direct {
    db: Db,
}

impl Direct {
    /// Opens the SQLite store file at `path`; refuses a store of a newer waflow.
    pub fn open(path: &Path) -> Result<Direct, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        check_version(&conn)?;
        Ok(Direct {
            db: Db::Sqlite { conn, file: None },
        })
    }

    /// Connects to the PostgreSQL store at `url`; refuses a database that
    /// holds no store yet or one of a newer waflow.
    pub fn connect(url: &str) -> Result<Direct, StoreError> {
        let conn = PgConn::connect(url)?;
        match conn.version()? {
            0 => Err(StoreError::Corrupt(
                "the database holds no waflow store yet: start the daemon on it once".into(),
            )),
            found if found > SCHEMA_VERSION => Err(StoreError::TooNew { found }),
            _ => Ok(Direct {
                db: Db::Pg(Box::new(conn)),
            }),
        }
    }

    /// Runs `f` in a transaction of its own, committed when `f` succeeds.
    pub fn run<R>(&self, f: impl FnOnce(&Tx) -> Result<R, StoreError>) -> Result<R, StoreError> {
        self.db.begin()?;
        match f(&Tx::on(self.db.conn())) {
            Ok(value) => match self.db.commit() {
                Ok(()) => Ok(value),
                Err(e) => {
                    // A commit that failed (SQLite busy) leaves the
                    // transaction open: undone, so the next run can begin.
                    self.db.rollback();
                    Err(StoreError::Corrupt(format!("commit failed: {e}")))
                }
            },
            Err(err) => {
                self.db.rollback();
                Err(err)
            }
        }
    }
}
