//! Feed discovery on a web page: the feeds a site advertises (`<link rel="alternate">` of an
//! RSS, Atom or JSON Feed type), the links that look like feeds or like an RSS index page
//! (`/rss`, `…/rss.html`, `.rss`, `.xml`, a link text naming RSS), and, when the page names
//! none, the paths sites commonly use. Pure: page text in, candidate addresses out, best first
//! and without repeats; checking each by fetching it is the caller's.

use scraper::{Html, Selector};
use std::collections::HashSet;
use std::sync::LazyLock;
use url::Url;

/// Most candidates taken from one page: a section page can link hundreds of "RSS" items.
pub const MAX_CANDIDATES: usize = 60;

/// Where a candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// `<link rel="alternate" type="application/rss+xml" …>`.
    Advertised,
    /// An `<a href>` that looks like a feed or an RSS index page.
    Linked,
    /// A common path tried because the page names no feed.
    Guessed,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Advertised => "advertised",
            Source::Linked => "linked",
            Source::Guessed => "guessed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub url: Url,
    pub source: Source,
    /// The title the page gives it, if any.
    pub title: Option<String>,
}

const FEED_TYPES: [&str; 5] = [
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/rdf+xml",
];

/// Paths tried on the page's site when it names no feed.
const COMMON_PATHS: [&str; 7] = [
    "/rss",
    "/rss.html",
    "/feed",
    "/rss.xml",
    "/feed.xml",
    "/atom.xml",
    "/index.rss",
];

static LINKS: LazyLock<Selector> =
    LazyLock::new(|| Selector::parse("link[href]").expect("static selector"));
static ANCHORS: LazyLock<Selector> =
    LazyLock::new(|| Selector::parse("a[href]").expect("static selector"));

