//! Plain text out of what feeds send: NFC everywhere, whitespace collapsed, characters XML 1.0
//! forbids dropped, HTML turned into text with block boundaries kept as spaces (so words of
//! separate paragraphs never fuse into one syllable). Used by the reader (titles, the text topics
//! match), by merged feeds (JSON Feed's plain summary) and by digests.

use regex::Regex;
use std::sync::LazyLock;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// NFC-normalises, skipping the allocation when the text is already NFC (the common case).
pub fn nfc(text: &str) -> String {
    match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => text.to_string(),
        _ => text.nfc().collect(),
    }
}

/// Collapses runs of whitespace to one space, trims, drops characters XML 1.0 forbids (control
/// characters other than tab/newline) and NFC-normalises.
pub fn clean_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() || c == '\u{a0}' {
            pending_space = !out.is_empty();
        } else if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' {
            continue;
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    nfc(&out)
}

/// Tags after which text belongs to a new block: a space is inserted so that words in separate
/// paragraphs or list items never fuse into one syllable.
static BLOCK_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)<(/?)(p|br|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote|section|article|figure|figcaption|hr|dd|dt|header|footer)\b")
        .expect("constant regex")
});

static TEXT_ONLY: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::empty();
    b.clean_content_tags(
        ["script", "style", "template", "noscript"]
            .into_iter()
            .collect(),
    );
    b
});

/// Deepest nesting of markup handed to an HTML parser. html5ever's tree builder checks the
/// stack of open elements for each tag, so its time grows with the square of the nesting depth
/// (50,000 nested `<div>`s in one feed item took 9 s to sanitise); real pages nest a few dozen
/// deep.
pub const MAX_MARKUP_DEPTH: usize = 1000;

/// Elements that never nest: void elements, and those a parser closes at the next sibling.
const NOT_NESTING: [&str; 30] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "rb", "rt",
    "rp", "tbody", "thead", "tfoot", "colgroup",
];

/// How deep `html`'s elements nest, counted from its tags in one pass without parsing: each
/// opening tag of an element that nests goes one deeper, each closing tag one back.
pub fn markup_depth(html: &str) -> usize {
    let b = html.as_bytes();
    let (mut i, mut depth, mut deepest) = (0usize, 0usize, 0usize);
    while let Some(at) = b[i..].iter().position(|&c| c == b'<') {
        i += at + 1;
        let Some(&first) = b.get(i) else { break };
        let closing = first == b'/';
        let start = i + usize::from(closing);
        if !b.get(start).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let name_end = b[start..]
            .iter()
            .position(|c| !c.is_ascii_alphanumeric())
            .map_or(b.len(), |n| start + n);
        let name = &html[start..name_end];
        let nests = !NOT_NESTING.iter().any(|t| t.eq_ignore_ascii_case(name));
        if closing {
            if nests {
                depth = depth.saturating_sub(1);
            }
            continue;
        }
        let Some(close) = b[name_end..].iter().position(|&c| c == b'>') else {
            break;
        };
        let end = name_end + close;
        i = end;
        let self_closing = end > 0 && b[end - 1] == b'/';
        if self_closing || !nests {
            continue;
        }
        depth += 1;
        deepest = deepest.max(depth);
    }
    deepest
}

/// `Ok` when a page's markup is shallow enough to parse, else why not (the page's error).
pub fn parseable(html: &str) -> Result<(), String> {
    match markup_depth(html) {
        deep if deep > MAX_MARKUP_DEPTH => Err(format!(
            "the page nests its elements {deep} deep (more than {MAX_MARKUP_DEPTH}): not read"
        )),
        _ => Ok(()),
    }
}

/// The text of markup too deep to parse (see `MAX_MARKUP_DEPTH`): tags dropped in one linear
/// pass, the rest kept as it is (entities still encoded).
pub fn strip_tags(html: &str) -> String {
    static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<[^>]*>").expect("constant regex"));
    TAG.replace_all(html, " ").into_owned()
}

