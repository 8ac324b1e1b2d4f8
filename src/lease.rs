//! Holding a lease of the store from a task: the outbox worker of a number
//! (`send:<instance>`), the scheduler (`scheduler`), a process's presence
//! (`process:<id>`). With several processes on one database, a lease
//! decides which one does the work; alone, a process always holds them.
//!
//! A lease is taken or renewed with a committed store job and counted as
//! held until `lease` after the job was asked for — never longer than the
//! store's own expiry, which is measured from when the job ran. It is
//! renewed when a third of that time has passed, so a process that stalls
//! loses it and another one goes on. Expiry uses the wall clock of each
//! process (`units::now_ms`, never the test clock): hosts sharing a
//! database keep their clocks in step (NTP).

use std::time::{Duration, Instant};

use crate::store::Store;

/// A lease as a task holds it.
pub struct Lease {
    name: String,
    holder: String,
    ttl: Duration,
    held: Option<Held>,
    /// When the store last said another process holds it: until
    /// [`Lease::retry_in`] has passed, the answer stands without asking
    /// again (a worker woken by every local event would otherwise ask the
    /// store, a commit, each time).
    refused: Option<Instant>,
}

#[derive(Clone, Copy)]
struct Held {
    generation: i64,
    /// When it was last taken or renewed.
    renewed: Instant,
}

/// What [`Lease::hold`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    /// Held, as before.
    Kept,
    /// Held from now: it was free, expired, or held by another process —
    /// what this task remembers of the work may be out of date.
    Taken,
    /// Another process holds it.
    Not,
}

impl Lease {
    /// The lease `name` for the process `holder`, lasting `ttl` unless renewed.
    pub fn new(name: String, holder: &str, ttl: Duration) -> Lease {
        Lease {
            name,
            holder: holder.to_owned(),
            ttl,
            held: None,
            refused: None,
        }
    }

    /// Whether this process holds the lease now; takes or renews it when
    /// a third of its time has passed. A store failure counts as not held.
    pub async fn hold(&mut self, store: &Store) -> Holding {
        if !self.renew_in().is_zero() {
            return Holding::Kept;
        }
        if self.held.is_none()
            && self
                .refused
                .is_some_and(|at| at.elapsed() < self.retry_in())
        {
            return Holding::Not;
        }
        let asked = Instant::now();
        let (name, holder) = (self.name.clone(), self.holder.clone());
        let ttl_ms = self.ttl.as_millis() as i64;
        let taken = store
            .call(move |tx| tx.take_lease(&name, &holder, crate::units::now_ms(), ttl_ms))
            .await;
        let before = self.held.take();
        match taken {
            Ok(Some(generation)) => {
                self.held = Some(Held {
                    generation,
                    renewed: asked,
                });
                let kept = before
                    .is_some_and(|b| b.generation == generation && b.renewed.elapsed() < self.ttl);
                if kept { Holding::Kept } else { Holding::Taken }
            }
            Ok(None) => {
                self.refused = Some(Instant::now());
                Holding::Not
            }
            Err(err) => {
                tracing::error!(lease = %self.name, error = %err, "cannot renew a lease: its work pauses");
                Holding::Not
            }
        }
    }

    /// How long until [`Lease::hold`] asks the store again (a third of the
    /// lease after it was last taken or renewed; zero when not held): a
    /// task busy with one piece of work renews at that pace so the lease
    /// outlasts it.
    pub fn renew_in(&self) -> Duration {
        self.held.map_or(Duration::ZERO, |held| {
            (self.ttl / 3).saturating_sub(held.renewed.elapsed())
        })
    }

    /// How long to wait before asking again for a lease another holds.
    pub fn retry_in(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_millis(100))
    }

    /// Gives the lease up (the task stops), so that another process takes
    /// it at once.
    pub async fn release(&mut self, store: &Store) {
        if self.held.take().is_none() {
            return;
        }
        let (name, holder) = (self.name.clone(), self.holder.clone());
        let released = store
            .call(move |tx| tx.release_lease(&name, &holder, crate::units::now_ms()))
            .await;
        if let Err(err) = released {
            tracing::warn!(lease = %self.name, error = %err, "cannot release a lease: it expires by itself");
        }
    }
}

/// This process's name among the processes of one database: its host and
/// the port it listens on. Two live processes of one host cannot listen on
/// the same port, and a process restarted in the same place gets the same
/// name, so it takes back at once the leases its crashed predecessor held
/// instead of waiting for them to expire.
pub fn process_id(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{port}")
}

/// The name of the lease that lets a process send for `instance`.
pub fn send_lease(instance: &str) -> String {
    format!("send:{instance}")
}

/// The name of the lease that lets a process fire the schedules.
pub const SCHEDULER: &str = "scheduler";

/// The name of a process's presence lease.
pub fn presence(process: &str) -> String {
    format!("process:{process}")
}
