//! The outbox: one row per planned action (`<event key>/<rule>/<index>`),
//! claimed in order per chat, settled as sent, retried, held, blocked or
//! dead. What to send and when is decided above; this is its ledger.

use serde::Serialize;

use super::sql::{Row, args};
use super::{StoreError, Tx};
use crate::rules::PlannedAction;

/// An outbox row to insert.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    /// The instance.
    pub instance: String,
    /// `<event key>/<rule>/<action index>`: one row per action, ever.
    pub idem_key: String,
    /// The event it came from.
    pub inbox_id: Option<i64>,
    /// The rule.
    pub rule: String,
    /// The action's index in the rule.
    pub action_index: usize,
    /// The chat (ordering and pauses).
    pub chat: Option<String>,
    /// What to do.
    pub action: PlannedAction,
    /// Not before this time.
    pub next_at: i64,
    /// `pending`, or `dry_run` when nothing may be sent.
    pub state: &'static str,
}

/// One outbox row.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// The instance.
    pub instance: String,
    /// The idempotency key.
    pub idem_key: String,
    /// The event it came from.
    pub inbox_id: Option<i64>,
    /// The rule.
    pub rule: String,
    /// The action index.
    pub action_index: i64,
    /// The chat.
    pub chat: Option<String>,
    /// What to do.
    pub action: PlannedAction,
    /// pending, inflight, sent, dead, dry_run, blocked.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// Due time.
    pub next_at: i64,
    /// Created.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// The last error.
    pub last_error: Option<String>,
    /// The message id of a confirmed send.
    pub message_id: Option<String>,
}

pub(super) const OUTBOX_COLUMNS: &str = "id, instance, idem_key, inbox_id, rule, action_index, chat, action, state, attempts, next_at, created_at, updated_at, last_error, message_id";

pub(super) fn outbox_row(r: &Row) -> Result<(OutboxRow, String), StoreError> {
    let action: String = r.get(7)?;
    Ok((
        OutboxRow {
            id: r.get(0)?,
            instance: r.get(1)?,
            idem_key: r.get(2)?,
            inbox_id: r.get(3)?,
            rule: r.get(4)?,
            action_index: r.get(5)?,
            chat: r.get::<String>(6).map(|c| (!c.is_empty()).then_some(c))?,
            action: PlannedAction::Log {
                text: String::new(),
            },
            state: r.get(8)?,
            attempts: r.get(9)?,
            next_at: r.get(10)?,
            created_at: r.get(11)?,
            updated_at: r.get(12)?,
            last_error: r.get(13)?,
            message_id: r.get(14)?,
        },
        action,
    ))
}

pub(super) fn decode(rows: Vec<(OutboxRow, String)>) -> Result<Vec<OutboxRow>, StoreError> {
    rows.into_iter()
        .map(|(mut row, action)| {
            row.action = serde_json::from_str(&action)
                .map_err(|e| StoreError::Corrupt(format!("outbox row {}: {e}", row.id)))?;
            Ok(row)
        })
        .collect()
}

/// The claim query. The limit is written into the SQL, not bound: SQLite
/// re-prepares a statement on every run when its `LIMIT` is a parameter.
/// The instance is compared as `+?2` for the same reason: bound plainly,
/// SQLite re-checks the partial indexes against its value on every run
/// (the index on `instance` is used all the same).
pub(super) fn claim_sql(limit: usize) -> String {
    format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox o INDEXED BY outbox_open
         WHERE o.instance = +?2 AND o.state IN ('pending', 'inflight') AND o.state = 'pending' AND o.next_at <= ?1
           AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.instance = o.instance AND p.chat = o.chat
                           AND p.id < o.id AND p.state IN ('pending', 'inflight') AND p.chat <> '')
         ORDER BY o.id LIMIT {limit}"
    )
}

/// Why a protection stops a send, as the outbox records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The protection, in one word (`opted_out`, `repeat`, `cold`,
    /// `cold_cap`, `ceiling`, `chat_paused`, `quiet_hours`): the outbox
    /// row's `reason`, what a list's progress counts by.
    pub reason: &'static str,
    /// What to tell a person.
    pub note: String,
    /// The send is not blocked but waits until then (Unix ms).
    pub until: Option<i64>,
}

/// A claimed row with what the worker must know before sending it.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The row, now in flight.
    pub row: OutboxRow,
    /// Why automation is paused in the row's chat (human takeover, loop breaker), if it is.
    pub chat_pause: Option<String>,
    /// Our sends to the row's chat within the rate window, oldest first.
    pub recent_sends: Vec<i64>,
    /// Why a safety protection stops (or holds) this send, if one does.
    pub blocked: Option<Block>,
    /// Marked in flight in the store already (with the previous send's
    /// confirmation), so the worker does not mark it again.
    pub marked: bool,
}

