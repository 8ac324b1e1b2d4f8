//! What the daemon's tasks share: the config, rules and API client in force
//! ([`Loaded`], swapped whole on reload), the store, the clock, and the
//! wake-ups between tasks ([`Shared`]). It sits below every task that uses
//! it (pipeline, outbox, server, scheduler), so the daemon only wires.

use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api::ApiClient;
use crate::config::{Config, ConfigError, Diagnostics};
use crate::rules::{LoadOptions, RuleSet};
use crate::store::Store;

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
        let rules = crate::rulefiles::load(&config.rules, &options)?;
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
    /// Cancelled when the daemon stops: every task ends its work in flight.
    pub shutdown: CancellationToken,
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
            shutdown: CancellationToken::new(),
        }
    }

    /// The config and rules in force.
    pub fn loaded(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `loaded` in force (a reload).
    pub fn replace(&self, loaded: Loaded) {
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
