//! Operators' endpoints. `/healthz`: 200 when the database answers and a poll cycle finished
//! recently, else 503, with a JSON body saying which. `/metrics`: Prometheus text format.

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A poll cycle older than this means the poll loop is stuck.
const STALE_POLL: i64 = 15 * 60;

/// What the workers report for health checks.
#[derive(Debug)]
pub struct Health {
    /// Unix seconds when the last poll cycle ended (0: none yet).
    last_poll: AtomicI64,
    started: i64,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            last_poll: AtomicI64::new(0),
            started: chrono::Utc::now().timestamp(),
        }
    }
}

impl Health {
    /// Whether a poll cycle has finished since start-up.
    pub fn polled_once(&self) -> bool {
        self.last_poll.load(Ordering::Relaxed) != 0
    }

    pub fn poll_cycle_done(&self) {
        self.last_poll
            .store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
    }
}

pub async fn healthz(State(state): State<AppState>) -> Response {
    let now = chrono::Utc::now().timestamp();
    let database = tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await;
    let database_ok = matches!(database, Ok(Ok(())));
    let last = state.health.last_poll.load(Ordering::Relaxed);
    // Before the first cycle ends, count from start-up.
    let age = now
        - if last == 0 {
            state.health.started
        } else {
            last
        };
    let polling_ok = age <= STALE_POLL;
    let status = if database_ok && polling_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if status == StatusCode::OK { "ok" } else { "unhealthy" },
        "database": if database_ok { "ok" } else { "unreachable" },
        "last_poll_cycle_age_seconds": if last == 0 { None } else { Some(age) },
        "polling": if polling_ok { "ok" } else { "stale" },
    });
    (status, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.metrics else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process\n",
        )
            .into_response();
    };
    // Feeds by state are read at scrape time: they are data on the feeds' rows.
    if let Ok(states) = state.store.feed_states().await {
        let (mut ok, mut failing, mut inactive, mut new) = (0.0, 0.0, 0.0, 0.0);
        for f in &states {
            match (f.active, f.error_count, f.last_fetch_at) {
                (false, _, _) => inactive += 1.0,
                (true, 0, None) => new += 1.0,
                (true, 0, Some(_)) => ok += 1.0,
                (true, _, _) => failing += 1.0,
            }
        }
        for (label, n) in [
            ("ok", ok),
            ("failing", failing),
            ("inactive", inactive),
            ("new", new),
        ] {
            metrics::gauge!("tinbao_feeds", "state" => label).set(n);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
