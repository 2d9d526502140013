//! Vietnamese folding: splitting text into syllables and bringing each syllable to one canonical
//! spelling (NFC, lower case, `Đ`→`đ`, tone mark on one agreed vowel), plus its base form without
//! any diacritic (`đảng` → `dang`).
//!
//! It owns only spelling. It knows nothing about queries, HTML or storage; matching and
//! near-duplicate clustering build on the two forms it gives each syllable.
//!
//! Canonical tone placement follows the "old" style that most Vietnamese text uses: in an open
//! syllable of two vowels the tone sits on the first (`hòa`, `thủy`, `khỏe`, `múa`); a vowel with
//! a quality mark (ă â ê ô ơ ư) always carries it (`người`, `thuế`); a closed syllable puts it on
//! the last vowel (`hoàn`, `huỳnh`); three open vowels put it on the middle one (`ngoài`); `qu`
//! and `gi` count as consonants (`quý`, `giữa`). Only a syllable with one tone mark and one run of
//! vowels is re-placed, so foreign words pass through untouched apart from NFC and case.

use std::sync::LazyLock;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// The twelve Vietnamese vowel letters, then `đ`; an index into this array names a base letter.
const BASES: [char; 13] = [
    'a', 'ă', 'â', 'e', 'ê', 'i', 'o', 'ô', 'ơ', 'u', 'ư', 'y', 'đ',
];
/// `BASES` with every diacritic removed.
const STRIPPED: [char; 13] = [
    'a', 'a', 'a', 'e', 'e', 'i', 'o', 'o', 'o', 'u', 'u', 'y', 'd',
];
/// Combining tone marks, in the order of tone numbers 1..=5: huyền, sắc, hỏi, ngã, nặng.
const TONE_MARKS: [char; 5] = ['\u{300}', '\u{301}', '\u{309}', '\u{303}', '\u{323}'];
/// Index of `đ` in `BASES`; indices below it are vowels.
const D_BAR: u8 = 12;
/// Marks a letter that is not one of `BASES`.
const OTHER: u8 = u8::MAX;

/// First code point covered by the precomposed-letter table.
const TABLE_START: u32 = 0xC0;
/// One past the last code point covered (the Latin Extended Additional block ends at U+1EFF).
const TABLE_END: u32 = 0x1F00;

/// Precomposed Vietnamese letters, both cases: `(base index + 1) << 3 | tone`, or 0 if the code
/// point is no Vietnamese letter; `encode[base][tone]` goes back to the lower-case letter.
struct Tables {
    decode: Vec<u16>,
    encode: [[char; 6]; 12],
}

static TABLES: LazyLock<Tables> = LazyLock::new(build_tables);

fn build_tables() -> Tables {
    let mut decode = vec![0u16; (TABLE_END - TABLE_START) as usize];
    let mut encode = [['a'; 6]; 12];
    let mut set = |c: char, entry: u16| {
        let code = c as u32;
        if (TABLE_START..TABLE_END).contains(&code) {
            decode[(code - TABLE_START) as usize] = entry;
        }
    };
    for (vowel, row) in encode.iter_mut().enumerate() {
        let base = BASES[vowel];
        row[0] = base;
        for (i, mark) in TONE_MARKS.iter().enumerate() {
            row[i + 1] = precomposed(base, *mark).unwrap_or(base);
        }
        for (tone, lower) in row.iter().enumerate() {
            if tone > 0 && *lower == base {
                continue;
            }
            let entry = (((vowel as u16) + 1) << 3) | tone as u16;
            set(*lower, entry);
            lower.to_uppercase().for_each(|upper| set(upper, entry));
        }
    }
    let d_bar = (u16::from(D_BAR) + 1) << 3;
    // Ð/ð (eth) and Ɖ/ɖ (African D) look like Đ/đ and turn up in Vietnamese text typed on
    // foreign layouts.
    for c in ['đ', 'Đ', 'ð', 'Ð', 'Ɖ', 'ɖ'] {
        set(c, d_bar);
    }
    Tables { decode, encode }
}

