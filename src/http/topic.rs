//! `/feeds/topic.{xml,atom,json}?q=QUERY[&category=SLUG…][&province=SLUG…]`: any topic as a
//! feed, a subscriber's topic included (several categories or provinces, repeated or
//! comma-separated; the query may be left out when a filter is given). The stories of the last
//! `[server] topic_days` that the topic brings (the digests' matcher), newest first, each story once with its other outlets, in the merged
//! feeds' three formats, with the same ETag/304 and compression. A feed is kept per normalised
//! query and filters until the stories change (`Site::topic`); a bad query is a 400 saying
//! where and why, in Vietnamese; a client making more than the `topics` rate limit's feeds
//! gets a 429.

use super::feeds::{plain, serve};
use super::{AppState, client_ip, forms};
use crate::digest::topic::Topic;
use crate::publish::site::Document;
use crate::publish::{self, FeedMeta, Format};
use crate::text::Query;
use crate::worker::publisher::Publisher;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use std::sync::Arc;

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

pub async fn rss(state: State<AppState>, request: Request) -> Response {
    topic(state, request, Format::Rss).await
}

pub async fn atom(state: State<AppState>, request: Request) -> Response {
    topic(state, request, Format::Atom).await
}

pub async fn json(state: State<AppState>, request: Request) -> Response {
    topic(state, request, Format::Json).await
}

/// A 400 whose plain-text body says why.
pub(super) fn bad(text: String) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn topic(State(state): State<AppState>, request: Request, format: Format) -> Response {
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let values = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(|x| crate::text::nfc(x.trim()))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let q = values("q").into_iter().next_back();
    let (categories, provinces) = (values("category"), values("province"));
    if q.is_none() && categories.is_empty() && provinces.is_empty() {
        return bad(
            "Thiếu chủ đề: thêm ?q=… (ví dụ ?q=\"Lào Cai\" lũ), ?category=… hoặc ?province=…\n"
                .into(),
        );
    }
    if params.iter().filter(|(k, _)| k == "q").count() > 1 {
        return bad("Chỉ một ?q=… cho mỗi nguồn tin\n".into());
    }
    let query = match q.as_deref().map(parse_query).transpose() {
        Ok(query) => query,
        Err(response) => return *response,
    };
    let config = state.config();
    if let Some(c) = categories.iter().find(|c| config.category(c).is_none()) {
        return plain_owned(
            StatusCode::NOT_FOUND,
            format!("Không có chuyên mục “{c}” (no such category)\n"),
        );
    }
    let known = forms::provinces(&config);
    if let Some(p) = provinces
        .iter()
        .find(|p| !known.iter().any(|(slug, _)| slug == *p))
    {
        return plain_owned(
            StatusCode::NOT_FOUND,
            format!("Không có tỉnh “{p}” (no such province)\n"),
        );
    }
    let topic = Topic {
        categories,
        provinces,
        query,
    };
    let key = format!("{}\u{1f}{}", topic_key(&topic), format.extension());
    let headers = request.headers().clone();
    if let Some(doc) = state.site.topic(&key) {
        return serve(&doc, &headers);
    }
    if let Err(response) = admit(&state, &request) {
        return *response;
    }
    let generation = state.site.generation();
    let title = topic.describe(&config);
    let meta = FeedMeta {
        path: "topic".into(),
        title: format!("{title} – tinbao"),
        description: format!("Tin về {title} từ các báo"),
        base_url: config.server.base_url.to_string(),
        language: "vi".into(),
        query: Some(query_string(&topic)),
        hub: None,
    };
    match build(&state, &config, &[topic], &meta, format).await {
        Ok(doc) => {
            state.site.keep_topic(&key, generation, doc.clone());
            serve(&doc, &headers)
        }
        Err(response) => response,
    }
}

fn parse_query(q: &str) -> Result<Query, Box<Response>> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(Box::new(bad(format!(
            "Chủ đề quá dài: tối đa {MAX_QUERY_CHARS} ký tự\n"
        ))));
    }
    Query::parse(q).map_err(|e| {
        Box::new(bad(format!(
            "Chủ đề không hợp lệ ở cột {}: {}\n",
            e.column,
            forms::query_reason(e.reason)
        )))
    })
}

/// What identifies a topic's feed in the cache: its normalised query and sorted filters.
pub(super) fn topic_key(topic: &Topic) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        topic
            .query
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        topic.categories.join(","),
        topic.provinces.join(",")
    )
}

/// The query string of a topic's feed: `q=…`, then each `category=`, then each `province=`.
pub fn query_string(topic: &Topic) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    if let Some(q) = &topic.query {
        out.append_pair("q", q.source());
    }
    for c in &topic.categories {
        out.append_pair("category", c);
    }
    for p in &topic.provinces {
        out.append_pair("province", p);
    }
    out.finish()
}

/// The absolute URL of a topic's Atom feed.
pub fn feed_url(config: &crate::config::Config, topic: &Topic) -> String {
    format!(
        "{}feeds/topic.atom?{}",
        config.server.base_url,
        query_string(topic)
    )
}

/// Counts a feed to be made against the client's `topics` limit: a 429 past it.
pub(super) fn admit(state: &AppState, request: &Request) -> Result<(), Box<Response>> {
    state
        .limits
        .topics
        .attempt(&client_ip(request), std::time::Instant::now())
        .map_err(|wait| {
            let mut r = plain(
                StatusCode::TOO_MANY_REQUESTS,
                "Quá nhiều yêu cầu; xin thử lại sau (too many requests)\n",
            );
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Box::new(r)
        })
}

/// The feed of what `topics` bring over the last `[server] topic_days`.
pub(super) async fn build(
    state: &AppState,
    config: &Arc<crate::config::Config>,
    topics: &[Topic],
    meta: &FeedMeta,
    format: Format,
) -> Result<Arc<Document>, Response> {
    let since = chrono::Utc::now()
        - chrono::Duration::from_std(config.server.topic_days).unwrap_or(chrono::Duration::days(7));
    let publisher = Publisher::new(state.store.clone(), config.clone(), state.site.clone());
    let entries = publisher.topic_entries(topics, since).await.map_err(|e| {
        tracing::error!(
            error = format!("{e:#}"),
            "reading a topic feed's stories failed"
        );
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "Tạm thời không đọc được tin (the database did not answer)\n",
        )
    })?;
    let last_modified = entries
        .iter()
        .map(|e| e.updated.max(e.published))
        .max()
        .unwrap_or_default();
    let body = publish::render(meta, &entries, format);
    Ok(Arc::new(Document::new(
        format.content_type(),
        body,
        last_modified,
    )))
}

fn plain_owned(status: StatusCode, text: String) -> Response {
    let mut r = bad(text);
    *r.status_mut() = status;
    r
}
