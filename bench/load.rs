//! End-to-end load test of `waflow run`, side by side with a baseline and the floor ([`floor`]).
//!
//! Starts a mock of the remote API, the real daemon (release build, durable
//! SQLite commits) and a baseline server that does the same
//! regex-and-forward job with no durability at all, then drives each one's
//! webhook with realistic payloads: at full speed, and at a fixed rate.
//! Reports events/s, p50/p99 answer latency, CPU time per event, peak RSS,
//! and sends expected vs received (lost or duplicated sends), for each of
//! `BENCH_ROUNDS` rounds (default 3), then the median ratios.
//!
//! Run it with `bench/run.sh` (which builds in release mode). Every request
//! goes to 127.0.0.1; loops are bounded in count and time. Each server is
//! pinned alone to a core of its own ([`pin`]); CPU per event comes from
//! the server's own `/proc` times.

mod baseline;
mod drive;
mod floor;
mod pg;
mod pin;
mod processes;
mod scale;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drive::{MATCH_PERCENT, Mock, drive_full, drive_rate};

pub const SECRET: &str = "bench-secret";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("baseline") {
        let port: u16 = args[2].parse().expect("port");
        baseline::baseline(port, args[3].clone()).await;
        return;
    }
    if args.get(1).map(String::as_str) == Some("floor") {
        let port: u16 = args[2].parse().expect("port");
        floor::floor(port, args[3].clone(), Path::new(&args[4])).await;
        return;
    }
    let waflow = std::fs::canonicalize(
        args.get(1)
            .cloned()
            .unwrap_or_else(|| "target/release/waflow".into()),
    )
    .expect("the waflow binary (build it with cargo build --release)");
    let run = Run {
        waflow,
        full_events: env_or("BENCH_EVENTS", 20_000),
        rate_seconds: env_or("BENCH_RATE_SECONDS", 10),
        concurrency: env_or("BENCH_CONCURRENCY", 32),
        pinned: pin::enabled(),
        // BENCH_PG_URL (bench/run.sh with BENCH_POSTGRES=1): the daemon on PostgreSQL too.
        pg_admin: std::env::var("BENCH_PG_URL").ok(),
    };
    let rounds: usize = env_or("BENCH_ROUNDS", 3).max(1);
    // The share of events a rule answers; the rest is chat no rule matches.
    // The failover and scale benchmarks measure answers: every event is one.
    let answers_only =
        std::env::var("BENCH_PROCESSES").is_ok() || std::env::var("BENCH_INSTANCES").is_ok();
    let matching: u64 = if answers_only {
        100
    } else {
        env_or("BENCH_MATCH", 20).min(100)
    };
    MATCH_PERCENT.store(matching, std::sync::atomic::Ordering::Relaxed);
    if run.pinned {
        pin::pin_self();
        println!("pinned: each server alone on core 1; load generator and mock API on core 0");
    } else {
        println!("not pinned: the servers share the cores with the load generator");
    }
    println!("{matching} % of the events ask something a rule answers (BENCH_MATCH)");

    let mock = Mock::start().await;
    println!("mock API on {}", mock.addr);
    // BENCH_PROCESSES=3 (with BENCH_POSTGRES=1): several daemons on one database instead.
    if let (Ok(count), Some(admin)) = (std::env::var("BENCH_PROCESSES"), &run.pg_admin) {
        let count = count.trim().parse().unwrap_or(3);
        processes::run(&run, &mock, admin, count).await;
        return;
    }
    // BENCH_INSTANCES=1,10,100: the scale benchmark instead (several numbers).
    if let Ok(counts) = std::env::var("BENCH_INSTANCES") {
        scale::run(&run.waflow, &mock, &counts, run.pinned).await;
        return;
    }

    // BENCH_TARGETS=waflow runs one side only (e.g. under a profiler).
    let all = if run.pg_admin.is_some() {
        "baseline,floor,waflow,waflow-pg"
    } else {
        "baseline,floor,waflow"
    };
    let targets: String = env_or("BENCH_TARGETS", all.to_owned());
    let chosen: Vec<&'static str> = ["baseline", "floor", "waflow", "waflow-pg"]
        .into_iter()
        .filter(|target| targets.split(',').any(|t| t.trim() == *target))
        .collect();
    // One run's CPU time moves with the machine's load: each round
    // measures both sides, one after the other, and the verdict takes the
    // median round.
    let mut rounds_done = Vec::new();
    for round in 1..=rounds {
        let mut results = Vec::new();
        for &target in &chosen {
            results.push(run.measure(target, round, &mock).await);
        }
        println!();
        println!("round {round} of {rounds}:");
        print_table(&results, run.concurrency);
        rounds_done.push(results);
    }
    verdict(&rounds_done);
}

/// What every round of the benchmark runs with.
struct Run {
    waflow: PathBuf,
    full_events: usize,
    rate_seconds: u64,
    concurrency: usize,
    pinned: bool,
    pg_admin: Option<String>,
}

