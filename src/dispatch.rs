//! The outbox worker: claim → pacing → API → confirm, retry or dead-letter.
//!
//! One worker per daemon sends in order per chat (a WhatsApp number is a
//! serial channel, and pacing needs it anyway); only sends that nothing
//! paces leave together, one per chat. While idle, its next claim is parked
//! with the store and runs in the transaction of the webhook that planned
//! new rows. Before
//! each send it honours the pacing of the config (minimum interval, per-chat
//! rate, a random typing delay) and human takeover. After it: a confirmed
//! send is recorded with its message id; a retryable error is retried with
//! exponential backoff and jitter; a permanent error or an exhausted budget
//! makes a dead letter; "relogin required" pauses all sending, without
//! spending the retry budget, until a probe send succeeds.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, ApiReply, ErrorClass};
use crate::daemon::Shared;
use crate::pipeline::{kind, write_plan};
use crate::rules::{EvalInput, HttpCall, HttpResult, PlannedAction};
use crate::safety::{BanBreaker, BreakerState};
use crate::store::{self, OutboxRow, StoreMemory};

/// The longest the worker sleeps without looking at the outbox again.
const IDLE: Duration = Duration::from_secs(1);
/// How often the outbox gauges are refreshed.
const GAUGE_EVERY: Duration = Duration::from_secs(2);

/// Runs the worker until `cancel` fires; the sends in flight are finished first.
pub async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let breaker = shared
        .store
        .call(|c| store::meta_get(c, BREAKER_KEY))
        .await
        .ok()
        .flatten()
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    let mut worker = Worker {
        shared,
        cancel,
        last_send: None,
        relogin_until: None,
        gauges_at: None,
        breaker,
        http: reqwest::Client::new(),
    };
    worker.run().await;
}

/// Where the ban-signal breaker's state is kept.
const BREAKER_KEY: &str = "ban_breaker";

/// Webhook requests in flight that make a burst.
const BURST: usize = 4;
/// The longest the worker lets a burst go first, before each batch.
const BURST_WAIT: Duration = Duration::from_millis(100);

/// The worker's memory between sends.
struct Worker {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    /// When the last send left, for the minimum interval.
    last_send: Option<Instant>,
    /// While the number must log in again: when to probe.
    relogin_until: Option<Instant>,
    gauges_at: Option<Instant>,
    /// The ban-signal breaker: pause and slow start after rate-limit answers.
    breaker: BreakerState,
    http: reqwest::Client,
}

/// What one claim found.
struct Batch {
    /// The row to perform now: one send in flight at a time.
    claim: Option<store::Claim>,
    /// Whether other rows are due now (a chat's next message, rows behind it).
    more: bool,
    /// When nothing else is due: when the next waiting row comes due.
    next_due: Option<i64>,
}

/// What became of one claimed row.
enum Outcome {
    /// Nothing left to do: settled in the store already, or not sent by design.
    Done,
    /// The API confirmed the send.
    Sent { message_id: Option<String> },
    /// The API call failed.
    Failed(ApiError),
}

