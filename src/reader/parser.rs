//! Feed documents into normalised items: decodes any declared (or mis-declared) charset to UTF-8,
//! hands the text to feed-rs (RSS 0.9x/1.0/2.0, Atom, JSON Feed), and applies `normalize` to each
//! entry. Pure: bytes in, items out; no HTTP and no SQL.

use super::normalize::{self, absolute_link, canonical_link};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use encoding_rs::Encoding;
use feed_rs::model;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;
use url::Url;

/// What the parser needs to know besides the bytes.
#[derive(Debug, Clone)]
pub struct ParseContext {
    /// The URL the document was fetched from: the base for relative links.
    pub base: Option<Url>,
    /// The charset named by the HTTP Content-Type header, if any.
    pub http_charset: Option<String>,
    /// The operator's timezone, for dates written without an offset.
    pub timezone: Tz,
    /// When the document was read: first-seen time for items without a usable date.
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParsedFeed {
    pub title: Option<String>,
    pub link: Option<String>,
    pub format: &'static str,
    /// RSS `<ttl>` in minutes: a lower bound on the polling interval.
    pub ttl: Option<u32>,
    /// When the document says it last changed (Atom `updated`, RSS `lastBuildDate` or
    /// `pubDate`), else its newest dated item's date.
    pub updated: Option<DateTime<Utc>>,
    pub items: Vec<NewItem>,
    /// Entries dropped because they repeated an earlier entry's identity in the same document.
    pub duplicates: usize,
}

/// One normalised item, ready to store.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NewItem {
    pub key: String,
    pub guid: Option<String>,
    pub url: Option<String>,
    pub canonical_url: Option<String>,
    pub title: String,
    pub summary_html: String,
    pub content_html: String,
    /// Plain text of the summary (else the content): what topic queries match against.
    pub text: String,
    pub authors: Vec<String>,
    pub categories: Vec<String>,
    pub image_url: Option<String>,
    pub published: DateTime<Utc>,
    pub date_estimated: bool,
    pub updated: Option<DateTime<Utc>>,
    pub content_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("empty document")]
    Empty,
    #[error("not a feed: {0}")]
    Invalid(String),
}

/// Parses a feed document.
pub fn parse(bytes: &[u8], ctx: &ParseContext) -> Result<ParsedFeed, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let decoded = decode_to_utf8(bytes, ctx.http_charset.as_deref());
    let text = super::repair::repair(&decoded);
    let tz = ctx.timezone;
    let parser = feed_rs::parser::Builder::new()
        .base_uri(ctx.base.as_ref().map(Url::as_str))
        // An empty id marks "no GUID in the source", so identity falls back to link or hash
        // (feed-rs would otherwise invent a random one, which would make items reappear as new).
        .id_generator(|_, _, _| String::new())
        .timestamp_parser(move |t| normalize::parse_date(t, tz))
        .build();
    let feed = match parse_guarded(&parser, &text) {
        Ok(feed) => feed,
        // A document cut off mid-way still holds whole items: keep those.
        Err(first) => match super::repair::salvage_truncated(&text) {
            Some(salvaged) => parse_guarded(&parser, &salvaged).map_err(|_| first)?,
            None => return Err(first),
        },
    };
    let not_permalinks = non_permalink_guids(&text);
    Ok(convert(feed, ctx, &not_permalinks))
}

/// Runs feed-rs. A parser library panicking on hostile input must cost one feed, not the process.
fn parse_guarded(parser: &feed_rs::parser::Parser, text: &str) -> Result<model::Feed, ParseError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        parser.parse(text.as_bytes())
    }))
    .map_err(|_| {
        ParseError::Invalid("the XML parser gave up on this document (internal panic)".into())
    })?
    .map_err(|e| ParseError::Invalid(e.to_string()))
}