impl Run {
    /// Starts `target`, drives it, stops it: its report.
    async fn measure(&self, target: &'static str, round: usize, mock: &Mock) -> Report {
        mock.reset();
        let dir = tempfile_dir(target);
        let port = free_port();
        let mut child = self.start(target, round, &dir, port, mock);
        wait_up(port).await;
        let pid = child.id();
        let cpu0 = cpu_seconds(pid);
        let server = postmaster().filter(|_| target == "waflow-pg");
        let server0 = server.map(pg::server_cpu_seconds);

        let full = drive_full(port, self.full_events, self.concurrency, 0).await;
        let cpu_full = cpu_seconds(pid);
        let rate = drive_rate(port, 1000, self.rate_seconds, self.full_events).await;
        let cpu_rate = cpu_seconds(pid);
        let (events, expected) = (full.ok + rate.ok, full.matched + rate.matched);
        let left = expected.saturating_sub(mock.distinct());
        let (received, duplicates) = mock.wait_for(expected, Duration::from_secs(120)).await;
        // All the work of every event, its send included, until the last send arrived.
        let cpu1 = cpu_seconds(pid);
        println!(
            "  {target}: CPU µs per event during the full-speed phase {:.1}, during the 1000 ev/s phase {:.1}; after the load {left} sends were left: {:.0} ms CPU until the last arrived",
            (cpu_full - cpu0) * 1e6 / full.ok.max(1) as f64,
            (cpu_rate - cpu_full) * 1e6 / rate.ok.max(1) as f64,
            (cpu1 - cpu_rate) * 1e3
        );
        let rss = peak_rss_kib(pid);
        if let (Some(server), Some(server0)) = (server, server0) {
            let used = pg::server_cpu_seconds(server) - server0;
            println!(
                "  PostgreSQL server CPU per event (beside waflow-pg's own): {:.1} µs",
                used * 1e6 / events.max(1) as f64
            );
        }
        stop(&mut child);
        let _ = std::fs::remove_dir_all(&dir);
        Report {
            name: target,
            events_per_sec: full.ok as f64 / full.elapsed.as_secs_f64(),
            p50_full: full.percentile(50.0),
            p99_full: full.percentile(99.0),
            p50_rate: rate.percentile(50.0),
            p99_rate: rate.percentile(99.0),
            cpu_us_per_event: (cpu1 - cpu0) * 1e6 / events.max(1) as f64,
            rss_mib: rss as f64 / 1024.0,
            expected,
            received,
            duplicates,
            errors: full.errors + rate.errors,
        }
    }

