//! `/feeds/{name}`: a merged feed document. Content negotiation picks brotli, gzip or identity
//! (Accept-Encoding, RFC 9110 §12.5.3); each representation has its own strong ETag; conditional
//! requests get 304 (If-None-Match first, then If-Modified-Since, RFC 9110 §13.2.2).

use super::AppState;
use crate::publish::site::{Document, Encoding};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

pub async fn feed(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(doc) = state.site.get(&name) else {
        return plain(
            StatusCode::NOT_FOUND,
            "Không có nguồn tin này (no such feed)\n",
        );
    };
    serve(&doc, &headers)
}

/// A feed document as the request asks for it: its best encoding, or a 304.
pub(super) fn serve(doc: &Document, headers: &HeaderMap) -> Response {
    let encoding = negotiate(headers);
    let etag = doc.etag_for(encoding);
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, doc.content_type)
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, http_date(doc))
        .header(header::VARY, "Accept-Encoding")
        .header(header::CACHE_CONTROL, "public, max-age=300");
    if not_modified(headers, doc, &etag) {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_default();
    }
    if let Some(coding) = match encoding {
        Encoding::Brotli => Some("br"),
        Encoding::Gzip => Some("gzip"),
        Encoding::Identity => None,
    } {
        response = response.header(header::CONTENT_ENCODING, coding);
    }
    response
        .body(Body::from(doc.body(encoding)))
        .unwrap_or_default()
}

pub(super) fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn http_date(doc: &Document) -> String {
    doc.last_modified
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// The best encoding the client accepts: brotli, then gzip, else identity. A q=0 refuses.
pub fn negotiate(headers: &HeaderMap) -> Encoding {
    let accept = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let accepts = |name: &str| {
        accept.split(',').any(|part| {
            let mut bits = part.split(';');
            let coding = bits.next().unwrap_or("").trim();
            let q = bits
                .find_map(|b| b.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case(name) || coding == "*") && q > 0.0
        })
    };
    if accepts("br") {
        Encoding::Brotli
    } else if accepts("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// If-None-Match wins when present (any of the document's representation tags counts: they
/// name the same content); otherwise If-Modified-Since at or after Last-Modified.
fn not_modified(headers: &HeaderMap, doc: &Document, etag: &str) -> bool {
    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        let tags = [
            doc.etag.as_str(),
            etag,
            &doc.etag_for(Encoding::Gzip),
            &doc.etag_for(Encoding::Brotli),
        ];
        return inm
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || tags.contains(&t));
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .is_some_and(|since| doc.last_modified.timestamp() <= since.timestamp())
}
