//! The `waflow` binary: parse the command line, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use waflow::cli::Cli;

/// Requests are allocated on the async thread and freed on the store's writer
/// thread; glibc's allocator paid for that with locks and chunk merging on
/// every request (docs/performance.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    waflow::cli::log::init(cli.log_format, cli.verbose);
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
