//! Memory of a compiled rule set: the resident size after compiling N
//! FAQ-style regex rules (the shape of `benches/evaluate.rs`), the peak
//! while a reload holds the old and the new set, and what is left after a
//! reload to fewer rules. Uses the daemon's allocator.
//!
//! `cargo run --release --example rules_memory -- 10000 100`

use std::path::PathBuf;
use std::time::Duration;

use waflow::rules::{LoadOptions, RuleSet};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `n` keyword rules in the style of an FAQ bot.
fn rules(n: usize) -> String {
    let mut text = String::from("rules:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  - name: faq-{i}\n    on: message\n    match: {{ text: '(?i)\\b(keyword{i}|question{i})\\b' }}\n    actions:\n      - reply: \"Answer {i} for {{{{ msg.sender_name }}}}\"\n"
        ));
    }
    text
}

fn compile(n: usize) -> RuleSet {
    let sources = [(PathBuf::from("rules.yaml"), rules(n))];
    match RuleSet::compile(&sources, &LoadOptions::default()) {
        Ok(set) => set,
        Err(problems) => panic!("{problems}"),
    }
}

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let big: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let small: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let (start, _) = memory();
    let set = compile(big);
    let (loaded, _) = memory();
    // A reload compiles the new set while the old one still serves.
    let smaller = compile(small);
    let (_, peak) = memory();
    drop(set);
    // The allocator returns freed pages after a short delay.
    std::thread::sleep(Duration::from_millis(500));
    let (after, _) = memory();
    println!(
        "{big} rules: {:.1} MiB ({:.1} KiB per rule); peak during the reload {:.1} MiB; after the reload to {small}: {:.1} MiB (start {start:.1} MiB)",
        loaded - start,
        (loaded - start) * 1024.0 / big as f64,
        peak,
        after,
    );
    drop(smaller);
}
