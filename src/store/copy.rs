//! `waflow migrate`: the whole of an SQLite store copied into a new,
//! empty PostgreSQL database — history, the outbox with its open work,
//! chat state, cooldowns, the opt-out list, schedules' last fires — in one
//! PostgreSQL transaction, so the copy is all there or not at all. Leases
//! stay behind (they belong to the processes of the old store). It refuses
//! to copy while a daemon runs on the file (its presence lease is live) or
//! into a database that already holds work. Both schemas come from the
//! same numbered migrations, so the tables and columns are the same: each
//! column is read from SQLite as an integer, a text or a null and written
//! as what the PostgreSQL column is.

use std::path::Path;

use postgres::types::ToSql;
use rusqlite::types::ValueRef;

use super::StoreError;
use super::pg;

/// The tables copied, all but `leases`.
const TABLES: [&str; 15] = [
    "inbox",
    "outbox",
    "chat_state",
    "cooldowns",
    "pauses",
    "loop_streaks",
    "sent",
    "known_numbers",
    "opt_outs",
    "contacts",
    "schedules",
    "meta",
    "menus",
    "echoes",
    "lists",
];

/// What was copied: each table and its rows.
pub type Copied = Vec<(&'static str, u64)>;

/// Copies the SQLite store `file` into the PostgreSQL database `url`.
pub fn sqlite_to_postgres(file: &Path, url: &str, now_ms: i64) -> Result<Copied, StoreError> {
    if !file.exists() {
        return Err(StoreError::Corrupt(format!(
            "{}: no such store file",
            file.display()
        )));
    }
    let source = super::schema::open_connection(Some(file))?;
    let leases = super::Tx::on(super::sql::Conn::Sqlite(&source)).leases()?;
    if let Some(running) = leases.iter().find(|l| l.is_live_presence(now_ms)) {
        return Err(StoreError::Corrupt(format!(
            "a daemon runs on {} ({}): stop it first, so nothing changes while it is copied",
            file.display(),
            running.holder
        )));
    }
    pg::off_runtime(move || {
        let mut client = pg::client(url)?;
        pg::migrate(&mut client, super::SCHEMA_VERSION)?;
        let mut tx = client.transaction()?;
        let mut copied = Vec::new();
        for table in TABLES {
            copied.push((table, copy_table(&source, &mut tx, table)?));
        }
        tx.commit()?;
        Ok(copied)
    })
}

/// Copies one table; the number of rows.
fn copy_table(
    source: &rusqlite::Connection,
    tx: &mut postgres::Transaction<'_>,
    table: &str,
) -> Result<u64, StoreError> {
    let columns: Vec<(String, String)> = tx
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, postgres::Error>>()?;
    let held: i64 = tx
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])?
        .try_get(0)?;
    if held > 0 {
        return Err(StoreError::Corrupt(format!(
            "the PostgreSQL database holds a store already ({table} has {held} rows): copy into a new, empty database"
        )));
    }
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    let list = names.join(", ");
    let marks: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let insert = tx.prepare(&format!(
        "INSERT INTO {table} ({list}) VALUES ({})",
        marks.join(", ")
    ))?;
    let mut select = source.prepare(&format!("SELECT {list} FROM {table}"))?;
    let mut rows = select.query([])?;
    let mut count = 0;
    while let Some(row) = rows.next()? {
        let values = columns
            .iter()
            .enumerate()
            .map(|(i, (name, kind))| value(row.get_ref(i)?, table, name, kind))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        tx.execute(&insert, &params)?;
        count += 1;
    }
    if names.contains(&"id") {
        // The next id after the copied ones.
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
            ),
            &[],
        )?;
    }
    Ok(count)
}

/// One SQLite value as the PostgreSQL column `kind` takes it.
fn value(
    v: ValueRef<'_>,
    table: &str,
    column: &str,
    kind: &str,
) -> Result<Box<dyn ToSql + Sync>, StoreError> {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Ok(match (v, kind) {
        (ValueRef::Null, "bigint") => Box::new(None::<i64>),
        (ValueRef::Null, _) => Box::new(None::<String>),
        (ValueRef::Integer(n), "bigint") => Box::new(n),
        (ValueRef::Integer(n), _) => Box::new(n.to_string()),
        (ValueRef::Text(t), "bigint") => Box::new(text(t).trim().parse::<i64>().map_err(|_| {
            StoreError::Corrupt(format!("{table}.{column}: {:?} is not a number", text(t)))
        })?),
        (ValueRef::Blob(_), "bigint") => {
            return Err(StoreError::Corrupt(format!(
                "{table}.{column}: a binary value where a number belongs"
            )));
        }
        (ValueRef::Text(t) | ValueRef::Blob(t), _) => Box::new(text(t)),
        (ValueRef::Real(x), "bigint") => Box::new(x as i64),
        (ValueRef::Real(x), _) => Box::new(x.to_string()),
    })
}
