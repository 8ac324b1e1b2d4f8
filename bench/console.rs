//! The console's page benchmark (`cargo run --release --example console --
//! target/release/waflow`): a daemon in dry-run with 100,000 stored
//! message events over 500 chats (each with its decision trail and its
//! planned reply), then every console page asked 50 times by a logged-in
//! session; prints p50 and p95 per page (target: p95 < 200 ms).
//! `BENCH_CONSOLE_EVENTS` changes the number of events.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CHATS: usize = 500;
const BATCH: usize = 1_000;
const ASKS: usize = 50;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let waflow = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or("target/release/waflow".into()),
    );
    // The daemon runs in a folder of its own: the binary's path must not be relative.
    let waflow = waflow.canonicalize().unwrap_or(waflow);
    let events: usize = std::env::var("BENCH_CONSOLE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("waflow-console-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    write_files(&dir, port);
    let mut daemon = start(&waflow, &dir, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let started = Instant::now();
    for first in (0..events).step_by(BATCH) {
        let body = batch(first, BATCH.min(events - first));
        let answer = http
            .post(format!("{base}/webhook/bench"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{}", answer.status());
    }
    println!(
        "stored {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let login = http
        .post(format!("{base}/console/login"))
        .form(&[("password", "bench")])
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let chat = "84900000007%40s.whatsapp.net";
    let pages = [
        "/console/".to_owned(),
        "/console/chats".to_owned(),
        format!("/console/chat?chat={chat}"),
        format!("/console/chat/timeline?chat={chat}"),
        "/console/outbox".to_owned(),
        "/console/optouts".to_owned(),
        "/console/rules".to_owned(),
    ];
    println!("| page | p50 | p95 | bytes |\n| --- | ---: | ---: | ---: |");
    for page in &pages {
        let mut times = Vec::with_capacity(ASKS);
        let mut bytes = 0;
        for _ in 0..ASKS {
            let t = Instant::now();
            let answer = http
                .get(format!("{base}{page}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status().as_u16(), 200, "{page}");
            bytes = answer.bytes().await.unwrap().len();
            times.push(t.elapsed());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| `{page}` | {:.1} ms | {:.1} ms | {bytes} |",
            ms(times[ASKS / 2]),
            ms(times[ASKS * 95 / 100])
        );
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn write_files(dir: &Path, port: u16) {
    std::fs::write(
        dir.join("waflow.yaml"),
        format!(
            "api:\n  base_url: http://127.0.0.1:9/api\n  instance_id: I1\n\
             server:\n  listen: 127.0.0.1:{port}\n  webhook_secret: bench\n  max_body: 4MiB\n  console: {{ password: bench }}\n\
             store: waflow.db\nrules: rules\nsafety:\n  quiet_hours: off\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("rules/rules.yaml"),
        "rules:\n  - name: greeting\n    on: message\n    match: { text: '(?i)^(hello|hi)\\b' }\n    actions:\n      - reply: \"Hello!\"\n  \
         - name: prices\n    on: message\n    match: { text: '(?i)price' }\n    actions:\n      - reply: \"Prices: 15 EUR\"\n  \
         - name: vip\n    on: message\n    match: { from: [\"84999999999\"] }\n    actions:\n      - reply: \"Welcome back\"\n",
    )
    .unwrap();
}

/// `n` messages from event `first` on, spread over [`CHATS`] chats.
fn batch(first: usize, n: usize) -> Value {
    let now = jiff::Timestamp::now().as_second();
    let messages: Vec<Value> = (first..first + n)
        .map(|i| {
            let text = if i % 5 == 0 { "what is the price?" } else { "thanks, see you" };
            json!({
                "key": { "remoteJid": format!("8490{:07}@s.whatsapp.net", i % CHATS), "fromMe": false, "id": format!("M{i}") },
                "messageTimestamp": now, "pushName": format!("Customer {}", i % CHATS),
                "message": { "conversation": text }
            })
        })
        .collect();
    json!({ "instance_id": "I1", "data": { "event": "messages.upsert", "data": { "type": "notify", "messages": messages } } })
}

async fn start(waflow: &Path, dir: &Path, port: u16) -> Child {
    let mut child = Command::new(waflow)
        .current_dir(dir)
        .env_remove("WAFLOW_ACCESS_TOKEN")
        .args(["-c", "waflow.yaml", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the daemon did not start");
}
