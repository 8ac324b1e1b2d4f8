//! The SQLite store: inbox, outbox, dead letters, per-chat state, cooldowns,
//! human-takeover pauses, schedule bookkeeping. The only module with SQL.
//!
//! One thread owns the writing connection. Callers send it jobs; it runs
//! every job that is waiting in one transaction and commits once (group
//! commit), so durability costs one fsync per batch, not per request, and a
//! caller's future resolves only after its job is committed. Each job runs
//! in a savepoint: one failing job does not undo the others of its batch.
//! When lone requests come steadily (closer than 2 ms), a commit holding one
//! waits for the next so that two share it.
//! Jobs that need no durability of their own (reads, and the outbox's
//! records of confirmed sends, see [`Store::call_lazy`]) resolve as soon as
//! they ran and ride along with the next commit, so the outbox does not add
//! an fsync per send. A job can also be parked until another job kicks it
//! ([`Store::park`]): the outbox worker's claim then runs in the transaction
//! of the webhook that planned the rows. WAL mode lets `waflow status` read
//! while the daemon writes.

pub mod ops;

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rusqlite::Connection;

pub use ops::*;

use crate::config::StoreLocation;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 2;
/// Jobs committed together at most.
const MAX_BATCH: usize = 512;
/// The longest a transaction holding only lazy jobs stays open before it is
/// committed anyway (see [`Store::call_lazy`]).
const LAZY_COMMIT: Duration = Duration::from_millis(20);
/// Lone requests that come closer together than this share commits: the
/// writer waits for the next (up to its expected gap) before committing.
const COMMIT_WAIT: Duration = Duration::from_millis(2);

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The writer thread is gone (shutting down or crashed).
    #[error("store: the writer has stopped")]
    Closed,
    /// The file is from a newer waflow.
    #[error(
        "store: the database has schema version {found}, newer than this waflow ({SCHEMA_VERSION}); upgrade waflow"
    )]
    TooNew {
        /// The version found.
        found: i64,
    },
    /// A stored value could not be read back.
    #[error("store: unreadable row: {0}")]
    Corrupt(String),
}

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A unit of store work, run by the writer thread.
struct Job {
    /// Needs no commit of its own: resolves once it ran, or with the commit
    /// of its batch when that holds durable work it may have read.
    lazy: bool,
    /// Runs the work and returns how to tell the caller its outcome.
    run: Box<dyn FnOnce(&Connection) -> Reply + Send>,
}

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    parking: Arc<Mutex<Parking>>,
}

/// The job left with the writer by [`Store::park`], and whether a kick
/// came while none was parked.
#[derive(Default)]
struct Parking {
    job: Option<Job>,
    kicked: bool,
}

impl Parking {
    /// The parked job, if a kick calls for it.
    fn take_kicked(&mut self) -> Option<Job> {
        if self.kicked && self.job.is_some() {
            self.kicked = false;
            self.job.take()
        } else {
            None
        }
    }
}

/// A job parked with [`Store::park`]: resolves once it ran.
pub struct Parked<R> {
    store: Store,
    reply: tokio::sync::oneshot::Receiver<Result<R, StoreError>>,
}

impl<R> Parked<R> {
    /// Waits for a kick to run the job (cancel-safe).
    pub async fn kicked(&mut self) -> Result<R, StoreError> {
        (&mut self.reply).await.map_err(|_| StoreError::Closed)?
    }

    /// Runs the job now if no kick has taken it yet, and waits for it.
    pub async fn now(mut self) -> Result<R, StoreError> {
        let job = lock(&self.store.parking).job.take();
        if let Some(job) = job {
            self.store.send(job)?;
        }
        self.kicked().await
    }
}

