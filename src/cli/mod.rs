//! The command line: arguments, the command that runs, and the exit code.
//!
//! Arguments are parsed by clap into [`Cli`]; each command lives in a file of
//! its own and returns `Result<(), CliError>`. Exit codes are fixed by the
//! contract: 0 ok, 1 invalid input or a failed check, 2 usage error (clap),
//! 3 the remote API refused or could not be reached.

mod check;
mod cron;
mod explain;
mod init;
mod instance;
pub mod log;
mod manual;
mod migrate;
mod output;
mod preview;
mod run;
pub mod schema;
mod send;
mod simulate;
mod status;
mod test;
mod webhook;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::api::{ApiClient, ApiError};
use crate::config::{Config, ConfigError};
use crate::rules::{LoadOptions, RuleSet};

pub use output::Output;

/// The version and the commit it was built from (`waflow --version`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("WAFLOW_COMMIT"), ")");

/// waflow: workflow automation for the hosted WhatsApp Web API.
#[derive(Debug, Parser)]
#[command(name = "waflow", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    /// The config file [default: $WAFLOW_CONFIG, then ./waflow.yaml, then examples/waflow.yaml]
    #[arg(short, long, global = true, env = "WAFLOW_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,

    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// The instance (number) to work on, when the config has several
    #[arg(long, global = true, env = "WAFLOW_INSTANCE", value_name = "NAME")]
    pub instance: Option<String>,

    /// More log output (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for journald or a log shipper.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a first config and starter rules with their tests into a folder
    Init(init::InitArgs),
    /// Run the daemon: webhook listener, rules, outbox
    Run(run::RunArgs),
    /// Show the daemon's state: queue, dead letters, pauses, last errors
    Status,
    /// List, retry or drop outbox rows
    #[command(subcommand)]
    Outbox(status::OutboxCommand),
    /// The opt-out list: numbers nothing is sent to
    #[command(subcommand)]
    Optout(status::OptoutCommand),
    /// Validate the config and the rules; every problem as FILE:LINE:COL
    Check,
    /// Copy the SQLite store into a new PostgreSQL database (the daemon stopped)
    Migrate(migrate::MigrateArgs),
    /// Run rule unit tests (YAML files or folders of them)
    Test(test::TestArgs),
    /// Show which rules an event matches and the API calls they would make
    Simulate(simulate::SimulateArgs),
    /// Why the bot did what it did: an event's rules, sends and their delivery
    Explain(explain::ExplainArgs),
    /// Print the JSON Schema of rule files (for editor completion)
    Schema,
    /// Cron expressions: when do they fire?
    #[command(subcommand)]
    Cron(cron::CronCommand),
    /// Send a text or a file to a phone number
    Send(send::SendArgs),
    /// Send a text or a file to a group
    SendGroup(send::SendGroupArgs),
    /// Send interactive buttons (quick reply, URL, call, copy) to a phone number
    SendButtons(send::SendButtonsArgs),
    /// Send a list message to a phone number
    SendList(send::SendListArgs),
    /// Manage the WhatsApp instance: create, log in, reboot, reset, reconnect, log out
    #[command(subcommand)]
    Instance(instance::InstanceCommand),
    /// Point the API's webhook at this daemon
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// Print shell completions (bash, zsh, fish)
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: manual::Shell,
    },
    /// Print the man page (roff): waflow man > waflow.1
    Man,
}

/// A failed command, sorted by exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The input (config, rules, arguments) is invalid: exit 1.
    #[error("{0}")]
    Invalid(String),
    /// The config has problems: exit 1.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The remote API refused or could not be reached: exit 3.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Writing output failed: exit 1.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A check or test failed; its report is already printed: exit 1.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The exit code of the contract.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Api(_) => 3,
            _ => 1,
        }
    }
}

/// Runs the parsed command line and returns the process exit code.
pub async fn main(cli: Cli) -> ExitCode {
    let out = Output { json: cli.json };
    match run(&cli, &out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            out.error(&err);
            ExitCode::from(err.exit_code())
        }
    }
}

async fn run(cli: &Cli, out: &Output) -> Result<(), CliError> {
    match &cli.command {
        Command::Init(args) => init::run(args, out),
        Command::Completions { shell } => manual::completions(*shell),
        Command::Man => manual::man(),
        Command::Run(args) => run::run(cli, args).await,
        Command::Status => status::status(cli, out),
        Command::Outbox(cmd) => status::outbox(cli, cmd, out),
        Command::Optout(cmd) => status::optout(cli, cmd, out),
        Command::Check => check::run(cli, out),
        Command::Migrate(args) => migrate::run(cli, args, out),
        Command::Test(args) => test::run(cli, args, out),
        Command::Simulate(args) => simulate::run(cli, args, out),
        Command::Explain(args) => explain::run(cli, args, out),
        Command::Cron(cmd) => cron::run(cmd, out),
        Command::Schema => {
            schema::run();
            Ok(())
        }
        Command::Send(args) => send::send(&api_client(cli)?, args, out).await,
        Command::SendGroup(args) => send::send_group(&api_client(cli)?, args, out).await,
        Command::SendButtons(args) => send::send_buttons(&api_client(cli)?, args, out).await,
        Command::SendList(args) => send::send_list(&api_client(cli)?, args, out).await,
        Command::Instance(cmd) => instance::run(&api_client(cli)?, cmd, out).await,
        Command::Webhook(cmd) => webhook::run(&api_client(cli)?, cmd, out).await,
    }
}

/// Loads the config the command line points at, saying so when the embedded default is used.
pub fn load_config(cli: &Cli) -> Result<Config, CliError> {
    let (path, is_example) = Config::locate(cli.config.as_deref())?;
    if is_example {
        tracing::info!(path = %path.display(), "no config given; using the embedded default");
    }
    Ok(Config::load(&path)?)
}

/// The config as the instance the command line names sees it
/// (`--instance`, or the only one), with the names of all of them.
pub fn load_instance(cli: &Cli) -> Result<(Config, Vec<String>), CliError> {
    let config = load_config(cli)?;
    let chosen = config
        .select(cli.instance.as_deref())
        .map_err(CliError::Invalid)?;
    let names = config.instances.iter().map(|i| i.name.clone()).collect();
    Ok((config.view(chosen), names))
}

/// The rules of an instance's view of the config; `names` are all the
/// configured instances (for rules' `instance:`).
pub fn load_rules(view: &Config, names: Vec<String>) -> Result<RuleSet, CliError> {
    let options = LoadOptions::from_config(view, names);
    crate::rulefiles::load(&view.rules, &options)
        .map_err(|d| CliError::Config(ConfigError::Invalid(d)))
}

/// The API client of the instance the command line names.
fn api_client(cli: &Cli) -> Result<ApiClient, CliError> {
    let (view, _) = load_instance(cli)?;
    Ok(ApiClient::new(&view.api)?)
}
