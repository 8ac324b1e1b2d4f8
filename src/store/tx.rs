//! [`Tx`]: the store's transaction as the rest of the program sees it.
//!
//! Every operation on the store is a method of `Tx`, defined in the module
//! of its table group (inbox, outbox, ledger, chat, meta, status); callers
//! get a `&Tx` inside [`super::Store::call`] (the writer's transaction) or
//! [`super::Direct::run`] (a connection of its own) and never see the
//! database: a second backend changes what `Tx` holds, not its callers.

#[cfg(test)]
use rusqlite::Connection;

use super::StoreError;
use super::sql::Conn;

/// An open transaction of the store.
pub struct Tx<'c> {
    pub(super) conn: Conn<'c>,
}

impl<'c> Tx<'c> {
    /// A transaction on an SQLite connection (begun by the caller).
    #[cfg(test)]
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Tx {
            conn: Conn::Sqlite(conn),
        }
    }

    /// A transaction on `conn` (begun by the caller).
    pub(super) fn on(conn: Conn<'c>) -> Self {
        Tx { conn }
    }

    /// Runs `f` in a savepoint: when it fails, only its own writes are
    /// undone and the transaction goes on. The error is `f`'s.
    pub fn savepoint<R>(
        &self,
        f: impl FnOnce(&Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.conn.control("SAVEPOINT part")?;
        match f(self) {
            Ok(value) => {
                self.conn.control("RELEASE part")?;
                Ok(value)
            }
            Err(err) => {
                if let Err(undo) = self
                    .conn
                    .control("ROLLBACK TO part")
                    .and_then(|()| self.conn.control("RELEASE part"))
                {
                    tracing::error!(error = %undo, "store: cannot undo a failed part of a transaction");
                }
                Err(err)
            }
        }
    }
}

/// Runs one fixed control statement (`SAVEPOINT`, `COMMIT` …) from the
/// statement cache instead of parsing it again.
#[cfg(test)]
pub(super) fn control(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}
