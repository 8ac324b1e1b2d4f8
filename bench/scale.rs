//! The scale benchmark (`BENCH_INSTANCES=1,10,100 bench/run.sh`): one
//! daemon serving 1, 10 and 100 numbers, the same events spread evenly
//! over them, each number with its own token, worker and pacing. Reports
//! CPU per event and peak RSS for each count, and the ratio of the largest
//! count's CPU per event to one instance's (target ≤ 1.2; RSS < 100 MiB).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::drive::{INSTANCES, Mock, drive_full, drive_rate};
use crate::{
    cpu_seconds, env_or, free_port, peak_rss_kib, spawn_waflow, stop, tempfile_dir, wait_up,
    write_daemon_files,
};

/// One count's figures.
struct Scale {
    instances: usize,
    cpu_us_per_event: f64,
    rss_mib: f64,
    p99_rate: f64,
    expected: usize,
    received: usize,
    duplicates: usize,
}

/// Runs the daemon with each count of instances in `counts` (comma-separated).
pub async fn run(waflow: &Path, mock: &Mock, counts: &str, pinned: bool) {
    let full_events: usize = env_or("BENCH_EVENTS", 20_000);
    let rate_seconds: u64 = env_or("BENCH_RATE_SECONDS", 10);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);
    let mut done = Vec::new();
    for count in counts
        .split(',')
        .filter_map(|c| c.trim().parse::<usize>().ok())
    {
        let count = count.max(1);
        INSTANCES.store(count as u64, Ordering::Relaxed);
        mock.reset();
        let dir = tempfile_dir(&format!("scale{count}"));
        let port = free_port();
        write_config(&dir, port, mock, count);
        let mut child = spawn_waflow(waflow, &dir, pinned);
        wait_up(port).await;
        let pid = child.id();
        let cpu0 = cpu_seconds(pid);
        // The fixed rate first, on a daemon with nothing queued; then full speed.
        let rate = drive_rate(port, 1000, rate_seconds, 0).await;
        let full = drive_full(port, full_events, concurrency, rate.ok + rate.errors).await;
        let expected = full.ok + rate.ok;
        let (received, duplicates) = mock.wait_for(expected, Duration::from_secs(120)).await;
        let cpu1 = cpu_seconds(pid);
        let rss = peak_rss_kib(pid);
        stop(&mut child);
        let _ = std::fs::remove_dir_all(&dir);
        let scale = Scale {
            instances: count,
            cpu_us_per_event: (cpu1 - cpu0) * 1e6 / expected.max(1) as f64,
            rss_mib: rss as f64 / 1024.0,
            p99_rate: rate.percentile(99.0),
            expected,
            received,
            duplicates,
        };
        println!(
            "{} instances: {:.1} µs CPU/event, peak RSS {:.1} MiB, p99 at 1000 ev/s {:.2} ms, sends {} / {} / {} dup",
            scale.instances,
            scale.cpu_us_per_event,
            scale.rss_mib,
            scale.p99_rate,
            scale.expected,
            scale.received,
            scale.duplicates
        );
        done.push(scale);
    }
    report(&done);
}

fn report(done: &[Scale]) {
    println!();
    println!(
        "| instances | CPU µs/event | peak RSS | p99 at 1000 ev/s | sends expected / received / duplicated |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for s in done {
        println!(
            "| {} | {:.1} | {:.1} MiB | {:.2} ms | {} / {} / {} |",
            s.instances,
            s.cpu_us_per_event,
            s.rss_mib,
            s.p99_rate,
            s.expected,
            s.received,
            s.duplicates
        );
    }
    if let (Some(one), Some(most)) = (done.first(), done.last()) {
        println!(
            "{} instances / {} instance(s), CPU per event: {:.2} (target <= 1.2); peak RSS {:.1} MiB (target < 100)",
            most.instances,
            one.instances,
            most.cpu_us_per_event / one.cpu_us_per_event.max(f64::MIN_POSITIVE),
            most.rss_mib
        );
    }
    let lost: usize = done
        .iter()
        .map(|s| s.expected.saturating_sub(s.received))
        .sum();
    let duplicated: usize = done.iter().map(|s| s.duplicates).sum();
    println!("lost: {lost}, duplicated: {duplicated} (target 0, 0)");
}

/// `count` instances, `BENCH0` … on the one mock API, each with its own token.
fn write_config(dir: &Path, port: u16, mock: &Mock, count: usize) {
    let mut instances = String::from("instances:\n");
    for i in 0..count {
        instances.push_str(&format!(
            "  n{i}:\n    instance_id: BENCH{i}\n    access_token: bench-token-{i}\n"
        ));
    }
    write_daemon_files(dir, mock.addr, port, "", &instances);
}
