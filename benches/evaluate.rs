//! Evaluating one message event against 10, 100, 1,000 and 10,000 rules, of
//! which a handful can match. The cost should grow with the rules that could
//! match, not with the number of rules.

use std::path::PathBuf;
use std::time::Duration;

use waflow::event::{Event, ShortMessage};
use waflow::rules::{EvalInput, LoadOptions, MemoryState, RuleSet};

fn main() {
    divan::main();
}

/// `n` keyword rules in the style of an FAQ bot, plus a fallback-like rule with a condition.
fn rules(n: usize) -> RuleSet {
    let mut text = String::from("rules:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  - name: faq-{i}\n    on: message\n    match: {{ text: '(?i)\\b(keyword{i}|question{i})\\b' }}\n    actions:\n      - reply: \"Answer {i} for {{{{ msg.sender_name }}}}\"\n"
        ));
    }
    text.push_str("  - name: office\n    on: message\n    if: \"now.hour >= 9 and now.hour < 18\"\n    cooldown: 10m\n    actions:\n      - reply: \"We are open\"\n");
    RuleSet::compile(
        &[(PathBuf::from("bench.yaml"), text)],
        &LoadOptions::default(),
    )
    .unwrap()
}

fn event() -> Event {
    ShortMessage {
        text: Some("Hello, I have a Keyword7 about the price".into()),
        from: Some("84933313000".into()),
        ..Default::default()
    }
    .into_event("I1", "2026-03-02T10:00:00Z".parse().unwrap())
}

#[divan::bench(args = [10, 100, 1_000, 10_000], sample_count = 200)]
fn evaluate(bencher: divan::Bencher, n: usize) {
    let set = rules(n);
    let event = event();
    let memory = MemoryState::default();
    bencher.bench_local(|| {
        let input = EvalInput {
            now: "2026-03-02T10:00:00Z".parse().unwrap(),
            memory: &memory,
            ignore_older_than: Some(Duration::from_secs(600)),
            instance: "default",
        };
        let evaluation = set.evaluate(divan::black_box(&event), &input).unwrap();
        assert_eq!(evaluation.plans.len(), 2);
        evaluation
    });
}

/// Loading and compiling the rule set (done once per start or reload).
#[divan::bench(args = [100, 1_000, 10_000], sample_count = 3, sample_size = 1)]
fn compile(n: usize) -> RuleSet {
    rules(n)
}