/// The single code point that `base` followed by combining `mark` normalises to, if there is one.
/// (Not `compose`: `ệ` is `ẹ` + circumflex, not `ê` + dot below, so only NFC's reordering finds it.)
fn precomposed(base: char, mark: char) -> Option<char> {
    let mut composed = [base, mark].into_iter().nfc();
    match (composed.next(), composed.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// One letter of a syllable being folded: lower case, without its tone.
#[derive(Clone, Copy, Debug)]
struct Letter {
    ch: char,
    base: u8,
    tone: u8,
}

impl Letter {
    fn is_vowel(self) -> bool {
        self.base < D_BAR
    }

    fn has_quality_mark(self) -> bool {
        matches!(
            BASES.get(usize::from(self.base)),
            Some('ă' | 'â' | 'ê' | 'ô' | 'ơ' | 'ư')
        )
    }
}

/// The base letter and tone of a lower- or upper-case Vietnamese letter, if `c` is one.
fn decode(c: char) -> Option<(u8, u8)> {
    if c.is_ascii() {
        let base = match c.to_ascii_lowercase() {
            'a' => 0,
            'e' => 3,
            'i' => 5,
            'o' => 6,
            'u' => 9,
            'y' => 11,
            _ => return None,
        };
        return Some((base, 0));
    }
    let code = c as u32;
    if !(TABLE_START..TABLE_END).contains(&code) {
        return None;
    }
    let entry = TABLES.decode[(code - TABLE_START) as usize];
    (entry != 0).then(|| (((entry >> 3) - 1) as u8, (entry & 7) as u8))
}

fn letter(c: char) -> Letter {
    match decode(c) {
        Some((base, tone)) => Letter {
            ch: BASES[usize::from(base)],
            base,
            tone,
        },
        None => Letter {
            ch: c,
            base: OTHER,
            tone: 0,
        },
    }
}

/// Characters that may sit inside a word without splitting it and are dropped (soft hyphen,
/// zero-width joiners, word joiner, byte-order mark).
fn is_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{AD}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
    )
}

/// Which vowel of `letters` should carry the tone, if the syllable is shaped like a Vietnamese one
/// (exactly one run of vowels).
fn tone_position(letters: &[Letter]) -> Option<usize> {
    let start = letters.iter().position(|l| l.is_vowel())?;
    let end = start + letters[start..].iter().take_while(|l| l.is_vowel()).count();
    if letters[end..].iter().any(|l| l.is_vowel()) {
        return None;
    }
    let mut first = start;
    if end - start > 1 && start == 1 {
        // In the onsets "qu" and "gi" before another vowel, the u and i belong to the consonant.
        if let ('q', 'u') | ('g', 'i') = (letters[0].ch, letters[1].ch) {
            first += 1;
        }
    }
    if let Some(marked) = (first..end).rev().find(|&i| letters[i].has_quality_mark()) {
        return Some(marked);
    }
    let closed = end < letters.len();
    Some(match (end - first, closed) {
        (1, _) => first,
        (_, true) => end - 1,
        (2, false) => first,
        (_, false) => first + 1,
    })
}

/// Moves a single tone mark to its canonical vowel; leaves anything else alone.
fn place_tone(letters: &mut [Letter]) {
    let mut toned = letters
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_vowel() && l.tone != 0);
    let (Some((from, _)), None) = (toned.next(), toned.next()) else {
        return;
    };
    if let Some(to) = tone_position(letters) {
        let tone = letters[from].tone;
        letters[from].tone = 0;
        letters[to].tone = tone;
    }
}

/// Scratch space for folding, reused across syllables to avoid allocating per syllable.
#[derive(Clone, Debug, Default)]
struct Folder {
    raw: Vec<char>,
    letters: Vec<Letter>,
    spill: String,
}

impl Folder {
    /// Folds `self.raw` (one syllable) onto the end of `out`; returns where its base form starts
    /// in `out`, or `None` when the base form equals the folded form.
    fn fold_raw(&mut self, out: &mut String) -> Option<usize> {
        if self.raw.iter().all(char::is_ascii) {
            out.extend(self.raw.iter().map(char::to_ascii_lowercase));
            return None;
        }
        self.read_letters();
        place_tone(&mut self.letters);
        let folded_start = out.len();
        self.write_folded(out);
        let base_start = out.len();
        let foreign = self
            .letters
            .iter()
            .any(|l| l.base == OTHER && !l.ch.is_ascii());
        if !foreign {
            // Only Vietnamese letters: the base form differs exactly when one carries a mark.
            let marked = self
                .letters
                .iter()
                .any(|l| l.tone != 0 || l.has_quality_mark() || l.base == D_BAR);
            if !marked {
                return None;
            }
            self.write_base(out);
            return Some(base_start);
        }
        self.write_base(out);
        if out[folded_start..base_start] == out[base_start..] {
            out.truncate(base_start);
            return None;
        }
        Some(base_start)
    }

    fn read_letters(&mut self) {
        self.letters.clear();
        let composed = self
            .raw
            .iter()
            .all(|&c| c.is_ascii() || decode(c).is_some());
        if composed {
            self.letters.extend(self.raw.iter().map(|&c| letter(c)));
        } else {
            let letters = &mut self.letters;
            for c in self.raw.iter().copied().nfc() {
                letters.extend(c.to_lowercase().map(letter));
            }
        }
        for l in &mut self.letters {
            if l.base == OTHER && l.ch.is_ascii() {
                l.ch = l.ch.to_ascii_lowercase();
            }
        }
    }

