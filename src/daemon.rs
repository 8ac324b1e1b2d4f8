//! `waflow run`: wiring the daemon together and keeping it running.
//!
//! Tasks, each owned by this module and stopped through one
//! `CancellationToken`: the HTTP listener ([`crate::webhook`]), the
//! processor (inbox → rules → outbox, [`crate::pipeline`]), the outbox
//! worker ([`crate::dispatch`]), the reloader (SIGHUP, and file changes seen
//! by polling the files' size and modification time), and
//! the systemd watchdog. Config and rules are swapped as one [`Loaded`]
//! value on reload; a broken new version is rejected and the old one keeps
//! running.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api::ApiClient;
use crate::config::{Config, ConfigError, Diagnostics};
use crate::rules::{LoadOptions, RuleSet};
use crate::store::{self, Store};

/// Events processed per store transaction.
const PROCESS_BATCH: usize = 256;

/// A consistent config, rule set and API client; replaced whole on reload.
pub struct Loaded {
    /// The config.
    pub config: Config,
    /// The compiled rules.
    pub rules: Arc<RuleSet>,
    /// The API client for `config.api`.
    pub api: ApiClient,
}

impl Loaded {
    /// Loads the config at `path`, then its rules. Every problem is returned.
    pub fn load(path: &Path, force_dry_run: bool) -> Result<Loaded, Diagnostics> {
        let mut config = Config::load(path).map_err(|e| match e {
            ConfigError::Invalid(d) => d,
            other => crate::config::Diagnostic::file_level(path, other.to_string()).into(),
        })?;
        config.dry_run |= force_dry_run;
        let options = LoadOptions::from_config(&config);
        let rules = RuleSet::load(&config.rules, &options)?;
        let api = ApiClient::new(&config.api).map_err(|e| {
            Diagnostics::from(crate::config::Diagnostic::file_level(path, e.to_string()))
        })?;
        Ok(Loaded {
            config,
            rules: Arc::new(rules),
            api,
        })
    }
}

/// The daemon's clock. Normally the system clock; for tests of schedules it
/// can start at a chosen instant and run faster (`WAFLOW_TEST_CLOCK` =
/// RFC 3339 start, `WAFLOW_TEST_CLOCK_RATE` = virtual seconds per second).
#[derive(Debug, Clone)]
pub struct Clock {
    start: Option<(jiff::Timestamp, std::time::Instant)>,
    rate: f64,
}

impl Clock {
    /// The system clock, unless the test variables are set.
    pub fn from_env() -> Clock {
        let start = std::env::var("WAFLOW_TEST_CLOCK")
            .ok()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| (t, std::time::Instant::now()));
        let rate = std::env::var("WAFLOW_TEST_CLOCK_RATE")
            .ok()
            .and_then(|r| r.parse::<f64>().ok())
            .filter(|r| *r > 0.0)
            .unwrap_or(1.0);
        if let Some((t, _)) = start {
            tracing::warn!(start = %t, rate, "test clock in use: time is not the system's");
        }
        Clock { start, rate }
    }

    /// The current time.
    pub fn now(&self) -> jiff::Timestamp {
        match self.start {
            None => jiff::Timestamp::now(),
            Some((t, since)) => {
                let elapsed = since.elapsed().as_secs_f64() * self.rate;
                t + jiff::SignedDuration::from_secs_f64(elapsed)
            }
        }
    }

    /// How much of this clock's time passes in `real` time.
    pub fn virtual_of(&self, real: Duration) -> Duration {
        real.mul_f64(self.rate)
    }

    /// The real time to wait for `virtual_wait` of this clock to pass.
    pub fn real(&self, virtual_wait: Duration) -> Duration {
        virtual_wait.div_f64(self.rate)
    }
}

/// What the daemon's tasks share.
pub struct Shared {
    /// The store.
    pub store: Store,
    current: RwLock<Arc<Loaded>>,
    /// Wakes the processor when events were recorded.
    pub wake_processor: Notify,
    /// Wakes the outbox worker when work was planned.
    pub wake_dispatcher: Notify,
    /// Wakes the scheduler when the rules changed.
    pub wake_scheduler: Notify,
    /// The clock.
    pub clock: Clock,
    /// Webhook and hook requests being answered: during a burst the outbox
    /// worker lets them go first.
    pub webhooks_busy: AtomicUsize,
}

impl Shared {
    /// Shares `loaded` and `store` between the tasks.
    pub fn new(store: Store, loaded: Loaded) -> Shared {
        Shared {
            store,
            current: RwLock::new(Arc::new(loaded)),
            wake_processor: Notify::new(),
            wake_dispatcher: Notify::new(),
            wake_scheduler: Notify::new(),
            clock: Clock::from_env(),
            webhooks_busy: AtomicUsize::new(0),
        }
    }

    /// The config and rules in force.
    pub fn loaded(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, loaded: Loaded) {
        let fresh = Arc::new(loaded);
        match self.current.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    /// The current time.
    pub fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config_path: PathBuf, force_dry_run: bool) -> anyhow::Result<()> {
    let loaded = Loaded::load(&config_path, force_dry_run).map_err(|d| anyhow::anyhow!("{d}"))?;
    let config = loaded.config.clone();
    crate::metrics::install();
    if let Some(reason) = config.dry_run_reason() {
        tracing::warn!(
            "DRY-RUN: {reason}. Every planned send is recorded and logged; nothing is sent."
        );
    }
    let store = Store::open(&config.store).context("cannot open the store")?;
    let now = store::now_ms();
    let resumed = store.call(move |c| store::reset_inflight(c, now)).await?;
    if resumed > 0 {
        tracing::warn!(
            count = resumed,
            "resuming sends that were in flight when the daemon stopped"
        );
    }
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        rules = loaded.rules.rules.len(),
        config = %config_path.display(),
        "listening; webhook at http://{address}/webhook/<secret>"
    );
    if config.server.webhook_secret.is_none() {
        tracing::warn!(
            "server.webhook_secret is not set: every POST /webhook/... is refused with 404"
        );
    }
    let shared = Arc::new(Shared::new(store, loaded));
    let cancel = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();

