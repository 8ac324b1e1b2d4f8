//! Retention: events, finished outbox rows, the ledger of sends,
//! unmatched echoes and list fires older than `store.keep` are deleted, a bounded batch
//! per call, so the store does not grow forever. Nothing still needed is
//! touched: unprocessed events, events with open outbox rows, and open
//! rows stay.

use super::sql::args;

use super::{StoreError, Tx};

/// What one call of [`Tx::prune`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Inbox events.
    pub events: usize,
    /// Finished outbox rows (sent, dead, dry-run, blocked).
    pub rows: usize,
    /// Entries of the ledger of sends.
    pub sends: usize,
    /// Echoes of our messages that matched no confirmed send.
    pub echoes: usize,
    /// Records of list fires whose sends are all gone.
    pub lists: usize,
}

impl Pruned {
    /// Whether anything was deleted.
    pub fn any(&self) -> bool {
        self.events + self.rows + self.sends + self.echoes + self.lists > 0
    }
}

impl Tx<'_> {
    /// Deletes up to `limit` of each kind of record older than `before` (ms).
    pub fn prune(&self, before: i64, limit: usize) -> Result<Pruned, StoreError> {
        let limit = limit as i64;
        let rows = self.conn.exec(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
               WHERE state IN ('sent', 'dead', 'dry_run', 'blocked') AND updated_at < ?1 LIMIT ?2)",
            args![before, limit],
        )?;
        let events = self.conn.exec(
            "DELETE FROM inbox WHERE id IN (SELECT i.id FROM inbox i
               WHERE i.received_at < ?1 AND i.status <> 'new'
                 AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.inbox_id = i.id)
               LIMIT ?2)",
            args![before, limit],
        )?;
        let sends = self.conn.exec(
            "DELETE FROM sent WHERE id IN (SELECT id FROM sent WHERE sent_at < ?1 LIMIT ?2)",
            args![before, limit],
        )?;
        let echoes = self.conn.exec(
            "DELETE FROM echoes WHERE id IN (SELECT id FROM echoes WHERE seen_at < ?1 LIMIT ?2)",
            args![before, limit],
        )?;
        let lists = self.conn.exec(
            "DELETE FROM lists WHERE (instance, event_key, rule) IN (SELECT l.instance, l.event_key, l.rule FROM lists l WHERE l.created_at < ?1
                   AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.inbox_id = l.inbox_id) LIMIT ?2)",
            args![before, limit],
        )?;
        Ok(Pruned {
            events,
            rows,
            sends,
            echoes,
            lists,
        })
    }
}

impl Tx<'_> {
    /// Forgets the decision trail of up to `limit` events older than `before` (ms).
    pub fn prune_trails(&self, before: i64, limit: usize) -> Result<usize, StoreError> {
        self.conn.exec(
            "UPDATE inbox SET trail = NULL WHERE id IN (SELECT id FROM inbox
                   WHERE received_at < ?1 AND trail IS NOT NULL LIMIT ?2)",
            args![before, limit as i64],
        )
    }
}
