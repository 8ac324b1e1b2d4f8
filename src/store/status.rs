//! What `waflow status` reads: counts, pauses, the latest errors, the
//! schedules' last fires, the lists in progress.

use serde::Serialize;

use super::sql::args;
use super::{StoreError, Tx};

/// What `waflow status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Events received.
    pub events: i64,
    /// Events not processed yet.
    pub inbox_waiting: i64,
    /// Sends waiting (pending or in flight).
    pub queue_depth: i64,
    /// Dead letters.
    pub dead_letters: i64,
    /// Confirmed sends.
    pub sent: i64,
    /// Recorded in dry-run.
    pub dry_run: i64,
    /// Blocked by a protection.
    pub blocked: i64,
    /// Why sending is paused, if it is.
    pub sending_paused: Option<String>,
    /// Chats where a person took over, and until when.
    pub paused_chats: Vec<(String, i64)>,
    /// The latest failures.
    pub last_errors: Vec<(i64, String, String, i64)>,
    /// Last fire of each schedule rule.
    pub schedules: Vec<(String, i64)>,
    /// The latest contact-list fires, newest first, with their progress.
    pub lists: Vec<super::ListProgress>,
}

/// How many list fires `waflow status` shows.
const LISTS_SHOWN: usize = 10;

impl Tx<'_> {
    /// Gathers the status report of one instance.
    pub fn status_report(&self, instance: &str, now: i64) -> Result<StatusReport, StoreError> {
        let count =
            |sql: &str| -> Result<i64, StoreError> { self.conn.value(sql, args![instance]) };
        let last_errors = self.conn.rows(
            "SELECT id, rule, last_error, updated_at FROM outbox WHERE instance = ?1 AND last_error IS NOT NULL ORDER BY updated_at DESC LIMIT 5",
            args![instance],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let paused_chats = self.conn.rows(
            "SELECT chat, until_at FROM pauses WHERE instance = ?1 AND until_at > ?2 ORDER BY until_at",
            args![instance, now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let schedules = self.conn.rows(
            "SELECT rule, last_fire FROM schedules WHERE instance = ?1 ORDER BY rule",
            args![instance],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let outbox = |state: &str| {
            count(&format!(
                "SELECT COUNT(*) FROM outbox WHERE instance = ?1 AND state = '{state}'"
            ))
        };
        Ok(StatusReport {
            events: count("SELECT COUNT(*) FROM inbox WHERE instance = ?1")?,
            inbox_waiting: count(
                "SELECT COUNT(*) FROM inbox WHERE instance = ?1 AND status = 'new'",
            )?,
            queue_depth: count(
                "SELECT COUNT(*) FROM outbox WHERE instance = ?1 AND state IN ('pending', 'inflight')",
            )?,
            dead_letters: outbox("dead")?,
            sent: outbox("sent")?,
            dry_run: outbox("dry_run")?,
            blocked: outbox("blocked")?,
            sending_paused: self.meta_get(&super::meta::instance_key(
                instance,
                super::meta::SENDING_PAUSED,
            ))?,
            paused_chats,
            last_errors,
            schedules,
            lists: self.list_progress(instance, LISTS_SHOWN)?,
        })
    }

    /// The instances the store holds rows of (events of unknown instances
    /// aside), in name order: configured or not.
    pub fn stored_instances(&self) -> Result<Vec<String>, StoreError> {
        self.conn.rows(
            "SELECT instance FROM (SELECT DISTINCT instance FROM inbox UNION SELECT DISTINCT instance FROM outbox) AS names
             WHERE instance NOT LIKE 'unknown:%' ORDER BY instance",
            args![],
            |r| r.get(0),
        )
    }

    /// Events recorded for instances that are not configured, by the id they named.
    pub fn unknown_instance_events(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.conn.rows(
            "SELECT substr(instance, 9), COUNT(*) FROM inbox WHERE instance LIKE 'unknown:%' GROUP BY instance ORDER BY instance",
            args![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }
}
