//! The chain's first step: a feed's bytes as UTF-8 text, whatever charset they were sent in
//! (byte-order mark, the bytes themselves, the HTTP header, the XML prolog, else a guess), with
//! XML declarations removed so the XML parser never decodes a second time.

use encoding_rs::Encoding;
use std::borrow::Cow;

/// Decodes a feed to UTF-8. Order of trust: a byte-order mark; then the bytes themselves if they
/// are valid UTF-8 (prologs often lie: "iso-8859-1" over UTF-8 text); else the HTTP charset, the
/// XML prolog's encoding, and finally a statistical guess
/// from the bytes (chardetng, as in Firefox). The XML declaration is removed so the parser does not decode a second time.
pub fn decode_to_utf8<'a>(bytes: &'a [u8], http_charset: Option<&str>) -> Cow<'a, str> {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        return Cow::Owned(strip_xml_declaration(&text).into_owned());
    }
    // UTF-16 without a BOM, recognised by how "<?" is spelled (XML 1.0 Appendix F).
    let sniffed = match bytes {
        [0, b'<', 0, b'?', ..] => Some(encoding_rs::UTF_16BE),
        [b'<', 0, b'?', 0, ..] => Some(encoding_rs::UTF_16LE),
        _ => None,
    };
    if let Some(enc) = sniffed {
        let (text, _) = enc.decode_without_bom_handling(bytes);
        return Cow::Owned(strip_xml_declaration(&text).into_owned());
    }
    let declared = declared_encoding(bytes);
    let label_enc = |l: &str| Encoding::for_label(l.trim().as_bytes());
    // UTF-16 without a BOM looks like valid UTF-8 full of NULs: trust the declaration there.
    let utf16 = [http_charset, declared.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(label_enc)
        .find(|e| *e == encoding_rs::UTF_16LE || *e == encoding_rs::UTF_16BE);
    if let Some(enc) = utf16 {
        let (text, _) = enc.decode_without_bom_handling(bytes);
        return Cow::Owned(strip_xml_declaration(&text).into_owned());
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return strip_xml_declaration(text);
    }
    // Nothing usable declared: guess from the bytes, as browsers do.
    let enc = [http_charset, declared.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(label_enc)
        .find(|e| *e != encoding_rs::UTF_8)
        .unwrap_or_else(|| {
            let mut detector = chardetng::EncodingDetector::new();
            detector.feed(bytes, true);
            detector.guess(None, true)
        });
    let (text, _) = enc.decode_without_bom_handling(bytes);
    Cow::Owned(strip_xml_declaration(&text).into_owned())
}

fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(512)];
    let head = String::from_utf8_lossy(head);
    let decl_end = head.find("?>")?;
    let decl = &head[..decl_end];
    let start = decl.find("<?xml")?;
    let decl = &decl[start..];
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    let end = value.find(quote)?;
    Some(value[..end].to_string())
}

/// Removes every XML declaration (`<?xml …?>`), wherever it stands: the text handed to the
/// parser is already UTF-8, and a declaration past the first bytes would make quick-xml switch
/// decoders mid-stream (it asserts, i.e. panics, on that).
fn strip_xml_declaration(text: &str) -> Cow<'_, str> {
    if !text.contains("<?xml") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<?xml") {
        let after = &rest[start + 5..];
        // `<?xml-stylesheet …?>` and other PIs whose target merely starts with "xml" stay.
        if !after.starts_with(|c: char| c.is_whitespace() || c == '?') {
            out.push_str(&rest[..start + 5]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..start]);
        rest = match after.find("?>") {
            Some(end) => &after[end + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    Cow::Owned(out)
}
