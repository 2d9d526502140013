use super::*;
use chrono_tz::Asia::Ho_Chi_Minh;

#[test]
fn sanitizer_removes_scripts_and_resolves_relative_links() {
    let base = Url::parse("https://baolaocai.vn/tin/abc.html").unwrap();
    let out = sanitize_html(
        r#"<p onclick="x()">Xem <a href="/anh/1.jpg">ảnh</a><script>bad()</script></p>"#,
        Some(&base),
    );
    assert!(!out.contains("script") && !out.contains("onclick"), "{out}");
    assert!(
        out.contains(r#"href="https://baolaocai.vn/anh/1.jpg""#),
        "{out}"
    );
    assert!(out.contains("noopener"), "{out}");
}

#[test]
fn canonical_links_drop_tracking_and_fragments() {
    let u = Url::parse("https://BaoLaoCai.vn/a.html?id=5&utm_source=fb&fbclid=x#top").unwrap();
    assert_eq!(canonical_link(&u), "https://baolaocai.vn/a.html?id=5");
    let u = Url::parse("https://baolaocai.vn/a.html?utm_medium=rss").unwrap();
    assert_eq!(canonical_link(&u), "https://baolaocai.vn/a.html");
}

#[test]
fn relative_links_are_resolved_and_other_schemes_refused() {
    let base = Url::parse("https://baoyenbai.com.vn/rss/").unwrap();
    assert_eq!(
        absolute_link("../tin/1", Some(&base)).unwrap().as_str(),
        "https://baoyenbai.com.vn/tin/1"
    );
    assert!(absolute_link("javascript:alert(1)", Some(&base)).is_none());
    assert!(absolute_link("/x", None).is_none());
}

#[test]
fn standard_dates_parse_to_utc() {
    let d = parse_date("Sat, 28 Nov 2026 07:30:00 +0700", Ho_Chi_Minh).unwrap();
    assert_eq!(d.to_rfc3339(), "2026-11-28T00:30:00+00:00");
    let d = parse_date("2026-11-28T07:30:00+07:00", Ho_Chi_Minh).unwrap();
    assert_eq!(d.to_rfc3339(), "2026-11-28T00:30:00+00:00");
    let d = parse_date("Saturday, 28 November 2026 07:30:00 GMT+7", Ho_Chi_Minh).unwrap();
    assert_eq!(d.to_rfc3339(), "2026-11-28T00:30:00+00:00");
}

#[test]
fn vietnamese_local_dates_fall_back_to_the_operator_timezone() {
    let d = parse_date("28/11/2026 07:30", Ho_Chi_Minh).unwrap();
    assert_eq!(d.to_rfc3339(), "2026-11-28T00:30:00+00:00");
    let d = parse_date("Thứ bảy, 28/11/2026, 07:30 (GMT+7)", Ho_Chi_Minh).unwrap();
    assert_eq!(d.to_rfc3339(), "2026-11-28T00:30:00+00:00");
    let d = parse_date("2026-11-28 07:30:00", Ho_Chi_Minh).unwrap();
    assert_eq!(d.to_rfc3339(), "2026-11-28T00:30:00+00:00");
    let d = parse_date("28/11/2026", Ho_Chi_Minh).unwrap();
    assert_eq!(d.to_rfc3339(), "2026-11-27T17:00:00+00:00");
    assert!(parse_date("hôm qua", Ho_Chi_Minh).is_none());
    assert!(parse_date("31/02/2026", Ho_Chi_Minh).is_none());
}

#[test]
fn missing_or_far_future_dates_use_first_seen_and_are_flagged() {
    let now = Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap();
    assert_eq!(effective_date(None, None, now), (now, true));
    let future = now + chrono::Duration::days(3);
    assert_eq!(effective_date(Some(future), None, now), (now, true));
    let soon = now + chrono::Duration::hours(2);
    assert_eq!(effective_date(Some(soon), None, now), (soon, false));
    let upd = now - chrono::Duration::hours(2);
    assert_eq!(effective_date(None, Some(upd), now), (upd, false));
}

#[test]
fn item_keys_prefer_guid_then_link_then_hash() {
    assert_eq!(
        item_key(Some(" 123 "), Some("https://x/1"), "t", None, ""),
        "g:123"
    );
    assert_eq!(
        item_key(Some(""), Some("https://x/1"), "t", None, ""),
        "l:https://x/1"
    );
    let a = item_key(None, None, "Tiêu đề", None, "nội dung");
    let b = item_key(None, None, "Tiêu đề", None, "nội dung");
    let c = item_key(None, None, "Tiêu đề", None, "khác");
    assert!(a.starts_with("h:") && a == b && a != c);
}

#[test]
fn text_of_sanitized_html_matches_the_full_html_path() {
    let samples = [
        "<p>Lào</p><p>Cai &amp; Yên Bái</p>",
        "<div>Bát<br>Xát <a href=\"/x?a=1&amp;b=2\" title=\"a>b\">xem</a></div>",
        "Tom &lt;3 &quot;Jerry&quot; &nbsp;x",
        "<ul><li>một</li><li>hai</li></ul><script>bad()</script>",
    ];
    for raw in samples {
        let clean = sanitize_html(raw, None);
        assert_eq!(text_of_sanitized(&clean), html_to_text(raw), "{raw}");
    }
}
