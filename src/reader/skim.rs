//! Entry memory: what a poll remembers of each entry of the document it last stored, so that a
//! changed document (a paper's feed of 50 items with one new) is parsed for its new and edited
//! entries only. `entry_spans` finds the byte ranges of an XML feed's entries (RSS and RDF
//! `<item>`, Atom `<entry>`) without parsing the document; each entry is known by a digest of
//! its bytes, salted with everything else that decides what it becomes (the parser's version,
//! the operator's timezone, the feed's skip and keep rules). An entry whose digest is remembered
//! became exactly what is stored (or was skipped, or repeated another): cutting it out of the
//! text before feed-rs reads it loses nothing. The memory is a hint: missing, corrupt or salted
//! differently, it is ignored and the whole document is read.

use sha2::{Digest, Sha256};
use std::ops::Range;

/// What became of a remembered entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// An item stored (or already stored unchanged).
    Stored,
    /// Dropped by the feed's skip or keep rules.
    Skipped,
    /// A repeat of an earlier entry of the same document.
    Duplicate,
}

/// One remembered entry: its bytes' digest, and the digests of the identity key and canonical
/// link its item took (so a new entry reusing either is told apart as before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub digest: u64,
    pub key: u64,
    /// 0: no canonical link.
    pub link: u64,
    pub fate: Fate,
}

/// The entries of one stored document, under the salt they were read with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memory {
    pub salt: u64,
    pub entries: Vec<Seen>,
}

const VERSION: u8 = 1;
const RECORD: usize = 25;

