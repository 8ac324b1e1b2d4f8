//! The several-processes benchmark (`BENCH_POSTGRES=1 BENCH_PROCESSES=3
//! bench/run.sh`): that many daemons on one PostgreSQL database with the
//! default lease, the webhooks spread over them, one number. Reports
//! events/s, CPU per event (the daemons together, and the server's), and
//! sends expected / received / duplicated; how long an answer takes when
//! its webhook reached a process that does not send; then the failover time: the
//! number's sender is killed (SIGKILL), an event posted to another process,
//! and the time until its answer reaches the API (target ≤ 20 s).

use std::time::{Duration, Instant};

use crate::drive::{Mock, drive_full_on};
use crate::{
    Run, cpu_seconds, free_port, pg, postmaster, start_waflow_on, stop, tempfile_dir, wait_up,
};

/// Runs `count` daemons on one new database of the server of `admin`.
pub async fn run(run: &Run, mock: &Mock, admin: &str, count: usize) {
    mock.reset();
    let url = pg::new_database(admin, "bench_processes");
    let mut daemons = Vec::new();
    for i in 0..count.max(2) {
        let dir = tempfile_dir(&format!("process{i}"));
        let port = free_port();
        let child = start_waflow_on(&run.waflow, &dir, port, mock.addr, run.pinned, Some(&url));
        daemons.push((child, port, dir));
    }
    for (_, port, _) in &daemons {
        wait_up(*port).await;
    }
    let ports: Vec<u16> = daemons.iter().map(|(_, port, _)| *port).collect();
    let daemons_cpu = |daemons: &[(std::process::Child, u16, std::path::PathBuf)]| -> f64 {
        daemons.iter().map(|(c, _, _)| cpu_seconds(c.id())).sum()
    };
    let (cpu0, server0) = (
        daemons_cpu(&daemons),
        postmaster().map(pg::server_cpu_seconds),
    );
    let full = drive_full_on(&ports, run.full_events, run.concurrency, 0).await;
    let (received, duplicates) = mock.wait_for(full.ok, Duration::from_secs(300)).await;
    let cpu = daemons_cpu(&daemons) - cpu0;
    let server = postmaster()
        .zip(server0)
        .map_or(0.0, |(pid, before)| pg::server_cpu_seconds(pid) - before);
    let per_event = |seconds: f64| seconds * 1e6 / full.ok.max(1) as f64;
    println!(
        "{} processes on one PostgreSQL: {:.0} events/s, p99 {:.2} ms, {:.1} µs CPU/event in the daemons + {:.1} µs in the server; sends {} / {} / {} dup, {} errors",
        daemons.len(),
        full.ok as f64 / full.elapsed.as_secs_f64(),
        full.percentile(99.0),
        per_event(cpu),
        per_event(server),
        full.ok,
        received,
        duplicates,
        full.errors
    );
    answer_times(&url, &daemons, mock, full.ok).await;
    failover(&url, &mut daemons, mock, full.ok + ANSWERED).await;
    for (child, _, dir) in &mut daemons {
        stop(child);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Events posted one at a time to a process that does not send, for [`answer_times`].
const ANSWERED: usize = 20;

/// How long an answer takes when the webhook reached a process that does
/// not send for the number: posted one at a time, each timed until its
/// send reaches the API.
async fn answer_times(
    url: &str,
    daemons: &[(std::process::Child, u16, std::path::PathBuf)],
    mock: &Mock,
    sent: usize,
) {
    let holder = holder_of(url, "send:default").unwrap_or_default();
    let Some(other) = daemons
        .iter()
        .find(|(_, port, _)| !holder.ends_with(&format!(":{port}")))
    else {
        return;
    };
    let mut times = Vec::new();
    for n in 0..ANSWERED {
        let before = mock.distinct();
        let started = Instant::now();
        drive_full_on(&[other.1], 1, 1, sent + n).await;
        while mock.distinct() <= before && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "through a process that does not send: answer at the API after {:.1} ms (median), {:.1} ms (slowest of {ANSWERED})",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

/// Kills the number's sender, posts one event to another process, and
/// times its answer.
async fn failover(
    url: &str,
    daemons: &mut [(std::process::Child, u16, std::path::PathBuf)],
    mock: &Mock,
    sent: usize,
) {
    let Some(holder) = holder_of(url, "send:default") else {
        println!("failover: no process holds send:default");
        return;
    };
    let Some(i) = daemons
        .iter()
        .position(|(_, port, _)| holder.ends_with(&format!(":{port}")))
    else {
        println!("failover: the holder {holder} is none of the daemons");
        return;
    };
    let _ = daemons[i].0.kill();
    let _ = daemons[i].0.wait();
    let killed = Instant::now();
    let survivor = daemons[(i + 1) % daemons.len()].1;
    let before = mock.distinct();
    let posted = drive_full_on(&[survivor], 1, 1, sent).await;
    let deadline = killed + Duration::from_secs(120);
    while mock.distinct() <= before && posted.ok == 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answered = mock.distinct() > before;
    println!(
        "failover: the number's sender killed; the next answer {} {:.1} s later (lease 15 s; target <= 20 s)",
        if answered {
            "reached the API"
        } else {
            "had not come"
        },
        killed.elapsed().as_secs_f64()
    );
}

/// The process holding the lease `name`, from the database.
fn holder_of(url: &str, name: &str) -> Option<String> {
    let (url, name) = (url.to_owned(), name.to_owned());
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).ok()?;
        let row = client
            .query_opt("SELECT holder FROM leases WHERE name = $1", &[&name])
            .ok()??;
        row.try_get::<_, String>(0).ok()
    })
    .join()
    .ok()?
}
