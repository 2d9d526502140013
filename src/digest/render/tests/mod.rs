//! Digest rendering, checked the way a mail client sees it: each message is formatted to bytes
//! and parsed back with `mailparse`. Here: what an email shows; `templates`: operators' own
//! templates; `eight_bit`: the 8-bit form for relays that take it.

use super::*;
use chrono::TimeZone;
use lettre::message::Mailbox;
use lettre::message::header::Header;
use mailparse::{MailHeaderMap, ParsedMail};
use std::path::Path;

mod eight_bit;
mod templates;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid test date")
}

fn story(title: &str, url: &str, source: &str, published: DateTime<Utc>) -> Story {
    Story {
        title: title.to_string(),
        url: Some(url.to_string()),
        source: source.to_string(),
        summary: format!("Tóm tắt: {title}."),
        published,
        also: Vec::new(),
    }
}

/// Four stories in two sections (the second and fourth are plain), one carried by other outlets.
fn stories() -> [Vec<Story>; 2] {
    let mut flood = story(
        "Lào Cai khắc phục hậu quả lũ quét ở Bát Xát",
        "https://baolaocai.vn/bai/lu-quet-bat-xat",
        "Báo Lào Cai",
        at(2025, 11, 27, 23, 15),
    );
    flood.also = vec![
        (
            "Báo Yên Bái".to_string(),
            Some("https://baoyenbai.com.vn/lu-bat-xat".to_string()),
        ),
        ("VnExpress".to_string(), None),
    ];
    [
        vec![
            flood,
            story(
                "Hội nghị Ban Chấp hành Đảng bộ tỉnh",
                "https://baolaocai.vn/bai/hoi-nghi",
                "Báo Lào Cai",
                at(2025, 11, 27, 9, 0),
            ),
        ],
        vec![
            story(
                "Giá chè & quế <rẻ>",
                "https://baoyenbai.com.vn/gia-che?a=1&b=2",
                "Báo Yên Bái",
                at(2025, 11, 27, 3, 5),
            ),
            story(
                "Nông dân Văn Bàn thu hoạch quế",
                "https://baolaocai.vn/bai/que-van-ban",
                "Báo Lào Cai",
                at(2025, 11, 26, 10, 0),
            ),
        ],
    ]
}

const SECTION_TITLES: [&str; 2] = ["Thời sự · Lào Cai", "Kinh tế · “giá chè”"];

/// The four stories of `stories()`, three more left out. The tick is 00:30 UTC on 28/11, which
/// is 07:30 the same day in Vietnam.
fn view() -> DigestView {
    view_of(stories(), chrono_tz::Asia::Ho_Chi_Minh)
}

fn view_of(stories: [Vec<Story>; 2], timezone: Tz) -> DigestView {
    let templates = Templates::builtin();
    let sections = stories
        .iter()
        .zip(SECTION_TITLES)
        .map(|(stories, title)| Section {
            title: title.to_string(),
            stories: stories
                .iter()
                .map(|s| templates.prepare(s, timezone).expect("prepares"))
                .collect(),
        })
        .collect();
    DigestView {
        to: "Chị Hoa <hoa@example.vn>".to_string(),
        tick: at(2025, 11, 28, 0, 30),
        timezone,
        place: "Lào Cai".to_string(),
        sections,
        more: 3,
        more_url: Some("https://tin.example.vn/feeds/thoi-su.xml".to_string()),
        manage_url: "https://tin.example.vn/quan-ly/tok123".to_string(),
        unsubscribe_url: "https://tin.example.vn/huy/tok123".to_string(),
        base_url: "https://tin.example.vn/".to_string(),
        message_id: "<digest.12.1764289800@tin.example.vn>".to_string(),
    }
}

fn from() -> Mailbox {
    "Tin tỉnh <ban-tin@tin.example.vn>"
        .parse()
        .expect("valid sender")
}

/// A rendered message as its raw bytes: parse it with `mailparse::parse_mail`.
fn formatted(view: &DigestView, templates: &Templates) -> Vec<u8> {
    render(view, templates, &from())
        .expect("renders")
        .formatted()
}

fn parsed(raw: &[u8]) -> ParsedMail<'_> {
    mailparse::parse_mail(raw).expect("the message parses")
}

