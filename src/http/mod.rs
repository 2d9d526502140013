//! The built-in HTTP server (axum): merged feeds, the index page, OPML, one-click unsubscribe,
//! /healthz and /metrics. Handlers read shared
//! state and never touch sources or SMTP; feeds are served from memory, already compressed.

mod feeds;
mod ops;
mod pages;
mod unsubscribe;

use crate::config::Config;
use crate::digest::links::Links;
use crate::publish::site::Site;
use crate::storage::Store;
use std::sync::Arc;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The current config: a reload replaces it without restarting the server.
    pub config_rx: tokio::sync::watch::Receiver<Arc<Config>>,
    pub site: Site,
    pub store: Store,
    pub links: Links,
    pub health: Arc<ops::Health>,
    /// Renders /metrics; absent when no recorder is installed (tests, one-shot commands).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl AppState {
    /// State with a config that never changes (tests, one-shot servers).
    pub fn fixed(config: Arc<Config>, site: Site, store: Store, links: Links) -> AppState {
        let (_, config_rx) = tokio::sync::watch::channel(config);
        AppState {
            config_rx,
            site,
            store,
            links,
            health: Arc::default(),
            metrics: None,
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config_rx.borrow().clone()
    }
}

pub use ops::Health;

pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/", axum::routing::get(pages::index))
        .route("/healthz", axum::routing::get(ops::healthz))
        .route("/metrics", axum::routing::get(ops::metrics))
        .route("/opml", axum::routing::get(pages::opml))
        .route("/feeds/{*name}", axum::routing::get(feeds::feed))
        .route(
            "/unsubscribe/{token}",
            axum::routing::get(unsubscribe::page).post(unsubscribe::confirm),
        )
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn(count_requests))
        .with_state(state)
}

/// Counts HTTP requests by route and status (`tinbao_http_requests_total`).
async fn count_requests(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    metrics::counter!("tinbao_http_requests_total", "route" => route, "status" => response.status().as_u16().to_string()).increment(1);
    response
}

/// Headers every response carries: no sniffing, no referrer leaks, a strict content policy.
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{self, HeaderValue};
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'"),
    );
    response
}
