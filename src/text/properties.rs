//! Property tests for the text module, over a deterministic generator of Vietnamese syllables:
//! the spelling of a text (NFC or NFD, upper or lower case, old or new tone placement) never
//! changes a result, and [`QueryIndex`] always agrees with each query's own `matches`.
//!
//! The generator is hand-made (onsets × rimes × tones, a splitmix PRNG with fixed seeds), so a
//! failure names its seed and reproduces exactly.

use unicode_normalization::UnicodeNormalization;

use super::{FoldedText, Query, QueryIndex, base_form, syllables};

/// splitmix64: small, fast, and good enough to draw test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const ONSETS: &[&str] = &[
    "", "b", "c", "ch", "d", "đ", "gh", "gi", "h", "k", "kh", "l", "m", "n", "ng", "ngh", "nh",
    "ph", "qu", "r", "s", "t", "th", "tr", "v", "x",
];

/// Rime, then the index (in the rime) of the vowel carrying the tone in old and in new style.
const RIMES: &[(&str, usize, usize)] = &[
    ("a", 0, 0),
    ("ai", 0, 0),
    ("ao", 0, 0),
    ("an", 0, 0),
    ("anh", 0, 0),
    ("ăn", 0, 0),
    ("âu", 0, 0),
    ("ây", 0, 0),
    ("e", 0, 0),
    ("eo", 0, 0),
    ("ê", 0, 0),
    ("ênh", 0, 0),
    ("i", 0, 0),
    ("ia", 0, 0),
    ("iêu", 1, 1),
    ("iên", 1, 1),
    ("o", 0, 0),
    ("oa", 0, 1),
    ("oe", 0, 1),
    ("oai", 1, 1),
    ("oan", 1, 1),
    ("ô", 0, 0),
    ("ôi", 0, 0),
    ("ông", 0, 0),
    ("ơ", 0, 0),
    ("ơi", 0, 0),
    ("u", 0, 0),
    ("ua", 0, 0),
    ("uy", 0, 1),
    ("uynh", 1, 1),
    ("uôn", 1, 1),
    ("ư", 0, 0),
    ("ưa", 0, 0),
    ("ươi", 1, 1),
    ("ương", 1, 1),
    ("y", 0, 0),
    ("yêu", 1, 1),
    ("uyên", 2, 2),
    ("ưu", 0, 0),
    ("ung", 0, 0),
    ("ach", 0, 0),
    ("ot", 0, 0),
];

const TONE_MARKS: [char; 6] = ['\0', '\u{300}', '\u{301}', '\u{309}', '\u{303}', '\u{323}'];

/// A Vietnamese syllable: onset, rime and tone, each an index into the tables above.
#[derive(Clone, Copy, Debug)]
struct Syl {
    onset: usize,
    rime: usize,
    tone: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Case {
    Lower,
    Capital,
    Upper,
}

/// How to spell a syllable.
#[derive(Clone, Copy, Debug)]
struct Style {
    new_placement: bool,
    decomposed: bool,
    case: Case,
}

const CANONICAL: Style = Style {
    new_placement: false,
    decomposed: false,
    case: Case::Lower,
};

impl Syl {
    fn random(rng: &mut Rng) -> Self {
        loop {
            let syl = Syl {
                onset: rng.below(ONSETS.len()),
                rime: rng.below(RIMES.len()),
                tone: rng.below(6),
            };
            let (onset, (rime, ..)) = (ONSETS[syl.onset], RIMES[syl.rime]);
            // "qu" and "gi" before their own vowel, or "gh"/"ngh" before a back vowel, are not Vietnamese.
            let clash = (onset == "qu" && rime.starts_with(['u', 'o']))
                || (onset == "gi" && rime.starts_with('i'))
                || (onset.ends_with("gh") && !rime.starts_with(['i', 'e', 'ê']));
            if !clash {
                return syl;
            }
        }
    }

