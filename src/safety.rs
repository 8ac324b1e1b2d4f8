//! Conversation safety: protections every rule gets without writing
//! anything, applied where messages are planned and where they leave.
//!
//! - **Opt-out**: a message that is exactly an opt-out keyword (`STOP`,
//!   `PARAR`, `DỪNG`…, case- and accent-insensitive) puts the sender on a
//!   persisted list and gets one confirmation; a resume keyword (`START`)
//!   takes them off. Nothing else reaches a number on the list.
//! - **Repeat suppression**: the same content to the same recipient within
//!   `repeat_window` is not sent again, unless the action says `allow_repeat`.
//! - **Per-chat ceiling**: at most N messages to one recipient per window,
//!   across all rules.
//! - **Loop breaker**: a chat that answers our automatic messages faster
//!   than a person could, several times in a row, is muted for a while.
//! - **Cold contacts**: a number that never wrote to this instance gets a
//!   message only from an action that says `allow_cold: true`, and at most
//!   `cold_daily_cap` such numbers per day.
//! - **Quiet hours**: messages that are not replies (schedules, hook sends,
//!   messages to other numbers) wait for the next allowed time.
//! - **Ban-signal breaker**: an answer of the API that means "rate-limited"
//!   or "restricted" pauses all sending, longer each time it happens again,
//!   and sending resumes slowly.
//!
//! A send a protection stops is recorded as `blocked` with the reason, and
//! counts as sent for no limit. Outbox rows of waflow's own making (rule
//! names starting with `waflow:`) pass: an opt-out confirmation must reach
//! the person who just opted out.

use std::time::Duration;

use rusqlite::Connection;

pub use crate::config::safety::BanBreaker;
use crate::config::safety::{LoopBreaker, OWN_PREFIX, Safety};
use crate::rules::Outgoing;
use crate::store::{self, StoreError};

/// The breaker's state, kept in the store so a restart keeps the pause.
/// Times are Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BreakerState {
    /// Sending is paused until then.
    pub until: i64,
    /// Signals in a row (each doubles the pause).
    pub trips: u32,
    /// When the last signal came.
    pub last_trip: i64,
    /// Sends left to space out after the pause.
    pub slow_left: u32,
    /// The API's answer that opened it.
    pub reason: String,
}

impl BreakerState {
    /// Opens the breaker for a signal at `now`; returns the pause.
    pub fn trip(&mut self, settings: &BanBreaker, now: i64, reason: &str) -> Duration {
        if now - self.last_trip > settings.max_pause.as_millis() as i64 {
            self.trips = 0;
        }
        let factor = 2f64.powi(self.trips.min(30) as i32);
        let pause = settings
            .pause
            .mul_f64(factor)
            .min(settings.max_pause.max(settings.pause));
        self.trips += 1;
        self.last_trip = now;
        self.until = now + pause.as_millis() as i64;
        self.slow_left = settings.slow_start;
        self.reason = reason.to_owned();
        pause
    }

    /// Whether sending is paused at `now`.
    pub fn is_open(&self, now: i64) -> bool {
        now < self.until
    }

    /// The gap before the next send: wider during the slow start.
    pub fn gap(&self, settings: &BanBreaker, min_interval: Duration) -> Duration {
        if self.slow_left == 0 {
            return min_interval;
        }
        let done = settings.slow_start.saturating_sub(self.slow_left);
        let gap = settings
            .slow_interval
            .div_f64(2f64.powi(done.min(30) as i32));
        gap.max(min_interval)
    }

    /// A send went out: one step further out of the slow start.
    pub fn sent(&mut self) {
        self.slow_left = self.slow_left.saturating_sub(1);
    }

    /// How `waflow status` and `/readyz` describe the open breaker.
    pub fn describe(&self) -> String {
        format!(
            "WhatsApp limited this number ({}); sending paused until {} (signal {} in a row), then a slow start",
            self.reason,
            store::ms_text(self.until),
            self.trips
        )
    }
}

/// When a message must wait for quiet hours to end: the end, in Unix
/// milliseconds; `None` when it may leave now. Replies and waflow's own
/// messages never wait.
pub fn quiet_until(safety: &Safety, rule: &str, out: &Outgoing, now: i64) -> Option<i64> {
    let quiet = safety.quiet_hours.as_ref()?;
    if out.reply || rule.starts_with(OWN_PREFIX) {
        return None;
    }
    let now_ts = jiff::Timestamp::from_millisecond(now).ok()?;
    let next = quiet.allowed.next_open(now_ts)?;
    (next > now_ts).then(|| next.as_millisecond())
}