impl Memory {
    /// The stored form: a version byte, the salt, then 25 bytes per entry.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + RECORD * self.entries.len());
        out.push(VERSION);
        out.extend_from_slice(&self.salt.to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.digest.to_le_bytes());
            out.extend_from_slice(&e.key.to_le_bytes());
            out.extend_from_slice(&e.link.to_le_bytes());
            out.push(match e.fate {
                Fate::Stored => 0,
                Fate::Skipped => 1,
                Fate::Duplicate => 2,
            });
        }
        out
    }

    /// The stored form read back; `None` for anything malformed (then the document is read
    /// whole, and a good memory replaces it).
    pub fn from_bytes(bytes: &[u8]) -> Option<Memory> {
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION || rest.len() < 8 || (rest.len() - 8) % RECORD != 0 {
            return None;
        }
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let entries = rest[8..]
            .chunks_exact(RECORD)
            .map(|r| {
                let fate = match r[24] {
                    0 => Fate::Stored,
                    1 => Fate::Skipped,
                    2 => Fate::Duplicate,
                    _ => return None,
                };
                Some(Seen {
                    digest: word(&r[..8]),
                    key: word(&r[8..16]),
                    link: word(&r[16..24]),
                    fate,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Memory {
            salt: word(&rest[..8]),
            entries,
        })
    }
}

/// A 64-bit digest of `parts`, stable across builds and machines (SHA-256, cut).
pub fn digest(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// The byte ranges of the document's complete entries, in order, from `<` of the start tag to
/// past `>` of the end tag. `None` when the text is not an XML document this can read safely:
/// not XML, a DOCTYPE with its own declarations (entities an entry may use), or markup left
/// open (a comment, a CDATA section, a tag). An entry cut off at the end is not a span.
pub fn entry_spans(text: &str) -> Option<Vec<Range<usize>>> {
    let b = text.as_bytes();
    let start = text.trim_start_matches('\u{feff}').len();
    let mut i = b.len() - start;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    if b.get(i) != Some(&b'<') {
        return None;
    }
    let mut spans = Vec::new();
    // The open entry: its element name, where it starts, and how deep the same name nests.
    let mut open: Option<(&str, usize, usize)> = None;
    while let Some(lt) = memchr(b'<', &b[i..]) {
        let at = i + lt;
        let rest = &text[at..];
        if rest.starts_with("<!--") {
            i = at + rest.find("-->")? + 3;
        } else if rest.starts_with("<![CDATA[") {
            i = at + rest.find("]]>")? + 3;
        } else if rest.starts_with("<?") {
            i = at + rest.find("?>")? + 2;
        } else if rest.starts_with("<!") {
            let end = rest.find('>')?;
            if rest[..end].contains('[') {
                return None;
            }
            i = at + end + 1;
        } else {
            let closing = rest.as_bytes().get(1) == Some(&b'/');
            let name_from = if closing { 2 } else { 1 };
            let name_len = rest[name_from..]
                .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
                .unwrap_or(rest.len() - name_from);
            let name = &rest[name_from..name_from + name_len];
            let end = at + tag_end(&rest[name_from + name_len..])? + name_from + name_len;
            let empty = !closing && b[end - 2] == b'/';
            match (&mut open, closing) {
                (None, false) if name == "item" || name == "entry" => {
                    if empty {
                        spans.push(at..end);
                    } else {
                        open = Some((name, at, 1));
                    }
                }
                (Some((open_name, _, depth)), false) if name == *open_name && !empty => {
                    *depth += 1;
                }
                (Some((open_name, from, depth)), true) if name == *open_name => {
                    *depth -= 1;
                    if *depth == 0 {
                        spans.push(*from..end);
                        open = None;
                    }
                }
                _ => {}
            }
            i = end;
        }
    }
    Some(spans)
}

/// Past the `>` that ends a tag whose name has been read: attribute values may hold `>`.
fn tag_end(rest: &str) -> Option<usize> {
    let mut quote = None;
    for (k, c) in rest.bytes().enumerate() {
        match (quote, c) {
            (None, b'"' | b'\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, b'>') => return Some(k + 1),
            (None, b'<') => return None,
            _ => {}
        }
    }
    None
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == needle)
}

/// `text` without the given spans (sorted, not overlapping).
pub fn cut(text: &str, spans: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for s in spans {
        out.push_str(&text[from..s.start]);
        from = s.end;
    }
    out.push_str(&text[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans_text(text: &str) -> Vec<&str> {
        entry_spans(text)
            .unwrap()
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn finds_rss_items_and_atom_entries_not_lookalikes() {
        let rss = r#"<?xml version="1.0"?><!-- <item>no</item> --><rss><channel><title>T</title>
            <item><title>Lào Cai</title><description><![CDATA[<item>x</item>]]></description></item>
            <items/><item a="1>2"><title>B</title></item><itemx>n</itemx></channel></rss>"#;
        assert_eq!(
            spans_text(rss),
            vec![
                "<item><title>Lào Cai</title><description><![CDATA[<item>x</item>]]></description></item>",
                r#"<item a="1>2"><title>B</title></item>"#
            ]
        );
        let atom = "\u{feff}<feed><entry><title>A</title><entry/></entry><entry/></feed>";
        assert_eq!(
            spans_text(atom),
            vec!["<entry><title>A</title><entry/></entry>", "<entry/>"]
        );
    }

    #[test]
    fn refuses_what_it_cannot_read_safely_and_skips_a_cut_entry() {
        assert!(entry_spans(r#"{"version":"https://jsonfeed.org/version/1.1"}"#).is_none());
        assert!(
            entry_spans("<!DOCTYPE rss [<!ENTITY a 'b'>]><rss><item>&a;</item></rss>").is_none()
        );
        assert!(entry_spans("<rss><item><!-- open").is_none());
        assert_eq!(
            spans_text("<rss><item>1</item><item><title>cut"),
            vec!["<item>1</item>"]
        );
        let text = "<rss><item>1</item><item>2</item><x/></rss>";
        let spans = entry_spans(text).unwrap();
        assert_eq!(cut(text, &spans[..1]), "<rss><item>2</item><x/></rss>");
    }

    #[test]
    fn memory_round_trips_and_refuses_corruption() {
        let m = Memory {
            salt: 7,
            entries: vec![
                Seen {
                    digest: 1,
                    key: 2,
                    link: 0,
                    fate: Fate::Skipped,
                },
                Seen {
                    digest: u64::MAX,
                    key: 3,
                    link: 4,
                    fate: Fate::Duplicate,
                },
            ],
        };
        let bytes = m.to_bytes();
        assert_eq!(Memory::from_bytes(&bytes), Some(m));
        assert_eq!(Memory::from_bytes(&bytes[..bytes.len() - 1]), None);
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() = 9;
        assert_eq!(Memory::from_bytes(&bad), None);
        assert_eq!(Memory::from_bytes(&[]), None);
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
    }
}
