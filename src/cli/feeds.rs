//! `tinbao poll`, `tinbao feeds` and `tinbao inspect`: polling, each feed's state, and one
//! document read without writing anything (an article page: `article`).

use super::open_store;
use crate::config::{Config, HtmlSelectors};
use crate::model::Validators;
use crate::reader::fetcher::{FetchOutcome, Fetcher};
use crate::reader::html_source;
use crate::reader::parser::{self, ParseContext, ParsedFeed};
use crate::reader::refresh::Refresher;
use anyhow::Context;
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

pub async fn poll(config: Arc<Config>, once: bool, all: bool) -> anyhow::Result<i32> {
    let store = open_store(&config).await?;
    store.sync_feeds(&config.feeds, Utc::now()).await?;
    let refresher = Refresher::new(store.clone(), config)?;
    let summary = refresher.poll_round(all).await?;
    println!("{summary}");
    if !once {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            let summary = refresher.poll_round(false).await?;
            if summary.polled > 0 {
                println!("{summary}");
            }
        }
    }
    store.close().await;
    Ok(0)
}

/// `tinbao feeds`.
pub async fn feeds(config: Arc<Config>, json: bool) -> anyhow::Result<i32> {
    let store = open_store(&config).await?;
    store.sync_feeds(&config.feeds, Utc::now()).await?;
    let states = store.feed_states().await?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &states)?;
        writeln!(out)?;
        return Ok(0);
    }
    let tz = config.digest.timezone;
    let local = |t: Option<DateTime<Utc>>| {
        t.map_or("-".to_string(), |t| {
            t.with_timezone(&tz).format("%d/%m %H:%M").to_string()
        })
    };
    writeln!(
        out,
        "{:<28} {:>6} {:>6} {:>7} {:<11} {:<11} {:>4}  error",
        "feed", "status", "items", "skipped", "last fetch", "next poll", "errs"
    )?;
    for s in &states {
        let status = match (s.active, s.last_status) {
            (false, _) => "off".to_string(),
            (true, Some(code)) => code.to_string(),
            (true, None) => "-".to_string(),
        };
        let mut error = s.last_error.clone().unwrap_or_default();
        if let Some(moved) = &s.moved_to {
            error = format!("moved permanently to {moved}; update feeds.toml {error}");
        }
        if s.articles_pending + s.articles_given_up > 0 {
            let last = s
                .article_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            error = format!(
                "{error} [full text: {} pages pending, {} given up{last}]",
                s.articles_pending, s.articles_given_up
            );
        }
        writeln!(
            out,
            "{:<28} {:>6} {:>6} {:>7} {:<11} {:<11} {:>4}  {}",
            s.id,
            status,
            s.item_count,
            s.skipped,
            local(s.last_fetch_at),
            local(Some(s.next_poll_at)),
            s.error_count,
            error.trim()
        )?;
    }
    Ok(0)
}

/// `tinbao inspect`: fetch (or read) and parse one feed, print what tinbao would store.
pub async fn inspect(
    config_path: &Path,
    source: &str,
    json: bool,
    html: &[String],
    full_text: Option<&str>,
) -> anyhow::Result<i32> {
    let selectors = match html_selectors(html) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tinbao inspect: {e}");
            return Ok(2);
        }
    };
    // The operator's config if there is one (User-Agent, limits, timezone), else the defaults.
    let config = if config_path.exists() {
        Config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?
    } else {
        defaults()
    };
    if full_text.is_some() {
        return super::article::inspect_article(&config, source, full_text, json).await;
    }
    let now = Utc::now();
    let (bytes, base, http_charset) =
        if source.starts_with("http://") || source.starts_with("https://") {
            let url = url::Url::parse(source).with_context(|| format!("invalid URL {source}"))?;
            let fetcher = Fetcher::new(&config.polling)?;
            match fetcher.fetch(&url, &Validators::default()).await? {
                FetchOutcome::Body(f) | FetchOutcome::NotModified(f) => {
                    let charset = f.charset();
                    (f.body, Some(f.final_url), charset)
                }
            }
        } else {
            (
                std::fs::read(source).with_context(|| format!("reading {source}"))?,
                None,
                None,
            )
        };
    let ctx = ParseContext {
        base,
        http_charset,
        timezone: config.digest.timezone,
        now,
    };
    let feed = match &selectors {
        Some(s) => html_source::extract(&bytes, &ctx, s)?,
        None => parser::parse(&bytes, &ctx)?,
    };
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &inspect_json(&feed))?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{} ({}, {} items)",
            feed.title.as_deref().unwrap_or("(untitled)"),
            feed.format,
            feed.items.len()
        )?;
        for item in &feed.items {
            let when = if item.date_estimated {
                "no date".to_string()
            } else {
                item.published
                    .with_timezone(&config.digest.timezone)
                    .format("%d/%m/%Y %H:%M")
                    .to_string()
            };
            writeln!(
                out,
                "- [{when}] {}\n  {}",
                item.title,
                item.url.as_deref().unwrap_or("-")
            )?;
        }
    }
    Ok(0)
}

/// `--html KEY=SELECTOR` arguments as selectors (`None` without any); an unknown key, a missing
/// `item`, `title` or `link`, or a selector that does not parse is refused with its reason.
fn html_selectors(args: &[String]) -> anyhow::Result<Option<HtmlSelectors>> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut map = std::collections::BTreeMap::new();
    for arg in args {
        let Some((key, selector)) = arg.split_once('=') else {
            anyhow::bail!(
                "--html {arg:?}: expected KEY=SELECTOR (item, title, link, date, summary)"
            );
        };
        let key = key.trim();
        if !["item", "title", "link", "date", "summary"].contains(&key) {
            anyhow::bail!("--html {arg:?}: unknown key {key:?} (item, title, link, date, summary)");
        }
        if let Some(e) = html_source::selector_error(selector.trim()) {
            anyhow::bail!("--html {key}={selector:?}: {e}");
        }
        map.insert(key, selector.trim().to_string());
    }
    let mut need = |key: &str| {
        map.remove(key)
            .ok_or_else(|| anyhow::anyhow!("--html needs {key}=SELECTOR too"))
    };
    Ok(Some(HtmlSelectors {
        item: need("item")?,
        title: need("title")?,
        link: need("link")?,
        date: map.remove("date"),
        summary: map.remove("summary"),
    }))
}

/// The documented shape of `inspect --json`.
pub fn inspect_json(feed: &ParsedFeed) -> serde_json::Value {
    let items: Vec<_> = feed
        .items
        .iter()
        .map(|i| {
            serde_json::json!({
                "id": i.guid.clone().unwrap_or_else(|| i.key.clone()),
                "url": i.url,
                "title": i.title,
                "summary": i.text,
                "published": (!i.date_estimated).then(|| i.published.to_rfc3339()),
                "updated": i.updated.map(|d| d.to_rfc3339()),
                "authors": i.authors,
                "categories": i.categories,
            })
        })
        .collect();
    serde_json::json!({
        "feed": { "title": feed.title, "link": feed.link, "format": feed.format },
        "items": items,
    })
}

pub(super) fn defaults() -> Config {
    Config::parse("", Path::new("(defaults)"), &|_| None)
        .unwrap_or_else(|e| unreachable!("empty config is valid: {e}"))
}
