//! tinbao as the WebSub hub (W3C Recommendation, 2018) of its own merged feeds: a subscription
//! request (`http::websub`) is checked here, its intent verified by a GET to the callback with a
//! `hub.challenge` it must echo, and then stored with its lease; every regeneration that changes
//! a feed's file leaves a delivery owed to its subscribers (`storage::websub`), and `deliver_due`
//! POSTs the feed as it then is to each, signed `X-Hub-Signature: sha256=…` (HMAC-SHA256 of the
//! body under the subscriber's `hub.secret`), retrying with backoff. A stage between `storage`
//! and `worker`, like `digest`.

use crate::config::Config;
use crate::publish::Format;
use crate::storage::{NewWebSub, Store, WebSubJob};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use std::sync::OnceLock;
use std::time::Duration;
use url::Url;

/// Leases a subscriber may ask for, and the one given when it asks for none (10 days).
pub const MIN_LEASE: i64 = 3_600;
pub const MAX_LEASE: i64 = 30 * 86_400;
pub const DEFAULT_LEASE: i64 = 10 * 86_400;
/// Live subscriptions per topic, and per callback host.
pub const MAX_PER_TOPIC: i64 = 1_000;
pub const MAX_PER_HOST: i64 = 100;
/// The longest `hub.secret` (the spec's bound).
pub const MAX_SECRET: usize = 199;
/// How long a callback has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries sent per round.
const BATCH: usize = 64;

/// What a subscriber asks the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub subscribe: bool,
    pub topic: String,
    pub callback: Url,
    pub secret: Option<String>,
    pub lease_secs: i64,
}

/// The hub's URL for this config.
pub fn hub_url(config: &Config) -> String {
    format!("{}websub", config.server.base_url)
}

/// Checks a request's form fields (`hub.mode`, `hub.topic`, `hub.callback`, `hub.secret`,
/// `hub.lease_seconds`); the reason, in Vietnamese with the field's name, when one is wrong.
pub fn parse_request(
    config: &Config,
    bound: Option<std::net::SocketAddr>,
    form: &[(String, String)],
) -> Result<Request, String> {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
    };
    let subscribe = match field("hub.mode").as_deref() {
        Some("subscribe") => true,
        Some("unsubscribe") => false,
        _ => return Err("hub.mode phải là subscribe hoặc unsubscribe".into()),
    };
    let topic = field("hub.topic").unwrap_or_default();
    if !is_topic(config, &topic) {
        return Err(format!(
            "hub.topic {topic:?} không phải một nguồn tin tổng hợp của máy chủ này \
             (not one of this hub's feeds)"
        ));
    }
    let callback = field("hub.callback").unwrap_or_default();
    let callback = match Url::parse(&callback) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => return Err("hub.callback phải là một địa chỉ http hoặc https".into()),
    };
    if points_at_self(config, &callback, config.server.listen)
        || bound.is_some_and(|b| points_at_self(config, &callback, b))
    {
        return Err("hub.callback không được trỏ về chính máy chủ này".into());
    }
    let secret = field("hub.secret").filter(|s| !s.is_empty());
    if secret.as_ref().is_some_and(|s| s.len() > MAX_SECRET) {
        return Err(format!("hub.secret dài quá {MAX_SECRET} byte"));
    }
    let lease_secs = match field("hub.lease_seconds").filter(|s| !s.is_empty()) {
        None => DEFAULT_LEASE,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n > 0 => n.clamp(MIN_LEASE, MAX_LEASE),
            _ => return Err("hub.lease_seconds phải là một số giây dương".into()),
        },
    };
    Ok(Request {
        subscribe,
        topic,
        callback,
        secret,
        lease_secs,
    })
}

/// A topic URL's document: its file name below `/feeds/`, that name without its extension,
/// and its format, when it is `{base}feeds/PATH.EXT` in one of the formats.
fn feed_name<'a>(config: &Config, topic: &'a str) -> Option<(&'a str, &'a str, Format)> {
    let name = topic.strip_prefix(&format!("{}feeds/", config.server.base_url))?;
    let (path, ext) = name.rsplit_once('.')?;
    let format = Format::ALL.into_iter().find(|f| f.extension() == ext)?;
    Some((name, path, format))
}

/// Whether `topic` is one of the merged feeds this hub announces: all, a category or a
/// province, in any format.
pub fn is_topic(config: &Config, topic: &str) -> bool {
    let Some((_, path, _)) = feed_name(config, topic) else {
        return false;
    };
    if path == "all" || config.category(path).is_some() {
        return true;
    }
    path.strip_prefix("province/").is_some_and(|p| {
        config.provinces.iter().any(|x| x.slug == p)
            || config
                .feeds
                .iter()
                .any(|f| f.province.as_deref() == Some(p))
    })
}