/// The candidate feeds of the page `text` (fetched from `base`), at most `MAX_CANDIDATES`.
pub fn candidates(text: &str, base: &Url) -> Vec<Candidate> {
    let page = Html::parse_document(text);
    let mut seen = HashSet::from([base.clone()]);
    let mut out = Vec::new();
    let mut push = |out: &mut Vec<Candidate>, href: &str, source, title: Option<String>| {
        let Some(url) = base
            .join(href.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        else {
            return;
        };
        let mut url = url;
        url.set_fragment(None);
        if out.len() < MAX_CANDIDATES && seen.insert(url.clone()) {
            out.push(Candidate { url, source, title });
        }
    };
    for link in page.select(&LINKS) {
        let el = link.value();
        let rel = el.attr("rel").unwrap_or("").to_ascii_lowercase();
        let kind = el.attr("type").unwrap_or("").trim().to_ascii_lowercase();
        if rel.split_whitespace().any(|r| r == "alternate") && FEED_TYPES.contains(&kind.as_str()) {
            let title = el
                .attr("title")
                .map(crate::text::clean_text)
                .filter(|t| !t.is_empty());
            push(
                &mut out,
                el.attr("href").unwrap_or(""),
                Source::Advertised,
                title,
            );
        }
    }
    // Same-site links first: a paper's RSS page lists its own sections.
    let mut linked: Vec<(bool, String, Option<String>)> = Vec::new();
    for a in page.select(&ANCHORS) {
        let href = a.value().attr("href").unwrap_or("");
        let words = crate::text::clean_text(&a.text().collect::<String>());
        if !looks_like_feed(href, &words) {
            continue;
        }
        let same = base
            .join(href.trim())
            .ok()
            .is_some_and(|u| same_site(&u, base));
        linked.push((
            !same,
            href.to_string(),
            (!words.is_empty()).then_some(words),
        ));
    }
    linked.sort_by_key(|(other, ..)| *other);
    for (_, href, title) in linked {
        push(&mut out, &href, Source::Linked, title);
    }
    if out.is_empty() {
        for path in COMMON_PATHS {
            push(&mut out, path, Source::Guessed, None);
        }
    }
    out
}

/// Whether a link looks like a feed or a page listing feeds.
fn looks_like_feed(href: &str, words: &str) -> bool {
    let h = href.trim().to_ascii_lowercase();
    if h.starts_with("javascript:") || h.starts_with("mailto:") || h.starts_with('#') {
        return false;
    }
    let path = h.split(['?', '#']).next().unwrap_or("");
    path.ends_with(".rss")
        || path.ends_with(".xml")
        || path.ends_with(".atom")
        || path.ends_with("/rss")
        || path.ends_with("/rss/")
        || path.ends_with("/feed")
        || path.ends_with("/feed/")
        || path.contains("/rss.")
        || path.contains("/rss/")
        || words
            .to_ascii_lowercase()
            .split_whitespace()
            .any(|w| w == "rss")
}

/// The same host, or one a subdomain of the other (`www.`).
fn same_site(a: &Url, b: &Url) -> bool {
    let (Some(x), Some(y)) = (a.host_str(), b.host_str()) else {
        return false;
    };
    let strip = |h: &str| h.strip_prefix("www.").unwrap_or(h).to_ascii_lowercase();
    strip(x) == strip(y)
}

/// A category guessed from a feed's title: the part after its last separator ("Báo Lào Cai -
/// Thời sự" → "Thời sự"), else the whole title, with its slug ("thoi-su").
pub fn category_guess(title: &str) -> (String, String) {
    let mut part = title;
    for sep in [" - ", " – ", " — ", " | ", ": "] {
        if let Some((_, tail)) = part.rsplit_once(sep)
            && !tail.trim().is_empty()
        {
            part = tail;
        }
    }
    (crate::config::edit::slug(part), part.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://baolaocai.vn/thoi-su/").unwrap()
    }

    #[test]
    fn advertised_feeds_come_first_then_links_that_look_like_feeds() {
        let page = r#"<html><head>
            <link rel="alternate" type="application/rss+xml" title="Báo Lào Cai - Thời sự" href="/rss/thoi-su.rss">
            <link rel="alternate" type="application/atom+xml" href="https://baolaocai.vn/atom.xml">
            <link rel="stylesheet" href="/s.css"><link rel="alternate" hreflang="en" href="/en/">
            </head><body>
            <a href="https://feedburner.example/bao">RSS</a>
            <a href="/rss.html">Kênh RSS</a><a href="/rss/thoi-su.rss">Thời sự</a>
            <a href="/tin/1.html">Tin 1</a><a href="javascript:void(0)">RSS</a>
            </body></html>"#;
        let got = candidates(page, &base());
        let urls: Vec<&str> = got.iter().map(|c| c.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://baolaocai.vn/rss/thoi-su.rss",
                "https://baolaocai.vn/atom.xml",
                "https://baolaocai.vn/rss.html",
                "https://feedburner.example/bao"
            ]
        );
        assert_eq!(got[0].source, Source::Advertised);
        assert_eq!(got[0].title.as_deref(), Some("Báo Lào Cai - Thời sự"));
        assert_eq!(got[2].source, Source::Linked);
    }

    #[test]
    fn a_page_naming_no_feed_gets_the_common_paths_and_hundreds_of_links_are_capped() {
        let got = candidates("<html><body><a href='/a.html'>A</a></body></html>", &base());
        assert_eq!(got.len(), COMMON_PATHS.len());
        assert!(got.iter().all(|c| c.source == Source::Guessed));
        assert_eq!(got[0].url.as_str(), "https://baolaocai.vn/rss");
        let many: String = (0..500)
            .map(|i| format!("<a href='/rss/{i}.rss'>RSS {i}</a>"))
            .collect();
        assert_eq!(candidates(&many, &base()).len(), MAX_CANDIDATES);
    }

    #[test]
    fn categories_are_guessed_from_the_titles_last_part() {
        let slug = |t| category_guess(t).0;
        assert_eq!(
            category_guess("Báo Lào Cai - Thời sự"),
            ("thoi-su".into(), "Thời sự".into())
        );
        assert_eq!(slug("VnExpress | Kinh doanh"), "kinh-doanh");
        assert_eq!(slug("Đời sống"), "doi-song");
    }
}
