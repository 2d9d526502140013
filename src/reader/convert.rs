//! The chain's last step: feed-rs's model of a document into tinbao's items, each entry
//! normalised (`normalize`): plain-text titles, sanitised HTML with its plain text, absolute and
//! canonical links, dates, identity keys; GUIDs repeated within the document resolved.

use super::normalize::{self, absolute_link, canonical_link};
use super::parser::{ParseContext, ParsedFeed};
use crate::model::NewItem;
use feed_rs::model;
use std::collections::HashSet;
use std::sync::LazyLock;
use url::Url;

/// `feed` as items; `text` is the document it was read from (for what feed-rs does not keep).
/// `taken` holds the identities of entries cut from the text before it was read (see `skim`):
/// a read entry that repeats one of them is told apart as if they had been read together.
/// Also returns, for each of the feed's entries in order, the digests of the key and link its
/// item took, or `None` for a repeat that was dropped.
pub(super) fn convert(
    feed: model::Feed,
    text: &str,
    ctx: &ParseContext,
    taken: Taken,
) -> (ParsedFeed, Vec<Option<(u64, u64)>>) {
    let not_permalinks = non_permalink_guids(text);
    convert_feed(feed, ctx, &not_permalinks, taken)
}

/// Digests of identity keys and canonical links already taken in a document.
#[derive(Debug, Default)]
pub(super) struct Taken {
    pub keys: HashSet<u64>,
    pub links: HashSet<u64>,
}

/// The digest `Taken` and the entry memory keep of a key or link.
pub(super) fn identity_digest(text: &str) -> u64 {
    super::skim::digest(&[text.as_bytes()])
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

fn convert_feed(
    feed: model::Feed,
    ctx: &ParseContext,
    not_permalinks: &HashSet<String>,
    taken: Taken,
) -> (ParsedFeed, Vec<Option<(u64, u64)>>) {
    let feed_link = pick_link(&feed.links).and_then(|l| absolute_link(&l.href, ctx.base.as_ref()));
    let Taken {
        keys: mut seen_keys,
        links: mut seen_links,
    } = taken;
    let mut duplicates = 0;
    let mut items = Vec::with_capacity(feed.entries.len());
    let mut outcomes = Vec::with_capacity(feed.entries.len());
    let mut sanitizers = SanitizerCache::default();
    for entry in &feed.entries {
        let mut item = convert_entry(entry, ctx, not_permalinks, &mut sanitizers);
        let link = item.canonical_url.as_deref().map(identity_digest);
        if !seen_keys.insert(identity_digest(&item.key)) {
            // The same GUID twice in one document: keep it under its link if that link is new
            // (a broken feed reusing GUIDs must not lose stories), else it is a true repeat.
            match (&item.canonical_url, link) {
                (Some(l), Some(d))
                    if !seen_links.contains(&d)
                        && seen_keys.insert(identity_digest(&format!("l:{l}"))) =>
                {
                    item.key = format!("l:{l}")
                }
                _ => {
                    duplicates += 1;
                    outcomes.push(None);
                    continue;
                }
            }
        }
        if let Some(d) = link {
            seen_links.insert(d);
        }
        outcomes.push(Some((identity_digest(&item.key), link.unwrap_or(0))));
        items.push(item);
    }
    let parsed = ParsedFeed {
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
    };
    (parsed, outcomes)
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
        signature: Vec::new(),
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
