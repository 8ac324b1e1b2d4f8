//! [`Tx`]: the store's transaction as the rest of the program sees it.
//!
//! Every operation on the store is a method of `Tx`, defined in the module
//! of its table group (inbox, outbox, ledger, chat, meta, status); callers
//! get a `&Tx` inside [`super::Store::call`] (the writer's transaction) or
//! [`super::Direct::run`] (a connection of its own) and never see the
//! database: a second backend changes what `Tx` holds, not its callers.

use rusqlite::Connection;

use super::StoreError;

/// An open transaction of the store.
pub struct Tx<'c> {
    pub(super) conn: &'c Connection,
}

impl<'c> Tx<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Tx { conn }
    }

    /// Runs `f` in a savepoint: when it fails, only its own writes are
    /// undone and the transaction goes on. The error is `f`'s.
    pub fn savepoint<R>(
        &self,
        f: impl FnOnce(&Tx) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        control(self.conn, "SAVEPOINT part")?;
        match f(self) {
            Ok(value) => {
                control(self.conn, "RELEASE part")?;
                Ok(value)
            }
            Err(err) => {
                if let Err(undo) = control(self.conn, "ROLLBACK TO part")
                    .and_then(|()| control(self.conn, "RELEASE part"))
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
pub(super) fn control(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}
