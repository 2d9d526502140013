//! `/feeds/me/{token}.atom` (and `.xml`, `.json`): a subscriber's private feed, the stories their
//! own topics bring, as a topic feed makes them. The token is the subscriber's `feed` link
//! (see `digest::links`), listed on their manage page and revoked from there; an unknown or
//! revoked token is a 404, an unsubscribed address's feed a 410 (a feed reader stops asking).

use super::feeds::{plain, serve};
use super::{AppState, topic};
use crate::digest::links::Purpose;
use crate::digest::topic::Topic;
use crate::publish::{FeedMeta, Format};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::Utc;

pub async fn feed(
    State(state): State<AppState>,
    Path(file): Path<String>,
    request: Request,
) -> Response {
    let gone = || {
        plain(
            StatusCode::NOT_FOUND,
            "Không có nguồn tin này (no such feed)\n",
        )
    };
    let Some((token, format)) = [Format::Atom, Format::Rss, Format::Json]
        .into_iter()
        .find_map(|f| Some((file.strip_suffix(&format!(".{}", f.extension()))?, f)))
    else {
        return gone();
    };
    let found = match state
        .links
        .verify(&state.store, Purpose::Feed, token, Utc::now())
        .await
    {
        Ok(Some(id)) => state.store.subscriber(id).await,
        Ok(None) => return gone(),
        Err(e) => Err(e),
    };
    let subscriber = match found {
        Ok(Some(s)) => s,
        Ok(None) => return gone(),
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "reading a private feed's subscriber failed"
            );
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "Tạm thời không đọc được tin (the database did not answer)\n",
            );
        }
    };
    if subscriber.status == "unsubscribed" {
        return plain(
            StatusCode::GONE,
            "Địa chỉ này đã hủy đăng ký; nguồn tin riêng không còn (unsubscribed)\n",
        );
    }
    let config = state.config();
    let topics: Vec<Topic> = subscriber
        .topics
        .iter()
        .filter_map(|spec| Topic::parse(spec, &config).ok())
        .collect();
    // Each subscriber's own document (its self link carries the token), for their topics now.
    let mut specs: Vec<String> = topics.iter().map(topic::topic_key).collect();
    specs.sort_unstable();
    let key = format!(
        "me\u{1f}{}\u{1f}{token}\u{1f}{}\u{1f}{}",
        subscriber.id,
        specs.join("\u{1e}"),
        format.extension()
    );
    let headers = request.headers().clone();
    let doc = match state.site.topic(&key) {
        Some(doc) => doc,
        None => {
            if let Err(response) = topic::admit(&state, &request) {
                return *response;
            }
            let generation = state.site.generation();
            let meta = FeedMeta {
                path: format!("me/{token}"),
                title: "Tin theo chủ đề của bạn – tinbao".into(),
                description: topics
                    .iter()
                    .map(|t| t.describe(&config))
                    .collect::<Vec<_>>()
                    .join("; "),
                base_url: config.server.base_url.to_string(),
                language: "vi".into(),
                query: None,
                hub: None,
            };
            match topic::build(&state, &config, &topics, &meta, format).await {
                Ok(doc) => {
                    state.site.keep_topic(&key, generation, doc.clone());
                    doc
                }
                Err(response) => return response,
            }
        }
    };
    let mut response = serve(&doc, &headers);
    // Not for shared caches: the address is a credential.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    response
}
