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
    /// Run the daemon: poll feeds as they fall due, publish merged feeds, send digests, serve
    /// HTTP. With --once: one pass of all of it (for cron or a systemd timer), then exit.
    Run {
        /// One pass, then exit: poll the due feeds, cluster the new items, regenerate the
        /// merged feeds they touch in output_dir, build and send the digests that are due.
        /// Exits 1 naming the stages that failed. No HTTP server.
        #[arg(long)]
        once: bool,
        /// With --once: poll every active feed, not only those due.
        #[arg(long, requires = "once")]
        all: bool,
    },
    /// Poll feeds and store their items, nothing more: merged feeds and digests need
    /// `tinbao run --once` (or the daemon). With --once, one round then exit; without, keep
    /// polling as feeds fall due.
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
    /// Manage subscribers (the operator's side; subscribers also sign up on the web).
    Subscribers {
        #[command(subcommand)]
        action: SubscribersAction,
    },
    /// Build and send the digests due by each subscriber's schedule (the daemon and
    /// `run --once` do this on their own), and whatever the outbox holds pending.
    Digest {
        /// Treat now as a tick for every active subscriber: each gets the matching items never
        /// sent to them (those owed nothing get no email), and their schedule goes on from now.
        #[arg(long)]
        now: bool,
        /// With --now: only this subscriber.
        #[arg(long, value_name = "EMAIL", requires = "now")]
        to: Option<String>,
        /// Write the digests as .eml files into DIR instead of sending; record nothing.
        #[arg(long, value_name = "DIR")]
        dry_run: Option<PathBuf>,
    },
    /// Offline demo: bundled sample feeds on loopback, the daemon on them under ./demo/, a demo
    /// subscriber's digest in ./demo/outbox/.
    Demo {
        /// Where the demo keeps its config, database, merged feeds and outbox.
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        /// Where the demo's server listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// One round (poll, publish, digest) and exit, instead of running the daemon.
        #[arg(long)]
        once: bool,
    },
    /// Print the lines of standard input that match a topic query (exit 1 if none, 2 if the
    /// query is malformed).
    Match {
        /// A query in the topic language, e.g. '"Lào Cai" lũ -"Hà Nội"'. It may start with '-'.
        #[arg(allow_hyphen_values = true)]
        query: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubscribersAction {
    /// Add a subscriber, active at once.
    Add {
        email: String,
        /// A topic: 'category=thoi-su province=lao-cai query="Lào Cai" lũ' (repeatable).
        #[arg(long = "topic", required = true)]
        topics: Vec<String>,
        /// A [digest.schedules] name, or "immediate".
        #[arg(long, default_value = "daily")]
        schedule: String,
        /// Their timezone (default: [digest] timezone).
        #[arg(long)]
        timezone: Option<String>,
    },
    /// List subscribers with status, schedule and topics.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a subscriber and their outbox.
    Remove { email: String },
    /// Add subscribers from a CSV file: email,schedule,topic[,topic…] (a header line is skipped).
    Import { file: PathBuf },
}

pub fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colours only on a terminal: logs in files and journald stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
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
    let store = Store::open(&config.database.url, &config.base_dir()).await?;
    store.set_lease(config.database.lease);
    Ok(store)
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

/// `tinbao subscribers …`.
pub async fn subscribers(config: Arc<Config>, action: SubscribersAction) -> anyhow::Result<i32> {
    let store = open_store(&config).await?;
    match action {
        SubscribersAction::Add {
            email,
            topics,
            schedule,
            timezone,
        } => {
            let new = validate_subscriber(&config, &email, &topics, &schedule, timezone.as_deref());
            match new {
                Err(reason) => {
                    eprintln!("tinbao: {reason}");
                    Ok(1)
                }
                Ok(new) => match store.add_subscriber(&new, Utc::now()).await {
                    Ok(id) => {
                        println!(
                            "added {} (#{id}, {}, {} topics)",
                            new.email,
                            new.schedule,
                            new.topics.len()
                        );
                        Ok(0)
                    }
                    Err(e) => {
                        eprintln!("tinbao: {e}");
                        Ok(1)
                    }
                },
            }
        }
        SubscribersAction::List { json } => {
            let all = store.subscribers().await?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &all)?;
                writeln!(out)?;
            } else {
                for s in &all {
                    writeln!(
                        out,
                        "{:<32} {:<12} {:<10} {}",
                        s.email,
                        s.status,
                        s.schedule,
                        s.topics.join(" | ")
                    )?;
                }
            }
            Ok(0)
        }
        SubscribersAction::Remove { email } => {
            let email = crate::digest::email::SubscriberEmail::parse(&email)
                .map(|e| e.to_string())
                .unwrap_or(email);
            if store.remove_subscriber(&email).await? {
                println!("removed {email}");
                Ok(0)
            } else {
                eprintln!("tinbao: {email} is not a subscriber");
                Ok(1)
            }
        }
        SubscribersAction::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let (mut added, mut refused) = (0, 0);
            for (n, record) in csv_records(&text).into_iter().enumerate() {
                let line = n + 1;
                if line == 1
                    && record
                        .first()
                        .is_some_and(|f| f.eq_ignore_ascii_case("email"))
                {
                    continue;
                }
                let [email, schedule, topics @ ..] = record.as_slice() else {
                    eprintln!(
                        "{}:{line}: expected email,schedule,topic[,topic…]",
                        file.display()
                    );
                    refused += 1;
                    continue;
                };
                let result = match validate_subscriber(&config, email, topics, schedule, None) {
                    Ok(new) => store
                        .add_subscriber(&new, Utc::now())
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err(reason) => Err(reason),
                };
                match result {
                    Ok(()) => added += 1,
                    Err(reason) => {
                        eprintln!("{}:{line}: {reason}", file.display());
                        refused += 1;
                    }
                }
            }
            println!("imported {added} subscribers, refused {refused}");
            Ok(if refused > 0 { 1 } else { 0 })
        }
    }
}

