//! The `tinbao` command line: argument definitions and one function per subcommand. Each
//! function loads what it needs, calls the library, and prints; `main.rs` only dispatches.

use crate::config::Config;
use crate::reader::fetcher::{FetchOutcome, Fetcher, Validators};
use crate::reader::parser::{self, ParseContext, ParsedFeed};
use crate::reader::refresh::Refresher;
use crate::storage::Store;
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "tinbao",
    version,
    about = "Aggregator and notifier for Vietnamese provincial news"
)]
pub struct Cli {
    /// Path to the configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "TINBAO_CONFIG",
        default_value = "feeds.toml"
    )]
    pub config: PathBuf,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration; print every problem as FILE:LINE:COL: reason.
    Check,
    /// Run the daemon: poll feeds as they fall due, publish merged feeds, serve HTTP.
    Run,
    /// Poll feeds: with --once, one round then exit; without, keep polling as feeds fall due.
    Poll {
        /// Run one round and exit.
        #[arg(long)]
        once: bool,
        /// Poll every active feed, not only those due.
        #[arg(long)]
        all: bool,
    },
    /// Show each feed's state: last fetch, HTTP status, error and count, items, next poll.
    Feeds {
        #[arg(long)]
        json: bool,
    },
    /// Fetch and parse one feed (URL or file) without writing anything.
    Inspect {
        /// An http(s) URL or a path to a feed file.
        source: String,
        #[arg(long)]
        json: bool,
    },
    /// Offline demo: serve the bundled sample feeds on loopback and poll them into ./demo/.
    Demo {
        /// Where the demo keeps its config and database.
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
    },
    /// Print the lines of standard input that match a topic query (exit 1 if none, 2 if the
    /// query is malformed).
    Match {
        /// A query in the topic language, e.g. '"Lào Cai" lũ -"Hà Nội"'.
        query: String,
    },
}

pub fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// `tinbao check`: exit 1 with every problem listed, or confirm what was loaded.
pub fn check(path: &Path) -> anyhow::Result<i32> {
    match Config::load(path) {
        Ok(c) => {
            println!(
                "{}: ok ({} categories, {} feeds, {} digest schedules)",
                path.display(),
                c.categories.len(),
                c.feeds.len(),
                c.digest.schedules.len()
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(1)
        }
    }
}

/// Loads the config, or explains every problem and fails.
pub fn load_config(path: &Path) -> anyhow::Result<Arc<Config>> {
    Config::load(path)
        .map(Arc::new)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.database.url, &config.base_dir()).await
}

/// `tinbao poll`.
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
        "{:<28} {:>6} {:>6} {:<11} {:<11} {:>4}  error",
        "feed", "status", "items", "last fetch", "next poll", "errs"
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
        writeln!(
            out,
            "{:<28} {:>6} {:>6} {:<11} {:<11} {:>4}  {}",
            s.id,
            status,
            s.item_count,
            local(s.last_fetch_at),
            local(Some(s.next_poll_at)),
            s.error_count,
            error.trim()
        )?;
    }
    Ok(0)
}

/// `tinbao inspect`: fetch (or read) and parse one feed, print what tinbao would store.
pub async fn inspect(config_path: &Path, source: &str, json: bool) -> anyhow::Result<i32> {
    // The operator's config if there is one (User-Agent, limits, timezone), else the defaults.
    let config = if config_path.exists() {
        Config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?
    } else {
        defaults()
    };
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
    let feed = parser::parse(&bytes, &ctx)?;
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

fn defaults() -> Config {
    Config::parse("", Path::new("(defaults)"), &|_| None)
        .unwrap_or_else(|e| unreachable!("empty config is valid: {e}"))
}

/// `tinbao match`: grep for topic queries.
pub fn match_lines(query: &str) -> i32 {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match crate::text::grep(query, &mut input, &mut out) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("tinbao match: {e}");
            2
        }
    }
}
