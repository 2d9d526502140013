//! Digest rendering, checked the way a mail client sees it: each message is formatted to bytes
//! and parsed back with `mailparse`.

use super::*;
use chrono::TimeZone;
use lettre::message::header::Header;
use mailparse::{MailHeaderMap, ParsedMail};

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

#[test]
fn a_template_in_the_operators_folder_overrides_the_builtin_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join(SUBJECT_TEMPLATE),
        "Tin {{ place }}\n  hôm nay: {{ total }}\n",
    )
    .expect("write");
    let templates = Templates::load(dir.path()).expect("loads");
    assert_eq!(
        templates.overridden(),
        vec![dir.path().join(SUBJECT_TEMPLATE).as_path()]
    );
    let raw = formatted(&view(), &templates);
    let mail = parsed(&raw);
    assert_eq!(header(&mail, "Subject"), "Tin Lào Cai hôm nay: 7");
    let (text, _) = parts(&mail);
    assert!(
        text.contains("Nông dân Văn Bàn thu hoạch quế"),
        "built-in text part"
    );
}

#[test]
fn an_operators_story_template_shapes_every_story() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join(STORY_HTML_TEMPLATE),
        "<p class=\"tin\">{{ story.source }}: {{ story.title }}</p>\n",
    )
    .expect("write");
    let templates = Templates::load(dir.path()).expect("loads");
    let story = &stories()[1][0];
    let prepared = templates
        .prepare(story, chrono_tz::Asia::Ho_Chi_Minh)
        .expect("prepares");
    let v = DigestView {
        sections: vec![Section {
            title: "Kinh tế".to_string(),
            stories: vec![prepared],
        }],
        ..view()
    };
    let (text, html) = parts(&parsed(&formatted(&v, &templates)));
    assert!(
        html.contains("<p class=\"tin\">Báo Yên Bái: Giá chè &amp; quế &lt;rẻ&gt;</p>"),
        "{html}"
    );
    assert!(
        !html.contains("font-weight:bold"),
        "the built-in story piece is not used"
    );
    assert!(
        text.contains("* Giá chè & quế <rẻ>"),
        "built-in text piece: {text}"
    );
}

#[test]
fn an_empty_folder_gives_the_builtin_templates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let templates = Templates::load(dir.path()).expect("loads");
    assert!(templates.overridden().is_empty());
    assert_eq!(
        subject(&view(), &templates).expect("subject"),
        "Bản tin Lào Cai 28/11: 4 tin mới"
    );
}

#[test]
fn a_missing_folder_is_an_error_naming_it() {
    let err = Templates::load(Path::new("/nonexistent/tinbao-templates")).expect_err("missing");
    assert!(format!("{err:#}").contains("/nonexistent/tinbao-templates"));
}

#[test]
fn a_template_syntax_error_names_the_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(HTML_TEMPLATE);
    std::fs::write(
        &path,
        "<p>{{ place }}</p>\n<p>{% for s in sections %}\n{{ s.title }</p>\n",
    )
    .expect("write");
    let err = Templates::load(dir.path()).expect_err("broken template");
    let message = format!("{err:#}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("syntax error"), "{message}");
    assert!(message.contains("digest.html:3"), "{message}");
}

#[test]
fn an_unknown_variable_fails_the_render_naming_the_template() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(TEXT_TEMPLATE), "Chào {{ plcae }}\n").expect("write");
    let templates = Templates::load(dir.path()).expect("syntax is fine");
    let err = render(&view(), &templates, &from()).expect_err("undefined variable");
    let message = format!("{err:#}");
    assert!(message.contains("digest.txt"), "{message}");
    assert!(message.contains("undefined"), "{message}");
}

#[test]
fn a_bad_recipient_or_message_id_is_an_error_not_a_panic() {
    let mut v = view();
    v.to = "not an address".to_string();
    let err = render(&v, &Templates::builtin(), &from()).expect_err("bad address");
    assert!(format!("{err:#}").contains("recipient address"));

    let mut v = view();
    v.message_id = "digest-12".to_string();
    let err = render(&v, &Templates::builtin(), &from()).expect_err("bad id");
    assert!(format!("{err:#}").contains("Message-ID"));
}

#[test]
fn subject_lines_are_one_line_even_with_odd_places() {
    let mut v = view();
    v.place = "Lào\r\nBcc: x@y.vn Cai".to_string();
    let mail_raw = formatted(&v, &Templates::builtin());
    let mail = parsed(&mail_raw);
    assert_eq!(
        header(&mail, "Subject"),
        "Bản tin Lào Bcc: x@y.vn Cai 28/11: 4 tin mới"
    );
    assert!(mail.headers.get_first_value("Bcc").is_none());
}