impl Claim {
    /// Reads the chat's pause and recent sends (within `window_ms`) for a claimed row.
    pub fn of(tx: &Tx, row: OutboxRow, now: i64, window_ms: i64) -> Result<Claim, StoreError> {
        let (chat_pause, recent_sends) = match &row.chat {
            Some(chat) => (
                tx.pause_of(&row.instance, chat, now)?
                    .map(|(_, reason)| reason),
                tx.sends_to_chat_since(&row.instance, chat, now - window_ms)?,
            ),
            None => (None, Vec::new()),
        };
        Ok(Claim {
            row,
            chat_pause,
            recent_sends,
            blocked: None,
            marked: false,
        })
    }
}

pub(super) const NEXT_DUE_SQL: &str = "SELECT MIN(next_at) FROM outbox INDEXED BY outbox_open
    WHERE instance = +?2 AND state IN ('pending', 'inflight') AND state = 'pending' AND next_at > ?1";

/// Counts up to two rows: [`Tx::more_due`] only asks whether there is
/// more than the one claimed, and every row counted is a lookup of its
/// table row (the state and due time are not in the index).
pub(super) const MORE_DUE_SQL: &str =
    "SELECT COUNT(*) FROM (SELECT 1 FROM outbox INDEXED BY outbox_open
    WHERE instance = +?2 AND state IN ('pending', 'inflight') AND state = 'pending' AND next_at <= ?1 LIMIT 2) AS due";

