use super::*;
use chrono::TimeZone;

fn ctx() -> ParseContext {
    ParseContext {
        base: Url::parse("https://baolaocai.vn/rss/thoi-su.rss").ok(),
        http_charset: None,
        timezone: chrono_tz::Asia::Ho_Chi_Minh,
        now: Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap(),
    }
}

fn rss(items: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Báo Lào Cai</title><link>https://baolaocai.vn/</link><ttl>30</ttl>{items}</channel></rss>"#
    )
}

#[test]
fn rss_items_are_normalised() {
    let doc = rss(
        r#"<item><title>Xây dựng &lt;b&gt;Đảng&lt;/b&gt;</title><link>/tin/1.html?utm_source=rss</link>
        <guid isPermaLink="false">abc-1</guid><description><![CDATA[<p>Bảo <b>Thắng</b></p><img src="/a.jpg">]]></description>
        <pubDate>Sat, 28 Nov 2026 07:30:00 +0700</pubDate><category>Thời sự</category></item>"#,
    );
    let feed = parse(doc.as_bytes(), &ctx()).expect("parses");
    assert_eq!(feed.format, "rss2.0");
    assert_eq!(feed.ttl, Some(30));
    assert_eq!(feed.title.as_deref(), Some("Báo Lào Cai"));
    let item = &feed.items[0];
    assert_eq!(item.key, "g:abc-1");
    assert_eq!(item.title, "Xây dựng Đảng");
    assert_eq!(
        item.url.as_deref(),
        Some("https://baolaocai.vn/tin/1.html?utm_source=rss")
    );
    assert_eq!(
        item.canonical_url.as_deref(),
        Some("https://baolaocai.vn/tin/1.html")
    );
    assert_eq!(item.text, "Bảo Thắng");
    assert_eq!(
        item.image_url.as_deref(),
        Some("https://baolaocai.vn/a.jpg")
    );
    assert_eq!(item.published.to_rfc3339(), "2026-11-28T00:30:00+00:00");
    assert_eq!(item.categories, vec!["Thời sự"]);
}

#[test]
fn missing_guids_fall_back_to_link_then_hash() {
    let doc = rss(
        "<item><title>A</title><link>https://x.vn/a#frag</link></item><item><title>B</title><description>b</description></item>",
    );
    let feed = parse(doc.as_bytes(), &ctx()).unwrap();
    assert_eq!(feed.items[0].key, "l:https://x.vn/a");
    assert!(feed.items[1].key.starts_with("h:"));
    assert!(feed.items[1].date_estimated);
    // Same document again: same keys (no random ids).
    let again = parse(doc.as_bytes(), &ctx()).unwrap();
    assert_eq!(feed.items[1].key, again.items[1].key);
}

#[test]
fn duplicate_guids_keep_distinct_stories_and_drop_true_repeats() {
    let doc = rss(
        r#"<item><guid>1</guid><title>A</title><link>https://x.vn/a</link></item>
        <item><guid>1</guid><title>B</title><link>https://x.vn/b</link></item>
        <item><guid>1</guid><title>A</title><link>https://x.vn/a</link></item>"#,
    );
    let feed = parse(doc.as_bytes(), &ctx()).unwrap();
    assert_eq!(feed.items.len(), 2);
    assert_eq!(feed.duplicates, 1);
}

#[test]
fn a_lying_prolog_over_utf8_text_is_read_as_utf8() {
    let doc = rss("<item><title>Lào Cai</title></item>").replace("utf-8", "iso-8859-1");
    let feed = parse(doc.as_bytes(), &ctx()).unwrap();
    assert_eq!(feed.items[0].title, "Lào Cai");
}

#[test]
fn declared_legacy_charsets_are_decoded() {
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode("<?xml version=\"1.0\" encoding=\"windows-1252\"?><rss version=\"2.0\"><channel><title>Café</title></channel></rss>");
    let feed = parse(&bytes, &ctx()).unwrap();
    assert_eq!(feed.title.as_deref(), Some("Café"));
    // No declaration, HTTP says the charset.
    let (bytes, _, _) = encoding_rs::WINDOWS_1252
        .encode("<rss version=\"2.0\"><channel><title>Crème</title></channel></rss>");
    let c = ParseContext {
        http_charset: Some("iso-8859-1".into()),
        ..ctx()
    };
    assert_eq!(parse(&bytes, &c).unwrap().title.as_deref(), Some("Crème"));
}

