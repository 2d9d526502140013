//! The `tinbao` command line: argument definitions, and one function per subcommand in the
//! file of its group (`feeds`: poll, feeds, inspect; `subscribers`; `digest`). Each function
//! loads what it needs, calls the library, and prints; `main.rs` only dispatches.

mod article;
mod digest;
mod discover;
mod feeds;
mod import;
mod subscribers;

pub use digest::digest;
pub use feeds::{feeds, inspect, inspect_json, poll};
pub use import::import_opml;
pub use subscribers::{subscribers, validate_subscriber};

use crate::config::Config;
use crate::storage::Store;
use clap::{Parser, Subcommand};
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
        /// An http(s) URL or a path to a feed file (or, with --html, a page).
        source: String,
        #[arg(long)]
        json: bool,
        /// Read SOURCE as a section page with CSS selectors, as `kind = "html"` does:
        /// `--html 'item=article.story' --html 'title=h3' --html 'link=h3 a'` (also `date=`,
        /// `summary=`).
        #[arg(long, value_name = "KEY=SELECTOR")]
        html: Vec<String>,
        /// Read SOURCE as an article page for its body, as `full_text` does: by the site's
        /// rule or readability, or by SELECTOR when given (`--full-text 'div.noi-dung'`).
        #[arg(long, value_name = "SELECTOR", num_args = 0..=1, default_missing_value = "",
              conflicts_with = "html")]
        full_text: Option<String>,
    },
    /// List the feeds a site or section page offers (advertised, linked, or at common paths),
    /// each checked by fetching it, as `[[feed]]` blocks to paste into feeds.toml.
    Discover {
        url: String,
        #[arg(long)]
        json: bool,
    },
    /// Add sources to feeds.toml from another reader's export.
    Import {
        #[command(subcommand)]
        what: ImportWhat,
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
pub enum ImportWhat {
    /// Add an OPML file's feeds to the file named by --config (its comments and layout kept):
    /// folders become categories, feeds already there are skipped, the result is checked like
    /// `tinbao check` before the file is replaced.
    Opml {
        file: PathBuf,
        /// Print what would be added; change nothing.
        #[arg(long)]
        dry_run: bool,
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

/// `tinbao discover URL`: with the operator's config if there is one (User-Agent, limits,
/// timezone, categories), else the defaults.
pub async fn discover(config_path: &Path, url: &str, json: bool) -> anyhow::Result<i32> {
    let config = if config_path.exists() {
        Config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?
    } else {
        feeds::defaults()
    };
    discover::discover(&config, url, json).await
}