#[test]
fn templates_can_be_shared_between_tasks() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Templates>();
}

#[test]
fn an_eight_bit_digest_carries_the_same_parts_as_utf8_with_short_lines() {
    let mut stories = stories();
    // A summary long enough to need breaking (Vietnamese: most letters are 2–3 bytes).
    stories[0][0].summary = "Mưa lớn kéo dài gây sạt lở đất ở Bát Xát. ".repeat(40);
    let v = view_of(stories, chrono_tz::Asia::Ho_Chi_Minh);
    let seven = render(&v, &Templates::builtin(), &from())
        .expect("renders")
        .formatted();
    let eight = render_8bit(&v, &Templates::builtin(), &from())
        .expect("renders")
        .data
        .into_bytes();
    let (text7, html7) = parts(&parsed(&seven));
    let mail = parsed(&eight);
    for part in &mail.subparts {
        assert_eq!(
            part.headers
                .get_first_value("Content-Transfer-Encoding")
                .as_deref(),
            Some("8bit")
        );
    }
    let (text8, html8) = parts(&mail);
    // Same words; only where long lines break differs.
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(words(&text8), words(&text7));
    assert_eq!(words(&html8), words(&html7));
    assert!(text8.contains("Mưa lớn kéo dài gây sạt lở đất"));
    for line in eight.split(|b| *b == b'\n') {
        assert!(line.len() <= 999, "a line of {} octets", line.len());
    }
    assert!(
        eight.len() * 10 < seven.len() * 8,
        "8-bit is smaller: {} vs {}",
        eight.len(),
        seven.len()
    );
}

#[test]
fn a_line_that_cannot_be_broken_is_not_sent_as_eight_bit() {
    assert_eq!(eight_bit_lines("a\nb", 10).as_deref(), Some("a\r\nb\r\n"));
    assert_eq!(
        eight_bit_lines("một hai ba bốn\r\n", 9).as_deref(),
        Some("một hai\r\nba bốn\r\n")
    );
    assert_eq!(eight_bit_lines(&"đ".repeat(20), 10), None);
    assert_eq!(eight_bit_lines("bare\rreturn", 100), None);
    assert_eq!(eight_bit_lines("nul\0byte", 100), None);
    assert_eq!(
        eight_bit_lines("một hai ba bốn\n\nnăm", 9).as_deref(),
        Some("một hai\r\nba bốn\r\n\r\nnăm\r\n"),
        "LF-only text breaks the same way"
    );
}

#[test]
fn the_eight_bit_form_has_the_seven_bit_forms_headers_in_ascii() {
    let templates = Templates::builtin();
    let seven = formatted(&view(), &templates);
    let eight = render_8bit(&view(), &templates, &from()).expect("renders");
    let (a, b) = (parsed(&seven), parsed(eight.data.as_bytes()));
    for name in [
        "From",
        "To",
        "Subject",
        "Message-ID",
        "Date",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "MIME-Version",
    ] {
        assert_eq!(header(&b, name), header(&a, name), "{name}");
    }
    let head = &eight.data[..eight.data.find("\r\n\r\n").expect("a header section")];
    assert!(head.is_ascii(), "headers are RFC 2047-encoded: {head}");
    assert!(head.contains("Subject: =?utf-8?"), "{head}");
    assert_eq!(parts(&b), parts(&a), "same text and HTML");
    assert_eq!(
        eight
            .envelope
            .to()
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
        ["hoa@example.vn"]
    );
    assert_eq!(
        eight.envelope.from().map(|a| a.to_string()).as_deref(),
        Some("ban-tin@tin.example.vn")
    );
}

#[test]
fn a_body_with_an_unbreakable_line_goes_as_seven_bit_and_keeps_its_text() {
    let mut stories = stories();
    let long = "đ".repeat(600);
    stories[0][0].summary = long.clone();
    let v = view_of(stories, chrono_tz::Asia::Ho_Chi_Minh);
    let rendered = render_8bit(&v, &Templates::builtin(), &from()).expect("renders");
    assert!(rendered.data.is_ascii(), "the 7-bit form");
    let mail = parsed(rendered.data.as_bytes());
    let (text, html) = parts(&mail);
    assert!(text.contains(&long) && html.contains(&long));
    assert_eq!(header(&mail, "Message-ID"), v.message_id);
}
