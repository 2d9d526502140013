//! `/feeds/topic.{xml,atom,json}?q=QUERY[&category=SLUG][&province=SLUG]`: any topic as a
//! feed. The stories of the last `[server] topic_days` whose title or text matches the query
//! (the digests' matcher), newest first, each story once with its other outlets, in the merged
//! feeds' three formats, with the same ETag/304 and compression. A feed is kept per normalised
//! query and filters until the stories change (`Site::topic`); a bad query is a 400 saying
//! where and why, in Vietnamese; a client making more than the `topics` rate limit's feeds
//! gets a 429.

use super::feeds::{plain, serve};
use super::{AppState, client_ip, forms};
use crate::publish::site::Document;
use crate::publish::{self, FeedMeta, Format};
use crate::storage::StoryFilter;
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

fn bad(text: String) -> Response {
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
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| crate::text::nfc(v.trim()))
            .filter(|v| !v.is_empty())
    };
    let Some(q) = param("q") else {
        return bad("Thiếu chủ đề: thêm ?q=… (ví dụ ?q=\"Lào Cai\" lũ)\n".into());
    };
    if q.chars().count() > MAX_QUERY_CHARS {
        return bad(format!("Chủ đề quá dài: tối đa {MAX_QUERY_CHARS} ký tự\n"));
    }
    let query = match Query::parse(&q) {
        Ok(query) => query,
        Err(e) => {
            return bad(format!(
                "Chủ đề không hợp lệ ở cột {}: {}\n",
                e.column,
                forms::query_reason(e.reason)
            ));
        }
    };
    let config = state.config();
    let category = param("category");
    let province = param("province");
    if let Some(c) = &category
        && config.category(c).is_none()
    {
        return plain(
            StatusCode::NOT_FOUND,
            "Không có chuyên mục này (no such category)\n",
        );
    }
    if let Some(p) = &province
        && !forms::provinces(&config).iter().any(|(slug, _)| slug == p)
    {
        return plain(
            StatusCode::NOT_FOUND,
            "Không có tỉnh này (no such province)\n",
        );
    }
    let key = format!(
        "{query}\u{1f}{}\u{1f}{}\u{1f}{}",
        category.as_deref().unwrap_or(""),
        province.as_deref().unwrap_or(""),
        format.extension()
    );
    let headers = request.headers().clone();
    if let Some(doc) = state.site.topic(&key) {
        return serve(&doc, &headers);
    }
    // Only a feed that must be made counts against the client: it matches the stories.
    if let Err(wait) = state
        .limits
        .topics
        .attempt(&client_ip(&request), std::time::Instant::now())
    {
        let mut r = plain(
            StatusCode::TOO_MANY_REQUESTS,
            "Quá nhiều yêu cầu; xin thử lại sau (too many requests)\n",
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let generation = state.site.generation();
    let filter = category
        .clone()
        .map_or(StoryFilter::All, StoryFilter::Category);
    let since = chrono::Utc::now()
        - chrono::Duration::from_std(config.server.topic_days).unwrap_or(chrono::Duration::days(7));
    let publisher = Publisher::new(state.store.clone(), config.clone(), state.site.clone());
    let entries = match publisher
        .topic_entries(&query, &filter, province.as_deref(), since)
        .await
    {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "reading a topic feed's stories failed"
            );
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "Tạm thời không đọc được tin (the database did not answer)\n",
            );
        }
    };
    let mut query_string = url::form_urlencoded::Serializer::new(String::new());
    query_string.append_pair("q", &q);
    if let Some(c) = &category {
        query_string.append_pair("category", c);
    }
    if let Some(p) = &province {
        query_string.append_pair("province", p);
    }
    let meta = FeedMeta {
        path: "topic".into(),
        title: format!("{q} – tinbao"),
        description: format!("Tin về {q} từ các báo"),
        base_url: config.server.base_url.to_string(),
        language: "vi".into(),
        query: Some(query_string.finish()),
    };
    let last_modified = entries
        .iter()
        .map(|e| e.updated.max(e.published))
        .max()
        .unwrap_or_default();
    let body = publish::render(&meta, &entries, format);
    let doc = Arc::new(Document::new(format.content_type(), body, last_modified));
    state.site.keep_topic(&key, generation, doc.clone());
    serve(&doc, &headers)
}
