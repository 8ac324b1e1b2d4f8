//! The store's operations: each a plain function over a connection, called
//! inside a writer job (`Store::call`) or on a reader connection.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use super::StoreError;
use crate::rules::{Memory, MenuOption, PlannedAction};

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// An event to record in the inbox.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The instance.
    pub instance: String,
    /// The de-duplication key.
    pub key: String,
    /// The trigger kind.
    pub kind: String,
    /// The event as JSON.
    pub event: String,
    /// `new`, or `ignored` for events recorded but not acted on.
    pub status: &'static str,
    /// Why it is ignored.
    pub note: Option<String>,
}

/// Records events; for each, its inbox row id when it was new (not a duplicate).
pub fn record_events(
    conn: &Connection,
    events: &[NewEvent],
    now: i64,
) -> Result<Vec<Option<i64>>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO inbox (instance, key, kind, event, received_at, status, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (instance, key) DO NOTHING",
    )?;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let n = stmt.execute(params![
            e.instance, e.key, e.kind, e.event, now, e.status, e.note
        ])?;
        out.push((n == 1).then(|| conn.last_insert_rowid()));
    }
    Ok(out)
}

/// An inbox row waiting to be processed.
#[derive(Debug, Clone)]
pub struct InboxRow {
    /// Row id.
    pub id: i64,
    /// The instance.
    pub instance: String,
    /// The de-duplication key (prefix of outbox keys).
    pub key: String,
    /// The event JSON.
    pub event: String,
    /// When it was received.
    pub received_at: i64,
}

