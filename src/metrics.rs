//! Metric names and the Prometheus recorder rendered on `GET /metrics`.
//!
//! Names follow `waflow_<noun>_<unit>`. The recorder is installed once per
//! process by [`install`]; before that, recording a metric is a no-op, so
//! library code and tests may record freely.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Webhook and hook events, by `kind` and `outcome` (accepted, duplicate, ignored, unknown, other_instance).
pub const EVENTS: &str = "waflow_events_total";
/// Events recorded and not acted on, by reason (`unknown_instance`).
pub const EVENTS_IGNORED: &str = "waflow_events_ignored_total";
/// Connections answered 503 and closed because `server.max_connections` were open.
pub const CONNECTIONS_REFUSED: &str = "waflow_connections_refused_total";
/// Requests answered 408: the body came slower than `server.read_timeout`.
pub const SLOW_BODIES: &str = "waflow_slow_bodies_total";
/// Rule matches, by `rule`.
pub const RULE_MATCHES: &str = "waflow_rule_matches_total";
/// Planned and performed actions, by `kind` and `outcome` (sent, retry, dead, dry_run, blocked, failed).
pub const ACTIONS: &str = "waflow_actions_total";
/// Sends left in flight by a stop that their webhook echo confirmed (not sent again).
pub const ECHO_CONFIRMED: &str = "waflow_sends_confirmed_by_echo_total";
/// Outbox work announced by the store (any process of a shared PostgreSQL database), by `instance`.
pub const WORK_ANNOUNCED: &str = "waflow_work_announced_total";
/// Remote API call latency in seconds, by `endpoint`.
pub const API_LATENCY: &str = "waflow_api_latency_seconds";
/// Actions waiting in the outbox.
pub const OUTBOX_DEPTH: &str = "waflow_outbox_depth";
/// Dead letters.
pub const DEAD_LETTERS: &str = "waflow_dead_letters";
/// Reloads of config and rules, by `outcome` (ok, rejected).
pub const RELOADS: &str = "waflow_reloads_total";
/// 1 while all sending is paused (relogin required), else 0.
pub const SENDING_PAUSED: &str = "waflow_sending_paused";
/// Chats where a person took over, by outcome.
pub const HUMAN_TAKEOVERS: &str = "waflow_human_takeovers_total";
/// Chats muted by the loop breaker.
pub const LOOPS_BROKEN: &str = "waflow_loops_broken_total";
/// 1 while the ban-signal breaker pauses sending.
pub const BAN_BREAKER_OPEN: &str = "waflow_ban_breaker_open";
/// Rate-limit or restriction answers that paused sending.
pub const BAN_BREAKER_TRIPS: &str = "waflow_ban_breaker_trips_total";
/// The next fire time of each schedule rule (Unix seconds), by `rule`.
pub const SCHEDULE_NEXT: &str = "waflow_schedule_next_fire_timestamp_seconds";
/// Counter: store writes on the send path that failed, by `op` (what was being recorded).
pub const STORE_ERRORS: &str = "waflow_store_errors_total";
/// Counter: rows of contact lists (`for_each`), by `instance`, `rule` and
/// `outcome` (planned, excluded by `where:`, bad).
pub const LIST_ROWS: &str = "waflow_list_rows_total";
/// Counter: list fires whose list could not be read, by `instance` and `rule`.
pub const LIST_ERRORS: &str = "waflow_list_errors_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once); later calls return the same handle.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(API_LATENCY.to_owned()),
                    &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
                )
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

fn describe() {
    metrics::describe_counter!(EVENTS, "Webhook and hook events by kind and outcome");
    metrics::describe_counter!(
        WORK_ANNOUNCED,
        "Outbox work announced by the store, which wakes the instance's sender"
    );
    metrics::describe_counter!(EVENTS_IGNORED, "Events recorded and ignored, by reason");
    metrics::describe_counter!(RULE_MATCHES, "Rule matches by rule");
    metrics::describe_counter!(
        LIST_ROWS,
        "Contact-list rows by rule and outcome (planned, excluded, bad)"
    );
    metrics::describe_counter!(
        LIST_ERRORS,
        "List fires whose list could not be read, by rule"
    );
    metrics::describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused with 503 over server.max_connections"
    );
    metrics::describe_counter!(
        SLOW_BODIES,
        "Request bodies slower than server.read_timeout (408)"
    );
    metrics::describe_counter!(ACTIONS, "Actions by kind and outcome");
    metrics::describe_histogram!(
        API_LATENCY,
        metrics::Unit::Seconds,
        "Remote API call latency"
    );
    metrics::describe_gauge!(OUTBOX_DEPTH, "Actions waiting in the outbox");
    metrics::describe_gauge!(DEAD_LETTERS, "Dead letters");
    metrics::describe_counter!(RELOADS, "Config and rules reloads by outcome");
    metrics::describe_gauge!(
        SENDING_PAUSED,
        "1 while sending is paused: the number must log in again, or WhatsApp limited it"
    );
    metrics::describe_gauge!(
        BAN_BREAKER_OPEN,
        "1 while the ban-signal breaker pauses sending"
    );
    metrics::describe_counter!(
        BAN_BREAKER_TRIPS,
        "Rate-limit or restriction answers that paused all sending"
    );
    metrics::describe_counter!(LOOPS_BROKEN, "Chats muted because they answered like a bot");
    metrics::describe_counter!(
        HUMAN_TAKEOVERS,
        "Chats paused because a person wrote from the phone"
    );
    metrics::describe_gauge!(
        SCHEDULE_NEXT,
        "Next fire time of each schedule rule, Unix seconds"
    );
}
