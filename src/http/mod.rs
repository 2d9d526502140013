//! The built-in HTTP server (axum): merged feeds, the index page, OPML, the self-service
//! subscription pages (subscribe, confirm, manage, unsubscribe), the WebSub hub, /healthz and /metrics. Handlers
//! read shared state and never touch sources; feeds are served from memory, already compressed.
//! The only mail sent from here is self-service notices (`mailing`), in the background.

mod confirm;
mod csrf;
mod feeds;
mod forms;
mod mailing;
mod manage;
mod ops;
mod pages;
mod private;
mod ratelimit;
mod subscribe;
mod topic;
mod unsubscribe;
mod views;
mod websub;

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
    /// Sign-up rate limits (in memory).
    pub limits: Arc<Limits>,
    /// The address the server is bound to (with `listen` on port 0, the port it got).
    pub bound: Option<std::net::SocketAddr>,
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
            limits: Arc::default(),
            bound: None,
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config_rx.borrow().clone()
    }
}

pub use ops::Health;
pub use ratelimit::{Limiter, Limits};

pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/", axum::routing::get(pages::index))
        .route("/healthz", axum::routing::get(ops::healthz))
        .route("/metrics", axum::routing::get(ops::metrics))
        .route("/opml", axum::routing::get(pages::opml))
        .route("/websub", axum::routing::post(websub::request))
        .route("/feeds/topic.xml", axum::routing::get(topic::rss))
        .route("/feeds/topic.atom", axum::routing::get(topic::atom))
        .route("/feeds/topic.json", axum::routing::get(topic::json))
        .route("/feeds/me/{file}", axum::routing::get(private::feed))
        .route("/feeds/{*name}", axum::routing::get(feeds::feed))
        .route(
            "/subscribe",
            axum::routing::get(subscribe::form).post(subscribe::submit),
        )
        .route(
            "/confirm/{token}",
            axum::routing::get(confirm::page).post(confirm::confirm),
        )
        .route(
            "/manage/{token}",
            axum::routing::get(manage::page).post(manage::submit),
        )
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
    // Pages reached through a subscriber's link, or showing their address, are never cached.
    let private = ["/subscribe", "/confirm/", "/manage/", "/unsubscribe/"]
        .iter()
        .any(|p| request.uri().path().starts_with(p));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if private {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
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
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    response
}

/// The site's root path, from the public base URL ("/" or "/tin/"): pages link and post there.
fn home(config: &Config) -> String {
    config.server.base_url.path().to_string()
}

/// Whether the public site is https (cookies then get `Secure`).
fn secure(config: &Config) -> bool {
    config.server.base_url.scheme() == "https"
}

/// The client's IP, for rate limits: the connection's peer (served with
/// `into_make_service_with_connect_info`), "unknown" without one. A peer on loopback is taken
/// to be a reverse proxy on the same machine (tinbao speaks no TLS, so an https site has one):
/// then the client is the last `X-Forwarded-For` entry, the one that proxy added. A remote peer's
/// header is ignored, since anyone can send one.
fn client_ip(request: &axum::extract::Request) -> String {
    let Some(peer) = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
    else {
        return "unknown".to_string();
    };
    let forwarded = || {
        request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .next_back()?
            .to_str()
            .ok()?
            .rsplit(',')
            .next()?
            .trim()
            .parse::<std::net::IpAddr>()
            .ok()
    };
    match peer.is_loopback().then(forwarded).flatten() {
        Some(client) => client.to_string(),
        None => peer.to_string(),
    }
}

fn with_cookie(response: &mut axum::response::Response, cookie: Option<axum::http::HeaderValue>) {
    if let Some(cookie) = cookie {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, cookie);
    }
}
