//! The PostgreSQL backend's connection: statements prepared once and kept,
//! the store's SQL rewritten into PostgreSQL's dialect on the way (`?N` →
//! `$N`; SQLite's planner hints `INDEXED BY …` and `+?N` dropped), and the
//! schema's migrations, run under a transaction-scoped advisory lock so
//! that two processes starting together on an empty database migrate it
//! once. Only [`super::sql`] and the store's opening code use it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use postgres::types::ToSql;
use postgres::{Client, NoTls, Statement};

use super::StoreError;
use super::sql::Param;

pub(super) mod listen;
mod tls;

/// The PostgreSQL migrations: (the version a file brings the schema to, the file).
const MIGRATIONS: [(i64, &str); 4] = [
    (7, include_str!("pg/v7.sql")),
    (8, include_str!("pg/v8.sql")),
    (9, include_str!("pg/v9.sql")),
    (10, include_str!("pg/v10.sql")),
];

/// The key of the advisory lock held while migrating (any fixed number:
/// "waflow" in ASCII).
const MIGRATION_LOCK: i64 = 0x77_61_66_6c_6f_77;

/// One connection to the server.
pub struct PgConn {
    /// The server process serving this connection.
    pid: i32,
    /// Taken out only when the connection is dropped (see its `Drop`).
    client: Mutex<Option<Client>>,
    /// Prepared statements by the store's SQL text (and whether `RETURNING id` was added).
    prepared: Mutex<HashMap<(String, bool), Statement>>,
}

/// A client of the server at `url`, TLS as [`tls`] reads it (where the
/// driver may block: see [`off_runtime`]).
pub(super) fn client(url: &str) -> Result<Client, StoreError> {
    let address = tls::parse(url)?;
    match address.tls {
        Some(tls) => address.config.connect(tls),
        None => address.config.connect(NoTls),
    }
    .map_err(|e| match StoreError::from(e) {
        StoreError::Pg(text) => StoreError::Connect(text),
        other => other,
    })
}

/// Runs `f` where the driver may block: the synchronous client drives its
/// connection with a runtime of its own, which cannot start on a thread
/// that is running async tasks (the CLI's). There `f` runs on a thread of
/// its own; on the store's writer thread it runs in place.
pub(super) fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

