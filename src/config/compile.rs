//! The sections of the config file, each turned from its raw serde mirror
//! into its checked value: defaults filled in, text values parsed, every
//! problem pushed with its place. [`super::Config::parse`] assembles them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::raw;
use super::safety::{BanBreaker, LoopBreaker, OptOut, QuietHours, Safety, normalize};
use super::{ApiConfig, DEFAULT_BASE_URL, Diagnostic, Diagnostics, Pacing, Retry, ServerConfig};
use crate::secret::Secret;
use crate::units::calendar::Calendar;
use crate::units::{HumanDuration, Rate, Zone};

/// `api.base_url`, or the public default.
pub(super) fn base_url(
    api: &raw::Api,
    path: &Path,
    problems: &mut Diagnostics,
) -> Option<url::Url> {
    match &api.base_url {
        None => url::Url::parse(DEFAULT_BASE_URL).ok(),
        Some(spanned) => base_url_at(spanned, path, problems),
    }
}

/// A `base_url` value, checked, its problem located.
pub(super) fn base_url_at(
    spanned: &serde_saphyr::Spanned<String>,
    path: &Path,
    problems: &mut Diagnostics,
) -> Option<url::Url> {
    match parse_base_url(&spanned.value) {
        Ok(url) => Some(url),
        Err(message) => {
            let at = &spanned.referenced;
            problems.push(
                Diagnostic::at(path, at.line(), at.column(), message).with_hint(
                    "use the API's base path, e.g. https://wonotify.com/api or https://wonotify.com/whatsapp_api",
                ),
            );
            None
        }
    }
}

/// Checks a base URL: http(s), a host, no query; a trailing slash is dropped.
fn parse_base_url(text: &str) -> Result<url::Url, String> {
    let trimmed = text.trim().trim_end_matches('/');
    let url = url::Url::parse(trimmed).map_err(|e| format!("invalid base_url `{text}`: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "invalid base_url `{text}`: the scheme must be http or https"
        ));
    }
    if url.host().is_none() {
        return Err(format!("invalid base_url `{text}`: it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "invalid base_url `{text}`: remove the query string; waflow adds the parameters itself"
        ));
    }
    Ok(url)
}

/// The `api:` section, with its checked base URL.
pub(super) fn api(raw: raw::Api, base_url: url::Url) -> ApiConfig {
    ApiConfig {
        base_url,
        instance_id: raw
            .instance_id
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        access_token: raw.access_token.and_then(Secret::new),
        method: raw.method,
        timeout: raw
            .timeout
            .map_or(std::time::Duration::from_secs(20), HumanDuration::get),
    }
}

/// The shortest `store.lease`: renewed every third of it, a lease needs
/// a few hundred milliseconds per renewal.
const MIN_LEASE: Duration = Duration::from_secs(1);

/// `store:`: where the database is, `store.keep` (30 days by default) and
/// `store.lease` (15 s by default).
pub(super) fn store(
    raw: Option<&raw::StoreRaw>,
    resolve: &dyn Fn(&str) -> std::path::PathBuf,
    file: &Path,
    problems: &mut Diagnostics,
) -> (super::StoreLocation, Duration, Duration) {
    let (path, keep, lease) = match raw {
        None => (None, None, None),
        Some(raw::StoreRaw::Path(p)) => (Some(p.as_str()), None, None),
        Some(raw::StoreRaw::Table { path, keep, lease }) => (path.as_deref(), *keep, *lease),
    };
    let keep = keep.map_or(Duration::from_secs(30 * 86_400), HumanDuration::get);
    let lease = lease.map_or(Duration::from_secs(15), HumanDuration::get);
    if lease < MIN_LEASE {
        problems.push(
            Diagnostic::file_level(file, format!("store.lease is {lease:?}: a lease that short cannot be renewed in time, and every process would lose its work to the others"))
                .with_hint("use at least 1s; the default, 15s, suits most setups (see docs/scaling.md)"),
        );
    }
    let location = match path.map(str::trim) {
        Some(":memory:") => super::StoreLocation::Memory,
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            match crate::secret::Secret::new(url) {
                Some(url) => super::StoreLocation::Postgres(url),
                None => super::StoreLocation::File(resolve("waflow.db")),
            }
        }
        Some(p) if !p.is_empty() => super::StoreLocation::File(resolve(p)),
        _ => super::StoreLocation::File(resolve("waflow.db")),
    };
    (location, keep, lease)
}

