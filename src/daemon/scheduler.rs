//! The scheduler task of the daemon: fires schedule rules through the same
//! inbox and outbox as webhook events.
//!
//! Each occurrence is recorded as an event keyed `fire:<rule>:<instant>`
//! together with the rule's last fire, in one transaction: a restart never
//! fires the same occurrence twice. Which missed occurrences still run is
//! [`catchup`]'s decision: each one at most a minute (or two leases) late,
//! and of the older ones the latest if within `catch_up`. Waits are
//! computed from the wall clock each time and capped, so a host that
//! slept or a clock that jumped is noticed. Only the
//! process that holds the scheduler lease fires; another one takes over
//! when it expires, from each schedule's last fire in the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::event::{Event, EventKind, Fire};
use crate::lease::Holding;
use crate::rules::{Rule, Trigger};
use crate::runtime::Shared;
use crate::schedule::{catchup, next_after};
use crate::store::NewEvent;

/// The longest single wait: time is re-read at least this often.
const RECHECK: Duration = Duration::from_secs(30);
/// How late a run may be and still fire without `catch_up`.
const GRACE: Duration = Duration::from_secs(60);

/// One schedule rule as the task tracks it.
#[derive(Debug, Clone, PartialEq)]
struct Tracked {
    /// Expression and zone: a change makes a new schedule.
    identity: String,
    /// The next occurrence.
    next: Option<Timestamp>,
}

fn identity(rule: &Rule, cron: &crate::schedule::Cron) -> String {
    format!("{} | {}", cron.source, rule.zone.name)
}

/// A schedule rule of one instance: a rule naming several instances fires
/// once for each.
type Key = (String, String);

