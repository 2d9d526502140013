//! Benchmark for `QueryIndex`: 100,000 Vietnamese-like items (title + summary, ~60 syllables)
//! against 12,500, 25,000, 50,000 and 100,000 distinct topic queries, on one thread.
//!
//! Run with `cargo bench --bench match` (`QUERIES=50000` runs only that count; its query sets are
//! then generated on their own, so they are not the same draws as in a full run). Everything is
//! generated here from a deterministic PRNG: a syllable vocabulary (onsets × rimes × tones, canonical spelling from `fold_syllable`) ranked
//! by a Zipf law for the text; 20,000 capitalised names (places, people), Zipf-distributed in the
//! text too; 5% of items in NFD. Query syllables are drawn evenly from the vocabulary past its 40
//! most frequent syllables, because subscribers follow topics and names, not function words.
//! Two mixes of queries (see `Mix`): "broad", half of them single words, where every item matches
//! about 2% of all queries so the output grows with them; and "specific", names and phrases,
//! where matches are rare and what grows is only the index's own work. The smaller query sets
//! are prefixes of the largest, so rows differ only in how many queries there are.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tinbao::text::{FoldedText, MatchScratch, Query, QueryIndex, base_form, fold_syllable};
use unicode_normalization::UnicodeNormalization;

const ITEMS: usize = 100_000;
const QUERY_COUNTS: [usize; 4] = [12_500, 25_000, 50_000, 100_000];
const VOCABULARY: usize = 6_000;
const NAMES: usize = 20_000;
/// Query syllables skip this many of the most frequent syllables.
const SKIP_COMMON: usize = 40;

/// splitmix64.
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

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const ONSETS: &[&str] = &[
    "", "b", "c", "ch", "d", "đ", "g", "gi", "h", "k", "kh", "l", "m", "n", "ng", "nh", "ph", "qu",
    "r", "s", "t", "th", "tr", "v", "x",
];

const RIMES: &[&str] = &[
    "a", "ai", "ao", "au", "ay", "an", "ang", "anh", "ach", "at", "ac", "am", "ăn", "ăng", "ăt",
    "ăc", "âu", "ây", "ân", "âng", "ât", "âm", "e", "eo", "en", "em", "et", "ê", "êu", "ên", "ênh",
    "êt", "ich", "i", "ia", "iu", "in", "inh", "it", "im", "iêu", "iên", "iêt", "iêng", "o", "oa",
    "oe", "oi", "on", "ong", "oc", "ot", "oai", "oan", "oang", "oat", "oanh", "ô", "ôi", "ôn",
    "ông", "ôc", "ôt", "ơ", "ơi", "ơn", "ơt", "u", "ua", "ui", "un", "ung", "uc", "ut", "uy",
    "uân", "uât", "uôi", "uôn", "uông", "uôc", "uyên", "uyêt", "ư", "ưa", "ưu", "ưng", "ưc", "ươi",
    "ươn", "ương", "ươc", "y", "yêu", "yên",
];

const TONE_MARKS: [&str; 6] = ["", "\u{300}", "\u{301}", "\u{309}", "\u{303}", "\u{323}"];

/// Every plausible syllable in random order; the order is its frequency rank in generated text.
fn vocabulary(rng: &mut Rng) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    for onset in ONSETS {
        for rime in RIMES {
            let clash = (*onset == "qu" && rime.starts_with(['u', 'o']))
                || (*onset == "gi" && rime.starts_with('i'))
                || (matches!(*onset, "c" | "g") && rime.starts_with(['i', 'e', 'ê']))
                || (*onset == "k" && !rime.starts_with(['i', 'e', 'ê', 'y']));
            if clash {
                continue;
            }
            // Stops (-c, -ch, -t) take only the sắc and nặng tones.
            let stop = rime.ends_with(['c', 't', 'h']) && !rime.ends_with("nh");
            for (tone, mark) in TONE_MARKS.iter().enumerate() {
                if stop && !matches!(tone, 2 | 5) {
                    continue;
                }
                let mut chars = rime.chars();
                let first = chars.next().map(String::from).unwrap_or_default();
                let spelled = fold_syllable(&format!("{onset}{first}{mark}{}", chars.as_str()));
                if seen.insert(spelled.clone()) {
                    all.push(spelled);
                }
            }
        }
    }
    for i in (1..all.len()).rev() {
        let j = rng.below(i + 1);
        all.swap(i, j);
    }
    all.truncate(VOCABULARY);
    all
}

