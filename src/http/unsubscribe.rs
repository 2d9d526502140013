//! `/unsubscribe/{token}`: GET shows a confirm button (link scanners and prefetchers issue GETs,
//! so a GET never unsubscribes); POST unsubscribes. A mail client's one-click POST (RFC 8058,
//! body `List-Unsubscribe=One-Click`) works the same way, with no page in between. No CSRF token
//! here: the one-click POST carries no cookie, and the link's token is the credential.

use super::{AppState, views};
use crate::digest::links::Purpose;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;

pub async fn page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let home = super::home(&state.config());
    match state
        .links
        .verify(&state.store, Purpose::Unsubscribe, &token, Utc::now())
        .await
    {
        Ok(Some(_)) => views::notice(
            StatusCode::OK,
            &home,
            "Hủy nhận bản tin?",
            &["Bạn sẽ không nhận thêm bản tin nào từ tinbao."],
            Some(views::Button {
                action: format!("{home}unsubscribe/{token}"),
                csrf: None,
                button: "Hủy đăng ký",
                danger: true,
            }),
            None,
        ),
        Ok(None) => views::invalid_link(&home),
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "checking an unsubscribe link failed"
            );
            views::unavailable(&home)
        }
    }
}

pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let home = super::home(&state.config());
    let result = async {
        let Some(id) = state
            .links
            .verify(&state.store, Purpose::Unsubscribe, &token, Utc::now())
            .await?
        else {
            return Ok(None);
        };
        state.store.set_subscriber_status(id, "unsubscribed").await
    }
    .await;
    match result {
        Ok(Some(_)) => views::notice(
            StatusCode::OK,
            &home,
            "Đã hủy đăng ký",
            &[
                "Bạn sẽ không nhận thêm bản tin nào. Muốn nhận lại, bạn có thể đăng ký bất cứ lúc nào.",
            ],
            None,
            Some(("Đăng ký lại", format!("{home}subscribe"))),
        ),
        Ok(None) => views::invalid_link(&home),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "unsubscribe failed");
            views::unavailable(&home)
        }
    }
}
