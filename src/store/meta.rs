//! Small named values (`meta`: the breaker, the sending pause) and the
//! schedules' bookkeeping (the last fire of each schedule rule).

use rusqlite::{OptionalExtension, params};

use super::{StoreError, Tx};

impl Tx<'_> {
    /// Reads a meta value.
    pub fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    /// Sets (or with `None` removes) a meta value.
    pub fn meta_set(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        match value {
            Some(v) => self.conn
                .prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")?
                .execute(params![key, v])?,
            None => self.conn.prepare_cached("DELETE FROM meta WHERE key = ?1")?.execute([key])?,
        };
        Ok(())
    }

    /// The last recorded fire of a schedule rule, if its expression is unchanged.
    pub fn last_fire(&self, rule: &str, expr: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT last_fire FROM schedules WHERE rule = ?1 AND expr = ?2")?
            .query_row(params![rule, expr], |r| r.get(0))
            .optional()?)
    }

    /// Records a schedule rule's fire.
    pub fn set_last_fire(&self, rule: &str, expr: &str, at: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO schedules (rule, expr, last_fire) VALUES (?1, ?2, ?3)
             ON CONFLICT (rule) DO UPDATE SET expr = excluded.expr, last_fire = excluded.last_fire",
            )?
            .execute(params![rule, expr, at])?;
        Ok(())
    }
}
