use super::*;
use unicode_normalization::{UnicodeNormalization, is_nfc};

fn url() -> Url {
    Url::parse("https://baolaocai.vn/bai-viet/lu-quet-o-bat-xat-123.html").unwrap()
}

/// A provincial-style article page: menus, a related-stories box and a footer around the
/// article, whose body names a district the feed's teaser does not.
fn page() -> String {
    let para = |n: usize| {
        format!(
            "<p>Đoạn {n}: Trận lũ quét đêm qua tại xã Trịnh Tường, huyện Bát Xát đã cuốn trôi \
             nhiều hoa màu và làm hư hỏng tuyến đường liên xã. Lực lượng chức năng cùng người \
             dân địa phương đang khẩn trương khắc phục hậu quả, bảo đảm giao thông thông suốt.</p>"
        )
    };
    let body: String = (1..=6).map(para).collect();
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Lũ quét ở Bát Xát</title></head>
<body>
<nav class="menu"><a href="/">Trang chủ</a><a href="/thoi-su">Thời sự</a><a href="/kinh-te">Kinh tế</a></nav>
<div class="main">
<article class="detail">
<h1>Lũ quét gây thiệt hại tại Bát Xát</h1>
<p class="sapo">Mưa lớn kéo dài gây lũ quét tại huyện vùng cao.</p>
<div class="content">{body}<img src="/anh/lu.jpg" alt="Hiện trường"><script>track()</script></div>
<div class="related"><h3>Tin cùng chuyên mục</h3><ul><li><a href="/a">Tin khác một</a></li><li><a href="/b">Tin khác hai</a></li></ul></div>
</article>
</div>
<footer>Báo Lào Cai - Cơ quan của Đảng bộ tỉnh</footer>
</body></html>"#
    )
}

#[test]
fn a_selector_picks_the_body_and_links_resolve_against_the_page() {
    let how = FullText::Selector("article.detail .content".into());
    let body = extract(
        page().as_bytes(),
        Some("text/html; charset=utf-8"),
        &url(),
        &how,
        None,
    )
    .unwrap();
    assert_eq!(body.how, "selector");
    assert!(body.text.contains("huyện Bát Xát"), "{}", body.text);
    assert!(!body.text.contains("Tin cùng chuyên mục"));
    assert!(!body.text.contains("Trang chủ"));
    assert!(!body.html.contains("<script"), "{}", body.html);
    assert!(
        body.html.contains("https://baolaocai.vn/anh/lu.jpg"),
        "{}",
        body.html
    );
}

#[test]
fn a_site_rule_drops_what_it_removes() {
    let rule = SiteRule {
        hosts: vec!["baolaocai.vn".into()],
        body: "p.sapo, article.detail".into(),
        remove: vec![".related".into(), "h1".into()],
    };
    let body = extract(
        page().as_bytes(),
        Some("text/html"),
        &url(),
        &FullText::Auto,
        Some(&rule),
    )
    .unwrap();
    assert_eq!(body.how, "site rule");
    assert!(body.text.contains("Mưa lớn kéo dài"));
    assert!(body.text.contains("Trịnh Tường"));
    assert!(!body.text.contains("Tin khác một"), "{}", body.text);
    assert!(
        !body.text.contains("Lũ quét gây thiệt hại"),
        "{}",
        body.text
    );
}

#[test]
fn readability_finds_the_article_without_a_rule() {
    let body = extract(
        page().as_bytes(),
        Some("text/html"),
        &url(),
        &FullText::Auto,
        None,
    )
    .unwrap();
    assert_eq!(body.how, "readability");
    assert!(body.text.contains("Đoạn 6"), "{}", body.text);
    assert!(body.text.contains("huyện Bát Xát"));
    assert!(!body.text.contains("Trang chủ"), "{}", body.text);
    assert!(!body.text.contains("Cơ quan của Đảng bộ"), "{}", body.text);
    assert!(!body.html.contains("<script"));
}

#[test]
fn a_windows_1258_page_named_only_in_its_meta_reads_as_nfc() {
    let text = page().replace(
        r#"<meta charset="utf-8">"#,
        r#"<meta http-equiv="Content-Type" content="text/html; charset=windows-1258">"#,
    );
    let text = windows_1258_form(&text);
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1258.encode(&text);
    assert!(!unmappable);
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the fixture must not be UTF-8"
    );
    let how = FullText::Selector(".content".into());
    let body = extract(&bytes, Some("text/html"), &url(), &how, None).unwrap();
    assert!(body.text.contains("huyện Bát Xát"), "{}", body.text);
    assert!(is_nfc(&body.text) && is_nfc(&body.html));
}

