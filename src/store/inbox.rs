//! The inbox: every accepted event, recorded once by its key before the
//! webhook is answered, then processed (`new` → `done` or `ignored`).

use super::sql::args;
use super::{StoreError, Tx};

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
    /// The chat of a message (a chat's events are read by it).
    pub chat: Option<String>,
}

impl NewEvent {
    /// `event`, to be recorded under its own key for the instance called
    /// `instance`, and processed.
    pub fn of(instance: &str, event: &crate::event::Event) -> NewEvent {
        NewEvent {
            instance: instance.to_owned(),
            key: event.key(),
            kind: event.kind.trigger().to_owned(),
            event: serde_json::to_string(event).unwrap_or_default(),
            status: "new",
            note: None,
            chat: match &event.kind {
                crate::event::EventKind::Message(m) => Some(m.chat.clone()),
                _ => None,
            },
        }
    }
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

impl Tx<'_> {
    /// Records events; for each, its inbox row id when it was new (not a duplicate).
    pub fn record_events(
        &self,
        events: &[NewEvent],
        now: i64,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        events
            .iter()
            .map(|e| {
                self.conn.insert(
                    "INSERT INTO inbox (instance, key, kind, event, received_at, status, note, chat)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (instance, key) DO NOTHING",
                    args![e.instance, e.key, e.kind, e.event, now, e.status, e.note, e.chat],
                )
            })
            .collect()
    }

    /// The oldest unprocessed events.
    pub fn new_inbox(&self, limit: usize) -> Result<Vec<InboxRow>, StoreError> {
        self.conn.rows(
            "SELECT id, instance, key, event, received_at FROM inbox WHERE status = 'new' ORDER BY id LIMIT ?1",
            args![limit as i64],
            |r| {
                Ok(InboxRow {
                    id: r.get(0)?,
                    instance: r.get(1)?,
                    key: r.get(2)?,
                    event: r.get(3)?,
                    received_at: r.get(4)?,
                })
            },
        )
    }

    /// Marks an event processed (`done`) or `ignored`, with a note.
    pub fn finish_inbox(
        &self,
        id: i64,
        status: &str,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        self.finish_inbox_with(id, status, note, None)
    }

    /// [`Tx::finish_inbox`] with the decision trail of the event (JSON).
    pub fn finish_inbox_with(
        &self,
        id: i64,
        status: &str,
        note: Option<&str>,
        trail: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.exec(
            "UPDATE inbox SET status = ?2, note = ?3, trail = COALESCE(?4, trail) WHERE id = ?1",
            args![id, status, note, trail],
        )?;
        Ok(())
    }

    /// The event JSON of an inbox row (to go on with a rule after an http action).
    pub fn inbox_event(&self, id: i64) -> Result<Option<(String, String)>, StoreError> {
        self.conn.row(
            "SELECT key, event FROM inbox WHERE id = ?1",
            args![id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }
}
