//! `waflow status` and `waflow outbox list|retry|drop`: read and mend the store
//! of a daemon, running or not.

use clap::Subcommand;
use serde_json::json;

use super::{Cli, CliError, Output};
use crate::config::StoreLocation;
use crate::store::{self, Direct};

/// The store of `config`, opened beside a daemon that may be running.
pub(super) fn reader(config: &crate::config::Config) -> Result<Direct, CliError> {
    let path = match &config.store {
        StoreLocation::File(path) => path,
        StoreLocation::Postgres(url) => {
            return Direct::connect(url.expose()).map_err(|e| CliError::Invalid(e.to_string()));
        }
        StoreLocation::Memory => {
            return Err(CliError::Invalid(
                "the store is in memory (store: \":memory:\"): nothing to read".into(),
            ));
        }
    };
    if !path.exists() {
        return Err(CliError::Invalid(format!(
            "no store at {}: the daemon has not run with this config yet",
            path.display()
        )));
    }
    Direct::open(path).map_err(|e| CliError::Invalid(e.to_string()))
}

/// `waflow status`: every instance, configured or with rows in the store
/// (`--instance` picks one).
pub fn status(cli: &Cli, out: &Output) -> Result<(), CliError> {
    let config = super::load_config(cli)?;
    let store = reader(&config)?;
    let err = |e: store::StoreError| CliError::Invalid(e.to_string());
    let mut names: Vec<String> = config.instances.iter().map(|i| i.name.clone()).collect();
    for stored in store.run(|tx| tx.stored_instances()).map_err(err)? {
        if !names.contains(&stored) {
            names.push(stored);
        }
    }
    if let Some(only) = &cli.instance {
        if !names.contains(only) {
            config.select(Some(only)).map_err(CliError::Invalid)?;
        }
        names.retain(|n| n == only);
    }
    let several = names.len() > 1;
    let (mut text, mut reports) = (String::new(), Vec::new());
    for name in &names {
        let report = store
            .run(|tx| tx.status_report(name, crate::units::now_ms()))
            .map_err(err)?;
        let view = config.instance(name).map(|i| config.view(i));
        if several {
            text.push_str(&format!("[{name}]\n"));
        }
        text.push_str(&instance_text(view.as_ref(), &report));
        reports.push(json!({
            "name": name,
            "configured": view.is_some(),
            "instance": view.as_ref().and_then(|v| v.api.instance_id.clone()),
            "dry_run": view.as_ref().is_none_or(|v| v.dry_run),
            "report": report,
        }));
    }
    let unknown = store.run(|tx| tx.unknown_instance_events()).map_err(err)?;
    if !unknown.is_empty() {
        text.push_str("events of instances that are not configured (ignored):\n");
        for (id, n) in &unknown {
            text.push_str(&format!("  {id}: {n}\n"));
        }
    }
    let leases = store.run(|tx| tx.leases()).map_err(err)?;
    text.push_str(&processes_text(&leases, crate::units::now_ms()));
    let mut body = reports.first().cloned().unwrap_or_else(|| json!({}));
    body["instances"] = json!(reports);
    body["unknown_instances"] = json!(unknown);
    body["leases"] = json!(leases);
    out.success(text.trim_end(), body);
    Ok(())
}

/// The processes running on the store (their presence leases), each with
/// the leases it holds: which numbers it sends for, whether it fires the
/// schedules. Nothing when no daemon ever ran on this store version.
fn processes_text(leases: &[store::LeaseRow], now: i64) -> String {
    if leases.is_empty() {
        return String::new();
    }
    let age =
        |ms: i64| crate::units::format_duration(std::time::Duration::from_millis(ms.max(0) as u64));
    let mut text = String::from("processes:\n");
    let running: Vec<&store::LeaseRow> =
        leases.iter().filter(|l| l.is_live_presence(now)).collect();
    if running.is_empty() {
        text.push_str("  none running\n");
    }
    for process in running {
        text.push_str(&format!(
            "  {} (up {})\n",
            process.holder,
            age(now - process.acquired_at)
        ));
        for lease in leases
            .iter()
            .filter(|l| l.holder == process.holder && !l.name.starts_with("process:"))
            .filter(|l| l.expires_at > now)
        {
            text.push_str(&format!(
                "    {} (generation {}, held for {}, expires in {})\n",
                lease.name,
                lease.generation,
                age(now - lease.acquired_at),
                age(lease.expires_at - now),
            ));
        }
    }
    text
}