#[test]
fn atom_and_json_feeds_parse() {
    let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://baoyenbai.com.vn/"><title>Yên Bái</title>
        <entry><id>tag:yb,1</id><title type="html">Tin &amp;lt;1&amp;gt;</title><link href="tin/1"/><updated>2026-11-27T10:00:00Z</updated></entry></feed>"#;
    let feed = parse(atom.as_bytes(), &ctx()).unwrap();
    assert_eq!(feed.format, "atom");
    assert_eq!(
        feed.items[0].url.as_deref(),
        Some("https://baoyenbai.com.vn/tin/1")
    );
    assert_eq!(feed.items[0].title, "Tin <1>");
    let json = r#"{"version":"https://jsonfeed.org/version/1.1","title":"J","items":[{"id":"1","url":"https://j.vn/1","title":"Một","content_html":"<p>x</p>"}]}"#;
    let feed = parse(json.as_bytes(), &ctx()).unwrap();
    assert_eq!(feed.format, "json");
    assert_eq!(feed.items[0].text, "x");
}

#[test]
fn malformed_and_empty_documents_are_errors() {
    assert!(matches!(parse(b"  \n", &ctx()), Err(ParseError::Empty)));
    assert!(parse(b"<html><body>not a feed</body></html>", &ctx()).is_err());
    assert!(
        parse(
            b"<rss version=\"2.0\"><channel><item><title>x</titl",
            &ctx()
        )
        .is_err()
    );
}

#[test]
fn entity_expansion_does_not_blow_up() {
    let mut doc = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        doc.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    doc.push_str("]><rss version=\"2.0\"><channel><title>&lol9;</title><item><title>&lol9;</title></item></channel></rss>");
    // Either refused or parsed without expanding: never a billion "lol"s.
    if let Ok(feed) = parse(doc.as_bytes(), &ctx()) {
        assert!(feed.title.unwrap_or_default().len() < 1000);
        assert!(feed.items.iter().all(|i| i.title.len() < 1000));
    }
}

#[test]
fn utf16_without_a_bom_is_recognised() {
    let doc = "<?xml version=\"1.0\" encoding=\"utf-16\"?><rss version=\"2.0\"><channel><title>Hà Giang</title></channel></rss>";
    let be: Vec<u8> = doc.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    let le: Vec<u8> = doc.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    assert_eq!(
        parse(&be, &ctx()).unwrap().title.as_deref(),
        Some("Hà Giang")
    );
    assert_eq!(
        parse(&le, &ctx()).unwrap().title.as_deref(),
        Some("Hà Giang")
    );
}

/// Out-of-line Atom content (`<content src>`, empty or not) once made feed-rs refuse the whole
/// document, and its retry on the truncation path panicked inside feed-rs.
#[test]
fn atom_entries_with_out_of_line_content_are_kept() {
    let doc = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Tạp chí Lào Cai</title>
<id>urn:uuid:tap-chi</id><updated>2026-11-28T00:00:00Z</updated>
<entry><id>urn:uuid:1</id><title>Bản tin số 1</title><updated>2026-11-27T01:00:00Z</updated>
<content src="https://tapchi.laocai.vn/so-1.pdf" type="application/pdf"/>
<link href="https://tapchi.laocai.vn/so-1.html"/><summary>Mùa vàng ở Y Tý.</summary></entry>
<entry><id>urn:uuid:2</id><title>Bản tin số 2</title><updated>2026-11-27T02:00:00Z</updated>
<content type="text/plain" src='https://tapchi.laocai.vn/so-2.txt'></content>
<summary>Chè Shan tuyết.</summary><link href="https://tapchi.laocai.vn/so-2.html"/></entry>
</feed>"#;
    let feed = parse(doc.as_bytes(), &ctx()).expect("parses");
    let got: Vec<(&str, Option<&str>, &str)> = feed
        .items
        .iter()
        .map(|i| (i.title.as_str(), i.url.as_deref(), i.text.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "Bản tin số 1",
                Some("https://tapchi.laocai.vn/so-1.html"),
                "Mùa vàng ở Y Tý."
            ),
            (
                "Bản tin số 2",
                Some("https://tapchi.laocai.vn/so-2.html"),
                "Chè Shan tuyết."
            ),
        ]
    );
}

