//! `/confirm/{token}`: the double opt-in link. GET shows a button (mail scanners and link
//! prefetchers issue GETs, so a GET never confirms); POST activates the subscriber, consumes the
//! confirm link, and mails a welcome carrying manage and unsubscribe links.

use super::{AppState, csrf, mailing, views};
use crate::digest::links::Purpose;
use crate::digest::notices;
use crate::digest::topic::Topic;
use anyhow::Context as _;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;

pub async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let config = state.config();
    let home = super::home(&config);
    match state
        .links
        .verify(&state.store, Purpose::Confirm, &token, Utc::now())
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => return views::invalid_link(&home),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "checking a confirm link failed");
            return views::unavailable(&home);
        }
    }
    let csrf = csrf::issue(state.links.secret(), &headers, super::secure(&config));
    let mut response = views::notice(
        StatusCode::OK,
        &home,
        "Xác nhận đăng ký",
        &["Bấm nút dưới đây để xác nhận địa chỉ email và bắt đầu nhận bản tin tinbao."],
        Some(views::Button {
            action: format!("{home}confirm/{token}"),
            csrf: Some(csrf.field),
            button: "Xác nhận đăng ký",
            danger: false,
        }),
        None,
    );
    super::with_cookie(&mut response, csrf.set_cookie);
    response
}

pub async fn confirm(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let config = state.config();
    let home = super::home(&config);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, super::subscribe::MAX_BODY)
        .await
        .unwrap_or_default();
    let form = super::forms::Form::parse(&body);
    if !csrf::check(state.links.secret(), &parts.headers, form.get("csrf")) {
        return views::forbidden_form(&home);
    }
    let now = Utc::now();
    let result = async {
        let Some(id) = state
            .links
            .verify(&state.store, Purpose::Confirm, &token, now)
            .await?
        else {
            return Ok(None);
        };
        if state
            .store
            .activate_subscriber(id, &["pending"], now)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let Some(subscriber) = state.store.subscriber(id).await? else {
            return Ok(None);
        };
        let links = state
            .links
            .mint_email_links(&state.store, &[id], now)
            .await?
            .pop()
            .context("no links minted")?;
        anyhow::Ok(Some((subscriber, links)))
    }
    .await;
    let (subscriber, links) = match result {
        Ok(Some(found)) => found,
        Ok(None) => return views::invalid_link(&home),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "confirming a subscriber failed");
            return views::unavailable(&home);
        }
    };
    let (manage, unsubscribe) = (links.manage, links.unsubscribe);
    let notice = notices::Notice {
        to: subscriber.email.clone(),
        topics: subscriber
            .topics
            .iter()
            .map(|s| Topic::parse(s, &config).map_or_else(|_| s.clone(), |t| t.describe(&config)))
            .collect(),
        schedule: super::forms::schedule_label(&config, &subscriber.schedule),
        base_url: config.server.base_url.to_string(),
    };
    let manage_link = manage.clone();
    mailing::send_later(&config, move |from| {
        notices::welcome(&notice, &manage, &unsubscribe, from)
    });
    tracing::info!(subscriber = subscriber.id, "subscriber confirmed");
    let welcome = format!(
        "Cảm ơn bạn! {} sẽ nhận bản tin theo lựa chọn của bạn. Chúng tôi vừa gửi một thư chào mừng kèm liên kết quản lý và hủy đăng ký.",
        subscriber.email
    );
    views::notice(
        StatusCode::OK,
        &home,
        "Đã xác nhận đăng ký",
        &[&welcome],
        None,
        Some(("Quản lý đăng ký", manage_link)),
    )
}