/// The oldest unprocessed events.
pub fn new_inbox(conn: &Connection, limit: usize) -> Result<Vec<InboxRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, instance, key, event, received_at FROM inbox WHERE status = 'new' ORDER BY id LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(InboxRow {
            id: r.get(0)?,
            instance: r.get(1)?,
            key: r.get(2)?,
            event: r.get(3)?,
            received_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks an event processed (`done`) or `ignored`, with a note.
pub fn finish_inbox(
    conn: &Connection,
    id: i64,
    status: &str,
    note: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE inbox SET status = ?2, note = ?3 WHERE id = ?1")?
        .execute(params![id, status, note])?;
    Ok(())
}

/// The event JSON of an inbox row (to go on with a rule after an http action).
pub fn inbox_event(conn: &Connection, id: i64) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT key, event FROM inbox WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

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

/// Inserts an outbox row unless one with the same key exists; `true` if inserted.
pub fn insert_outbox(conn: &Connection, row: &NewOutbox, now: i64) -> Result<bool, StoreError> {
    let action =
        serde_json::to_string(&row.action).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let n = conn
        .prepare_cached(
            "INSERT INTO outbox (instance, idem_key, inbox_id, rule, action_index, chat, action, state, next_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) ON CONFLICT (idem_key) DO NOTHING",
        )?
        .execute(params![
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

const OUTBOX_COLUMNS: &str = "id, instance, idem_key, inbox_id, rule, action_index, chat, action, state, attempts, next_at, created_at, updated_at, last_error, message_id";

fn outbox_row(r: &rusqlite::Row) -> rusqlite::Result<(OutboxRow, String)> {
    let action: String = r.get(7)?;
    Ok((
        OutboxRow {
            id: r.get(0)?,
            instance: r.get(1)?,
            idem_key: r.get(2)?,
            inbox_id: r.get(3)?,
            rule: r.get(4)?,
            action_index: r.get(5)?,
            chat: r
                .get::<_, String>(6)
                .map(|c| (!c.is_empty()).then_some(c))?,
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

fn decode(rows: Vec<(OutboxRow, String)>) -> Result<Vec<OutboxRow>, StoreError> {
    rows.into_iter()
        .map(|(mut row, action)| {
            row.action = serde_json::from_str(&action)
                .map_err(|e| StoreError::Corrupt(format!("outbox row {}: {e}", row.id)))?;
            Ok(row)
        })
        .collect()
}

/// Claims up to `limit` due rows, oldest first, at most one per chat: the
/// oldest open row of its chat, so a chat's messages keep their order. The
/// claim is a read: the worker keeps the rows in memory while it sends, and
/// their outcomes are what gets committed (after a crash a row is still
/// pending, so a send in flight is retried once). `attempts` of a returned
/// row counts the attempt about to be made.
pub fn claim_due(conn: &Connection, now: i64, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
    let found = conn
        .prepare_cached(&claim_sql(limit))?
        .query_map([now], outbox_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(decode(found)?
        .into_iter()
        .map(|row| OutboxRow {
            state: "inflight".into(),
            attempts: row.attempts + 1,
            ..row
        })
        .collect())
}

/// The claim query. The limit is written into the SQL, not bound: SQLite
/// re-prepares a statement on every run when its `LIMIT` is a parameter.
pub(super) fn claim_sql(limit: usize) -> String {
    format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox o INDEXED BY outbox_open
         WHERE o.state IN ('pending', 'inflight') AND o.state = 'pending' AND o.next_at <= ?1
           AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.instance = o.instance AND p.chat = o.chat
                           AND p.id < o.id AND p.state IN ('pending', 'inflight') AND p.chat <> '')
         ORDER BY o.id LIMIT {limit}"
    )
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
    /// Why a safety protection stops this send, if one does (set by the worker).
    pub blocked: Option<String>,
}

impl Claim {
    /// Reads the chat's pause and recent sends (within `window_ms`) for a claimed row.
    pub fn of(
        conn: &Connection,
        row: OutboxRow,
        now: i64,
        window_ms: i64,
    ) -> Result<Claim, StoreError> {
        let (chat_pause, recent_sends) = match &row.chat {
            Some(chat) => (
                pause_of(conn, &row.instance, chat, now)?.map(|(_, reason)| reason),
                sends_to_chat_since(conn, &row.instance, chat, now - window_ms)?,
            ),
            None => (None, Vec::new()),
        };
        Ok(Claim {
            row,
            chat_pause,
            recent_sends,
            blocked: None,
        })
    }
}

/// When the next pending row that is not due at `now` becomes due, if any.
/// (Rows due already are either claimable or wait behind their chat's
/// first row, which is then the one to wait for.)
pub fn next_due(conn: &Connection, now: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(NEXT_DUE_SQL)?
        .query_row([now], |r| r.get::<_, Option<i64>>(0))?)
}

pub(super) const NEXT_DUE_SQL: &str = "SELECT MIN(next_at) FROM outbox INDEXED BY outbox_open
    WHERE state IN ('pending', 'inflight') AND state = 'pending' AND next_at > ?1";

/// Whether more than `claimed` pending rows are due at `now`, the claimed
/// ones among them. Counts at most 64 rows, so it stays cheap with a long
/// queue; `claimed` must be smaller.
pub fn more_due(conn: &Connection, now: i64, claimed: usize) -> Result<bool, StoreError> {
    let due: i64 = conn
        .prepare_cached(MORE_DUE_SQL)?
        .query_row([now], |r| r.get(0))?;
    Ok(due as usize > claimed)
}

pub(super) const MORE_DUE_SQL: &str =
    "SELECT COUNT(*) FROM (SELECT 1 FROM outbox INDEXED BY outbox_open
    WHERE state IN ('pending', 'inflight') AND state = 'pending' AND next_at <= ?1 LIMIT 64)";

/// A confirmed send: the row is done and its message id remembered as ours.
pub fn mark_sent(
    conn: &Connection,
    row: &OutboxRow,
    message_id: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE outbox SET state = 'sent', message_id = ?2, last_error = NULL, attempts = ?4, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![row.id, message_id, now, row.attempts])?;
    if let Some(id) = message_id {
        let (recipient, digest) = match &row.action {
            PlannedAction::Send(out) => (out.request.recipient(), Some(out.request.digest())),
            _ => (None, None),
        };
        conn.prepare_cached(
            "INSERT INTO sent (message_id, instance, chat, recipient, digest, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![id, row.instance, row.chat, recipient, digest, now])?;
    }
    Ok(())
}

/// Whether the same content went to `recipient` since `since`.
pub fn sent_same_since(
    conn: &Connection,
    instance: &str,
    recipient: &str,
    digest: &str,
    since: i64,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM sent WHERE instance = ?1 AND recipient = ?2 AND sent_at > ?4 AND digest = ?3 LIMIT 1")?
        .query_row(params![instance, recipient, digest, since], |_| Ok(()))
        .optional()?
        .is_some())
}

/// How many messages went to `recipient` since `since`.
pub fn sent_count_since(
    conn: &Connection,
    instance: &str,
    recipient: &str,
    since: i64,
) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM sent WHERE instance = ?1 AND recipient = ?2 AND sent_at > ?3",
        )?
        .query_row(params![instance, recipient, since], |r| r.get(0))?)
}

/// Remembers that `number` wrote to this instance.
pub fn saw_number(
    conn: &Connection,
    instance: &str,
    number: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO known_numbers (instance, number, first_seen) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?
        .execute(params![instance, number, now])?;
    Ok(())
}

/// Whether `number` ever wrote to this instance.
pub fn is_known(conn: &Connection, instance: &str, number: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM known_numbers WHERE instance = ?1 AND number = ?2")?
        .query_row(params![instance, number], |_| Ok(()))
        .optional()?
        .is_some())
}

/// How many numbers that never wrote got a message since `since`.
pub fn cold_sends_since(conn: &Connection, instance: &str, since: i64) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(DISTINCT recipient) FROM sent s WHERE s.instance = ?1 AND s.sent_at > ?2
               AND s.recipient NOT LIKE '%@g.us'
               AND NOT EXISTS (SELECT 1 FROM known_numbers k WHERE k.instance = s.instance AND k.number = s.recipient)",
        )?
        .query_row(params![instance, since], |r| r.get(0))?)
}

