//! waflow: workflow automation for the hosted "WhatsApp Web API".
//!
//! The modules, from the bottom layer up; each imports only layers below
//! it (data flows webhook / schedule → event → rules → outbox → api):
//!
//! - [`secret`], [`units`], [`metrics`]: strings never printed; durations,
//!   rates, zones and business calendars; metric names.
//! - [`event`]: every webhook envelope normalized into one event type, its
//!   inbox key, phone numbers of `@lid` aliases.
//! - [`config`]: the config file, read once into typed values (the safety
//!   settings included).
//! - [`api`]: the client of the remote API; the only module that knows its shapes.
//! - [`schedule`]: cron expressions and DST-correct fire times (pure).
//! - [`rules`]: rule texts compiled once, evaluated purely into planned actions.
//! - [`lists`]: reading the contact lists of `for_each` rules (CSV, YAML,
//!   a URL's JSON) and checking them against the rules that read them.
//! - [`rulefiles`]: reading rule files (and checking their lists).
//! - [`store`]: typed transactions over SQLite; the only module with SQL.
//! - [`guard`]: the protections (opt-out, repeats, ceilings, cold contacts,
//!   quiet hours, the loop breaker) as checks over a transaction.
//! - [`runtime`]: what the daemon's tasks share (config and rules in force,
//!   the store, the clock, wake-ups).
//! - [`outbox`]: everything about a planned send: rows, claim, pacing,
//!   sending, confirmation, retries, dead letters, the ban-signal breaker,
//!   `http` actions.
//! - [`pipeline`]: recorded events → rules → outbox rows, in one transaction.
//! - [`server`]: the HTTP listener; records events, answers after the commit.
//! - [`daemon`]: wiring: tasks, processor, reload, scheduler, signals.
//! - [`cli`]: the command line; [`ruletest`]: rule unit tests (`waflow
//!   test`); [`qr`]: the login QR code in a terminal.
//!
//! Invariants: the access token never appears in a log line, an error
//! message or `Debug` output; every parser of outside input returns an
//! error instead of panicking.

pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod event;
pub mod guard;
pub mod lease;
pub mod lists;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod qr;
pub mod rulefiles;
pub mod rules;
pub mod ruletest;
pub mod runtime;
pub mod schedule;
pub mod secret;
pub mod server;
pub mod store;
pub mod units;
