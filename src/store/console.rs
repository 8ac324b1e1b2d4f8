//! What the console reads besides the trail: the conversations of an
//! instance (each chat's latest message), and a chat's version — what
//! changes when a message comes in, a send is settled or its delivery
//! status moves — for the live timeline.

use super::sql::args;

use super::{StoreError, Tx};

/// A conversation: a chat and its latest message event.
#[derive(Debug, Clone)]
pub struct ChatSummary {
    /// The chat (normalized JID).
    pub chat: String,
    /// Its latest event's inbox row.
    pub last_id: i64,
    /// When that came (Unix ms).
    pub last_at: i64,
    /// That event (JSON of `event::Event`).
    pub event: String,
}

impl Tx<'_> {
    /// The `limit` chats of `instance` with the latest messages, newest first.
    pub fn chats(&self, instance: &str, limit: usize) -> Result<Vec<ChatSummary>, StoreError> {
        self.conn.rows(
            "SELECT i.chat, i.id, i.received_at, i.event FROM inbox i
               JOIN (SELECT MAX(id) AS id FROM inbox WHERE instance = ?1 AND chat IS NOT NULL GROUP BY chat) last
                 ON last.id = i.id
              ORDER BY i.id DESC LIMIT ?2",
            args![instance, limit as i64],
            |r| {
                Ok(ChatSummary {
                    chat: r.get(0)?,
                    last_id: r.get(1)?,
                    last_at: r.get(2)?,
                    event: r.get(3)?,
                })
            },
        )
    }

    /// What changes when anything shown in `chat`'s timeline changes.
    pub fn chat_version(&self, instance: &str, chat: &str) -> Result<String, StoreError> {
        let (last_event, last_send): (Option<i64>, Option<i64>) = self
            .conn
            .row(
                "SELECT MAX(i.id), MAX(o.updated_at) FROM inbox i LEFT JOIN outbox o ON o.inbox_id = i.id
                  WHERE i.instance = ?1 AND i.chat = ?2",
                args![instance, chat],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .unwrap_or_default();
        let delivery: Option<i64> = self.conn.value(
            "SELECT MAX(delivery_at) FROM sent WHERE instance = ?1 AND chat = ?2",
            args![instance, chat],
        )?;
        Ok(format!(
            "{}/{}/{}",
            last_event.unwrap_or(0),
            last_send.unwrap_or(0),
            delivery.unwrap_or(0)
        ))
    }
}
