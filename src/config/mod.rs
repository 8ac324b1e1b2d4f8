//! The config file (`waflow.yaml`): read once, checked, and turned into typed
//! values the rest of the program uses as they are.
//!
//! [`Config::load`] is the single path from a file to a [`Config`]; every
//! command that reads the config goes through it, so they all accept and
//! reject the same files with the same messages. This module does no network
//! I/O and knows nothing of rules beyond where they live.

pub mod console;
pub mod diagnostic;
pub mod safety;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::units::{ByteSize, DelayRange, HumanDuration, Rate, Zone};
pub use console::ConsoleConfig;
pub use diagnostic::{Diagnostic, Diagnostics};

use crate::secret::Secret;

/// The public default of `api.base_url`.
pub const DEFAULT_BASE_URL: &str = "https://wonotify.com/api";

/// The config file's name in the working folder when `-c` is not given.
pub const DEFAULT_FILE: &str = "waflow.yaml";

/// The embedded default used when no config file is given or found.
pub const EXAMPLE_FILE: &str = "examples/waflow.yaml";

/// The whole configuration, checked and typed.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from; relative paths inside it are resolved against its folder.
    pub path: PathBuf,
    /// How to reach the remote API.
    pub api: ApiConfig,
    /// The embedded HTTP listener.
    pub server: ServerConfig,
    /// Where the store lives.
    pub store: StoreLocation,
    /// A rules file or a folder of them.
    pub rules: PathBuf,
    /// Default zone for schedules and `{{ now }}`.
    pub timezone: Zone,
    /// Record and log every action, call nothing. Also on when no access token is set.
    pub dry_run: bool,
    /// Anti-ban pacing of sends.
    pub pacing: Pacing,
    /// Message events older than this are recorded, not acted on.
    pub ignore_older_than: Duration,
    /// How long a reply typed by a person on the phone pauses the bot in that chat.
    pub human_pause: Duration,
    /// Free values for templates (`{{ vars.NAME }}`).
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// How the outbox retries failed sends.
    pub retry: Retry,
    /// Conversation safety: opt-out, repeat suppression, per-chat ceiling, quiet hours …
    pub safety: crate::config::safety::Safety,
    /// Hosts the rules' `http:` actions may call (empty: any public host).
    /// Listed hosts may also be loopback or private addresses; unlisted
    /// ones never are.
    pub allow_hosts: Vec<String>,
    /// How long finished events, outbox rows and sends are kept (`store.keep`).
    pub keep: Duration,
    /// How long a process's leases last unless renewed (`store.lease`): a
    /// stopped process's numbers and schedules move on after it.
    pub lease: Duration,
    /// Named business calendars (`hours:`), for `in_hours('NAME')` and quiet hours.
    pub hours: Calendars,
    /// The numbers this daemon serves, in name order; the single form is
    /// one instance named `default`.
    pub instances: Vec<InstanceConfig>,
}

/// The named calendars of the `hours:` section.
pub type Calendars =
    std::sync::Arc<std::collections::BTreeMap<String, crate::units::calendar::Calendar>>;

/// How the outbox retries a failed send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (the first one included) before a dead letter.
    pub attempts: u32,
    /// The wait before the first retry; it doubles each time (with jitter).
    pub backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// While the number is logged out, how often to try again.
    pub relogin_probe: Duration,
    /// After a crash, how long a send that was in flight waits for the
    /// API's echo of it (confirmed by the echo instead of sent again);
    /// zero turns the reconciliation off.
    pub echo_wait: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 8,
            backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(600),
            relogin_probe: Duration::from_secs(60),
            echo_wait: Duration::from_secs(15),
        }
    }
}

/// Which HTTP shape `send` and `send_group` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SendMethod {
    /// JSON body (the default).
    #[default]
    Post,
    /// Everything in the query string.
    Get,
}

/// How to reach the remote API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `https://host/api` or `https://host/whatsapp_api`, or any compatible host.
    pub base_url: url::Url,
    /// The WhatsApp instance (one number). `None` until `instance create` made one.
    pub instance_id: Option<String>,
    /// The access token; `None` means dry-run.
    pub access_token: Option<Secret>,
    /// POST JSON or GET query for sends.
    pub method: SendMethod,
    /// How long one API call may take.
    pub timeout: Duration,
}

