//! The writer thread: it owns the connection, runs every job that is
//! waiting in one transaction and commits once (group commit), so
//! durability costs one fsync per batch, not per request, and a caller's
//! future resolves only after its job is committed. Each job runs in a
//! savepoint: one failing job does not undo the others of its batch. When
//! lone requests come steadily (closer than 2 ms), a commit holding one
//! waits for the next so that two share it; a serial caller's jobs (the
//! outbox worker's, whose next job waits for this commit) never make it
//! wait. Lazy jobs (reads) need no commit of their own. On [`Msg::Close`]
//! it commits, checkpoints the WAL into the database file and closes it:
//! the file alone is then complete.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::backend::Db;
use super::sql::Conn;
use super::{StoreError, Tx};

/// Jobs committed together at most.
const MAX_BATCH: usize = 512;
/// The longest a transaction holding only lazy jobs stays open before it is
/// committed anyway.
const LAZY_COMMIT: Duration = Duration::from_millis(20);
/// Lone requests that come closer together than this share commits: the
/// writer waits for the next (up to its expected gap) before committing.
const COMMIT_WAIT: Duration = Duration::from_millis(2);

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// How a job's caller waits, and what its arrival tells the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Needs no commit of its own: resolves once it ran, or with the commit
    /// of its batch when that holds durable work it may have read.
    Lazy,
    /// Durable work of one of many independent callers (webhook requests):
    /// resolves after its commit; the spacing of their arrivals tells when
    /// the next one comes.
    Durable,
    /// Durable work of a caller that sends its next job only once this one
    /// is committed (the outbox worker): its arrivals tell nothing of when
    /// another job comes, and waiting for its next one would wait for
    /// nothing.
    Serial,
}

impl Kind {
    fn lazy(self) -> bool {
        self == Kind::Lazy
    }
}

/// A unit of store work, run by the writer thread.
pub(super) struct Job {
    kind: Kind,
    /// Runs the work and returns how to tell the caller its outcome.
    run: Box<dyn FnOnce(Conn<'_>) -> Reply + Send>,
}

/// What the writer receives.
pub(super) enum Msg {
    /// Work to run and commit.
    Work(Job),
    /// Commit, checkpoint, close the connection and stop; then reply.
    Close(CloseReply),
}

/// Wraps `f` as a job for the writer and the receiver of its outcome.
pub(super) fn job<R, F>(
    kind: Kind,
    f: F,
) -> (Job, tokio::sync::oneshot::Receiver<Result<R, StoreError>>)
where
    R: Send + 'static,
    F: FnOnce(&Tx) -> Result<R, StoreError> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let run = Box::new(move |conn: Conn<'_>| {
        let result = Tx::on(conn).savepoint(f);
        Box::new(move |commit: Result<(), String>| {
            let outcome = match (result, commit) {
                (Ok(value), Ok(())) => Ok(value),
                (Err(e), _) => Err(e),
                (Ok(_), Err(e)) => Err(StoreError::Corrupt(format!("commit failed: {e}"))),
            };
            let _ = tx.send(outcome);
        }) as Reply
    });
    (Job { kind, run }, rx)
}

/// The writer: takes every waiting job, runs them in one transaction, commits
/// once. A transaction that holds only lazy jobs stays open for the next
/// jobs, up to [`LAZY_COMMIT`].
pub(super) fn writer(db: Db, rx: mpsc::Receiver<Msg>) {
    // While a transaction is open: when it must be committed at the latest.
    let mut open: Option<Instant> = None;
    let mut pace = Arrivals::default();
    let mut closing = None;
    loop {
        let received = match open {
            None => rx.recv().ok(),
            Some(deadline) => {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(msg) => Some(msg),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        commit(&db, Vec::new());
                        open = None;
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => None,
                }
            }
        };
        let first = match received {
            Some(Msg::Work(job)) => job,
            Some(Msg::Close(reply)) => {
                closing = Some(reply);
                break;
            }
            None => break,
        };
        let batch = take_batch(first, &rx, &mut closing);
        if open.is_none() {
            if let Err(err) = db.begin() {
                let err = err.to_string();
                tracing::error!(error = %err, "store: cannot begin a transaction");
                // The jobs are dropped unrun: their callers get `Closed`.
                continue;
            }
            open = Some(Instant::now() + LAZY_COMMIT);
        }
        let received = Instant::now();
        let mut ran = Ran::default();
        for job in batch {
            pace.received(received, job.kind);
            ran.run(job, db.conn());
        }
        // A steady stream of lone requests: the next one shares this commit.
        let lone = pace.lone(received, ran.waiting.len());
        if let Some(deadline) = lone.filter(|_| closing.is_none()) {
            closing = wait_for_next(&rx, deadline, &mut pace, &mut ran, db.conn());
        }
        let Ran { lazy, mut waiting } = ran;
        if waiting.is_empty() {
            for reply in lazy {
                reply(Ok(()));
            }
        } else {
            // Lazy jobs of this batch may have read its durable work too.
            waiting.extend(lazy);
            commit(&db, waiting);
            open = None;
        }
        if closing.is_some() {
            break;
        }
    }
    if open.is_some() {
        commit(&db, Vec::new());
    }
    if let Some(reply) = closing {
        let _ = reply.send(db.close());
    }
}