/// Whether a callback would have the hub call itself: at `listen`, or at its public host.
fn points_at_self(config: &Config, callback: &Url, listen: std::net::SocketAddr) -> bool {
    let port = callback.port_or_known_default();
    let base = &config.server.base_url;
    if callback.host_str() == base.host_str() && port == base.port_or_known_default() {
        return true;
    }
    if port != Some(listen.port()) {
        return false;
    }
    let ip = match callback.host() {
        Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
        Some(url::Host::Domain(d)) => {
            return d.eq_ignore_ascii_case("localhost")
                && (listen.ip().is_loopback() || listen.ip().is_unspecified());
        }
        None => return false,
    };
    ip == listen.ip() || (listen.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified()))
}

/// The hub's HTTP client: no redirects (a callback answers where it was asked), bounded time.
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .user_agent(concat!("tinbao-websub/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_default()
    })
}

/// Verifies the subscriber's intent (a GET with `hub.challenge`, which a 2xx body must echo),
/// then stores or forgets the subscription. Returns what happened, for the log.
pub async fn verify_and_apply(store: &Store, request: &Request) -> anyhow::Result<bool> {
    let mut challenge = [0u8; 24];
    getrandom::fill(&mut challenge).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let challenge: String = challenge.iter().map(|b| format!("{b:02x}")).collect();
    let mut url = request.callback.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair(
            "hub.mode",
            if request.subscribe {
                "subscribe"
            } else {
                "unsubscribe"
            },
        );
        q.append_pair("hub.topic", &request.topic);
        q.append_pair("hub.challenge", &challenge);
        if request.subscribe {
            q.append_pair("hub.lease_seconds", &request.lease_secs.to_string());
        }
    }
    let answer = client().get(url).send().await;
    let confirmed = match answer {
        Ok(r) if r.status().is_success() => {
            let body = r.bytes().await.unwrap_or_default();
            body.len() <= 1024 && String::from_utf8_lossy(&body).trim() == challenge
        }
        Ok(_) | Err(_) => false,
    };
    if !confirmed {
        return Ok(false);
    }
    if request.subscribe {
        let sub = NewWebSub {
            topic: request.topic.clone(),
            callback: request.callback.to_string(),
            callback_host: request.callback.host_str().unwrap_or_default().to_string(),
            secret: request.secret.clone(),
            lease_secs: request.lease_secs,
        };
        store.websub_subscribe(&sub, Utc::now()).await?;
    } else {
        store
            .websub_unsubscribe(&request.topic, request.callback.as_str())
            .await?;
    }
    Ok(true)
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    let sum = mac.finalize().into_bytes();
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// What a delivery round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub sent: usize,
    pub retried: usize,
    pub dropped: usize,
}

/// Sends the content distributions that are due: each feed's current file to its callback.
pub async fn deliver_due(
    store: &Store,
    config: &Config,
    now: DateTime<Utc>,
) -> anyhow::Result<Delivered> {
    let mut done = Delivered::default();
    let started = std::time::Instant::now();
    let jobs = store.websub_claim(now, BATCH).await?;
    let sends = jobs.iter().map(|job| deliver(config, job));
    let outcomes = futures_util::future::join_all(sends).await;
    // Outcomes are recorded on the caller's clock, moved on by the time the sends took.
    let now = now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
    for (job, outcome) in jobs.iter().zip(outcomes) {
        match outcome {
            Ok(()) => {
                store.websub_delivered(job, now).await?;
                done.sent += 1;
            }
            Err(Failure { error, gone }) => {
                // A callback failing for its whole lease is dropped, as one that says it is gone.
                let failing_for = job.failing_since.map_or(0, |t| (now - t).num_seconds());
                let drop = gone || failing_for >= job.lease_secs;
                let retry_at = now + backoff(job.attempts);
                tracing::warn!(
                    callback = %job.callback,
                    topic = %job.topic,
                    error = %error,
                    dropped = drop,
                    "WebSub delivery failed"
                );
                store
                    .websub_failed(job, &error, retry_at, drop, now)
                    .await?;
                if drop {
                    done.dropped += 1;
                } else {
                    done.retried += 1;
                }
            }
        }
    }
    Ok(done)
}

