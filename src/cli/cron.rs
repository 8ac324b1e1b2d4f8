//! `waflow cron next "EXPR" [--tz ZONE] [--after RFC3339] [--count N]`: the
//! next fire instants of an expression, one RFC 3339 timestamp per line with
//! the zone's offset at that instant. Needs no config.

use clap::{Args, Subcommand};
use serde_json::json;

use super::{CliError, Output};
use crate::config::Zone;
use crate::schedule::{Cron, next_n};

/// The cron subcommands.
#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// Print the next fire instants of a cron expression
    Next(NextArgs),
}

/// Arguments of `waflow cron next`.
#[derive(Debug, Args)]
pub struct NextArgs {
    /// The expression: 5 fields, 6 with seconds first, or a macro such as @daily
    pub expr: String,
    /// IANA time zone the expression is read in
    #[arg(long, default_value = "UTC", value_name = "ZONE")]
    pub tz: String,
    /// Start after this instant (RFC 3339, e.g. 2026-03-28T12:00:00Z) [default: now]
    #[arg(long, value_name = "RFC3339")]
    pub after: Option<String>,
    /// How many instants
    #[arg(long, default_value_t = 5)]
    pub count: usize,
}

/// Runs `cron next`.
pub fn run(cmd: &CronCommand, out: &Output) -> Result<(), CliError> {
    let CronCommand::Next(args) = cmd;
    let cron = Cron::parse(&args.expr).map_err(|e| CliError::Invalid(e.to_string()))?;
    let zone: Zone = args
        .tz
        .parse()
        .map_err(|e: crate::units::UnitError| CliError::Invalid(e.to_string()))?;
    let after: jiff::Timestamp = match &args.after {
        Some(text) => parse_instant(text)?,
        None => jiff::Timestamp::now(),
    };
    let fires = next_n(&cron, &zone.tz, after, args.count);
    let lines: Vec<String> = fires
        .iter()
        .map(|t| {
            t.to_zoned(zone.tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        })
        .collect();
    if lines.is_empty() {
        return Err(CliError::Invalid(format!(
            "`{}` never fires after {after}",
            args.expr
        )));
    }
    out.success(
        &lines.join("\n"),
        json!({ "expr": args.expr, "tz": zone.name, "next": lines }),
    );
    Ok(())
}

fn parse_instant(text: &str) -> Result<jiff::Timestamp, CliError> {
    text.parse::<jiff::Timestamp>().map_err(|e| {
        CliError::Invalid(format!(
            "--after `{text}` is not an RFC 3339 instant (e.g. 2026-03-28T12:00:00Z): {e}"
        ))
    })
}
