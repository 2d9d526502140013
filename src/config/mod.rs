//! feeds.toml: read in two layers. `raw` mirrors what the operator typed (with spans); this module
//! validates it into a `Config` of working values (durations, URLs, slugs, cron schedules) and
//! reports every problem at once as `file:line:col: reason`. Environment overrides (`TINBAO_*`)
//! are applied between the two layers. The config is passed around as a value, never global.

pub mod edit;
pub mod opml;
mod raw;
pub mod sites;
pub mod units;
mod validate;

use chrono_tz::Tz;
use raw::RawConfig;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use url::Url;
use validate::Validator;

/// A validated configuration: every value here is known good.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config was read from; relative paths in it are relative to its folder.
    pub source: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub polling: PollingConfig,
    pub smtp: Option<SmtpConfig>,
    pub digest: DigestConfig,
    pub publish: PublishConfig,
    pub categories: Vec<Category>,
    pub provinces: Vec<Province>,
    pub feeds: Vec<FeedSource>,
    /// Article-body rules per site for `full_text = true`: the operator's `full_text.toml`
    /// beside the config first, then the shipped ones (`config::sites`).
    pub sites: Vec<sites::SiteRule>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub base_url: Url,
    pub output_dir: PathBuf,
    /// How far back a topic feed (`/feeds/topic.xml?q=…`) reaches.
    pub topic_days: Duration,
    /// Whether `tinbao run` is the WebSub hub of the merged feeds (`/websub`, and their
    /// `<link rel="hub">`). Off where only `run --once` writes files for another web server.
    pub websub: bool,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `sqlite://path` (relative to the config's folder) or `postgres://…`.
    pub url: String,
    /// Items older than this are pruned, leaving a tombstone so they never return as new.
    pub retention: Duration,
    /// How long a process's claim on a due feed or digest lasts before another process sharing
    /// the database may take the work over (the holder crashed).
    pub lease: Duration,
}

#[derive(Debug, Clone)]
pub struct PollingConfig {
    pub interval: Duration,
    pub min_interval: Duration,
    pub max_interval: Duration,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_body: u64,
    pub per_host: usize,
    pub concurrency: usize,
    pub user_agent: String,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub url: String,
    pub from: String,
}

#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// The operator's timezone: digest schedules are evaluated in it and times are shown in it.
    pub timezone: Tz,
    pub max_items: usize,
    pub schedules: BTreeMap<String, cron::Schedule>,
}

/// The merged feeds tinbao publishes.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// Most stories in one merged feed.
    pub max_items: usize,
    /// Stories older than this leave the merged feeds (they stay stored).
    pub max_age: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub slug: String,
    pub title: String,
    /// Filter rules for every feed of the category (see `FeedSource::skip`).
    pub skip: Option<String>,
    pub keep: Option<String>,
    /// Full text for every feed of the category, unless a feed says otherwise.
    pub full_text: Option<FullText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Province {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSource {
    /// Stable key: a feed's history survives a change of URL.
    pub id: String,
    pub url: Url,
    pub category: String,
    pub province: Option<String>,
    pub title: Option<String>,
    pub enabled: bool,
    /// Filter rules in the topic query language, checked when the config is loaded: an item
    /// matching `skip` is not stored; with `keep`, only items matching it are. They add to the
    /// category's rules (`reader::filter`).
    pub skip: Option<String>,
    pub keep: Option<String>,
    /// `kind = "html"`: the URL is a section page, read with these selectors
    /// (`reader::html_source`) instead of as a feed document.
    pub html: Option<HtmlSelectors>,
    /// `full_text = true | false | "selector"` as written on the feed (`None`: the category's).
    /// Use `Config::full_text` for the setting that applies.
    pub full_text: Option<FullText>,
}

/// How an item's article page is read for its body (`reader::article`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FullText {
    /// `full_text = false`: the feed's own text (overrides a category's setting).
    Off,
    /// `full_text = true`: the site's rule from the shipped or the operator's rules file, else
    /// readability-style extraction.
    Auto,
    /// `full_text = "CSS selector"`: the elements it matches, in page order.
    Selector(String),
}

/// The CSS selectors that read a section page as a source (checked when the config is loaded):
/// `item` on the page, the rest inside each item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtmlSelectors {
    pub item: String,
    pub title: String,
    pub link: String,
    pub date: Option<String>,
    pub summary: Option<String>,
}

/// One problem found in a config file, located in the file where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// Everything wrong with a config: one line per problem, `file:line:col: reason`.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match (p.line, p.column) {
                (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, p.message)?,
                _ => write!(f, "{}: {}", self.file, p.message)?,
            }
        }
        Ok(())
    }
}

/// Environment variables that override the file, so containers and systemd units can set
/// secrets and addresses without editing feeds.toml.
pub const ENV_OVERRIDES: &[&str] = &[
    "TINBAO_DATABASE_URL",
    "TINBAO_LISTEN",
    "TINBAO_BASE_URL",
    "TINBAO_OUTPUT_DIR",
    "TINBAO_SMTP_URL",
    "TINBAO_SMTP_FROM",
];

impl Config {
    /// Reads and validates the file at `path`, applying `TINBAO_*` overrides from the process
    /// environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            problems: vec![Problem {
                line: None,
                column: None,
                message: format!("cannot read: {e}"),
            }],
        })?;
        let mut config = Config::parse(&text, path, &|name| std::env::var(name).ok())?;
        config.sites = sites::load(&config.base_dir().join("full_text.toml"))?;
        Ok(config)
    }

    /// The article-body rule for a host, if a site rule covers it.
    pub fn site_rule(&self, host: &str) -> Option<&sites::SiteRule> {
        self.sites.iter().find(|r| r.covers(host))
    }

    /// Validates config text; `env` supplies overrides (tests pass a closure over a map).
    pub fn parse(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            ConfigError {
                file: file.clone(),
                problems: vec![Problem {
                    line,
                    column,
                    message: e.message().trim().to_string(),
                }],
            }
        })?;
        let mut v = Validator {
            text,
            problems: Vec::new(),
        };
        let config = v.config(raw, path, env);
        if v.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                file,
                problems: v.problems,
            })
        }
    }

    /// Whether any feed reads its items' article pages.
    pub fn any_full_text(&self) -> bool {
        self.feeds.iter().any(|f| self.full_text(&f.id).is_some())
    }

    /// The full-text setting that applies to a feed: its own, else its category's; `None` when
    /// its items keep the feed's text.
    pub fn full_text(&self, feed_id: &str) -> Option<&FullText> {
        let feed = self.feeds.iter().find(|f| f.id == feed_id)?;
        let setting = feed
            .full_text
            .as_ref()
            .or_else(|| self.category(&feed.category)?.full_text.as_ref())?;
        (*setting != FullText::Off).then_some(setting)
    }

    pub fn category(&self, slug: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.slug == slug)
    }

    /// The folder relative paths in the config are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self.source.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Where the merged feeds' files are written (`[server] output_dir`, relative to the
    /// config's folder).
    pub fn output_dir(&self) -> PathBuf {
        let dir = &self.server.output_dir;
        if dir.is_absolute() {
            dir.clone()
        } else {
            self.base_dir().join(dir)
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// A slug is lower-case ASCII letters, digits and single hyphens (`thoi-su`, `lao-cai`): it goes
/// into URLs and file names, so Vietnamese titles live in `title`, not in the slug.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

#[cfg(test)]
mod tests;
