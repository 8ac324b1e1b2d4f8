//! `instances:` (SPEC §7): each number's own id, token, rules and the
//! settings it overrides, merged over the top level into an
//! [`InstanceConfig`]. The single form (`api.instance_id` +
//! `api.access_token`) is one instance named [`DEFAULT_INSTANCE`].
//!
//! A setting an instance leaves out is the top level's; a section it gives
//! (`pacing:`, `safety:`) overrides the top level's key by key, so
//! `pacing: { min_interval: 2s }` keeps the shared `per_chat`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::raw::{self, BanBreakerRaw, LoopBreakerRaw, OptOutRaw, PacingRaw, SafetyRaw};
use super::safety::Safety;
use super::{ApiConfig, Calendars, Diagnostic, Diagnostics, Pacing, compile};
use crate::secret::Secret;
use crate::units::{HumanDuration, Zone};

/// The name of the one instance of the single form.
pub const DEFAULT_INSTANCE: &str = "default";

/// One number as the daemon serves it: the top level's settings with the
/// instance's own merged over them.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    /// `[a-z0-9_-]+`: `--instance`, metrics, rules' `instance:`, the store's key.
    pub name: String,
    /// How to reach the remote API as this number.
    pub api: ApiConfig,
    /// `/webhook/<this>` accepts only this instance's events.
    pub webhook_secret: Option<Secret>,
    /// This number's rules (a file or a folder).
    pub rules: PathBuf,
    /// `vars:`, the instance's over the top level's.
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// Zone of schedules and `{{ now }}`.
    pub timezone: Zone,
    /// Business calendars.
    pub hours: Calendars,
    /// Anti-ban pacing of this number's sends.
    pub pacing: Pacing,
    /// The protections.
    pub safety: Safety,
    /// How long a person's reply pauses the bot in a chat.
    pub human_pause: Duration,
    /// Message events older than this are recorded, not acted on.
    pub ignore_older_than: Duration,
    /// Nothing is sent for this number (no token, or `dry_run: true`).
    pub dry_run: bool,
}

/// The top level's raw settings an instance merges over.
pub(super) struct Shared<'a> {
    pub(super) file: &'a raw::File,
    pub(super) api: &'a ApiConfig,
    pub(super) safety: &'a SafetyRaw,
    /// The top level's calendars, kept by an instance that changes neither
    /// them nor the zone (so that instances alike share one rule set).
    pub(super) hours: &'a Calendars,
    pub(super) resolve: &'a dyn Fn(&str) -> PathBuf,
}

/// Whether `name` may name an instance.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Every entry of `instances:`, merged over the top level, in name order.
pub(super) fn compile_all(
    entries: &Spanned<raw::Instances>,
    top: &Shared,
    path: &Path,
    problems: &mut Diagnostics,
) -> Vec<InstanceConfig> {
    let (section, entries) = (&entries.referenced, &entries.value);
    let here = |message: &str| Diagnostic::at(path, section.line(), section.column(), message);
    if entries.is_empty() {
        problems.push(
            here("`instances:` is empty").with_hint(
                "name at least one number, or remove `instances:` and use api.instance_id",
            ),
        );
    }
    if top.api.instance_id.is_some() || top.api.access_token.is_some() {
        problems.push(
            here("api.instance_id and api.access_token cannot be used together with `instances:`")
                .with_hint("give each instance its own instance_id and access_token"),
        );
    }
    let mut out = Vec::new();
    for (name, entry) in entries {
        let at = &entry.referenced;
        if !valid_name(name) {
            problems.push(
                Diagnostic::at(
                    path,
                    at.line(),
                    at.column(),
                    format!("instances: invalid name `{name}`"),
                )
                .with_hint("use lowercase letters, digits, `_` and `-`, such as shop or support-2"),
            );
            continue;
        }
        let Some(instance) = compile_one(name, &entry.value, top, path, problems) else {
            continue;
        };
        let id = instance.api.instance_id.as_deref();
        if let Some(twin) = out
            .iter()
            .find(|o: &&InstanceConfig| id.is_some() && o.api.instance_id.as_deref() == id)
        {
            problems.push(
                Diagnostic::at(
                    path,
                    at.line(),
                    at.column(),
                    format!(
                        "instances: `{name}` has the same instance_id as `{}`",
                        twin.name
                    ),
                )
                .with_hint("each number has its own instance_id; events are routed by it"),
            );
        }
        out.push(instance);
    }
    out
}

