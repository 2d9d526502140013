//! `tinbao discover URL [--json]`: the feeds a site or section page offers, each checked by
//! fetching and parsing it, printed as `[[feed]]` blocks ready to paste into feeds.toml.

use crate::config::{Config, edit};
use crate::model::Validators;
use crate::reader::discover::{self, Candidate, Source};
use crate::reader::fetcher::{FetchOutcome, Fetched, Fetcher};
use crate::reader::parser::{self, ParseContext};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::collections::HashSet;
use std::io::Write;
use url::Url;

/// A checked feed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    pub url: String,
    pub title: Option<String>,
    pub format: &'static str,
    pub items: usize,
    pub newest: Option<DateTime<Utc>>,
    /// advertised, linked, guessed, or "the address itself".
    pub found: &'static str,
    /// A `[[feed]]` id and category for feeds.toml.
    pub id: String,
    pub category: String,
    /// The guessed category's title, for a `[[category]]` feeds.toml lacks.
    pub category_title: String,
}

enum Checked {
    Feed(Found),
    /// An HTML page: an RSS index page, perhaps, whose links are candidates too.
    Page(Fetched),
    Failed(String),
}

/// Exit 0 with the feeds found, 1 when none (or the page could not be fetched).
pub async fn discover(config: &Config, address: &str, json: bool) -> anyhow::Result<i32> {
    let url = match Url::parse(address) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        _ => {
            eprintln!("tinbao discover: {address:?} is not an http(s) address");
            return Ok(2);
        }
    };
    let fetcher = Fetcher::new(&config.polling)?;
    let mut found = Vec::new();
    let mut failures = Vec::new();
    match check(&fetcher, config, &url, "the address itself", None).await {
        Checked::Feed(f) => found.push(f),
        Checked::Failed(e) => {
            eprintln!("tinbao discover: {url}: {e}");
            return Ok(1);
        }
        Checked::Page(page) => {
            let mut seen = HashSet::from([url.clone(), page.final_url.clone()]);
            let mut round = candidates_of(&page);
            // Two levels: the page, then the RSS index pages it links to.
            for depth in 0..2 {
                let checked: Vec<(Candidate, Checked)> = futures_util::stream::iter(
                    round.into_iter().filter(|c| seen.insert(c.url.clone())),
                )
                .map(|c| {
                    let fetcher = &fetcher;
                    async move {
                        let how = c.source.as_str();
                        let result = check(fetcher, config, &c.url, how, c.title.as_deref()).await;
                        (c, result)
                    }
                })
                .buffer_unordered(8)
                .collect()
                .await;
                let mut next = Vec::new();
                for (c, result) in checked {
                    match result {
                        Checked::Feed(f) => found.push(f),
                        Checked::Page(p) if depth == 0 && c.source == Source::Linked => {
                            next.extend(
                                candidates_of(&p)
                                    .into_iter()
                                    .filter(|c| c.source != Source::Guessed),
                            );
                        }
                        Checked::Page(_) => {}
                        Checked::Failed(e) if c.source != Source::Guessed => {
                            failures.push(format!("{}: {e}", c.url));
                        }
                        Checked::Failed(_) => {}
                    }
                }
                next.truncate(discover::MAX_CANDIDATES);
                round = next;
            }
        }
    }
    found.sort_by(|a, b| a.url.cmp(&b.url));
    found.dedup_by(|a, b| a.url == b.url);
    unique_ids(&mut found, config);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &found)?;
        writeln!(out)?;
    } else {
        print_blocks(&mut out, &found, config)?;
    }
    for f in &failures {
        eprintln!("not a feed: {f}");
    }
    if found.is_empty() {
        eprintln!("tinbao discover: no feed found at {url}");
        return Ok(1);
    }
    Ok(0)
}

fn candidates_of(page: &Fetched) -> Vec<Candidate> {
    let charset = page.charset().or_else(|| {
        crate::reader::html_source::meta_charset(&page.body[..page.body.len().min(2048)])
    });
    let text = crate::reader::decode::decode_to_utf8(&page.body, charset.as_deref());
    discover::candidates(&text, &page.final_url)
}

