//! A regression guard of the hot path that does not depend on the clock:
//! the instructions one webhook event costs from its JSON to its outbox
//! row (normalizing, recording, the rules, planning, the commit), counted
//! by valgrind's callgrind and held against a committed budget.
//!
//! The test runs this same binary twice under callgrind, once with no
//! events and once with [`EVENTS`], and divides the difference: start-up
//! and the test harness cancel out. Instruction counts do not move with
//! the machine's load; they move with the code (and the compiler), which is
//! what the guard is for. Without valgrind the test says so and passes.
//!
//! Two shapes are held against their own budgets: each event alone in its
//! commit (every commit's checksums and savepoint copies fall on one event),
//! and [`SHARING`] requests at a time sharing each commit, as at full speed,
//! where a commit's fixed costs are spread over about that many events.
//!
//! A slower hot path fails the test; a faster one asks for the budget in
//! `tests/fixtures/` to be lowered.

use std::path::Path;
use std::process::Command;

use waflow::runtime::{Loaded, Shared};
use waflow::store::{NewEvent, Store};

/// Events of the measured run.
const EVENTS: u64 = 200;
/// Requests in flight together in the shared-commit shape: about as many as
/// share each commit at full speed (docs/performance.md).
const SHARING: u64 = 12;
/// How far above the budget a run may come before the guard fails.
const TOLERANCE: f64 = 0.15;
/// The environment variable that makes this test the measured child.
const CHILD: &str = "WAFLOW_HOT_PATH_EVENTS";
const BUDGET: &str = "tests/fixtures/hot_path_budget.txt";
const SHARED_BUDGET: &str = "tests/fixtures/hot_path_shared_budget.txt";

const CONFIG: &str = "server:\n  listen: 127.0.0.1:0\n  webhook_secret: s\nstore: waflow.db\nrules: rules\nignore_older_than: 1d\npacing: { min_interval: 0s, per_chat: 1000/min, typing_delay: 0s }\n";
const RULES: &str = "rules:\n  - name: prices\n    on: message\n    match: { text: '(?i)\\b(price|how much)\\b' }\n    actions:\n      - reply: \"Our prices for {{ msg.sender_name }}: https://shop.example.com/prices\"\n";

/// A `messages.upsert` body as the API posts it.
fn body(i: u64) -> serde_json::Value {
    serde_json::json!({
        "instance_id": "I1",
        "data": { "event": "messages.upsert", "data": { "type": "notify", "messages": [{
            "key": { "remoteJid": format!("8490{:07}@s.whatsapp.net", i), "fromMe": false, "id": format!("HOT{i}") },
            "messageTimestamp": 1_700_000_000 + i,
            "pushName": "Customer",
            "message": { "conversation": "What is the price?" }
        }]}}
    })
}

/// The measured work: `n` events through the real pipeline and store,
/// `together` requests in flight at a time.
fn run_events(n: u64, together: u64) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("waflow.yaml"), CONFIG).unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/rules.yaml"), RULES).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let loaded = Loaded::load(&dir.path().join("waflow.yaml"), true).unwrap();
        let config = loaded.config.clone();
        let store = Store::open(&config.store).unwrap();
        let shared = Shared::new(store, loaded);
        for first in (0..n).step_by(together as usize) {
            let posts = (first..(first + together).min(n)).map(|i| post(&shared, i));
            for outcome in futures_util::future::join_all(posts).await {
                outcome.unwrap();
            }
        }
        shared.store.close().await.unwrap();
    });
}

/// One webhook request's work: normalize, record and process event `i`.
async fn post(shared: &Shared, i: u64) -> Result<(), waflow::store::StoreError> {
    let normalized = waflow::event::normalize(body(i));
    let records = normalized
        .events
        .iter()
        .map(|e| NewEvent::of("default", e))
        .collect();
    waflow::pipeline::record_and_process(shared, records, normalized.events, |_| Ok(()))
        .await
        .map(|_| ())
}

/// Instructions of this test binary run as the child `test` with `n` events.
fn instructions(test: &str, n: u64, out: &Path) -> u64 {
    let file = out.join(format!("callgrind.{n}"));
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--test-threads=1"])
        .env(CHILD, n.to_string())
        // The child's own test report would only repeat "running 1 test".
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the child under callgrind failed");
    let text = std::fs::read_to_string(&file).unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary: ")
                .or_else(|| l.strip_prefix("totals: "))
        })
        .and_then(|n| n.trim().parse().ok())
        .expect("callgrind wrote no summary")
}

/// Runs the child's events, `together` at a time, when this process is
/// one; otherwise measures `test`'s instructions per event and holds them
/// against `budget_file`.
fn guard(test: &str, together: u64, budget_file: &str) {
    if let Ok(n) = std::env::var(CHILD) {
        run_events(n.parse().unwrap(), together);
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("skipped: valgrind is not installed (apt-get install valgrind)");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let base = instructions(test, 0, out.path());
    let full = instructions(test, EVENTS, out.path());
    let per_event = full.saturating_sub(base) / EVENTS;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let budget: u64 = std::fs::read_to_string(root.join(budget_file))
        .unwrap()
        .lines()
        .find(|l| !l.starts_with('#'))
        .and_then(|l| l.trim().parse().ok())
        .expect("a number in the budget file");
    eprintln!("{test}: {per_event} instructions per event (budget {budget})");
    assert!(
        per_event as f64 <= budget as f64 * (1.0 + TOLERANCE),
        "the hot path costs {per_event} instructions per event, more than {budget_file} allows ({budget} + {:.0} %): find what got slower, or raise the budget with a reason in the commit",
        TOLERANCE * 100.0
    );
    assert!(
        per_event as f64 >= budget as f64 * (1.0 - 2.0 * TOLERANCE),
        "the hot path costs {per_event} instructions per event, well under the budget of {budget}: lower {budget_file} to keep the guard tight"
    );
}

#[test]
fn hot_path_stays_within_its_instruction_budget() {
    guard("hot_path_stays_within_its_instruction_budget", 1, BUDGET);
}

#[test]
fn hot_path_sharing_commits_stays_within_its_instruction_budget() {
    guard(
        "hot_path_sharing_commits_stays_within_its_instruction_budget",
        SHARING,
        SHARED_BUDGET,
    );
}
