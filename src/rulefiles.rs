//! Reading rule files from disk: a file, or every `*.yaml` / `*.yml` of a
//! folder in name order, handed to [`RuleSet::compile`] as `(path, text)`.
//! The rules themselves never touch the file system; this is their loader,
//! shared by `run`, `check`, `simulate` and `waflow test`.

use std::path::{Path, PathBuf};

use crate::config::{Diagnostic, Diagnostics};
use crate::rules::{LoadOptions, RuleSet};

/// Loads a rules file, or every `*.yaml` / `*.yml` of a folder in name order.
pub fn load(path: &Path, options: &LoadOptions) -> Result<RuleSet, Diagnostics> {
    let files = rule_files(path)?;
    let mut sources = Vec::new();
    let mut problems = Diagnostics::default();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => sources.push((file, text)),
            Err(err) => problems.push(Diagnostic::file_level(
                &file,
                format!("cannot read the rules file: {err}"),
            )),
        }
    }
    let result = RuleSet::compile(&sources, options);
    match (result, problems.is_empty()) {
        (Ok(set), true) => {
            // The lists the rules read are part of them: a missing file or
            // an unknown column is a problem of the load, not of a fire.
            let lists = crate::lists::check::check(&set);
            if lists.is_empty() {
                Ok(set)
            } else {
                Err(lists)
            }
        }
        (Ok(_), false) => Err(problems),
        (Err(more), _) => {
            problems.0.extend(more.0);
            Err(problems)
        }
    }
}

/// The files of a rules path: the file itself, or the folder's YAML files in name order.
fn rule_files(path: &Path) -> Result<Vec<PathBuf>, Diagnostics> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    if !path.is_dir() {
        return Err(
            Diagnostic::file_level(path, "the rules path does not exist")
                .with_hint("set `rules:` in the config to a rules file or a folder of *.yaml files")
                .into(),
        );
    }
    let entries = std::fs::read_dir(path).map_err(|err| {
        Diagnostics::from(Diagnostic::file_level(
            path,
            format!("cannot list the rules folder: {err}"),
        ))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml") | Some("yml")
                )
        })
        .collect();
    files.sort();
    Ok(files)
}