    let app = crate::webhook::router(shared.clone(), config.server.max_body as usize);
    let stop = cancel.clone();
    tasks.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "the HTTP listener failed");
        }
    });
    tasks.spawn(process(shared.clone(), cancel.clone()));
    tasks.spawn(crate::dispatch::run(shared.clone(), cancel.clone()));
    tasks.spawn(crate::schedule::runner::run(shared.clone(), cancel.clone()));
    tasks.spawn(reloader(
        shared.clone(),
        config_path.clone(),
        force_dry_run,
        cancel.clone(),
    ));
    tasks.spawn(watchdog(cancel.clone()));

    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    shutdown_signal().await;
    tracing::info!("shutting down: finishing the work in flight");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    cancel.cancel();
    while tasks.join_next().await.is_some() {}
    shared.store.flush().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The processor: turns recorded events into outbox rows, in batches.
async fn process(shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        loop {
            let loaded = shared.loaded();
            let now = shared.now();
            let result = shared
                .store
                .call(move |conn| {
                    crate::pipeline::process_batch(
                        conn,
                        &loaded.config,
                        &loaded.rules,
                        now,
                        PROCESS_BATCH,
                    )
                })
                .await;
            match result {
                Ok(done) => {
                    if done.planned > 0 {
                        shared.wake_dispatcher.notify_one();
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

/// Reloads config and rules on SIGHUP and when their files change.
async fn reloader(
    shared: Arc<Shared>,
    path: PathBuf,
    force_dry_run: bool,
    cancel: CancellationToken,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, mut rx) = tokio::sync::mpsc::channel::<&'static str>(8);
    let watcher = tokio::spawn(watch_files(
        shared.clone(),
        path.clone(),
        tx,
        cancel.clone(),
    ));
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGHUP");
            None
        }
    };
    loop {
        let cause = tokio::select! {
            _ = cancel.cancelled() => {
                let _ = watcher.await;
                return;
            }
            Some(cause) = rx.recv() => cause,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
        };
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
        // Compiling a large rule set takes a while: not on the thread that serves webhooks.
        let (shared, path) = (shared.clone(), path.clone());
        let _ =
            tokio::task::spawn_blocking(move || reload(&shared, &path, force_dry_run, cause)).await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
}

/// Loads the new version; on any problem keeps the old one and says why.
pub fn reload(shared: &Shared, path: &Path, force_dry_run: bool, cause: &str) {
    match Loaded::load(path, force_dry_run) {
        Ok(fresh) => {
            let old = shared.loaded();
            if fresh.config.server.listen != old.config.server.listen
                || fresh.config.store != old.config.store
                || fresh.config.server.max_body != old.config.server.max_body
            {
                tracing::warn!("server.listen, server.max_body and store change only on restart");
            }
            let rules = fresh.rules.rules.len();
            shared.replace(fresh);
            metrics::counter!(crate::metrics::RELOADS, "outcome" => "ok").increment(1);
            tracing::info!(cause, rules, "reloaded config and rules");
            shared.wake_processor.notify_one();
            shared.wake_dispatcher.notify_one();
            shared.wake_scheduler.notify_one();
        }
        Err(problems) => {
            metrics::counter!(crate::metrics::RELOADS, "outcome" => "rejected").increment(1);
            for problem in &problems.0 {
                tracing::error!("{problem}");
            }
            tracing::error!(
                cause,
                count = problems.0.len(),
                "reload rejected: the previous config and rules keep running"
            );
        }
    }
}

/// How often the config and rule files are checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// What identifies the current version of the config and rule files: each
/// YAML file's path, size and modification time. Polling this is cheap, and
/// unlike folder notifications it is not flooded by the store's own writes
/// when the database lives next to the config.
fn fingerprint(
    config_path: &Path,
    rules: &Path,
) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut files = vec![config_path.to_owned()];
    if rules.is_dir() {
        if let Ok(entries) = std::fs::read_dir(rules) {
            files.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                    }),
            );
        }
    } else {
        files.push(rules.to_owned());
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let size = meta.as_ref().map_or(0, std::fs::Metadata::len);
            let modified = meta.and_then(|m| m.modified().ok());
            (p, size, modified)
        })
        .collect()
}

/// Sends `"file change"` when the config or a rule file changes.
async fn watch_files(
    shared: Arc<Shared>,
    path: PathBuf,
    tx: tokio::sync::mpsc::Sender<&'static str>,
    cancel: CancellationToken,
) {
    let mut last = fingerprint(&path, &shared.loaded().config.rules);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(WATCH_EVERY) => {}
        }
        let rules = shared.loaded().config.rules.clone();
        let now = tokio::task::spawn_blocking({
            let path = path.clone();
            move || fingerprint(&path, &rules)
        })
        .await
        .unwrap_or_default();
        if now != last {
            last = now;
            let _ = tx.try_send("file change");
        }
    }
}

/// Pings the systemd watchdog at half its interval, when it is enabled.
async fn watchdog(cancel: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (interval / 2).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
        }
    }
}
