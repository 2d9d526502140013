//! `POST /websub`: the WebSub hub's subscription endpoint. A request is checked at once (a 400
//! saying which field is wrong, a 429 past the per-client or per-topic limits), answered
//! `202 Accepted`, and its intent verified in the background (`crate::websub`).

use super::feeds::plain;
use super::topic::bad;
use super::{AppState, client_ip};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;

/// The largest form a hub request may be.
const MAX_FORM: usize = 8 * 1024;

pub async fn request(State(state): State<AppState>, request: Request) -> Response {
    let config = state.config();
    if !config.server.websub {
        return plain(
            StatusCode::NOT_FOUND,
            "Máy chủ này không làm hub WebSub (no hub here)\n",
        );
    }
    if state
        .limits
        .hub
        .attempt(&client_ip(&request), std::time::Instant::now())
        .is_err()
    {
        return plain(
            StatusCode::TOO_MANY_REQUESTS,
            "Quá nhiều yêu cầu; xin thử lại sau (too many requests)\n",
        );
    }
    let body = match axum::body::to_bytes(request.into_body(), MAX_FORM).await {
        Ok(b) => b,
        Err(_) => return bad("Yêu cầu quá lớn (request too large)\n".into()),
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let hub_request = match crate::websub::parse_request(&config, state.bound, &form) {
        Ok(r) => r,
        Err(reason) => return bad(format!("{reason}\n")),
    };
    if hub_request.subscribe {
        let host = hub_request.callback.host_str().unwrap_or_default();
        match state
            .store
            .websub_counts(&hub_request.topic, host, Utc::now())
            .await
        {
            Ok((topic, _)) if topic >= crate::websub::MAX_PER_TOPIC => {
                return plain(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Nguồn tin này đã có quá nhiều người theo dõi qua hub\n",
                );
            }
            Ok((_, on_host)) if on_host >= crate::websub::MAX_PER_HOST => {
                return plain(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Máy nhận (hub.callback) này đã theo dõi quá nhiều nguồn tin\n",
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "reading WebSub subscriptions failed"
                );
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Tạm thời không nhận yêu cầu (the database did not answer)\n",
                );
            }
        }
    }
    let store = state.store.clone();
    tokio::spawn(async move {
        match crate::websub::verify_and_apply(&store, &hub_request).await {
            Ok(verified) => tracing::info!(
                callback = %hub_request.callback,
                topic = %hub_request.topic,
                subscribe = hub_request.subscribe,
                verified,
                "WebSub request answered"
            ),
            Err(e) => tracing::error!(error = format!("{e:#}"), "storing a WebSub request failed"),
        }
    });
    plain(StatusCode::ACCEPTED, "Đã nhận; đang xác minh (accepted)\n")
}
