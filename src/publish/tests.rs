use super::*;
use chrono::TimeZone;

fn meta() -> FeedMeta {
    FeedMeta {
        path: "thoi-su".into(),
        title: "Thời sự – tinbao".into(),
        description: "Tin Thời sự từ các báo tỉnh".into(),
        base_url: "http://127.0.0.1:8080/".into(),
        language: "vi".into(),
        query: None,
        hub: None,
    }
}

fn entry(n: i64) -> Entry {
    Entry {
        guid: format!("tag:tinbao,2026:story/{n}"),
        title: format!("Lũ quét ở Bát Xát & Sa Pa <{n}> 🌧\u{7}"),
        link: Some(format!("https://baolaocai.vn/tin/{n}.html?a=1&b=2")),
        summary_html: "<p>Mưa lớn &amp; sạt lở</p>".into(),
        content_html: String::new(),
        published: Utc.with_ymd_and_hms(2026, 11, 27, 1, n as u32, 0).unwrap(),
        updated: Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).unwrap(),
        authors: vec!["Nguyễn Văn Đức".into()],
        category: Label {
            slug: "thoi-su".into(),
            name: "Thời sự".into(),
        },
        source: Source {
            title: "Báo Lào Cai".into(),
            feed_url: "https://baolaocai.vn/rss/thoi-su.rss".into(),
            site_url: Some("https://baolaocai.vn/".into()),
            link: None,
            updated: Some(Utc.with_ymd_and_hms(2026, 11, 27, 3, 0, 0).unwrap()),
        },
        also: vec![Source {
            title: "VnExpress".into(),
            feed_url: "https://vnexpress.net/rss/thoi-su.rss".into(),
            site_url: None,
            link: Some("https://vnexpress.net/lu-quet.html".into()),
            updated: None,
        }],
        image: Some("https://baolaocai.vn/anh/1.png".into()),
    }
}

fn parse_back(doc: &str) -> feed_rs::model::Feed {
    feed_rs::parser::parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

#[test]
fn every_format_parses_back_with_text_intact() {
    let entries = vec![entry(2), entry(1)];
    for format in Format::ALL {
        let doc = render(&meta(), &entries, format);
        let feed = parse_back(&doc);
        assert_eq!(feed.entries.len(), 2, "{format:?}");
        let e = &feed.entries[0];
        assert_eq!(e.id, "tag:tinbao,2026:story/2", "{format:?}");
        assert_eq!(
            e.title.as_ref().unwrap().content,
            "Lũ quét ở Bát Xát & Sa Pa <2> 🌧",
            "{format:?}"
        );
        assert_eq!(
            e.links[0].href, "https://baolaocai.vn/tin/2.html?a=1&b=2",
            "{format:?}"
        );
        assert!(
            !doc.contains('\u{7}'),
            "control characters never reach the document ({format:?})"
        );
    }
}

#[test]
fn rss_names_the_source_and_enclosure() {
    let doc = render(&meta(), &[entry(1)], Format::Rss);
    let channel = ::rss::Channel::read_from(doc.as_bytes()).expect("valid RSS");
    let item = &channel.items()[0];
    assert_eq!(item.source().unwrap().title(), Some("Báo Lào Cai"));
    assert_eq!(item.enclosure().unwrap().mime_type(), "image/png");
    assert!(
        item.description()
            .unwrap()
            .contains("Cùng đưa tin: <a href=\"https://vnexpress.net/lu-quet.html\">VnExpress</a>")
    );
    assert!(!item.guid().unwrap().is_permalink());
    let links = &channel.atom_ext().expect("atom:link").links;
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].rel(), links[0].href(), links[0].mime_type()),
        (
            "self",
            "http://127.0.0.1:8080/feeds/thoi-su.xml",
            Some("application/rss+xml")
        )
    );
}

#[test]
fn atom_sources_carry_the_source_feeds_id_title_and_updated() {
    let doc = render(&meta(), &[entry(1)], Format::Atom);
    let source = &doc[doc.find("<source>").unwrap()..doc.find("</source>").unwrap()];
    for part in [
        "<id>https://baolaocai.vn/rss/thoi-su.rss</id>",
        "<title>Báo Lào Cai</title>",
        "<updated>2026-11-27T03:00:00+00:00</updated>",
    ] {
        assert!(source.contains(part), "{part} in {source}");
    }
}

#[test]
fn rendering_is_deterministic_and_dated_by_content() {
    for format in Format::ALL {
        let a = render(&meta(), &[entry(1)], format);
        let b = render(&meta(), &[entry(1)], format);
        assert_eq!(a, b, "{format:?}");
    }
    let atom = render(&meta(), &[entry(1)], Format::Atom);
    assert!(
        atom.contains("<updated>2026-11-27T02:00:00+00:00</updated>"),
        "{atom}"
    );
    let empty = render(&meta(), &[], Format::Atom);
    assert!(empty.contains("<updated>1970-01-01T00:00:00+00:00</updated>"));
}

#[test]
fn json_feed_carries_the_other_sources() {
    let doc: serde_json::Value =
        serde_json::from_str(&render(&meta(), &[entry(1)], Format::Json)).unwrap();
    assert_eq!(doc["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(doc["feed_url"], "http://127.0.0.1:8080/feeds/thoi-su.json");
    assert_eq!(doc["items"][0]["_tinbao"]["also"][0]["title"], "VnExpress");
    assert_eq!(doc["items"][0]["summary"], "Mưa lớn & sạt lở");
}