/// Puts a number on the opt-out list; `true` if it was not on it.
pub fn opt_out(
    conn: &Connection,
    instance: &str,
    number: &str,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("INSERT INTO opt_outs (instance, number, since) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?
        .execute(params![instance, number, now])?
        == 1)
}

/// Takes a number off the opt-out list; `true` if it was on it.
pub fn opt_in(conn: &Connection, instance: &str, number: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM opt_outs WHERE instance = ?1 AND number = ?2")?
        .execute(params![instance, number])?
        == 1)
}

/// Whether a number opted out.
pub fn is_opted_out(conn: &Connection, instance: &str, number: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM opt_outs WHERE instance = ?1 AND number = ?2")?
        .query_row(params![instance, number], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The opt-out list: (instance, number, since).
pub fn opt_outs(conn: &Connection) -> Result<Vec<(String, String, i64)>, StoreError> {
    let mut stmt = conn.prepare("SELECT instance, number, since FROM opt_outs ORDER BY since")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Back to pending, due at `next_at`. `count_attempt = false` for waits that are
/// not the send's fault (relogin, our own per-chat rate): they do not spend the budget.
pub fn mark_retry(
    conn: &Connection,
    id: i64,
    next_at: i64,
    error: &str,
    count_attempt: bool,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE outbox SET state = 'pending', next_at = ?2, last_error = ?3, attempts = attempts + ?4, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![id, next_at, error, i64::from(count_attempt), now])?;
    Ok(())
}

/// Holds a message that is not a reply (quiet hours) until `until`, without
/// spending an attempt. It leaves its chat's order: replies planned after it
/// in the same chat must not wait for the morning behind it.
pub fn hold(
    conn: &Connection,
    id: i64,
    until: i64,
    note: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE outbox SET state = 'pending', next_at = ?2, last_error = ?3, chat = '', updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, until, note, now])?;
    Ok(())
}

/// A final state: `dead` (dead letter), `dry_run`, `blocked`, `sent` (an http action).
/// `attempted` counts the attempt that led here.
pub fn mark_final(
    conn: &Connection,
    id: i64,
    state: &str,
    note: Option<&str>,
    attempted: bool,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE outbox SET state = ?2, last_error = COALESCE(?3, last_error), attempts = attempts + ?5, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, state, note, now, i64::from(attempted)])?;
    Ok(())
}

/// After a crash: rows left in flight go back to pending (at most one repeats).
pub fn reset_inflight(conn: &Connection, now: i64) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE outbox SET state = 'pending', updated_at = ?1 WHERE state = 'inflight'",
        )?
        .execute([now])?)
}

