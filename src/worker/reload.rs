//! Hot reload of feeds.toml: on a change of the file (watched through its folder, since editors
//! often replace files by renaming) or on SIGHUP, the file is read and validated again. A valid
//! config is applied (feeds synced: new ones polled, removed ones stop, their items stay) and
//! published to the workers; an invalid one is logged as `file:line:col: reason` and ignored,
//! and the daemon keeps running on its last good config.

use crate::config::Config;
use crate::storage::Store;
use chrono::Utc;
use notify::Watcher;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Edits arrive as bursts of events; wait for the burst to end before reading the file.
const SETTLE: Duration = Duration::from_millis(300);

pub async fn watch(
    path: PathBuf,
    store: Store,
    config_tx: watch::Sender<Arc<Config>>,
    mut stop: watch::Receiver<bool>,
) {
    let (events_tx, mut events) = mpsc::channel::<()>(16);
    let _watcher = file_watcher(&path, events_tx.clone())
        .inspect_err(
            |e| tracing::warn!(error = %e, "config file not watched; SIGHUP still reloads"),
        )
        .ok();
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        tokio::select! {
            // Any change of the stop flag means stop.
            _ = stop.changed() => return,
            _ = hangup => tracing::info!("SIGHUP: reloading the config"),
            Some(()) = events.recv() => {
                tokio::time::sleep(SETTLE).await;
                while events.try_recv().is_ok() {}
            }
        }
        reload(&path, &store, &config_tx).await;
    }
}

async fn reload(path: &std::path::Path, store: &Store, config_tx: &watch::Sender<Arc<Config>>) {
    match Config::load(path) {
        Err(e) => {
            metrics::counter!("tinbao_config_reloads_total", "result" => "invalid").increment(1);
            for line in e.to_string().lines() {
                tracing::error!("{line}");
            }
            tracing::error!("the edit is ignored: still running on the last good config");
        }
        Ok(new) => {
            let old = config_tx.borrow().clone();
            if new.server.listen != old.server.listen || new.database.url != old.database.url {
                tracing::warn!(
                    "listen address and database url changes take effect at the next restart"
                );
            }
            if let Err(e) = store.sync_feeds(&new.feeds, Utc::now()).await {
                tracing::error!(
                    error = format!("{e:#}"),
                    "applying the new feed list failed; keeping the last good config"
                );
                return;
            }
            metrics::counter!("tinbao_config_reloads_total", "result" => "applied").increment(1);
            tracing::info!(
                feeds = new.feeds.len(),
                categories = new.categories.len(),
                "config reloaded"
            );
            let _ = config_tx.send(Arc::new(new));
        }
    }
}

fn file_watcher(
    path: &std::path::Path,
    tx: mpsc::Sender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    let name = path.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let ours = event
                .paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_os_string()) == name);
            if ours && (event.kind.is_modify() || event.kind.is_create()) {
                let _ = tx.try_send(());
            }
        }
    })?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    watcher.watch(&folder, notify::RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
