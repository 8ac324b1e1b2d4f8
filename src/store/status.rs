//! What `waflow status` reads: counts, pauses, the latest errors, the
//! schedules' last fires.

use serde::Serialize;

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
}

impl Tx<'_> {
    /// Gathers the status report.
    pub fn status_report(&self, now: i64) -> Result<StatusReport, StoreError> {
        let count = |sql: &str| -> Result<i64, StoreError> {
            Ok(self.conn.query_row(sql, [], |r| r.get(0))?)
        };
        let mut last_errors = Vec::new();
        let mut stmt = self.conn.prepare(
            "SELECT id, rule, last_error, updated_at FROM outbox WHERE last_error IS NOT NULL ORDER BY updated_at DESC LIMIT 5",
        )?;
        for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))? {
            last_errors.push(row?);
        }
        let mut paused_chats = Vec::new();
        let mut stmt = self
            .conn
            .prepare("SELECT chat, until_at FROM pauses WHERE until_at > ?1 ORDER BY until_at")?;
        for row in stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))? {
            paused_chats.push(row?);
        }
        let mut schedules = Vec::new();
        let mut stmt = self
            .conn
            .prepare("SELECT rule, last_fire FROM schedules ORDER BY rule")?;
        for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
            schedules.push(row?);
        }
        Ok(StatusReport {
            events: count("SELECT COUNT(*) FROM inbox")?,
            inbox_waiting: count("SELECT COUNT(*) FROM inbox WHERE status = 'new'")?,
            queue_depth: count(
                "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'inflight')",
            )?,
            dead_letters: count("SELECT COUNT(*) FROM outbox WHERE state = 'dead'")?,
            sent: count("SELECT COUNT(*) FROM outbox WHERE state = 'sent'")?,
            dry_run: count("SELECT COUNT(*) FROM outbox WHERE state = 'dry_run'")?,
            blocked: count("SELECT COUNT(*) FROM outbox WHERE state = 'blocked'")?,
            sending_paused: self.meta_get("sending_paused")?,
            paused_chats,
            last_errors,
            schedules,
        })
    }
}
