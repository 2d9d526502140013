//! Atom 1.0 (RFC 4287), written directly: the format is small and exact escaping is all it needs.

use super::{Entry, FeedMeta, Format, body_with_sources, escape, feed_updated, image_type};
use std::fmt::Write;

pub fn render(meta: &FeedMeta, entries: &[Entry]) -> String {
    let mut out = String::with_capacity(2048 + entries.len() * 1500);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{lang}\">\n\
         <id>{id}</id>\n<title>{title}</title>\n<subtitle>{subtitle}</subtitle>\n<updated>{updated}</updated>\n\
         <link rel=\"self\" type=\"application/atom+xml\" href=\"{self_url}\"/>\n<link rel=\"alternate\" type=\"text/html\" href=\"{home}\"/>\n\
         <generator version=\"{version}\">tinbao</generator>\n",
        lang = escape(&meta.language),
        id = escape(&meta.url(Format::Atom)),
        title = escape(&meta.title),
        subtitle = escape(&meta.description),
        updated = feed_updated(entries).to_rfc3339(),
        self_url = escape(&meta.url(Format::Atom)),
        home = escape(&meta.base_url),
        version = env!("CARGO_PKG_VERSION"),
    );
    if let Some(hub) = &meta.hub {
        let _ = writeln!(out, "<link rel=\"hub\" href=\"{}\"/>", escape(hub));
    }
    for e in entries {
        entry(&mut out, e);
    }
    out.push_str("</feed>\n");
    out
}

fn entry(out: &mut String, e: &Entry) {
    let _ = write!(
        out,
        "<entry>\n<id>{id}</id>\n<title type=\"text\">{title}</title>\n<published>{published}</published>\n<updated>{updated}</updated>\n",
        id = escape(&e.guid),
        title = escape(&e.title),
        published = e.published.to_rfc3339(),
        updated = e.updated.max(e.published).to_rfc3339(),
    );
    if let Some(link) = &e.link {
        let _ = writeln!(
            out,
            "<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
            escape(link)
        );
    }
    if let Some(image) = &e.image {
        let _ = writeln!(
            out,
            "<link rel=\"enclosure\" type=\"{}\" href=\"{}\"/>",
            image_type(image),
            escape(image)
        );
    }
    // An entry must have an author if the feed has none (RFC 4287 §4.1.1): the outlet stands in.
    if e.authors.is_empty() {
        let _ = writeln!(
            out,
            "<author><name>{}</name></author>",
            escape(&e.source.title)
        );
    }
    for a in &e.authors {
        let _ = writeln!(out, "<author><name>{}</name></author>", escape(a));
    }
    let _ = writeln!(
        out,
        "<category term=\"{}\" label=\"{}\"/>",
        escape(&e.category.slug),
        escape(&e.category.name)
    );
    if !e.summary_html.is_empty() {
        let _ = writeln!(
            out,
            "<summary type=\"html\">{}</summary>",
            escape(&e.summary_html)
        );
    }
    let _ = writeln!(
        out,
        "<content type=\"html\">{}</content>",
        escape(&body_with_sources(e))
    );
    let _ = write!(
        out,
        "<source>\n<id>{id}</id>\n<title>{title}</title>\n",
        id = escape(&e.source.feed_url),
        title = escape(&e.source.title)
    );
    if let Some(updated) = e.source.updated {
        let _ = writeln!(out, "<updated>{}</updated>", updated.to_rfc3339());
    }
    if let Some(site) = &e.source.site_url {
        let _ = writeln!(out, "<link rel=\"alternate\" href=\"{}\"/>", escape(site));
    }
    let _ = writeln!(
        out,
        "<link rel=\"self\" href=\"{}\"/>\n</source>",
        escape(&e.source.feed_url)
    );
    out.push_str("</entry>\n");
}
