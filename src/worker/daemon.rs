//! `tinbao run`: one process runs the poll loop, merged-feed regeneration, the digest outbox and
//! the HTTP server.
//! SIGINT/SIGTERM stop new work; the HTTP server drains; the process exits 0. Work interrupted
//! mid-poll is simply redone on the next start (a poll's items and validators commit together).

use super::publisher::Publisher;
use crate::config::Config;
use crate::digest::outbox::{Digester, Mailer};
use crate::http::{AppState, router};
use crate::publish::site::Site;
use crate::reader::refresh::Refresher;
use crate::storage::Store;
use anyhow::Context;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the poll loop looks for due feeds.
const TICK: Duration = Duration::from_secs(5);

pub async fn run(config: Arc<Config>) -> anyhow::Result<i32> {
    let store = Store::open(&config.database.url, &config.base_dir()).await?;
    store.sync_feeds(&config.feeds, Utc::now()).await?;
    let refresher = Refresher::new(store.clone(), config.clone())?;
    let publisher = Publisher::new(store.clone(), config.clone(), Site::default());
    let regenerated = publisher.regenerate(&publisher.all_filters()).await?;
    tracing::info!(
        documents = regenerated.rendered,
        changed = regenerated.changed,
        "merged feeds ready"
    );

    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    // Printed on stdout so scripts (and tests, with port 0) can find the server.
    println!("listening on http://{addr}/");
    tracing::info!(%addr, base_url = %config.server.base_url, "HTTP server started");

    let (stop_tx, stop_rx) = watch::channel(false);
    let links = crate::digest::links::Links::new(
        store.link_secret().await?,
        config.server.base_url.clone(),
    );
    let app = router(AppState {
        config: config.clone(),
        site: publisher.site.clone(),
        store: store.clone(),
        links,
    });
    let mut http_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|stop| *stop).await;
            })
            .await
    });
    let poller = tokio::spawn(poll_loop(refresher, publisher, stop_rx.clone()));
    let digests = match &config.smtp {
        Some(smtp) => {
            let mailer = Mailer::from_url(&smtp.url, &config.base_dir())?;
            let digester = Digester::new(store.clone(), config.clone()).await?;
            Some(tokio::spawn(digest_loop(digester, mailer, stop_rx)))
        }
        None => {
            tracing::warn!("no [smtp] configured: digests are not sent");
            None
        }
    };

    shutdown_signal().await;
    tracing::info!("stopping: no new work; finishing what is in flight");
    let _ = stop_tx.send(true);
    let finished = tokio::time::timeout(Duration::from_secs(9), async {
        let _ = poller.await;
        if let Some(d) = digests {
            let _ = d.await;
        }
        let _ = server.await;
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            "in-flight work did not finish in time; it will be redone on the next start"
        );
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(0)
}

async fn poll_loop(refresher: Refresher, publisher: Publisher, mut stop: watch::Receiver<bool>) {
    loop {
        match refresher.poll_round(false).await {
            Ok(summary) => {
                if summary.polled > 0 {
                    tracing::info!("{summary}");
                }
                if !summary.changed_feeds.is_empty() {
                    let filters = publisher.filters_for_feeds(&summary.changed_feeds);
                    match publisher.regenerate(&filters).await {
                        Ok(r) => tracing::info!(
                            documents = r.rendered,
                            changed = r.changed,
                            "merged feeds regenerated"
                        ),
                        Err(e) => tracing::error!(
                            error = format!("{e:#}"),
                            "regenerating merged feeds failed"
                        ),
                    }
                }
            }
            Err(e) => tracing::error!(error = format!("{e:#}"), "poll round failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Builds the digests that fall due and sends the outbox, every tick. A failed send stays in
/// the outbox with its next attempt time; nothing here loses a digest.
async fn digest_loop(digester: Digester, mailer: Mailer, mut stop: watch::Receiver<bool>) {
    loop {
        let now = Utc::now();
        match digester.build_due(now).await {
            Ok(b) if b.digests > 0 => {
                tracing::info!(built = b.digests, owed_nothing = b.empty, "digests built")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = format!("{e:#}"), "building digests failed"),
        }
        match digester.send_due(&mailer, now).await {
            Ok(s) if s.sent + s.retried + s.failed > 0 => {
                tracing::info!(
                    sent = s.sent,
                    retried = s.retried,
                    failed = s.failed,
                    "digests sent"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = format!("{e:#}"), "sending digests failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
