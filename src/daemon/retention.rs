//! The background task that keeps the store from growing forever: every few
//! minutes it deletes what is older than `store.keep` (see
//! [`crate::store::retention`]), in small batches so webhooks never wait
//! long behind it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::runtime::Shared;

/// Records of each kind deleted per transaction.
const BATCH: usize = 1_000;
/// The longest time between two prunes.
const EVERY: Duration = Duration::from_secs(600);

/// Prunes until `cancel`.
pub async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        let keep = shared.loaded().config.keep;
        let every = EVERY.min(keep / 4).max(Duration::from_millis(200));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(shared.clock.real(every)) => {}
        }
        prune(&shared, keep).await;
    }
}

async fn prune(shared: &Shared, keep: Duration) {
    let before = shared.now().as_millisecond() - keep.as_millis() as i64;
    let mut total = crate::store::Pruned::default();
    loop {
        match shared.store.call(move |c| c.prune(before, BATCH)).await {
            Ok(pruned) => {
                total.events += pruned.events;
                total.rows += pruned.rows;
                total.sends += pruned.sends;
                total.echoes += pruned.echoes;
                total.lists += pruned.lists;
                let most = [
                    pruned.events,
                    pruned.rows,
                    pruned.sends,
                    pruned.echoes,
                    pruned.lists,
                ];
                if most.into_iter().max().unwrap_or(0) < BATCH {
                    break;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "retention: cannot delete old records now; trying again later");
                return;
            }
        }
        tokio::task::yield_now().await;
    }
    let trails = prune_trails(shared).await;
    if total.any() || trails > 0 {
        tracing::info!(
            events = total.events,
            lists = total.lists,
            trails,
            outbox_rows = total.rows,
            sends = total.sends,
            echoes = total.echoes,
            keep = ?keep,
            "retention: deleted records older than store.keep"
        );
    }
}

/// Forgets the decision trail of events older than `server.console.keep`
/// when that is shorter than `store.keep` (the events themselves stay).
async fn prune_trails(shared: &Shared) -> usize {
    let config = &shared.loaded().config;
    let Some(keep) = config.server.console.as_ref().map(|c| c.keep) else {
        return 0;
    };
    if keep >= config.keep {
        return 0;
    }
    let before = shared.now().as_millisecond() - keep.as_millis() as i64;
    let mut total = 0;
    loop {
        match shared
            .store
            .call(move |c| c.prune_trails(before, BATCH))
            .await
        {
            Ok(n) => {
                total += n;
                if n < BATCH {
                    return total;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "retention: cannot forget old decision trails now");
                return total;
            }
        }
        tokio::task::yield_now().await;
    }
}
