//! Leases: a named right held by one process until it expires — to send
//! for a number (`send:<instance>`), to fire the schedules (`scheduler`),
//! or a process's own presence (`process:<id>`, what `waflow status` lists).
//! Taking and renewing are one statement, so two processes racing for a
//! free lease cannot both win; a lease that changes hands gets a higher
//! generation. When to renew and what a lease permits is decided above.

use serde::Serialize;

use super::sql::args;
use super::{StoreError, Tx};

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseRow {
    /// What it is for.
    pub name: String,
    /// The process that holds (or last held) it.
    pub holder: String,
    /// How many times it changed hands, counting the first.
    pub generation: i64,
    /// When its holder took it (Unix ms).
    pub acquired_at: i64,
    /// When it ends unless renewed (Unix ms).
    pub expires_at: i64,
}

impl LeaseRow {
    /// Whether it is a running process's presence (`process:<id>`, not expired at `now`).
    pub fn is_live_presence(&self, now: i64) -> bool {
        self.name.starts_with("process:") && self.expires_at > now
    }
}

impl Tx<'_> {
    /// Takes the lease `name` for `holder` until `now + ttl_ms`, or renews
    /// it when `holder` has it: the generation it is held under, or `None`
    /// while another holder's lease runs.
    pub fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.conn.exec(
            "INSERT INTO leases (name, holder, generation, acquired_at, expires_at) VALUES (?1, ?2, 1, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET
                 generation = CASE WHEN leases.holder = excluded.holder THEN leases.generation ELSE leases.generation + 1 END,
                 acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END,
                 holder = excluded.holder,
                 expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at <= excluded.acquired_at",
            args![name, holder, now, now + ttl_ms],
        )?;
        let held = self.conn.row(
            "SELECT holder, generation FROM leases WHERE name = ?1",
            args![name],
            |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)),
        )?;
        Ok(held.and_then(|(by, generation)| (by == holder).then_some(generation)))
    }

    /// Ends `holder`'s lease `name` now (a process stopping), so another
    /// takes it at once instead of waiting for it to expire.
    pub fn release_lease(&self, name: &str, holder: &str, now: i64) -> Result<(), StoreError> {
        self.conn.exec(
            "UPDATE leases SET expires_at = ?3 WHERE name = ?1 AND holder = ?2 AND expires_at > ?3",
            args![name, holder, now],
        )?;
        Ok(())
    }

    /// Every lease, by name.
    pub fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        self.conn.rows(
            "SELECT name, holder, generation, acquired_at, expires_at FROM leases ORDER BY name",
            args![],
            |r| {
                Ok(LeaseRow {
                    name: r.get(0)?,
                    holder: r.get(1)?,
                    generation: r.get(2)?,
                    acquired_at: r.get(3)?,
                    expires_at: r.get(4)?,
                })
            },
        )
    }

    /// When the last confirmed send of `instance` was made (Unix ms), for
    /// the pacing of a process that takes its sending over.
    pub fn last_send_of(&self, instance: &str) -> Result<Option<i64>, StoreError> {
        self.conn.value(
            "SELECT MAX(sent_at) FROM sent WHERE instance = ?1",
            args![instance],
        )
    }
}