#[test]
fn a_panic_inside_the_parser_is_the_documents_error() {
    let caught = quiet_panics::catch(|| -> u8 { panic!("hỏng ở {}", "feed-rs") });
    let message = caught.expect_err("the panic is caught");
    assert!(message.starts_with("hỏng ở feed-rs at "), "{message}");
    assert!(message.contains("parser/tests.rs"), "{message}");
    // Outside `catch`, nothing changed: a value comes back as it is.
    assert_eq!(quiet_panics::catch(|| 7), Ok(7));
}

/// feed-rs slices one byte either side of an address in a person field and panicked on a
/// multi-byte neighbour (a `&nbsp;`, an en dash), losing the whole feed. Found by the fuzzer.
#[test]
fn an_author_address_beside_a_multibyte_character_keeps_the_feed() {
    let doc = rss(concat!(
        r#"<managingEditor>bbt@baolaocai.vn&nbsp;(Ban biên tập)</managingEditor>"#,
        r#"<item><title>Lũ quét ở Bát Xát</title><link>https://baolaocai.vn/lu-quet.html</link>"#,
        r#"<author>Thu Hà–thuha@baolaocai.vn</author></item>"#,
        r#"<item xmlns:dc="http://purl.org/dc/elements/1.1/"><title>Giá chè tăng</title>"#,
        r#"<link>https://baolaocai.vn/gia-che.html</link>"#,
        r#"<dc:creator><![CDATA[ptv@baolaocai.vn​ Phóng viên]]></dc:creator></item>"#,
    ));
    let feed = parse(doc.as_bytes(), &ctx()).expect("parses");
    let titles: Vec<&str> = feed.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles, ["Lũ quét ở Bát Xát", "Giá chè tăng"]);
}

/// The shapes the fuzzer found, spelled out: every person field feed-rs splits, with each
/// multi-byte neighbour it tripped on before and after the address.
#[test]
fn no_person_field_neighbour_panics_the_parser() {
    let fields = [
        ("managingEditor", ""),
        ("webMaster", ""),
        ("author", ""),
        (
            "dc:creator",
            r#" xmlns:dc="http://purl.org/dc/elements/1.1/""#,
        ),
        (
            "itunes:author",
            r#" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd""#,
        ),
    ];
    for (field, ns) in fields {
        for near in [
            "\u{feff}", "®", "😀", "¼", "\u{a0}", "–", "&nbsp;", "&#8211;",
        ] {
            for person in [
                format!("Hà Giang{near}bbt@baohagiang.vn"),
                format!("bbt@baohagiang.vn{near}(Ban biên tập)"),
            ] {
                let doc = format!(
                    r#"<rss version="2.0"{ns}><channel><title>Báo Hà Giang</title><{field}>{person}</{field}><item><title>Mùa tam giác mạch</title><link>https://baohagiang.vn/a.html</link><{field}>{person}</{field}></item></channel></rss>"#
                );
                let feed = parse(doc.as_bytes(), &ctx())
                    .unwrap_or_else(|e| panic!("{field} {person:?}: {e}"));
                assert_eq!(feed.items.len(), 1, "{field} {person:?}");
            }
        }
    }
}

fn entry(n: u32, title: &str) -> String {
    format!(
        "<item><title>{title}</title><link>https://baolaocai.vn/tin/{n}.html</link><guid>tin-{n}</guid>\
         <description>Bài {n} về Bát Xát.</description><pubDate>Sat, 28 Nov 2026 0{}:00:00 +0700</pubDate></item>",
        n % 10
    )
}

/// What a whole read gives for the items with these keys.
fn whole(doc: &str, keys: &[String]) -> Vec<NewItem> {
    let mut items = parse(doc.as_bytes(), &ctx()).unwrap().items;
    items.retain(|i| keys.contains(&i.key));
    items
}

