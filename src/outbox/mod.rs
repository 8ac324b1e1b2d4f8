//! The outbox worker: claim → pacing → API → confirm, retry or dead-letter.
//!
//! Everything about a planned send lives here: writing rows from plans
//! ([`plan`]), claiming ([`claim`]), pacing and sending ([`send`]),
//! confirming, retry and dead letters ([`retry`]), the ban-signal breaker
//! ([`breaker`]), `http` actions with their continuation ([`http`]), and
//! taking the number's send lease over ([`takeover`]).
//!
//! One worker per daemon sends one row at a time, in order per chat (a
//! WhatsApp number is a serial channel, and pacing needs it anyway), and
//! commits each send's outcome before it claims the next: a crash repeats
//! at most the one send in flight. It learns of new rows by a message
//! (`Shared::wake_dispatcher`) sent after the commit that wrote them. Before
//! each send it honours the pacing of the config (minimum interval, per-chat
//! rate, a random typing delay) and human takeover. After it: a confirmed
//! send is recorded with its message id; a retryable error is retried with
//! exponential backoff and jitter; a permanent error or an exhausted budget
//! makes a dead letter; "relogin required" pauses all sending, without
//! spending the retry budget, until a probe send succeeds.

pub mod breaker;
mod claim;
mod http;
pub mod plan;
mod retry;
mod send;
mod takeover;
pub mod target;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::api::ApiError;
use crate::rules::PlannedAction;
use crate::runtime::{Instance, Shared};
use crate::store::OutboxRow;
use breaker::BreakerState;
use retry::failed;

/// The longest the worker sleeps without looking at the outbox again.
const IDLE: Duration = Duration::from_secs(1);
/// How often the outbox gauges are refreshed.
const GAUGE_EVERY: Duration = Duration::from_secs(2);

/// How often the set of workers is compared with the configured instances.
const FOLLOW: Duration = Duration::from_millis(500);

