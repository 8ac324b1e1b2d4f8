//! The database a store runs on: an SQLite connection (with the identity
//! of its file) or a PostgreSQL connection. Owns how a transaction begins,
//! commits and rolls back on each, and how each is closed; the writer and
//! [`super::Direct`] run transactions through it and never name a backend.

use rusqlite::Connection;

use super::StoreError;
use super::pg::PgConn;
use super::sql::Conn;
use crate::config::StoreLocation;

/// An open database.
pub(super) enum Db {
    /// The embedded store, and the file it was opened on (none in memory).
    Sqlite {
        conn: Connection,
        file: Option<FileId>,
    },
    /// A PostgreSQL server (boxed: its client is large, and a store has one).
    Pg(Box<PgConn>),
}

impl Db {
    /// Opens (creates or migrates) the store at `location`.
    pub(super) fn open(location: &StoreLocation) -> Result<Db, StoreError> {
        match location {
            StoreLocation::Postgres(url) => {
                let conn = PgConn::connect(url.expose())?;
                conn.migrate(super::SCHEMA_VERSION)?;
                Ok(Db::Pg(Box::new(conn)))
            }
            StoreLocation::File(path) => Ok(Db::Sqlite {
                conn: super::schema::open_connection(Some(path))?,
                file: FileId::of(path),
            }),
            StoreLocation::Memory => Ok(Db::Sqlite {
                conn: super::schema::open_connection(None)?,
                file: None,
            }),
        }
    }

    /// The connection statements run on.
    pub(super) fn conn(&self) -> Conn<'_> {
        match self {
            Db::Sqlite { conn, .. } => Conn::Sqlite(conn),
            Db::Pg(conn) => Conn::Pg(conn),
        }
    }

    /// Begins a transaction that writes. SQLite takes its write lock at
    /// once (`IMMEDIATE`), so a transaction never fails half-way for want of it.
    pub(super) fn begin(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite { .. } => self.conn().control("BEGIN IMMEDIATE"),
            Db::Pg(_) => self.conn().control("BEGIN"),
        }
    }

    /// Commits the open transaction. A store file deleted or replaced
    /// while the daemon runs is refused first (see [`FileId`]).
    pub(super) fn commit(&self) -> Result<(), String> {
        if let Db::Sqlite {
            file: Some(file), ..
        } = self
        {
            file.check()?;
        }
        self.conn().control("COMMIT").map_err(|e| e.to_string())
    }

    /// Undoes the open transaction (after a failed commit: what can be).
    pub(super) fn rollback(&self) {
        if let Err(err) = self.conn().control("ROLLBACK") {
            tracing::debug!(error = %err, "store: nothing to roll back");
        }
    }

    /// Closes the database. SQLite moves its WAL into the database file
    /// first, so the file alone is a complete copy (and the `-wal` file is gone).
    pub(super) fn close(self) -> Result<(), StoreError> {
        let Db::Sqlite { conn, .. } = self else {
            return Ok(());
        };
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        conn.close().map_err(|(_, e)| StoreError::Sql(e))?;
        if busy != 0 {
            return Err(StoreError::Corrupt(
                "the final checkpoint was blocked by another connection; the -wal file holds the rest"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The database file the connection was opened on. A file deleted or
/// replaced under a running daemon would take every later commit into an
/// unlinked inode, lost at the next start: such commits are refused.
pub(super) struct FileId {
    path: std::path::PathBuf,
    id: (u64, u64),
}

impl FileId {
    /// The identity of the file at `path` now.
    pub(super) fn of(path: &std::path::Path) -> Option<FileId> {
        Some(FileId {
            path: path.to_owned(),
            id: identity(path)?,
        })
    }

    /// Whether the path still names the file that was opened.
    fn check(&self) -> Result<(), String> {
        if identity(&self.path) == Some(self.id) {
            return Ok(());
        }
        Err(format!(
            "the database file {} was deleted or replaced while waflow ran; nothing more is \
             committed: stop waflow, restore the file (from a backup), start it again",
            self.path.display()
        ))
    }
}

#[cfg(unix)]
fn identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(path: &std::path::Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|_| (0, 0))
}