/// Draws vocabulary ranks with a Zipf law (exponent 1), as words are in running text.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Self { cumulative }
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let target = rng.unit() * total;
        self.cumulative
            .partition_point(|&c| c < target)
            .min(self.cumulative.len() - 1)
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

struct Corpus {
    vocabulary: Vec<String>,
    zipf: Zipf,
    /// Names (places, people, bodies) of two or three syllables, lower case.
    names: Vec<Vec<String>>,
    /// Names are Zipf-distributed in text too: a few are everywhere, most are rare.
    name_zipf: Zipf,
}

impl Corpus {
    fn new(rng: &mut Rng) -> Self {
        let vocabulary = vocabulary(rng);
        let zipf = Zipf::new(vocabulary.len());
        let names: Vec<Vec<String>> = (0..NAMES)
            .map(|_| {
                let len = 2 + rng.below(2);
                (0..len)
                    .map(|_| vocabulary[SKIP_COMMON + rng.below(2_000)].clone())
                    .collect()
            })
            .collect();
        let name_zipf = Zipf::new(names.len());
        Self {
            vocabulary,
            zipf,
            names,
            name_zipf,
        }
    }

    fn sentence(&self, rng: &mut Rng, words: usize, out: &mut String) {
        let mut written = 0;
        while written < words {
            if written > 0 {
                out.push_str(if rng.chance(8) { ", " } else { " " });
            }
            if rng.chance(6) {
                let name = &self.names[self.name_zipf.draw(rng)];
                let name: Vec<String> = name.iter().map(|w| capitalise(w)).collect();
                out.push_str(&name.join(" "));
                written += name.len();
            } else {
                let word = &self.vocabulary[self.zipf.draw(rng)];
                out.push_str(&if written == 0 {
                    capitalise(word)
                } else {
                    word.clone()
                });
                written += 1;
            }
        }
    }

    /// A title and a summary of a few sentences: about 60 syllables.
    fn item(&self, rng: &mut Rng) -> String {
        let mut text = String::new();
        let title = 8 + rng.below(7);
        self.sentence(rng, title, &mut text);
        text.push('\n');
        let mut words = 0;
        while words < 48 {
            let len = 8 + rng.below(12);
            self.sentence(rng, len, &mut text);
            text.push_str(". ");
            words += len;
        }
        if rng.chance(5) {
            // Some feeds send decomposed Unicode.
            text = text.nfd().collect();
        }
        text
    }

    fn topic_syllable(&self, rng: &mut Rng) -> &str {
        &self.vocabulary[SKIP_COMMON + rng.below(self.vocabulary.len() - SKIP_COMMON)]
    }

    fn term(&self, rng: &mut Rng) -> String {
        let word = self.topic_syllable(rng);
        if rng.chance(50) {
            base_form(word)
        } else {
            word.to_owned()
        }
    }

    fn name(&self, rng: &mut Rng) -> &[String] {
        &self.names[rng.below(self.names.len())]
    }

    fn capitalised_name(&self, rng: &mut Rng) -> String {
        let name: Vec<String> = self.name(rng).iter().map(|w| capitalise(w)).collect();
        name.join(" ")
    }

    fn query(&self, rng: &mut Rng, mix: Mix) -> String {
        let pair = |rng: &mut Rng| {
            format!(
                "\"{} {}\"",
                self.topic_syllable(rng),
                self.topic_syllable(rng)
            )
        };
        match mix {
            Mix::Broad => match rng.below(20) {
                0..=9 => self.term(rng),
                10..=12 => format!("{} {}", self.term(rng), self.term(rng)),
                13 => pair(rng),
                14 => format!("\"{}\"", self.name(rng).join(" ")),
                15 => format!("{} {}", self.capitalised_name(rng), self.term(rng)),
                16 | 17 => format!("{} OR {}", self.term(rng), self.term(rng)),
                18 => format!("{} -{}", self.term(rng), self.term(rng)),
                _ => format!("{} -\"{}\"", self.term(rng), self.name(rng).join(" ")),
            },
            Mix::Specific => match rng.below(10) {
                0..=2 => self.capitalised_name(rng),
                3 | 4 => format!("{} {}", self.capitalised_name(rng), self.term(rng)),
                5 | 6 => format!("{} {}", self.topic_syllable(rng), self.topic_syllable(rng)),
                7 => pair(rng),
                8 => format!(
                    "\"{}\" OR \"{}\"",
                    self.name(rng).join(" "),
                    self.name(rng).join(" ")
                ),
                _ => format!("{} -{}", self.capitalised_name(rng), self.term(rng)),
            },
        }
    }
}