fn lock(parking: &Mutex<Parking>) -> std::sync::MutexGuard<'_, Parking> {
    // The lock guards two plain fields; a panic elsewhere cannot leave them torn.
    parking
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (and creates or migrates) the store and starts its writer thread.
    pub fn open(location: &StoreLocation) -> Result<Store, StoreError> {
        let conn = open_connection(location)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let parking = Arc::new(Mutex::new(Parking::default()));
        std::thread::Builder::new()
            .name("waflow-store".into())
            .spawn({
                let parking = Arc::clone(&parking);
                move || writer(conn, rx, &parking)
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok(Store { jobs: tx, parking })
    }

    /// Runs `f` in the writer's transaction; resolves once it is committed.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(false, f).await
    }

    /// Runs `f` in the writer's transaction and resolves as soon as it ran
    /// (or, when its batch holds jobs that wait for a commit, once that
    /// commit is done, since `f` may have read their work): its writes are
    /// committed with the next job that needs a commit, or within
    /// [`LAZY_COMMIT`]. For reads, and for writes whose loss in a
    /// crash only repeats work that is safe to repeat (a confirmed send not
    /// yet recorded is sent once more after a crash, as it would be if the
    /// crash came a moment earlier).
    pub async fn call_lazy<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(true, f).await
    }

    async fn submit<R, F>(&self, lazy: bool, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (job, reply) = job(lazy, f);
        self.send(job)?;
        reply.await.map_err(|_| StoreError::Closed)?
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        self.jobs.send(job).map_err(|_| StoreError::Closed)
    }

    /// Leaves `f` with the writer until a job [kicks](Store::kick) it: it
    /// then runs in that job's transaction and resolves after its commit, so
    /// a worker waiting for new work gets it with the commit that made it,
    /// without a round trip of its own. If a kick came since the last parked
    /// job ran, `f` runs at once. [`Parked::now`] runs it without a kick
    /// (lazily, like [`Store::call_lazy`]). One job is parked at a time.
    pub fn park<R, F>(&self, f: F) -> Parked<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (job, reply) = job(true, f);
        let mut parking = lock(&self.parking);
        if std::mem::take(&mut parking.kicked) {
            drop(parking);
            // A closed store drops the job, and the reply says `Closed`.
            let _ = self.send(job);
        } else {
            parking.job = Some(job);
        }
        Parked {
            store: self.clone(),
            reply,
        }
    }

    /// Says that the current job made work for the parked job: the writer
    /// runs that after the jobs of this batch. Called from inside a job; a
    /// kick while nothing is parked is kept for the next [`Store::park`].
    pub fn kick(&self) {
        lock(&self.parking).kicked = true;
    }

    /// Waits until every job sent before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.call(|_| Ok(())).await
    }
}

/// Opens a connection for reading next to a running daemon (`waflow status`).
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    check_version(&conn)?;
    Ok(conn)
}