    fn write_folded(&mut self, out: &mut String) {
        let encode = &TABLES.encode;
        let spelled = self
            .letters
            .iter()
            .map(|l| match encode.get(usize::from(l.base)) {
                Some(row) => row[usize::from(l.tone)],
                None => l.ch,
            });
        if self
            .letters
            .iter()
            .any(|l| l.base == OTHER && !l.ch.is_ascii())
        {
            // Lower-casing a foreign letter may leave a sequence that is not NFC.
            self.spill.clear();
            self.spill.extend(spelled);
            out.extend(self.spill.nfc());
        } else {
            out.extend(spelled);
        }
    }

    fn write_base(&self, out: &mut String) {
        for l in &self.letters {
            match STRIPPED.get(usize::from(l.base)) {
                Some(&plain) => out.push(plain),
                None if l.ch.is_ascii() => out.push(l.ch),
                None => decompose_canonical(l.ch, |c| {
                    if !is_combining_mark(c) {
                        out.push(c);
                    }
                }),
            }
        }
    }
}

/// Where one syllable lives inside [`FoldedText`]'s buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    /// End of the folded form, and start of the base form when there is one.
    mid: usize,
    end: usize,
}

/// A text split into folded syllables, each with its base form, in one buffer.
///
/// Build one with [`FoldedText::new`], or keep one and [`FoldedText::refill`] it to fold many
/// texts without allocating per text.
#[derive(Clone, Debug, Default)]
pub struct FoldedText {
    buf: String,
    spans: Vec<Span>,
    folder: Folder,
}

impl FoldedText {
    /// Splits `text` into syllables (maximal runs of letters and digits) and folds each.
    pub fn new(text: &str) -> Self {
        let mut folded = Self::default();
        folded.refill(text);
        folded
    }

    /// Replaces the contents with the syllables of `text`, reusing the buffers.
    pub fn refill(&mut self, text: &str) {
        self.buf.clear();
        self.spans.clear();
        self.folder.raw.clear();
        for c in text.chars() {
            let in_word = !self.folder.raw.is_empty();
            // Vietnamese letters are found in the fold table before Unicode's slower tables.
            let letter = c.is_ascii_alphanumeric()
                || (!c.is_ascii() && (decode(c).is_some() || c.is_alphanumeric()));
            if letter || (in_word && is_combining_mark(c)) {
                self.folder.raw.push(c);
            } else if in_word && !is_ignorable(c) {
                self.flush();
            }
        }
        if !self.folder.raw.is_empty() {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let start = self.buf.len();
        let base = self.folder.fold_raw(&mut self.buf);
        let end = self.buf.len();
        self.spans.push(Span {
            start,
            mid: base.unwrap_or(end),
            end,
        });
        self.folder.raw.clear();
    }

    /// Number of syllables.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the text has no syllable at all.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The folded form of syllable `i` (`Đảng` → `đảng`, `hoà` → `hòa`).
    pub fn folded(&self, i: usize) -> &str {
        self.spans.get(i).map_or("", |s| &self.buf[s.start..s.mid])
    }

    /// The base form of syllable `i`: folded, then every diacritic removed and `đ` → `d`.
    pub fn base(&self, i: usize) -> &str {
        match self.spans.get(i) {
            Some(s) if s.mid == s.end => &self.buf[s.start..s.mid],
            Some(s) => &self.buf[s.mid..s.end],
            None => "",
        }
    }

    /// Whether syllable `i` carries no diacritic at all (its folded and base forms agree).
    pub fn is_unmarked(&self, i: usize) -> bool {
        self.spans.get(i).is_some_and(|s| s.mid == s.end)
    }

    /// The syllables in order, as `(folded, base)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..self.len()).map(|i| (self.folded(i), self.base(i)))
    }
}

/// The folded syllables of `text`, in order: `"Đảng bộ HOÀ BÌNH"` → `["đảng", "bộ", "hòa", "bình"]`.
pub fn syllables(text: &str) -> Vec<String> {
    let folded = FoldedText::new(text);
    (0..folded.len())
        .map(|i| folded.folded(i).to_owned())
        .collect()
}

/// Folds `word` as one syllable, whatever it contains: `"Thuỷ"` → `"thủy"`.
pub fn fold_syllable(word: &str) -> String {
    let mut folder = Folder {
        raw: word.chars().filter(|&c| !is_ignorable(c)).collect(),
        ..Folder::default()
    };
    let mut out = String::new();
    if let Some(base) = folder.fold_raw(&mut out) {
        out.truncate(base);
    }
    out
}

/// The base form of `word` folded as one syllable: `"Đảng"` → `"dang"`, `"lũ"` → `"lu"`.
pub fn base_form(word: &str) -> String {
    let mut folder = Folder {
        raw: word.chars().filter(|&c| !is_ignorable(c)).collect(),
        ..Folder::default()
    };
    let mut out = String::new();
    if let Some(base) = folder.fold_raw(&mut out) {
        out.drain(..base);
    }
    out
}

#[cfg(test)]
mod tests;