/// The decoded text/plain and text/html parts.
fn parts(mail: &ParsedMail<'_>) -> (String, String) {
    assert_eq!(mail.ctype.mimetype, "multipart/alternative");
    assert_eq!(mail.subparts.len(), 2, "exactly two alternatives");
    let text = &mail.subparts[0];
    let html = &mail.subparts[1];
    assert_eq!(text.ctype.mimetype, "text/plain", "plain text comes first");
    assert_eq!(html.ctype.mimetype, "text/html");
    for part in [text, html] {
        assert_eq!(part.ctype.charset.to_ascii_lowercase(), "utf-8");
    }
    (
        text.get_body().expect("text part decodes"),
        html.get_body().expect("html part decodes"),
    )
}

fn header(mail: &ParsedMail<'_>, name: &str) -> String {
    mail.headers
        .get_first_value(name)
        .unwrap_or_else(|| panic!("header {name} present"))
}

#[test]
fn both_parts_decode_to_vietnamese_text_with_every_story() {
    let raw = formatted(&view(), &Templates::builtin());
    let mail = parsed(&raw);
    let (text, html) = parts(&mail);
    for (title, stories) in SECTION_TITLES.iter().zip(stories()) {
        assert!(text.contains(title), "text has {title}");
        assert!(html.contains(&escape_html(title)));
        for story in &stories {
            assert!(text.contains(&story.title), "text has {}", story.title);
            assert!(
                html.contains(&escape_html(&story.title)),
                "html has {}",
                story.title
            );
            assert!(text.contains(&story.summary));
        }
    }
    assert!(text.contains("Chào bạn, bản tin Lào Cai kỳ này có 4 tin mới"));
    assert!(html.contains("<html lang=\"vi\">"));
}

#[test]
fn subject_names_place_local_date_and_count_and_is_rfc_2047_encoded() {
    let templates = Templates::builtin();
    let raw = formatted(&view(), &templates);
    let mail = parsed(&raw);
    assert_eq!(header(&mail, "Subject"), "Bản tin Lào Cai 28/11: 4 tin mới");
    assert_eq!(
        subject(&view(), &templates).expect("subject"),
        "Bản tin Lào Cai 28/11: 4 tin mới"
    );
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    assert!(head.contains("subject: =?utf-8?"), "encoded word in {head}");
    assert!(raw.is_ascii(), "headers and bodies are 7-bit on the wire");
}

#[test]
fn dates_are_shown_in_the_subscribers_timezone() {
    let mut late = view();
    // 18:00 UTC on 27/11 is already 01:00 on 28/11 in Vietnam.
    late.tick = at(2025, 11, 27, 18, 0);
    let templates = Templates::builtin();
    assert_eq!(
        subject(&late, &templates).expect("subject"),
        "Bản tin Lào Cai 28/11: 4 tin mới"
    );
    let raw = formatted(&late, &templates);
    let (text, html) = parts(&parsed(&raw));
    // Published 23:15 UTC on 27/11: 06:15 on 28/11 in Vietnam.
    assert!(text.contains("Báo Lào Cai · 06:15 28/11"), "{text}");
    assert!(html.contains("06:15 28/11"));
    assert!(text.contains("Thứ Sáu, ngày 28/11/2025"));

    late.timezone = chrono_tz::UTC;
    assert_eq!(
        subject(&late, &templates).expect("subject"),
        "Bản tin Lào Cai 27/11: 4 tin mới"
    );
}

#[test]
fn headers_carry_recipient_sender_message_id_and_tick() {
    let raw = formatted(&view(), &Templates::builtin());
    let mail = parsed(&raw);
    let to = mailparse::addrparse_header(mail.headers.get_first_header("To").expect("To"))
        .expect("To parses");
    let to = to.extract_single_info().expect("one recipient");
    assert_eq!(to.addr, "hoa@example.vn");
    assert_eq!(to.display_name.as_deref(), Some("Chị Hoa"));
    assert!(header(&mail, "From").contains("ban-tin@tin.example.vn"));
    assert_eq!(
        header(&mail, "Message-ID"),
        "<digest.12.1764289800@tin.example.vn>"
    );
    let date = mailparse::dateparse(&header(&mail, "Date")).expect("Date parses");
    assert_eq!(date, view().tick.timestamp());
    assert_eq!(header(&mail, "MIME-Version"), "1.0");
}

#[test]
fn message_id_is_the_same_each_time_the_view_is_rendered() {
    let templates = Templates::builtin();
    let ids: Vec<String> = (0..2)
        .map(|_| header(&parsed(&formatted(&view(), &templates)), "Message-ID"))
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0], view().message_id);
}

