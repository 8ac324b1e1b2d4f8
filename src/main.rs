//! The `waflow` binary: parse the command line, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use waflow::cli::{Cli, LogFormat};

/// Requests are allocated on the async thread and freed on the store's writer
/// thread; glibc's allocator paid for that with locks and chunk merging on
/// every request (docs/performance.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.verbose {
        0 => "waflow=info",
        1 => "waflow=debug",
        _ => "waflow=trace",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Pretty => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
    // One async thread: with the store's writer thread that makes two, the
    // cores of a small server, and fewer hand-offs between threads (less CPU
    // per event in the load test, docs/performance.md). Slow work (compiling
    // rules on reload) goes to blocking threads.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(waflow::cli::main(cli))
}
