//! Contact-list fires (`for_each` rules): what each fire's list held and
//! left out, and its progress, counted from the outbox rows of the same
//! event and rule by state and by why they wait or were blocked.

use std::collections::BTreeMap;

use super::sql::args;
use serde::{Deserialize, Serialize};

use super::{StoreError, Tx};

/// The most left-out rows kept per fire (the count is always whole).
pub const LEFT_OUT_KEPT: usize = 200;

/// A row of a list left out, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeftOutRow {
    /// Its line in the list.
    pub line: u64,
    /// Why.
    pub reason: String,
    /// A bad row (not one `where:` excluded).
    pub bad: bool,
}

/// One fire of a list, to record.
#[derive(Debug, Clone)]
pub struct NewList {
    /// The instance.
    pub instance: String,
    /// The rule.
    pub rule: String,
    /// The event it fired for (its inbox key).
    pub event_key: String,
    /// The event's inbox row.
    pub inbox_id: Option<i64>,
    /// Where the list came from.
    pub source: String,
    /// Rows in the list.
    pub total: usize,
    /// Rows planned.
    pub planned: usize,
    /// Rows left out (all of them; at most [`LEFT_OUT_KEPT`] are kept).
    pub left_out: Vec<LeftOutRow>,
    /// Why the list could not be read, when it could not.
    pub error: Option<String>,
}

/// A list fire and how far it got.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ListProgress {
    /// The rule.
    pub rule: String,
    /// Where the list came from.
    pub source: String,
    /// When it fired (Unix ms).
    pub fired_at: i64,
    /// Rows in the list.
    pub total: i64,
    /// Rows planned.
    pub planned: i64,
    /// Rows `where:` left out.
    pub excluded: i64,
    /// Bad rows skipped.
    pub bad: i64,
    /// The first left-out rows, with line and why.
    pub left_out: Vec<LeftOutRow>,
    /// Why the list could not be read.
    pub error: Option<String>,
    /// Sends confirmed (or recorded in dry-run).
    pub sent: i64,
    /// Sends waiting, by why (`due` when nothing holds them).
    pub waiting: BTreeMap<String, i64>,
    /// Sends blocked by a protection, by which.
    pub blocked: BTreeMap<String, i64>,
    /// Dead letters.
    pub dead: i64,
    /// Dropped by hand.
    pub dropped: i64,
}

impl Tx<'_> {
    /// Records a list fire; a second record of the same fire changes nothing.
    pub fn record_list(&self, list: &NewList, now: i64) -> Result<(), StoreError> {
        let bad = list.left_out.iter().filter(|l| l.bad).count();
        let excluded = list.left_out.len() - bad;
        let kept = &list.left_out[..list.left_out.len().min(LEFT_OUT_KEPT)];
        let left_out =
            serde_json::to_string(kept).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn.exec(
            "INSERT INTO lists (instance, rule, event_key, inbox_id, source, total, planned, excluded, bad, left_out, error, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING",
            args![
                list.instance,
                list.rule,
                list.event_key,
                list.inbox_id,
                list.source,
                list.total as i64,
                list.planned as i64,
                excluded as i64,
                bad as i64,
                left_out,
                list.error,
                now
            ],
        )?;
        Ok(())
    }

    /// The latest `limit` list fires of `instance`, newest first, with their progress.
    pub fn list_progress(
        &self,
        instance: &str,
        limit: usize,
    ) -> Result<Vec<ListProgress>, StoreError> {
        let found = self.conn.rows(
            "SELECT rule, source, created_at, total, planned, excluded, bad, left_out, error, inbox_id
               FROM lists WHERE instance = ?1 ORDER BY created_at DESC, rule LIMIT ?2",
            args![instance, limit as i64],
            |r| {
                let progress = ListProgress {
                    rule: r.get(0)?,
                    source: r.get(1)?,
                    fired_at: r.get(2)?,
                    total: r.get(3)?,
                    planned: r.get(4)?,
                    excluded: r.get(5)?,
                    bad: r.get(6)?,
                    error: r.get(8)?,
                    ..ListProgress::default()
                };
                Ok((progress, r.get::<String>(7)?, r.get::<Option<i64>>(9)?))
            },
        )?;
        let mut out = Vec::with_capacity(found.len());
        for (mut progress, left_out, inbox_id) in found {
            progress.left_out = serde_json::from_str(&left_out)
                .map_err(|e| StoreError::Corrupt(format!("lists.left_out: {e}")))?;
            if let Some(inbox_id) = inbox_id {
                self.count_sends(&mut progress, inbox_id)?;
            }
            out.push(progress);
        }
        Ok(out)
    }

    fn count_sends(&self, progress: &mut ListProgress, inbox_id: i64) -> Result<(), StoreError> {
        let rows = self.conn.rows(
            "SELECT state, COALESCE(reason, ''), COUNT(*) FROM outbox WHERE inbox_id = ?1 AND rule = ?2 GROUP BY 1, 2",
            args![inbox_id, progress.rule],
            |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?)),
        )?;
        for (state, reason, n) in rows {
            let by = |reason: String| {
                if reason.is_empty() {
                    "due".to_owned()
                } else {
                    reason
                }
            };
            match state.as_str() {
                "sent" | "dry_run" => progress.sent += n,
                "pending" | "inflight" => *progress.waiting.entry(by(reason)).or_default() += n,
                "blocked" => *progress.blocked.entry(by(reason)).or_default() += n,
                "dead" => progress.dead += n,
                _ => progress.dropped += n,
            }
        }
        Ok(())
    }
}
