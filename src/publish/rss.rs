//! RSS 2.0 (https://www.rssboard.org/rss-specification) via the `rss` crate.

use super::{Entry, FeedMeta, Format, body_with_sources, feed_updated, image_type, xml_safe};
use ::rss::{
    CategoryBuilder, ChannelBuilder, EnclosureBuilder, GuidBuilder, ItemBuilder, SourceBuilder,
};

pub fn render(meta: &FeedMeta, entries: &[Entry]) -> String {
    let items: Vec<::rss::Item> = entries.iter().map(item).collect();
    let channel = ChannelBuilder::default()
        .title(xml_safe(&meta.title))
        .link(meta.base_url.clone())
        .description(xml_safe(&meta.description))
        .language(Some(meta.language.clone()))
        .generator(Some(format!("tinbao {}", env!("CARGO_PKG_VERSION"))))
        .last_build_date(Some(feed_updated(entries).to_rfc2822()))
        .ttl(Some("15".to_string()))
        .atom_ext(Some(self_link(meta)))
        .items(items)
        .build();
    let mut out = channel.to_string();
    if !out.starts_with("<?xml") {
        out.insert_str(0, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    }
    out
}

/// `<atom:link rel="self">`: where the document lives, so a reader can tell a copy from the
/// original (RSS Best Practices Profile); and `rel="hub"`, the WebSub hub, when there is one.
fn self_link(meta: &FeedMeta) -> ::rss::extension::atom::AtomExtension {
    let mut link = ::rss::extension::atom::Link::default();
    link.set_rel("self");
    link.set_href(xml_safe(&meta.url(Format::Rss)));
    link.set_mime_type(Some("application/rss+xml".to_string()));
    let mut links = vec![link];
    if let Some(hub) = &meta.hub {
        let mut link = ::rss::extension::atom::Link::default();
        link.set_rel("hub");
        link.set_href(xml_safe(hub));
        links.push(link);
    }
    ::rss::extension::atom::AtomExtension { links }
}

fn item(e: &Entry) -> ::rss::Item {
    ItemBuilder::default()
        .title(Some(xml_safe(&e.title)))
        .link(e.link.as_deref().map(xml_safe))
        .description(Some(xml_safe(&body_with_sources(e))))
        .guid(Some(
            GuidBuilder::default()
                .value(xml_safe(&e.guid))
                .permalink(false)
                .build(),
        ))
        .pub_date(Some(e.published.to_rfc2822()))
        .author(None)
        .categories(vec![
            CategoryBuilder::default()
                .name(xml_safe(&e.category.name))
                .build(),
        ])
        .source(Some(
            SourceBuilder::default()
                .url(xml_safe(&e.source.feed_url))
                .title(Some(xml_safe(&e.source.title)))
                .build(),
        ))
        .enclosure(e.image.as_ref().map(|url| {
            EnclosureBuilder::default()
                .url(xml_safe(url))
                .mime_type(image_type(url).to_string())
                .length("0".to_string())
                .build()
        }))
        .dublin_core_ext(if e.authors.is_empty() {
            None
        } else {
            Some(::rss::extension::dublincore::DublinCoreExtension {
                creators: e.authors.iter().map(|a| xml_safe(a)).collect(),
                ..Default::default()
            })
        })
        .build()
}
