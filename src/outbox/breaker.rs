//! The ban-signal breaker's state machine: an answer that means
//! "rate-limited" or "restricted" pauses all sending, longer each time it
//! happens again, and sending resumes slowly. Pure; the worker keeps its
//! state in the store so a restart keeps the pause.

use std::time::Duration;

use super::{Worker, breaker_key, paused_key};
use crate::api::ApiError;
use crate::config::safety::BanBreaker;
use crate::store::{OutboxRow, StoreError, Tx};

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
            crate::units::ms_text(self.until),
            self.trips
        )
    }
}

impl Worker {
    /// Whether the ban-signal breaker still pauses sending. When its pause
    /// has just ended, says so and lets the slow start begin.
    pub(super) async fn breaker_holds(&mut self) -> bool {
        if self.breaker.until == 0 {
            return false;
        }
        let now = self.shared.now().as_millisecond();
        if self.breaker.is_open(now) {
            let instance = self.instance.clone();
            metrics::gauge!(crate::metrics::SENDING_PAUSED, "instance" => instance.clone())
                .set(1.0);
            metrics::gauge!(crate::metrics::BAN_BREAKER_OPEN, "instance" => instance).set(1.0);
            return true;
        }
        tracing::info!(
            slow_start = self.breaker.slow_left,
            "sending resumed after the ban-signal pause, slowly at first"
        );
        self.breaker.until = 0;
        let save = self.breaker_saved();
        super::record(&self.shared, "breaker", save).await;
        false
    }

    /// Shows the breaker's state in the gauges, and returns the store work
    /// that keeps it (for restarts) and shows it in `waflow status` and `/readyz`.
    fn breaker_saved(&self) -> impl Fn(&Tx) -> Result<(), StoreError> + Clone + Send + 'static {
        let open = self.breaker.until != 0;
        let flag = if open { 1.0 } else { 0.0 };
        let instance = self.instance.clone();
        metrics::gauge!(crate::metrics::SENDING_PAUSED, "instance" => instance.clone()).set(flag);
        metrics::gauge!(crate::metrics::BAN_BREAKER_OPEN, "instance" => instance.clone()).set(flag);
        let json = serde_json::to_string(&self.breaker).unwrap_or_default();
        let paused = open.then(|| self.breaker.describe());
        let (breaker, paused_at) = (breaker_key(&instance), paused_key(&instance));
        move |c| {
            c.meta_set(&breaker, Some(&json))?;
            c.meta_set(&paused_at, paused.as_deref())
        }
    }

    /// A ban signal: pause all sending, longer each time, and keep the row
    /// for after the pause. A signal while the pause it opened still runs
    /// only keeps its row.
    pub(super) async fn trip(&mut self, row: &OutboxRow, err: &ApiError, settings: &BanBreaker) {
        let now = self.shared.now().as_millisecond();
        let reason = err.to_string();
        let save = if self.breaker.is_open(now) {
            None
        } else {
            let pause = self.breaker.trip(settings, now, &reason);
            tracing::error!(
                pause_s = pause.as_secs(),
                signals = self.breaker.trips,
                error = %reason,
                "WhatsApp rate-limited or restricted this number: all sending paused (safety.ban_breaker)"
            );
            metrics::counter!(crate::metrics::BAN_BREAKER_TRIPS, "instance" => self.instance.clone()).increment(1);
            Some(self.breaker_saved())
        };
        let (id, until) = (row.id, self.breaker.until);
        super::record(&self.shared, "breaker_trip", move |c| {
            if let Some(save) = &save {
                save(c)?;
            }
            c.mark_retry(id, until, &reason, false, now)
        })
        .await;
    }
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
