//! Section pages as sources: a paper's list page that has no feed (the seed article's "Tin cùng
//! chuyên mục"), read with the CSS selectors the operator gives a `[[feed]] kind = "html"`.
//! `item` picks each story's block on the page; inside it `title` (its text), `link` (the
//! element's `href`, else the first link inside it), and optionally `date` (a `datetime` or
//! `content` attribute, else its text, in the Vietnamese forms `parse_date` reads) and `summary`
//! (its HTML, sanitised like feed content). Items come out as a feed's would: canonical link as
//! identity, NFC text, the same keys and content hashes. Pure: bytes in, items out.

use super::normalize::{self, absolute_link, canonical_link};
use super::parser::{ParseContext, ParseError, ParsedFeed};
use crate::config::HtmlSelectors;
use crate::model::NewItem;
use scraper::{ElementRef, Html, Selector};
use std::collections::HashSet;

/// Why a selector is refused (for `tinbao check`): scraper's reason, in a line.
pub fn selector_error(selector: &str) -> Option<String> {
    parse_selector(selector).err()
}

/// A CSS selector, or why it is not one in a line (scraper's text for some errors is an
/// apology over two lines; its last line names the problem).
pub fn parse_selector(selector: &str) -> Result<Selector, String> {
    Selector::parse(selector).map_err(|e| {
        let text = e.to_string();
        match text.lines().last() {
            Some(last) if text.contains("report this") => {
                format!("not a valid CSS selector ({})", last.trim())
            }
            _ => text.replace('\n', " "),
        }
    })
}

struct Compiled {
    item: Selector,
    title: Selector,
    link: Selector,
    date: Option<Selector>,
    summary: Option<Selector>,
}

fn compile(s: &HtmlSelectors) -> Result<Compiled, ParseError> {
    let one = |name: &str, text: &str| {
        Selector::parse(text)
            .map_err(|e| ParseError::Invalid(format!("the {name} selector {text:?}: {e}")))
    };
    Ok(Compiled {
        item: one("item", &s.item)?,
        title: one("title", &s.title)?,
        link: one("link", &s.link)?,
        date: s.date.as_deref().map(|d| one("date", d)).transpose()?,
        summary: s
            .summary
            .as_deref()
            .map(|d| one("summary", d))
            .transpose()?,
    })
}

