//! The first-run path of an installed binary: `waflow init` writes a config
//! and starter rules that `check` and `test` pass, it never overwrites
//! without `--force`, and completions, the man page and `--version` come
//! from the binary itself.

use std::path::Path;
use std::process::{Command, Output};

fn waflow(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_waflow"));
    command.current_dir(dir).args(args);
    // What a fresh shell has: none of waflow's variables.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WAFLOW_")) {
        command.env_remove(key);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_writes_a_config_and_rules_that_check_and_test_pass() {
    let dir = tempfile::tempdir().unwrap();
    let o = waflow(dir.path(), &["init", "bot"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for step in [
        "instance create",
        "instance qrcode",
        "webhook set",
        "WAFLOW_ACCESS_TOKEN",
        " run",
    ] {
        assert!(out.contains(step), "next steps name `{step}`: {out}");
    }
    let bot = dir.path().join("bot");
    let config = std::fs::read_to_string(bot.join("waflow.yaml")).unwrap();
    assert!(
        config.contains("access_token: ${WAFLOW_ACCESS_TOKEN:-}"),
        "secrets stay in the environment"
    );
    assert!(
        !config.contains("@WEBHOOK_SECRET@"),
        "the webhook secret is made at init"
    );
    let o = waflow(&bot, &["-c", "waflow.yaml", "check"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("1 schedule"),
        "{}",
        text(&o.stdout)
    );
    let o = waflow(&bot, &["-c", "waflow.yaml", "test", "rules/tests"]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).contains(" 0 failed"), "{}", text(&o.stdout));
    assert!(bot.join("schema/waflow.schema.json").is_file());
}

#[test]
fn init_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/20-faq.yaml"), "rules: []\n").unwrap();
    let o = waflow(dir.path(), &["init"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("rules/20-faq.yaml"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        !dir.path().join("waflow.yaml").exists(),
        "nothing was written"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("rules/20-faq.yaml")).unwrap(),
        "rules: []\n"
    );
    let o = waflow(dir.path(), &["init", "--force"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        std::fs::read_to_string(dir.path().join("rules/20-faq.yaml"))
            .unwrap()
            .contains("faq-prices")
    );
}

#[test]
fn completions_man_page_and_version_come_from_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let o = waflow(dir.path(), &["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", text(&o.stderr));
        let script = text(&o.stdout);
        assert!(
            script.contains("simulate") && script.contains("init"),
            "{shell}: {script}"
        );
    }
    let o = waflow(dir.path(), &["man"]);
    let page = text(&o.stdout);
    assert!(page.contains(".TH waflow 1"), "{page}");
    assert!(page.contains("completions"), "{page}");
    let o = waflow(dir.path(), &["--version"]);
    let version = text(&o.stdout);
    let expected = format!("waflow {} (", env!("CARGO_PKG_VERSION"));
    assert!(
        version.starts_with(&expected) && version.trim_end().ends_with(')'),
        "{version}"
    );
}