fn open_connection(location: &StoreLocation) -> Result<Connection, StoreError> {
    let conn = match location {
        StoreLocation::Memory => Connection::open_in_memory()?,
        StoreLocation::File(path) => {
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Corrupt(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            Connection::open(path)?
        }
    };
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL: readers do not block the writer. FULL: a commit is on disk when it returns.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    migrate(&conn)?;
    // Every statement of a busy event stays prepared (the default of 16 is
    // smaller than one event's set, and re-parsing SQL showed in profiles).
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// Runs one fixed control statement (`SAVEPOINT`, `COMMIT` …) from the
/// statement cache instead of parsing it again.
pub(crate) fn control(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`], one version at a time.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version = check_version(conn)?;
    if version < 1 {
        conn.execute_batch(&format!(
            "BEGIN;\n{}\nPRAGMA user_version = 1;\nCOMMIT;",
            include_str!("schema.sql")
        ))?;
    }
    if version < 2 {
        conn.execute_batch(&format!(
            "BEGIN;\n{}\nPRAGMA user_version = 2;\nCOMMIT;",
            include_str!("v2.sql")
        ))?;
    }
    Ok(())
}

fn check_version(conn: &Connection) -> Result<i64, StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew { found: version });
    }
    Ok(version)
}

fn savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    control(conn, "SAVEPOINT job")?;
    match f(conn) {
        Ok(value) => {
            control(conn, "RELEASE job")?;
            Ok(value)
        }
        Err(err) => {
            let _ = control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"));
            Err(err)
        }
    }
}

/// Wraps `f` as a job for the writer and the receiver of its outcome.
fn job<R, F>(lazy: bool, f: F) -> (Job, tokio::sync::oneshot::Receiver<Result<R, StoreError>>)
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let run = Box::new(move |conn: &Connection| {
        let result = savepoint(conn, f);
        Box::new(move |commit: Result<(), String>| {
            let outcome = match (result, commit) {
                (Ok(value), Ok(())) => Ok(value),
                (Err(e), _) => Err(e),
                (Ok(_), Err(e)) => Err(StoreError::Corrupt(format!("commit failed: {e}"))),
            };
            let _ = tx.send(outcome);
        }) as Reply
    });
    (Job { lazy, run }, rx)
}

/// The writer: takes every waiting job, runs them in one transaction, commits
/// once. A transaction that holds only lazy jobs stays open for the next
/// jobs, up to [`LAZY_COMMIT`].
fn writer(conn: Connection, rx: mpsc::Receiver<Job>, parking: &Mutex<Parking>) {
    // While a transaction is open: when it must be committed at the latest.
    let mut open: Option<Instant> = None;
    let mut pace = Arrivals::default();
    loop {
        let first = match open {
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
            Some(deadline) => {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(job) => job,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        commit(&conn, Vec::new());
                        open = None;
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if open.is_none() {
            if let Err(err) = control(&conn, "BEGIN IMMEDIATE") {
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
            pace.received(received, !job.lazy);
            ran.run(job, &conn);
        }
        // A steady stream of lone requests: the next one shares this commit.
        if let Some(deadline) = pace.lone(received, ran.waiting.len()) {
            while let Ok(job) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                let durable = !job.lazy;
                pace.received(Instant::now(), durable);
                ran.run(job, &conn);
                if durable {
                    break;
                }
            }
        }
        // A kicked parked job sees this batch's uncommitted work: it must
        // hear back only after the commit.
        let kicked = lock(parking).take_kicked();
        if let Some(job) = kicked {
            ran.waiting.push((job.run)(&conn));
        }
        let Ran { lazy, mut waiting } = ran;
        if waiting.is_empty() {
            for reply in lazy {
                reply(Ok(()));
            }
        } else {
            // Lazy jobs of this batch may have read its durable work too.
            waiting.extend(lazy);
            commit(&conn, waiting);
            open = None;
        }
    }
    if open.is_some() {
        commit(&conn, Vec::new());
    }
}

/// The replies of the jobs run in this batch, until the commit.
#[derive(Default)]
struct Ran {
    lazy: Vec<Reply>,
    waiting: Vec<Reply>,
}

impl Ran {
    fn run(&mut self, job: Job, conn: &Connection) {
        let reply = (job.run)(conn);
        if job.lazy {
            self.lazy.push(reply);
        } else {
            self.waiting.push(reply);
        }
    }
}

/// The spacing of the durable jobs the writer receives.
#[derive(Default)]
struct Arrivals {
    /// When the last one came.
    last: Option<Instant>,
    /// The gap before it.
    gap: Option<Duration>,
}

impl Arrivals {
    fn received(&mut self, at: Instant, durable: bool) {
        if durable {
            self.gap = self.last.map(|last| at.saturating_duration_since(last));
            self.last = Some(at);
        }
    }

    /// Until when a batch that holds one durable job, received at `at`,
    /// waits for the next before committing: only while they come
    /// steadily, closer together than [`COMMIT_WAIT`], and for at most
    /// twice the last gap (arrivals jitter; a shorter wait missed the next
    /// one a third of the time at 1,000 events/s).
    fn lone(&self, at: Instant, durable: usize) -> Option<Instant> {
        if durable != 1 {
            return None;
        }
        let gap = self.gap.filter(|gap| *gap < COMMIT_WAIT)?;
        Some(at + (gap * 2).min(COMMIT_WAIT))
    }
}

/// Commits the open transaction and tells the waiting callers how it went.
fn commit(conn: &Connection, waiting: Vec<Reply>) {
    let committed = control(conn, "COMMIT").map_err(|e| e.to_string());
    if let Err(err) = &committed {
        // Lazy jobs of this transaction are lost: their work is done again.
        tracing::error!(error = %err, "store: commit failed");
        let _ = control(conn, "ROLLBACK");
    }
    for reply in waiting {
        reply(committed.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn temp_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("waflow-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("waflow.db")
    }

    #[test]
    fn a_version_1_store_is_migrated_and_keeps_its_rows() {
        let path = temp_db("migrate");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "BEGIN;\n{}\nPRAGMA user_version = 1;\nCOMMIT;",
                include_str!("schema.sql")
            ))
            .unwrap();
            conn.execute(
                "INSERT INTO outbox (instance, idem_key, rule, action_index, chat, action, state, next_at, created_at, updated_at)
                 VALUES ('I1', 'k/r/0', 'r', 0, 'c', '{}', 'pending', 0, 0, 0)",
                [],
            )
            .unwrap();
        }
        let conn = open_connection(&StoreLocation::File(path.clone())).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let pending: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(pending, 1);
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' AND sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(indexes, ["outbox_dead", "outbox_open", "outbox_open_chat"]);
        conn.execute(
            "INSERT INTO menus (instance, recipient, options, at) VALUES ('I1', '1', '[]', 0)",
            [],
        )
        .unwrap();
        // Opening again changes nothing.
        drop(conn);
        assert!(open_connection(&StoreLocation::File(path)).is_ok());
    }

    #[test]
    fn a_store_from_a_newer_waflow_is_refused() {
        let path = temp_db("newer");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
        let err = open_connection(&StoreLocation::File(path)).unwrap_err();
        assert!(err.to_string().contains("newer than this waflow"), "{err}");
    }

    #[test]
    fn the_claim_uses_the_partial_indexes() {
        let conn = open_connection(&StoreLocation::Memory).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", ops::claim_sql(1)))
            .unwrap()
            .query_map([1], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("outbox_open_chat"), "{plan}");
    }

    /// SQLite re-prepares a statement on every run when the value of a
    /// parameter can change its plan (a bound `LIMIT` does); the outbox's
    /// queries run for every send, so they must stay prepared.
    #[test]
    fn the_claim_queries_are_not_prepared_again_on_every_run() {
        let path = temp_db("reprepare");
        let conn = open_connection(&StoreLocation::File(path)).unwrap();
        for now in 0..20 {
            control(&conn, "BEGIN IMMEDIATE").unwrap();
            savepoint(&conn, |c| {
                for limit in [1, 16] {
                    ops::claim_due(c, now, limit)?;
                }
                ops::more_due(c, now, 1)?;
                ops::next_due(c, now)
            })
            .unwrap();
            control(&conn, "COMMIT").unwrap();
        }
        let queries = [
            ops::claim_sql(1),
            ops::claim_sql(16),
            ops::MORE_DUE_SQL.to_owned(),
            ops::NEXT_DUE_SQL.to_owned(),
        ];
        for sql in queries {
            let statement = conn.prepare_cached(&sql).unwrap();
            let runs = statement.get_status(rusqlite::StatementStatus::Run);
            let again = statement.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(runs, 20, "{sql}");
            assert!(
                again <= 1,
                "prepared again {again} times in {runs} runs: {sql}"
            );
        }
    }

    /// A chat's second message may be due while the first waits for a
    /// retry: the worker must sleep until the first is due, not spin.
    #[test]
    fn the_next_due_time_is_the_waiting_first_row_of_a_chat() {
        let conn = open_connection(&StoreLocation::Memory).unwrap();
        for (key, next_at) in [("k/r/0", 1_000), ("k/r/1", 0)] {
            conn.execute(
                "INSERT INTO outbox (instance, idem_key, rule, action_index, chat, action, state, next_at, created_at, updated_at)
                 VALUES ('I1', ?1, 'r', 0, 'c', '{}', 'pending', ?2, 0, 0)",
                rusqlite::params![key, next_at],
            )
            .unwrap();
        }
        assert!(ops::claim_due(&conn, 500, 16).unwrap().is_empty());
        assert_eq!(ops::next_due(&conn, 500).unwrap(), Some(1_000));
        assert!(ops::more_due(&conn, 500, 0).unwrap());
    }

    #[test]
    fn only_a_steady_stream_of_lone_requests_waits_to_share_a_commit() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut pace = Arrivals::default();
        pace.received(t0, true);
        // One request so far: nothing tells when the next comes.
        assert_eq!(pace.lone(t0, 1), None);
        // Lazy work does not count as a request.
        pace.received(t0 + ms(1), false);
        assert_eq!(pace.lone(t0 + ms(1), 1), None);
        // One every millisecond: wait up to twice the gap (arrivals jitter).
        pace.received(t0 + ms(1), true);
        assert_eq!(pace.lone(t0 + ms(1), 1), Some(t0 + ms(3)));
        // Several requests in the batch already share the commit.
        assert_eq!(pace.lone(t0 + ms(1), 2), None);
        // Requests further apart than COMMIT_WAIT: commit at once.
        pace.received(t0 + ms(1) + COMMIT_WAIT, true);
        assert_eq!(pace.lone(t0 + ms(1) + COMMIT_WAIT, 1), None);
    }

    #[tokio::test]
    async fn a_parked_job_runs_with_the_commit_of_the_job_that_kicks_it() {
        let path = temp_db("park");
        let store = Store::open(&StoreLocation::File(path.clone())).unwrap();
        let reader = open_reader(&path).unwrap();
        // Parked: it does not run until a job kicks it.
        let mut parked = store.park(|c| meta_get(c, "planned"));
        store
            .call(|c| meta_set(c, "other", Some("1")))
            .await
            .unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(100), parked.kicked()).await;
        assert!(waited.is_err(), "ran without a kick");
        // A kicking job: the parked job sees its work, and hears back only
        // once that work is committed.
        let kicker = store.clone();
        store
            .call(move |c| {
                meta_set(c, "planned", Some("yes"))?;
                kicker.kick();
                Ok(())
            })
            .await
            .unwrap();
        let seen = parked.kicked().await.unwrap();
        assert_eq!(seen.as_deref(), Some("yes"));
        assert_eq!(
            meta_get(&reader, "planned").unwrap().as_deref(),
            Some("yes")
        );
        // No kick: `now` runs it anyway.
        let parked = store.park(|c| meta_get(c, "other"));
        assert_eq!(parked.now().await.unwrap().as_deref(), Some("1"));
        // A kick while nothing was parked is kept for the next park.
        let kicker = store.clone();
        store
            .call(move |_| {
                kicker.kick();
                Ok(())
            })
            .await
            .unwrap();
        let mut parked = store.park(|c| meta_get(c, "other"));
        let ran = tokio::time::timeout(Duration::from_secs(10), parked.kicked()).await;
        assert_eq!(ran.unwrap().unwrap().as_deref(), Some("1"));
    }

    #[tokio::test]
    async fn lazy_work_is_committed_with_the_next_commit_and_at_shutdown() {
        let path = temp_db("lazy");
        let store = Store::open(&StoreLocation::File(path.clone())).unwrap();
        let reader = open_reader(&path).unwrap();
        let read = |key: &str| meta_get(&reader, key).unwrap();
        // Lazy work is visible to the next job at once, committed or not.
        store
            .call_lazy(|c| meta_set(c, "a", Some("1")))
            .await
            .unwrap();
        let seen = store.call_lazy(|c| meta_get(c, "a")).await.unwrap();
        assert_eq!(seen.as_deref(), Some("1"));
        // A job that waits for its commit commits the lazy work before it.
        store
            .call_lazy(|c| meta_set(c, "b", Some("2")))
            .await
            .unwrap();
        store.call(|c| meta_set(c, "c", Some("3"))).await.unwrap();
        assert_eq!(read("b").as_deref(), Some("2"));
        assert_eq!(read("c").as_deref(), Some("3"));
        // Lazy work left when the store is dropped is committed, not lost.
        store
            .call_lazy(|c| meta_set(c, "d", Some("4")))
            .await
            .unwrap();
        drop(store);
        let deadline = Instant::now() + Duration::from_secs(10);
        while read("d").is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(read("d").as_deref(), Some("4"));
        assert_eq!(read("a").as_deref(), Some("1"));
    }
}