/// One instance's part of `waflow status`; `view` is `None` for an
/// instance that is no longer configured.
fn instance_text(view: Option<&crate::config::Config>, report: &store::StatusReport) -> String {
    let mode = match view {
        None => "not configured (its rows stay; they go out if it comes back)".to_owned(),
        Some(v) => v
            .dry_run_reason()
            .map_or_else(|| "live".to_owned(), |r| format!("dry-run ({r})")),
    };
    let mut text = format!(
        "instance:      {}\nmode:          {}\nsending:       {}\nevents:        {} received, {} waiting\noutbox:        {} waiting, {} sent, {} dead letters, {} blocked, {} dry-run\n",
        view.and_then(|v| v.api.instance_id.as_deref())
            .unwrap_or("(not set)"),
        mode,
        report
            .sending_paused
            .as_deref()
            .map_or_else(|| "ok".to_owned(), |p| format!("PAUSED: {p}")),
        report.events,
        report.inbox_waiting,
        report.queue_depth,
        report.sent,
        report.dead_letters,
        report.blocked,
        report.dry_run,
    );
    if !report.paused_chats.is_empty() {
        text.push_str("human takeover:\n");
        for (chat, until) in &report.paused_chats {
            text.push_str(&format!(
                "  {chat} until {}\n",
                crate::units::ms_text(*until)
            ));
        }
    }
    let schedules = view
        .map(|v| next_fires(v, &report.schedules))
        .unwrap_or_default();
    if !schedules.is_empty() {
        text.push_str("schedules:\n");
        for (rule, zone, last, next) in &schedules {
            text.push_str(&format!(
                "  {rule} ({zone}): last {}, next {}\n",
                last.map_or_else(|| "never".to_owned(), crate::units::ms_text),
                next.as_deref().unwrap_or("never")
            ));
        }
    }
    if !report.lists.is_empty() {
        text.push_str("lists:\n");
        for list in &report.lists {
            text.push_str(&list_text(list));
        }
    }
    if !report.last_errors.is_empty() {
        text.push_str("last errors:\n");
        for (id, rule, error, at) in &report.last_errors {
            text.push_str(&format!(
                "  #{id} {rule} ({}): {error}\n",
                crate::units::ms_text(*at)
            ));
        }
    }
    text
}

/// One list fire of `waflow status`: its rows, its sends by state and why.
fn list_text(list: &store::ListProgress) -> String {
    let fired = crate::units::ms_text(list.fired_at);
    if let Some(error) = &list.error {
        return format!("  {} at {fired}: {error}\n", list.rule);
    }
    let by = |counts: &std::collections::BTreeMap<String, i64>| {
        let total: i64 = counts.values().sum();
        let parts: Vec<String> = counts.iter().map(|(why, n)| format!("{why} {n}")).collect();
        if parts.is_empty() {
            "0".to_owned()
        } else {
            format!("{total} ({})", parts.join(", "))
        }
    };
    let mut text = format!(
        "  {} ({}) at {fired}: {} rows, {} planned, {} left out by where, {} bad\n    sent {}, waiting {}, blocked {}, dead letters {}\n",
        list.rule,
        list.source,
        list.total,
        list.planned,
        list.excluded,
        list.bad,
        list.sent,
        by(&list.waiting),
        by(&list.blocked),
        list.dead,
    );
    for left in list.left_out.iter().filter(|l| l.bad).take(5) {
        text.push_str(&format!(
            "    bad row, line {}: {}\n",
            left.line, left.reason
        ));
    }
    text
}

/// Each schedule rule: name, zone, last fire (from the store), next fire (in its zone).
fn next_fires(
    config: &crate::config::Config,
    last: &[(String, i64)],
) -> Vec<(String, String, Option<i64>, Option<String>)> {
    let Ok(rules) = super::load_rules(config, Vec::new()) else {
        return Vec::new();
    };
    let now = jiff::Timestamp::now();
    rules
        .rules
        .iter()
        .filter_map(|r| match &r.trigger {
            crate::rules::Trigger::Schedule(spec) => {
                let next = crate::schedule::next_after(&spec.cron, &r.zone.tz, now).map(|t| {
                    t.to_zoned(r.zone.tz.clone())
                        .strftime("%Y-%m-%d %H:%M:%S %:z")
                        .to_string()
                });
                let last = last
                    .iter()
                    .find(|(name, _)| *name == r.name)
                    .map(|(_, at)| *at);
                r.serves(config.name())
                    .then(|| (r.name.clone(), r.zone.name.clone(), last, next))
            }
            _ => None,
        })
        .collect()
}

/// The outbox subcommands.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List outbox rows (newest first)
    List {
        /// Only dead letters
        #[arg(long)]
        dead: bool,
        /// Only rows waiting to be sent
        #[arg(long)]
        pending: bool,
        /// At most this many rows
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Put a dead letter (or all with --all-dead) back in the queue
    Retry {
        /// The row id
        #[arg(required_unless_present = "all_dead")]
        id: Option<i64>,
        /// Every dead letter
        #[arg(long)]
        all_dead: bool,
    },
    /// Drop a row that is waiting or dead: it will not be sent
    Drop {
        /// The row id
        id: i64,
    },
}