/// GUIDs marked `isPermaLink="false"`: feed-rs does not expose the attribute, and such a GUID
/// must not be taken for the item's link.
fn non_permalink_guids(text: &str) -> HashSet<String> {
    static GUID: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r#"<guid[^>]*isPermaLink\s*=\s*["']false["'][^>]*>\s*([^<]*?)\s*</guid>"#)
            .expect("constant regex")
    });
    if !text.contains("isPermaLink") {
        return HashSet::new();
    }
    GUID.captures_iter(text).map(|c| c[1].to_string()).collect()
}

fn convert(feed: model::Feed, ctx: &ParseContext, not_permalinks: &HashSet<String>) -> ParsedFeed {
    let feed_link = pick_link(&feed.links).and_then(|l| absolute_link(&l.href, ctx.base.as_ref()));
    let mut seen_keys = HashSet::new();
    let mut seen_links = HashSet::new();
    let mut duplicates = 0;
    let mut items = Vec::with_capacity(feed.entries.len());
    let mut sanitizers = SanitizerCache::default();
    for entry in &feed.entries {
        let mut item = convert_entry(entry, ctx, not_permalinks, &mut sanitizers);
        let link = item.canonical_url.clone();
        if !seen_keys.insert(item.key.clone()) {
            // The same GUID twice in one document: keep it under its link if that link is new
            // (a broken feed reusing GUIDs must not lose stories), else it is a true repeat.
            match &link {
                Some(l) if !seen_links.contains(l) && seen_keys.insert(format!("l:{l}")) => {
                    item.key = format!("l:{l}")
                }
                _ => {
                    duplicates += 1;
                    continue;
                }
            }
        }
        if let Some(l) = link {
            seen_links.insert(l);
        }
        items.push(item);
    }
    ParsedFeed {
        title: feed
            .title
            .as_ref()
            .map(|t| normalize::title_text(&t.content))
            .filter(|t| !t.is_empty()),
        link: feed_link.map(String::from),
        format: format_name(&feed.feed_type),
        ttl: feed.ttl,
        updated: feed.updated.or(feed.published).or_else(|| {
            items
                .iter()
                .filter(|i| !i.date_estimated)
                .map(|i| i.updated.unwrap_or(i.published).max(i.published))
                .max()
        }),
        items,
        duplicates,
    }
}

/// One sanitiser per distinct base URL in a document (nearly always exactly one).
#[derive(Default)]
struct SanitizerCache {
    by_base: Vec<(Option<Url>, normalize::Sanitizer)>,
}

impl SanitizerCache {
    fn get(&mut self, base: Option<&Url>) -> &normalize::Sanitizer {
        let at = match self.by_base.iter().position(|(b, _)| b.as_ref() == base) {
            Some(i) => i,
            None => {
                self.by_base
                    .push((base.cloned(), normalize::Sanitizer::new(base)));
                self.by_base.len() - 1
            }
        };
        &self.by_base[at].1
    }
}