/// `http_actions.allow_hosts`, as hosts compare: lowercase, no final dot.
pub(super) fn allow_hosts(raw: &raw::HttpActionsRaw) -> Vec<String> {
    raw.allow_hosts
        .iter()
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
        .collect()
}

/// `server.listen`, or 127.0.0.1:8787.
pub(super) fn listen(
    server: &raw::Server,
    path: &Path,
    problems: &mut Diagnostics,
) -> Option<SocketAddr> {
    let Some(spanned) = &server.listen else {
        return Some(SocketAddr::from(([127, 0, 0, 1], 8787)));
    };
    match spanned.value.trim().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            let at = &spanned.referenced;
            problems.push(
                Diagnostic::at(
                    path,
                    at.line(),
                    at.column(),
                    format!("invalid listen address `{}`", spanned.value),
                )
                .with_hint("write IP:PORT, e.g. 127.0.0.1:8787"),
            );
            None
        }
    }
}

/// The `hours:` calendars, each in its own zone or the config's.
pub(super) fn calendars(
    hours: &BTreeMap<String, raw::CalendarRaw>,
    timezone: &Zone,
) -> BTreeMap<String, Calendar> {
    hours
        .iter()
        .map(|(name, c)| {
            let zone = c.timezone.clone().unwrap_or_else(|| timezone.clone());
            (name.clone(), Calendar::new(zone, &c.open, &c.holidays))
        })
        .collect()
}

/// The `safety:` section over its defaults.
pub(super) fn safety(
    raw: raw::SafetyRaw,
    timezone: &Zone,
    hours: &BTreeMap<String, Calendar>,
    path: &Path,
    problems: &mut Diagnostics,
) -> Safety {
    let d = Safety::default();
    let o = raw.opt_out;
    let normalized = |list: Option<Vec<String>>, default: Vec<String>| {
        list.map_or(default, |l| l.iter().map(|k| normalize(k)).collect())
    };
    Safety {
        opt_out: OptOut {
            enabled: o.enabled.unwrap_or(d.opt_out.enabled),
            keywords: normalized(o.keywords, d.opt_out.keywords),
            confirmation: o.confirmation.unwrap_or(d.opt_out.confirmation),
            resume_keywords: normalized(o.resume_keywords, d.opt_out.resume_keywords),
            resume_confirmation: o
                .resume_confirmation
                .unwrap_or(d.opt_out.resume_confirmation),
        },
        repeat_window: raw
            .repeat_window
            .map_or(d.repeat_window, HumanDuration::get),
        per_chat_ceiling: ceiling(
            raw.per_chat_ceiling.as_deref(),
            d.per_chat_ceiling,
            path,
            problems,
        ),
        cold_guard: raw.cold_guard.unwrap_or(d.cold_guard),
        cold_daily_cap: raw.cold_daily_cap.unwrap_or(d.cold_daily_cap),
        quiet_hours: quiet_hours(raw.quiet_hours.as_ref(), timezone, hours, path, problems),
        ban_breaker: ban_breaker(&raw.ban_breaker, d.ban_breaker),
        loop_breaker: loop_breaker(&raw.loop_breaker, d.loop_breaker),
    }
}

/// `safety.per_chat_ceiling`: `COUNT/WINDOW`, `off`, or the default.
fn ceiling(
    text: Option<&str>,
    default: Option<Rate>,
    path: &Path,
    problems: &mut Diagnostics,
) -> Option<Rate> {
    match text.map(str::trim) {
        None => default,
        Some("off") => None,
        Some(text) => match text.parse::<Rate>() {
            Ok(rate) => Some(rate),
            Err(e) => {
                problems.push(
                    Diagnostic::file_level(path, format!("safety.per_chat_ceiling: {e}"))
                        .with_hint("write COUNT/WINDOW such as 3/10m, or off"),
                );
                None
            }
        },
    }
}