/// Checks an operator's (or a form's) input for a new subscriber; the reason says what is wrong.
pub fn validate_subscriber(
    config: &Config,
    email: &str,
    topics: &[String],
    schedule: &str,
    timezone: Option<&str>,
) -> Result<crate::storage::NewSubscriber, String> {
    let email = crate::digest::email::SubscriberEmail::parse(email)?;
    if schedule != "immediate" && !config.digest.schedules.contains_key(schedule) {
        let mut known: Vec<&str> = config.digest.schedules.keys().map(String::as_str).collect();
        known.push("immediate");
        return Err(format!(
            "unknown schedule {schedule:?} (known: {})",
            known.join(", ")
        ));
    }
    if topics.is_empty() {
        return Err("at least one topic is needed".into());
    }
    let mut specs = Vec::new();
    for t in topics {
        let topic = crate::digest::topic::Topic::parse(t, config).map_err(|e| e.to_string())?;
        specs.push(topic.to_string());
    }
    let timezone = match timezone {
        Some(tz) => tz
            .parse::<chrono_tz::Tz>()
            .map_err(|_| format!("unknown timezone {tz:?}"))?
            .name()
            .to_string(),
        None => config.digest.timezone.name().to_string(),
    };
    Ok(crate::storage::NewSubscriber {
        email: email.to_string(),
        status: "active".into(),
        schedule: schedule.into(),
        timezone,
        topics: specs,
    })
}

/// Records of a CSV text (RFC 4180: quoted fields, doubled quotes inside), blank lines skipped.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field).trim().to_string()),
            (false, '\n') => {
                record.push(std::mem::take(&mut field).trim().to_string());
                if record.iter().any(|f| !f.is_empty()) {
                    records.push(std::mem::take(&mut record));
                }
                record.clear();
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    record.push(field.trim().to_string());
    if record.iter().any(|f| !f.is_empty()) {
        records.push(record);
    }
    records
}

/// `tinbao digest [--now [--to EMAIL]] [--dry-run DIR]`.
pub async fn digest(
    config: Arc<Config>,
    now_tick: bool,
    to: Option<String>,
    dry_run: Option<PathBuf>,
) -> anyhow::Result<i32> {
    use crate::digest::outbox::{Digester, Mailer, Ticks};
    let store = open_store(&config).await?;
    if let Some(email) = &to {
        let subscribers = store.subscribers().await?;
        match subscribers
            .iter()
            .find(|s| s.email.eq_ignore_ascii_case(email))
        {
            None => {
                eprintln!("tinbao: no subscriber {email} (see `tinbao subscribers list`)");
                store.close().await;
                return Ok(1);
            }
            Some(s) if s.status != "active" => {
                eprintln!(
                    "tinbao: {email} is {}, not active: nothing to send",
                    s.status
                );
                store.close().await;
                return Ok(1);
            }
            Some(_) => {}
        }
    }
    let ticks = if now_tick {
        Ticks::Now { to }
    } else {
        Ticks::Schedule
    };
    let digester = Digester::new(store.clone(), config.clone())
        .await?
        .with_ticks(ticks);
    let now = Utc::now();
    if let Some(dir) = dry_run {
        let written = digester.dry_run(now, &dir).await?;
        store.close().await;
        println!(
            "wrote {written} digests to {} (nothing recorded as sent)",
            dir.display()
        );
        return Ok(0);
    }
    let Some(smtp) = &config.smtp else {
        eprintln!("tinbao: no [smtp] url configured; use --dry-run DIR to see the digests");
        store.close().await;
        return Ok(1);
    };
    let mailer = Mailer::from_url(&smtp.url, &config.base_dir())?;
    let (built, sent) = digester.run_due(&mailer, now, true, &|| true).await;
    mailer.close().await;
    store.close().await;
    let (built, sent) = (built?, sent?);
    println!(
        "{} subscribers due: {} digests built, {} owed nothing; {} sent, {} to retry, {} failed",
        built.due, built.digests, built.empty, sent.sent, sent.retried, sent.failed
    );
    Ok(if sent.retried + sent.failed > 0 { 1 } else { 0 })
}
