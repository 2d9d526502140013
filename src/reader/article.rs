//! Full text: an item's article page read for its body. A page is refused unless it is HTML;
//! its charset comes from the HTTP header, else its `<meta>`, else the bytes (windows-1258
//! included), and its text ends NFC. The body is what a CSS selector picks (the feed's own
//! `full_text = "…"`, or the site's rule from `config::sites`), else what readability-style
//! extraction (dom_smoothie) finds; either way it is sanitised like feed content and gets a
//! plain-text twin for matching and clustering. Pure: bytes in, body out.

use super::normalize::{self, Sanitizer};
use crate::config::FullText;
use crate::config::sites::SiteRule;
use scraper::Html;
use url::Url;

/// An article's body, sanitised, with its plain text.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub html: String,
    pub text: String,
    /// How it was found: `selector`, `site rule`, `readability`, or readability after a site
    /// rule that matched nothing.
    pub how: &'static str,
}

/// Most elements readability scores on one page: a page past it is refused rather than read
/// for seconds.
const MAX_ELEMENTS: usize = 60_000;

/// The body of the article page `bytes` (fetched from `url`, with its Content-Type), read the
/// way `how` says; `site` is the rule covering the page's host, if any. The error says why
/// in a line (it is kept on the item's queue row).
pub fn extract(
    bytes: &[u8],
    content_type: Option<&str>,
    url: &Url,
    how: &FullText,
    site: Option<&SiteRule>,
) -> Result<Body, String> {
    if let Some(ct) = content_type {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !mime.is_empty() && mime != "text/html" && mime != "application/xhtml+xml" {
            return Err(format!("not an HTML page (Content-Type: {mime})"));
        }
    } else if !looks_like_html(bytes) {
        return Err("not an HTML page (no Content-Type, and the bytes are not markup)".into());
    }
    let charset = content_type
        .and_then(super::fetcher::charset_of)
        .or_else(|| super::html_source::meta_charset(&bytes[..bytes.len().min(2048)]));
    let text = super::decode::decode_to_utf8(bytes, charset.as_deref());
    crate::text::parseable(&text)?;
    let sanitizer = Sanitizer::new(Some(url));
    let (raw, how) = match (how, site) {
        (FullText::Selector(selector), _) => (by_selector(&text, selector, &[])?, "selector"),
        // A shipped or operator rule that no longer fits the site's layout falls back to
        // readability: a rule is a better reading of a known layout, not a condition.
        (_, Some(rule)) => match by_selector(&text, &rule.body, &rule.remove) {
            Ok(raw) => (raw, "site rule"),
            Err(_) => (
                readable(&text, url)?,
                "readability (the site rule matched nothing)",
            ),
        },
        _ => (readable(&text, url)?, "readability"),
    };
    let html = sanitizer.clean(&raw);
    let text = normalize::text_of_sanitized(&html);
    if text.is_empty() {
        return Err(format!("the {how} found no text on the page"));
    }
    Ok(Body { html, text, how })
}

/// The outer HTML of what `selector` matches, in page order, after dropping what `remove`
/// matches.
fn by_selector(text: &str, selector: &str, remove: &[String]) -> Result<String, String> {
    let parse = |s: &str| {
        super::html_source::parse_selector(s).map_err(|e| format!("the selector {s:?}: {e}"))
    };
    let body = parse(selector)?;
    let mut page = Html::parse_document(text);
    for r in remove {
        let r = parse(r)?;
        let ids: Vec<_> = page.select(&r).map(|e| e.id()).collect();
        for id in ids {
            if let Some(mut node) = page.tree.get_mut(id) {
                node.detach();
            }
        }
    }
    // Outermost matches only: a match inside another is already in its HTML (nested matches
    // copied each level again, quadratic in the nesting depth).
    let mut taken = std::collections::HashSet::new();
    let mut parts: Vec<String> = Vec::new();
    for el in page.select(&body) {
        if el.ancestors().any(|a| taken.contains(&a.id())) {
            continue;
        }
        taken.insert(el.id());
        parts.push(el.html());
    }
    if parts.is_empty() {
        return Err(format!(
            "the selector {selector:?} matches nothing on this page (has its layout changed?)"
        ));
    }
    Ok(parts.concat())
}

/// Deepest element nesting readability is given: its scoring walks each paragraph's
/// ancestors, so a page nesting thousands deep (a hostile or broken one: 15,000 nested `<div>`s
/// in 1 MB took 10 s) would cost time quadratic in its depth. Real article pages nest a few
/// dozen deep.
const MAX_DEPTH: usize = 256;

/// Readability-style extraction; a panic inside it is an error of this page only.
fn readable(text: &str, url: &Url) -> Result<String, String> {
    let deep = crate::text::markup_depth(text);
    if deep > MAX_DEPTH {
        return Err(format!(
            "the page nests its elements {deep} deep (more than {MAX_DEPTH}): not read by readability"
        ));
    }
    let cfg = dom_smoothie::Config {
        max_elements_to_parse: MAX_ELEMENTS,
        ..Default::default()
    };
    let found = super::parser::quiet_panics::catch(|| {
        let mut reader = dom_smoothie::Readability::new(text, Some(url.as_str()), Some(cfg))?;
        reader.parse().map(|article| article.content.to_string())
    })
    .map_err(|panic| format!("the readability extractor crashed: {panic}"))?;
    found.map_err(|e| format!("readability found no article: {e}"))
}

/// Whether bytes without a Content-Type start like a web page.
pub(crate) fn looks_like_html(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    head.starts_with('<')
        && (head.contains("<html")
            || head.contains("<!doctype html")
            || head.contains("<body")
            || head.contains("<p>")
            || head.contains("<p "))
}

#[cfg(test)]
mod tests;
