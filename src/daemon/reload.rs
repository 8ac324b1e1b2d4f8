//! Reloading config and rules on SIGHUP and when their files change (seen
//! by polling each file's size and modification time). A broken new
//! version is rejected with its errors; the old one keeps running.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::runtime::{Loaded, Shared};

/// The config and rule files as they are now: taken right after loading
/// them, before anything is served, so that a change made as soon as the
/// daemon answers (its health check) is seen, not taken for the start.
pub(super) fn files_now(shared: &Shared, path: &Path) -> Files {
    Files(fingerprint(path, &rule_paths(shared)))
}

/// What [`files_now`] saw.
pub(super) struct Files(Vec<(PathBuf, u64, Option<std::time::SystemTime>)>);

/// Reloads config and rules on SIGHUP and when their files change since `seen`.
pub(super) async fn run(
    shared: Arc<Shared>,
    path: PathBuf,
    force_dry_run: bool,
    cancel: CancellationToken,
    seen: Files,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, mut rx) = tokio::sync::mpsc::channel::<&'static str>(8);
    let watcher = tokio::spawn(watch_files(
        shared.clone(),
        path.clone(),
        tx,
        cancel.clone(),
        seen,
    ));
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGHUP");
            None
        }
    };
    loop {
        let cause = tokio::select! {
            _ = cancel.cancelled() => {
                let _ = watcher.await;
                return;
            }
            Some(cause) = rx.recv() => cause,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
        };
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
        // Compiling a large rule set takes a while: not on the thread that serves webhooks.
        let (shared, path) = (shared.clone(), path.clone());
        let _ =
            tokio::task::spawn_blocking(move || reload(&shared, &path, force_dry_run, cause)).await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
}

/// Loads the new version; on any problem keeps the old one and says why.
pub fn reload(shared: &Shared, path: &Path, force_dry_run: bool, cause: &str) {
    match Loaded::load(path, force_dry_run) {
        Ok(fresh) => {
            let old = shared.loaded();
            if fresh.config.server.listen != old.config.server.listen
                || fresh.config.store != old.config.store
                || fresh.config.server.max_body != old.config.server.max_body
            {
                tracing::warn!("server.listen, server.max_body and store change only on restart");
            }
            let rules = fresh
                .instances
                .iter()
                .map(|i| i.rules.rules.len())
                .max()
                .unwrap_or(0);
            let names: Vec<String> = fresh.instances.iter().map(|i| i.name.clone()).collect();
            shared.replace(fresh);
            shared.note_reload(None);
            metrics::counter!(crate::metrics::RELOADS, "outcome" => "ok").increment(1);
            tracing::info!(cause, rules, instances = %names.join(", "), "reloaded config and rules");
            shared.wake_processor.notify_one();
            for name in &names {
                shared.wake_sender(name);
            }
            shared.wake_scheduler.notify_one();
        }
        Err(problems) => {
            metrics::counter!(crate::metrics::RELOADS, "outcome" => "rejected").increment(1);
            shared.note_reload(Some(problems.to_string()));
            for problem in &problems.0 {
                tracing::error!("{problem}");
            }
            tracing::error!(
                cause,
                count = problems.0.len(),
                "reload rejected: the previous config and rules keep running"
            );
        }
    }
}

/// How often the config and rule files are checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// What identifies the current version of the config and rule files: each
/// YAML file's path, size and modification time. Polling this is cheap, and
/// unlike folder notifications it is not flooded by the store's own writes
/// when the database lives next to the config.
fn fingerprint(
    config_path: &Path,
    rule_paths: &[PathBuf],
) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut files = vec![config_path.to_owned()];
    for rules in rule_paths {
        rule_files(rules, &mut files);
    }
    files.sort();
    files.dedup();
    files
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let size = meta.as_ref().map_or(0, std::fs::Metadata::len);
            let modified = meta.and_then(|m| m.modified().ok());
            (p, size, modified)
        })
        .collect()
}

/// Every instance's rules path, once each.
fn rule_paths(shared: &Shared) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = shared
        .loaded()
        .instances
        .iter()
        .map(|i| i.config.rules.clone())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// The rule files at `rules` (a file, or a folder's YAML files).
fn rule_files(rules: &Path, files: &mut Vec<PathBuf>) {
    if rules.is_dir() {
        if let Ok(entries) = std::fs::read_dir(rules) {
            files.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                    }),
            );
        }
    } else {
        files.push(rules.to_owned());
    }
}

/// Sends `"file change"` when the config or a rule file changes.
async fn watch_files(
    shared: Arc<Shared>,
    path: PathBuf,
    tx: tokio::sync::mpsc::Sender<&'static str>,
    cancel: CancellationToken,
    seen: Files,
) {
    let Files(mut last) = seen;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(WATCH_EVERY) => {}
        }
        let rules = rule_paths(&shared);
        let now = tokio::task::spawn_blocking({
            let path = path.clone();
            move || fingerprint(&path, &rules)
        })
        .await
        .unwrap_or_default();
        if now != last {
            last = now;
            let _ = tx.try_send("file change");
        }
    }
}
