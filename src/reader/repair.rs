//! Repairs applied to a decoded feed document before feed-rs sees it, each for a real-world
//! shape feed-rs would otherwise refuse or read as empty: `<rss>` with no or an odd version,
//! `<rss>` with items but no `<channel>`, a bare `<item>` fragment, and the Atom 0.3 and
//! RSS 0.90 namespaces (read as Atom 1.0 and RSS 1.0, which they became), and an email address
//! beside a multi-byte character (see `addresses`). Pure text in, text out;
//! a document that needs none of this is returned untouched.

use regex::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

const ATOM_03_NS: &str = "http://purl.org/atom/ns#";
const ATOM_10_NS: &str = "http://www.w3.org/2005/Atom";
const RSS_090_NS: &str = "http://my.netscape.com/rdf/simple/0.9/";
const RSS_10_NS: &str = "http://purl.org/rss/1.0/";

/// Applies every repair that fits the document.
pub fn repair(text: &str) -> Cow<'_, str> {
    let mut doc = Cow::Borrowed(text);
    if let Cow::Owned(spaced) = super::addresses::space_addresses(&doc) {
        doc = Cow::Owned(spaced);
    }
    if doc.contains(ATOM_03_NS) {
        doc = Cow::Owned(doc.replace(ATOM_03_NS, ATOM_10_NS));
    }
    if doc.contains(RSS_090_NS) {
        doc = Cow::Owned(doc.replace(RSS_090_NS, RSS_10_NS));
    }
    let Some(root) = root_element(&doc) else {
        return doc;
    };
    match root.name.as_str() {
        "feed" => atom_content_src(atom_base64(atom_text_types(atom_link_text(doc)))),
        "rdf:RDF" | "RDF" => rdf_item_links(rss_item_titles(doc)),
        "rss" => {
            // The titles may be put into items before the root (a commented-out example):
            // the root's offsets are read again from the text they are used on.
            let doc = rss_item_titles(doc);
            let Some(root) = root_element(&doc) else {
                return doc;
            };
            let fixed = rss_version(&doc, &root);
            match fixed {
                Some(f) => Cow::Owned(add_channel(&f).unwrap_or(f)),
                None => match add_channel(&doc) {
                    Some(f) => Cow::Owned(f),
                    None => doc,
                },
            }
        }
        "item" => Cow::Owned(format!(
            "{}<rss version=\"2.0\"><channel>{}</channel></rss>",
            &doc[..root.start],
            &doc[root.start..]
        )),
        _ => doc,
    }
}

/// feed-rs refuses a whole Atom feed when one text construct carries a MIME type instead of
/// text/html/xhtml (Atom 0.3 style, still seen). Map them to their Atom 1.0 names.
fn atom_text_types(doc: Cow<'_, str>) -> Cow<'_, str> {
    static TYPE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(<(?:title|subtitle|tagline|summary|content|rights|copyright|info)\b[^>]*\stype=)(["'])(text/plain|text/html|application/xhtml\+xml)(["'])"#)
            .expect("constant regex")
    });
    if !TYPE.is_match(&doc) {
        return doc;
    }
    let out = TYPE.replace_all(&doc, |c: &regex::Captures| {
        let short = match &c[3] {
            "text/plain" => "text",
            "text/html" => "html",
            _ => "xhtml",
        };
        format!("{}{}{short}{}", &c[1], &c[2], &c[4])
    });
    Cow::Owned(out.into_owned())
}

/// `<link rel="alternate">URL</link>` (the URL as content, not in href): move it into href.
fn atom_link_text(doc: Cow<'_, str>) -> Cow<'_, str> {
    static LINK: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"<link(\s[^>]*?)?>\s*([^<\s]+)\s*</link>"#).expect("constant regex")
    });
    if !LINK.is_match(&doc) {
        return doc;
    }
    let out = LINK.replace_all(&doc, |c: &regex::Captures| {
        let attrs = c.get(1).map_or("", |m| m.as_str());
        if attrs.contains("href=") {
            c[0].to_string()
        } else {
            format!("<link{attrs} href=\"{}\"/>", &c[2])
        }
    });
    Cow::Owned(out.into_owned())
}

