//! JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/). Other sources of a story go in a
//! `_tinbao` extension object (the spec's convention for extensions) and in the HTML body.
//! Control characters are dropped here too, so every format carries the same text.

use super::{Entry, FeedMeta, Format, body_with_sources, xml_safe};
use serde_json::{Value, json};

pub fn render(meta: &FeedMeta, entries: &[Entry]) -> String {
    let items: Vec<Value> = entries.iter().map(item).collect();
    let mut doc = json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": meta.title,
        "description": meta.description,
        "home_page_url": meta.base_url,
        "feed_url": meta.url(Format::Json),
        "language": meta.language,
        "items": items,
    });
    if let (Some(hub), Some(map)) = (&meta.hub, doc.as_object_mut()) {
        map.insert("hubs".into(), json!([{ "type": "WebSub", "url": hub }]));
    }
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_string());
    out.push('\n');
    out
}

fn item(e: &Entry) -> Value {
    let mut item = json!({
        "id": e.guid,
        "title": xml_safe(&e.title),
        "content_html": xml_safe(&body_with_sources(e)),
        "date_published": e.published.to_rfc3339(),
        "date_modified": e.updated.max(e.published).to_rfc3339(),
        "tags": [e.category.name],
        "_tinbao": {
            "category": e.category.slug,
            "source": { "title": e.source.title, "feed_url": e.source.feed_url, "home_page_url": e.source.site_url },
            "also": e.also.iter().map(|s| json!({ "title": s.title, "url": s.link })).collect::<Vec<_>>(),
        },
    });
    let authors: Vec<Value> = if e.authors.is_empty() {
        vec![json!({ "name": e.source.title })]
    } else {
        e.authors.iter().map(|a| json!({ "name": a })).collect()
    };
    item["authors"] = Value::from(authors);
    if let Some(link) = &e.link {
        item["url"] = Value::from(link.clone());
    }
    if !e.summary_html.is_empty() {
        item["summary"] = Value::from(crate::text::text_of_sanitized(&e.summary_html));
    }
    if let Some(image) = &e.image {
        item["image"] = Value::from(image.clone());
    }
    item
}