/// Checks an incoming direct message against the loop breaker: whether the
/// chat now looks like another bot answering ours, and is muted for it.
/// Returns the mute's end when this message started it.
pub fn loop_check(
    conn: &Connection,
    breaker: &LoopBreaker,
    instance: &str,
    chat: &str,
    sender: &str,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    if !breaker.enabled {
        return Ok(None);
    }
    let since = now - breaker.faster_than.as_millis() as i64;
    let fast = store::sent_to_since(conn, instance, sender, since)?;
    if !fast {
        // Most messages: no streak to keep, and no page to write.
        store::clear_streak(conn, instance, chat)?;
        return Ok(None);
    }
    let streak = store::streak(conn, instance, chat)? + 1;
    if streak < i64::from(breaker.replies) {
        store::set_streak(conn, instance, chat, streak)?;
        return Ok(None);
    }
    store::clear_streak(conn, instance, chat)?;
    let until = now + breaker.mute.as_millis() as i64;
    store::pause_chat(
        conn,
        instance,
        chat,
        until,
        "the loop breaker muted this chat (answers came faster than a person writes)",
    )?;
    Ok(Some(until))
}

/// Why a send must not leave now, if it must not. Runs in a store job.
pub fn blocked(
    conn: &Connection,
    safety: &Safety,
    instance: &str,
    rule: &str,
    out: &Outgoing,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let (request, allow) = (&out.request, out.allow);
    if rule.starts_with(OWN_PREFIX) {
        return Ok(None);
    }
    let Some(to) = request.recipient() else {
        return Ok(None);
    };
    if store::is_opted_out(conn, instance, &to)? {
        return Ok(Some(format!("{to} opted out")));
    }
    let window = safety.repeat_window.as_millis() as i64;
    if !allow.repeat
        && window > 0
        && store::sent_same_since(conn, instance, &to, &request.digest(), now - window)?
    {
        return Ok(Some(format!(
            "the same message went to {to} less than {} ago (allow_repeat: true sends it anyway)",
            crate::units::format_duration(safety.repeat_window)
        )));
    }
    let is_number = !to.ends_with("@g.us");
    let cold = safety.cold_guard && is_number && !store::is_known(conn, instance, &to)?;
    if cold {
        if !allow.cold {
            return Ok(Some(format!(
                "{to} never wrote to this number (a cold contact): add allow_cold: true to the action to send anyway"
            )));
        }
        let day = now - 86_400_000;
        let sent = store::cold_sends_since(conn, instance, day)?;
        if sent >= i64::from(safety.cold_daily_cap) {
            return Ok(Some(format!(
                "the daily cap of {} first-contact sends is reached (safety.cold_daily_cap)",
                safety.cold_daily_cap
            )));
        }
    }
    if let Some(ceiling) = safety.per_chat_ceiling {
        let since = now - ceiling.per.as_millis() as i64;
        if store::sent_count_since(conn, instance, &to, since)? >= i64::from(ceiling.count) {
            return Ok(Some(format!(
                "{to} already got {ceiling} messages (safety.per_chat_ceiling)"
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_doubles_its_pause_and_starts_slowly() {
        let s = BanBreaker::default();
        let mut b = BreakerState::default();
        let min = 60_000i64;
        let t0 = 1_000_000_000_000i64;
        assert_eq!(b.trip(&s, t0, "rate-overlimit").as_secs(), 15 * 60);
        assert!(b.is_open(t0 + 14 * min) && !b.is_open(t0 + 15 * min));
        assert_eq!(b.trip(&s, t0 + 16 * min, "463").as_secs(), 30 * 60);
        assert_eq!(b.trip(&s, t0 + 50 * min, "463").as_secs(), 60 * 60);
        for _ in 0..10 {
            b.trip(&s, t0 + 60 * min, "463");
        }
        assert_eq!(b.trip(&s, t0 + 61 * min, "463").as_secs(), 6 * 3600);
        // Calm for longer than max_pause: back to the first pause.
        assert_eq!(b.trip(&s, t0 + 10 * 60 * min, "463").as_secs(), 15 * 60);
        let gaps: Vec<u64> = (0..6)
            .map(|_| {
                let g = b.gap(&s, Duration::from_secs(1)).as_millis() as u64;
                b.sent();
                g
            })
            .collect();
        assert_eq!(gaps, [30_000, 15_000, 7_500, 3_750, 1_875, 1_000]);
    }
}