#[test]
fn one_click_unsubscribe_headers_follow_rfc_8058() {
    let raw = formatted(&view(), &Templates::builtin());
    let mail = parsed(&raw);
    assert_eq!(
        header(&mail, "List-Unsubscribe"),
        "<https://tin.example.vn/huy/tok123>"
    );
    assert_eq!(
        header(&mail, "List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    let parsed = ListUnsubscribe::parse("<https://tin.example.vn/huy/tok123>").expect("parses");
    assert_eq!(parsed.url(), "https://tin.example.vn/huy/tok123");
}

#[test]
fn an_unsubscribe_link_that_cannot_go_in_a_header_is_refused() {
    for bad in [
        "/huy/tok123",
        "https://tin.example.vn/huỷ/tok",
        "https://a/b>\r\nBcc: x@y",
        "javascript:alert(1)",
    ] {
        let mut v = view();
        v.unsubscribe_url = bad.to_string();
        let err = render(&v, &Templates::builtin(), &from()).expect_err(bad);
        assert!(format!("{err:#}").contains("unsubscribe link"), "{err:#}");
    }
}

#[test]
fn html_escapes_story_text_and_text_part_keeps_it_plain() {
    let raw = formatted(&view(), &Templates::builtin());
    let (text, html) = parts(&parsed(&raw));
    assert!(html.contains("Giá chè &amp; quế &lt;rẻ&gt;"), "{html}");
    assert!(!html.contains("<rẻ>"));
    assert!(html.contains("href=\"https://baoyenbai.com.vn/gia-che?a=1&amp;b=2\""));
    assert!(html.contains("Kinh tế · “giá chè”"));
    assert!(text.contains("Giá chè & quế <rẻ>"));
    assert!(text.contains("https://baoyenbai.com.vn/gia-che?a=1&b=2"));
}

#[test]
fn other_outlets_and_the_rest_of_the_stories_are_named_and_linked() {
    let raw = formatted(&view(), &Templates::builtin());
    let (text, html) = parts(&parsed(&raw));
    assert!(
        text.contains("Cùng đưa tin: Báo Yên Bái, VnExpress"),
        "{text}"
    );
    assert!(html.contains(
        "Cùng đưa tin: <a href=\"https://baoyenbai.com.vn/lu-bat-xat\" style=\"color:#666666;\">Báo Yên Bái</a>, VnExpress"
    ));
    assert_eq!(text.matches("Cùng đưa tin").count(), 1);
    assert!(text.contains("… và 3 tin khác: https://tin.example.vn/feeds/thoi-su.xml"));
    assert!(html.contains(
        "<a href=\"https://tin.example.vn/feeds/thoi-su.xml\" style=\"color:#14508c;\">… và 3 tin khác</a>"
    ));

    let mut all = view();
    all.more = 0;
    all.more_url = None;
    let (text, html) = parts(&parsed(&formatted(&all, &Templates::builtin())));
    assert!(!text.contains("tin khác"));
    assert!(!html.contains("tin khác"));
}

#[test]
fn every_email_shows_the_manage_and_unsubscribe_links() {
    let raw = formatted(&view(), &Templates::builtin());
    let (text, html) = parts(&parsed(&raw));
    for part in [&text, &html] {
        assert!(part.contains("https://tin.example.vn/quan-ly/tok123"));
        assert!(part.contains("https://tin.example.vn/huy/tok123"));
        assert!(part.contains("Hủy đăng ký"));
    }
}

#[test]
fn html_has_no_images_scripts_or_remote_styles() {
    let raw = formatted(&view(), &Templates::builtin());
    let (_, html) = parts(&parsed(&raw));
    let lower = html.to_lowercase();
    for banned in ["<img", "<script", "<link", "<style", "url(", "<iframe"] {
        assert!(!lower.contains(banned), "html contains {banned}");
    }
}

#[test]
fn links_that_are_not_http_are_dropped_but_the_story_stays() {
    let mut stories = stories();
    stories[0][0].url = Some("javascript:alert(1)".to_string());
    stories[0][0].also[0].1 = Some("data:text/html,x".to_string());
    let v = view_of(stories, chrono_tz::Asia::Ho_Chi_Minh);
    let (text, html) = parts(&parsed(&formatted(&v, &Templates::builtin())));
    for part in [&text, &html] {
        assert!(!part.contains("javascript:"));
        assert!(!part.contains("data:text"));
    }
    assert!(html.contains("Lào Cai khắc phục hậu quả lũ quét ở Bát Xát"));
    assert!(text.contains("Cùng đưa tin: Báo Yên Bái, VnExpress"));
}