/// Runs one outbox subcommand.
pub fn outbox(cli: &Cli, cmd: &OutboxCommand, out: &Output) -> Result<(), CliError> {
    let store = reader(&super::load_config(cli)?)?;
    let now = crate::units::now_ms();
    let err = |e: store::StoreError| CliError::Invalid(e.to_string());
    match cmd {
        OutboxCommand::List {
            dead,
            pending,
            limit,
        } => {
            let mut states = Vec::new();
            if *dead {
                states.push("dead");
            }
            if *pending {
                states.extend(["pending", "inflight"]);
            }
            let rows = store
                .run(|tx| tx.list_outbox(cli.instance.as_deref(), &states, *limit))
                .map_err(err)?;
            let mut text = String::new();
            for r in &rows {
                text.push_str(&format!(
                    "#{:<5} {:<10} {:<8} {:<20} attempts={} {}{}\n",
                    r.id,
                    r.instance,
                    r.state,
                    r.rule,
                    r.attempts,
                    r.action.display(),
                    r.last_error
                        .as_ref()
                        .map(|e| format!("\n       error: {e}"))
                        .unwrap_or_default()
                ));
            }
            if rows.is_empty() {
                text.push_str("(no rows)");
            }
            out.success(text.trim_end(), json!({ "rows": rows }));
        }
        OutboxCommand::Retry { id, all_dead } => {
            let n = store
                .run(|tx| {
                    let id = if *all_dead { None } else { *id };
                    tx.retry_outbox(id, cli.instance.as_deref(), now)
                })
                .map_err(err)?;
            if n == 0 {
                return Err(CliError::Invalid(
                    "nothing to retry: no such dead or blocked row".into(),
                ));
            }
            out.success(
                &format!("{n} row(s) queued again; the running daemon sends them"),
                json!({ "retried": n }),
            );
        }
        OutboxCommand::Drop { id } => {
            let n = store.run(|tx| tx.drop_outbox(*id, now)).map_err(err)?;
            if n == 0 {
                return Err(CliError::Invalid(format!(
                    "#{id}: no such waiting or dead row"
                )));
            }
            out.success(&format!("#{id} dropped"), json!({ "dropped": id }));
        }
    }
    Ok(())
}

/// The opt-out subcommands.
#[derive(Debug, Subcommand)]
pub enum OptoutCommand {
    /// List the numbers that opted out
    List,
    /// Put a number on the list: nothing will be sent to it
    Add {
        /// The phone number
        number: String,
    },
    /// Take a number off the list
    Remove {
        /// The phone number
        number: String,
    },
}

/// Runs one opt-out subcommand.
pub fn optout(cli: &Cli, cmd: &OptoutCommand, out: &Output) -> Result<(), CliError> {
    let config = super::load_config(cli)?;
    let store = reader(&config)?;
    let chosen = || {
        config
            .select(cli.instance.as_deref())
            .map(|i| i.name.clone())
            .map_err(CliError::Invalid)
    };
    let err = |e: store::StoreError| CliError::Invalid(e.to_string());
    let number =
        |n: &str| crate::api::normalize_number(n).map_err(|e| CliError::Invalid(e.to_string()));
    match cmd {
        OptoutCommand::List => {
            let mut rows = store.run(|tx| tx.opt_outs()).map_err(err)?;
            if let Some(only) = &cli.instance {
                rows.retain(|(i, _, _)| i == only);
            }
            let text = if rows.is_empty() {
                "(nobody opted out)".to_owned()
            } else {
                rows.iter()
                    .map(|(i, n, since)| {
                        format!("{n}  since {}  ({i})", crate::units::ms_text(*since))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let list: Vec<_> = rows
                .iter()
                .map(|(i, n, s)| json!({ "instance": i, "number": n, "since_ms": s }))
                .collect();
            out.success(&text, json!({ "opt_outs": list }));
        }
        OptoutCommand::Add { number: n } => {
            let (n, instance) = (number(n)?, chosen()?);
            let added = store
                .run(|tx| tx.opt_out(&instance, &n, crate::units::now_ms()))
                .map_err(err)?;
            out.success(
                &if added {
                    format!("{n} opted out")
                } else {
                    format!("{n} was already opted out")
                },
                json!({ "number": n, "instance": instance, "changed": added }),
            );
        }
        OptoutCommand::Remove { number: n } => {
            let (n, instance) = (number(n)?, chosen()?);
            let removed = store.run(|tx| tx.opt_in(&instance, &n)).map_err(err)?;
            out.success(
                &if removed {
                    format!("{n} removed from the opt-out list")
                } else {
                    format!("{n} was not on the opt-out list")
                },
                json!({ "number": n, "instance": instance, "changed": removed }),
            );
        }
    }
    Ok(())
}
