//! The MinHash signature of one item: what it is made of (weighted syllable shingles), how it is
//! hashed (fixed seeds, the same on every machine and run), how it is stored (bytes with a format
//! version) and how two signatures compare (estimated Jaccard similarity).
//!
//! Why weighted unigrams rather than bigrams: outlets reword a story but keep its facts. What two
//! reports of one event share is mostly numbers (dates, counts, prices) and names (people,
//! communes, companies); what two reports of *different* events of one kind share is the template
//! around them ("Khoảng … ngày …, xe … lao xuống vực …"). So function words are dropped, a number
//! counts four times and a name (a capitalised syllable inside a sentence) twice: a weighted
//! Jaccard, computed by MinHash over copies `(syllable, 0..weight)`. Syllables are compared in
//! their base form (no diacritics), so `thủy`/`thuỷ`/`thuy` written by different outlets agree.
//! Bigrams and trigrams were measured too and separate worse (see `THRESHOLD` in the parent).
//!
//! Why 256 values of 16 bits: the estimate's standard error is `sqrt(s(1 - s) / HASHES)`, 0.043
//! at `s` = 0.4 with 128 hashes, as wide as the gap between the hardest labelled pairs; 256
//! hashes bring it to 0.031. Keeping 16 bits of each minimum stores them in the 512 bytes that
//! 128 `u32`s would take; two different minima then agree by chance about `n / 131,072` of the
//! time for items of `n` shingles (0.0005 for a typical 70), a bias far below that error.

use crate::text::base_form;
use unicode_normalization::char::is_combining_mark;

/// Number of hash functions, i.e. of values in a signature.
pub const HASHES: usize = 256;

/// Format of [`Signature::to_bytes`]; bump it when shingling or hashing changes, so signatures
/// stored by an older build read back as `None` (recompute) instead of comparing as garbage.
const FORMAT: u8 = 1;

/// How many copies of a number syllable enter the shingle set.
const NUMBER_WEIGHT: u8 = 4;
/// How many copies of a name syllable enter the shingle set.
const NAME_WEIGHT: u8 = 2;

/// Vietnamese function words and the most frequent words of provincial news, in base form.
/// They are in every report of every kind, so they only raise the similarity of unrelated items.
const STOP_WORDS: [&str; 56] = [
    "va", "cua", "cac", "nhung", "la", "da", "duoc", "trong", "voi", "cho", "co", "mot", "khi",
    "tai", "ve", "den", "tu", "nay", "o", "thi", "de", "nhu", "sau", "tren", "theo", "bi", "ra",
    "vao", "khong", "cung", "hon", "se", "dang", "vua", "lai", "rat", "ma", "hay", "hoac", "neu",
    "vi", "do", "qua", "nhieu", "nhat", "nguoi", "nam", "ngay", "huyen", "tinh", "xa", "biet",
    "khoang", "nhan", "dan", "gom",
];

/// A MinHash signature: for each of [`HASHES`] fixed hash functions, the smallest hash of any
/// weighted shingle of the item.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    mins: Box<[u16; HASHES]>,
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({:04x}{:04x}…)", self.mins[0], self.mins[1])
    }
}

/// The signature of an item's title and plain text (HTML already removed).
pub fn signature(title: &str, text: &str) -> Signature {
    Signature::from_shingles(&shingles(title, text))
}

impl Signature {
    /// MinHash over already-hashed shingles.
    pub(super) fn from_shingles(shingles: &[u64]) -> Signature {
        let mut mins = Box::new([u16::MAX; HASHES]);
        for &shingle in shingles {
            for (min, &(a, b)) in mins.iter_mut().zip(SEEDS.iter()) {
                *min = (*min).min(permute(shingle, a, b));
            }
        }
        Signature { mins }
    }

    /// Estimated Jaccard similarity of the two shingle sets, in `0.0..=1.0`. An item with no
    /// syllable at all resembles nothing (two empty items are not one story).
    pub fn similarity(&self, other: &Signature) -> f64 {
        if self.is_empty() || other.is_empty() {
            return 0.0;
        }
        similarity(&self.mins, &other.mins)
    }

    /// Whether the item had no shingle (every slot still holds the initial maximum).
    pub fn is_empty(&self) -> bool {
        self.mins.iter().all(|&m| m == u16::MAX)
    }

    /// The values, for LSH banding.
    pub(super) fn values(&self) -> &[u16; HASHES] {
        &self.mins
    }

    /// One format byte, then the values as little-endian `u16`s (513 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(1 + 2 * HASHES);
        bytes.push(FORMAT);
        for value in self.mins.iter() {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        bytes
    }