/// Rows in the given states (all when empty), newest first.
pub fn list_outbox(
    conn: &Connection,
    states: &[&str],
    limit: usize,
) -> Result<Vec<OutboxRow>, StoreError> {
    let filter = if states.is_empty() {
        String::new()
    } else {
        format!(
            "WHERE state IN ({})",
            states
                .iter()
                .map(|s| format!("'{}'", s.replace('\'', "")))
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox {filter} ORDER BY id DESC LIMIT ?1");
    let rows = conn
        .prepare(&sql)?
        .query_map([limit as i64], outbox_row)?
        .collect::<Result<Vec<_>, _>>()?;
    decode(rows)
}

/// Puts dead (or blocked) rows back in the queue: one by id, or all dead ones.
pub fn retry_outbox(conn: &Connection, id: Option<i64>, now: i64) -> Result<usize, StoreError> {
    Ok(match id {
        Some(id) => conn.execute(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?2, updated_at = ?2 WHERE id = ?1 AND state IN ('dead', 'blocked')",
            params![id, now],
        )?,
        None => conn.execute(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?1, updated_at = ?1 WHERE state = 'dead'",
            [now],
        )?,
    })
}

/// Drops a row that is not sent: it becomes `dropped` and will not be sent.
pub fn drop_outbox(conn: &Connection, id: i64, now: i64) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE outbox SET state = 'dropped', updated_at = ?2 WHERE id = ?1 AND state IN ('pending', 'dead', 'blocked')",
        params![id, now],
    )?)
}

/// Sets per-chat state values.
pub fn set_state(
    conn: &Connection,
    instance: &str,
    chat: &str,
    values: &BTreeMap<String, Value>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO chat_state (instance, chat, key, value) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (instance, chat, key) DO UPDATE SET value = excluded.value",
    )?;
    for (k, v) in values {
        stmt.execute(params![instance, chat, k, v.to_string()])?;
    }
    Ok(())
}

/// Removes per-chat state keys.
pub fn clear_state(
    conn: &Connection,
    instance: &str,
    chat: &str,
    keys: &[String],
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached("DELETE FROM chat_state WHERE instance = ?1 AND chat = ?2 AND key = ?3")?;
    for k in keys {
        stmt.execute(params![instance, chat, k])?;
    }
    Ok(())
}

/// Records that `rule` fired in `chat`.
pub fn fired(
    conn: &Connection,
    instance: &str,
    rule: &str,
    chat: &str,
    at: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO cooldowns (instance, rule, chat, fired_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (instance, rule, chat) DO UPDATE SET fired_at = excluded.fired_at",
    )?
    .execute(params![instance, rule, chat, at])?;
    Ok(())
}

/// Pauses automation in a chat until `until`, for `reason` (human takeover, loop breaker).
pub fn pause_chat(
    conn: &Connection,
    instance: &str,
    chat: &str,
    until: i64,
    reason: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO pauses (instance, chat, until_at, reason) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (instance, chat) DO UPDATE SET until_at = MAX(until_at, excluded.until_at), reason = excluded.reason",
    )?
    .execute(params![instance, chat, until, reason])?;
    Ok(())
}