/// Runs one worker per configured instance until `cancel` fires, starting
/// and stopping workers as reloads add and remove instances; the sends in
/// flight are finished first. Different instances send concurrently.
pub async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut workers: HashMap<String, (CancellationToken, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    // One client of `http:` actions for all numbers: one pool, one resolver.
    let http = http::client(&shared);
    loop {
        let loaded = shared.loaded();
        workers.retain(|name, (stop, _)| {
            let kept = loaded.instance(name).is_some();
            if !kept {
                tracing::info!(instance = %name, "instance removed: its sending stops; its rows stay in the store");
                stop.cancel();
            }
            kept
        });
        for instance in &loaded.instances {
            if !workers.contains_key(&instance.name) {
                let stop = cancel.child_token();
                let task = tokio::spawn(worker(
                    shared.clone(),
                    instance.name.clone(),
                    stop.clone(),
                    http.clone(),
                ));
                workers.insert(instance.name.clone(), (stop, task));
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(FOLLOW) => {}
        }
    }
    for (_, (_, task)) in workers {
        if let Err(err) = task.await {
            tracing::error!(error = %err, "an outbox worker ended abnormally");
        }
    }
}

/// One instance's worker: one send in flight for its number.
async fn worker(
    shared: Arc<Shared>,
    instance: String,
    cancel: CancellationToken,
    http: reqwest::Client,
) {
    let key = breaker_key(&instance);
    let breaker = shared
        .store
        .call(move |c| c.meta_get(&key))
        .await
        .ok()
        .flatten()
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    let lease = shared.lease(crate::lease::send_lease(&instance));
    let mut worker = Worker {
        wake: shared.sender_wake(&instance),
        lease,
        shared,
        instance,
        cancel,
        last_send: None,
        relogin_until: None,
        gauges_at: None,
        breaker,
        http,
        http_slots: Arc::new(tokio::sync::Semaphore::new(http::CONCURRENT)),
        preclaimed: None,
        unsettled: false,
    };
    worker.run().await;
}

/// Where an instance's ban-signal breaker state is kept.
fn breaker_key(instance: &str) -> String {
    crate::store::meta::instance_key(instance, "ban_breaker")
}

/// Where the reason an instance's sending is paused is kept.
fn paused_key(instance: &str) -> String {
    crate::store::meta::instance_key(instance, crate::store::meta::SENDING_PAUSED)
}

/// Webhook requests in flight that make a burst.
const BURST: usize = 4;
/// The longest the worker lets a burst go first, before each batch.
const BURST_WAIT: Duration = Duration::from_millis(100);

/// The worker's memory between sends.
struct Worker {
    shared: Arc<Shared>,
    /// The name of the instance whose rows this worker sends.
    instance: String,
    /// Told when work was planned for this instance.
    wake: Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
    /// When the last send left, for the minimum interval.
    last_send: Option<Instant>,
    /// While the number must log in again: when to probe.
    relogin_until: Option<Instant>,
    gauges_at: Option<Instant>,
    /// The ban-signal breaker: pause and slow start after rate-limit answers.
    breaker: BreakerState,
    /// The client of `http:` actions (no redirects, inward addresses refused).
    http: reqwest::Client,
    /// `http:` actions run beside the sends, this many at once.
    http_slots: Arc<tokio::sync::Semaphore>,
    /// The next claim, made in the commit that confirmed the last send.
    preclaimed: Option<claim::Batch>,
    /// The right to send for this number, among the processes of one store.
    lease: crate::lease::Lease,
    /// The lease was taken and what its last holder left is not settled yet.
    unsettled: bool,
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
            // The settings of this round: a reload takes effect at the next one.
            let Some(instance) = self.shared.loaded().instance(&self.instance).cloned() else {
                break;
            };
            if let Some(until) = self.relogin_until
                && Instant::now() < until
            {
                self.wait(until - Instant::now()).await;
                continue;
            }
            if !self.hold_lease().await {
                continue;
            }
            if self.breaker_holds().await {
                self.wait(IDLE).await;
                continue;
            }
            let batch = match self.preclaimed.take() {
                Some(batch) => batch,
                None => {
                    if !ready {
                        self.wait_for_work(next_due).await;
                    }
                    let claim = self.claim(instance.clone());
                    match self.shared.store.call_lazy(claim).await {
                        Ok(batch) => batch,
                        Err(err) => {
                            tracing::error!(error = %err, "cannot read the outbox");
                            self.wait(IDLE).await;
                            ready = true;
                            continue;
                        }
                    }
                }
            };
            (ready, next_due) = (batch.more, batch.next_due);
            let Some(claim) = batch.claim else {
                continue;
            };
            self.let_burst_pass().await;
            let outcome = self.attempt(&instance, &claim).await;
            if !matches!(outcome, Outcome::Sent { .. }) {
                // Settled in the store already, or changed there: look again.
                ready = true;
            }
            // The confirmation is committed before the next claim: one send
            // in flight, so a crash can repeat at most that one.
            self.settle(&instance, &claim.row, outcome).await;
        }
        self.unmark_preclaimed().await;
        self.lease.release(&self.shared.store).await;
    }

    /// A row claimed and marked with the last confirmation that will not be
    /// sent now (the worker stops): pending again, so a restart sends it at
    /// once instead of waiting for an echo of a send that never left.
    async fn unmark_preclaimed(&mut self) {
        let Some(claim) = self.preclaimed.take().and_then(|b| b.claim) else {
            return;
        };
        self.unmark(&claim).await;
    }

    /// A claimed row that did not leave: its mark in flight (made with
    /// the last confirmation) undone, so it is pending again.
    async fn unmark(&self, claim: &crate::store::Claim) {
        if claim.marked {
            let (id, now) = (claim.row.id, self.shared.now().as_millisecond());
            record(&self.shared, "unmark", move |c| c.unmark_inflight(id, now)).await;
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

    async fn wait(&self, nap: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            _ = self.wake.notified() => {}
            _ = self.cancel.cancelled() => {}
        }
    }

    /// Refreshes the outbox gauges, at most every [`GAUGE_EVERY`].
    async fn update_gauges(&mut self) {
        if self.gauges_at.is_some_and(|at| at.elapsed() < GAUGE_EVERY) {
            return;
        }
        self.gauges_at = Some(Instant::now());
        let name = self.instance.clone();
        let counts = self
            .shared
            .store
            .call_lazy(move |tx| tx.outbox_counts(&name))
            .await;
        if let Ok((depth, dead)) = counts {
            let instance = self.instance.clone();
            metrics::gauge!(crate::metrics::OUTBOX_DEPTH, "instance" => instance.clone())
                .set(depth as f64);
            metrics::gauge!(crate::metrics::DEAD_LETTERS, "instance" => instance).set(dead as f64);
        }
    }

    /// Applies the outcome of a send: a confirmation becomes work for the
    /// next store job; a failure is retried, paused or dead-lettered.
    async fn settle(&mut self, instance: &Arc<Instance>, row: &OutboxRow, outcome: Outcome) {
        let endpoint = match &row.action {
            PlannedAction::Send(out) => out.request.endpoint(),
            _ => return,
        };
        let safety = &instance.config.safety;
        let name = self.instance.clone();
        match outcome {
            Outcome::Done => {}
            Outcome::Sent { message_id } => {
                self.last_send = Some(Instant::now());
                tracing::info!(instance = %name, rule = %row.rule, chat = row.chat.as_deref().unwrap_or("-"), message_id = message_id.as_deref().unwrap_or("-"), "sent");
                metrics::counter!(crate::metrics::ACTIONS, "instance" => name.clone(), "kind" => endpoint, "outcome" => "sent")
                    .increment(1);
                if self.relogin_until.take().is_some() {
                    tracing::info!(instance = %name, "sending resumed: the number is logged in again");
                }
                self.breaker.sent();
                metrics::gauge!(crate::metrics::SENDING_PAUSED, "instance" => name.clone())
                    .set(0.0);
                self.confirm(instance, row, message_id).await;
            }
            Outcome::Failed(err) => {
                self.last_send = Some(Instant::now());
                if err.is_ban_signal() && safety.ban_breaker.enabled {
                    self.trip(row, &err, &safety.ban_breaker).await;
                } else {
                    failed(
                        &self.shared,
                        &name,
                        row,
                        &err,
                        &mut self.relogin_until,
                        &instance.config.retry,
                    )
                    .await;
                }
            }
        }
    }
}

