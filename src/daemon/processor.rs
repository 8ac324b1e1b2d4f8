//! The processor task: picks up recorded events left `new` (after a crash,
//! or when processing them with their record failed) and turns them into
//! outbox rows, in batches.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::runtime::Shared;

/// Events processed per store transaction.
const PROCESS_BATCH: usize = 256;

/// The processor: turns recorded events into outbox rows, in batches.
pub(super) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        loop {
            let loaded = shared.loaded();
            let now = shared.now();
            let result = shared
                .store
                .call(move |tx| crate::pipeline::process_batch(tx, &loaded, now, PROCESS_BATCH))
                .await;
            match result {
                Ok(done) => {
                    for instance in &done.planned {
                        shared.wake_sender(instance);
                    }
                    if done.events < PROCESS_BATCH {
                        break;
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot process events; retrying in a second");
                    break;
                }
            }
        }
        tokio::select! {
            _ = shared.wake_processor.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = cancel.cancelled() => return,
        }
    }
}