#[test]
fn a_changed_document_is_read_for_its_new_and_edited_entries_only() {
    let first = rss(&(1..=5)
        .map(|n| entry(n, &format!("Tin {n}")))
        .collect::<String>());
    let salt = salt(&ctx(), "");
    let read = parse_remembering(first.as_bytes(), &ctx(), None, salt).unwrap();
    assert_eq!((read.parsed.items.len(), read.unchanged), (5, 0));
    let memory = read.memory.expect("entries told apart");
    assert_eq!(memory.entries.len(), 5);

    // Two new entries on top, entry 3 edited, entry 5 gone.
    let second = rss(&format!(
        "{}{}{}{}{}{}",
        entry(7, "Tin 7"),
        entry(6, "Tin 6"),
        entry(1, "Tin 1"),
        entry(2, "Tin 2"),
        entry(3, "Tin 3 (cập nhật)"),
        entry(4, "Tin 4")
    ));
    let again = parse_remembering(second.as_bytes(), &ctx(), Some(&memory), salt).unwrap();
    let keys: Vec<String> = again.parsed.items.iter().map(|i| i.key.clone()).collect();
    assert_eq!(keys, ["g:tin-7", "g:tin-6", "g:tin-3"]);
    assert_eq!(again.unchanged, 3);
    // The items read are exactly what reading the whole document makes of them.
    assert_eq!(again.parsed.items, whole(&second, &keys));
    assert_eq!(again.parsed.title.as_deref(), Some("Báo Lào Cai"));
    let next = again.memory.expect("remembered");
    assert_eq!(next.entries.len(), 6, "the gone entry is forgotten");

    // Another salt (the rules changed, a new version): everything is read again.
    let other = parse_remembering(second.as_bytes(), &ctx(), Some(&next), salt ^ 1).unwrap();
    assert_eq!((other.parsed.items.len(), other.unchanged), (6, 0));
    // The same document again: nothing to read.
    let same = parse_remembering(second.as_bytes(), &ctx(), Some(&next), salt).unwrap();
    assert_eq!((same.parsed.items.len(), same.unchanged), (0, 6));
}

#[test]
fn remembered_entries_keep_their_fate_and_identity() {
    let salt = salt(&ctx(), "skip quảng cáo");
    let first = rss(&format!(
        "{}{}{}",
        entry(1, "Tin 1"),
        entry(2, "quảng cáo"),
        entry(1, "Tin 1")
    ));
    let mut read = parse_remembering(first.as_bytes(), &ctx(), None, salt).unwrap();
    assert_eq!(read.parsed.duplicates, 1);
    assert_eq!(read.apply(|i| !i.title.contains("quảng cáo")), 1);
    assert_eq!(read.parsed.items.len(), 1);
    let memory = read.memory.unwrap();
    let fates: Vec<Fate> = memory.entries.iter().map(|e| e.fate).collect();
    assert_eq!(fates, [Fate::Stored, Fate::Skipped, Fate::Duplicate]);

    // A new entry that reuses a remembered entry's GUID with another link is a story of its
    // own under its link, not an edit of the old one; the skipped and repeated entries are
    // still counted though not read.
    let reused = entry(1, "Tin khác").replace("/tin/1.html", "/tin/9.html");
    let second = rss(&format!(
        "{reused}{}{}{}",
        entry(1, "Tin 1"),
        entry(2, "quảng cáo"),
        entry(1, "Tin 1")
    ));
    let mut again = parse_remembering(second.as_bytes(), &ctx(), Some(&memory), salt).unwrap();
    assert_eq!(again.apply(|i| !i.title.contains("quảng cáo")), 1);
    assert_eq!(again.parsed.duplicates, 1);
    let keys: Vec<&str> = again.parsed.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["l:https://baolaocai.vn/tin/9.html"]);
}

#[test]
fn a_memory_that_does_not_fit_the_document_costs_a_whole_read() {
    let doc = rss(&(1..=3).map(|n| entry(n, "Tin")).collect::<String>());
    let salt = salt(&ctx(), "");
    let memory = parse_remembering(doc.as_bytes(), &ctx(), None, salt)
        .unwrap()
        .memory
        .unwrap();
    // An entry whose cut leaves a document feed-rs refuses is not assumed: read whole.
    let broken = doc.replace("<channel>", "<channel><item><title>x</title></item>");
    let read = parse_remembering(broken.as_bytes(), &ctx(), Some(&memory), salt).unwrap();
    assert_eq!(read.parsed.items.len() + read.unchanged, 4);
    // JSON Feed has no entries to tell apart: always read whole, nothing remembered.
    let json = r#"{"version":"https://jsonfeed.org/version/1.1","title":"T","items":[{"id":"1","content_text":"Bát Xát"}]}"#;
    let read = parse_remembering(json.as_bytes(), &ctx(), Some(&memory), salt).unwrap();
    assert_eq!(read.parsed.items.len(), 1);
    assert!(read.memory.is_none());
}