    fn spell(self, style: Style) -> String {
        let (onset, (rime, old, new)) = (ONSETS[self.onset], RIMES[self.rime]);
        let toned = onset.chars().count() + if style.new_placement { new } else { old };
        let mut word = String::new();
        for (i, c) in onset.chars().chain(rime.chars()).enumerate() {
            word.push(c);
            if i == toned && self.tone > 0 {
                word.push(TONE_MARKS[self.tone]);
            }
        }
        let word = match style.case {
            Case::Lower => word,
            Case::Upper => word.to_uppercase(),
            Case::Capital => {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|first| first.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            }
        };
        if style.decomposed {
            word.nfd().collect()
        } else {
            word.nfc().collect()
        }
    }
}

fn random_style(rng: &mut Rng) -> Style {
    Style {
        new_placement: rng.chance(50),
        decomposed: rng.chance(50),
        case: *rng.pick(&[Case::Lower, Case::Capital, Case::Upper]),
    }
}

const SEPARATORS: &[&str] = &[
    " ",
    " ",
    " ",
    ", ",
    ". ",
    " - ",
    " (",
    ") ",
    "\u{AD}\u{200B}",
    "… ",
];

/// A text as syllables and the separators after each.
struct Text {
    words: Vec<Syl>,
    separators: Vec<&'static str>,
}

impl Text {
    fn random(rng: &mut Rng, pool: &[Syl]) -> Self {
        let len = 1 + rng.below(25);
        let words = (0..len).map(|_| *rng.pick(pool)).collect();
        let separators = (0..len).map(|_| *rng.pick(SEPARATORS)).collect();
        Text { words, separators }
    }