/// The wait after the `attempts`th failure in a row: 30 s, doubling, at most an hour.
pub fn backoff(attempts: i64) -> chrono::Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 7)).unwrap_or(7);
    chrono::Duration::seconds((30 * 2_i64.pow(exp)).min(3_600))
}

struct Failure {
    error: String,
    /// The callback answered 410 Gone: it wants no more.
    gone: bool,
}

async fn deliver(config: &Config, job: &WebSubJob) -> Result<(), Failure> {
    let fail = |error: String| Failure { error, gone: false };
    let (name, _, format) = feed_name(config, &job.topic)
        .ok_or_else(|| fail("the topic is no longer one of this hub's feeds".into()))?;
    let path = config.output_dir().join("feeds").join(name);
    let body = tokio::fs::read(&path)
        .await
        .map_err(|e| fail(format!("reading {}: {e}", path.display())))?;
    let mut request = client()
        .post(&job.callback)
        .header(reqwest::header::CONTENT_TYPE, format.content_type())
        .header(
            reqwest::header::LINK,
            format!(
                "<{}>; rel=\"hub\", <{}>; rel=\"self\"",
                hub_url(config),
                job.topic
            ),
        );
    if let Some(secret) = &job.secret {
        request = request.header("X-Hub-Signature", signature(secret, &body));
    }
    match request.body(body).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(Failure {
            error: format!("the callback answered {}", r.status()),
            gone: r.status() == reqwest::StatusCode::GONE,
        }),
        Err(e) => Err(fail(format!("{e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = "[server]\nlisten = \"127.0.0.1:8080\"\nbase_url = \"https://tin.example.vn/\"\n\
                    [[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n\
                    [[feed]]\nid = \"a\"\nurl = \"https://a.vn/rss\"\ncategory = \"thoi-su\"\nprovince = \"lao-cai\"\n";
        Config::parse(text, std::path::Path::new("feeds.toml"), &|_| None).expect("valid")
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_this_hubs_feeds_are_topics() {
        let c = config();
        for ok in [
            "https://tin.example.vn/feeds/all.atom",
            "https://tin.example.vn/feeds/thoi-su.xml",
            "https://tin.example.vn/feeds/province/lao-cai.json",
        ] {
            assert!(is_topic(&c, ok), "{ok}");
        }
        for bad in [
            "https://other.vn/feeds/all.atom",
            "https://tin.example.vn/feeds/all.html",
            "https://tin.example.vn/feeds/kinh-te.xml",
            "https://tin.example.vn/feeds/province/ha-noi.xml",
            "https://tin.example.vn/feeds/topic.atom?q=l%C5%A9",
        ] {
            assert!(!is_topic(&c, bad), "{bad}");
        }
    }

    #[test]
    fn a_request_is_checked_field_by_field() {
        let c = config();
        let good = [
            ("hub.mode", "subscribe"),
            ("hub.topic", "https://tin.example.vn/feeds/all.atom"),
            ("hub.callback", "http://127.0.0.1:9000/cb?x=1"),
            ("hub.lease_seconds", "60"),
        ];
        let r = parse_request(&c, None, &form(&good)).expect("valid");
        assert!(r.subscribe);
        assert_eq!(
            r.lease_secs, MIN_LEASE,
            "a short lease is raised to the least"
        );
        assert_eq!(r.secret, None);
        let with = |k: &str, v: &str| {
            let mut f = form(&good);
            f.retain(|(x, _)| x != k);
            f.push((k.into(), v.into()));
            parse_request(&c, None, &f)
        };
        assert!(
            with("hub.mode", "publish")
                .unwrap_err()
                .contains("hub.mode")
        );
        assert!(
            with("hub.callback", "ftp://x/")
                .unwrap_err()
                .contains("hub.callback")
        );
        for own in [
            "http://127.0.0.1:8080/cb",
            "http://localhost:8080/x",
            "https://tin.example.vn/cb",
        ] {
            assert!(
                with("hub.callback", own)
                    .unwrap_err()
                    .contains("chính máy chủ"),
                "{own}"
            );
        }
        assert!(
            with("hub.secret", &"s".repeat(200))
                .unwrap_err()
                .contains("hub.secret")
        );
        assert!(with("hub.lease_seconds", "-5").is_err());
        assert_eq!(
            with("hub.lease_seconds", "99999999").unwrap().lease_secs,
            MAX_LEASE
        );
        assert!(with("hub.topic", "https://tin.example.vn/feeds/x.xml").is_err());
    }

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1).num_seconds(), 30);
        assert_eq!(backoff(2).num_seconds(), 60);
        assert_eq!(backoff(20).num_seconds(), 3_600);
    }
}
