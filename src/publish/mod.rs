//! Merged feeds: entries in, RSS 2.0 / Atom 1.0 / JSON Feed 1.1 documents out. Pure: no clock
//! (a document's date is its newest entry's, so regenerating unchanged content changes no byte),
//! no database, no files. What goes into which feed is decided by the caller (`worker::publisher`).

mod atom;
mod json;
mod rss;
pub mod site;
mod updated;

use chrono::{DateTime, Utc};

pub use updated::story_updated;

/// One story in a merged feed: the item shown, plus the other sources that carried it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Stable across regenerations: derived from the story's cluster id, never from its position.
    pub guid: String,
    pub title: String,
    /// The original article.
    pub link: Option<String>,
    pub summary_html: String,
    pub content_html: String,
    pub published: DateTime<Utc>,
    /// The story's own last change (see `story_updated`): stable across
    /// regenerations, so feed readers show an entry as changed only when it is.
    pub updated: DateTime<Utc>,
    pub authors: Vec<String>,
    pub category: Label,
    pub source: Source,
    /// Other outlets that carried the same story.
    pub also: Vec<Source>,
    pub image: Option<String>,
}

/// A category or province: slug for machines, name for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub slug: String,
    pub name: String,
}

/// An outlet (one configured feed) and, in `also`, its article on the story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub title: String,
    /// The source feed's URL.
    pub feed_url: String,
    pub site_url: Option<String>,
    /// The article's link at this source.
    pub link: Option<String>,
    /// When the source feed says it last changed, where known.
    pub updated: Option<DateTime<Utc>>,
}

/// What a merged feed is about and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedMeta {
    /// Path below /feeds/ without extension: "thoi-su", "province/lao-cai", "all".
    pub path: String,
    pub title: String,
    pub description: String,
    /// The server's public base URL, ending in '/'.
    pub base_url: String,
    pub language: String,
    /// The query string of a feed made on request (a topic's `q=…`), already encoded.
    pub query: Option<String>,
    /// The WebSub hub that announces this feed's changes (`<link rel="hub">`), if any.
    pub hub: Option<String>,
}

impl FeedMeta {
    pub fn url(&self, format: Format) -> String {
        let query = self
            .query
            .as_deref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        format!(
            "{}feeds/{}.{}{query}",
            self.base_url,
            self.path,
            format.extension()
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Rss,
    Atom,
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Rss, Format::Atom, Format::Json];

    pub fn extension(self) -> &'static str {
        match self {
            Format::Rss => "xml",
            Format::Atom => "atom",
            Format::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Json => "application/feed+json; charset=utf-8",
        }
    }

    pub fn from_extension(ext: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.extension() == ext)
    }
}

/// Renders a merged feed in one format.
pub fn render(meta: &FeedMeta, entries: &[Entry], format: Format) -> String {
    match format {
        Format::Rss => rss::render(meta, entries),
        Format::Atom => atom::render(meta, entries),
        Format::Json => json::render(meta, entries),
    }
}

/// The document's date: its newest entry's, or the epoch for an empty feed (never "now", so an
/// unchanged feed renders to the same bytes).
fn feed_updated(entries: &[Entry]) -> DateTime<Utc> {
    entries
        .iter()
        .map(|e| e.updated.max(e.published))
        .max()
        .unwrap_or_default()
}

/// The entry's HTML body with a line naming the other outlets that carried the story.
fn body_with_sources(entry: &Entry) -> String {
    let body = if entry.content_html.is_empty() {
        &entry.summary_html
    } else {
        &entry.content_html
    };
    if entry.also.is_empty() {
        return body.clone();
    }
    let links: Vec<String> = entry
        .also
        .iter()
        .map(|s| match &s.link {
            Some(l) => format!("<a href=\"{}\">{}</a>", escape(l), escape(&s.title)),
            None => escape(&s.title),
        })
        .collect();
    format!("{body}<p>Cùng đưa tin: {}</p>", links.join(", "))
}

/// Escapes text for XML and HTML content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 forbids these; stored text should not have them, but never emit them.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{fffe}' | '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Text with the characters XML 1.0 forbids removed (for builders that escape but do not filter).
fn xml_safe(text: &str) -> String {
    text.chars()
        .filter(|c| {
            (!c.is_control() || matches!(c, '\t' | '\n' | '\r'))
                && !matches!(c, '\u{fffe}' | '\u{ffff}')
        })
        .collect()
}

/// The MIME type of an image URL, from its extension (enclosures require one).
fn image_type(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    if path.ends_with(".png") {
        "image/png"
    } else if path.ends_with(".gif") {
        "image/gif"
    } else if path.ends_with(".webp") {
        "image/webp"
    } else {
        "image/jpeg"
    }
}

#[cfg(test)]
mod tests;
