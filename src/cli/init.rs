//! `waflow init [DIR]`: a first config and starter rules with their tests,
//! written from the copies embedded in the binary (`starter/` in the
//! source), then the next steps. It never overwrites a file unless
//! `--force`, and writes nothing when any file would be overwritten.

use std::path::{Path, PathBuf};

use clap::Args;
use rand::Rng;
use serde_json::json;

use super::{CliError, Output};

/// Arguments of `waflow init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to write into (made if missing) [default: .]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Overwrite files that exist
    #[arg(long)]
    pub force: bool,
}

/// What `init` writes, relative to DIR.
const FILES: [(&str, &str); 6] = [
    ("waflow.yaml", include_str!("../../starter/waflow.yaml")),
    (
        "rules/10-greeting.yaml",
        include_str!("../../starter/rules/10-greeting.yaml"),
    ),
    (
        "rules/20-faq.yaml",
        include_str!("../../starter/rules/20-faq.yaml"),
    ),
    (
        "rules/30-hours.yaml",
        include_str!("../../starter/rules/30-hours.yaml"),
    ),
    (
        "rules/40-reminder.yaml",
        include_str!("../../starter/rules/40-reminder.yaml"),
    ),
    (
        "rules/tests/starter.yaml",
        include_str!("../../starter/rules/tests/starter.yaml"),
    ),
];

/// The rule files' schema, for editors (their first line names it).
const SCHEMA: &str = "schema/waflow.schema.json";

/// Writes the starter files into the folder, then prints the next steps.
pub fn run(args: &InitArgs, out: &Output) -> Result<(), CliError> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let paths: Vec<&str> = FILES.iter().map(|(p, _)| *p).chain([SCHEMA]).collect();
    let existing: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| dir.join(p).exists())
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(CliError::Invalid(format!(
            "already in {}: {}; nothing was written (add --force to overwrite)",
            dir.display(),
            existing.join(", ")
        )));
    }
    // Unique per install: the webhook URL works at once and is not guessable.
    let secret = format!("{:032x}", rand::rng().random::<u128>());
    for (path, text) in FILES {
        write(&dir, path, &text.replace("@WEBHOOK_SECRET@", &secret))?;
    }
    write(&dir, SCHEMA, &super::schema::rules_schema())?;
    out.success(
        &next_steps(&dir, &secret),
        json!({ "dir": dir, "files": paths, "overwritten": existing }),
    );
    Ok(())
}

fn write(dir: &Path, path: &str, text: &str) -> Result<(), CliError> {
    let target = dir.join(path);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::Invalid(format!("cannot create {}: {e}", parent.display())))?;
    }
    std::fs::write(&target, text)
        .map_err(|e| CliError::Invalid(format!("cannot write {}: {e}", target.display())))
}

fn next_steps(dir: &Path, secret: &str) -> String {
    let c = dir.join("waflow.yaml");
    let c = c.display();
    format!(
        "wrote {c}, rules/ with their tests, and schema/ in {dir}

next steps:
  1. check it:            waflow -c {c} check && waflow -c {c} test {rules}
  2. your access token:   export WAFLOW_ACCESS_TOKEN=...   (without it waflow runs dry: nothing is sent)
  3. a WhatsApp instance: waflow -c {c} instance create    then export WAFLOW_INSTANCE_ID=...
  4. log the number in:   waflow -c {c} instance qrcode    and scan the code with the phone
  5. the webhook:         waflow -c {c} webhook set https://YOUR-HOST/webhook/{secret}
  6. run it:              waflow -c {c} run                (or install the systemd service)
then write \"hello\" to the number from another phone.",
        dir = dir.display(),
        rules = dir.join("rules/tests").display(),
    )
}
