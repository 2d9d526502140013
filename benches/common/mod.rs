//! Helpers shared by the benchmarks: deterministic Vietnamese feed documents, a loopback server
//! for them that answers conditional requests with 304 (and can replace one feed's document to
//! model a new item), child processes measured for wall time, CPU and their own peak RSS, and
//! Postfix's smtp-sink.

#![allow(dead_code)]

pub mod measure;
pub mod sink;
pub mod text;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The documents a loopback server serves: fixed ones, and replacements (versions 2, 3, …) set
/// later.
#[derive(Default)]
pub struct FeedSet {
    docs: Vec<String>,
    replaced: RwLock<HashMap<usize, (u64, Arc<String>)>>,
}

impl FeedSet {
    pub fn new(docs: Vec<String>) -> FeedSet {
        FeedSet {
            docs,
            replaced: RwLock::default(),
        }
    }

    /// Serves `doc` for feed `n` from now on, with a new ETag (its version: 2 for the first
    /// replacement, then 3, …).
    pub fn replace(&self, n: usize, doc: String) {
        let mut replaced = self.replaced.write().expect("feed set lock");
        let version = replaced.get(&n).map_or(2, |(v, _)| v + 1);
        replaced.insert(n, (version, Arc::new(doc)));
    }

    pub fn bytes(&self) -> usize {
        self.docs.iter().map(String::len).sum()
    }

    fn get(&self, n: usize) -> Option<(String, Body)> {
        if let Some((version, doc)) = self.replaced.read().expect("feed set lock").get(&n) {
            return Some((
                format!("\"v{version}-{n}\""),
                Body::from(doc.as_str().to_owned()),
            ));
        }
        let doc = self.docs.get(n)?;
        Some((format!("\"v1-{n}\""), Body::from(doc.clone())))
    }
}

/// Serves `docs` at `/feed/{n}` on each of `ips` (loopback addresses); returns (ip, port) pairs.
pub async fn serve_feeds(ips: &[String], docs: Arc<Vec<String>>) -> Vec<(String, u16)> {
    let set = Arc::new(FeedSet::new(Arc::unwrap_or_clone(docs)));
    serve_feed_set(ips, set).await
}

/// Serves a [`FeedSet`] at `/feed/{n}` on each of `ips`; returns (ip, port) pairs.
pub async fn serve_feed_set(ips: &[String], set: Arc<FeedSet>) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for ip in ips {
        let listener = tokio::net::TcpListener::bind((ip.as_str(), 0))
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let app = axum::Router::new()
            .route("/feed/{n}", axum::routing::get(serve))
            .with_state(set.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        out.push((ip.clone(), port));
    }
    out
}

async fn serve(
    Path(n): Path<usize>,
    State(set): State<Arc<FeedSet>>,
    headers: HeaderMap,
) -> Response {
    let Some((etag, body)) = set.get(n) else {
        return Response::builder().status(404).body(Body::empty()).unwrap();
    };
    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header("etag", etag)
            .body(Body::empty())
            .unwrap();
    }
    Response::builder()
        .header("content-type", "application/rss+xml; charset=utf-8")
        .header("etag", etag)
        .body(body)
        .unwrap()
}

/// Reads a numeric environment variable, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One machine-readable result line for `bench/run`: `RESULT name=… key=value …` (values
/// without spaces).
pub fn result(name: &str, fields: &[(&str, String)]) {
    let mut line = format!("RESULT name={name}");
    for (k, v) in fields {
        line.push_str(&format!(" {k}={}", v.replace(' ', "_")));
    }
    println!("{line}");
}

pub const WORDS: &[&str] = &[
    "Lào Cai",
    "Yên Bái",
    "Hà Giang",
    "xây dựng",
    "nông thôn mới",
    "Đảng bộ",
    "huyện",
    "Bảo Thắng",
    "Bát Xát",
    "mưa lũ",
    "sạt lở",
    "đường giao thông",
    "học sinh",
    "trường",
    "bệnh viện",
    "du lịch",
    "Sa Pa",
    "kinh tế",
    "hợp tác xã",
    "chè",
    "quế",
    "thủy điện",
    "biên giới",
    "cửa khẩu",
    "nhân dân",
    "cán bộ",
    "đảng viên",
    "chi bộ",
    "hội nghị",
    "tỉnh ủy",
    "ủy ban",
    "phát triển",
    "đầu tư",
    "năm 2026",
    "hỗ trợ",
    "người dân",
];