    /// Reads what [`Signature::to_bytes`] wrote; `None` for another length or format version.
    pub fn from_bytes(bytes: &[u8]) -> Option<Signature> {
        let (&format, values) = bytes.split_first()?;
        if format != FORMAT || values.len() != 2 * HASHES {
            return None;
        }
        let mut mins = Box::new([0u16; HASHES]);
        for (min, chunk) in mins.iter_mut().zip(values.chunks_exact(2)) {
            *min = u16::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(Signature { mins })
    }
}

/// [`Signature::similarity`] of two non-empty signatures' values: the share of the hash
/// functions they agree on.
pub(super) fn similarity(a: &[u16; HASHES], b: &[u16; HASHES]) -> f64 {
    let equal = a.iter().zip(b.iter()).filter(|(a, b)| a == b).count();
    equal as f64 / HASHES as f64
}

/// Hash function `i` of the family: multiply-add-shift, a universal family on well-mixed input.
fn permute(shingle: u64, a: u64, b: u64) -> u16 {
    (shingle.wrapping_mul(a).wrapping_add(b) >> 48) as u16
}

/// The `(a, b)` pairs of the hash family: a fixed splitmix64 stream, `a` forced odd.
static SEEDS: [(u64, u64); HASHES] = seeds();

const fn seeds() -> [(u64, u64); HASHES] {
    let mut out = [(0u64, 0u64); HASHES];
    // "tinbao" in ASCII: any constant works, but it must never change (stored signatures).
    let mut state: u64 = 0x7469_6e62_616f;
    let mut i = 0;
    while i < HASHES {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let a = mix(state) | 1;
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        out[i] = (a, mix(state));
        i += 1;
    }
    out
}

/// The splitmix64 finaliser.
pub(super) const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a of a syllable followed by its copy number, then mixed: stable across platforms.
fn shingle_hash(syllable: &str, copy: u8) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in syllable.bytes().chain([0xff, copy]) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// The weighted shingles of an item, hashed, sorted and without repeats.
pub(super) fn shingles(title: &str, text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for part in [title, text] {
        for token in tokens(part) {
            let weight = match token.kind {
                Kind::Number => NUMBER_WEIGHT,
                Kind::Name => NAME_WEIGHT,
                Kind::Word if STOP_WORDS.contains(&token.base.as_str()) => 0,
                Kind::Word => 1,
            };
            out.extend((0..weight).map(|copy| shingle_hash(&token.base, copy)));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Starts with a digit: `26/11`, `4,2`, `21.000`, `15h`.
    Number,
    /// Capitalised but not first in its sentence: `Bát Xát`, `UBND`.
    Name,
    Word,
}

#[derive(Debug)]
struct Token {
    /// Base form for words, the digits with `,` written as `.` for numbers.
    base: String,
    kind: Kind,
}

/// Splits text into syllables like `text::syllables` does (runs of letters and digits), except
/// that a number keeps its inner `.`, `,` and `/` (`4,2`, `21.000`, `26/11` are one token: their
/// parts alone would match any other number), and each token is classified.
fn tokens(text: &str) -> Vec<Token> {
    // A text written in capitals (some outlets' titles) has no names to tell apart.
    let letters = text.chars().filter(|c| c.is_alphabetic());
    let upper = text.chars().filter(|c| c.is_uppercase()).count();
    let shouting = upper * 2 > letters.count();
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut sentence_start = true;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if !c.is_alphanumeric() {
            if matches!(c, '.' | '!' | '?' | ':' | ';' | '"' | '“' | '(' | '[') {
                sentence_start = true;
            }
            i += 1;
            continue;
        }
        let end = token_end(&chars, i);
        let word: String = chars[i..end].iter().collect();
        let kind = if c.is_ascii_digit() {
            Kind::Number
        } else if c.is_uppercase() && !sentence_start && !shouting {
            Kind::Name
        } else {
            Kind::Word
        };
        let base = match kind {
            Kind::Number => word.to_lowercase().replace(',', "."),
            _ => base_form(&word),
        };
        out.push(Token { base, kind });
        sentence_start = false;
        i = end;
    }
    out
}

/// End of the token starting at `start`: letters, digits and combining marks; in a number also a
/// `.`, `,` or `/` between two digits.
fn token_end(chars: &[char], start: usize) -> usize {
    let number = chars.get(start).is_some_and(char::is_ascii_digit);
    let mut i = start;
    while let Some(&c) = chars.get(i) {
        let inner_separator = number
            && matches!(c, '.' | ',' | '/')
            && i > start
            && chars.get(i - 1).is_some_and(char::is_ascii_digit)
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if c.is_alphanumeric() || is_combining_mark(c) || inner_separator {
            i += 1;
        } else {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(String, Kind)> {
        tokens(text).into_iter().map(|t| (t.base, t.kind)).collect()
    }

    #[test]
    fn numbers_keep_their_separators_and_names_are_capitalised_inside_a_sentence() {
        let got = kinds("Sáng 27/11, Fansipan xuống âm 1,5 độ C. Giá 21.000 đồng");
        let want = [
            ("sang", Kind::Word),
            ("27/11", Kind::Number),
            ("fansipan", Kind::Name),
            ("xuong", Kind::Word),
            ("am", Kind::Word),
            ("1.5", Kind::Number),
            ("do", Kind::Word),
            ("c", Kind::Name),
            ("gia", Kind::Word),
            ("21.000", Kind::Number),
            ("dong", Kind::Word),
        ];
        let want: Vec<(String, Kind)> = want.iter().map(|(s, k)| (s.to_string(), *k)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_title_in_capitals_has_no_names() {
        assert!(
            kinds("LŨ QUÉT Ở BÁT XÁT")
                .iter()
                .all(|(_, k)| *k == Kind::Word)
        );
    }

    #[test]
    fn old_and_new_tone_placement_give_one_signature() {
        let a = signature("Thuỷ điện Lai Châu xả lũ", "Hoà Bình, sức khoẻ");
        let b = signature("Thủy điện Lai Châu xả lũ", "Hòa Bình, sức khỏe");
        assert_eq!(a, b);
    }

    #[test]
    fn empty_items_resemble_nothing() {
        let empty = signature("", "  ");
        assert!(empty.is_empty());
        assert_eq!(empty.similarity(&empty), 0.0);
    }

    #[test]
    fn signatures_are_the_same_on_every_run() {
        // Pinned values: a change here invalidates every stored signature (bump FORMAT).
        let sig = signature("Lũ quét ở Bát Xát", "1 người tử vong");
        assert_eq!(&sig.values()[..3], &PINNED);
    }
    const PINNED: [u16; 3] = [11_262, 2_206, 5_373];
}