/// Text as Windows-1258 spells it: letters with a circumflex, breve or horn are precomposed,
/// tone marks follow as combining characters.
fn windows_1258_form(text: &str) -> String {
    let tone = |c: &char| {
        matches!(
            *c,
            '\u{300}' | '\u{301}' | '\u{303}' | '\u{309}' | '\u{323}'
        )
    };
    let mut out = String::new();
    for c in text.chars() {
        let (tones, letter): (Vec<char>, Vec<char>) = c.nfd().partition(tone);
        out.extend(letter.into_iter().nfc());
        out.extend(tones);
    }
    out
}

#[test]
fn a_decomposed_page_ends_composed() {
    let nfd: String = page().nfd().collect();
    assert_ne!(nfd, page());
    let how = FullText::Selector(".content".into());
    let body = extract(nfd.as_bytes(), None, &url(), &how, None).unwrap();
    assert!(body.text.contains("huyện Bát Xát"));
    assert!(is_nfc(&body.text) && is_nfc(&body.html));
}

#[test]
fn what_is_not_a_page_is_refused_with_its_type() {
    let err = extract(
        b"%PDF-1.7 ...",
        Some("application/pdf"),
        &url(),
        &FullText::Auto,
        None,
    )
    .unwrap_err();
    assert!(err.contains("application/pdf"), "{err}");
    let err = extract(
        b"\x89PNG\r\n\x1a\n....",
        None,
        &url(),
        &FullText::Auto,
        None,
    )
    .unwrap_err();
    assert!(err.contains("not an HTML page"), "{err}");
}

#[test]
fn a_selector_that_matches_nothing_names_itself() {
    let how = FullText::Selector("div.noi-dung-bai-viet".into());
    let err = extract(page().as_bytes(), Some("text/html"), &url(), &how, None).unwrap_err();
    assert!(
        err.contains("div.noi-dung-bai-viet") && err.contains("matches nothing"),
        "{err}"
    );
}

#[test]
fn a_page_with_no_article_is_an_error_not_an_empty_body() {
    let bare = "<!doctype html><html><head><title>Trang chủ</title></head><body></body></html>";
    let got = extract(
        bare.as_bytes(),
        Some("text/html"),
        &url(),
        &FullText::Auto,
        None,
    );
    assert!(got.is_err(), "{got:?}");
}

#[test]
fn a_site_rule_that_no_longer_fits_falls_back_to_readability() {
    let rule = SiteRule {
        hosts: vec!["baolaocai.vn".into()],
        body: "div.bo-cuc-cu".into(),
        remove: vec![],
    };
    let body = extract(
        page().as_bytes(),
        Some("text/html"),
        &url(),
        &FullText::Auto,
        Some(&rule),
    )
    .unwrap();
    assert_eq!(body.how, "readability (the site rule matched nothing)");
    assert!(body.text.contains("huyện Bát Xát"));
}

#[test]
fn nested_matches_are_taken_once() {
    // A body selector matching elements inside each other (found by the fuzzer: 588 nested
    // matches made the body quadratic and took seconds).
    let depth = 300;
    let page = format!(
        "<html><body><article>{}<p>Lũ quét ở Bát Xát.</p>{}</article></body></html>",
        "<div class=\"noi-dung\">".repeat(depth),
        "</div>".repeat(depth)
    );
    let how = FullText::Selector(".noi-dung".into());
    let body = extract(page.as_bytes(), Some("text/html"), &url(), &how, None).unwrap();
    assert_eq!(body.text.matches("Bát Xát").count(), 1, "{}", body.text);
}

#[test]
fn a_page_nested_hundreds_deep_is_not_given_to_readability() {
    let n = 600;
    let page = format!(
        "<html><body>{}{}</body></html>",
        "<div><p>Lũ quét ở Bát Xát, mưa lớn kéo dài nhiều ngày.</p>".repeat(n),
        "</div>".repeat(n)
    );
    let err = extract(
        page.as_bytes(),
        Some("text/html"),
        &url(),
        &FullText::Auto,
        None,
    )
    .unwrap_err();
    assert!(
        err.contains("nests its elements") && err.contains("more than 256"),
        "{err}"
    );
    // A selector reads it in one pass: only readability's scoring is quadratic in the depth.
    let how = FullText::Selector("body > div".into());
    assert!(extract(page.as_bytes(), Some("text/html"), &url(), &how, None).is_ok());
}

#[test]
fn a_page_nested_thousands_deep_is_not_parsed_at_all() {
    let page = format!(
        "<html><body>{}<p>Bát Xát</p></body></html>",
        "<div>".repeat(5000)
    );
    let how = FullText::Selector("p".into());
    let err = extract(page.as_bytes(), Some("text/html"), &url(), &how, None).unwrap_err();
    assert!(err.contains("deep (more than 1000): not read"), "{err}");
    // Feed content that deep keeps its text, unparsed.
    let clean = Sanitizer::new(None).clean(&page);
    assert!(
        clean.starts_with("<p>") && clean.contains("Bát Xát") && !clean.contains("<div"),
        "{clean}"
    );
}