/// The reply of a [`Msg::Close`].
type CloseReply = tokio::sync::oneshot::Sender<Result<(), StoreError>>;

/// `first` and every job already waiting behind it, up to [`MAX_BATCH`];
/// a close request ends the batch.
fn take_batch(first: Job, rx: &mpsc::Receiver<Msg>, closing: &mut Option<CloseReply>) -> Vec<Job> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(Msg::Work(job)) => batch.push(job),
            Ok(Msg::Close(reply)) => {
                *closing = Some(reply);
                break;
            }
            Err(_) => break,
        }
    }
    batch
}

/// Runs the jobs that come until `deadline`, up to the next durable one, so
/// that it shares the commit; a close request that comes meanwhile.
fn wait_for_next(
    rx: &mpsc::Receiver<Msg>,
    deadline: Instant,
    pace: &mut Arrivals,
    ran: &mut Ran,
    conn: Conn<'_>,
) -> Option<CloseReply> {
    while let Ok(msg) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let job = match msg {
            Msg::Work(job) => job,
            Msg::Close(reply) => return Some(reply),
        };
        let durable = !job.kind.lazy();
        pace.received(Instant::now(), job.kind);
        ran.run(job, conn);
        if durable {
            break;
        }
    }
    None
}

/// The replies of the jobs run in this batch, until the commit.
#[derive(Default)]
struct Ran {
    lazy: Vec<Reply>,
    waiting: Vec<Reply>,
}

impl Ran {
    fn run(&mut self, job: Job, conn: Conn<'_>) {
        let reply = (job.run)(conn);
        if job.kind.lazy() {
            self.lazy.push(reply);
        } else {
            self.waiting.push(reply);
        }
    }
}

/// The spacing of the independent callers' durable jobs the writer receives.
#[derive(Default)]
struct Arrivals {
    /// When the last one came.
    last: Option<Instant>,
    /// The gap before it.
    gap: Option<Duration>,
}

impl Arrivals {
    fn received(&mut self, at: Instant, kind: Kind) {
        if kind == Kind::Durable {
            self.gap = self.last.map(|last| at.saturating_duration_since(last));
            self.last = Some(at);
        }
    }

    /// Until when a batch that holds one durable job, received at `at`,
    /// waits for the next before committing: only while they come
    /// steadily, closer together than [`COMMIT_WAIT`], the last of them
    /// that recently, and for at most twice the last gap (arrivals jitter;
    /// a shorter wait missed the next one a third of the time at 1,000
    /// events/s).
    fn lone(&self, at: Instant, durable: usize) -> Option<Instant> {
        if durable != 1 {
            return None;
        }
        self.last
            .filter(|last| at.saturating_duration_since(*last) < COMMIT_WAIT)?;
        let gap = self.gap.filter(|gap| *gap < COMMIT_WAIT)?;
        Some(at + (gap * 2).min(COMMIT_WAIT))
    }
}

/// Commits the open transaction and tells the waiting callers how it went.
fn commit(db: &Db, waiting: Vec<Reply>) {
    let committed = db.commit();
    if let Err(err) = &committed {
        // Lazy jobs of this transaction are lost: their work is done again.
        tracing::error!(error = %err, "store: commit failed");
        db.rollback();
    }
    for reply in waiting {
        reply(committed.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_steady_stream_of_lone_requests_waits_to_share_a_commit() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut pace = Arrivals::default();
        pace.received(t0, Kind::Durable);
        // One request so far: nothing tells when the next comes.
        assert_eq!(pace.lone(t0, 1), None);
        // Lazy work does not count as a request.
        pace.received(t0 + ms(1), Kind::Lazy);
        assert_eq!(pace.lone(t0 + ms(1), 1), None);
        // Nor does a serial caller's job: it waits for this very commit.
        pace.received(t0 + ms(1), Kind::Serial);
        assert_eq!(pace.lone(t0 + ms(1), 1), None);
        // One every millisecond: wait up to twice the gap (arrivals jitter).
        pace.received(t0 + ms(1), Kind::Durable);
        assert_eq!(pace.lone(t0 + ms(1), 1), Some(t0 + ms(3)));
        // A batch of a serial caller's job alone, long after the stream
        // stopped: the old spacing says nothing any more.
        assert_eq!(pace.lone(t0 + ms(1) + COMMIT_WAIT, 1), None);
        // Several requests in the batch already share the commit.
        assert_eq!(pace.lone(t0 + ms(1), 2), None);
        // Requests further apart than COMMIT_WAIT: commit at once.
        pace.received(t0 + ms(1) + COMMIT_WAIT, Kind::Durable);
        assert_eq!(pace.lone(t0 + ms(1) + COMMIT_WAIT, 1), None);
    }
}
