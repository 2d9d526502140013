//! OPML subscription lists (what feed readers export): the feed outlines, each with the folder
//! it sits in. Pure: bytes in, outlines out. Every outline that cannot become a feed is a
//! refusal naming it (its place and title) and the reason; the caller writes nothing then.

use quick_xml::events::{BytesStart, Event};

/// One feed of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outline {
    /// `title`, else `text`, NFC; may be empty.
    pub title: String,
    pub url: url::Url,
    /// The title of the folder outline it sits in (the innermost), if any.
    pub folder: Option<String>,
    /// Where it is: "outline 3 (“Báo Lào Cai”)".
    pub place: String,
}

/// The feed outlines of an OPML document, or every refusal.
pub fn parse(bytes: &[u8]) -> Result<Vec<Outline>, Vec<String>> {
    let text = crate::reader::decode::decode_to_utf8(bytes, None);
    let mut reader = quick_xml::Reader::from_str(&text);
    reader.config_mut().trim_text(true);
    let mut out = Vec::new();
    let mut refusals = Vec::new();
    // The open outlines: Some(title) for a folder, None for a feed outline left open.
    let mut open: Vec<Option<String>> = Vec::new();
    let (mut seen_opml, mut seen_body, mut count) = (false, false, 0usize);
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                refusals.push(format!(
                    "not well-formed OPML at byte {}: {e}",
                    reader.error_position()
                ));
                return Err(refusals);
            }
        };
        match event {
            Event::Start(el) | Event::Empty(el)
                if matches!(el.local_name().into_inner(), "opml" | "body") =>
            {
                seen_opml |= el.local_name().into_inner() == "opml";
                seen_body |= el.local_name().into_inner() == "body";
            }
            Event::Start(el) if el.local_name().into_inner() == "outline" => {
                count += 1;
                let folder = feed_or_folder(&el, count, &open, &mut out, &mut refusals);
                open.push(folder);
            }
            Event::Empty(el) if el.local_name().into_inner() == "outline" => {
                count += 1;
                if let Some(title) = feed_or_folder(&el, count, &open, &mut out, &mut refusals) {
                    // An empty folder holds nothing to import; a bare outline with no URL is
                    // most likely a feed missing its address.
                    refusals.push(format!(
                        "outline {count} (“{title}”): no xmlUrl (a feed outline needs its feed's address)"
                    ));
                }
            }
            Event::End(el) if el.local_name().into_inner() == "outline" => {
                open.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !open.is_empty() {
        refusals.push(format!(
            "not well-formed OPML: {} outline(s) never closed",
            open.len()
        ));
    }
    if !seen_opml || !seen_body {
        refusals.push("not an OPML document (no <opml> with a <body>)".into());
    }
    if refusals.is_empty() {
        Ok(out)
    } else {
        Err(refusals)
    }
}

/// Reads one outline: a feed (pushed to `out`, returns None) or a folder (returns its title).
fn feed_or_folder(
    el: &BytesStart,
    n: usize,
    open: &[Option<String>],
    out: &mut Vec<Outline>,
    refusals: &mut Vec<String>,
) -> Option<String> {
    let attr = |name: &str| {
        el.attributes()
            .flatten()
            .find(|a| a.key.local_name().into_inner().eq_ignore_ascii_case(name))
            .and_then(|a| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .ok()
                    .map(|v| crate::text::nfc(v.trim()))
            })
            .filter(|v| !v.is_empty())
    };
    let title = attr("title").or_else(|| attr("text")).unwrap_or_default();
    let place = if title.is_empty() {
        format!("outline {n}")
    } else {
        format!("outline {n} (“{title}”)")
    };
    let Some(address) = attr("xmlUrl") else {
        return Some(title);
    };
    match url::Url::parse(&address) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            out.push(Outline {
                title,
                url,
                folder: open.iter().rev().find_map(|f| f.clone()),
                place,
            });
        }
        Ok(url) => refusals.push(format!(
            "{place}: xmlUrl {address:?} is not an http(s) address (scheme {:?})",
            url.scheme()
        )),
        Err(e) => refusals.push(format!("{place}: xmlUrl {address:?} is not a URL: {e}")),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeds_come_with_their_folder_and_refusals_name_the_outline() {
        let doc = r#"<?xml version="1.0"?><opml version="2.0"><head/><body>
            <outline text="Thời sự">
              <outline type="rss" text="Báo Lào Cai" xmlUrl="https://baolaocai.vn/rss/thoi-su.rss"/>
              <outline text="Nhóm con"><outline text="Yên Bái" xmlUrl="http://baoyenbai.com.vn/rss"/></outline>
            </outline>
            <outline text="Ngoài thư mục" xmlUrl="https://vnexpress.net/rss/thoi-su.rss"/>
        </body></opml>"#;
        let got = parse(doc.as_bytes()).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].folder.as_deref(), Some("Thời sự"));
        assert_eq!(got[1].folder.as_deref(), Some("Nhóm con"));
        assert_eq!(got[2].folder, None);
        assert_eq!(got[0].title, "Báo Lào Cai");

        let bad = r#"<opml version="2.0"><body>
            <outline text="A" xmlUrl="ftp://x.vn/rss"/>
            <outline text="Không có địa chỉ" type="rss"/>
            <outline text="C" xmlUrl="not a url"/>
        </body></opml>"#;
        let refusals = parse(bad.as_bytes()).unwrap_err();
        assert_eq!(refusals.len(), 3, "{refusals:?}");
        assert!(refusals[0].starts_with("outline 1 (“A”): xmlUrl \"ftp://x.vn/rss\""));
        assert!(refusals[1].starts_with("outline 2 (“Không có địa chỉ”): no xmlUrl"));
        assert!(refusals[2].starts_with("outline 3 (“C”)"));
    }

    #[test]
    fn broken_xml_and_other_documents_are_refused() {
        let e = parse(b"<opml><body><outline text='x'").unwrap_err();
        assert!(
            e[0].contains("not well-formed OPML") || e[0].contains("not an OPML"),
            "{e:?}"
        );
        let e = parse(b"<rss version='2.0'><channel/></rss>").unwrap_err();
        assert!(e[0].contains("not an OPML document"), "{e:?}");
    }
}