/// What kind of topics the subscribers follow.
#[derive(Clone, Copy, Debug)]
enum Mix {
    /// Half single words (bare or marked), the rest pairs, phrases, names, OR and exclusions:
    /// an item matches about 2% of the queries, so the output itself grows with them.
    Broad,
    /// Names and phrases, pairs of words, a few OR and exclusions: matches are rare, so what
    /// grows is only the index's own work.
    Specific,
}

fn distinct_queries(corpus: &Corpus, rng: &mut Rng, mix: Mix, count: usize) -> Vec<Query> {
    let mut seen = HashSet::new();
    let mut queries = Vec::with_capacity(count);
    while queries.len() < count {
        let source = corpus.query(rng, mix);
        if !seen.insert(source.clone()) {
            continue;
        }
        match Query::parse(&source) {
            Ok(query) => queries.push(query),
            Err(e) => eprintln!("skipping generated query {source:?}: {e}"),
        }
    }
    queries
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The query counts to run: `QUERIES=50000` (comma-separated) picks some, else all four.
fn query_counts() -> Vec<usize> {
    std::env::var("QUERIES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| QUERY_COUNTS.to_vec())
}

/// This process's peak resident set (VmHWM, MB).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Prints one table row per query count: index build, matching all items, and the matches;
/// and a `RESULT` line per count for `bench/run`.
fn run(mix: Mix, items: &[String], queries: &[Query]) {
    println!();
    println!("{mix:?} topics, {} items, one thread:", items.len());
    println!(
        "{:>9}  {:>11}  {:>10}  {:>10}  {:>13}  {:>12}",
        "queries", "index build", "match", "items/s", "total matches", "matches/item"
    );
    for count in query_counts() {
        let count = count.min(queries.len());
        let build_started = Instant::now();
        let mut index = QueryIndex::new();
        for (id, query) in queries[..count].iter().enumerate() {
            index.insert(id as u32, query);
        }
        let build = build_started.elapsed();
        let match_started = Instant::now();
        let mut scratch = MatchScratch::default();
        let mut matched = Vec::new();
        let mut total = 0usize;
        for item in items {
            matched.clear();
            index.matches_into(item, &mut scratch, &mut matched);
            total += matched.len();
        }
        let elapsed = match_started.elapsed();
        println!(
            "{count:>9}  {:>9.2} s  {:>8.2} s  {:>10.0}  {total:>13}  {:>12.1}",
            seconds(build),
            seconds(elapsed),
            items.len() as f64 / seconds(elapsed),
            total as f64 / items.len() as f64
        );
        println!(
            "RESULT name=match_{} queries={count} items={} wall_s={:.3} build_s={:.3} throughput={:.0} unit=items/s rss_mb={:.1} matches={total}",
            format!("{mix:?}").to_lowercase(),
            items.len(),
            seconds(elapsed),
            seconds(build),
            items.len() as f64 / seconds(elapsed),
            peak_rss_mb()
        );
    }
}

fn main() {
    let mut rng = Rng(0x7469_6e62_616f);
    let started = Instant::now();
    let corpus = Corpus::new(&mut rng);
    let items: Vec<String> = (0..ITEMS).map(|_| corpus.item(&mut rng)).collect();
    let largest = query_counts().into_iter().max().unwrap_or(0);
    let broad = distinct_queries(&corpus, &mut rng, Mix::Broad, largest);
    let specific = distinct_queries(&corpus, &mut rng, Mix::Specific, largest);
    let syllables: usize = items.iter().map(|t| FoldedText::new(t).len()).sum();
    println!(
        "generated {ITEMS} items ({:.1} syllables each; vocabulary {}, {} names) and 2 x {largest} \
         distinct queries in {:.1} s",
        syllables as f64 / ITEMS as f64,
        corpus.vocabulary.len(),
        corpus.names.len(),
        seconds(started.elapsed())
    );
    let fold_started = Instant::now();
    let mut folded = FoldedText::default();
    for item in &items {
        folded.refill(item);
    }
    println!(
        "folding alone, no queries: {:.2} s",
        seconds(fold_started.elapsed())
    );
    run(Mix::Broad, &items, &broad);
    run(Mix::Specific, &items, &specific);
}