impl Tx<'_> {
    /// Inserts an outbox row unless one with the same key exists; `true` if inserted.
    pub fn insert_outbox(&self, row: &NewOutbox, now: i64) -> Result<bool, StoreError> {
        let action =
            serde_json::to_string(&row.action).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let n = self.conn.exec("INSERT INTO outbox (instance, idem_key, inbox_id, rule, action_index, chat, action, state, next_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) ON CONFLICT (idem_key) DO NOTHING", args![
                row.instance,
                row.idem_key,
                row.inbox_id,
                row.rule,
                row.action_index as i64,
                row.chat.as_deref().unwrap_or_default(),
                action,
                row.state,
                row.next_at,
                now
            ])?;
        Ok(n == 1)
    }

    /// Claims up to `limit` due rows, oldest first, at most one per chat: the
    /// oldest open row of its chat, so a chat's messages keep their order. The
    /// claim is a read: the worker keeps the rows in memory while it sends, and
    /// their outcomes are what gets committed (after a crash a row is still
    /// pending, so a send in flight is retried once). `attempts` of a returned
    /// row counts the attempt about to be made.
    pub fn claim_due(
        &self,
        instance: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let found = self
            .conn
            .rows(&claim_sql(limit), args![now, instance], outbox_row)?;
        Ok(decode(found)?
            .into_iter()
            .map(|row| OutboxRow {
                state: "inflight".into(),
                attempts: row.attempts + 1,
                ..row
            })
            .collect())
    }

    /// Marks a claimed row as in flight in the store: for work that runs
    /// beside the worker (`http:` actions), so the next claim does not take
    /// it again, and for a send about to be handed to the API, so that
    /// after a crash [`Tx::reconcile_inflight`] knows it may have left.
    pub fn mark_inflight(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.conn.exec("UPDATE outbox SET state = 'inflight', echo_until = NULL, updated_at = ?2 WHERE id = ?1", args![id, now])?;
        Ok(())
    }

    /// Puts a row marked in flight that was not handed to the API back to
    /// pending (a worker stopping with a claimed row).
    pub fn unmark_inflight(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.conn.exec("UPDATE outbox SET state = 'pending', updated_at = ?2 WHERE id = ?1 AND state = 'inflight'", args![id, now])?;
        Ok(())
    }

    /// When the next pending row that is not due at `now` becomes due, if any.
    /// (Rows due already are either claimable or wait behind their chat's
    /// first row, which is then the one to wait for.)
    pub fn next_due(&self, instance: &str, now: i64) -> Result<Option<i64>, StoreError> {
        self.conn.value(NEXT_DUE_SQL, args![now, instance])
    }

    /// Whether more than `claimed` pending rows are due at `now`, the claimed
    /// ones among them. Counts at most two rows, so it stays cheap with a
    /// long queue; `claimed` is 0 or 1 (one send in flight).
    pub fn more_due(&self, instance: &str, now: i64, claimed: usize) -> Result<bool, StoreError> {
        debug_assert!(claimed < 2, "more_due counts two rows at most");
        let due: i64 = self.conn.value(MORE_DUE_SQL, args![now, instance])?;
        Ok(due as usize > claimed)
    }

    /// A confirmed send: the row is done and its message id remembered as ours.
    pub fn mark_sent(
        &self,
        row: &OutboxRow,
        message_id: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn.exec("UPDATE outbox SET state = 'sent', message_id = ?2, last_error = NULL, attempts = ?4, updated_at = ?3 WHERE id = ?1", args![row.id, message_id, now, row.attempts])?;
        if let Some(id) = message_id {
            let (recipient, digest) = match &row.action {
                PlannedAction::Send(out) => (out.request.recipient(), Some(out.request.digest())),
                _ => (None, None),
            };
            self.conn.exec("INSERT INTO sent (message_id, instance, chat, recipient, digest, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", args![id, row.instance, row.chat, recipient, digest, now])?;
        }
        Ok(())
    }

    /// Back to pending, due at `next_at`. `count_attempt = false` for waits that are
    /// not the send's fault (relogin, our own per-chat rate): they do not spend the budget.
    pub fn mark_retry(
        &self,
        id: i64,
        next_at: i64,
        error: &str,
        count_attempt: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn.exec("UPDATE outbox SET state = 'pending', next_at = ?2, last_error = ?3, reason = NULL, attempts = attempts + ?4, updated_at = ?5 WHERE id = ?1", args![id, next_at, error, i64::from(count_attempt), now])?;
        Ok(())
    }

    /// Holds a message that is not a reply (quiet hours) until `until`, without
    /// spending an attempt. It leaves its chat's order: replies planned after it
    /// in the same chat must not wait for the morning behind it.
    pub fn hold(&self, id: i64, block: &Block, now: i64) -> Result<(), StoreError> {
        self.conn.exec("UPDATE outbox SET state = 'pending', next_at = ?2, last_error = ?3, reason = ?4, chat = '', updated_at = ?5 WHERE id = ?1", args![id, block.until.unwrap_or(now), block.note, block.reason, now])?;
        Ok(())
    }

    /// A send a protection stopped: `blocked` for good, with the reason.
    pub fn mark_blocked(&self, id: i64, block: &Block, now: i64) -> Result<(), StoreError> {
        self.conn.exec("UPDATE outbox SET state = 'blocked', last_error = ?2, reason = ?3, updated_at = ?4 WHERE id = ?1", args![id, block.note, block.reason, now])?;
        Ok(())
    }

    /// A final state: `dead` (dead letter), `dry_run`, `blocked`, `sent` (an http action).
    /// `attempted` counts the attempt that led here.
    pub fn mark_final(
        &self,
        id: i64,
        state: &str,
        note: Option<&str>,
        attempted: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn.exec("UPDATE outbox SET state = ?2, last_error = COALESCE(?3, last_error), attempts = attempts + ?5, updated_at = ?4 WHERE id = ?1", args![id, state, note, now, i64::from(attempted)])?;
        Ok(())
    }

    /// Rows in the given states (all when empty) of one instance (or all),
    /// newest first.
    pub fn list_outbox(
        &self,
        instance: Option<&str>,
        states: &[&str],
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let states = if states.is_empty() {
            "TRUE".to_owned()
        } else {
            format!(
                "state IN ({})",
                states
                    .iter()
                    .map(|s| format!("'{}'", s.replace('\'', "")))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE {states} AND (CAST(?2 AS TEXT) IS NULL OR instance = ?2) ORDER BY id DESC LIMIT ?1"
        );
        let rows = self
            .conn
            .rows(&sql, args![limit as i64, instance], outbox_row)?;
        decode(rows)
    }

    /// Puts dead (or blocked) rows back in the queue: one by id, or all
    /// dead ones (of one instance, or of all).
    pub fn retry_outbox(
        &self,
        id: Option<i64>,
        instance: Option<&str>,
        now: i64,
    ) -> Result<usize, StoreError> {
        Ok(match id {
            Some(id) => self.conn.exec(
                "UPDATE outbox SET state = 'pending', attempts = 0, reason = NULL, next_at = ?2, updated_at = ?2 WHERE id = ?1 AND state IN ('dead', 'blocked')",
                args![id, now],
            )?,
            None => self.conn.exec(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?1, updated_at = ?1 WHERE state = 'dead' AND (CAST(?2 AS TEXT) IS NULL OR instance = ?2)",
                args![now, instance],
            )?,
        })
    }

    /// Drops a row that is not sent: it becomes `dropped` and will not be sent.
    pub fn drop_outbox(&self, id: i64, now: i64) -> Result<usize, StoreError> {
        self.conn.exec(
            "UPDATE outbox SET state = 'dropped', updated_at = ?2 WHERE id = ?1 AND state IN ('pending', 'dead', 'blocked')",
            args![id, now],
        )
    }

    /// An instance's sends waiting and dead letters: the outbox gauges
    /// (cheap: both counts use an index).
    pub fn outbox_counts(&self, instance: &str) -> Result<(i64, i64), StoreError> {
        let depth = self.conn.value(
            "SELECT COUNT(*) FROM outbox WHERE instance = ?1 AND state IN ('pending', 'inflight')",
            args![instance],
        )?;
        let dead = self.conn.value(
            "SELECT COUNT(*) FROM outbox WHERE state = 'dead' AND instance = ?1",
            args![instance],
        )?;
        Ok((depth, dead))
    }
}
