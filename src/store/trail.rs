//! Reading the decision trail (SPEC §8) back: an event with what the rules
//! decided (`inbox.trail`), and every outbox row it led to with its outcome
//! and the delivery status the webhook reported for it (`sent.delivery`).
//! Written elsewhere — by the pipeline, the outbox and the ledger — in the
//! transactions that do the work; here it is only read.

use serde::Serialize;

use super::outbox::{OUTBOX_COLUMNS, decode, outbox_row};
use super::sql::{Row, args};
use super::{OutboxRow, StoreError, Tx};

/// One event and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct TrailEvent {
    /// The inbox row.
    pub id: i64,
    /// The instance.
    pub instance: String,
    /// Its key (`msg:<id>`, `fire:<rule>:<at>` …).
    pub key: String,
    /// When it was received (Unix ms).
    pub received_at: i64,
    /// `new`, `done` or `ignored`.
    pub status: String,
    /// What happened to it, in a few words (matched rules, why ignored).
    pub note: Option<String>,
    /// The rules' decision (JSON of `rules::Trail`), when rules looked at it.
    pub trail: Option<String>,
    /// The event (JSON of `event::Event`).
    pub event: String,
    /// The sends and calls it led to.
    pub sends: Vec<TrailSend>,
}

/// A send an event led to, with its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct TrailSend {
    /// The outbox row.
    #[serde(flatten)]
    pub row: OutboxRow,
    /// Why a protection blocks or holds it.
    pub reason: Option<String>,
    /// The latest delivery status of a confirmed send.
    pub delivery: Option<String>,
    /// When that status came (Unix ms).
    pub delivery_at: Option<i64>,
}

impl TrailSend {
    /// What became of the send, in a few words: sent (with its id and
    /// latest delivery status), waiting and why, blocked, dead and why.
    pub fn outcome(&self) -> String {
        let row = &self.row;
        let error = row.last_error.as_deref().unwrap_or("");
        match row.state.as_str() {
            "sent" => {
                let id = row.message_id.as_deref().unwrap_or("no id");
                let delivery = match (&self.delivery, self.delivery_at) {
                    (Some(status), Some(at)) => {
                        format!(", {status} at {}", crate::units::ms_text(at))
                    }
                    _ => String::new(),
                };
                format!("sent as {id}{delivery}")
            }
            "pending" | "inflight" if !error.is_empty() => format!("waiting: {error}"),
            "pending" | "inflight" => "waiting to be sent".to_owned(),
            "blocked" => format!("blocked: {error}"),
            "dead" => format!("dead letter after {} attempts: {error}", row.attempts),
            other => other.replace('_', "-"),
        }
    }
}

const EVENT_COLUMNS: &str = "id, instance, key, received_at, status, note, trail, event";

fn event_row(r: &Row) -> Result<TrailEvent, StoreError> {
    Ok(TrailEvent {
        id: r.get(0)?,
        instance: r.get(1)?,
        key: r.get(2)?,
        received_at: r.get(3)?,
        status: r.get(4)?,
        note: r.get(5)?,
        trail: r.get(6)?,
        event: r.get(7)?,
        sends: Vec::new(),
    })
}

impl Tx<'_> {
    /// The event of message `message_id`: a message we received, or the
    /// event one of our sends with that id answered.
    pub fn trail_of_message(
        &self,
        instance: Option<&str>,
        message_id: &str,
    ) -> Result<Option<TrailEvent>, StoreError> {
        let received = self.conn.row(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM inbox WHERE key = ?1 AND (CAST(?2 AS TEXT) IS NULL OR instance = ?2) ORDER BY id DESC LIMIT 1"
            ),
            args![format!("msg:{message_id}"), instance],
            event_row,
        )?;
        let found = match received {
            Some(event) => Some(event),
            None => self.conn.row(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM inbox WHERE id = (SELECT inbox_id FROM outbox
                       WHERE message_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR instance = ?2) ORDER BY id DESC LIMIT 1)"
                ),
                args![message_id, instance],
                event_row,
            )?,
        };
        found.map(|event| self.with_sends(event)).transpose()
    }

    /// The latest `limit` messages of `chat` (a normalized JID), newest first.
    pub fn trail_of_chat(
        &self,
        instance: &str,
        chat: &str,
        limit: usize,
    ) -> Result<Vec<TrailEvent>, StoreError> {
        let events = self.conn.rows(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM inbox WHERE instance = ?1 AND chat = ?2 ORDER BY id DESC LIMIT ?3"
            ),
            args![instance, chat, limit as i64],
            event_row,
        )?;
        events.into_iter().map(|e| self.with_sends(e)).collect()
    }

    fn with_sends(&self, mut event: TrailEvent) -> Result<TrailEvent, StoreError> {
        let columns = OUTBOX_COLUMNS
            .split(", ")
            .map(|c| format!("o.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = self.conn.rows(
            &format!(
                "SELECT {columns}, o.reason, s.delivery, s.delivery_at FROM outbox o
                   LEFT JOIN sent s ON s.message_id = o.message_id AND s.instance = o.instance
                  WHERE o.inbox_id = ?1 ORDER BY o.id"
            ),
            args![event.id],
            |r| {
                let (row, action) = outbox_row(r)?;
                Ok(((row, action), (r.get(15)?, r.get(16)?, r.get(17)?)))
            },
        )?;
        let (rows, extra): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
        event.sends = decode(rows)?
            .into_iter()
            .zip(extra)
            .map(|(row, (reason, delivery, delivery_at))| TrailSend {
                row,
                reason,
                delivery,
                delivery_at,
            })
            .collect();
        Ok(event)
    }
}
