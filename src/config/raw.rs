//! The serde mirror of the config file: every key the file may contain,
//! nothing checked yet (unknown keys are rejected).
use serde::Deserialize;

use super::SendMethod;
use crate::units::{ByteSize, DelayRange, HumanDuration, Rate, Zone};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub api: Api,
    #[serde(default)]
    pub server: Server,
    pub store: Option<StoreRaw>,
    pub rules: Option<String>,
    pub timezone: Option<Zone>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub pacing: PacingRaw,
    pub ignore_older_than: Option<HumanDuration>,
    pub human_pause: Option<HumanDuration>,
    #[serde(default)]
    pub vars: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub retry: RetryRaw,
    #[serde(default)]
    pub safety: SafetyRaw,
    #[serde(default)]
    pub hours: std::collections::BTreeMap<String, CalendarRaw>,
    #[serde(default)]
    pub http_actions: HttpActionsRaw,
    /// Several numbers (SPEC §7); absent: the single instance `default`.
    pub instances: Option<serde_saphyr::Spanned<Instances>>,
}

/// `instances:`, by name.
pub type Instances = std::collections::BTreeMap<String, serde_saphyr::Spanned<InstanceRaw>>;

/// One entry of `instances:`; every setting left out comes from the top level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceRaw {
    pub instance_id: Option<String>,
    pub access_token: Option<String>,
    pub base_url: Option<serde_saphyr::Spanned<String>>,
    pub webhook_secret: Option<String>,
    pub rules: Option<String>,
    #[serde(default)]
    pub vars: serde_json::Map<String, serde_json::Value>,
    pub timezone: Option<Zone>,
    pub pacing: Option<PacingRaw>,
    pub safety: Option<SafetyRaw>,
    pub hours: Option<std::collections::BTreeMap<String, CalendarRaw>>,
    pub human_pause: Option<HumanDuration>,
    pub ignore_older_than: Option<HumanDuration>,
}

/// `store: FILE`, or `store: {path: FILE, keep: 30d}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StoreRaw {
    Path(String),
    Table {
        path: Option<String>,
        keep: Option<HumanDuration>,
        lease: Option<HumanDuration>,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpActionsRaw {
    #[serde(default)]
    pub allow_hosts: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarRaw {
    pub timezone: Option<Zone>,
    #[serde(default)]
    pub open: Vec<crate::units::calendar::OpenLine>,
    #[serde(default)]
    pub holidays: Vec<crate::units::calendar::Holiday>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyRaw {
    #[serde(default)]
    pub opt_out: OptOutRaw,
    pub repeat_window: Option<HumanDuration>,
    pub per_chat_ceiling: Option<String>,
    pub cold_guard: Option<bool>,
    pub cold_daily_cap: Option<u32>,
    #[serde(default)]
    pub loop_breaker: LoopBreakerRaw,
    pub quiet_hours: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    pub ban_breaker: BanBreakerRaw,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BanBreakerRaw {
    pub enabled: Option<bool>,
    pub pause: Option<HumanDuration>,
    pub max_pause: Option<HumanDuration>,
    pub slow_start: Option<u32>,
    pub slow_interval: Option<HumanDuration>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopBreakerRaw {
    pub enabled: Option<bool>,
    pub faster_than: Option<HumanDuration>,
    pub replies: Option<u32>,
    pub mute: Option<HumanDuration>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptOutRaw {
    pub enabled: Option<bool>,
    pub keywords: Option<Vec<String>>,
    pub confirmation: Option<String>,
    pub resume_keywords: Option<Vec<String>>,
    pub resume_confirmation: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryRaw {
    pub attempts: Option<u32>,
    pub backoff: Option<HumanDuration>,
    pub max_backoff: Option<HumanDuration>,
    pub relogin_probe: Option<HumanDuration>,
    pub echo_wait: Option<HumanDuration>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    pub base_url: Option<serde_saphyr::Spanned<String>>,
    pub instance_id: Option<String>,
    pub access_token: Option<String>,
    #[serde(default)]
    pub method: SendMethod,
    pub timeout: Option<HumanDuration>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: Option<serde_saphyr::Spanned<String>>,
    pub webhook_secret: Option<String>,
    pub max_body: Option<ByteSize>,
    pub read_timeout: Option<HumanDuration>,
    pub max_connections: Option<u32>,
    pub console: Option<super::console::ConsoleRaw>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacingRaw {
    pub min_interval: Option<HumanDuration>,
    pub per_chat: Option<Rate>,
    pub typing_delay: Option<DelayRange>,
}
