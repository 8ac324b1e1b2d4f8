//! What was sent and who may be written to: the ledger of confirmed sends
//! (`sent`: repeats, ceilings, the loop breaker, own echoes), the numbers
//! that wrote to us (`known_numbers`: the cold guard) and the opt-out list.

use super::sql::args;

use super::{StoreError, Tx};

impl Tx<'_> {
    /// Whether the same content went to `recipient` since `since`.
    pub fn sent_same_since(
        &self,
        instance: &str,
        recipient: &str,
        digest: &str,
        since: i64,
    ) -> Result<bool, StoreError> {
        self.conn.exists("SELECT 1 FROM sent WHERE instance = ?1 AND recipient = ?2 AND sent_at > ?4 AND digest = ?3 LIMIT 1", args![instance, recipient, digest, since])
    }

    /// How many messages went to `recipient` since `since`.
    pub fn sent_count_since(
        &self,
        instance: &str,
        recipient: &str,
        since: i64,
    ) -> Result<i64, StoreError> {
        self.conn.value(
            "SELECT COUNT(*) FROM sent WHERE instance = ?1 AND recipient = ?2 AND sent_at > ?3",
            args![instance, recipient, since],
        )
    }

    /// Remembers that `number` wrote to this instance.
    pub fn saw_number(&self, instance: &str, number: &str, now: i64) -> Result<(), StoreError> {
        self.conn.exec("INSERT INTO known_numbers (instance, number, first_seen) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING", args![instance, number, now])?;
        Ok(())
    }

    /// Whether `number` ever wrote to this instance.
    pub fn is_known(&self, instance: &str, number: &str) -> Result<bool, StoreError> {
        self.conn.exists(
            "SELECT 1 FROM known_numbers WHERE instance = ?1 AND number = ?2",
            args![instance, number],
        )
    }

    /// How many numbers that never wrote got a message since `since`, and
    /// when the oldest of those sends was made (the daily cap frees a
    /// place 24 hours after it).
    pub fn cold_sends_since(
        &self,
        instance: &str,
        since: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        self.conn
            .row(
                "SELECT COUNT(DISTINCT recipient), MIN(sent_at) FROM sent s WHERE s.instance = ?1 AND s.sent_at > ?2
                   AND s.recipient NOT LIKE '%@g.us'
                   AND NOT EXISTS (SELECT 1 FROM known_numbers k WHERE k.instance = s.instance AND k.number = s.recipient)",
                args![instance, since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .ok_or_else(|| StoreError::Corrupt("no row from a count of cold sends".into()))
    }

    /// Records a delivery status the webhook reported for one of our sends
    /// (`sent`, `delivered`, `read`, `played`, `failed`); a status never
    /// goes back (a late `delivered` after `read` changes nothing) and a
    /// failure is final. `true` when it was one of our sends and changed.
    pub fn record_delivery(
        &self,
        instance: &str,
        message_id: &str,
        status: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let Some(new_rank) = delivery_rank(status) else {
            return Ok(false);
        };
        let current: Option<Option<String>> = self.conn.row(
            "SELECT delivery FROM sent WHERE instance = ?1 AND message_id = ?2",
            args![instance, message_id],
            |r| r.get(0),
        )?;
        let Some(current) = current else {
            return Ok(false);
        };
        if current.as_deref().and_then(delivery_rank) >= Some(new_rank) {
            return Ok(false);
        }
        self.conn.exec("UPDATE sent SET delivery = ?3, delivery_at = ?4 WHERE instance = ?1 AND message_id = ?2", args![instance, message_id, status, at])?;
        Ok(true)
    }

    /// Puts a number on the opt-out list; `true` if it was not on it.
    pub fn opt_out(&self, instance: &str, number: &str, now: i64) -> Result<bool, StoreError> {
        Ok(self.conn.exec("INSERT INTO opt_outs (instance, number, since) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING", args![instance, number, now])?
            == 1)
    }

    /// Takes a number off the opt-out list; `true` if it was on it.
    pub fn opt_in(&self, instance: &str, number: &str) -> Result<bool, StoreError> {
        Ok(self.conn.exec(
            "DELETE FROM opt_outs WHERE instance = ?1 AND number = ?2",
            args![instance, number],
        )? == 1)
    }

    /// Whether a number opted out.
    pub fn is_opted_out(&self, instance: &str, number: &str) -> Result<bool, StoreError> {
        self.conn.exists(
            "SELECT 1 FROM opt_outs WHERE instance = ?1 AND number = ?2",
            args![instance, number],
        )
    }

    /// The opt-out list: (instance, number, since).
    pub fn opt_outs(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.conn.rows(
            "SELECT instance, number, since FROM opt_outs ORDER BY since",
            args![],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// Whether we sent anything to `recipient` after `since`.
    ///
    /// Queries on `sent` avoid `MAX(sent_at)` and `ORDER BY sent_at`: with
    /// those, SQLite re-prepares the statement on every run (its plan depends
    /// on the bound values), which cost more than the query itself.
    pub fn sent_to_since(
        &self,
        instance: &str,
        recipient: &str,
        since: i64,
    ) -> Result<bool, StoreError> {
        self.conn.exists(
            "SELECT 1 FROM sent WHERE instance = ?1 AND recipient = ?2 AND sent_at > ?3 LIMIT 1",
            args![instance, recipient, since],
        )
    }

    /// Whether `message_id` is one of our own confirmed sends.
    pub fn is_own_send(&self, message_id: &str) -> Result<bool, StoreError> {
        self.conn.exists(
            "SELECT 1 FROM sent WHERE message_id = ?1 LIMIT 1",
            args![message_id],
        )
    }

    /// Our confirmed sends to `chat` since `since`, oldest first.
    pub fn sends_to_chat_since(
        &self,
        instance: &str,
        chat: &str,
        since: i64,
    ) -> Result<Vec<i64>, StoreError> {
        // Sorted here: see `sent_to_since` for why not in SQL.
        let mut times: Vec<i64> = self.conn.rows(
            "SELECT sent_at FROM sent WHERE instance = ?1 AND chat = ?2 AND sent_at > ?3",
            args![instance, chat, since],
            |r| r.get(0),
        )?;
        times.sort_unstable();
        Ok(times)
    }
}

/// The order of delivery statuses: each only moves forward; `failed` ends it.
fn delivery_rank(status: &str) -> Option<u8> {
    Some(match status {
        "pending" => 0,
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "played" => 4,
        "failed" => 5,
        _ => return None,
    })
}