/// The items `selectors` find on the page. A page where `item` matches nothing, or where no
/// item has a title and a link, is an error naming the selector (the feed's row shows it, and
/// nothing stored is touched).
pub fn extract(
    bytes: &[u8],
    ctx: &ParseContext,
    selectors: &HtmlSelectors,
) -> Result<ParsedFeed, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let sel = compile(selectors)?;
    let charset = ctx
        .http_charset
        .clone()
        .or_else(|| meta_charset(&bytes[..bytes.len().min(2048)]));
    let text = super::decode::decode_to_utf8(bytes, charset.as_deref());
    crate::text::parseable(&text).map_err(ParseError::Invalid)?;
    let page = Html::parse_document(&text);
    let base = ctx.base.as_ref();
    let sanitizer = normalize::Sanitizer::new(base);
    let blocks: Vec<ElementRef> = page.select(&sel.item).collect();
    if blocks.is_empty() {
        return Err(ParseError::Invalid(format!(
            "the item selector {:?} matches nothing on this page (has its layout changed?)",
            selectors.item
        )));
    }
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let (mut untitled, mut unlinked, mut duplicates) = (0, 0, 0);
    for block in &blocks {
        let title = block
            .select(&sel.title)
            .next()
            .or_else(|| sel.title_is_self(block))
            .map(|t| normalize::clean_text(&t.text().collect::<String>()))
            .unwrap_or_default();
        if title.is_empty() {
            untitled += 1;
            continue;
        }
        let Some(link) = block
            .select(&sel.link)
            .next()
            .or_else(|| sel.link.matches(block).then_some(*block))
            .and_then(href_of)
            .and_then(|h| absolute_link(h, base))
        else {
            unlinked += 1;
            continue;
        };
        let canonical = canonical_link(&link);
        if !seen.insert(canonical.clone()) {
            // Section pages repeat their lead story (a banner and the list): one item.
            duplicates += 1;
            continue;
        }
        let date = sel
            .date
            .as_ref()
            .and_then(|s| block.select(s).next())
            .and_then(|d| {
                let attr = ["datetime", "content", "title"]
                    .iter()
                    .find_map(|a| d.value().attr(a));
                attr.and_then(|a| normalize::parse_date(a, ctx.timezone))
                    .or_else(|| normalize::parse_date(&d.text().collect::<String>(), ctx.timezone))
            });
        let summary_html = sel
            .summary
            .as_ref()
            .and_then(|s| block.select(s).next())
            .map(|s| sanitizer.clean(&s.inner_html()))
            .unwrap_or_default();
        let text = normalize::text_of_sanitized(&summary_html);
        let image_url = block
            .select(&IMG)
            .find_map(|i| i.value().attr("src"))
            .and_then(|s| absolute_link(s, base))
            .map(String::from);
        let (published, date_estimated) = normalize::effective_date(date, None, ctx.now);
        let url = link.to_string();
        items.push(NewItem {
            key: normalize::item_key(None, Some(&canonical), &title, date, &text),
            guid: None,
            content_hash: normalize::short_hash(&[&title, &summary_html, "", &url]),
            url: Some(url),
            canonical_url: Some(canonical),
            title,
            summary_html,
            content_html: String::new(),
            text,
            authors: Vec::new(),
            categories: Vec::new(),
            image_url,
            published,
            date_estimated,
            updated: None,
            signature: Vec::new(),
        });
    }
    if items.is_empty() {
        let (name, selector) = if unlinked >= untitled {
            ("link", &selectors.link)
        } else {
            ("title", &selectors.title)
        };
        return Err(ParseError::Invalid(format!(
            "the {name} selector {selector:?} finds nothing in any of the {} items the item selector matches",
            blocks.len()
        )));
    }
    let page_title = page
        .select(&TITLE)
        .next()
        .map(|t| normalize::clean_text(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty());
    let updated = items
        .iter()
        .filter(|i| !i.date_estimated)
        .map(|i| i.published)
        .max();
    Ok(ParsedFeed {
        title: page_title,
        link: ctx.base.as_ref().map(|u| u.to_string()),
        format: "html",
        ttl: None,
        updated,
        items,
        duplicates,
    })
}

static IMG: std::sync::LazyLock<Selector> =
    std::sync::LazyLock::new(|| Selector::parse("img[src]").expect("constant selector"));
static TITLE: std::sync::LazyLock<Selector> =
    std::sync::LazyLock::new(|| Selector::parse("title").expect("constant selector"));
static A_HREF: std::sync::LazyLock<Selector> =
    std::sync::LazyLock::new(|| Selector::parse("a[href]").expect("constant selector"));

impl Compiled {
    /// The item block itself when the title selector names it (`item = "a.title"`,
    /// `title = "a.title"`): `select` looks only below an element.
    fn title_is_self<'a>(&self, block: &ElementRef<'a>) -> Option<ElementRef<'a>> {
        self.title.matches(block).then_some(*block)
    }
}

/// An element's link: its `href`, else that of the first link inside it.
fn href_of(el: ElementRef<'_>) -> Option<&str> {
    el.value()
        .attr("href")
        .or_else(|| {
            el.select(&A_HREF)
                .next()
                .and_then(|a| a.value().attr("href"))
        })
        .map(str::trim)
        .filter(|h| !h.is_empty() && !h.starts_with('#') && !h.starts_with("javascript:"))
}

/// The charset an HTML page declares in a `<meta>` (`charset="…"` or `content="…; charset=…"`).
pub fn meta_charset(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let at = text.find("charset=")? + "charset=".len();
    let value: String = text[at..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests;
