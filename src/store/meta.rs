//! Small named values (`meta`: the breaker, the sending pause) and the
//! schedules' bookkeeping (the last fire of each schedule rule).

use super::sql::args;
use super::{StoreError, Tx};

/// The meta value that says why an instance's sending is paused, if it is.
pub const SENDING_PAUSED: &str = "sending_paused";

/// The meta key of an instance's own value `name`.
pub fn instance_key(instance: &str, name: &str) -> String {
    format!("{instance}:{name}")
}

impl Tx<'_> {
    /// Reads a meta value.
    pub fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .row("SELECT value FROM meta WHERE key = ?1", args![key], |r| {
                r.get(0)
            })
    }

    /// Sets (or with `None` removes) a meta value.
    pub fn meta_set(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        match value {
            Some(v) => self.conn.exec(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                args![key, v],
            )?,
            None => self
                .conn
                .exec("DELETE FROM meta WHERE key = ?1", args![key])?,
        };
        Ok(())
    }

    /// The last recorded fire of a schedule rule for an instance, if its
    /// expression is unchanged.
    pub fn last_fire(
        &self,
        instance: &str,
        rule: &str,
        expr: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.conn.row(
            "SELECT last_fire FROM schedules WHERE instance = ?1 AND rule = ?2 AND expr = ?3",
            args![instance, rule, expr],
            |r| r.get(0),
        )
    }

    /// Records a schedule rule's fire for an instance. Never moves it back
    /// for the same schedule: a process that just lost the scheduler lease
    /// may still finish an older run after the new holder's.
    pub fn set_last_fire(
        &self,
        instance: &str,
        rule: &str,
        expr: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.conn.exec(
            "INSERT INTO schedules (instance, rule, expr, last_fire) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (instance, rule) DO UPDATE SET
               last_fire = CASE WHEN schedules.expr = excluded.expr AND schedules.last_fire > excluded.last_fire
                                THEN schedules.last_fire ELSE excluded.last_fire END,
               expr = excluded.expr",
            args![instance, rule, expr, at],
        )?;
        Ok(())
    }
}
