//! `waflow test FILE|FOLDER…`: run rule unit tests and print a readable diff for each failure.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::{Cli, CliError, Output};
use crate::config::Config;
use crate::ruletest::run_file;

/// Arguments of `waflow test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Test files, or folders of *.yaml test files
    #[arg(required = true, value_name = "TESTS")]
    pub files: Vec<PathBuf>,
}

/// Runs the tests; exit 1 when any fails.
pub fn run(cli: &Cli, args: &TestArgs, out: &Output) -> Result<(), CliError> {
    // The config is optional here: test files usually name their rules.
    let config = match Config::locate(cli.config.as_deref()) {
        Ok((path, _)) if path.is_file() => Some(Config::load(&path)?),
        _ => None,
    };
    let mut files = Vec::new();
    for f in &args.files {
        collect(f, &mut files)?;
    }
    let (mut passed, mut failed) = (0, 0);
    let mut report = Vec::new();
    for file in &files {
        let results = run_file(file, config.as_ref(), cli.instance.as_deref())
            .map_err(crate::config::ConfigError::from)?;
        for r in results {
            match &r.failure {
                None => {
                    passed += 1;
                    if !out.json {
                        println!("ok   {} {}", r.location, r.name);
                    }
                }
                Some(why) => {
                    failed += 1;
                    if !out.json {
                        println!("FAIL {} {}\n{}", r.location, r.name, indent(why));
                    }
                }
            }
            report.push(json!({ "location": r.location, "name": r.name, "failure": r.failure }));
        }
    }
    if out.json {
        println!(
            "{}",
            json!({ "ok": failed == 0, "passed": passed, "failed": failed, "cases": report })
        );
    } else {
        println!("{passed} passed, {failed} failed");
    }
    if failed > 0 {
        return Err(CliError::Failed(format!("{failed} rule test(s) failed")));
    }
    Ok(())
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), CliError> {
    if path.is_dir() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        found.sort();
        files.extend(found);
        Ok(())
    } else if path.is_file() {
        files.push(path.to_owned());
        Ok(())
    } else {
        Err(CliError::Invalid(format!(
            "{}: no such test file or folder",
            path.display()
        )))
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("     {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