/// `safety.quiet_hours`, or the default quiet hours in the config's zone.
fn quiet_hours(
    spanned: Option<&serde_saphyr::Spanned<String>>,
    timezone: &Zone,
    hours: &BTreeMap<String, Calendar>,
    path: &Path,
    problems: &mut Diagnostics,
) -> Option<QuietHours> {
    let Some(spanned) = spanned else {
        return QuietHours::default_in(timezone);
    };
    match QuietHours::parse(&spanned.value, timezone, hours) {
        Ok(q) => q,
        Err((message, hint)) => {
            let at = &spanned.referenced;
            problems.push(
                Diagnostic::at(
                    path,
                    at.line(),
                    at.column(),
                    format!("safety.quiet_hours: {message}"),
                )
                .with_hint(hint),
            );
            None
        }
    }
}

fn ban_breaker(b: &raw::BanBreakerRaw, d: BanBreaker) -> BanBreaker {
    BanBreaker {
        enabled: b.enabled.unwrap_or(d.enabled),
        pause: b.pause.map_or(d.pause, HumanDuration::get),
        max_pause: b.max_pause.map_or(d.max_pause, HumanDuration::get),
        slow_start: b.slow_start.unwrap_or(d.slow_start),
        slow_interval: b.slow_interval.map_or(d.slow_interval, HumanDuration::get),
    }
}

fn loop_breaker(l: &raw::LoopBreakerRaw, d: LoopBreaker) -> LoopBreaker {
    LoopBreaker {
        enabled: l.enabled.unwrap_or(d.enabled),
        faster_than: l.faster_than.map_or(d.faster_than, HumanDuration::get),
        replies: l.replies.unwrap_or(d.replies).max(1),
        mute: l.mute.map_or(d.mute, HumanDuration::get),
    }
}

/// `pacing:` over its defaults.
pub(super) fn pacing(raw: &raw::PacingRaw) -> Pacing {
    let d = Pacing::default();
    Pacing {
        min_interval: raw.min_interval.map_or(d.min_interval, HumanDuration::get),
        per_chat: raw.per_chat.unwrap_or(d.per_chat),
        typing_delay: raw.typing_delay.unwrap_or(d.typing_delay),
    }
}

/// `retry:` over its defaults; at least one attempt.
pub(super) fn retry(raw: &raw::RetryRaw) -> Retry {
    let d = Retry::default();
    Retry {
        attempts: raw.attempts.unwrap_or(d.attempts).max(1),
        backoff: raw.backoff.map_or(d.backoff, HumanDuration::get),
        max_backoff: raw.max_backoff.map_or(d.max_backoff, HumanDuration::get),
        relogin_probe: raw
            .relogin_probe
            .map_or(d.relogin_probe, HumanDuration::get),
        echo_wait: raw.echo_wait.map_or(d.echo_wait, HumanDuration::get),
    }
}

/// `server:` over its defaults, listening on `listen`.
pub(super) fn server(
    raw: raw::Server,
    listen: SocketAddr,
    path: &Path,
    problems: &mut Diagnostics,
) -> ServerConfig {
    let console =
        super::console::compile(raw.console.as_ref()).unwrap_or_else(|(message, hint)| {
            problems.push(Diagnostic::file_level(path, message).with_hint(hint));
            None
        });
    ServerConfig {
        console,
        listen,
        webhook_secret: raw.webhook_secret.and_then(Secret::new),
        max_body: raw.max_body.map_or(1 << 20, |s| s.0),
        read_timeout: raw
            .read_timeout
            .map_or(Duration::from_secs(10), HumanDuration::get),
        max_connections: raw.max_connections.map_or(256, |n| n.max(1) as usize),
    }
}
