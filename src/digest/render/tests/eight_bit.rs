//! The 8-bit form (UTF-8 bodies for relays announcing 8BITMIME) against the 7-bit one.

use super::*;

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
