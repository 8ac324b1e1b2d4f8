//! Taking and keeping a number's send lease. Before its first send as the
//! number's sender — at start, or over from another process — the worker
//! settles what the last sender left in flight and carries the pacing and
//! the breaker across the change; while it waits before a send and while
//! the send is in flight, it keeps renewing the lease, so no other process
//! takes the number in the middle. It sends nothing itself.

use std::future::Future;
use std::time::{Duration, Instant};

use super::{IDLE, Worker, breaker_key};
use crate::lease::Holding;
use crate::store::Claim;

impl Worker {
    /// Whether this process may send for the number now. Another process
    /// holding its lease: wait and ask again. Taken (at start, or over
    /// from another process): settled first, see [`Worker::took_over`].
    pub(super) async fn hold_lease(&mut self) -> bool {
        match self.lease.hold(&self.shared.store).await {
            Holding::Kept => {}
            Holding::Not => {
                self.unmark_preclaimed().await;
                self.wait(self.lease.retry_in()).await;
                return false;
            }
            Holding::Taken => self.unsettled = true,
        }
        if self.unsettled {
            if !self.took_over().await {
                self.wait(IDLE).await;
                return false;
            }
            self.unsettled = false;
        }
        true
    }

    /// The number is this process's now: the rows its last sender left in
    /// flight are settled (SPEC §5: at most that one send repeats), and
    /// the breaker state and the last send are read from the store, so the
    /// pacing holds across the change. False when the store failed: no
    /// send goes before this is done.
    async fn took_over(&mut self) -> bool {
        // A claim of this process's own, made before the lease lapsed, was never sent.
        self.unmark_preclaimed().await;
        let (key, name) = (breaker_key(&self.instance), self.instance.clone());
        let now = self.shared.now().as_millisecond();
        let wait = self
            .shared
            .loaded()
            .instance(&self.instance)
            .map_or(0, |i| i.config.retry.echo_wait.as_millis() as i64);
        let read = self
            .shared
            .store
            .call(move |c| {
                let settled = c.reconcile_inflight(&name, now, wait)?;
                Ok((settled, c.meta_get(&key)?, c.last_send_of(&name)?))
            })
            .await;
        let (settled, breaker, last) = match read {
            Ok(read) => read,
            Err(err) => {
                tracing::error!(instance = %self.instance, error = %err, "cannot take the number over: its sends wait");
                return false;
            }
        };
        if let Some(state) = breaker.and_then(|json| serde_json::from_str(&json).ok()) {
            self.breaker = state;
        }
        self.last_send = if settled.any() {
            report_settled(&self.instance, &settled);
            // The last sender may have sent that row a moment ago.
            Some(Instant::now())
        } else {
            let ago = last.map(|at| (now - at).max(0) as u64);
            ago.and_then(|ms| Instant::now().checked_sub(Duration::from_millis(ms)))
        };
        tracing::info!(instance = %self.instance, process = %self.shared.process, "this process sends for the number now");
        true
    }

    /// Runs `work` (a wait before a send, or the send) while renewing the
    /// lease; the output, and whether the lease was held throughout. A
    /// lease that lapsed and was taken again counts as lost: another
    /// process may have sent in between.
    pub(super) async fn keeping_lease<F: Future>(&mut self, work: F) -> (F::Output, bool) {
        let store = self.shared.store.clone();
        let mut kept = true;
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return (out, kept),
                _ = tokio::time::sleep(self.lease.renew_in()), if kept => {
                    match self.lease.hold(&store).await {
                        Holding::Kept => {}
                        Holding::Taken => (kept, self.unsettled) = (false, true),
                        Holding::Not => kept = false,
                    }
                }
            }
        }
    }

    /// A claimed row this process may no longer send (the lease was lost
    /// before it left): pending again, for whichever process sends now.
    pub(super) async fn give_back(&self, claim: &Claim) {
        tracing::warn!(instance = %self.instance, row = claim.row.id, "the number's lease was lost before a send left: another process sends it");
        self.unmark(claim).await;
    }
}

/// Logs and counts what a takeover found in flight.
fn report_settled(instance: &str, done: &crate::store::Reconciled) {
    metrics::counter!(crate::metrics::ECHO_CONFIRMED, "instance" => instance.to_owned())
        .increment(done.confirmed as u64);
    tracing::warn!(
        instance,
        confirmed_by_echo = done.confirmed,
        waiting_for_echo = done.waiting,
        resumed = done.resumed,
        "settling the work that was in flight when the number's last sender stopped"
    );
}