/// Why and until when automation is paused in a chat, if it is.
pub fn pause_of(
    conn: &Connection,
    instance: &str,
    chat: &str,
    now: i64,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT until_at, reason FROM pauses WHERE instance = ?1 AND chat = ?2 AND until_at > ?3")?
        .query_row(params![instance, chat, now], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Whether we sent anything to `recipient` after `since`.
///
/// Queries on `sent` avoid `MAX(sent_at)` and `ORDER BY sent_at`: with
/// those, SQLite re-prepares the statement on every run (its plan depends
/// on the bound values), which cost more than the query itself.
pub fn sent_to_since(
    conn: &Connection,
    instance: &str,
    recipient: &str,
    since: i64,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM sent WHERE instance = ?1 AND recipient = ?2 AND sent_at > ?3 LIMIT 1",
        )?
        .query_row(params![instance, recipient, since], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Sets a chat's fast-answer streak; returns the new value.
pub fn set_streak(
    conn: &Connection,
    instance: &str,
    chat: &str,
    streak: i64,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO loop_streaks (instance, chat, streak) VALUES (?1, ?2, ?3)
         ON CONFLICT (instance, chat) DO UPDATE SET streak = excluded.streak",
    )?
    .execute(params![instance, chat, streak])?;
    Ok(streak)
}

/// Ends a chat's fast-answer streak (a no-op, writing nothing, when it has none).
pub fn clear_streak(conn: &Connection, instance: &str, chat: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM loop_streaks WHERE instance = ?1 AND chat = ?2")?
        .execute(params![instance, chat])?;
    Ok(())
}

/// A chat's fast-answer streak.
pub fn streak(conn: &Connection, instance: &str, chat: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT streak FROM loop_streaks WHERE instance = ?1 AND chat = ?2")?
        .query_row(params![instance, chat], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Whether `message_id` is one of our own confirmed sends.
pub fn is_own_send(conn: &Connection, message_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM sent WHERE message_id = ?1 LIMIT 1")?
        .query_row([message_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Our confirmed sends to `chat` since `since`, oldest first.
pub fn sends_to_chat_since(
    conn: &Connection,
    instance: &str,
    chat: &str,
    since: i64,
) -> Result<Vec<i64>, StoreError> {
    // Sorted here: see `sent_to_since` for why not in SQL.
    let mut stmt = conn.prepare_cached(
        "SELECT sent_at FROM sent WHERE instance = ?1 AND chat = ?2 AND sent_at > ?3",
    )?;
    let rows = stmt.query_map(params![instance, chat, since], |r| r.get(0))?;
    let mut times: Vec<i64> = rows.collect::<Result<_, _>>()?;
    times.sort_unstable();
    Ok(times)
}

/// Learns a contact's phone number and name.
pub fn upsert_contact(
    conn: &Connection,
    jid: &str,
    phone: Option<&str>,
    name: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO contacts (jid, phone, name, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (jid) DO UPDATE SET phone = COALESCE(excluded.phone, phone),
                                         name = COALESCE(excluded.name, name), updated_at = excluded.updated_at",
    )?
    .execute(params![jid, phone, name, now])?;
    Ok(())
}

/// A learned phone number of a JID.
pub fn phone_of(conn: &Connection, jid: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT phone FROM contacts WHERE jid = ?1 AND phone IS NOT NULL")?
        .query_row([jid], |r| r.get(0))
        .optional()?)
}

/// Reads a meta value.
pub fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

/// Sets (or with `None` removes) a meta value.
pub fn meta_set(conn: &Connection, key: &str, value: Option<&str>) -> Result<(), StoreError> {
    match value {
        Some(v) => conn
            .prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")?
            .execute(params![key, v])?,
        None => conn.prepare_cached("DELETE FROM meta WHERE key = ?1")?.execute([key])?,
    };
    Ok(())
}

/// The last recorded fire of a schedule rule, if its expression is unchanged.
pub fn last_fire(conn: &Connection, rule: &str, expr: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT last_fire FROM schedules WHERE rule = ?1 AND expr = ?2")?
        .query_row(params![rule, expr], |r| r.get(0))
        .optional()?)
}

/// Records a schedule rule's fire.
pub fn set_last_fire(conn: &Connection, rule: &str, expr: &str, at: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO schedules (rule, expr, last_fire) VALUES (?1, ?2, ?3)
         ON CONFLICT (rule) DO UPDATE SET expr = excluded.expr, last_fire = excluded.last_fire",
    )?
    .execute(params![rule, expr, at])?;
    Ok(())
}

/// Sends waiting and dead letters: the outbox gauges (cheap: both counts use an index).
pub fn outbox_counts(conn: &Connection) -> Result<(i64, i64), StoreError> {
    let depth = conn
        .prepare_cached("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'inflight')")?
        .query_row([], |r| r.get(0))?;
    let dead = conn
        .prepare_cached("SELECT COUNT(*) FROM outbox WHERE state = 'dead'")?
        .query_row([], |r| r.get(0))?;
    Ok((depth, dead))
}

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

/// Gathers the status report.
pub fn status_report(conn: &Connection, now: i64) -> Result<StatusReport, StoreError> {
    let count =
        |sql: &str| -> Result<i64, StoreError> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    let mut last_errors = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT id, rule, last_error, updated_at FROM outbox WHERE last_error IS NOT NULL ORDER BY updated_at DESC LIMIT 5",
    )?;
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))? {
        last_errors.push(row?);
    }
    let mut paused_chats = Vec::new();
    let mut stmt =
        conn.prepare("SELECT chat, until_at FROM pauses WHERE until_at > ?1 ORDER BY until_at")?;
    for row in stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))? {
        paused_chats.push(row?);
    }
    let mut schedules = Vec::new();
    let mut stmt = conn.prepare("SELECT rule, last_fire FROM schedules ORDER BY rule")?;
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
        schedules.push(row?);
    }
    Ok(StatusReport {
        events: count("SELECT COUNT(*) FROM inbox")?,
        inbox_waiting: count("SELECT COUNT(*) FROM inbox WHERE status = 'new'")?,
        queue_depth: count("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'inflight')")?,
        dead_letters: count("SELECT COUNT(*) FROM outbox WHERE state = 'dead'")?,
        sent: count("SELECT COUNT(*) FROM outbox WHERE state = 'sent'")?,
        dry_run: count("SELECT COUNT(*) FROM outbox WHERE state = 'dry_run'")?,
        blocked: count("SELECT COUNT(*) FROM outbox WHERE state = 'blocked'")?,
        sending_paused: meta_get(conn, "sending_paused")?,
        paused_chats,
        last_errors,
        schedules,
    })
}