fn compile_one(
    name: &str,
    entry: &raw::InstanceRaw,
    top: &Shared,
    path: &Path,
    problems: &mut Diagnostics,
) -> Option<InstanceConfig> {
    let file = top.file;
    let base_url = match &entry.base_url {
        None => Some(top.api.base_url.clone()),
        Some(spanned) => compile::base_url_at(spanned, path, problems),
    }?;
    let api = ApiConfig {
        base_url,
        instance_id: non_empty(entry.instance_id.as_deref()),
        access_token: entry.access_token.clone().and_then(Secret::new),
        method: top.api.method,
        timeout: top.api.timeout,
    };
    let timezone = entry
        .timezone
        .clone()
        .or_else(|| file.timezone.clone())
        .unwrap_or_default();
    let hours = if entry.hours.is_none() && entry.timezone.is_none() {
        top.hours.clone()
    } else {
        let mut hours_raw = file.hours.clone();
        hours_raw.extend(entry.hours.clone().unwrap_or_default());
        std::sync::Arc::new(compile::calendars(&hours_raw, &timezone))
    };
    let safety_raw = match &entry.safety {
        Some(own) => own.clone().over(top.safety),
        None => top.safety.clone(),
    };
    let safety = compile::safety(safety_raw, &timezone, &hours, path, problems);
    let pacing = match &entry.pacing {
        Some(own) => own.clone().over(&file.pacing),
        None => file.pacing.clone(),
    };
    let mut vars = file.vars.clone();
    vars.extend(entry.vars.clone());
    let rules = match non_empty(entry.rules.as_deref()) {
        Some(own) => (top.resolve)(&own),
        None => (top.resolve)(
            non_empty(file.rules.as_deref())
                .as_deref()
                .unwrap_or("rules"),
        ),
    };
    Some(InstanceConfig {
        name: name.to_owned(),
        dry_run: file.dry_run || api.access_token.is_none(),
        api,
        webhook_secret: entry.webhook_secret.clone().and_then(Secret::new),
        rules,
        vars,
        timezone,
        hours,
        pacing: compile::pacing(&pacing),
        safety,
        human_pause: entry
            .human_pause
            .or(file.human_pause)
            .map_or(Duration::from_secs(1800), HumanDuration::get),
        ignore_older_than: entry
            .ignore_older_than
            .or(file.ignore_older_than)
            .map_or(Duration::from_secs(600), HumanDuration::get),
    })
}