    fn start(&self, target: &str, round: usize, dir: &Path, port: u16, mock: &Mock) -> Child {
        let api = format!("http://{}/api", mock.addr);
        let me = std::env::current_exe().expect("exe");
        match target {
            "baseline" => pin::command(&me, self.pinned)
                .args(["baseline", &port.to_string(), &api])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("baseline"),
            "floor" => pin::command(&me, self.pinned)
                .args([
                    "floor",
                    &port.to_string(),
                    &api,
                    &dir.join("floor.db").to_string_lossy(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("floor"),
            "waflow-pg" => {
                let admin = self.pg_admin.as_deref().expect("BENCH_PG_URL");
                let url = pg::new_database(admin, &format!("bench_{round}"));
                start_waflow_on(&self.waflow, dir, port, mock.addr, self.pinned, Some(&url))
            }
            _ => start_waflow_on(&self.waflow, dir, port, mock.addr, self.pinned, None),
        }
    }
}

/// The medians over the rounds: waflow against the baseline (the targets)
/// and, when it ran, against the floor (the price of the delivery promise).
fn verdict(rounds_done: &[Vec<Report>]) {
    type Round<'a> = (&'a Report, &'a Report, Option<&'a Report>);
    let rounds: Vec<Round> = rounds_done
        .iter()
        .filter_map(|results| {
            let named = |name: &str| results.iter().find(|r| r.name == name);
            Some((named("baseline")?, named("waflow")?, named("floor")))
        })
        .collect();
    if rounds.is_empty() {
        return;
    }
    println!();
    println!(
        "medians of {} rounds (each round: every side, one after the other):",
        rounds.len()
    );
    let events = |r: &Report| r.events_per_sec;
    let cpu = |r: &Report| r.cpu_us_per_event;
    ratio_line(
        "waflow / baseline events/s",
        "; target >= 0.5",
        &rounds,
        |(b, w, _)| events(w) / events(b),
    );
    ratio_line(
        "waflow / baseline CPU per event",
        "; target <= 3",
        &rounds,
        |(b, w, _)| cpu(w) / cpu(b),
    );
    let floors: Vec<(&Report, &Report, &Report)> = rounds
        .iter()
        .filter_map(|(b, w, f)| Some((*b, *w, (*f)?)))
        .collect();
    if !floors.is_empty() {
        ratio_line("floor / baseline events/s", "", &floors, |(b, _, f)| {
            events(f) / events(b)
        });
        ratio_line(
            "floor / baseline CPU per event",
            "",
            &floors,
            |(b, _, f)| cpu(f) / cpu(b),
        );
        ratio_line("waflow / floor CPU per event", "", &floors, |(_, w, f)| {
            cpu(w) / cpu(f)
        });
    }
    let p99 = median(rounds.iter().map(|(_, w, _)| w.p99_rate).collect());
    let worst = rounds
        .iter()
        .map(|(_, w, _)| w.p99_rate)
        .fold(0.0, f64::max);
    println!("waflow p99 at 1000 ev/s: {p99:.2} ms (worst round {worst:.2}; target < 5)");
    let rss = rounds.iter().map(|(_, w, _)| w.rss_mib).fold(0.0, f64::max);
    println!("waflow peak RSS: {rss:.1} MiB (largest round; target < 50)");
    let lost: usize = rounds
        .iter()
        .map(|(_, w, _)| w.expected.saturating_sub(w.received))
        .sum();
    let duplicated: usize = rounds.iter().map(|(_, w, _)| w.duplicates).sum();
    println!("waflow lost: {lost}, duplicated: {duplicated} (all rounds; target 0, 0)");
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Prints the median of one ratio over the rounds, and each round's value.
fn ratio_line<T>(label: &str, target: &str, rounds: &[T], ratio: impl Fn(&T) -> f64) {
    let per_round: Vec<f64> = rounds.iter().map(ratio).collect();
    let list = per_round
        .iter()
        .map(|r| format!("{r:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!("{label}: {:.2} (rounds: {list}{target})", median(per_round));
}

fn print_table(results: &[Report], concurrency: usize) {
    println!(
        "| | events/s (full speed, {concurrency} conns) | p50 / p99 at full speed | p50 / p99 at 1000 ev/s | CPU µs/event | peak RSS | sends expected / received / duplicated | errors |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in results {
        println!(
            "| {} | {:.0} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.1} | {:.1} MiB | {} / {} / {} | {} |",
            r.name,
            r.events_per_sec,
            r.p50_full,
            r.p99_full,
            r.p50_rate,
            r.p99_rate,
            r.cpu_us_per_event,
            r.rss_mib,
            r.expected,
            r.received,
            r.duplicates,
            r.errors
        );
    }
}

struct Report {
    name: &'static str,
    events_per_sec: f64,
    p50_full: f64,
    p99_full: f64,
    p50_rate: f64,
    p99_rate: f64,
    cpu_us_per_event: f64,
    rss_mib: f64,
    expected: usize,
    received: usize,
    duplicates: usize,
    errors: usize,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("waflow-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rules")).expect("dir");
    dir
}

/// The daemon on its store: SQLite in `dir`, or the PostgreSQL database `pg`.
fn start_waflow_on(
    bin: &Path,
    dir: &Path,
    port: u16,
    api: SocketAddr,
    pinned: bool,
    pg: Option<&str>,
) -> Child {
    let token = "  instance_id: BENCH\n  access_token: bench-token\n";
    write_daemon_files(dir, api, port, token, "");
    if let Some(url) = pg {
        pg::use_database(dir, url);
    }
    spawn_waflow(bin, dir, pinned)
}

/// The PostgreSQL server's postmaster (`BENCH_PG_PID`), when there is one.
fn postmaster() -> Option<u32> {
    std::env::var("BENCH_PG_PID").ok()?.trim().parse().ok()
}

/// Stops a server with SIGTERM and waits for it.
fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// `waflow run` in `dir`, on its config there.
fn spawn_waflow(bin: &Path, dir: &Path, pinned: bool) -> Child {
    pin::command(bin, pinned)
        .current_dir(dir)
        .env("RUST_LOG", "waflow=warn")
        .args(["-c", "waflow.yaml", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("waflow")
}

/// The daemon's config (`api_keys` added to `api:`, `tail` at the end) and
/// its one rule, in `dir`.
fn write_daemon_files(dir: &Path, api: SocketAddr, port: u16, api_keys: &str, tail: &str) {
    std::fs::write(
        dir.join("waflow.yaml"),
        format!(
            "api:\n  base_url: http://{api}/api\n{api_keys}  timeout: 5s\n\
             server:\n  listen: 127.0.0.1:{port}\n  webhook_secret: {SECRET}\n\
             store: waflow.db\nrules: rules\nignore_older_than: 1d\n\
             pacing:\n  min_interval: 0s\n  per_chat: 1000/min\n  typing_delay: 0s\n{tail}"
        ),
    )
    .expect("config");
    std::fs::write(
        dir.join("rules/faq.yaml"),
        "rules:\n  - name: prices\n    on: message\n    match: { text: '(?i)\\b(price|how much)\\b' }\n    actions:\n      - reply: \"Our prices: https://shop.example.com/prices\"\n",
    )
    .expect("rules");
}

async fn wait_up(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server on {port} did not start");
}

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

/// Peak resident set size (VmHWM) in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