impl PgConn {
    /// Connects to `url` (`postgres://user:password@host:port/database`,
    /// TLS as [`tls`] reads it).
    pub fn connect(url: &str) -> Result<PgConn, StoreError> {
        let (client, pid) = off_runtime(|| {
            let mut client = client(url)?;
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])?
                .try_get(0)?;
            Ok::<_, StoreError>((client, pid))
        })?;
        Ok(PgConn {
            pid,
            client: Mutex::new(Some(client)),
            prepared: Mutex::new(HashMap::new()),
        })
    }

    /// The server process serving this connection (what its notifications carry).
    pub(super) fn backend_pid(&self) -> i32 {
        self.pid
    }

    /// Runs `f` with the client (see [`off_runtime`]).
    fn with<R: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, postgres::Error> + Send,
    ) -> Result<R, StoreError> {
        let mut guard = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        let client = guard.as_mut().ok_or(StoreError::Closed)?;
        Ok(off_runtime(move || f(client))?)
    }

    fn statement(&self, sql: &str, returning: bool) -> Result<Statement, StoreError> {
        let key = (sql.to_owned(), returning);
        let mut prepared = self.prepared.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(statement) = prepared.get(&key) {
            return Ok(statement.clone());
        }
        let mut text = to_pg(sql);
        if returning {
            text.push_str(" RETURNING id");
        }
        let statement = self.with(|client| client.prepare(&text))?;
        prepared.insert(key, statement.clone());
        Ok(statement)
    }

    pub(super) fn exec(&self, sql: &str, args: &[&dyn Param]) -> Result<usize, StoreError> {
        let statement = self.statement(sql, false)?;
        let args = pg_args(args);
        let n = self.with(|client| client.execute(&statement, &args))?;
        Ok(n as usize)
    }

    pub(super) fn insert(&self, sql: &str, args: &[&dyn Param]) -> Result<Option<i64>, StoreError> {
        let statement = self.statement(sql, true)?;
        let args = pg_args(args);
        let rows = self.with(|client| client.query(&statement, &args))?;
        match rows.first() {
            Some(row) => Ok(Some(row.try_get(0)?)),
            None => Ok(None),
        }
    }

    pub(super) fn query(
        &self,
        sql: &str,
        args: &[&dyn Param],
    ) -> Result<Vec<postgres::Row>, StoreError> {
        let statement = self.statement(sql, false)?;
        let args = pg_args(args);
        self.with(|client| client.query(&statement, &args))
    }

    pub(super) fn control(&self, sql: &str) -> Result<(), StoreError> {
        self.with(|client| client.batch_execute(sql))
    }

    /// Brings the schema to the newest version this build knows; refuses a
    /// database of a newer waflow.
    pub(super) fn migrate(&self, newest: i64) -> Result<(), StoreError> {
        let mut guard = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        let client = guard.as_mut().ok_or(StoreError::Closed)?;
        off_runtime(move || migrate(client, newest))
    }

    /// The schema version of the database (0: no store yet).
    pub(super) fn version(&self) -> Result<i64, StoreError> {
        let found = self.with(|client| {
            match client.query_one("SELECT MAX(version) FROM waflow_schema", &[]) {
                Ok(row) => row.try_get::<_, Option<i64>>(0),
                // No such table yet: an empty database.
                Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        Ok(found.unwrap_or(0))
    }
}

impl Drop for PgConn {
    /// The client's drop blocks on its runtime too: done off the async thread.
    fn drop(&mut self) {
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        off_runtime(move || drop(client));
    }
}

/// Applies the migrations the database lacks, in one transaction that
/// first takes the migration lock: a second process starting at the same
/// moment waits, then finds the schema current.
pub(super) fn migrate(client: &mut Client, newest: i64) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS waflow_schema (version BIGINT NOT NULL)")?;
    let found: Option<i64> = tx
        .query_one("SELECT MAX(version) FROM waflow_schema", &[])?
        .try_get(0)?;
    let found = found.unwrap_or(0);
    if found > newest {
        return Err(StoreError::TooNew { found });
    }
    for (to, sql) in MIGRATIONS.iter().filter(|(to, _)| *to > found) {
        tx.batch_execute(sql)?;
        tx.execute("DELETE FROM waflow_schema", &[])?;
        tx.execute("INSERT INTO waflow_schema (version) VALUES ($1)", &[to])?;
    }
    tx.commit()?;
    Ok(())
}

fn pg_args<'a>(args: &'a [&'a dyn Param]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a.pg()).collect()
}

/// The store's SQL in PostgreSQL's dialect: `?N` becomes `$N`; SQLite's
/// planner hints (`INDEXED BY name`, the `+` that keeps a parameter from an
/// index) are dropped. Text in quotes is left alone.
pub(super) fn to_pg(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quoted = false;
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        if c == '\'' {
            quoted = !quoted;
        } else if !quoted {
            if c == '+' && rest[1..].starts_with('?') {
                rest = &rest[1..];
                continue;
            }
            if c == '?' {
                out.push('$');
                rest = &rest[1..];
                continue;
            }
            if let Some(after) = rest.strip_prefix("INDEXED BY ") {
                let name = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                rest = after[name..].trim_start_matches(' ');
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_pg;

    #[test]
    fn the_store_sql_is_rewritten_into_postgres_dialect() {
        assert_eq!(
            to_pg(
                "SELECT a FROM outbox o INDEXED BY outbox_open WHERE o.instance = +?2 AND x = ?1 AND y <> '?3'"
            ),
            "SELECT a FROM outbox o WHERE o.instance = $2 AND x = $1 AND y <> '?3'"
        );
        assert_eq!(to_pg("UPDATE t SET a = ?10"), "UPDATE t SET a = $10");
    }
}
