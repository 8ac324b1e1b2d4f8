//! The benchmark's PostgreSQL side: a new database per round on the
//! server `bench/run.sh` started (`BENCH_POSTGRES=1`), the daemon's config
//! pointed at it, and the server's own CPU time (the postmaster and every
//! backend it started), read from `/proc` like the daemon's.

use std::path::Path;

/// A new, empty database on the server of `admin_url` (its `postgres`
/// database); its address.
pub fn new_database(admin_url: &str, name: &str) -> String {
    let (admin, name) = (admin_url.to_owned(), name.to_owned());
    // The synchronous client cannot run on the benchmark's async thread.
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("connect");
        // One statement each: neither may run inside a transaction block.
        for sql in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            client.batch_execute(&sql).expect("create the database");
        }
        match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => admin,
        }
    })
    .join()
    .expect("create the database")
}

/// Points the daemon's config in `dir` at the database `url`.
pub fn use_database(dir: &Path, url: &str) {
    let path = dir.join("waflow.yaml");
    let config = std::fs::read_to_string(&path).expect("config");
    std::fs::write(
        &path,
        config.replace("store: waflow.db", &format!("store: \"{url}\"")),
    )
    .expect("config");
}

/// CPU seconds of the server: the postmaster, its live children and the
/// children it has reaped.
pub fn server_cpu_seconds(postmaster: u32) -> f64 {
    let mut ticks = stat_ticks(postmaster, true);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if parent_of(pid) == Some(postmaster) {
                ticks += stat_ticks(pid, false);
            }
        }
    }
    ticks / 100.0
}

/// The fields of `/proc/PID/stat` after the command name.
fn stat_fields(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after.split_whitespace().map(str::to_owned).collect()
}

fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid).get(1)?.parse().ok()
}

/// utime + stime (and, with `reaped`, cutime + cstime) in clock ticks.
fn stat_ticks(pid: u32, reaped: bool) -> f64 {
    let fields = stat_fields(pid);
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let own = field(11) + field(12);
    if reaped {
        own + field(13) + field(14)
    } else {
        own
    }
}