/// Per-chat state and cooldowns read straight from the store, for rule evaluation.
pub struct StoreMemory<'c> {
    /// The connection (inside the writer's transaction).
    pub conn: &'c Connection,
}

impl Memory for StoreMemory<'_> {
    fn state(&self, instance: &str, chat: &str) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let Ok(mut stmt) = self
            .conn
            .prepare_cached("SELECT key, value FROM chat_state WHERE instance = ?1 AND chat = ?2")
        else {
            return out;
        };
        if let Ok(rows) = stmt.query_map(params![instance, chat], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        }) {
            for (k, v) in rows.flatten() {
                out.insert(k, serde_json::from_str(&v).unwrap_or(Value::String(v)));
            }
        }
        out
    }

    fn last_fired(&self, instance: &str, rule: &str, chat: &str) -> Option<jiff::Timestamp> {
        let ms: i64 = self
            .conn
            .prepare_cached(
                "SELECT fired_at FROM cooldowns WHERE instance = ?1 AND rule = ?2 AND chat = ?3",
            )
            .ok()?
            .query_row(params![instance, rule, chat], |r| r.get(0))
            .ok()?;
        jiff::Timestamp::from_millisecond(ms).ok()
    }

    fn last_menu(
        &self,
        instance: &str,
        recipient: &str,
    ) -> Option<(Vec<MenuOption>, jiff::Timestamp)> {
        let (options, at): (String, i64) = self
            .conn
            .prepare_cached("SELECT options, at FROM menus WHERE instance = ?1 AND recipient = ?2")
            .ok()?
            .query_row(params![instance, recipient], |r| Ok((r.get(0)?, r.get(1)?)))
            .ok()?;
        Some((
            serde_json::from_str(&options).ok()?,
            jiff::Timestamp::from_millisecond(at).ok()?,
        ))
    }
}

/// Remembers the options of the menu last planned for `recipient`.
pub fn set_menu(
    conn: &Connection,
    instance: &str,
    recipient: &str,
    options: &[MenuOption],
    now: i64,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(options).unwrap_or_else(|_| "[]".into());
    conn.prepare_cached(
        "INSERT INTO menus (instance, recipient, options, at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (instance, recipient) DO UPDATE SET options = excluded.options, at = excluded.at",
    )?
    .execute(params![instance, recipient, json, now])?;
    Ok(())
}

/// A store time (Unix milliseconds) as readable UTC, for notes and logs.
pub fn ms_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| ms.to_string())
}
