//! Driving the servers under test: the webhook bodies, the load at full
//! speed and at a fixed rate, and the mock of the remote API that counts
//! every send (lost or duplicated sends show there).
//!
//! Everything goes to 127.0.0.1; every loop is bounded in count or time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

use crate::SECRET;

/// How many instances the events are spread over (the scale benchmark);
/// 0: the single instance `BENCH`.
pub static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// The percentage of events whose text a rule answers (`BENCH_MATCH`); the
/// others are ordinary chat that no rule matches.
pub static MATCH_PERCENT: AtomicU64 = AtomicU64::new(100);

/// Whether event `n` asks something the rule answers: exactly
/// `MATCH_PERCENT` of every 100 consecutive events, spread over them
/// (7,919 is prime to 100, so `n * 7919 mod 100` visits each residue once).
pub fn matches(n: usize) -> bool {
    (n as u64).wrapping_mul(7919) % 100 < MATCH_PERCENT.load(Ordering::Relaxed)
}

/// The instance id of event `n`.
fn instance_of(n: usize) -> String {
    match INSTANCES.load(Ordering::Relaxed) {
        0 => "BENCH".to_owned(),
        count => format!("BENCH{}", n as u64 % count),
    }
}

/// A realistic webhook body: stock envelope, one incoming text, unique id and sender.
fn payload(n: usize) -> Vec<u8> {
    let text = if matches(n) {
        "Hello, how much is a t-shirt?"
    } else {
        "Good morning! I will pick up my order tomorrow after work, thanks"
    };
    json!({
        "instance_id": instance_of(n),
        "data": { "event": "messages.upsert", "data": { "type": "notify", "messages": [{
            "key": { "remoteJid": format!("8490{:07}@s.whatsapp.net", n % 10_000_000), "fromMe": false, "id": format!("3EB0BENCH{n:012}") },
            "messageTimestamp": jiff::Timestamp::now().as_second(),
            "pushName": "Load Test",
            "broadcast": false,
            "message": { "conversation": text, "messageContextInfo": { "deviceListMetadataVersion": 2 } }
        }]}}
    })
    .to_string()
    .into_bytes()
}

#[derive(Default)]
pub struct Run {
    pub ok: usize,
    /// Of the events answered 200, those a rule answers with a send.
    pub matched: usize,
    pub errors: usize,
    pub latencies_ms: Vec<f64>,
    pub elapsed: Duration,
}

impl Run {
    fn count(&mut self, ok: bool, n: usize) {
        if !ok {
            self.errors += 1;
            return;
        }
        self.ok += 1;
        if matches(n) {
            self.matched += 1;
        }
    }

    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies_ms.is_empty() {
            return 0.0;
        }
        let mut v = self.latencies_ms.clone();
        v.sort_by(f64::total_cmp);
        v[((p / 100.0) * (v.len() - 1) as f64).round() as usize]
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client")
}

/// `total` events as fast as `concurrency` connections allow.
pub async fn drive_full(port: u16, total: usize, concurrency: usize, first: usize) -> Run {
    drive_full_on(&[port], total, concurrency, first).await
}

/// The same, the connections spread over the servers on `ports`.
pub async fn drive_full_on(ports: &[u16], total: usize, concurrency: usize, first: usize) -> Run {
    let next = Arc::new(AtomicU64::new(first as u64));
    let end = (first + total) as u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let port = ports[i % ports.len()];
        let url = format!("http://127.0.0.1:{port}/webhook/{SECRET}");
        let (next, http) = (next.clone(), client());
        tasks.push(tokio::spawn(async move {
            let mut run = Run::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= end {
                    break;
                }
                let t = Instant::now();
                let ok = http
                    .post(&url)
                    .body(payload(n as usize))
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                run.latencies_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                run.count(ok, n as usize);
            }
            run
        }));
    }
    let mut all = Run::default();
    for t in tasks {
        let r = t.await.expect("task");
        all.ok += r.ok;
        all.matched += r.matched;
        all.errors += r.errors;
        all.latencies_ms.extend(r.latencies_ms);
    }
    all.elapsed = started.elapsed();
    all
}

/// `per_second` events each second for `seconds` seconds.
pub async fn drive_rate(port: u16, per_second: u64, seconds: u64, first: usize) -> Run {
    let url = format!("http://127.0.0.1:{port}/webhook/{SECRET}");
    let http = client();
    let results = Arc::new(Mutex::new(Run::default()));
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / per_second));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..(per_second * seconds) {
        ticker.tick().await;
        let (url, http, results) = (url.clone(), http.clone(), results.clone());
        let n = first + i as usize;
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = http
                .post(&url)
                .body(payload(n))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let mut r = results.lock().expect("lock");
            r.latencies_ms.push(ms);
            r.count(ok, n);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut run = std::mem::take(&mut *results.lock().expect("lock"));
    run.elapsed = started.elapsed();
    run
}

/// The mock API: answers sends with a message id and counts them per message.
pub struct Mock {
    pub addr: SocketAddr,
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

impl Mock {
    pub async fn start() -> Mock {
        let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let app = Router::new()
            .route("/api/send", post(mock_send))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Mock { addr, seen }
    }

    /// How many distinct sends arrived so far.
    pub fn distinct(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }

    pub fn reset(&self) {
        self.seen.lock().expect("lock").clear();
    }

    /// Waits until `expected` distinct sends arrived (or the time is up): (distinct, duplicates).
    pub async fn wait_for(&self, expected: usize, within: Duration) -> (usize, usize) {
        let deadline = Instant::now() + within;
        loop {
            let distinct = self.seen.lock().expect("lock").len();
            if distinct >= expected || Instant::now() > deadline {
                // Give late duplicates a moment to show.
                tokio::time::sleep(Duration::from_millis(500)).await;
                let seen = self.seen.lock().expect("lock");
                return (seen.len(), seen.values().map(|n| n - 1).sum::<usize>());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn mock_send(State(seen): State<Arc<Mutex<HashMap<String, usize>>>>, body: Bytes) -> String {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let number = v["number"].as_str().unwrap_or_default().to_owned();
    let count = {
        let mut seen = seen.lock().expect("lock");
        let c = seen.entry(number.clone()).or_insert(0);
        *c += 1;
        *c
    };
    json!({"status": "success", "message": {"key": {"remoteJid": format!("{number}@c.us"), "fromMe": true, "id": format!("BAE5{number}{count}")}}}).to_string()
}