/// `<content src="…"/>` (out-of-line content, RFC 4287 §4.1.3.2: the body lives at that URL)
/// makes feed-rs refuse the whole document, and then panic on the next one its parser reads.
/// The element holds no text, so it is dropped; the entry keeps its summary and links.
fn atom_content_src(doc: Cow<'_, str>) -> Cow<'_, str> {
    static CONTENT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r#"(?s)<content\b[^>]*?\ssrc\s*=\s*(?:"[^"]*"|'[^']*')[^>]*?(?:/>|>.*?</content>)"#,
        )
        .expect("constant regex")
    });
    if !doc.contains("src") || !CONTENT.is_match(&doc) {
        return doc;
    }
    Cow::Owned(CONTENT.replace_all(&doc, "").into_owned())
}

/// Stands in for a missing link so feed-rs keeps the item; `parser` reads it as "no link".
pub const NO_LINK: &str = "urn:tinbao:no-link";

/// feed-rs drops RSS 1.0 / 0.90 items that have no `<link>`. Give them a placeholder so the
/// story is kept (its identity then falls back to its text).
fn rdf_item_links(doc: Cow<'_, str>) -> Cow<'_, str> {
    static ITEM: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?s)(<item\b[^>]*>)(.*?)</item>").expect("constant regex"));
    if !ITEM.captures_iter(&doc).any(|c| !c[2].contains("<link")) {
        return doc;
    }
    let out = ITEM.replace_all(&doc, |c: &regex::Captures| {
        if c[2].contains("<link") {
            c[0].to_string()
        } else {
            format!("{}<link>{NO_LINK}</link>{}</item>", &c[1], &c[2])
        }
    });
    Cow::Owned(out.into_owned())
}

/// RSS items with no `<title>` but a `dc:title` or `media:title` (feed-rs reads neither there):
/// copy it into a `<title>`.
fn rss_item_titles(doc: Cow<'_, str>) -> Cow<'_, str> {
    static ITEM: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?s)(<item\b[^>]*>)(.*?)</item>").expect("constant regex"));
    static ALT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?s)<(?:dc|media):title\b[^>]*>(.*?)</(?:dc|media):title>")
            .expect("constant regex")
    });
    if !doc.contains(":title") {
        return doc;
    }
    let out = ITEM.replace_all(&doc, |c: &regex::Captures| match ALT.captures(&c[2]) {
        Some(alt) if !c[2].contains("<title") => {
            format!("{}<title>{}</title>{}</item>", &c[1], &alt[1], &c[2])
        }
        _ => c[0].to_string(),
    });
    Cow::Owned(out.into_owned())
}

/// Atom text constructs in base64 (Atom 0.3 `mode="base64"`, or a binary MIME type): decoded
/// to text, as feed-rs would otherwise keep the base64 or refuse the feed.
fn atom_base64(doc: Cow<'_, str>) -> Cow<'_, str> {
    use base64::Engine;
    static ELEMENT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?s)<(title|subtitle|summary|content|rights)(\s[^>]*?(?:mode=["']base64["']|type=["']application/octet-stream["'])[^>]*)>([^<]*)</(?:title|subtitle|summary|content|rights)>"#)
            .expect("constant regex")
    });
    if !ELEMENT.is_match(&doc) {
        return doc;
    }
    let out = ELEMENT.replace_all(&doc, |c: &regex::Captures| {
        let compact: String = c[3].chars().filter(|ch| !ch.is_whitespace()).collect();
        match base64::engine::general_purpose::STANDARD
            .decode(compact)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        {
            Some(text) => format!("<{} type=\"html\">{}</{}>", &c[1], escape(&text), &c[1]),
            None => c[0].to_string(),
        }
    });
    Cow::Owned(out.into_owned())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A document cut off mid-way (a truncated download, a CMS that died while writing): keep the
/// items that arrived whole. Cuts after the last complete item or entry and closes the root.
/// `None` when there is nothing whole to keep.
pub fn salvage_truncated(text: &str) -> Option<String> {
    let root = root_element(text)?;
    let (close_item, closing) = match root.name.as_str() {
        "feed" => ("</entry>", "</feed>"),
        "rss" => ("</item>", "</channel></rss>"),
        "rdf:RDF" | "RDF" => ("</item>", "</rdf:RDF>"),
        _ => return None,
    };
    let cut = text.rfind(close_item)? + close_item.len();
    Some(format!("{}{closing}", &text[..cut]))
}

struct Root {
    name: String,
    /// Byte offsets of the root start tag: `<` and just past `>`.
    start: usize,
    end: usize,
}

/// The document element's start tag, skipping the prolog (comments, PIs, doctype, whitespace).
fn root_element(text: &str) -> Option<Root> {
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->")? + 3;
        } else if rest.starts_with("<?") {
            i += rest.find("?>")? + 2;
        } else if rest.starts_with("<!") {
            i += skip_doctype(rest)?;
        } else if let Some(tag) = rest.strip_prefix('<') {
            let end = i + rest.find('>')? + 1;
            let name: String = tag
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
                .collect();
            return Some(Root {
                name,
                start: i,
                end,
            });
        } else {
            i += rest.chars().next()?.len_utf8();
        }
    }
    None
}

