//! `waflow run`: wiring the daemon together and keeping it running.
//!
//! Tasks, each owned by this module and stopped through one
//! `CancellationToken`: the HTTP listener ([`crate::server`]), the
//! [`processor`] (inbox → rules → outbox, [`crate::pipeline`]), the outbox
//! worker ([`crate::outbox`]), the [`scheduler`], the [`reload`]er, and the
//! systemd watchdog. They share a [`crate::runtime::Shared`]; this module
//! holds no logic of the steps it wires.

mod processor;
mod reload;
mod retention;
pub mod scheduler;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::runtime::{Loaded, Shared};
use crate::store::Store;

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config_path: PathBuf, force_dry_run: bool) -> anyhow::Result<()> {
    let loaded = Loaded::load(&config_path, force_dry_run).map_err(|d| anyhow::anyhow!("{d}"))?;
    let config = loaded.config.clone();
    crate::metrics::install();
    for instance in &loaded.instances {
        if let Some(reason) = instance.config.dry_run_reason() {
            tracing::warn!(
                instance = %instance.name,
                "DRY-RUN: {reason}. Every planned send is recorded and logged; nothing is sent."
            );
        }
    }
    let store = Store::open(&config.store).context("cannot open the store")?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        instances = loaded.instances.len(),
        config = %config_path.display(),
        "listening; webhook at http://{address}/webhook/<secret>"
    );
    if config.server.webhook_secret.is_none() {
        tracing::warn!(
            "server.webhook_secret is not set: every POST /webhook/... is refused with 404"
        );
    }
    let shared =
        Arc::new(Shared::new(store, loaded).named(crate::lease::process_id(address.port())));
    let files = reload::files_now(&shared, &config_path);
    let cancel = shared.shutdown.clone();
    let mut tasks = tokio::task::JoinSet::new();

    let max_body = config.server.max_body as usize;
    let app = crate::server::router(shared.clone(), max_body);
    let limits = crate::server::Limits {
        read_timeout: config.server.read_timeout,
        max_connections: config.server.max_connections,
        max_body,
    };
    tasks.spawn(crate::server::serve(listener, app, limits, cancel.clone()));
    tasks.spawn(processor::run(shared.clone(), cancel.clone()));
    tasks.spawn(retention::run(shared.clone(), cancel.clone()));
    tasks.spawn(crate::outbox::run(shared.clone(), cancel.clone()));
    if let Some(announced) = shared.store.work_announced() {
        tasks.spawn(wake_for_others(shared.clone(), announced, cancel.clone()));
    }
    tasks.spawn(crate::daemon::scheduler::run(
        shared.clone(),
        cancel.clone(),
    ));
    tasks.spawn(reload::run(
        shared.clone(),
        config_path.clone(),
        force_dry_run,
        cancel.clone(),
        files,
    ));
    tasks.spawn(watchdog(cancel.clone()));
    tasks.spawn(present(shared.clone(), cancel.clone()));

    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    shutdown_signal().await;
    tracing::info!("shutting down: finishing the work in flight");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    cancel.cancel();
    while tasks.join_next().await.is_some() {}
    shared
        .store
        .close()
        .await
        .context("cannot close the store cleanly")?;
    tracing::info!("stopped: the store is checkpointed and closed");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Keeps this process's presence lease (what `waflow status` lists) until
/// `cancel` fires, then gives it up.
async fn present(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut lease = shared.lease(crate::lease::presence(&shared.process));
    loop {
        lease.hold(&shared.store).await;
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(lease.retry_in()) => {}
        }
    }
    lease.release(&shared.store).await;
}

/// Wakes the sender of each instance another process planned work for
/// (announced by the store), so that a number's answer leaves at once
/// whichever process took its webhook.
async fn wake_for_others(
    shared: Arc<Shared>,
    mut announced: tokio::sync::mpsc::UnboundedReceiver<String>,
    cancel: CancellationToken,
) {
    loop {
        let instance = tokio::select! {
            _ = cancel.cancelled() => return,
            instance = announced.recv() => instance,
        };
        let Some(instance) = instance else {
            return;
        };
        if shared.loaded().instance(&instance).is_some() {
            metrics::counter!(crate::metrics::WORK_ANNOUNCED, "instance" => instance.clone())
                .increment(1);
            shared.wake_sender(&instance);
        }
    }
}

/// Pings the systemd watchdog at half its interval, when it is enabled.
async fn watchdog(cancel: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (interval / 2).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
        }
    }
}
