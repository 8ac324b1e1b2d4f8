//! What the store remembers per chat: state (`set:`), cooldown marks,
//! pauses (human takeover, loop breaker), loop streaks, the last menu sent,
//! and phone numbers learned from contacts. Rule evaluation reads it
//! through [`Memory`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::sql::args;
use super::{StoreError, Tx};
use crate::rules::{LastMenu, Memory, MemoryError, MenuOption};

impl Tx<'_> {
    /// Sets per-chat state values.
    pub fn set_state(
        &self,
        instance: &str,
        chat: &str,
        values: &BTreeMap<String, Value>,
    ) -> Result<(), StoreError> {
        for (k, v) in values {
            self.conn.exec(
                "INSERT INTO chat_state (instance, chat, key, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (instance, chat, key) DO UPDATE SET value = excluded.value",
                args![instance, chat, k, v.to_string()],
            )?;
        }
        Ok(())
    }

    /// Removes per-chat state keys.
    pub fn clear_state(
        &self,
        instance: &str,
        chat: &str,
        keys: &[String],
    ) -> Result<(), StoreError> {
        for k in keys {
            self.conn.exec(
                "DELETE FROM chat_state WHERE instance = ?1 AND chat = ?2 AND key = ?3",
                args![instance, chat, k],
            )?;
        }
        Ok(())
    }

    /// Records that `rule` fired in `chat`.
    pub fn fired(&self, instance: &str, rule: &str, chat: &str, at: i64) -> Result<(), StoreError> {
        self.conn.exec(
            "INSERT INTO cooldowns (instance, rule, chat, fired_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (instance, rule, chat) DO UPDATE SET fired_at = excluded.fired_at",
            args![instance, rule, chat, at],
        )?;
        Ok(())
    }

    /// Pauses automation in a chat until `until`, for `reason` (human takeover, loop breaker).
    pub fn pause_chat(
        &self,
        instance: &str,
        chat: &str,
        until: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.conn.exec("INSERT INTO pauses (instance, chat, until_at, reason) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (instance, chat) DO UPDATE SET until_at = CASE WHEN excluded.until_at > pauses.until_at THEN excluded.until_at ELSE pauses.until_at END, reason = excluded.reason", args![instance, chat, until, reason])?;
        Ok(())
    }

    /// Why and until when automation is paused in a chat, if it is.
    pub fn pause_of(
        &self,
        instance: &str,
        chat: &str,
        now: i64,
    ) -> Result<Option<(i64, String)>, StoreError> {
        self.conn.row(
            "SELECT until_at, reason FROM pauses WHERE instance = ?1 AND chat = ?2 AND until_at > ?3",
            args![instance, chat, now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Sets a chat's fast-answer streak; returns the new value.
    pub fn set_streak(&self, instance: &str, chat: &str, streak: i64) -> Result<i64, StoreError> {
        self.conn.exec(
            "INSERT INTO loop_streaks (instance, chat, streak) VALUES (?1, ?2, ?3)
             ON CONFLICT (instance, chat) DO UPDATE SET streak = excluded.streak",
            args![instance, chat, streak],
        )?;
        Ok(streak)
    }

    /// Ends a chat's fast-answer streak (a no-op, writing nothing, when it has none).
    pub fn clear_streak(&self, instance: &str, chat: &str) -> Result<(), StoreError> {
        self.conn.exec(
            "DELETE FROM loop_streaks WHERE instance = ?1 AND chat = ?2",
            args![instance, chat],
        )?;
        Ok(())
    }

    /// A chat's fast-answer streak.
    pub fn streak(&self, instance: &str, chat: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .row(
                "SELECT streak FROM loop_streaks WHERE instance = ?1 AND chat = ?2",
                args![instance, chat],
                |r| r.get(0),
            )?
            .unwrap_or(0))
    }

    /// Learns a contact's phone number and name.
    pub fn upsert_contact(
        &self,
        jid: &str,
        phone: Option<&str>,
        name: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn.exec("INSERT INTO contacts (jid, phone, name, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (jid) DO UPDATE SET phone = COALESCE(excluded.phone, contacts.phone),
                                             name = COALESCE(excluded.name, contacts.name), updated_at = excluded.updated_at", args![jid, phone, name, now])?;
        Ok(())
    }

    /// A learned phone number of a JID.
    pub fn phone_of(&self, jid: &str) -> Result<Option<String>, StoreError> {
        self.conn.row(
            "SELECT phone FROM contacts WHERE jid = ?1 AND phone IS NOT NULL",
            args![jid],
            |r| r.get(0),
        )
    }

    /// Remembers the options of the menu last planned for `recipient`.
    pub fn set_menu(
        &self,
        instance: &str,
        recipient: &str,
        options: &[MenuOption],
        now: i64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(options).unwrap_or_else(|_| "[]".into());
        self.conn.exec("INSERT INTO menus (instance, recipient, options, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (instance, recipient) DO UPDATE SET options = excluded.options, at = excluded.at", args![instance, recipient, json, now])?;
        Ok(())
    }
}

/// Rule evaluation reads the past straight from the transaction; a failed
/// read is an error ([`MemoryError`]), never an empty past.
impl Memory for Tx<'_> {
    fn state(&self, instance: &str, chat: &str) -> Result<BTreeMap<String, Value>, MemoryError> {
        let rows = self
            .conn
            .rows(
                "SELECT key, value FROM chat_state WHERE instance = ?1 AND chat = ?2",
                args![instance, chat],
                |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
            )
            .map_err(memory_error)?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| {
                let value = serde_json::from_str(&v).unwrap_or(Value::String(v));
                (k, value)
            })
            .collect())
    }

    fn last_fired(
        &self,
        instance: &str,
        rule: &str,
        chat: &str,
    ) -> Result<Option<jiff::Timestamp>, MemoryError> {
        let ms: Option<i64> = self
            .conn
            .row(
                "SELECT fired_at FROM cooldowns WHERE instance = ?1 AND rule = ?2 AND chat = ?3",
                args![instance, rule, chat],
                |r| r.get(0),
            )
            .map_err(memory_error)?;
        Ok(ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()))
    }

    fn last_menu(&self, instance: &str, recipient: &str) -> Result<Option<LastMenu>, MemoryError> {
        let found: Option<(String, i64)> = self
            .conn
            .row(
                "SELECT options, at FROM menus WHERE instance = ?1 AND recipient = ?2",
                args![instance, recipient],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(memory_error)?;
        let Some((options, at)) = found else {
            return Ok(None);
        };
        let options = serde_json::from_str(&options)
            .map_err(|e| MemoryError(format!("a stored menu is unreadable: {e}")))?;
        let at = jiff::Timestamp::from_millisecond(at)
            .map_err(|e| MemoryError(format!("a stored menu's time is unreadable: {e}")))?;
        Ok(Some((options, at)))
    }
}

fn memory_error(err: StoreError) -> MemoryError {
    MemoryError(err.to_string())
}
