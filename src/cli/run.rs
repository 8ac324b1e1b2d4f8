//! `waflow run`: the daemon.

use clap::Args;

use super::{Cli, CliError};
use crate::config::Config;

/// Arguments of `waflow run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Record and log every action, send nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Starts the daemon and runs it until SIGTERM.
pub async fn run(cli: &Cli, args: &RunArgs) -> Result<(), CliError> {
    let (path, is_example) = Config::locate(cli.config.as_deref())?;
    if is_example {
        tracing::info!(path = %path.display(), "no config given: starting on the embedded default");
    }
    crate::daemon::run(path, args.dry_run)
        .await
        .map_err(|e| CliError::Invalid(format!("{e:#}")))
}
