//! Email addresses next to non-ASCII text. feed-rs splits a person field (`<author>`,
//! `<managingEditor>`, `<webMaster>`, `<dc:creator>`, `<itunes:author>`) into name and address
//! by slicing one byte either side of the address it finds, and panics when the character there
//! is more than one byte: `bbt@baolaocai.vn&nbsp;(Ban biên tập)` or `Thu Hà–thuha@…` cost the
//! whole document. A space between such an address and its neighbour gives it the one-byte
//! neighbour it expects; names are trimmed, so nothing read changes.

use std::borrow::Cow;

/// Bytes an address (with feed-rs's optional `mailto:` and delimiters) can be made of.
fn address_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._%+-@:<>[]()".contains(&b)
}

/// Whether the byte before an address stands for a one-byte character in the text feed-rs
/// reads: ASCII, and not the `;` that ends an entity reference (`&nbsp;`, `&#8211;`).
fn safe_before(b: u8) -> bool {
    b.is_ascii() && b != b';'
}

/// As `safe_before`, after an address: ASCII, and not the `&` that starts a reference.
fn safe_after(b: u8) -> bool {
    b.is_ascii() && b != b'&'
}

/// `text` with a space between every run of address bytes holding an `@` and a neighbour that
/// may be a multi-byte character; untouched (borrowed) when no address needs one.
pub fn space_addresses(text: &str) -> Cow<'_, str> {
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    // Byte offsets where a space goes, ascending.
    let mut spaces = Vec::new();
    let mut i = 0;
    while let Some(at) = bytes[i..].iter().position(|&b| b == b'@') {
        let at = i + at;
        let mut start = at;
        while start > 0 && address_byte(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && address_byte(bytes[end]) {
            end += 1;
        }
        if start > 0 && !safe_before(bytes[start - 1]) && spaces.last() != Some(&start) {
            spaces.push(start);
        }
        if end < bytes.len() && !safe_after(bytes[end]) {
            spaces.push(end);
        }
        i = end.max(at + 1);
    }
    if spaces.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + spaces.len());
    let mut from = 0;
    for at in spaces {
        // Runs are ASCII, so every offset recorded is a character boundary.
        out.push_str(&text[from..at]);
        out.push(' ');
        from = at;
    }
    out.push_str(&text[from..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::space_addresses;

    #[test]
    fn an_address_beside_a_multibyte_character_or_entity_gets_a_space() {
        assert_eq!(
            space_addresses("<author>bbt@baolaocai.vn\u{a0}(Ban biên tập)</author>"),
            "<author>bbt@baolaocai.vn \u{a0}(Ban biên tập)</author>"
        );
        assert_eq!(
            space_addresses("<dc:creator>Thu Hà–thuha@baolaocai.vn</dc:creator>"),
            "<dc:creator>Thu Hà– thuha@baolaocai.vn</dc:creator>"
        );
        assert_eq!(
            space_addresses("<author>Hà&#8211;ha@x.vn&nbsp;(BBT)</author>"),
            "<author>Hà&#8211; ha@x.vn &nbsp;(BBT)</author>"
        );
    }

    #[test]
    fn addresses_with_ascii_neighbours_and_text_without_one_are_untouched() {
        for text in [
            "<author>bbt@baolaocai.vn (Ban biên tập)</author>",
            "<link>https://x.vn/?u=a@b.vn</link><title>Lũ ở Bát Xát</title>",
            "không có địa chỉ nào",
        ] {
            assert!(matches!(
                space_addresses(text),
                std::borrow::Cow::Borrowed(_)
            ));
        }
    }
}