impl Worker {
    async fn run(&mut self) {
        // Whether rows may be due now; otherwise the claim waits for new work.
        let mut ready = true;
        let mut next_due = None;
        loop {
            if self.cancel.is_cancelled() {
                break;
            }
            if let Some(until) = self.relogin_until
                && Instant::now() < until
            {
                self.wait(until - Instant::now()).await;
                continue;
            }
            if self.breaker_holds().await {
                self.wait(IDLE).await;
                continue;
            }
            if !ready {
                self.wait_for_work(next_due).await;
            }
            let claim = self.claim();
            let batch = match self.shared.store.call_lazy(claim).await {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::error!(error = %err, "cannot read the outbox");
                    self.wait(IDLE).await;
                    ready = true;
                    continue;
                }
            };
            (ready, next_due) = (batch.more, batch.next_due);
            let Some(claim) = batch.claim else {
                continue;
            };
            self.let_burst_pass().await;
            let outcome = self.attempt(&claim).await;
            if !matches!(outcome, Outcome::Sent { .. }) {
                // Settled in the store already, or changed there: look again.
                ready = true;
            }
            // The confirmation is committed before the next claim: one send
            // in flight, so a crash can repeat at most that one.
            self.settle(&claim.row, outcome).await;
        }
    }

    /// Waits until new work is planned (the pipeline says so after its
    /// commit), `next_due` comes, or [`IDLE`] passes.
    async fn wait_for_work(&mut self, next_due: Option<i64>) {
        self.update_gauges().await;
        let now = self.shared.now().as_millisecond();
        let nap = next_due
            .map(|at| Duration::from_millis((at - now).max(0) as u64))
            .unwrap_or(IDLE)
            .min(IDLE);
        self.wait(nap).await;
    }

    /// During a burst of webhook requests, waits up to [`BURST_WAIT`] for it
    /// to pass, so answering them comes first: the API gives up on (and
    /// sends again) a webhook that is answered late, while a reply can wait
    /// in the outbox a moment.
    async fn let_burst_pass(&self) {
        let until = Instant::now() + BURST_WAIT;
        while self.shared.webhooks_busy.load(Ordering::Relaxed) >= BURST
            && Instant::now() < until
            && !self.cancel.is_cancelled()
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Whether the ban-signal breaker still pauses sending. When its pause
    /// has just ended, says so and lets the slow start begin.
    async fn breaker_holds(&mut self) -> bool {
        if self.breaker.until == 0 {
            return false;
        }
        let now = self.shared.now().as_millisecond();
        if self.breaker.is_open(now) {
            metrics::gauge!(crate::metrics::SENDING_PAUSED).set(1.0);
            metrics::gauge!(crate::metrics::BAN_BREAKER_OPEN).set(1.0);
            return true;
        }
        tracing::info!(
            slow_start = self.breaker.slow_left,
            "sending resumed after the ban-signal pause, slowly at first"
        );
        self.breaker.until = 0;
        let save = self.breaker_saved();
        let _ = self.shared.store.call(save).await;
        false
    }

    /// Shows the breaker's state in the gauges, and returns the store work
    /// that keeps it (for restarts) and shows it in `waflow status` and `/readyz`.
    fn breaker_saved(
        &self,
    ) -> impl FnOnce(&rusqlite::Connection) -> Result<(), store::StoreError> + Send + 'static {
        let open = self.breaker.until != 0;
        let flag = if open { 1.0 } else { 0.0 };
        metrics::gauge!(crate::metrics::SENDING_PAUSED).set(flag);
        metrics::gauge!(crate::metrics::BAN_BREAKER_OPEN).set(flag);
        let json = serde_json::to_string(&self.breaker).unwrap_or_default();
        let paused = open.then(|| self.breaker.describe());
        move |c| {
            store::meta_set(c, BREAKER_KEY, Some(&json))?;
            store::meta_set(c, "sending_paused", paused.as_deref())
        }
    }

    /// The store work that claims the next due row, with the verdict of
    /// the safety checks that need the store. The config and the clock are
    /// read when it runs.
    fn claim(
        &mut self,
    ) -> impl FnOnce(&rusqlite::Connection) -> Result<Batch, store::StoreError> + Send + 'static
    {
        let shared = Arc::clone(&self.shared);
        move |conn| {
            let now = shared.now().as_millisecond();
            let loaded = shared.loaded();
            let config = &loaded.config;
            let window = config.pacing.per_chat.per.as_millis() as i64;
            let mut claim = None;
            if let Some(row) = store::claim_due(conn, now, 1)?.pop() {
                let mut found = store::Claim::of(conn, row, now, window)?;
                if let PlannedAction::Send(out) = &found.row.action {
                    found.blocked = crate::safety::blocked(
                        conn,
                        &config.safety,
                        &found.row.instance,
                        &found.row.rule,
                        out,
                        now,
                    )?;
                }
                claim = Some(found);
            }
            let more = claim.is_some() && store::more_due(conn, now, 1)?;
            let next_due = if more {
                None
            } else {
                store::next_due(conn, now)?
            };
            Ok(Batch {
                claim,
                more,
                next_due,
            })
        }
    }

    async fn wait(&self, nap: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            _ = self.shared.wake_dispatcher.notified() => {}
            _ = self.cancel.cancelled() => {}
        }
    }

    /// Refreshes the outbox gauges, at most every [`GAUGE_EVERY`].
    async fn update_gauges(&mut self) {
        if self.gauges_at.is_some_and(|at| at.elapsed() < GAUGE_EVERY) {
            return;
        }
        self.gauges_at = Some(Instant::now());
        if let Ok((depth, dead)) = self.shared.store.call_lazy(store::outbox_counts).await {
            metrics::gauge!(crate::metrics::OUTBOX_DEPTH).set(depth as f64);
            metrics::gauge!(crate::metrics::DEAD_LETTERS).set(dead as f64);
        }
    }

    /// Performs one claimed row; [`Worker::settle`] applies the outcome.
    async fn attempt(&self, claim: &store::Claim) -> Outcome {
        let shared = &self.shared;
        let row = &claim.row;
        let out = match &row.action {
            PlannedAction::Send(out) => out,
            PlannedAction::Http(call) => {
                perform_http(shared, &self.http, row, call).await;
                return Outcome::Done;
            }
            other => {
                let note = format!("not an outbox action: {}", kind(other));
                finish(shared, row.id, "dead", Some(note)).await;
                return Outcome::Done;
            }
        };
        let request = &out.request;
        let loaded = shared.loaded();
        let config = &loaded.config;
        let id = row.id;
        let endpoint = request.endpoint();
        if config.dry_run {
            tracing::info!(rule = %row.rule, action = %row.action.display(), "dry-run: not sent");
            finish(shared, id, "dry_run", None).await;
            return Outcome::Done;
        }
        let now = shared.now().as_millisecond();
        // A paused chat (a person took over, the loop breaker) or a safety
        // protection stops it: recorded as blocked, counted for no limit.
        if let Some(reason) = claim.chat_pause.clone().or_else(|| claim.blocked.clone()) {
            tracing::info!(rule = %row.rule, reason = %reason, "send blocked");
            metrics::counter!(crate::metrics::ACTIONS, "kind" => endpoint, "outcome" => "blocked")
                .increment(1);
            finish(shared, id, "blocked", Some(reason)).await;
            return Outcome::Done;
        }
        // Quiet hours: a message that is not a reply waits, spending no attempt.
        if let Some(until) = crate::safety::quiet_until(&config.safety, &row.rule, out, now) {
            let label = config
                .safety
                .quiet_hours
                .as_ref()
                .map_or("", |q| q.label.as_str());
            let note = format!(
                "quiet hours ({label}): held until {}",
                store::ms_text(until)
            );
            tracing::info!(rule = %row.rule, until = %store::ms_text(until), "quiet hours: held");
            metrics::counter!(crate::metrics::ACTIONS, "kind" => endpoint, "outcome" => "held")
                .increment(1);
            let _ = shared
                .store
                .call(move |c| store::hold(c, id, until, &note, now))
                .await;
            return Outcome::Done;
        }
        // Per-chat rate: at most N sends per window.
        let rate = config.pacing.per_chat;
        let recent = &claim.recent_sends;
        if row.chat.is_some() && recent.len() >= rate.count as usize {
            let window = rate.per.as_millis() as i64;
            let next_at = recent[recent.len() - rate.count as usize] + window + 1;
            let note = format!("per-chat rate {rate} reached; waiting");
            let _ = shared
                .store
                .call(move |c| store::mark_retry(c, id, next_at, &note, false, now))
                .await;
            return Outcome::Done;
        }
        // The minimum interval (wider during a slow start), then a human-like typing delay.
        let gap = gap(&self.breaker, config);
        if let Some(last) = self.last_send {
            let since = last.elapsed();
            if since < gap {
                tokio::time::sleep(gap - since).await;
            }
        }
        let typing = &config.pacing.typing_delay;
        if typing.max > Duration::ZERO {
            let ms = rand::rng().random_range(typing.min.as_millis()..=typing.max.as_millis());
            tokio::time::sleep(Duration::from_millis(ms as u64)).await;
        }
        let started = Instant::now();
        let mut result = loaded.api.call(request).await;
        // `fallback: auto`: a refused or unconfirmed interactive message is
        // replaced by its text menu at once, spending no retry.
        if let (Err(err), Some(text)) = (&result, &out.fallback)
            && (err.class() == ErrorClass::Permanent
                || matches!(err, ApiError::NotConfirmed { .. }))
        {
            tracing::warn!(rule = %row.rule, error = %err, "the interactive message was refused; sending the text menu instead");
            metrics::counter!(crate::metrics::ACTIONS, "kind" => endpoint, "outcome" => "fallback")
                .increment(1);
            result = loaded.api.call(text).await;
        }
        metrics::histogram!(crate::metrics::API_LATENCY, "endpoint" => endpoint)
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(ApiReply::Sent { message_id }) => Outcome::Sent {
                message_id: Some(message_id),
            },
            Ok(_) => Outcome::Sent { message_id: None },
            Err(err) => Outcome::Failed(err),
        }
    }

    /// Applies the outcome of a send: a confirmation becomes work for the
    /// next store job; a failure is retried, paused or dead-lettered.
    async fn settle(&mut self, row: &OutboxRow, outcome: Outcome) {
        let endpoint = match &row.action {
            PlannedAction::Send(out) => out.request.endpoint(),
            _ => return,
        };
        let loaded = self.shared.loaded();
        let safety = &loaded.config.safety;
        match outcome {
            Outcome::Done => {}
            Outcome::Sent { message_id } => {
                self.last_send = Some(Instant::now());
                tracing::info!(rule = %row.rule, chat = row.chat.as_deref().unwrap_or("-"), message_id = message_id.as_deref().unwrap_or("-"), "sent");
                metrics::counter!(crate::metrics::ACTIONS, "kind" => endpoint, "outcome" => "sent")
                    .increment(1);
                if self.relogin_until.take().is_some() {
                    tracing::info!("sending resumed: the number is logged in again");
                }
                self.breaker.sent();
                metrics::gauge!(crate::metrics::SENDING_PAUSED).set(0.0);
                let row = row.clone();
                let at = self.shared.now().as_millisecond();
                let recorded = self
                    .shared
                    .store
                    .call(move |c| {
                        store::mark_sent(c, &row, message_id.as_deref(), at)?;
                        store::meta_set(c, "sending_paused", None)
                    })
                    .await;
                if let Err(err) = recorded {
                    tracing::error!(error = %err, "cannot record a confirmed send");
                }
            }
            Outcome::Failed(err) => {
                self.last_send = Some(Instant::now());
                if err.is_ban_signal() && safety.ban_breaker.enabled {
                    self.trip(row, &err, &safety.ban_breaker).await;
                } else {
                    failed(
                        &self.shared,
                        row,
                        &err,
                        &mut self.relogin_until,
                        &loaded.config.retry,
                    )
                    .await;
                }
            }
        }
    }

    /// A ban signal: pause all sending, longer each time, and keep the row
    /// for after the pause. A signal to another send of the same batch,
    /// while the pause it opened runs, only keeps its row.
    async fn trip(&mut self, row: &OutboxRow, err: &ApiError, settings: &BanBreaker) {
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
            metrics::counter!(crate::metrics::BAN_BREAKER_TRIPS).increment(1);
            Some(self.breaker_saved())
        };
        let (id, until) = (row.id, self.breaker.until);
        let _ = self
            .shared
            .store
            .call(move |c| {
                if let Some(save) = save {
                    save(c)?;
                }
                store::mark_retry(c, id, until, &reason, false, now)
            })
            .await;
    }
}