/// Length of a `<!DOCTYPE …>` including an internal subset in brackets.
fn skip_doctype(rest: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '>' if depth == 0 => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// feed-rs reads `<rss>` only with version 2.0, 0.91 or 0.92: give any other (or none) 2.0,
/// the dialect every later RSS 0.9x is a subset of.
fn rss_version(text: &str, root: &Root) -> Option<String> {
    let tag = &text[root.start..root.end];
    let version = attribute(tag, "version");
    if matches!(version.as_deref(), Some("2.0" | "0.91" | "0.92")) {
        return None;
    }
    let new_tag = match version {
        Some(v) => {
            tag.replacen(&format!("\"{v}\""), "\"2.0\"", 1)
                .replacen(&format!("'{v}'"), "'2.0'", 1)
        }
        None => format!("<rss version=\"2.0\"{}", &tag[4..]),
    };
    Some(format!(
        "{}{new_tag}{}",
        &text[..root.start],
        &text[root.end..]
    ))
}

/// `<rss>` holding items directly, without a `<channel>`: wrap its content in one.
fn add_channel(text: &str) -> Option<String> {
    if text.contains("<channel") {
        return None;
    }
    let root = root_element(text)?;
    let close = text.rfind("</rss")?;
    (close > root.end).then(|| {
        format!(
            "{}<channel>{}</channel>{}",
            &text[..root.end],
            &text[root.end..close],
            &text[close..]
        )
    })
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}="))?;
    let rest = &tag[at + name.len() + 2..];
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let end = rest[1..].find(quote)?;
    Some(rest[1..1 + end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_line_atom_content_is_dropped_and_inline_content_kept() {
        let doc = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><content src=\"a.pdf\" type=\"application/pdf\"/>\
                   <summary>x</summary></entry><entry><content type=\"html\">&lt;img src=\"b.jpg\"&gt;</content>\
                   <content src='c.txt'>  </content></entry></feed>";
        assert_eq!(
            repair(doc),
            "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry>\
             <summary>x</summary></entry><entry><content type=\"html\">&lt;img src=\"b.jpg\"&gt;</content>\
             </entry></feed>"
        );
    }

    /// Found by the fuzzer: a title given to an item inside a comment before the root moved the
    /// root, and the version repair sliced the text at the old offsets.
    #[test]
    fn an_item_commented_out_before_the_root_does_not_shift_it() {
        let doc = concat!(
            "<!-- ví dụ: <item><media:title>Mẫu</media:title></item> -->\n",
            r#"<rss xmlns:media="http://search.yahoo.com/mrss/"><channel>"#,
            "<item><media:title>Lũ ở Bát Xát</media:title></item></channel></rss>"
        );
        let fixed = repair(doc);
        assert!(
            fixed.contains(r#"<rss version="2.0" xmlns:media"#),
            "{fixed}"
        );
        assert!(fixed.contains("<title>Lũ ở Bát Xát</title>"), "{fixed}");
    }

    #[test]
    fn rss_without_a_version_becomes_rss_2() {
        let out = repair("<!-- c --><rss xmlns:x=\"u\"><channel></channel></rss>");
        assert_eq!(
            out,
            "<!-- c --><rss version=\"2.0\" xmlns:x=\"u\"><channel></channel></rss>"
        );
        assert_eq!(
            repair("<rss version='0.93'><channel/></rss>"),
            "<rss version='2.0'><channel/></rss>"
        );
    }

    #[test]
    fn documents_that_need_nothing_are_untouched() {
        let doc = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel></channel></rss>";
        assert!(matches!(repair(doc), Cow::Borrowed(_)));
    }

    #[test]
    fn a_bare_item_fragment_is_wrapped_in_a_feed() {
        assert_eq!(
            repair("<item><title>Tin</title></item>"),
            "<rss version=\"2.0\"><channel><item><title>Tin</title></item></channel></rss>"
        );
    }

    #[test]
    fn items_without_a_channel_get_one() {
        assert_eq!(
            repair("<rss version=\"2.0\"><item/></rss>"),
            "<rss version=\"2.0\"><channel><item/></channel></rss>"
        );
    }

    #[test]
    fn old_namespaces_are_read_as_their_successors() {
        assert!(
            repair("<feed version=\"0.3\" xmlns=\"http://purl.org/atom/ns#\"/>")
                .contains(ATOM_10_NS)
        );
        assert!(
            repair("<rdf:RDF xmlns=\"http://my.netscape.com/rdf/simple/0.9/\"/>")
                .contains(RSS_10_NS)
        );
    }

    #[test]
    fn mime_style_atom_text_types_are_mapped() {
        let out = repair(
            "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title type=\"text/plain\">a</title><summary type='application/xhtml+xml'>b</summary></feed>",
        );
        assert!(
            out.contains("type=\"text\"") && out.contains("type='xhtml'"),
            "{out}"
        );
    }

    #[test]
    fn rdf_items_without_a_link_are_kept_with_a_placeholder() {
        let doc = "<rdf:RDF><item rdf:about=\"http://x/1\"><title>t</title></item><item><link>http://x/2b</link></item></rdf:RDF>";
        let out = repair(doc);
        assert!(
            out.contains(&format!("<link>{NO_LINK}</link><title>"))
                && out.contains("<item><link>http://x/2b</link>"),
            "{out}"
        );
    }

    #[test]
    fn items_without_a_title_take_dc_or_media_title() {
        let out = repair(
            "<rss version=\"2.0\"><channel><item><dc:title>Tin A</dc:title></item><item><title>B</title><media:title>x</media:title></item></channel></rss>",
        );
        assert!(
            out.contains("<item><title>Tin A</title>") && !out.contains("<title>x</title>"),
            "{out}"
        );
    }

    #[test]
    fn base64_text_constructs_are_decoded() {
        let out = repair(
            "<feed><entry><title mode=\"base64\">\n VGluIDxiPm3hu5tpPC9iPg==\n</title></entry></feed>",
        );
        assert!(
            out.contains("<title type=\"html\">Tin &lt;b&gt;mới&lt;/b&gt;</title>"),
            "{out}"
        );
    }

    #[test]
    fn a_truncated_document_keeps_its_whole_items() {
        let cut = "<rss version=\"2.0\"><channel><item><title>A</title></item><item><title><![CD";
        assert_eq!(
            salvage_truncated(cut).unwrap(),
            "<rss version=\"2.0\"><channel><item><title>A</title></item></channel></rss>"
        );
        assert!(salvage_truncated("<rss><channel><item><title>x").is_none());
    }

    #[test]
    fn atom_links_written_as_content_move_into_href() {
        let out = repair("<feed><entry><link rel=\"alternate\">http://x/</link></entry></feed>");
        assert!(
            out.contains("<link rel=\"alternate\" href=\"http://x/\"/>"),
            "{out}"
        );
    }

    #[test]
    fn a_doctype_with_an_internal_subset_is_skipped() {
        let out = repair("<!DOCTYPE rss [<!ENTITY a \"b\">]><rss><channel/></rss>");
        assert!(out.contains("<rss version=\"2.0\">"), "{out}");
    }
}
