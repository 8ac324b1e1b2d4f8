//! `waflow check`: validate the config and every rule file, report every problem.

use serde_json::json;

use super::{Cli, CliError, Output};
use crate::rules::{RuleSet, Trigger};

/// Loads config and rules; on success prints a summary, else every problem.
pub fn run(cli: &Cli, out: &Output) -> Result<(), CliError> {
    let config = super::load_config(cli)?;
    let rules = super::load_rules(&config)?;
    let count = |name: &str| {
        rules
            .rules
            .iter()
            .filter(|r| r.trigger.name() == name)
            .count()
    };
    let summary = format!(
        "ok: {} — {} rules in {} files ({} message, {} status, {} presence, {} schedule, {} webhook){}",
        config.path.display(),
        rules.rules.len(),
        rules.files.len(),
        count("message"),
        count("status"),
        count("presence"),
        count("schedule"),
        count("webhook"),
        match config.dry_run_reason() {
            Some(reason) => format!("\nnote: dry-run: {reason}; nothing will be sent"),
            None => String::new(),
        }
    );
    out.success(
        &summary,
        json!({
            "config": config.path,
            "rules": rules.rules.len(),
            "files": rules.files,
            "hooks": hooks(&rules),
            "dry_run": config.dry_run,
        }),
    );
    Ok(())
}

fn hooks(rules: &RuleSet) -> Vec<String> {
    let mut hooks: Vec<String> = rules
        .rules
        .iter()
        .filter_map(|r| match &r.trigger {
            Trigger::Webhook(h) => Some(h.hook.clone()),
            _ => None,
        })
        .collect();
    hooks.dedup();
    hooks
}
