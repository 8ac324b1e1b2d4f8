//! Pinning for a fair comparison: on a machine with two or more cores each
//! server under test runs alone on core 1, while the load generator and the
//! mock API (this process) share core 0, so neither side is slowed by the
//! traffic it is measured with. `BENCH_PIN=0` turns it off (shared cores,
//! the method of the earlier tables in docs/performance.md).

use std::process::Command;

/// The core the servers under test run on.
const SERVER_CORE: &str = "1";
/// The core of the load generator and the mock API.
const LOAD_CORE: &str = "0";

/// Whether this run pins: asked for (the default), two cores or more, and
/// `taskset` (util-linux) available.
pub fn enabled() -> bool {
    let wanted = std::env::var("BENCH_PIN").map_or(true, |v| v != "0");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    wanted
        && cores >= 2
        && Command::new("taskset")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Moves every thread of this process onto the load core.
pub fn pin_self() {
    let pid = std::process::id().to_string();
    let status = Command::new("taskset")
        .args(["-a", "-c", "-p", LOAD_CORE, &pid])
        .stdout(std::process::Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("could not pin the load generator to core {LOAD_CORE}");
    }
}

/// A command that runs `program` on the server core when `pin` is set.
pub fn command(program: &std::path::Path, pin: bool) -> Command {
    if pin {
        let mut command = Command::new("taskset");
        command.args(["-c", SERVER_CORE]).arg(program);
        command
    } else {
        Command::new(program)
    }
}
