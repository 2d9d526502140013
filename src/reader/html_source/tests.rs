use super::*;
use chrono::{TimeZone, Utc};
use url::Url;

fn ctx() -> ParseContext {
    ParseContext {
        base: Url::parse("https://baolaocai.vn/thoi-su/").ok(),
        http_charset: None,
        timezone: chrono_tz::Asia::Ho_Chi_Minh,
        now: Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap(),
    }
}

fn selectors() -> HtmlSelectors {
    HtmlSelectors {
        item: "article.story".into(),
        title: ".story__title".into(),
        link: ".story__title a".into(),
        date: Some(".story__time".into()),
        summary: Some(".story__summary".into()),
    }
}

/// A section page in the shape provincial papers' CMSs use: a lead story repeated in the list,
/// dates as "dd/mm/yyyy - hh:mm" and "dd/mm/yyyy hh:mm", relative links.
const PAGE: &str = r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title>Thời sự - Báo Lào Cai</title></head>
<body><div class="featured"><article class="story"><h3 class="story__title"><a href="/tin/bat-xat-1.html?utm_source=home">Bát Xát khắc phục hậu quả mưa lũ</a></h3>
<div class="story__time">05/12/2026 - 07:30</div></article></div>
<div class="list"><article class="story"><img src="/img/1.jpg"><h3 class="story__title"><a href="/tin/bat-xat-1.html">Bát Xát khắc phục hậu quả mưa lũ</a></h3>
<div class="story__time">05/12/2026 - 07:30</div><p class="story__summary">Huyện <b>Bát Xát</b> huy động lực lượng.<script>x()</script></p></article>
<article class="story"><h3 class="story__title"><a href="https://baolaocai.vn/tin/sa-pa-2.html">Sa Pa đón khách</a></h3>
<time class="story__time" datetime="2026-12-04T20:15:00+07:00">Hôm qua</time></article>
<article class="story"><h3 class="story__title"><a href="javascript:void(0)">Quảng cáo</a></h3></article>
<article class="story"><h3 class="story__title"><a href="/tin/3.html">Tin không ngày</a></h3><div class="story__time">04/12/2026 18:05</div></article>
</div></body></html>"#;

#[test]
fn a_section_page_becomes_items_like_a_feeds() {
    let feed = extract(PAGE.as_bytes(), &ctx(), &selectors()).expect("items");
    assert_eq!(feed.format, "html");
    assert_eq!(feed.title.as_deref(), Some("Thời sự - Báo Lào Cai"));
    assert_eq!(
        feed.duplicates, 1,
        "the lead story repeated in the list is one item"
    );
    let titles: Vec<&str> = feed.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Bát Xát khắc phục hậu quả mưa lũ",
            "Sa Pa đón khách",
            "Tin không ngày"
        ]
    );
    let first = &feed.items[0];
    assert_eq!(first.key, "l:https://baolaocai.vn/tin/bat-xat-1.html");
    assert_eq!(
        first.url.as_deref(),
        Some("https://baolaocai.vn/tin/bat-xat-1.html?utm_source=home")
    );
    assert_eq!(first.published.to_rfc3339(), "2026-12-05T00:30:00+00:00");
    assert!(!first.date_estimated);
    // The second's block had the summary; the first seen wins, as with a feed's repeats.
    assert_eq!(
        feed.items[1].published.to_rfc3339(),
        "2026-12-04T13:15:00+00:00"
    );
    assert_eq!(
        feed.items[2].published.to_rfc3339(),
        "2026-12-04T11:05:00+00:00"
    );
}

#[test]
fn summaries_are_sanitised_and_text_is_nfc() {
    let nfd = PAGE.replace("Sa Pa đón khách", "Sa Pa \u{0111}o\u{0301}n kha\u{0301}ch");
    let sel = HtmlSelectors {
        item: ".list article.story".into(),
        ..selectors()
    };
    let feed = extract(nfd.as_bytes(), &ctx(), &sel).expect("items");
    let first = &feed.items[0];
    assert_eq!(first.text, "Huyện Bát Xát huy động lực lượng.");
    assert!(
        !first.summary_html.contains("script"),
        "{}",
        first.summary_html
    );
    assert_eq!(
        first.image_url.as_deref(),
        Some("https://baolaocai.vn/img/1.jpg")
    );
    assert_eq!(feed.items[1].title, "Sa Pa đón khách");
}

#[test]
fn a_windows_1258_page_is_decoded_to_nfc() {
    let page = r#"<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1258"></head>
<body><div class="tin"><a href="/a.html">Lào Cai mưa lớn</a></div></body></html>"#;
    // Windows-1258 has ơ and ư but spells most tone marks as combining characters: "lớn" is
    // "lơ" + U+0301 there, and comes back decomposed.
    let page = page.replace("lớn", "lơ\u{301}n");
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1258.encode(&page);
    assert!(!unmappable && std::str::from_utf8(&bytes).is_err());
    let sel = HtmlSelectors {
        item: "div.tin".into(),
        title: "a".into(),
        link: "a".into(),
        date: None,
        summary: None,
    };
    let feed = extract(&bytes, &ctx(), &sel).expect("items");
    assert_eq!(feed.items[0].title, "Lào Cai mưa lớn");
    assert!(feed.items[0].date_estimated, "no date selector: first seen");
}

#[test]
fn selectors_that_find_nothing_name_themselves() {
    let moved = HtmlSelectors {
        item: "li.news-item".into(),
        ..selectors()
    };
    let e = extract(PAGE.as_bytes(), &ctx(), &moved)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"li.news-item\" matches nothing"), "{e}");
    let no_links = HtmlSelectors {
        link: "a.permalink".into(),
        ..selectors()
    };
    let e = extract(PAGE.as_bytes(), &ctx(), &no_links)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("link selector \"a.permalink\" finds nothing in any of the 5 items"),
        "{e}"
    );
    assert!(selector_error("div[").is_some());
    assert!(selector_error("article.story > h3 a").is_none());
    let e = extract(b"  ", &ctx(), &selectors()).unwrap_err();
    assert!(matches!(e, ParseError::Empty));
}
