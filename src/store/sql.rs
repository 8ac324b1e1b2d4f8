//! The store's driver layer: one way to run a statement, whichever
//! database is behind it. The table groups (inbox, outbox, …) write their
//! SQL once, in the dialect both backends read (`?N` parameters, `ON
//! CONFLICT`, `CASE` instead of two-argument `MAX`); [`Conn`] runs it on
//! SQLite as written and on PostgreSQL through [`super::pg`]'s rewriting.
//! Nothing outside `store/` sees this module; nothing here knows a table.

use super::StoreError;
use super::pg::PgConn;

/// A value bound to a statement's parameter: anything both drivers can
/// send (`i64`, `&str`, `String`, `bool`, their `Option`s).
pub trait Param {
    /// The value as SQLite binds it.
    fn lite(&self) -> &dyn rusqlite::ToSql;
    /// The value as PostgreSQL binds it.
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync);
}

impl<T: rusqlite::ToSql + postgres::types::ToSql + Sync> Param for T {
    fn lite(&self) -> &dyn rusqlite::ToSql {
        self
    }

    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
        self
    }
}

/// A value read from a result column: anything both drivers can read.
pub trait Col: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a> {}

impl<T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>> Col for T {}

/// The parameters of one statement, in order (`?1`, `?2`, …).
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        &[$(&$value as &dyn $crate::store::sql::Param),*] as &[&dyn $crate::store::sql::Param]
    };
}
pub(super) use args;

/// The connection a transaction runs on.
#[derive(Clone, Copy)]
pub(super) enum Conn<'c> {
    /// The embedded store.
    Sqlite(&'c rusqlite::Connection),
    /// A PostgreSQL server.
    Pg(&'c PgConn),
}

/// One result row.
pub struct Row<'r, 's> {
    inner: RowInner<'r, 's>,
}

enum RowInner<'r, 's> {
    Sqlite(&'r rusqlite::Row<'s>),
    Pg(&'r postgres::Row),
}

impl Row<'_, '_> {
    /// Column `index` (from 0) as a `T`.
    pub fn get<T: Col>(&self, index: usize) -> Result<T, StoreError> {
        match self.inner {
            RowInner::Sqlite(row) => Ok(row.get(index)?),
            RowInner::Pg(row) => Ok(row.try_get(index)?),
        }
    }
}

fn lite<'a>(
    args: &'a [&'a dyn Param],
) -> rusqlite::ParamsFromIter<impl Iterator<Item = &'a dyn rusqlite::ToSql>> {
    rusqlite::params_from_iter(args.iter().map(|a| a.lite()))
}

impl<'c> Conn<'c> {
    /// Runs a statement; how many rows it changed.
    pub(super) fn exec(self, sql: &str, args: &[&dyn Param]) -> Result<usize, StoreError> {
        match self {
            Conn::Sqlite(conn) => Ok(conn.prepare_cached(sql)?.execute(lite(args))?),
            Conn::Pg(conn) => conn.exec(sql, args),
        }
    }

    /// Runs an `INSERT` of one row into a table whose key is `id`; the new
    /// row's id, or `None` when it inserted nothing (`ON CONFLICT DO NOTHING`).
    pub(super) fn insert(self, sql: &str, args: &[&dyn Param]) -> Result<Option<i64>, StoreError> {
        match self {
            Conn::Sqlite(conn) => {
                let n = conn.prepare_cached(sql)?.execute(lite(args))?;
                Ok((n == 1).then(|| conn.last_insert_rowid()))
            }
            Conn::Pg(conn) => conn.insert(sql, args),
        }
    }

    /// Every row of a query, each made a `T` by `f`.
    pub(super) fn rows<T>(
        self,
        sql: &str,
        args: &[&dyn Param],
        mut f: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Conn::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows = stmt.query(lite(args))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(f(&Row {
                        inner: RowInner::Sqlite(row),
                    })?);
                }
                Ok(out)
            }
            Conn::Pg(conn) => conn
                .query(sql, args)?
                .iter()
                .map(|row| {
                    f(&Row {
                        inner: RowInner::Pg(row),
                    })
                })
                .collect(),
        }
    }

    /// The first row of a query, if it has one.
    pub(super) fn row<T>(
        self,
        sql: &str,
        args: &[&dyn Param],
        f: impl FnOnce(&Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        match self {
            Conn::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows = stmt.query(lite(args))?;
                match rows.next()? {
                    Some(row) => Ok(Some(f(&Row {
                        inner: RowInner::Sqlite(row),
                    })?)),
                    None => Ok(None),
                }
            }
            Conn::Pg(conn) => match conn.query(sql, args)?.first() {
                Some(row) => Ok(Some(f(&Row {
                    inner: RowInner::Pg(row),
                })?)),
                None => Ok(None),
            },
        }
    }

    /// The single value of a query that always returns one row (`COUNT`,
    /// `MAX`, …).
    pub(super) fn value<T: Col>(self, sql: &str, args: &[&dyn Param]) -> Result<T, StoreError> {
        self.row(sql, args, |r| r.get(0))?
            .ok_or_else(|| StoreError::Corrupt(format!("no row from: {sql}")))
    }

    /// Whether a query returns a row.
    pub(super) fn exists(self, sql: &str, args: &[&dyn Param]) -> Result<bool, StoreError> {
        Ok(self.row(sql, args, |_| Ok(()))?.is_some())
    }

    /// Runs one statement without parameters (`SAVEPOINT`, `COMMIT` …).
    pub(super) fn control(self, sql: &str) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(conn) => Ok(conn.prepare_cached(sql)?.execute([]).map(|_| ())?),
            Conn::Pg(conn) => conn.control(sql),
        }
    }
}
