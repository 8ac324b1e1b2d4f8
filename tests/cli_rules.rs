//! `check`, `simulate`, `test` and `schema`, run as the real binary on the
//! repository's example config and rules.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn waflow(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("waflow")
        .unwrap()
        .current_dir(dir)
        .env_remove("WAFLOW_CONFIG")
        .env_remove("WAFLOW_ACCESS_TOKEN")
        .env_remove("WAFLOW_INSTANCE_ID")
        .env("WAFLOW_TIMEZONE", "Europe/Berlin")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_passes_on_the_example_config_and_rules() {
    let o = waflow(&root(), &["check"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("ok: examples/waflow.yaml — "), "{out}");
    assert!(out.contains("note: dry-run"), "{out}");
}

#[test]
fn the_two_number_example_checks_and_its_rule_tests_pass() {
    let config = "examples/two-numbers/waflow.yaml";
    let o = waflow(&root(), &["-c", config, "check"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("  sales: 3 rules"), "{out}");
    assert!(
        out.contains("dry-run: no access_token is set for instance support"),
        "{out}"
    );
    let o = waflow(
        &root(),
        &["-c", config, "test", "examples/two-numbers/tests"],
    );
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        text(&o.stdout).contains("4 passed, 0 failed"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn check_reports_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("waflow.yaml"), "rules: rules\n").unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/a.yaml"),
        "rules:\n  - name: one\n    on: message\n    actions:\n      - rpely: hi\n  - name: two\n    on: message\n    match: { text: '(unclosed' }\n    actions: [ { reply: hi } ]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rules/b.yaml"),
        "rules:\n  - name: one\n    on: schedule\n    cron: '61 * * * *'\n    actions: [ { log: x } ]\n",
    )
    .unwrap();
    let o = waflow(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(text(&o.stderr).replace(&dir.path().display().to_string(), "DIR"));
}

#[test]
fn simulate_text_shows_matches_reasons_and_the_masked_request() {
    let o = Command::cargo_bin("waflow")
        .unwrap()
        .current_dir(root())
        .env_remove("WAFLOW_CONFIG")
        .env("WAFLOW_ACCESS_TOKEN", "tok-123456")
        .env("WAFLOW_INSTANCE_ID", "609ACF283XXXX")
        .env("WAFLOW_TIMEZONE", "Europe/Berlin")
        .args([
            "simulate",
            "--text",
            "how much is it?",
            "--from",
            "84933313000",
            "--now",
            "2026-01-05T10:00:00+01:00",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(!out.contains("tok-123456"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn simulate_every_fixture_payload() {
    let fixtures = root().join("tests/fixtures/webhook");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut summary = String::new();
    for path in names {
        let o = waflow(
            &root(),
            &[
                "--json",
                "simulate",
                "--payload",
                path.to_str().unwrap(),
                "--now",
                "2023-11-14T22:15:00Z",
            ],
        );
        assert!(
            o.status.success(),
            "{}: {}",
            path.display(),
            text(&o.stderr)
        );
        let v: Value = serde_json::from_str(&text(&o.stdout)).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        for event in v["events"].as_array().unwrap() {
            let matched: Vec<String> = event["rules"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["matched"] == true)
                .map(|r| {
                    let calls: Vec<String> = r["actions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(|a| {
                            a["request"]["url"].as_str().map(|u| {
                                format!("{} {}", a["request"]["method"].as_str().unwrap(), u)
                            })
                        })
                        .collect();
                    format!("{} -> {}", r["rule"].as_str().unwrap(), calls.join(", "))
                })
                .collect();
            let outcome = match event["ignored"].as_str() {
                Some(reason) => format!("ignored: {reason}"),
                None => matched.join("; "),
            };
            summary.push_str(&format!("{name}: {outcome}\n"));
        }
        if v["events"].as_array().unwrap().is_empty() {
            summary.push_str(&format!("{name}: no events\n"));
        }
    }
    insta::assert_snapshot!(summary);
}

#[test]
fn the_example_rule_tests_pass() {
    let o = waflow(&root(), &["test", "rules/tests/"]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.trim_end().ends_with(" passed, 0 failed"), "{out}");
}

#[test]
fn a_failing_rule_test_prints_a_diff_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        "rules:\n  - name: hi\n    on: message\n    match: { text: '(?i)hi' }\n    actions: [ { reply: \"Hello {{ msg.sender_name }}\" } ]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("t.yaml"),
        "rules: rules.yaml\ntests:\n  - name: greets\n    event: { text: hi, sender_name: An }\n    expect:\n      - reply: \"Hello An\"\n  - name: wrong on purpose\n    event: { text: hi, sender_name: An }\n    expect:\n      - reply: \"Hi An\"\n  - name: no match expected\n    event: { text: bye }\n    expect: []\n",
    )
    .unwrap();
    let o = waflow(dir.path(), &["test", "t.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(text(&o.stdout));
}

#[test]
fn the_committed_schema_is_current() {
    let o = waflow(&root(), &["schema"]);
    assert!(o.status.success());
    let committed = std::fs::read_to_string(root().join("schema/waflow.schema.json")).unwrap();
    assert_eq!(
        text(&o.stdout),
        committed,
        "schema/waflow.schema.json is stale: run `cargo run -- schema > schema/waflow.schema.json`"
    );
}

#[test]
fn a_rule_test_fails_an_http_call_the_daemon_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        "rules:\n  - name: lookup\n    on: message\n    actions:\n      - http: { method: get, url: \"http://{{ msg.text | safe }}/latest/meta-data/\" }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("t.yaml"),
        "rules: rules.yaml\ntests:\n  - name: metadata\n    event: { text: 169.254.169.254 }\n    expect:\n      - http: { url: \"http://169.254.169.254/latest/meta-data/\" }\n  - name: public\n    event: { text: example.com }\n    expect:\n      - http: { url: \"http://example.com/latest/meta-data/\" }\n",
    )
    .unwrap();
    let o = waflow(dir.path(), &["test", "t.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let out = text(&o.stdout);
    assert!(
        out.contains("the http call to http://169.254.169.254/latest/meta-data/ would be refused")
            && out.contains("1 passed, 1 failed"),
        "{out}"
    );
}