fn convert_entry(
    entry: &model::Entry,
    ctx: &ParseContext,
    not_permalinks: &HashSet<String>,
    sanitizers: &mut SanitizerCache,
) -> NewItem {
    // xml:base on the entry wins over the document URL.
    let entry_base = entry
        .base
        .as_deref()
        .and_then(|b| absolute_link(b, ctx.base.as_ref()))
        .or_else(|| ctx.base.clone());
    let base = entry_base.as_ref();
    let href = pick_link(&entry.links)
        .map(|l| l.href.trim())
        .filter(|h| !h.is_empty());
    let absolute = href.and_then(|h| absolute_link(h, base));
    // Some RSS feeds put the permalink only in a permalink GUID.
    let permalink_guid = || {
        (entry.links.is_empty() && !not_permalinks.contains(entry.id.trim()))
            .then(|| absolute_link(&entry.id, None))
            .flatten()
    };
    let absolute = absolute.or_else(permalink_guid);
    let canonical_url = absolute.as_ref().map(canonical_link);
    // An absolute link is kept exactly as written (the canonical form is separate); without a
    // base (a document read from a file) a relative link is kept as written too, not lost.
    let url = match (href, &absolute) {
        (Some(h), Some(_)) if absolute_link(h, None).is_some() => Some(h.to_string()),
        (_, Some(a)) => Some(a.to_string()),
        (Some(h), None) if base.is_none() => Some(h.to_string()),
        _ => None,
    };
    // No title of its own: a Media RSS title is the next best thing.
    let title = entry
        .title
        .as_ref()
        .or_else(|| entry.media.iter().find_map(|m| m.title.as_ref()))
        .map(|t| normalize::title_text(&t.content))
        .unwrap_or_default();
    let summary_raw = entry
        .summary
        .as_ref()
        .map(|s| s.content.as_str())
        .unwrap_or("");
    let content_raw = entry
        .content
        .as_ref()
        .and_then(|c| c.body.as_deref())
        .unwrap_or("");
    let sanitizer = sanitizers.get(base);
    let summary_html = sanitizer.clean(summary_raw);
    let content_html = sanitizer.clean(content_raw);
    let text = normalize::text_of_sanitized(if summary_html.is_empty() {
        &content_html
    } else {
        &summary_html
    });
    let source_date = entry.published.or(entry.updated);
    let (published, date_estimated) =
        normalize::effective_date(entry.published, entry.updated, ctx.now);
    let guid = Some(entry.id.trim().to_string()).filter(|g| !g.is_empty());
    let key = normalize::item_key(
        guid.as_deref(),
        canonical_url.as_deref(),
        &title,
        source_date,
        &text,
    );
    let content_hash = normalize::short_hash(&[
        &title,
        &summary_html,
        &content_html,
        url.as_deref().unwrap_or(""),
    ]);
    NewItem {
        key,
        guid,
        image_url: image_of(entry, base, &summary_html, &content_html),
        url,
        canonical_url,
        title,
        summary_html,
        content_html,
        text,
        authors: entry.authors.iter().filter_map(person_name).collect(),
        categories: entry
            .categories
            .iter()
            .map(|c| normalize::clean_text(c.label.as_deref().unwrap_or(&c.term)))
            .filter(|c| !c.is_empty())
            .collect(),
        published,
        date_estimated,
        updated: entry.updated,
        content_hash,
    }
}

/// The alternate (human-readable) link: rel absent or "alternate" (RFC 4287 §4.2.7.2). A
/// license, "related" or "via" link is not the story.
/// Comment links (RSS `<comments>`, wfw:commentRss) are not the story either.
fn pick_link(links: &[model::Link]) -> Option<&model::Link> {
    links.iter().find(|l| {
        matches!(l.rel.as_deref(), None | Some("alternate"))
            && l.target.is_none()
            && !l.href.trim().is_empty()
            && l.href != super::repair::NO_LINK
    })
}

fn person_name(p: &model::Person) -> Option<String> {
    let name = p.name.as_deref().or(p.email.as_deref())?;
    Some(normalize::clean_text(name)).filter(|n| !n.is_empty())
}

/// The item's picture: an image enclosure or media thumbnail, else the first `<img>` in its HTML.
fn image_of(
    entry: &model::Entry,
    base: Option<&Url>,
    summary: &str,
    content: &str,
) -> Option<String> {
    static IMG: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r#"<img[^>]*\ssrc="([^"]+)""#).expect("constant regex"));
    let from_media = entry.media.iter().find_map(|m| {
        m.content
            .iter()
            .find(|c| {
                c.content_type
                    .as_ref()
                    .is_none_or(|t| t.ty().as_str() == "image")
            })
            .and_then(|c| c.url.as_ref().map(|u| u.to_string()))
            .or_else(|| m.thumbnails.first().map(|t| t.image.uri.clone()))
    });
    let from_enclosure = entry
        .links
        .iter()
        .find(|l| {
            l.rel.as_deref() == Some("enclosure")
                && l.media_type
                    .as_deref()
                    .is_some_and(|t| t.starts_with("image/"))
        })
        .map(|l| l.href.clone());
    let from_html = || {
        IMG.captures(summary)
            .or_else(|| IMG.captures(content))
            .map(|c| c[1].replace("&amp;", "&"))
    };
    from_media
        .or(from_enclosure)
        .or_else(from_html)
        .and_then(|u| absolute_link(&u, base))
        .map(String::from)
}

