//! Performing one claimed row: the checks that hold or block it (chat
//! pause, protections, quiet hours, per-chat rate), the pacing before it
//! (minimum interval, typing delay), the API call, and `fallback: auto`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use super::http::perform_http;
use super::plan::kind;
use super::retry::finish;
use super::{Outcome, Worker, gap};
use crate::api::{ApiError, ApiReply, ErrorClass};
use crate::config::Config;
use crate::rules::{Outgoing, PlannedAction};
use crate::runtime::Instance;
use crate::store::{Block, Claim, OutboxRow};

impl Worker {
    /// Starts an `http:` action beside the sends, so a slow target never
    /// delays a reply (the row stays in flight, holding its chat's order,
    /// until the call is done). All slots busy: it waits a little, spending
    /// no attempt.
    async fn start_http(
        &self,
        instance: &Arc<Instance>,
        row: &OutboxRow,
        call: &crate::rules::HttpCall,
    ) {
        let Ok(slot) = self.http_slots.clone().try_acquire_owned() else {
            let (id, now) = (row.id, self.shared.now().as_millisecond());
            super::record(&self.shared, "http_wait", move |c| {
                c.mark_retry(id, now + 500, "http actions busy; waiting", false, now)
            })
            .await;
            return;
        };
        let (id, now) = (row.id, self.shared.now().as_millisecond());
        super::record(&self.shared, "http_start", move |c| {
            c.mark_inflight(id, now)
        })
        .await;
        let (shared, client) = (self.shared.clone(), self.http.clone());
        let (instance, row, call) = (instance.clone(), row.clone(), call.clone());
        tokio::spawn(async move {
            let _slot = slot;
            perform_http(&shared, &instance, &client, &row, &call).await;
        });
    }

    /// Performs one claimed row; [`Worker::settle`] applies the outcome.
    pub(super) async fn attempt(&mut self, instance: &Arc<Instance>, claim: &Claim) -> Outcome {
        let shared = &self.shared;
        let row = &claim.row;
        let out = match &row.action {
            PlannedAction::Send(out) => out,
            PlannedAction::Http(call) => {
                self.start_http(instance, row, call).await;
                return Outcome::Done;
            }
            other => {
                let note = format!("not an outbox action: {}", kind(other));
                finish(shared, row.id, "dead", Some(note)).await;
                return Outcome::Done;
            }
        };
        let config = &instance.config;
        if config.dry_run {
            tracing::info!(instance = %instance.name, rule = %row.rule, action = %row.action.display(), "dry-run: not sent");
            finish(shared, row.id, "dry_run", None).await;
            return Outcome::Done;
        }
        if self.stopped(claim, out, config).await {
            return Outcome::Done;
        }
        // No wait at all is no timer: a zero sleep still waits for the
        // timer's next millisecond tick and wakes the thread once more.
        if let Some(pace) = self.pace(config)
            && !self.keeping_lease(pace).await.1
        {
            self.give_back(claim).await;
            return Outcome::Done;
        }
        let shared = &self.shared;
        if !config.retry.echo_wait.is_zero() && !claim.marked {
            // Durable before the call: after a crash this row is known to
            // have maybe left, and waits for its echo instead of going again.
            let (id, now) = (row.id, shared.now().as_millisecond());
            super::record(shared, "send_start", move |c| c.mark_inflight(id, now)).await;
        }
        let (outcome, kept) = self.keeping_lease(send(instance, row, out)).await;
        if !kept {
            tracing::warn!(instance = %instance.name, rule = %row.rule, "the number's lease was lost while a send was in flight: the process that takes it settles that send");
        }
        outcome
    }

