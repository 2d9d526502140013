//! `tinbao run`: one process runs the poll loop, merged-feed regeneration, the digest outbox and
//! the HTTP server. The config is reloaded on edit (file watch) and on SIGHUP without a restart;
//! an invalid edit is logged and the last good config kept. SIGINT/SIGTERM stop new work, let
//! in-flight work finish (up to 9 s), and exit 0; work cut short is redone on the next start
//! (a poll's items and validators commit together; a digest is built in one transaction and
//! stays pending until sent).

use super::publisher::Publisher;
use super::reload;
use crate::config::Config;
use crate::digest::links::Links;
use crate::digest::outbox::{Digester, Mailer};
use crate::http::{AppState, Health, router};
use crate::publish::site::Site;
use crate::reader::refresh::Refresher;
use crate::storage::Store;
use anyhow::Context;
use chrono::Utc;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the loops look for due work.
const TICK: Duration = Duration::from_secs(5);

pub async fn run(config_path: PathBuf, config: Arc<Config>) -> anyhow::Result<i32> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| tracing::warn!(error = %e, "metrics disabled"))
        .ok();
    let store = Store::open(&config.database.url, &config.base_dir()).await?;
    store.sync_feeds(&config.feeds, Utc::now()).await?;
    let site = Site::default();
    let publisher = Publisher::new(store.clone(), config.clone(), site.clone());
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

    let (config_tx, config_rx) = watch::channel(config.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let health = Arc::new(Health::default());
    let links = Links::new(store.link_secret().await?, config.server.base_url.clone());
    let state = AppState {
        config_rx: config_rx.clone(),
        site: site.clone(),
        store: store.clone(),
        links,
        health: health.clone(),
        metrics,
        limits: Arc::default(),
        bound: Some(addr),
    };
    let mut http_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        // Connect info gives the sign-up rate limits each client's address.
        axum::serve(
            listener,
            router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|stop| *stop).await;
        })
        .await
    });
    let reloader = tokio::spawn(reload::watch(
        config_path,
        store.clone(),
        config_tx,
        stop_rx.clone(),
    ));
    let poller = tokio::spawn(poll_loop(
        store.clone(),
        site,
        config_rx.clone(),
        health.clone(),
        stop_rx.clone(),
    ));
    let hub = tokio::spawn(hub_loop(store.clone(), config_rx.clone(), stop_rx.clone()));
    let digests = tokio::spawn(digest_loop(store.clone(), config_rx, health, stop_rx));

    shutdown_signal().await;
    tracing::info!("stopping: no new work; finishing what is in flight");
    let _ = stop_tx.send(true);
    let finished = tokio::time::timeout(Duration::from_secs(8), async {
        let _ = poller.await;
        let _ = digests.await;
        let _ = hub.await;
        let _ = reloader.await;
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

/// Polls due feeds every tick and regenerates the merged feeds they change. A new config
/// rebuilds the fetcher (limits, User-Agent) and regenerates everything (categories may differ).
async fn poll_loop(
    store: Store,
    site: Site,
    mut config_rx: watch::Receiver<Arc<Config>>,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) {
    let build = |config: Arc<Config>| {
        let refresher = Refresher::new(store.clone(), config.clone());
        (
            refresher,
            Publisher::new(store.clone(), config, site.clone()),
        )
    };
    let (mut refresher, mut publisher) = build(config_rx.borrow_and_update().clone());
    loop {
        if config_rx.has_changed().unwrap_or(false) {
            (refresher, publisher) = build(config_rx.borrow_and_update().clone());
            match publisher.regenerate(&publisher.all_filters()).await {
                Ok(r) => tracing::info!(
                    documents = r.rendered,
                    changed = r.changed,
                    "merged feeds regenerated for the new config"
                ),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "regenerating merged feeds failed")
                }
            }
        }
        match &refresher {
            Ok(refresher) => poll_once(refresher, &publisher).await,
            Err(e) => tracing::error!(error = format!("{e:#}"), "cannot poll with this config"),
        }
        health.poll_cycle_done();
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One round: poll what is due, then finish whatever is unfinished in the database (this
/// round's new items, or those of a round or process cut short): cluster, then regenerate the
/// merged feeds of the sources marked unpublished.
async fn poll_once(refresher: &Refresher, publisher: &Publisher) {
    match refresher.poll_round(false).await {
        Ok(summary) if summary.polled > 0 => tracing::info!("{summary}"),
        Ok(_) => {}
        Err(e) => tracing::error!(error = format!("{e:#}"), "poll round failed"),
    }
    // Teaser items of full-text feeds get their article's body before they are clustered.
    if refresher.config.any_full_text() {
        match refresher.fetch_full_texts().await {
            Ok(s) if s.read + s.failed > 0 => tracing::info!("full text: {s}"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = format!("{e:#}"), "reading article pages failed"),
        }
    }
    // The next stage: new items join the stories other sources already carry.
    if let Err(e) = refresher.cluster_new_items().await {
        tracing::error!(error = format!("{e:#}"), "clustering new items failed");
    }
    match publisher.catch_up().await {
        Ok((r, feeds)) if !feeds.is_empty() => {
            metrics::counter!("tinbao_merged_feeds_regenerated_total").increment(r.changed as u64);
            tracing::info!(
                sources = feeds.len(),
                documents = r.rendered,
                changed = r.changed,
                "merged feeds regenerated"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = format!("{e:#}"), "regenerating merged feeds failed"),
    }
    follow_others(publisher).await;
}

/// Regenerates what other processes sharing the database changed.
async fn follow_others(publisher: &Publisher) {
    match publisher.follow().await {
        Ok(r) if r.rendered > 0 => {
            metrics::counter!("tinbao_merged_feeds_regenerated_total").increment(r.changed as u64);
            tracing::info!(
                documents = r.rendered,
                changed = r.changed,
                "merged feeds regenerated for changes polled by another process"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::error!(
            error = format!("{e:#}"),
            "following other processes' changes failed"
        ),
    }
}

/// Sends the WebSub content distributions that are due, every second: a changed feed reaches
/// its subscribers in about a second after it is written. Failures wait their backoff in the
/// database; nothing here loses a delivery.
async fn hub_loop(
    store: Store,
    config_rx: watch::Receiver<Arc<Config>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let config = config_rx.borrow().clone();
        if config.server.websub {
            match crate::websub::deliver_due(&store, &config, Utc::now()).await {
                Ok(d) if d.sent + d.retried + d.dropped > 0 => {
                    metrics::counter!("tinbao_websub_delivered_total").increment(d.sent as u64);
                    metrics::counter!("tinbao_websub_failed_total")
                        .increment((d.retried + d.dropped) as u64);
                    tracing::info!(
                        sent = d.sent,
                        retried = d.retried,
                        dropped = d.dropped,
                        "WebSub deliveries"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = format!("{e:#}"), "WebSub deliveries failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Builds the digests that fall due and sends the outbox, every tick. A failed send stays in
/// the outbox with its next attempt time; nothing here loses a digest. New digests are built
/// only once the first poll cycle has run, so a digest owed while the daemon was down carries
/// the news polled now, not only what was stored before.
async fn digest_loop(
    store: Store,
    mut config_rx: watch::Receiver<Arc<Config>>,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) {
    let mut parts: Option<(Digester, Mailer)> = None;
    let mut fresh = true;
    loop {
        if fresh || config_rx.has_changed().unwrap_or(false) {
            fresh = false;
            let config = config_rx.borrow_and_update().clone();
            parts = match digest_parts(&store, config).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "digests paused: cannot set up sending"
                    );
                    None
                }
            };
        }
        if let Some((digester, mailer)) = &parts {
            let now = Utc::now();
            let running = stop.clone();
            // Digests are built once the feeds have been polled since the start.
            let (built, sent) = digester
                .run_due(mailer, now, health.polled_once(), &move || {
                    !*running.borrow()
                })
                .await;
            // No connection is held open between rounds.
            mailer.close().await;
            match built {
                Ok(b) if b.digests > 0 => {
                    tracing::info!(built = b.digests, owed_nothing = b.empty, "digests built")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = format!("{e:#}"), "building digests failed"),
            }
            match sent {
                Ok(s) => {
                    metrics::counter!("tinbao_digests_sent_total").increment(s.sent as u64);
                    metrics::counter!("tinbao_digests_failed_total").increment(s.failed as u64);
                    metrics::counter!("tinbao_digest_retries_total").increment(s.retried as u64);
                    if s.sent + s.retried + s.failed > 0 {
                        tracing::info!(
                            sent = s.sent,
                            retried = s.retried,
                            failed = s.failed,
                            "digests sent"
                        );
                    }
                }
                Err(e) => tracing::error!(error = format!("{e:#}"), "sending digests failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn digest_parts(
    store: &Store,
    config: Arc<Config>,
) -> anyhow::Result<Option<(Digester, Mailer)>> {
    let Some(smtp) = &config.smtp else {
        tracing::warn!("no [smtp] configured: digests are not sent");
        return Ok(None);
    };
    let mailer = Mailer::from_url(&smtp.url, &config.base_dir())?;
    Ok(Some((Digester::new(store.clone(), config).await?, mailer)))
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
