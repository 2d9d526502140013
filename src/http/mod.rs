//! The built-in HTTP server (axum): merged feeds, the index page, OPML, one-click unsubscribe. Handlers read shared
//! state and never touch sources or SMTP; feeds are served from memory, already compressed.

mod feeds;
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
    pub config: Arc<Config>,
    pub site: Site,
    pub store: Store,
    pub links: Links,
}

pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/", axum::routing::get(pages::index))
        .route("/opml", axum::routing::get(pages::opml))
        .route("/feeds/{*name}", axum::routing::get(feeds::feed))
        .route(
            "/unsubscribe/{token}",
            axum::routing::get(unsubscribe::page).post(unsubscribe::confirm),
        )
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
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
