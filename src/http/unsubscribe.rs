//! `/unsubscribe/{token}`: GET shows a confirm button (link scanners and prefetchers issue GETs,
//! so a GET never unsubscribes); POST unsubscribes. A mail client's one-click POST (RFC 8058,
//! body `List-Unsubscribe=One-Click`) works the same way, with no page in between.

use super::AppState;
use crate::digest::links::Purpose;
use crate::publish::escape;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;

pub async fn page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    if state
        .links
        .verify(Purpose::Unsubscribe, &token, Utc::now())
        .is_none()
    {
        return invalid();
    }
    Html(format!(
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Hủy đăng ký</title></head><body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem\">\
         <h1>Hủy nhận bản tin?</h1><p>Bạn sẽ không nhận thêm bản tin nào từ tinbao.</p>\
         <form method=\"post\" action=\"{}\"><button type=\"submit\" style=\"font-size:1.1rem;padding:.6rem 1.2rem\">Hủy đăng ký</button></form>\
         </body></html>",
        escape(&format!("/unsubscribe/{token}"))
    ))
    .into_response()
}

pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(id) = state.links.verify(Purpose::Unsubscribe, &token, Utc::now()) else {
        return invalid();
    };
    match state.store.set_subscriber_status(id, "unsubscribed").await {
        Ok(_) => Html(
            "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>Đã hủy đăng ký</title></head>\
             <body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem\">\
             <h1>Đã hủy đăng ký</h1><p>Bạn sẽ không nhận thêm bản tin nào.</p></body></html>",
        )
        .into_response(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "unsubscribe failed");
            (StatusCode::SERVICE_UNAVAILABLE, "Tạm thời không hủy được, xin thử lại sau.").into_response()
        }
    }
}

fn invalid() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html("<!doctype html><meta charset=\"utf-8\"><p>Liên kết không hợp lệ.</p>"),
    )
        .into_response()
}
