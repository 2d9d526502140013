//! HTTP to feed sources, and nothing else: conditional GET (ETag / Last-Modified, RFC 9110 §13),
//! gzip and brotli, connect and total timeouts, a body cap that also bounds the decompressed
//! size, at most 5 redirects with permanent ones (301/308) reported, a per-host concurrency
//! limit, and the server's pacing hints (Retry-After, Cache-Control max-age) passed up to the
//! scheduler. It never parses feeds and never touches the database.

use crate::config::PollingConfig;
use crate::model::Validators;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

const MAX_REDIRECTS: usize = 5;
/// What an article page is asked for as.
const PAGE_ACCEPT: &str = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5";
const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5";

/// What a successful fetch produced.
#[derive(Debug)]
pub enum FetchOutcome {
    /// 304: nothing changed. The validators may still have been refreshed by the server.
    NotModified(Fetched),
    Body(Fetched),
}

#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
    pub final_url: Url,
    pub content_type: Option<String>,
    pub validators: Validators,
    /// Cache-Control max-age: the server asks not to be asked again sooner.
    pub max_age: Option<Duration>,
    /// Set when every redirect on the way was permanent: the source has moved.
    pub moved_to: Option<Url>,
}

impl Fetched {
    /// The charset parameter of the Content-Type header.
    pub fn charset(&self) -> Option<String> {
        charset_of(self.content_type.as_deref()?)
    }
}

/// The charset parameter of a Content-Type value (`text/html; charset="windows-1258"`).
pub fn charset_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("charset")).then(|| v.trim().trim_matches('"').to_string())
    })
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("HTTP {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("response larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("redirect loop at {0}")]
    RedirectLoop(Url),
    #[error("bad redirect: {0}")]
    BadRedirect(String),
    #[error("request failed: {0}")]
    Other(String),
}

impl FetchError {
    /// The HTTP status, if the server answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A shared HTTP client with per-host limits. Cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    per_host: usize,
    max_body: u64,
    timeout: Duration,
}

