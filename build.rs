//! Records the commit the binary is built from (`waflow --version`):
//! `git rev-parse --short=12 HEAD` when the source is a git checkout,
//! `$WAFLOW_COMMIT` when a packager sets it, else "unknown commit".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=WAFLOW_COMMIT");
    let commit = std::env::var("WAFLOW_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown commit".to_owned());
    println!("cargo:rustc-env=WAFLOW_COMMIT={commit}");
}

/// The commit of HEAD, and the files whose change means a new one.
fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let head = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    // A path that does not exist would rerun this script on every build.
    let watch = |path: String| {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    };
    watch(".git/HEAD".to_owned());
    watch(".git/packed-refs".to_owned());
    if let Ok(text) = std::fs::read_to_string(".git/HEAD")
        && let Some(reference) = text.strip_prefix("ref: ")
    {
        watch(format!(".git/{}", reference.trim()));
    }
    Some(head)
}