/// The embedded HTTP listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind; 127.0.0.1 by default, so only a local proxy can reach it.
    pub listen: SocketAddr,
    /// The path secret of `POST /webhook/{secret}`.
    pub webhook_secret: Option<Secret>,
    /// Larger request bodies are answered with 413.
    pub max_body: u64,
    /// How long a client may take to send a request's headers, and then its
    /// body; a slower one is disconnected (headers) or answered 408 (body).
    pub read_timeout: Duration,
    /// Connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// The web console under `/console/`; `None` when it is off.
    pub console: Option<ConsoleConfig>,
}

/// Where the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// An SQLite database file.
    File(PathBuf),
    /// An in-memory SQLite database (tests), lost on exit.
    Memory,
    /// A PostgreSQL database (`postgres://USER:PASS@HOST:PORT/DB`): its
    /// address holds a password, so it is kept as a secret.
    Postgres(crate::secret::Secret),
}

/// Anti-ban pacing of sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Minimum time between two sends of this instance.
    pub min_interval: Duration,
    /// At most this many sends to one chat.
    pub per_chat: Rate,
    /// A delay before each send, as if typing.
    pub typing_delay: DelayRange,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            min_interval: Duration::from_secs(1),
            per_chat: Rate {
                count: 3,
                per: Duration::from_secs(60),
            },
            typing_delay: DelayRange {
                min: Duration::ZERO,
                max: Duration::from_secs(2),
            },
        }
    }
}

/// What can go wrong while loading the config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No file was given and none was found where one is looked for.
    #[error(
        "no config file: pass -c FILE, set WAFLOW_CONFIG, or write ./{DEFAULT_FILE} and starter rules here with `waflow init`"
    )]
    NotFound,
    /// The file was found but has problems.
    #[error("{0}")]
    Invalid(#[from] Diagnostics),
}

mod compile;
mod instances;
mod raw;

pub use instances::{DEFAULT_INSTANCE, InstanceConfig, valid_name};

impl Config {
    /// Finds the config file: `explicit` (from `-c` or `$WAFLOW_CONFIG`), else
    /// `./waflow.yaml`, else the embedded default `examples/waflow.yaml`.
    /// The second value tells whether the embedded default was chosen, so the
    /// caller can say so.
    pub fn locate(explicit: Option<&Path>) -> Result<(PathBuf, bool), ConfigError> {
        if let Some(path) = explicit {
            return Ok((path.to_owned(), false));
        }
        if Path::new(DEFAULT_FILE).is_file() {
            return Ok((PathBuf::from(DEFAULT_FILE), false));
        }
        if Path::new(EXAMPLE_FILE).is_file() {
            return Ok((PathBuf::from(EXAMPLE_FILE), true));
        }
        Err(ConfigError::NotFound)
    }