impl Fetcher {
    pub fn new(cfg: &PollingConfig) -> anyhow::Result<Fetcher> {
        let client = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Fetcher {
            client,
            hosts: Arc::default(),
            per_host: cfg.per_host,
            max_body: cfg.max_body,
            timeout: cfg.timeout,
        })
    }

    fn host_permit_source(&self, url: &Url) -> Arc<Semaphore> {
        let host = url.host_str().unwrap_or("").to_string();
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(host)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }

    /// Fetches `url`, conditionally on `validators`. The whole exchange, redirects and body
    /// included, is bounded by the configured timeout.
    pub async fn fetch(
        &self,
        url: &Url,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        self.bounded(url, validators, ACCEPT).await
    }

    /// Fetches a web page (an article, for its full text) under the same limits as a feed:
    /// the host's concurrency, the timeout, the body cap and the redirect rules.
    pub async fn fetch_page(&self, url: &Url) -> Result<Fetched, FetchError> {
        match self
            .bounded(url, &Validators::default(), PAGE_ACCEPT)
            .await?
        {
            FetchOutcome::Body(page) | FetchOutcome::NotModified(page) => Ok(page),
        }
    }

    /// One exchange under the host's concurrency limit, bounded as a whole by the timeout.
    async fn bounded(
        &self,
        url: &Url,
        validators: &Validators,
        accept: &'static str,
    ) -> Result<FetchOutcome, FetchError> {
        let semaphore = self.host_permit_source(url);
        let _permit = semaphore
            .acquire_owned()
            .await
            .map_err(|e| FetchError::Other(e.to_string()))?;
        let exchange = self.fetch_following(url, validators, accept);
        match tokio::time::timeout(self.timeout, exchange).await {
            // The client's own timer is the same limit: report it, not reqwest's blank one.
            Ok(Err(FetchError::Timeout(_))) => Err(FetchError::Timeout(self.timeout)),
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    async fn fetch_following(
        &self,
        url: &Url,
        validators: &Validators,
        accept: &'static str,
    ) -> Result<FetchOutcome, FetchError> {
        let mut current = url.clone();
        let mut visited = HashSet::from([current.clone()]);
        let mut all_permanent = true;
        for hop in 0..=MAX_REDIRECTS {
            let response = self.request(&current, validators, accept).await?;
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                if hop == MAX_REDIRECTS {
                    return Err(FetchError::TooManyRedirects);
                }
                all_permanent &= matches!(
                    status,
                    StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
                );
                let next = redirect_target(&current, response.headers())?;
                if !visited.insert(next.clone()) {
                    return Err(FetchError::RedirectLoop(next));
                }
                current = next;
                continue;
            }
            let moved_to = (all_permanent && current != *url).then(|| current.clone());
            return self.finish(response, current, moved_to).await;
        }
        Err(FetchError::TooManyRedirects)
    }

    async fn request(
        &self,
        url: &Url,
        validators: &Validators,
        accept: &'static str,
    ) -> Result<reqwest::Response, FetchError> {
        let mut req = self.client.get(url.clone()).header(header::ACCEPT, accept);
        if let Some(etag) = &validators.etag {
            req = req.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &validators.last_modified {
            req = req.header(header::IF_MODIFIED_SINCE, lm);
        }
        req.send().await.map_err(classify)
    }

    async fn finish(
        &self,
        mut response: reqwest::Response,
        final_url: Url,
        moved_to: Option<Url>,
    ) -> Result<FetchOutcome, FetchError> {
        let status = response.status();
        let headers = response.headers().clone();
        if status != StatusCode::NOT_MODIFIED && !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
                retry_after: retry_after(&headers, Utc::now()),
            });
        }
        let validators = Validators {
            etag: header_text(&headers, header::ETAG),
            last_modified: header_text(&headers, header::LAST_MODIFIED),
        };
        let body = if status == StatusCode::NOT_MODIFIED {
            Vec::new()
        } else {
            self.read_capped(&mut response).await?
        };
        let fetched = Fetched {
            status: status.as_u16(),
            body,
            final_url,
            content_type: header_text(&headers, header::CONTENT_TYPE),
            validators,
            max_age: max_age(&headers),
            moved_to,
        };
        Ok(if status == StatusCode::NOT_MODIFIED {
            FetchOutcome::NotModified(fetched)
        } else {
            FetchOutcome::Body(fetched)
        })
    }

    /// Reads the body chunk by chunk. Chunks arrive already decompressed, so the cap bounds the
    /// decompressed size too: a gzip bomb stops at `max_body` bytes.
    async fn read_capped(&self, response: &mut reqwest::Response) -> Result<Vec<u8>, FetchError> {
        let limit = self.max_body;
        let compressed = response.headers().contains_key(header::CONTENT_ENCODING);
        if !compressed && response.content_length().is_some_and(|n| n > limit) {
            return Err(FetchError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(FetchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn classify(e: reqwest::Error) -> FetchError {
    // A connect timeout is a connect error; a timeout otherwise is the read timeout, which is
    // the configured `timeout` (put in by `fetch`).
    if e.is_connect() {
        FetchError::Connect(error_chain(&e))
    } else if e.is_timeout() {
        FetchError::Timeout(Duration::ZERO)
    } else {
        FetchError::Other(error_chain(&e))
    }
}

/// The error and its causes on one line: "a: b: c".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn redirect_target(current: &Url, headers: &HeaderMap) -> Result<Url, FetchError> {
    let location = header_text(headers, header::LOCATION)
        .ok_or_else(|| FetchError::BadRedirect("no Location header".into()))?;
    let next = current
        .join(&location)
        .map_err(|e| FetchError::BadRedirect(format!("{location:?}: {e}")))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(FetchError::BadRedirect(format!(
            "to a {} URL",
            next.scheme()
        )));
    }
    Ok(next)
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), capped at a day.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = header_text(headers, header::RETRY_AFTER)?;
    let delay = if let Ok(secs) = text.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = DateTime::parse_from_rfc2822(&text)
            .ok()?
            .with_timezone(&Utc);
        (when - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(delay.min(Duration::from_secs(86_400)))
}

/// Cache-Control max-age (RFC 9111 §5.2.2.1), capped at a day.
pub fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let cc = header_text(headers, header::CACHE_CONTROL)?;
    cc.split(',').find_map(|d| {
        let (k, v) = d.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("max-age"))
            .then(|| v.trim().trim_matches('"').parse::<u64>().ok())
            .flatten()
            .map(|s| Duration::from_secs(s.min(86_400)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-11-28T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "120")]), now),
            Some(Duration::from_secs(120))
        );
        let h = headers(&[("retry-after", "Sat, 28 Nov 2026 00:10:00 GMT")]);
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(600)));
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age(&headers(&[("cache-control", "public, max-age=600")])),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age(&headers(&[("cache-control", "no-cache")])), None);
    }
}