impl Worker {
    /// Commits a confirmed send. With `echo_wait` on, the same commit claims
    /// the next row and marks it in flight (the mark a send needs before
    /// it leaves): one commit per send instead of two, and still nothing
    /// leaves before the confirmation before it is durable.
    async fn confirm(
        &mut self,
        instance: &Arc<Instance>,
        row: &OutboxRow,
        message_id: Option<String>,
    ) {
        let (row, at) = (row.clone(), self.shared.now().as_millisecond());
        let paused = paused_key(&self.instance);
        let confirm = move |c: &crate::store::Tx| {
            c.mark_sent(&row, message_id.as_deref(), at)?;
            c.meta_set(&paused, None)
        };
        if instance.config.retry.echo_wait.is_zero() {
            record(&self.shared, "confirm", confirm).await;
            return;
        }
        let (shared, instance) = (self.shared.clone(), instance.clone());
        self.preclaimed = record_with(&self.shared, "confirm", move |c| {
            confirm(c)?;
            claim::claim_next(c, &shared, &instance, true)
        })
        .await;
    }
}

/// The first wait before a failed outcome write is tried again; it doubles
/// up to [`RECORD_MAX_WAIT`].
const RECORD_WAIT: Duration = Duration::from_millis(100);
const RECORD_MAX_WAIT: Duration = Duration::from_secs(5);

/// Records the outcome of a row: runs `f` in the store and waits for its
/// commit. A failure is logged and counted ([`store_failed`]) and the write
/// is tried again, backing off, until it is committed or the daemon stops:
/// the outcome stays in memory meanwhile and nothing else is claimed, so a
/// send that succeeded is never claimed and sent again because its
/// confirmation could not be written.
async fn record<F>(shared: &Shared, op: &'static str, f: F)
where
    F: Fn(&crate::store::Tx) -> Result<(), crate::store::StoreError> + Clone + Send + 'static,
{
    record_with(shared, op, f).await;
}

/// [`record`] for work that answers something: the answer once committed,
/// `None` when the daemon stopped first.
async fn record_with<F, T>(shared: &Shared, op: &'static str, f: F) -> Option<T>
where
    F: Fn(&crate::store::Tx) -> Result<T, crate::store::StoreError> + Clone + Send + 'static,
    T: Send + 'static,
{
    let mut wait = RECORD_WAIT;
    loop {
        let err = match shared.store.call_serial(f.clone()).await {
            Ok(answer) => return Some(answer),
            Err(err) => err,
        };
        store_failed(op, &err);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.shutdown.cancelled() => {
                tracing::error!(op, "stopping with an outcome the store could not record: that row may be sent again after the restart");
                return None;
            }
        }
        wait = (wait * 2).min(RECORD_MAX_WAIT);
    }
}

/// Logs and counts a store write on the send path that failed: `op` says
/// what was being recorded. The row stays as it was in the store, so the
/// worst outcome is that the work is done again.
fn store_failed(op: &'static str, err: &crate::store::StoreError) {
    tracing::error!(op, error = %err, "the store could not record an outcome of the outbox");
    metrics::counter!(crate::metrics::STORE_ERRORS, "op" => op).increment(1);
}

/// The minimum time between two sends: `min_interval`, wider during a slow start.
fn gap(breaker: &BreakerState, config: &crate::config::Config) -> Duration {
    breaker.gap(&config.safety.ban_breaker, config.pacing.min_interval)
}
