//! Helpers shared by the benchmarks: deterministic Vietnamese feed documents, and a loopback
//! server for them that answers conditional requests with 304.

#![allow(dead_code)]

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::sync::Arc;

/// Serves `docs` at `/feed/{n}` on each of `ips` (loopback addresses); returns (ip, port) pairs.
pub async fn serve_feeds(ips: &[String], docs: Arc<Vec<String>>) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for ip in ips {
        let listener = tokio::net::TcpListener::bind((ip.as_str(), 0))
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let app = axum::Router::new()
            .route("/feed/{n}", axum::routing::get(serve))
            .with_state(docs.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        out.push((ip.clone(), port));
    }
    out
}

async fn serve(
    Path(n): Path<usize>,
    State(docs): State<Arc<Vec<String>>>,
    headers: HeaderMap,
) -> Response {
    let Some(doc) = docs.get(n) else {
        return Response::builder().status(404).body(Body::empty()).unwrap();
    };
    let etag = format!("\"v1-{n}\"");
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
        .body(Body::from(doc.clone()))
        .unwrap()
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

/// A deterministic pseudo-random RSS document with Vietnamese titles and HTML descriptions.
pub fn feed_doc(feed: usize, items: usize) -> String {
    let mut seed = (feed as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let phrase = |n: usize, next: &mut dyn FnMut() -> u64| {
        (0..n)
            .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>Báo số {feed}</title><link>https://bao{feed}.vn/</link>"
    );
    for i in 0..items {
        let title = phrase(8, &mut next);
        let body = phrase(40, &mut next);
        let hour = i % 24;
        out.push_str(&format!(
            "<item><title>{title}</title><link>https://bao{feed}.vn/tin/{i}.html</link><guid>bao{feed}-{i}</guid>\
             <description><![CDATA[<p><img src=\"/anh/{i}.jpg\" width=\"200\"> {body}</p><p><a href=\"/tin/{i}.html\">Xem tiếp</a></p>]]></description>\
             <pubDate>Fri, 27 Nov 2026 {hour:02}:{:02}:00 +0700</pubDate></item>",
            i % 60
        ));
    }
    out.push_str("</channel></rss>");
    out
}