/// Fetches `url`: a feed (parsed, with what it holds), an HTML page, or why neither.
async fn check(
    fetcher: &Fetcher,
    config: &Config,
    url: &Url,
    found: &'static str,
    named: Option<&str>,
) -> Checked {
    let fetched = match fetcher.fetch(url, &Validators::default()).await {
        Ok(FetchOutcome::Body(f) | FetchOutcome::NotModified(f)) => f,
        Err(e) => return Checked::Failed(e.to_string()),
    };
    let html = fetched
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("html"));
    let ctx = ParseContext {
        base: Some(fetched.final_url.clone()),
        http_charset: fetched.charset(),
        timezone: config.digest.timezone,
        now: Utc::now(),
    };
    let parsed = if html {
        None
    } else {
        parser::parse(&fetched.body, &ctx).ok()
    };
    match parsed {
        Some(feed) => {
            let title = feed.title.clone().or_else(|| named.map(str::to_string));
            let (category, category_title) = title
                .as_deref()
                .map(discover::category_guess)
                .filter(|(slug, _)| !slug.is_empty())
                .unwrap_or_else(|| ("tong-hop".into(), "Tổng hợp".into()));
            let id = title
                .as_deref()
                .map(edit::slug)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| edit::slug(url.host_str().unwrap_or("nguon")));
            Checked::Feed(Found {
                url: fetched.final_url.to_string(),
                title,
                format: feed.format,
                items: feed.items.len(),
                newest: feed.items.iter().map(|i| i.published).max(),
                found,
                id,
                category,
                category_title,
            })
        }
        None if html || crate::reader::article::looks_like_html(&fetched.body) => {
            Checked::Page(fetched)
        }
        None => Checked::Failed("neither a feed nor a web page".into()),
    }
}

/// Ids unique among themselves and the config's feeds; a category the config has by title is
/// used by its slug.
fn unique_ids(found: &mut [Found], config: &Config) {
    let mut taken: HashSet<String> = config.feeds.iter().map(|f| f.id.clone()).collect();
    for f in found.iter_mut() {
        let base = f.id.clone();
        f.id = (1..)
            .map(|n| {
                if n == 1 {
                    base.clone()
                } else {
                    format!("{base}-{n}")
                }
            })
            .find(|id| !taken.contains(id))
            .expect("an unused id");
        taken.insert(f.id.clone());
        if let Some(c) = config
            .categories
            .iter()
            .find(|c| edit::slug(&c.title) == f.category)
        {
            f.category = c.slug.clone();
        }
    }
}

fn print_blocks(out: &mut impl Write, found: &[Found], config: &Config) -> std::io::Result<()> {
    let tz = config.digest.timezone;
    let mut missing: Vec<&Found> = Vec::new();
    for f in found {
        if !config.categories.iter().any(|c| c.slug == f.category)
            && !missing.iter().any(|m| m.category == f.category)
        {
            missing.push(f);
        }
    }
    for f in missing {
        writeln!(
            out,
            "# a category feeds.toml does not have yet\n[[category]]\nslug = \"{}\"\ntitle = {}\n",
            f.category,
            toml_string(&f.category_title)
        )?;
    }
    for f in found {
        let newest = f.newest.map_or("no dated items".to_string(), |t| {
            format!("newest {}", t.with_timezone(&tz).format("%d/%m/%Y %H:%M"))
        });
        writeln!(
            out,
            "# {} ({}, {} items, {newest}; {})",
            f.title.as_deref().unwrap_or("(untitled)"),
            f.format,
            f.items,
            f.found
        )?;
        writeln!(
            out,
            "[[feed]]\nid = \"{}\"\nurl = \"{}\"\ncategory = \"{}\"",
            f.id, f.url, f.category
        )?;
        if let Some(title) = &f.title {
            writeln!(out, "title = {}", toml_string(title))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// A TOML string (toml_edit's rendering: quotes and escapes as TOML wants them).
fn toml_string(s: &str) -> String {
    toml_edit::Value::from(s).to_string()
}
