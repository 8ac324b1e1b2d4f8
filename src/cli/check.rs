//! `waflow check`: validate the config and every rule file, report every problem.

use serde_json::json;

use super::{Cli, CliError, Output};
use crate::rules::{RuleSet, Trigger};

/// Loads config and every instance's rules; on success prints a summary,
/// else every problem.
pub fn run(cli: &Cli, out: &Output) -> Result<(), CliError> {
    let config = super::load_config(cli)?;
    let loaded = crate::runtime::Loaded::new(config)
        .map_err(|d| CliError::Config(crate::config::ConfigError::Invalid(d)))?;
    let config = &loaded.config;
    let several = loaded.instances.len() > 1;
    let mut lines = vec![format!("ok: {}", config.path.display())];
    let mut instances = Vec::new();
    for instance in &loaded.instances {
        let rules = &instance.rules;
        let count = |name: &str| {
            rules
                .rules
                .iter()
                .filter(|r| r.trigger.name() == name && r.serves(&instance.name))
                .count()
        };
        let serves = rules
            .rules
            .iter()
            .filter(|r| r.serves(&instance.name))
            .count();
        let summary = format!(
            "{serves} rules in {} files ({} message, {} status, {} presence, {} schedule, {} webhook)",
            rules.files.len(),
            count("message"),
            count("status"),
            count("presence"),
            count("schedule"),
            count("webhook"),
        );
        match (several, instance.config.dry_run_reason()) {
            (false, reason) => {
                lines[0].push_str(&format!(" — {summary}"));
                if let Some(reason) = reason {
                    lines.push(format!("note: dry-run: {reason}; nothing will be sent"));
                }
            }
            (true, reason) => lines.push(format!(
                "  {}: {summary}{}",
                instance.name,
                reason
                    .map(|r| format!("; dry-run: {r}"))
                    .unwrap_or_default()
            )),
        }
        instances.push(json!({
            "name": instance.name,
            "rules": serves,
            "files": rules.files,
            "hooks": hooks(rules),
            "dry_run": instance.config.dry_run,
        }));
    }
    let first = instances.first().cloned().unwrap_or_else(|| json!({}));
    out.success(
        &lines.join("\n"),
        json!({
            "config": config.path,
            "rules": first["rules"],
            "files": first["files"],
            "hooks": first["hooks"],
            "dry_run": loaded.instances.iter().all(|i| i.config.dry_run),
            "instances": instances,
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
