//! waflow: workflow automation for the hosted "WhatsApp Web API".
//!
//! The modules, in the order data flows through them
//! (webhook / schedule → event → rules → outbox → dispatch → api):
//!
//! - [`config`]: the config file, read once into typed values.
//! - [`webhook`]: the HTTP listener; records events, answers after the commit.
//! - [`schedule`]: cron expressions, DST-correct fire times, the scheduler task.
//! - [`event`]: every webhook envelope normalized into one event type.
//! - [`rules`]: rule files compiled once, evaluated purely into planned actions.
//! - [`pipeline`]: recorded events → rules → outbox rows, in one transaction.
//! - [`safety`]: opt-out, repeat suppression, per-chat ceiling, cold contacts,
//!   quiet hours, the ban-signal breaker.
//! - [`calendar`]: business hours and holidays in a zone (`in_hours`, quiet hours).
//! - [`dispatch`]: the outbox worker: pacing, sending, retries, dead letters.
//! - [`api`]: the client of the remote API; the only module that knows its shapes.
//! - [`store`]: SQLite; the only module with SQL.
//! - [`daemon`]: wiring, reload, signals, the clock.
//! - [`metrics`]: metric names and the Prometheus recorder.
//! - [`cli`]: the command line: parse, run the command, map errors to exit codes.
//! - [`qr`]: drawing the login QR code in a terminal.
//! - [`secret`]: strings that must never be printed.
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