    /// Reads and checks the file at `path`, taking `${VAR}` values from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            Diagnostics::from(Diagnostic::file_level(
                path,
                format!("cannot read the config file: {err}"),
            ))
        })?;
        let env: HashMap<String, String> = std::env::vars().collect();
        Ok(Config::parse(path, &text, &env)?)
    }

    /// Checks config `text` as if read from `path`, with `env` for `${VAR}`.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &HashMap<String, String>,
    ) -> Result<Config, Diagnostics> {
        let raw: raw::File = if text.trim().is_empty() {
            raw::File::default()
        } else {
            diagnostic::from_yaml(path, text, env)?
        };
        let mut problems = Diagnostics::default();
        let folder = path.parent().unwrap_or(Path::new(".")).to_owned();
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_owned()
            } else {
                folder.join(p)
            }
        };
        let base_url = compile::base_url(&raw.api, path, &mut problems);
        let listen = compile::listen(&raw.server, path, &mut problems);
        let (store, keep, lease) =
            compile::store(raw.store.as_ref(), &resolve, path, &mut problems);
        let rules = resolve(
            raw.rules
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or("rules"),
        );
        let timezone = raw.timezone.clone().unwrap_or_default();
        let hours = compile::calendars(&raw.hours, &timezone);
        let safety_raw = raw.safety.clone();
        let safety = compile::safety(raw.safety.clone(), &timezone, &hours, path, &mut problems);

        let (Some(base_url), Some(listen)) = (base_url, listen) else {
            return Err(problems);
        };
        let api = compile::api(raw.api.clone(), base_url);
        let mut config = Config {
            path: path.to_owned(),
            dry_run: raw.dry_run || api.access_token.is_none(),
            api,
            server: compile::server(raw.server.clone(), listen, path, &mut problems),
            store,
            rules,
            timezone,
            hours: std::sync::Arc::new(hours),
            pacing: compile::pacing(&raw.pacing),
            ignore_older_than: raw
                .ignore_older_than
                .map_or(Duration::from_secs(600), HumanDuration::get),
            human_pause: raw
                .human_pause
                .map_or(Duration::from_secs(1800), HumanDuration::get),
            vars: raw.vars.clone(),
            keep,
            lease,
            allow_hosts: compile::allow_hosts(&raw.http_actions),
            safety,
            retry: compile::retry(&raw.retry),
            instances: Vec::new(),
        };
        config.instances = match &raw.instances {
            None => vec![config.single_instance()],
            Some(entries) => {
                let top = instances::Shared {
                    file: &raw,
                    api: &config.api,
                    safety: &safety_raw,
                    hours: &config.hours,
                    resolve: &resolve,
                };
                instances::compile_all(entries, &top, path, &mut problems)
            }
        };
        problems.into_result(config)
    }

    /// The single form's one instance, `default`: the top level as it is.
    fn single_instance(&self) -> InstanceConfig {
        InstanceConfig {
            name: DEFAULT_INSTANCE.to_owned(),
            api: self.api.clone(),
            webhook_secret: None,
            rules: self.rules.clone(),
            vars: self.vars.clone(),
            timezone: self.timezone.clone(),
            hours: self.hours.clone(),
            pacing: self.pacing,
            safety: self.safety.clone(),
            human_pause: self.human_pause,
            ignore_older_than: self.ignore_older_than,
            dry_run: self.dry_run,
        }
    }

    /// The settings as `instance` sees them: this config with the
    /// instance's own values in place of the top level's, and that one
    /// instance only.
    pub fn view(&self, instance: &InstanceConfig) -> Config {
        Config {
            api: instance.api.clone(),
            rules: instance.rules.clone(),
            vars: instance.vars.clone(),
            timezone: instance.timezone.clone(),
            hours: instance.hours.clone(),
            pacing: instance.pacing,
            safety: instance.safety.clone(),
            human_pause: instance.human_pause,
            ignore_older_than: instance.ignore_older_than,
            dry_run: instance.dry_run,
            instances: vec![instance.clone()],
            ..self.clone()
        }
    }

    /// The name of the first (in a [`Config::view`], the only) instance.
    pub fn name(&self) -> &str {
        self.instances
            .first()
            .map_or(DEFAULT_INSTANCE, |i| i.name.as_str())
    }

    /// The configured instance called `name`.
    pub fn instance(&self, name: &str) -> Option<&InstanceConfig> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// The instance a command works on: `name`, or the only one. Several
    /// configured and none named, or an unknown name, is an error that
    /// lists them.
    pub fn select(&self, name: Option<&str>) -> Result<&InstanceConfig, String> {
        let names: Vec<&str> = self.instances.iter().map(|i| i.name.as_str()).collect();
        match name {
            None if self.instances.len() == 1 => Ok(&self.instances[0]),
            None => Err(format!(
                "several instances are configured: choose one with --instance NAME ({})",
                names.join(", ")
            )),
            Some(name) => self.instance(name).ok_or_else(|| {
                let hint = diagnostic::did_you_mean(name, &names)
                    .map(|n| format!("did you mean `{n}`? "))
                    .unwrap_or_default();
                format!(
                    "no instance `{name}` is configured: {hint}the instances are {}",
                    names.join(", ")
                )
            }),
        }
    }

    /// Why the config is in dry-run, for the loud start-up notice; `None` when live.
    /// In a [`Config::view`] of a named instance, its own token is meant.
    pub fn dry_run_reason(&self) -> Option<String> {
        if self.api.access_token.is_none() {
            Some(match self.name() {
                DEFAULT_INSTANCE => "no api.access_token is set (WAFLOW_ACCESS_TOKEN)".to_owned(),
                name => format!("no access_token is set for instance {name}"),
            })
        } else if self.dry_run {
            Some("dry_run is on".to_owned())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Diagnostics> {
        let env = HashMap::from([
            ("WAFLOW_ACCESS_TOKEN".to_owned(), "tok-secret".to_owned()),
            ("WAFLOW_INSTANCE_ID".to_owned(), "609ACF283XXXX".to_owned()),
        ]);
        Config::parse(Path::new("/etc/waflow/waflow.yaml"), text, &env)
    }

    fn first_error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_lease_too_short_to_renew_is_refused() {
        insta::assert_snapshot!(first_error("store: { lease: 200ms }\n"), @r"
        /etc/waflow/waflow.yaml: store.lease is 200ms: a lease that short cannot be renewed in time, and every process would lose its work to the others
          hint: use at least 1s; the default, 15s, suits most setups (see docs/scaling.md)
        ");
        assert!(parse("store: { lease: 1s }\n").is_ok());
    }

    #[test]
    fn empty_file_gives_defaults_in_dry_run() {
        let c = parse("").unwrap();
        assert_eq!(c.api.base_url.as_str(), "https://wonotify.com/api");
        assert!(c.dry_run);
        assert_eq!(
            c.dry_run_reason().as_deref(),
            Some("no api.access_token is set (WAFLOW_ACCESS_TOKEN)")
        );
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8787");
        assert_eq!(c.server.max_body, 1 << 20);
        assert_eq!(c.pacing, Pacing::default());
        assert_eq!(c.rules, PathBuf::from("/etc/waflow/rules"));
        assert_eq!(
            c.store,
            StoreLocation::File(PathBuf::from("/etc/waflow/waflow.db"))
        );
        assert_eq!(c.timezone.name, "UTC");
    }

    #[test]
    fn full_file_with_environment() {
        let c = parse(
            "api:\n  base_url: https://example.com/whatsapp_api/\n  instance_id: ${WAFLOW_INSTANCE_ID}\n  access_token: ${WAFLOW_ACCESS_TOKEN}\n  method: get\n  timeout: 5s\n\
             server:\n  listen: 0.0.0.0:9000\n  webhook_secret: ${HOOK:-s3cret}\n  max_body: 512KiB\n\
             store: \":memory:\"\nrules: /srv/rules\ntimezone: Europe/Berlin\n\
             pacing:\n  min_interval: 2s\n  per_chat: 5/h\n  typing_delay: 1s..3s\n\
             ignore_older_than: 5m\nhuman_pause: 1h\nvars:\n  shop_url: https://shop.example.com\n",
        )
        .unwrap();
        assert_eq!(c.api.base_url.as_str(), "https://example.com/whatsapp_api");
        assert_eq!(c.api.instance_id.as_deref(), Some("609ACF283XXXX"));
        assert_eq!(c.api.access_token.as_ref().unwrap().expose(), "tok-secret");
        assert_eq!(c.api.method, SendMethod::Get);
        assert_eq!(c.api.timeout, Duration::from_secs(5));
        assert!(!c.dry_run);
        assert_eq!(c.server.webhook_secret.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(c.server.max_body, 512 * 1024);
        assert_eq!(c.store, StoreLocation::Memory);
        assert_eq!(c.rules, PathBuf::from("/srv/rules"));
        assert_eq!(c.pacing.per_chat.to_string(), "5/h");
        assert_eq!(c.human_pause, Duration::from_secs(3600));
        assert_eq!(c.vars["shop_url"], "https://shop.example.com");
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let c = parse("api:\n  access_token: ${WAFLOW_ACCESS_TOKEN}\n").unwrap();
        assert!(!format!("{c:?}").contains("tok-secret"));
    }

    #[test]
    fn errors_name_file_line_column_and_hint() {
        insta::assert_snapshot!(first_error("api:\n  base_ulr: https://x\n"), @r"
        /etc/waflow/waflow.yaml:2:3: unknown key `base_ulr`
          hint: did you mean `base_url`?
        ");
        insta::assert_snapshot!(first_error("pacing:\n  per_chat: 3 per minute\n"), @"/etc/waflow/waflow.yaml:2:13: invalid rate `3 per minute`: write COUNT/UNIT, such as 3/min, 1/s or 20/h");
        insta::assert_snapshot!(first_error("api:\n  timeout: soon\n"), @"/etc/waflow/waflow.yaml:2:12: invalid duration `soon`: write a number and a unit, such as 500ms, 20s, 10m, 2h or 1d");
        insta::assert_snapshot!(first_error("timezone: Europe/Berlim\n"), @"/etc/waflow/waflow.yaml:1:11: unknown time zone `Europe/Berlim`: use an IANA name such as Europe/Berlin, America/New_York or UTC");
        insta::assert_snapshot!(first_error("api:\n  instance_id: ${MISSING_VAR}\n"), @r"
        /etc/waflow/waflow.yaml:2:16: environment variable `MISSING_VAR` is not set
          hint: export MISSING_VAR=..., or give a default in the file: ${MISSING_VAR:-value}
        ");
        insta::assert_snapshot!(first_error("api:\n  method: put\n"), @r"
        /etc/waflow/waflow.yaml:2:11: unknown value `put`
          hint: expected one of: post, get
        ");
        insta::assert_snapshot!(first_error("server:\n  listen: localhost\n"), @r"
        /etc/waflow/waflow.yaml:2:11: invalid listen address `localhost`
          hint: write IP:PORT, e.g. 127.0.0.1:8787
        ");
        insta::assert_snapshot!(first_error("api:\n  base_url: ftp://x\n"), @r"
        /etc/waflow/waflow.yaml:2:13: invalid base_url `ftp://x`: the scheme must be http or https
          hint: use the API's base path, e.g. https://wonotify.com/api or https://wonotify.com/whatsapp_api
        ");
        insta::assert_snapshot!(first_error("api: [\n"), @r"
        /etc/waflow/waflow.yaml:1:6: expected a mapping here
          hint: write `key: value` lines, indented under their parent
        ");
    }

    #[test]
    fn calendars_and_quiet_hours() {
        let c = parse(
            "timezone: Asia/Ho_Chi_Minh\nhours:\n  office:\n    open: [\"mon-fri 08:00-17:00\"]\n    holidays: [2026-09-02]\n\
             safety:\n  quiet_hours: outside office\n  ban_breaker: { pause: 1m, slow_start: 0 }\n",
        )
        .unwrap();
        let office = &c.hours["office"];
        assert_eq!(office.zone.name, "Asia/Ho_Chi_Minh");
        let quiet = c.safety.quiet_hours.as_ref().unwrap();
        assert_eq!(quiet.label, "outside office");
        assert_eq!(&quiet.allowed, office);
        assert_eq!(c.safety.ban_breaker.pause, Duration::from_secs(60));
        assert_eq!(c.safety.ban_breaker.slow_start, 0);
        let default = parse("").unwrap();
        assert_eq!(default.safety.quiet_hours.unwrap().label, "21:00-08:00");
        assert!(
            parse("safety:\n  quiet_hours: off\n")
                .unwrap()
                .safety
                .quiet_hours
                .is_none()
        );
        insta::assert_snapshot!(first_error("hours:\n  office:\n    open: [\"weekdays 9-5\"]\n"), @"/etc/waflow/waflow.yaml:3:12: invalid opening hours `weekdays 9-5`: unknown day in `weekdays` (use mon, tue, wed, thu, fri, sat, sun or daily); write DAYS HH:MM-HH:MM, e.g. `mon-fri 09:00-18:00` or `sat 10:00-13:00,14:00-16:00`");
        insta::assert_snapshot!(first_error("hours:\n  office:\n    holidays: [christmas]\n"), @"/etc/waflow/waflow.yaml:3:16: invalid holiday `christmas`: write a date as YYYY-MM-DD, e.g. 2026-12-25");
        insta::assert_snapshot!(first_error("hours:\n  office: {}\nsafety:\n  quiet_hours: outside ofice\n"), @r"
        /etc/waflow/waflow.yaml:4:16: safety.quiet_hours: no calendar `ofice` in `hours:`
          hint: did you mean `office`?
        ");
        insta::assert_snapshot!(first_error("safety:\n  quiet_hours: nights\n"), @r"
        /etc/waflow/waflow.yaml:2:16: safety.quiet_hours: `nights` is not a time range
          hint: write HH:MM-HH:MM (quiet from-to, e.g. 21:00-08:00), `outside CALENDAR`, or off
        ");
    }

    #[test]
    fn semantic_errors_are_all_reported() {
        let err = parse("api:\n  base_url: nope\nserver:\n  listen: nope\n").unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "\0",
            "[[[",
            "api: {",
            "- - -",
            "? x",
            "&a [*a]",
            "api: !!binary xx",
            "\t\tfoo",
        ] {
            let _ = parse(text);
        }
    }
}
