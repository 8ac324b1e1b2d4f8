//! What the daemon's tasks share: the config, rules and API client in force
//! ([`Loaded`], swapped whole on reload), the store, the clock, and the
//! wake-ups between tasks ([`Shared`]). It sits below every task that uses
//! it (pipeline, outbox, server, scheduler), so the daemon only wires.

use std::collections::HashMap;
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

/// A consistent config with every instance's rules and API client;
/// replaced whole on reload.
pub struct Loaded {
    /// The whole config (the top level and every instance).
    pub config: Config,
    /// The numbers served, in name order.
    pub instances: Vec<Arc<Instance>>,
}

/// One number as the daemon serves it.
pub struct Instance {
    /// Its name in the config: the store's key, `--instance`, metrics.
    pub name: String,
    /// The settings as this instance sees them ([`Config::view`]).
    pub config: Config,
    /// Its compiled rules (shared with instances that read the same files
    /// with the same settings).
    pub rules: Arc<RuleSet>,
    /// The API client with its id and token.
    pub api: ApiClient,
}

impl Loaded {
    /// Loads the config at `path`, then every instance's rules. Every problem is returned.
    pub fn load(path: &Path, force_dry_run: bool) -> Result<Loaded, Diagnostics> {
        let mut config = Config::load(path).map_err(|e| match e {
            ConfigError::Invalid(d) => d,
            other => crate::config::Diagnostic::file_level(path, other.to_string()).into(),
        })?;
        config.dry_run |= force_dry_run;
        for instance in &mut config.instances {
            instance.dry_run |= force_dry_run;
        }
        Loaded::new(config)
    }

    /// Compiles each instance's rules (once per distinct rule source and
    /// settings) and builds its API client.
    pub fn new(config: Config) -> Result<Loaded, Diagnostics> {
        let names: Vec<String> = config.instances.iter().map(|i| i.name.clone()).collect();
        let mut compiled: HashMap<String, Result<Arc<RuleSet>, Diagnostics>> = HashMap::new();
        let mut problems = Diagnostics::default();
        let mut instances: Vec<Arc<Instance>> = Vec::new();
        for instance in &config.instances {
            let view = config.view(instance);
            let key = rules_key(&view);
            let rules = match compiled.get(&key) {
                Some(known) => known.clone(),
                None => {
                    let options = LoadOptions::from_config(&view, names.clone());
                    let fresh = crate::rulefiles::load(&view.rules, &options).map(Arc::new);
                    // Instances that differ in settings read the same files:
                    // each problem of a file is reported once.
                    if let Err(d) = &fresh {
                        for problem in &d.0 {
                            if !problems.0.contains(problem) {
                                problems.push(problem.clone());
                            }
                        }
                    }
                    compiled.insert(key, fresh.clone());
                    fresh
                }
            };
            let api = match instances.first() {
                Some(first) => first.api.sibling(&view.api),
                None => ApiClient::new(&view.api),
            };
            match (rules, api) {
                (Ok(rules), Ok(api)) => instances.push(Arc::new(Instance {
                    name: instance.name.clone(),
                    rules,
                    api,
                    config: view,
                })),
                (_, Err(e)) => problems.push(crate::config::Diagnostic::file_level(
                    &config.path,
                    format!("instance {}: {e}", instance.name),
                )),
                (Err(_), _) => {}
            }
        }
        problems.into_result(Loaded { config, instances })
    }

    /// The instance called `name`.
    pub fn instance(&self, name: &str) -> Option<&Arc<Instance>> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// The instance whose API instance id is `id`.
    pub fn by_instance_id(&self, id: &str) -> Option<&Arc<Instance>> {
        self.instances
            .iter()
            .find(|i| i.config.api.instance_id.as_deref() == Some(id))
    }
}

/// What a compiled rule set depends on: instances that agree on it share one.
fn rules_key(view: &Config) -> String {
    format!(
        "{}\0{}\0{}\0{:p}",
        view.rules.display(),
        view.timezone.name,
        serde_json::Value::Object(view.vars.clone()),
        Arc::as_ptr(&view.hours)
    )
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
    /// Wakes each instance's outbox worker when work was planned for it.
    wake_senders: RwLock<HashMap<String, Arc<Notify>>>,
    /// Wakes the scheduler when the rules changed.
    pub wake_scheduler: Notify,
    /// The clock.
    pub clock: Clock,
    /// Webhook and hook requests being answered: during a burst the outbox
    /// worker lets them go first.
    pub webhooks_busy: AtomicUsize,
    /// Cancelled when the daemon stops: every task ends its work in flight.
    pub shutdown: CancellationToken,
    /// Reads the lists of `for_each` rules that come from a URL.
    pub list_client: reqwest::Client,
    /// The last reload: when (Unix ms), and its problems when it was rejected.
    last_reload: std::sync::Mutex<Option<(i64, Option<String>)>>,
    /// This process among those sharing the store (`lease::process_id`;
    /// the daemon names it once it listens).
    pub process: String,
}

impl Shared {
    /// The lease `name` of this process, lasting `store.lease`.
    pub fn lease(&self, name: String) -> crate::lease::Lease {
        crate::lease::Lease::new(name, &self.process, self.loaded().config.lease)
    }

    /// Shares `loaded` and `store` between the tasks.
    pub fn new(store: Store, loaded: Loaded) -> Shared {
        Shared {
            store,
            current: RwLock::new(Arc::new(loaded)),
            wake_processor: Notify::new(),
            wake_senders: RwLock::new(HashMap::new()),
            wake_scheduler: Notify::new(),
            clock: Clock::from_env(),
            webhooks_busy: AtomicUsize::new(0),
            shutdown: CancellationToken::new(),
            list_client: crate::lists::client(),
            last_reload: std::sync::Mutex::new(None),
            process: "local".into(),
        }
    }

    /// Names this process among those sharing the store.
    pub fn named(mut self, process: String) -> Shared {
        self.process = process;
        self
    }

    /// The config and rules in force.
    pub fn loaded(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Remembers a reload: `problems` when it was rejected.
    pub fn note_reload(&self, problems: Option<String>) {
        let at = self.now().as_millisecond();
        let mut last = self
            .last_reload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = Some((at, problems));
    }

    /// The last reload: when, and its problems when it was rejected.
    pub fn last_reload(&self) -> Option<(i64, Option<String>)> {
        self.last_reload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
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

    /// The wake-up of `instance`'s outbox worker (made on first use).
    pub fn sender_wake(&self, instance: &str) -> Arc<Notify> {
        let known = match self.wake_senders.read() {
            Ok(map) => map.get(instance).cloned(),
            Err(poisoned) => poisoned.into_inner().get(instance).cloned(),
        };
        if let Some(notify) = known {
            return notify;
        }
        let mut map = match self.wake_senders.write() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(instance.to_owned()).or_default().clone()
    }

    /// Tells `instance`'s outbox worker that work was planned (after the commit).
    pub fn wake_sender(&self, instance: &str) {
        self.sender_wake(instance).notify_one();
    }
}