/// The minimum time between two sends: `min_interval`, wider during a slow start.
fn gap(breaker: &BreakerState, config: &crate::config::Config) -> Duration {
    breaker.gap(&config.safety.ban_breaker, config.pacing.min_interval)
}

async fn failed(
    shared: &Shared,
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
            tracing::error!(error = %message, "sending paused: the WhatsApp number must log in again (waflow instance qrcode)");
            metrics::gauge!(crate::metrics::SENDING_PAUSED).set(1.0);
            *paused_until = Some(Instant::now() + retry.relogin_probe);
            let next_at = now + retry.relogin_probe.as_millis() as i64;
            let note = message.clone();
            let _ = shared
                .store
                .call(move |c| {
                    store::meta_set(
                        c,
                        "sending_paused",
                        Some(&format!("relogin required: {note}")),
                    )?;
                    store::mark_retry(c, id, next_at, &note, false, now)
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
            metrics::counter!(crate::metrics::ACTIONS, "kind" => endpoint, "outcome" => "retry")
                .increment(1);
            let next_at = now + delay.as_millis() as i64;
            let _ = shared
                .store
                .call(move |c| store::mark_retry(c, id, next_at, &message, true, now))
                .await;
        }
        class => {
            let why = if class == ErrorClass::Permanent {
                message.clone()
            } else {
                format!("gave up after {} attempts: {message}", row.attempts)
            };
            tracing::error!(rule = %row.rule, error = %why, "send failed for good: moved to the dead letters (waflow outbox list --dead)");
            metrics::counter!(crate::metrics::ACTIONS, "kind" => endpoint, "outcome" => "dead")
                .increment(1);
            let _ = shared
                .store
                .call(move |c| store::mark_final(c, id, "dead", Some(&why), true, now))
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

async fn finish(shared: &Shared, id: i64, state: &'static str, note: Option<String>) {
    let now = shared.now().as_millisecond();
    let _ = shared
        .store
        .call(move |c| store::mark_final(c, id, state, note.as_deref(), false, now))
        .await;
}

/// Performs an `http` action, then plans the rest of its rule with the answer.
async fn perform_http(shared: &Shared, client: &reqwest::Client, row: &OutboxRow, call: &HttpCall) {
    let loaded = shared.loaded();
    let method =
        reqwest::Method::from_bytes(call.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut request = client
        .request(method, &call.url)
        .timeout(loaded.config.api.timeout);
    for (k, v) in &call.headers {
        request = request.header(k, v);
    }
    if let Some(json) = &call.json {
        request = request.json(json);
    } else if let Some(body) = &call.body {
        request = request.body(body.clone());
    }
    let outcome = async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        Ok::<_, reqwest::Error>((status, body))
    }
    .await;
    let now = shared.now().as_millisecond();
    match outcome {
        Ok((status, body)) if status < 500 => {
            metrics::counter!(crate::metrics::ACTIONS, "kind" => "http", "outcome" => "sent")
                .increment(1);
            let result = HttpResult {
                status,
                json: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
                body,
            };
            let row = row.clone();
            let config = loaded.config.clone();
            let rules = loaded.rules.clone();
            let at = shared.now();
            let _ = shared
                .store
                .call(move |c| {
                    store::mark_final(c, row.id, "sent", None, true, now)?;
                    let Some(inbox_id) = row.inbox_id else {
                        return Ok(());
                    };
                    let Some((key, event)) = store::inbox_event(c, inbox_id)? else {
                        return Ok(());
                    };
                    let Ok(event) = serde_json::from_str(&event) else {
                        return Ok(());
                    };
                    let Some(index) = rules.rules.iter().position(|r| r.name == row.rule) else {
                        return Ok(());
                    };
                    let memory = StoreMemory { conn: c };
                    let input = EvalInput {
                        now: at,
                        memory: &memory,
                        ignore_older_than: None,
                    };
                    let from = row.action_index as usize + 1;
                    if let Some(plan) = rules.continue_plan(&event, &input, index, from, &result) {
                        write_plan(
                            c,
                            &config,
                            &row.instance,
                            &key,
                            Some(inbox_id),
                            &plan,
                            from,
                            now,
                        )?;
                    }
                    Ok(())
                })
                .await;
            shared.wake_dispatcher.notify_one();
        }
        Ok((status, _)) => {
            let err = ApiError::Http {
                endpoint: "http",
                status,
                message: None,
            };
            let mut none = None;
            failed(shared, row, &err, &mut none, &loaded.config.retry).await;
        }
        Err(e) => {
            let err = ApiError::Connect {
                endpoint: "http",
                detail: e.without_url().to_string(),
            };
            let mut none = None;
            failed(shared, row, &err, &mut none, &loaded.config.retry).await;
        }
    }
}