fn non_empty(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl PacingRaw {
    /// These keys over `base`'s.
    fn over(self, base: &PacingRaw) -> PacingRaw {
        PacingRaw {
            min_interval: self.min_interval.or(base.min_interval),
            per_chat: self.per_chat.or(base.per_chat),
            typing_delay: self.typing_delay.or(base.typing_delay),
        }
    }
}

impl SafetyRaw {
    /// These keys over `base`'s, section by section.
    fn over(self, base: &SafetyRaw) -> SafetyRaw {
        SafetyRaw {
            opt_out: self.opt_out.over(&base.opt_out),
            repeat_window: self.repeat_window.or(base.repeat_window),
            per_chat_ceiling: self.per_chat_ceiling.or(base.per_chat_ceiling.clone()),
            cold_guard: self.cold_guard.or(base.cold_guard),
            cold_daily_cap: self.cold_daily_cap.or(base.cold_daily_cap),
            loop_breaker: self.loop_breaker.over(&base.loop_breaker),
            quiet_hours: self.quiet_hours.or(base.quiet_hours.clone()),
            ban_breaker: self.ban_breaker.over(&base.ban_breaker),
        }
    }
}

impl OptOutRaw {
    fn over(self, base: &OptOutRaw) -> OptOutRaw {
        OptOutRaw {
            enabled: self.enabled.or(base.enabled),
            keywords: self.keywords.or(base.keywords.clone()),
            confirmation: self.confirmation.or(base.confirmation.clone()),
            resume_keywords: self.resume_keywords.or(base.resume_keywords.clone()),
            resume_confirmation: self
                .resume_confirmation
                .or(base.resume_confirmation.clone()),
        }
    }
}

impl LoopBreakerRaw {
    fn over(self, base: &LoopBreakerRaw) -> LoopBreakerRaw {
        LoopBreakerRaw {
            enabled: self.enabled.or(base.enabled),
            faster_than: self.faster_than.or(base.faster_than),
            replies: self.replies.or(base.replies),
            mute: self.mute.or(base.mute),
        }
    }
}

impl BanBreakerRaw {
    fn over(self, base: &BanBreakerRaw) -> BanBreakerRaw {
        BanBreakerRaw {
            enabled: self.enabled.or(base.enabled),
            pause: self.pause.or(base.pause),
            max_pause: self.max_pause.or(base.max_pause),
            slow_start: self.slow_start.or(base.slow_start),
            slow_interval: self.slow_interval.or(base.slow_interval),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::{Config, Diagnostics};
    use super::*;

    fn parse(text: &str) -> Result<Config, Diagnostics> {
        let env = HashMap::from([("SHOP_TOKEN".to_owned(), "tok-shop".to_owned())]);
        Config::parse(Path::new("/etc/waflow/waflow.yaml"), text, &env)
    }

    const TWO: &str = "api:\n  base_url: https://wonotify.com/api\n  timeout: 5s\n\
        pacing: { min_interval: 3s, per_chat: 5/min }\n\
        vars: { shop: Example, city: Hue }\n\
        safety:\n  repeat_window: 2h\n  opt_out: { keywords: [STOP] }\n\
        instances:\n  shop:\n    instance_id: SHOP1\n    access_token: ${SHOP_TOKEN}\n\
        \x20   base_url: https://other.example/api\n    webhook_secret: shop-hook\n    rules: ./rules/shop\n\
        \x20   vars: { city: Hanoi }\n    timezone: Asia/Ho_Chi_Minh\n    pacing: { min_interval: 2s }\n\
        \x20   safety: { opt_out: { confirmation: Bye } }\n\
        \x20 support:\n    instance_id: SUP1\n";

    #[test]
    fn instances_merge_over_the_top_level() {
        let c = parse(TWO).unwrap();
        let names: Vec<&str> = c.instances.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["shop", "support"]);
        let shop = c.instance("shop").unwrap();
        assert_eq!(shop.api.base_url.as_str(), "https://other.example/api");
        assert_eq!(shop.api.instance_id.as_deref(), Some("SHOP1"));
        assert_eq!(shop.api.timeout, Duration::from_secs(5));
        assert!(!shop.dry_run);
        assert_eq!(shop.rules, PathBuf::from("/etc/waflow/./rules/shop"));
        assert_eq!(shop.vars["city"], "Hanoi");
        assert_eq!(shop.vars["shop"], "Example");
        assert_eq!(shop.timezone.name, "Asia/Ho_Chi_Minh");
        assert_eq!(shop.pacing.min_interval, Duration::from_secs(2));
        assert_eq!(shop.pacing.per_chat.to_string(), "5/min");
        assert_eq!(shop.safety.opt_out.confirmation, "Bye");
        assert_eq!(shop.safety.opt_out.keywords, ["STOP"]);
        assert_eq!(shop.safety.repeat_window, Duration::from_secs(7200));
        let support = c.instance("support").unwrap();
        assert!(support.dry_run, "no token: dry-run for this number only");
        assert_eq!(support.api.base_url.as_str(), "https://wonotify.com/api");
        assert_eq!(support.rules, PathBuf::from("/etc/waflow/rules"));
        assert_eq!(support.pacing.min_interval, Duration::from_secs(3));
        let view = c.view(shop);
        assert_eq!(view.pacing.min_interval, Duration::from_secs(2));
        assert_eq!(view.instances.len(), 1);
        assert!(!format!("{c:?}").contains("tok-shop"));
    }

    #[test]
    fn the_single_form_is_the_instance_default() {
        let c = parse("api:\n  instance_id: ONE\n  access_token: t\n").unwrap();
        assert_eq!(c.instances.len(), 1);
        assert_eq!(c.instances[0].name, DEFAULT_INSTANCE);
        assert_eq!(c.instances[0].api.instance_id.as_deref(), Some("ONE"));
        assert_eq!(c.select(None).unwrap().name, "default");
    }

    #[test]
    fn selecting_an_instance() {
        let c = parse(TWO).unwrap();
        insta::assert_snapshot!(c.select(None).unwrap_err(), @"several instances are configured: choose one with --instance NAME (shop, support)");
        insta::assert_snapshot!(c.select(Some("suport")).unwrap_err(), @"no instance `suport` is configured: did you mean `support`? the instances are shop, support");
        assert_eq!(c.select(Some("shop")).unwrap().name, "shop");
    }

    #[test]
    fn instance_errors_are_located() {
        let err = |text: &str| parse(text).unwrap_err().to_string();
        insta::assert_snapshot!(err("instances:\n  Shop:\n    instance_id: X\n"), @r"
            /etc/waflow/waflow.yaml:3:5: instances: invalid name `Shop`
              hint: use lowercase letters, digits, `_` and `-`, such as shop or support-2
            ");
        insta::assert_snapshot!(err("instances:\n  shop:\n    instance_ld: X\n"), @r"
            /etc/waflow/waflow.yaml:3:5: unknown key `instance_ld`
              hint: did you mean `instance_id`?
            ");
        insta::assert_snapshot!(err("instances:\n  shop:\n    base_url: ftp://x\n"), @r"
            /etc/waflow/waflow.yaml:3:15: invalid base_url `ftp://x`: the scheme must be http or https
              hint: use the API's base path, e.g. https://wonotify.com/api or https://wonotify.com/whatsapp_api
            ");
        insta::assert_snapshot!(err("api:\n  instance_id: X\ninstances:\n  shop: {}\n"), @r"
            /etc/waflow/waflow.yaml:4:3: api.instance_id and api.access_token cannot be used together with `instances:`
              hint: give each instance its own instance_id and access_token
            ");
        insta::assert_snapshot!(err("instances:\n  shop:\n    safety: { quiet_hours: nights }\n"), @r"
            /etc/waflow/waflow.yaml:3:28: safety.quiet_hours: `nights` is not a time range
              hint: write HH:MM-HH:MM (quiet from-to, e.g. 21:00-08:00), `outside CALENDAR`, or off
            ");
        insta::assert_snapshot!(err("instances:\n  a: { instance_id: X }\n  b: { instance_id: X }\n"), @r"
            /etc/waflow/waflow.yaml:3:6: instances: `b` has the same instance_id as `a`
              hint: each number has its own instance_id; events are routed by it
            ");
        insta::assert_snapshot!(err("instances: {}\n"), @r"
            /etc/waflow/waflow.yaml:1:12: `instances:` is empty
              hint: name at least one number, or remove `instances:` and use api.instance_id
            ");
    }
}