/// Runs until `cancel` fires.
pub async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut tracked: HashMap<Key, Tracked> = HashMap::new();
    let mut lease = shared.lease(crate::lease::SCHEDULER.into());
    loop {
        match lease.hold(&shared.store).await {
            Holding::Kept => {}
            // Another process fires: what this one tracked goes stale.
            Holding::Not => {
                tracked.clear();
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(lease.retry_in()) => {}
                }
                continue;
            }
            // Taken over: every schedule starts again from its last fire in the store.
            Holding::Taken => tracked.clear(),
        }
        let loaded = shared.loaded();
        let now = shared.now();
        // Follow reloads: keep unchanged schedules, start new or changed ones, forget removed ones.
        let mut current = HashMap::new();
        for instance in &loaded.instances {
            for rule in instance
                .rules
                .rules
                .iter()
                .filter(|r| r.serves(&instance.name))
            {
                let Trigger::Schedule(spec) = &rule.trigger else {
                    continue;
                };
                let id = identity(rule, &spec.cron);
                let key = (instance.name.clone(), rule.name.clone());
                let entry = match tracked.remove(&key) {
                    Some(t) if t.identity == id => t,
                    _ => start(&shared, &instance.name, rule, &id, now).await,
                };
                current.insert(key, entry);
            }
        }
        tracked = current;

        // Fire what is due.
        for ((instance, name), entry) in tracked.iter_mut() {
            let Some(rule) = loaded.instance(instance).and_then(|i| i.rules.rule(name)) else {
                continue;
            };
            fire_due(&shared, instance, name, rule, entry).await;
            if let Some(next) = entry.next {
                metrics::gauge!(crate::metrics::SCHEDULE_NEXT, "instance" => instance.clone(), "rule" => name.clone())
                    .set(next.as_second() as f64);
            }
        }

        // Sleep until the earliest occurrence, a reload, or the next re-check.
        let now = shared.now();
        let wait = tracked
            .values()
            .filter_map(|t| t.next)
            .min()
            .map(|next| Duration::try_from(next.duration_since(now)).unwrap_or(Duration::ZERO))
            .map_or(RECHECK, |d| shared.clock.real(d).min(RECHECK))
            .min(lease.retry_in());
        tokio::select! {
            _ = cancel.cancelled() => {
                lease.release(&shared.store).await;
                return;
            }
            _ = shared.wake_scheduler.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Fires (or skips, when too late) the occurrences of one schedule that are due.
async fn fire_due(shared: &Shared, instance: &str, name: &str, rule: &Rule, entry: &mut Tracked) {
    let Trigger::Schedule(spec) = &rule.trigger else {
        return;
    };
    let now = shared.now();
    let Some(due) = entry.next.filter(|at| *at <= now) else {
        return;
    };
    let at_fire = Fired {
        instance,
        rule: name,
        id: &entry.identity,
    };
    let after = catchup::older_than(due);
    let plan = catchup::plan(&spec.cron, &rule.zone.tz, after, now, windows(shared, spec));
    carry_out(shared, &at_fire, plan, Missed::Late).await;
    entry.next = next_after(&spec.cron, &rule.zone.tz, now);
}

/// How late a run may be: see [`catchup`]. Every run at most
/// [`GRACE`] or two leases late fires — the longest a scheduler lease can
/// take to move after its holder died.
fn windows(shared: &Shared, spec: &crate::rules::ScheduleSpec) -> catchup::Windows {
    let recent = shared
        .clock
        .virtual_of(GRACE.max(shared.loaded().config.lease * 2));
    let signed = |d: Duration| SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    catchup::Windows {
        recent: signed(recent),
        catch_up: signed(spec.catch_up.unwrap_or_default()),
    }
}

/// Why runs were missed, for the log.
#[derive(Clone, Copy)]
enum Missed {
    /// The daemon was down, or another process held the scheduler lease.
    WhileDown,
    /// The timer woke late: the host slept or the clock jumped.
    Late,
}

/// Fires the planned runs in order; logs the skipped ones and, when
/// nothing fires, records them as handled.
async fn carry_out(shared: &Shared, of: &Fired<'_>, plan: catchup::Plan, missed: Missed) {
    let (instance, rule) = (of.instance, of.rule);
    if let Some((first, last)) = plan.skipped {
        match missed {
            Missed::WhileDown => {
                tracing::warn!(instance, rule, first = %first, last = %last, "runs missed while the daemon was down are skipped (set catch_up to run the latest of them late)")
            }
            Missed::Late => {
                tracing::warn!(instance, rule, first = %first, last = %last, "scheduled runs came too late (the host slept or the clock jumped): skipped; set catch_up to run the latest of them late")
            }
        }
        if plan.fire.is_empty() {
            record_skip(shared, of, last).await;
        }
    }
    if let (Missed::WhileDown, Some(first)) = (missed, plan.fire.first()) {
        tracing::info!(instance, rule, from = %first, runs = plan.fire.len(), "catching up runs missed while the daemon was down or its scheduler lease moved");
    }
    for at in plan.fire {
        fire(shared, of, at).await;
    }
}

/// Which schedule a fire or skip is of.
struct Fired<'a> {
    instance: &'a str,
    rule: &'a str,
    /// The schedule's identity (expression and zone).
    id: &'a str,
}

/// Starts tracking a rule: runs what it missed as [`catchup`] allows,
/// returns its next occurrence.
async fn start(shared: &Shared, instance: &str, rule: &Rule, id: &str, now: Timestamp) -> Tracked {
    let Trigger::Schedule(spec) = &rule.trigger else {
        return Tracked {
            identity: id.to_owned(),
            next: None,
        };
    };
    let at_fire = Fired {
        instance,
        rule: &rule.name,
        id,
    };
    let (owner, name, key) = (instance.to_owned(), rule.name.clone(), id.to_owned());
    let last = shared
        .store
        .call(move |c| c.last_fire(&owner, &name, &key))
        .await
        .ok()
        .flatten()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok());
    let next = next_after(&spec.cron, &rule.zone.tz, now);
    match last {
        Some(last) => {
            let plan = catchup::plan(&spec.cron, &rule.zone.tz, last, now, windows(shared, spec));
            carry_out(shared, &at_fire, plan, Missed::WhileDown).await;
        }
        None => {
            // A new schedule counts from now: nothing before it was missed.
            record_skip(shared, &at_fire, now).await;
            tracing::info!(instance, rule = %rule.name, cron = %spec.cron, zone = %rule.zone.name, next = %next.map(|t| t.to_string()).unwrap_or_default(), "schedule started");
        }
    }
    Tracked {
        identity: id.to_owned(),
        next,
    }
}