/// Turns an HTML fragment into plain text: entities decoded, tags and scripts removed, block
/// boundaries kept as spaces, whitespace collapsed, NFC.
pub fn html_to_text(html: &str) -> String {
    if !html.contains(['<', '&']) {
        return clean_text(html);
    }
    if markup_depth(html) > MAX_MARKUP_DEPTH {
        return clean_text(&unescape_serialized(&strip_tags(html)));
    }
    let spaced = BLOCK_TAG.replace_all(html, " <$1$2");
    let stripped = TEXT_ONLY.clean(&spaced).to_string();
    clean_text(&unescape_serialized(&stripped))
}

/// Reverses the few escapes html5ever's serialiser writes in text nodes.
fn unescape_serialized(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// A title as plain text. Titles are nominally plain, but feeds often put HTML or double-encoded
/// entities in them; only text that looks like markup goes through the HTML path, so a literal
/// "a < b" in a plain title survives.
pub fn title_text(raw: &str) -> String {
    static MARKUP: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"<[A-Za-z/!]|&(#[0-9]+|#x[0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]{1,31});")
            .expect("constant regex")
    });
    if MARKUP.is_match(raw) {
        html_to_text(raw)
    } else {
        clean_text(raw)
    }
}

/// Plain text of HTML that came out of `Sanitizer::clean`. That output is well-formed and uses
/// a closed set of escapes (&amp; &lt; &gt; &quot; &nbsp;), so a simple scan is exact here and
/// saves parsing the HTML a second time. Block boundaries become spaces.
pub fn text_of_sanitized(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let tag = &rest[lt..];
        let end = tag_end(tag);
        if BLOCK_TAG.is_match(&tag[..end]) {
            out.push(' ');
        }
        rest = &tag[end..];
    }
    out.push_str(rest);
    clean_text(&unescape_serialized(&out))
}

/// Length of the tag at the start of `tag` (which starts with '<'), quotes respected.
fn tag_end(tag: &str) -> usize {
    let mut quote = None;
    for (i, c) in tag.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return i + 1,
            _ => {}
        }
    }
    tag.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfd_vietnamese_becomes_nfc() {
        let nfd: String = "Lào Cai".nfd().collect();
        assert_ne!(nfd, "Lào Cai");
        assert_eq!(clean_text(&nfd), "Lào Cai");
    }

    #[test]
    fn html_text_keeps_block_boundaries_between_words() {
        assert_eq!(html_to_text("<p>Lào</p><p>Cai</p>"), "Lào Cai");
        assert_eq!(html_to_text("Bát<br/>Xát"), "Bát Xát");
        assert_eq!(html_to_text("H<b>à</b> Nội"), "Hà Nội");
    }

    #[test]
    fn html_text_decodes_entities_and_drops_scripts() {
        assert_eq!(
            html_to_text("Tom &amp; Jerry &lt;3 &#272;&#7843;ng"),
            "Tom & Jerry <3 Đảng"
        );
        assert_eq!(
            html_to_text("a<script>alert(1)</script>b<style>p{}</style>"),
            "ab"
        );
    }

    #[test]
    fn plain_titles_keep_literal_angle_brackets() {
        assert_eq!(
            title_text("  Giá  vàng   < 80 triệu "),
            "Giá vàng < 80 triệu"
        );
        assert_eq!(title_text("Giá vàng &amp;amp; USD"), "Giá vàng &amp; USD");
        assert_eq!(title_text("<b>Tin</b> nóng"), "Tin nóng");
    }

    #[test]
    fn control_characters_are_dropped_and_emoji_survive() {
        assert_eq!(clean_text("Tin\u{0}\u{7} mới 🎉"), "Tin mới 🎉");
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;

    #[test]
    fn nesting_is_counted_from_tags_without_parsing() {
        assert_eq!(markup_depth("<p>a<p>b<br>c<img src=x/>"), 0);
        assert_eq!(markup_depth("<div><p>a</p><div><p>b</p></div></div>"), 2);
        assert_eq!(markup_depth("<div><span>a</span><b>b</b></div>"), 2);
        assert_eq!(
            markup_depth("<div><div><div>x</div></div></div><div>y</div>"),
            3
        );
        assert_eq!(markup_depth("a < b <3 and 2<3"), 0);
        let deep = "<div>".repeat(5000) + "x";
        assert_eq!(markup_depth(&deep), 5000);
        let text = html_to_text(&(deep + "</div> Lũ quét &amp; sạt lở"));
        assert_eq!(text, "x Lũ quét & sạt lở");
    }
}
