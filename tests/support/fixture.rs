//! A feed server on loopback whose every path is scripted by the test: body, status, headers,
//! ETag handling, delay, gzip. It records each request's path and headers and the peak number
//! of requests in flight, so tests can check what tinbao sent and how politely.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Route {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    /// When set, requests with a matching If-None-Match get a 304.
    pub etag: Option<String>,
    /// When set, requests with this exact If-Modified-Since get a 304.
    pub last_modified: Option<String>,
    pub delay: Duration,
}

impl Route {
    pub fn ok(body: impl Into<Vec<u8>>) -> Route {
        Route {
            status: 200,
            body: body.into(),
            headers: vec![("content-type".into(), "application/rss+xml".into())],
            ..Route::default()
        }
    }

    pub fn status(status: u16) -> Route {
        Route {
            status,
            body: b"error".to_vec(),
            ..Route::default()
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Route {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
}

#[derive(Default)]
struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

#[derive(Clone)]
pub struct FixtureServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FixtureServer {
    pub async fn start() -> FixtureServer {
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FixtureServer { addr, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, route: Route) {
        self.shared
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), route);
    }

    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.shared
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let headers = request.headers().clone();
    shared.seen.lock().unwrap().push(Seen {
        path: path.clone(),
        headers: headers.clone(),
    });
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.peak.fetch_max(now, Ordering::SeqCst);
    let route = shared.routes.lock().unwrap().get(&path).cloned();
    let response = respond(route, &headers).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn respond(route: Option<Route>, headers: &HeaderMap) -> Response {
    let Some(route) = route else {
        return Response::builder()
            .status(404)
            .body(Body::from("no such feed"))
            .unwrap();
    };
    if !route.delay.is_zero() {
        tokio::time::sleep(route.delay).await;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let etag_hit = route.etag.is_some() && header("if-none-match") == route.etag;
    let lm_hit =
        route.last_modified.is_some() && header("if-modified-since") == route.last_modified;
    let mut builder = Response::builder();
    if let Some(etag) = &route.etag {
        builder = builder.header("etag", etag);
    }
    if let Some(lm) = &route.last_modified {
        builder = builder.header("last-modified", lm);
    }
    if etag_hit || lm_hit {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap();
    }
    for (k, v) in &route.headers {
        builder = builder.header(k.as_str(), HeaderValue::from_str(v).unwrap());
    }
    builder
        .status(route.status)
        .body(Body::from(route.body))
        .unwrap()
}

/// `data` gzip-compressed.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}
