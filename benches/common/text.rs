//! Varied Vietnamese-like item text for the benchmarks: a vocabulary of real-looking syllables
//! (onset × rime × tone, NFC), drawn with a Zipf law as words are in running text; capitalised
//! names of two or three syllables; and numbers of the story (dates, money, households), as
//! reports have. Unlike the 36 phrases of `WORDS`, two unrelated items share little beyond the
//! most frequent syllables, as two unrelated news reports do.
//!
//! One item in ten is a story its sibling feed (feeds 2k and 2k+1) carries too, with the same
//! text: the near-duplicates clustering exists to find.

use std::sync::OnceLock;
use unicode_normalization::UnicodeNormalization;

const ONSETS: &[&str] = &[
    "", "b", "c", "ch", "d", "đ", "g", "gi", "h", "k", "kh", "l", "m", "n", "ng", "nh", "ph", "qu",
    "r", "s", "t", "th", "tr", "v", "x",
];

const RIMES: &[&str] = &[
    "a", "ai", "ao", "au", "ay", "an", "ang", "anh", "ach", "at", "ac", "am", "ăn", "ăng", "ăt",
    "âu", "ây", "ân", "âng", "ât", "âm", "e", "eo", "en", "em", "et", "ê", "êu", "ên", "ênh", "êt",
    "ich", "i", "ia", "iu", "in", "inh", "it", "im", "iêu", "iên", "iêt", "iêng", "o", "oa", "oi",
    "on", "ong", "oc", "ot", "oan", "oang", "oanh", "ô", "ôi", "ôn", "ông", "ôc", "ôt", "ơ", "ơi",
    "ơn", "u", "ua", "ui", "un", "ung", "uc", "ut", "uy", "uân", "uôi", "uôn", "uông", "uôc",
    "uyên", "ư", "ưa", "ưu", "ưng", "ưc", "ươi", "ươn", "ương", "ươc",
];

/// Combining tone marks: none, grave, acute, hook, tilde, dot below.
const TONES: [&str; 6] = ["", "\u{300}", "\u{301}", "\u{309}", "\u{303}", "\u{323}"];

/// Syllables in the vocabulary, and names made of them.
const VOCABULARY: usize = 4_000;
const NAMES: usize = 3_000;

struct Lexicon {
    syllables: Vec<String>,
    names: Vec<String>,
}

fn lexicon() -> &'static Lexicon {
    static LEXICON: OnceLock<Lexicon> = OnceLock::new();
    LEXICON.get_or_init(|| {
        let mut rng = Rng(0x7469_6e62_616f_0001);
        let mut syllables = Vec::new();
        for onset in ONSETS {
            for rime in RIMES {
                for tone in TONES {
                    // The tone mark goes on the rime's first vowel; NFC composes it.
                    let mut chars = rime.chars();
                    let first = chars.next().map(String::from).unwrap_or_default();
                    let s: String = format!("{onset}{first}{tone}{}", chars.as_str())
                        .nfc()
                        .collect();
                    syllables.push(s);
                }
            }
        }
        for i in (1..syllables.len()).rev() {
            syllables.swap(i, rng.below(i + 1));
        }
        syllables.truncate(VOCABULARY);
        let names = (0..NAMES)
            .map(|_| {
                let len = 2 + rng.below(2);
                (0..len)
                    .map(|_| capitalise(&syllables[50 + rng.below(2_000)]))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        Lexicon { syllables, names }
    })
}

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A rank in `0..n` with probability about 1 / (rank + 1): log-uniform, a Zipf law of
    /// exponent 1.
    fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (((n as f64 + 1.0).powf(u)) as usize)
            .saturating_sub(1)
            .min(n - 1)
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Item `i` of feed `feed`: a title of 8–14 syllables and a body of about 60, as HTML-free text.
pub fn item(feed: usize, i: usize) -> (String, String) {
    let pair = (feed / 2) as u64;
    let shared = Rng((pair << 32 | i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).next() % 10;
    let seed = if shared == 0 {
        (pair << 33) | (1 << 32) | i as u64
    } else {
        ((feed as u64) << 33) | i as u64
    };
    let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
    rng.next();
    let lex = lexicon();
    let sentence = |rng: &mut Rng, words: usize| {
        let mut out: Vec<String> = Vec::with_capacity(words);
        while out.len() < words {
            match rng.below(100) {
                0..=5 => out.push(lex.names[rng.zipf(NAMES)].clone()),
                6..=8 => out.push(format!("{}", 2 + rng.below(2_000))),
                _ => out.push(lex.syllables[rng.zipf(VOCABULARY)].clone()),
            }
        }
        let mut s = out.join(" ");
        if let Some(first) = s.chars().next() {
            s.replace_range(..first.len_utf8(), &first.to_uppercase().to_string());
        }
        s
    };
    let title_len = 8 + rng.below(7);
    let title = sentence(&mut rng, title_len);
    let mut body = Vec::new();
    let mut words = 0;
    while words < 60 {
        let len = 8 + rng.below(12);
        body.push(sentence(&mut rng, len) + ".");
        words += len;
    }
    (title, body.join(" "))
}