    /// Whether the row must not leave now: blocked (a paused chat or a
    /// protection: recorded as blocked, counted for no limit), held (quiet
    /// hours, the daily cap of cold contacts), or waiting for the per-chat
    /// rate. The store says which.
    async fn stopped(&self, claim: &Claim, out: &Outgoing, config: &Config) -> bool {
        let (shared, row) = (&self.shared, &claim.row);
        let (id, endpoint) = (row.id, out.request.endpoint());
        let now = shared.now().as_millisecond();
        let paused = claim.chat_pause.clone().map(|note| Block {
            reason: "chat_paused",
            note,
            until: None,
        });
        // Quiet hours: a message that is not a reply waits, spending no attempt.
        let quiet = || {
            let until = crate::guard::quiet_until(&config.safety, &row.rule, out, now)?;
            let label = config
                .safety
                .quiet_hours
                .as_ref()
                .map_or("", |q| q.label.as_str());
            Some(Block {
                reason: "quiet_hours",
                note: format!(
                    "quiet hours ({label}): held until {}",
                    crate::units::ms_text(until)
                ),
                until: Some(until),
            })
        };
        if let Some(block) = paused.or_else(|| claim.blocked.clone()).or_else(quiet) {
            let held = block.until.is_some();
            let outcome = if held { "held" } else { "blocked" };
            let what = block.reason.replace('_', " ");
            tracing::info!(rule = %row.rule, reason = %block.note, "{what}: send {outcome}");
            metrics::counter!(crate::metrics::ACTIONS, "instance" => row.instance.clone(), "kind" => endpoint, "outcome" => outcome)
                .increment(1);
            super::record(shared, "send_stopped", move |c| {
                if held {
                    c.hold(id, &block, now)
                } else {
                    c.mark_blocked(id, &block, now)
                }
            })
            .await;
            return true;
        }
        // Per-chat rate: at most N sends per window.
        let rate = config.pacing.per_chat;
        let recent = &claim.recent_sends;
        if row.chat.is_some() && recent.len() >= rate.count as usize {
            let window = rate.per.as_millis() as i64;
            let next_at = recent[recent.len() - rate.count as usize] + window + 1;
            let note = format!("per-chat rate {rate} reached; waiting");
            super::record(shared, "per_chat_wait", move |c| {
                c.mark_retry(id, next_at, &note, false, now)
            })
            .await;
            return true;
        }
        false
    }

    /// The minimum interval since the last send (wider during a slow
    /// start), then a human-like typing delay: the wait, as a future that
    /// borrows nothing, so the lease can be renewed beside it; `None` when
    /// there is nothing to wait.
    fn pace(&self, config: &Config) -> Option<tokio::time::Sleep> {
        let gap = gap(&self.breaker, config);
        let interval = self
            .last_send
            .map_or(Duration::ZERO, |last| gap.saturating_sub(last.elapsed()));
        let typing = &config.pacing.typing_delay;
        let typing = if typing.max > Duration::ZERO {
            let ms = rand::rng().random_range(typing.min.as_millis()..=typing.max.as_millis());
            Duration::from_millis(ms as u64)
        } else {
            Duration::ZERO
        };
        let wait = interval + typing;
        (!wait.is_zero()).then(|| tokio::time::sleep(wait))
    }
}

/// The API call, with `fallback: auto`: a refused or unconfirmed
/// interactive message is replaced by its text menu at once, spending no
/// retry.
async fn send(instance: &Instance, row: &OutboxRow, out: &Outgoing) -> Outcome {
    let endpoint = out.request.endpoint();
    let started = Instant::now();
    let mut result = instance.api.call(&out.request).await;
    if let (Err(err), Some(text)) = (&result, &out.fallback)
        && (err.class() == ErrorClass::Permanent || matches!(err, ApiError::NotConfirmed { .. }))
    {
        tracing::warn!(rule = %row.rule, error = %err, "the interactive message was refused; sending the text menu instead");
        metrics::counter!(crate::metrics::ACTIONS, "instance" => row.instance.clone(), "kind" => endpoint, "outcome" => "fallback")
            .increment(1);
        result = instance.api.call(text).await;
    }
    metrics::histogram!(crate::metrics::API_LATENCY, "instance" => row.instance.clone(), "endpoint" => endpoint)
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(ApiReply::Sent { message_id }) => Outcome::Sent {
            message_id: Some(message_id),
        },
        Ok(_) => Outcome::Sent { message_id: None },
        Err(err) => Outcome::Failed(err),
    }
}
