//! What becomes of a send that failed: a retry with backoff and jitter, a
//! pause while the number must log in again, or a dead letter.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::api::{ApiError, ErrorClass};
use crate::rules::PlannedAction;
use crate::runtime::Shared;
use crate::store::OutboxRow;

pub(super) async fn failed(
    shared: &Shared,
    instance: &str,
    row: &OutboxRow,
    err: &ApiError,
    paused_until: &mut Option<Instant>,
    retry: &crate::config::Retry,
) {
    let id = row.id;
    let endpoint = match &row.action {
        PlannedAction::Send(out) => out.request.endpoint(),
        _ => "http",
    };
    let now = shared.now().as_millisecond();
    let message = err.to_string();
    match err.class() {
        ErrorClass::Relogin => {
            tracing::error!(instance, error = %message, "sending paused: the WhatsApp number must log in again (waflow instance qrcode)");
            metrics::gauge!(crate::metrics::SENDING_PAUSED, "instance" => instance.to_owned())
                .set(1.0);
            *paused_until = Some(Instant::now() + retry.relogin_probe);
            let next_at = now + retry.relogin_probe.as_millis() as i64;
            let (note, key) = (message.clone(), super::paused_key(instance));
            super::record(shared, "relogin_pause", move |c| {
                c.meta_set(&key, Some(&format!("relogin required: {note}")))?;
                c.mark_retry(id, next_at, &note, false, now)
            })
            .await;
        }
        ErrorClass::Retryable | ErrorClass::RateLimited
            if (row.attempts as u32) < retry.attempts =>
        {
            let delay = backoff(
                retry,
                row.attempts as u32,
                err.class() == ErrorClass::RateLimited,
            );
            tracing::warn!(rule = %row.rule, attempt = row.attempts, retry_in_ms = delay.as_millis() as u64, error = %message, "send failed; will retry");
            metrics::counter!(crate::metrics::ACTIONS, "instance" => instance.to_owned(), "kind" => endpoint, "outcome" => "retry")
                .increment(1);
            let next_at = now + delay.as_millis() as i64;
            super::record(shared, "retry", move |c| {
                c.mark_retry(id, next_at, &message, true, now)
            })
            .await;
        }
        class => {
            let why = if class == ErrorClass::Permanent {
                message.clone()
            } else {
                format!("gave up after {} attempts: {message}", row.attempts)
            };
            tracing::error!(rule = %row.rule, error = %why, "send failed for good: moved to the dead letters (waflow outbox list --dead)");
            metrics::counter!(crate::metrics::ACTIONS, "instance" => instance.to_owned(), "kind" => endpoint, "outcome" => "dead")
                .increment(1);
            super::record(shared, "dead_letter", move |c| {
                c.mark_final(id, "dead", Some(&why), true, now)
            })
            .await;
        }
    }
}

/// The wait before attempt `attempts + 1`: doubling from `backoff`, capped, ±25 % jitter.
pub fn backoff(retry: &crate::config::Retry, attempts: u32, rate_limited: bool) -> Duration {
    let base =
        retry.backoff.as_millis() as f64 * 2f64.powi(attempts.saturating_sub(1).min(30) as i32);
    let base = if rate_limited { base * 4.0 } else { base };
    let capped = base.min(retry.max_backoff.as_millis() as f64);
    let jitter = rand::rng().random_range(0.75..=1.25);
    Duration::from_millis((capped * jitter) as u64)
}

pub(super) async fn finish(shared: &Shared, id: i64, state: &'static str, note: Option<String>) {
    let now = shared.now().as_millisecond();
    super::record(shared, "final_state", move |c| {
        c.mark_final(id, state, note.as_deref(), false, now)
    })
    .await;
}