    fn spell(&self, mut style: impl FnMut() -> Style) -> String {
        self.words
            .iter()
            .zip(&self.separators)
            .map(|(w, sep)| w.spell(style()) + sep)
            .collect()
    }
}

/// A query over the pool; `style` spells each syllable, `phrase_style` those inside quotes.
fn random_query(rng: &mut Rng, pool: &[Syl], style: &mut dyn FnMut(Case) -> Style) -> String {
    let mut parts = Vec::new();
    let term = |rng: &mut Rng, style: &mut dyn FnMut(Case) -> Style| {
        let syl = *rng.pick(pool);
        match rng.below(3) {
            0 => base_form(&syl.spell(style(Case::Lower))),
            1 => syl.spell(style(Case::Lower)),
            _ => {
                // A quoted phrase of two to four syllables, some of them written bare.
                let case = *rng.pick(&[Case::Lower, Case::Capital, Case::Upper]);
                let mut words = vec![syl.spell(style(case))];
                for _ in 0..1 + rng.below(3) {
                    let word = rng.pick(pool).spell(style(case));
                    words.push(if rng.chance(30) {
                        base_form(&word)
                    } else {
                        word
                    });
                }
                format!("\"{}\"", words.join(" "))
            }
        }
    };
    for _ in 0..1 + rng.below(2) {
        match rng.below(4) {
            0 => parts.push(format!("{} OR {}", term(rng, style), term(rng, style))),
            1 => {
                let (a, b) = (*rng.pick(pool), *rng.pick(pool));
                parts.push(format!(
                    "{} {}",
                    a.spell(style(Case::Capital)),
                    b.spell(style(Case::Capital))
                ));
            }
            _ => parts.push(term(rng, style)),
        }
    }
    if rng.chance(30) {
        parts.push(format!("-{}", term(rng, style)));
    }
    parts.join(" ")
}

fn parse(source: &str) -> Query {
    Query::parse(source).unwrap_or_else(|e| panic!("{source:?}: {e}"))
}

fn pool(rng: &mut Rng, size: usize) -> Vec<Syl> {
    (0..size).map(|_| Syl::random(rng)).collect()
}

#[test]
fn canonical_spelling_is_the_old_tone_placement_in_nfc_lower_case() {
    for (onset, onset_text) in ONSETS.iter().enumerate() {
        for (rime, (rime_text, ..)) in RIMES.iter().enumerate() {
            if (*onset_text == "gi" && rime_text.starts_with('i'))
                || (*onset_text == "qu" && rime_text.starts_with(['u', 'o']))
            {
                continue;
            }
            for tone in 0..6 {
                let syl = Syl { onset, rime, tone };
                let canonical = syl.spell(CANONICAL);
                let expected = std::slice::from_ref(&canonical);
                assert_eq!(syllables(&canonical), expected);
                for new_placement in [false, true] {
                    for decomposed in [false, true] {
                        for case in [Case::Lower, Case::Capital, Case::Upper] {
                            let spelled = syl.spell(Style {
                                new_placement,
                                decomposed,
                                case,
                            });
                            assert_eq!(syllables(&spelled), expected, "{spelled:?}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn nfd_case_and_tone_placement_of_the_text_never_change_a_result() {
    for seed in 0..300 {
        let mut rng = Rng(seed);
        let pool = pool(&mut rng, 12);
        let query = parse(&random_query(&mut rng, &pool, &mut |case| Style {
            case,
            ..CANONICAL
        }));
        let text = Text::random(&mut rng, &pool);
        let canonical = text.spell(|| CANONICAL);
        let expected = query.matches(&canonical);
        for _ in 0..8 {
            let variant = text.spell(|| random_style(&mut rng));
            assert_eq!(
                FoldedText::new(&variant).iter().collect::<Vec<_>>(),
                FoldedText::new(&canonical).iter().collect::<Vec<_>>()
            );
            assert_eq!(
                query.matches(&variant),
                expected,
                "seed {seed}: {query} on {variant:?}"
            );
        }
    }
}

#[test]
fn nfd_and_tone_placement_of_the_query_never_change_a_result() {
    for seed in 0..300 {
        let mut rng = Rng(1_000 + seed);
        let pool = pool(&mut rng, 12);
        let text = Text::random(&mut rng, &pool).spell(|| CANONICAL);
        let query_seed = rng.next();
        let canonical = random_query(&mut Rng(query_seed), &pool, &mut |case| Style {
            case,
            ..CANONICAL
        });
        let expected = parse(&canonical).matches(&text);
        for variant_seed in 0..4 {
            let mut styles = Rng(variant_seed);
            let variant = random_query(&mut Rng(query_seed), &pool, &mut |case| Style {
                case,
                new_placement: styles.chance(50),
                decomposed: styles.chance(50),
            });
            assert_eq!(
                parse(&variant).matches(&text),
                expected,
                "seed {seed}: {variant:?} vs {canonical:?}"
            );
        }
    }
}

#[test]
fn case_inside_quotes_never_changes_a_result() {
    for seed in 0..300 {
        let mut rng = Rng(2_000 + seed);
        let pool = pool(&mut rng, 8);
        let text = Text::random(&mut rng, &pool).spell(|| random_style(&mut rng));
        let (a, b) = (*rng.pick(&pool), *rng.pick(&pool));
        let quoted = |case| {
            format!(
                "\"{} {}\"",
                a.spell(Style { case, ..CANONICAL }),
                b.spell(Style { case, ..CANONICAL })
            )
        };
        let expected = parse(&quoted(Case::Lower)).matches(&text);
        for case in [Case::Capital, Case::Upper] {
            assert_eq!(parse(&quoted(case)).matches(&text), expected, "seed {seed}");
        }
    }
}

#[test]
fn index_agrees_with_each_query_on_random_texts() {
    let mut rng = Rng(42);
    let pool = pool(&mut rng, 30);
    let mut styles = Rng(7);
    let sources: Vec<String> = (0..400)
        .map(|_| {
            random_query(&mut rng, &pool, &mut |case| Style {
                case,
                ..random_style(&mut styles)
            })
        })
        .collect();
    let mut queries: Vec<Query> = sources.iter().map(|s| parse(s)).collect();
    // Phrases cut from texts, so that long phrases match too.
    for _ in 0..200 {
        let text = Text::random(&mut rng, &pool);
        let start = rng.below(text.words.len());
        let len = (1 + rng.below(4)).min(text.words.len() - start);
        let words: Vec<String> = text.words[start..start + len]
            .iter()
            .map(|w| {
                if rng.chance(20) {
                    base_form(&w.spell(CANONICAL))
                } else {
                    w.spell(CANONICAL)
                }
            })
            .collect();
        queries.push(parse(&format!("\"{}\"", words.join(" "))));
    }
    let index: QueryIndex<usize> = queries.iter().cloned().enumerate().collect();
    let mut total = 0;
    for _ in 0..1_000 {
        let text = Text::random(&mut rng, &pool).spell(|| random_style(&mut rng));
        let folded = FoldedText::new(&text);
        let expected: Vec<usize> = (0..queries.len())
            .filter(|&i| queries[i].matches_folded(&folded))
            .collect();
        assert_eq!(index.matches(&text), expected, "{text:?}");
        total += expected.len();
    }
    assert!(
        total > 1_000,
        "the generator should make queries that match: {total}"
    );
}