fn format_name(t: &model::FeedType) -> &'static str {
    match t {
        model::FeedType::Atom => "atom",
        model::FeedType::JSON => "json",
        model::FeedType::RSS0 => "rss0.9x",
        model::FeedType::RSS1 => "rss1.0",
        model::FeedType::RSS2 => "rss2.0",
    }
}

/// Decodes a feed to UTF-8. Order of trust: a byte-order mark; then the bytes themselves if they
/// are valid UTF-8 (prologs often lie: "iso-8859-1" over UTF-8 text); else the HTTP charset, the
/// XML prolog's encoding, and finally a statistical guess
/// from the bytes (chardetng, as in Firefox). The XML declaration is removed so the parser does not decode a second time.
pub fn decode_to_utf8<'a>(bytes: &'a [u8], http_charset: Option<&str>) -> Cow<'a, str> {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        return Cow::Owned(strip_xml_declaration(&text).into_owned());
    }
    // UTF-16 without a BOM, recognised by how "<?" is spelled (XML 1.0 Appendix F).
    let sniffed = match bytes {
        [0, b'<', 0, b'?', ..] => Some(encoding_rs::UTF_16BE),
        [b'<', 0, b'?', 0, ..] => Some(encoding_rs::UTF_16LE),
        _ => None,
    };
    if let Some(enc) = sniffed {
        let (text, _) = enc.decode_without_bom_handling(bytes);
        return Cow::Owned(strip_xml_declaration(&text).into_owned());
    }
    let declared = declared_encoding(bytes);
    let label_enc = |l: &str| Encoding::for_label(l.trim().as_bytes());
    // UTF-16 without a BOM looks like valid UTF-8 full of NULs: trust the declaration there.
    let utf16 = [http_charset, declared.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(label_enc)
        .find(|e| *e == encoding_rs::UTF_16LE || *e == encoding_rs::UTF_16BE);
    if let Some(enc) = utf16 {
        let (text, _) = enc.decode_without_bom_handling(bytes);
        return Cow::Owned(strip_xml_declaration(&text).into_owned());
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return strip_xml_declaration(text);
    }
    // Nothing usable declared: guess from the bytes, as browsers do.
    let enc = [http_charset, declared.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(label_enc)
        .find(|e| *e != encoding_rs::UTF_8)
        .unwrap_or_else(|| {
            let mut detector = chardetng::EncodingDetector::new();
            detector.feed(bytes, true);
            detector.guess(None, true)
        });
    let (text, _) = enc.decode_without_bom_handling(bytes);
    Cow::Owned(strip_xml_declaration(&text).into_owned())
}

fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(512)];
    let head = String::from_utf8_lossy(head);
    let decl_end = head.find("?>")?;
    let decl = &head[..decl_end];
    let start = decl.find("<?xml")?;
    let decl = &decl[start..];
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    let end = value.find(quote)?;
    Some(value[..end].to_string())
}

/// Removes every XML declaration (`<?xml …?>`), wherever it stands: the text handed to the
/// parser is already UTF-8, and a declaration past the first bytes would make quick-xml switch
/// decoders mid-stream (it asserts, i.e. panics, on that).
fn strip_xml_declaration(text: &str) -> Cow<'_, str> {
    if !text.contains("<?xml") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<?xml") {
        let after = &rest[start + 5..];
        // `<?xml-stylesheet …?>` and other PIs whose target merely starts with "xml" stay.
        if !after.starts_with(|c: char| c.is_whitespace() || c == '?') {
            out.push_str(&rest[..start + 5]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..start]);
        rest = match after.find("?>") {
            Some(end) => &after[end + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests;