/// How generated item text is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Text {
    /// Titles and bodies drawn from the 36 phrases of [`WORDS`]: every item looks like every
    /// other, the worst case for clustering.
    Phrases,
    /// Sentences over a few thousand syllables drawn with a Zipf law, names, numbers of the
    /// story; one item in ten is also carried (same text) by a sibling feed. See [`text`].
    Varied,
}

impl Text {
    /// `TEXT=phrases` or `TEXT=varied` (the default `default`).
    pub fn from_env(default: Text) -> Text {
        match std::env::var("TEXT").as_deref() {
            Ok("phrases") => Text::Phrases,
            Ok("varied") => Text::Varied,
            _ => default,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Text::Phrases => "phrases",
            Text::Varied => "varied",
        }
    }
}

/// How a generated feed looks: its text, and its items' dates (the newest at `newest`, Unix
/// seconds; each next one `spacing` seconds older, so more items mean a longer history rather
/// than a denser day).
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub text: Text,
    pub newest: i64,
    pub spacing: i64,
    /// Times each item's body paragraph is repeated: 1 gives a teaser of about 1 KB, 10 an
    /// article's length (the same words, so the same stories).
    pub paragraphs: usize,
}

impl Default for Style {
    fn default() -> Style {
        Style {
            text: Text::Phrases,
            newest: now_hour(),
            spacing: 2 * 3600,
            paragraphs: 1,
        }
    }
}

/// Now, in Unix seconds, rounded down to the hour (documents stay equal within a run).
pub fn now_hour() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    now - now % 3600
}

/// A deterministic pseudo-random RSS document with Vietnamese titles and HTML descriptions,
/// from the 36 phrases, dated over the last days.
pub fn feed_doc(feed: usize, items: usize) -> String {
    feed_doc_with(feed, items, 0, &Style::default())
}

/// Feed `feed`'s document: its `items` items, plus `extra` newer ones (a later version).
pub fn feed_doc_with(feed: usize, items: usize, extra: usize, style: &Style) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>Báo số {feed}</title><link>https://bao{feed}.vn/</link>"
    );
    // Newest first, as feeds list them; extra items get the numbers after the first version's.
    let numbers = (items..items + extra).rev().chain(0..items);
    for (position, i) in numbers.enumerate() {
        let (title, body) = match style.text {
            Text::Phrases => phrases_item(feed, i),
            Text::Varied => text::item(feed, i),
        };
        let published = style.newest - position as i64 * style.spacing - (feed % 97) as i64 * 37;
        let date = chrono::DateTime::from_timestamp(published, 0)
            .unwrap_or_default()
            .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).expect("offset"))
            .to_rfc2822();
        let body = vec![body; style.paragraphs.max(1)].join("</p><p>");
        out.push_str(&format!(
            "<item><title>{title}</title><link>https://bao{feed}.vn/tin/{i}.html</link><guid>bao{feed}-{i}</guid>\
             <description><![CDATA[<p><img src=\"/anh/{i}.jpg\" width=\"200\"> {body}</p><p><a href=\"/tin/{i}.html\">Xem tiếp</a></p>]]></description>\
             <pubDate>{date}</pubDate></item>"
        ));
    }
    out.push_str("</channel></rss>");
    out
}

/// Item `i` of feed `feed` in the phrases style: 8 phrases of title, 40 of body.
fn phrases_item(feed: usize, i: usize) -> (String, String) {
    let mut seed = ((feed as u64 + 1) << 32 | i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut phrase = |n: usize| {
        (0..n)
            .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let title = phrase(8);
    (title, phrase(40))
}
