//! Hearing of work that other processes planned: a connection of its own,
//! on a thread of its own, that listens on `waflow_work` (the trigger of
//! `v9.sql`) and passes each announced instance on. A lost connection is
//! made again, backing off; meanwhile the senders' own polling finds the
//! work, only later. It never writes.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use tokio::sync::mpsc;

use crate::secret::Secret;
use crate::store::StoreError;

/// The channel the trigger notifies.
const CHANNEL: &str = "waflow_work";
/// How often a quiet listener checks that it is still wanted.
const CHECK: Duration = Duration::from_secs(5);
/// The longest wait before connecting again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Starts listening on the server at `url`; the instances announced by
/// any server process but `own` (this process's writer) come on the
/// returned channel. The thread ends within [`CHECK`] of the
/// receiver being dropped.
pub fn spawn(url: Secret, own: i32) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let started = std::thread::Builder::new()
        .name("waflow-listen".into())
        .spawn(move || listen(&url, own, &tx));
    if let Err(err) = started {
        tracing::warn!(error = %err, "cannot start listening for other processes' work: it is found by polling");
    }
    rx
}

fn listen(url: &Secret, own: i32, tx: &mpsc::UnboundedSender<String>) {
    let mut backoff = Duration::from_millis(500);
    while !tx.is_closed() {
        match super::client(url.expose()) {
            Ok(mut client) => match client.batch_execute(&format!("LISTEN {CHANNEL}")) {
                Ok(()) => {
                    backoff = Duration::from_millis(500);
                    if hear(&mut client, own, tx) {
                        return;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %StoreError::from(err), "cannot listen for other processes' work");
                }
            },
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for other processes' work; trying again");
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Passes notifications on until the connection fails (false) or the
/// receiver is gone (true).
fn hear(client: &mut postgres::Client, own: i32, tx: &mpsc::UnboundedSender<String>) -> bool {
    loop {
        // A new iterator each time: one whose wait ran out answers at once
        // from then on, and a closed connection reads as a quiet one.
        let note = client.notifications().timeout_iter(CHECK).next();
        match note {
            // This process's own work: its sender was woken already.
            Ok(Some(note)) if note.process_id() == own => {}
            Ok(Some(note)) => {
                if tx.send(note.payload().to_owned()).is_err() {
                    return true;
                }
            }
            Ok(None) if tx.is_closed() => return true,
            Ok(None) if client.is_closed() => {
                tracing::warn!(
                    "the connection that hears of other processes' work closed; connecting again"
                );
                return false;
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %StoreError::from(err), "stopped hearing of other processes' work; connecting again");
                return false;
            }
        }
    }
}