/// Remembers `at` as handled without firing (a skipped or not-yet-existing run).
async fn record_skip(shared: &Shared, of: &Fired<'_>, at: Timestamp) {
    let (instance, rule, id) = (of.instance.to_owned(), of.rule.to_owned(), of.id.to_owned());
    let ms = at.as_millisecond();
    if let Err(err) = shared
        .store
        .call(move |c| c.set_last_fire(&instance, &rule, &id, ms))
        .await
    {
        tracing::error!(error = %err, "cannot record a schedule's progress");
    }
}

/// Records the occurrence `at` of a schedule as an event and runs its
/// actions. A `for_each` rule's list is read first, whole: when it cannot
/// be, this occurrence sends nothing (recorded, so a restart does not
/// retry it) and the next one reads the list again.
async fn fire(shared: &Shared, of: &Fired<'_>, at: Timestamp) {
    let loaded = shared.loaded();
    let Some(instance) = loaded.instance(of.instance) else {
        return;
    };
    let mut event = Event {
        instance_id: instance.config.api.instance_id.clone(),
        kind: EventKind::Schedule(Fire {
            rule: of.rule.to_owned(),
            at,
            list: None,
        }),
        raw: serde_json::Value::Null,
    };
    let source = instance
        .rules
        .rule(of.rule)
        .and_then(|r| r.for_each.as_ref())
        .map(|each| each.source.clone())
        .filter(|source| source.is_external());
    if let Some(source) = source {
        match crate::lists::load(&source, &shared.list_client).await {
            Ok(list) => {
                if let EventKind::Schedule(fire) = &mut event.kind {
                    fire.list = Some(list);
                }
            }
            Err(err) => return list_failed(shared, of, at, &event, &source, err).await,
        }
    }
    let record = NewEvent::of(&instance.name, &event);
    let (owner, rule_name, key) = (of.instance.to_owned(), of.rule.to_owned(), of.id.to_owned());
    let ms = at.as_millisecond();
    let outcome =
        crate::pipeline::record_and_process(shared, vec![record], vec![event], move |c| {
            c.set_last_fire(&owner, &rule_name, &key, ms)
        })
        .await;
    let (instance, rule) = (of.instance, of.rule);
    match outcome {
        Ok(outcomes) if outcomes.iter().any(|(_, o)| *o == "accepted") => {
            tracing::info!(instance, rule, at = %at, "schedule fired");
        }
        Ok(_) => tracing::debug!(instance, rule, at = %at, "this occurrence had already fired"),
        Err(err) => tracing::error!(instance, rule, error = %err, "cannot record a schedule's run"),
    }
}

/// A list that could not be read: logged, counted, recorded for `waflow
/// status`, and the occurrence marked as handled.
async fn list_failed(
    shared: &Shared,
    of: &Fired<'_>,
    at: Timestamp,
    event: &Event,
    source: &crate::rules::ListSource,
    err: crate::lists::ListError,
) {
    let (instance, rule) = (of.instance, of.rule);
    tracing::error!(instance, rule, at = %at, error = %err, "the list could not be read: this run sends nothing; the next run reads it again");
    metrics::counter!(crate::metrics::LIST_ERRORS, "instance" => instance.to_owned(), "rule" => rule.to_owned())
        .increment(1);
    let list = crate::store::NewList {
        instance: instance.to_owned(),
        rule: rule.to_owned(),
        event_key: NewEvent::of(instance, event).key,
        inbox_id: None,
        source: source.describe(),
        total: 0,
        planned: 0,
        left_out: Vec::new(),
        error: Some(err.to_string()),
    };
    let (owner, name, key) = (instance.to_owned(), rule.to_owned(), of.id.to_owned());
    let (ms, now) = (at.as_millisecond(), shared.now().as_millisecond());
    let recorded = shared
        .store
        .call(move |c| {
            c.record_list(&list, now)?;
            c.set_last_fire(&owner, &name, &key, ms)
        })
        .await;
    if let Err(err) = recorded {
        tracing::error!(instance, rule, error = %err, "cannot record a schedule's progress");
    }
}
