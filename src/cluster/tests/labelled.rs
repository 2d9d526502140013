//! The threshold against labelled pairs: every pair of sample items (ground truth from
//! `samples/README.md`) and the written pairs of `tests/data/story_pairs.tsv`.

use super::*;
use crate::cluster::lsh::{BANDS, band_key};
use std::collections::HashMap;

/// Where a labelled pair comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Two items of the sample feeds, labelled by the README.
    Samples,
    /// A pair of story_pairs.tsv, written before the threshold was chosen.
    Written,
    /// The last block of story_pairs.tsv, written after a first choice (see the sweep).
    HeldOut,
}

struct Pair {
    same: bool,
    name: String,
    source: Source,
    a: Signature,
    b: Signature,
    /// Exact weighted Jaccard of the shingle sets, for the sweep.
    jaccard: f64,
}

fn pair(same: bool, name: String, a: (&str, &str), b: (&str, &str)) -> Pair {
    let (sa, sb) = (signature::shingles(a.0, a.1), signature::shingles(b.0, b.1));
    let common = sa.iter().filter(|s| sb.binary_search(s).is_ok()).count();
    let union = sa.len() + sb.len() - common;
    Pair {
        same,
        name,
        source: Source::Samples,
        a: signature(a.0, a.1),
        b: signature(b.0, b.1),
        jaccard: if union == 0 {
            0.0
        } else {
            common as f64 / union as f64
        },
    }
}

/// Every pair of sample items (same story per the README, else different: decoys and unrelated
/// items alike), then the written pairs.
fn labelled_pairs() -> Vec<Pair> {
    let items = sample_items();
    let story: HashMap<&str, usize> = SAMPLE_STORIES
        .iter()
        .enumerate()
        .flat_map(|(n, keys)| keys.iter().map(move |k| (*k, n)))
        .collect();
    let mut pairs = Vec::new();
    for (i, a) in items.iter().enumerate() {
        for b in &items[i + 1..] {
            let same = matches!(
                (story.get(a.key.as_str()), story.get(b.key.as_str())),
                (Some(x), Some(y)) if x == y
            );
            let name = format!("{} ~ {}", a.key, b.key);
            pairs.push(pair(same, name, (&a.title, &a.text), (&b.title, &b.text)));
        }
    }
    let path = format!("{}/tests/data/story_pairs.tsv", env!("CARGO_MANIFEST_DIR"));
    let tsv = std::fs::read_to_string(&path).expect("story_pairs.tsv readable");
    let mut source = Source::Written;
    for (n, line) in tsv.lines().enumerate() {
        if line.starts_with("# Held out") {
            source = Source::HeldOut;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [label, title_a, text_a, title_b, text_b] = fields[..] else {
            panic!("story_pairs.tsv:{}: expected 5 tab-separated fields", n + 1);
        };
        let same = match label {
            "same" => true,
            "different" => false,
            other => panic!("story_pairs.tsv:{}: unknown label {other:?}", n + 1),
        };
        let name = format!("story_pairs.tsv:{}", n + 1);
        let pair = pair(same, name, (title_a, text_a), (title_b, text_b));
        pairs.push(Pair { source, ..pair });
    }
    pairs
}

/// Counts of `similarity >= threshold` against the labels.
#[derive(Debug, Default)]
struct Confusion {
    true_pos: usize,
    false_pos: usize,
    false_neg: usize,
}

impl Confusion {
    fn of<'p>(
        pairs: impl IntoIterator<Item = &'p Pair>,
        threshold: f64,
        similarity: impl Fn(&Pair) -> f64,
    ) -> Confusion {
        let mut c = Confusion::default();
        for p in pairs {
            match (p.same, similarity(p) >= threshold) {
                (true, true) => c.true_pos += 1,
                (false, true) => c.false_pos += 1,
                (true, false) => c.false_neg += 1,
                (false, false) => {}
            }
        }
        c
    }

    fn precision(&self) -> f64 {
        self.true_pos as f64 / (self.true_pos + self.false_pos).max(1) as f64
    }

    fn recall(&self) -> f64 {
        self.true_pos as f64 / (self.true_pos + self.false_neg).max(1) as f64
    }
}

/// MinHash similarity over the first `k` hashes only: a signature of `k` hashes.
fn prefix_similarity(a: &Signature, b: &Signature, k: usize) -> f64 {
    let equal = a.values()[..k]
        .iter()
        .zip(&b.values()[..k])
        .filter(|(x, y)| x == y)
        .count();
    equal as f64 / k as f64
}

// The sweep (`threshold_sweep_is_printed`) over the 1,602 labelled pairs: 1,540 pairs of sample
// items (10 same story) and 62 written pairs (31 same story). False positives / false negatives of
// `similarity >= t`, for the exact weighted Jaccard of the shingle sets and for MinHash with the
// first 64, 128 and all 256 hashes of a signature:
//
//   t      exact   k=64   k=128  k=256        t      exact   k=64   k=128  k=256
//   0.30    5/0    18/1    9/0    8/0         0.40    1/1     1/1    0/1    1/1
//   0.32    4/0     8/1    8/1    6/0         0.41    0/1     1/2    0/1    1/1
//   0.34    2/0     6/1    4/1    3/0         0.42    0/2     1/2    0/1    0/1
//   0.35    2/0     3/1    3/1    3/0         0.43    0/2     1/2    0/1    0/1
//   0.36    2/0     3/1    3/1    3/0         0.44    0/2     1/3    0/2    0/2
//   0.37    2/0     3/1    1/1    1/0         0.45    0/2     1/3    0/3    0/3
//   0.38    2/0     2/1    1/1    1/1         0.46    0/2     0/3    0/3    0/3
//   0.39    1/0     2/1    0/1    1/1         0.48    0/4     0/7    0/3    0/3
//
// No threshold separates the pairs exactly, even without MinHash's noise: a written same-story
// pair (a market fire, tsv line 4, exact 0.394) sits below two template decoys (heritage listings
// 0.403, fuel prices 0.385). 128 and 256 hashes both get down to one error; 256 are kept because
// their estimate strays half as far from the exact value (root mean square error 0.019 against
// 0.029 with 128, over the 220 pairs above 0.1), which counts for pairs that are not in this set,
// and because 256 values of 16 bits take the space of 128 of 32. THRESHOLD was first set to 0.40
// on the pairs before the held-out block; those 12 pairs then gave one false positive at 0.40
// (the two heritage listings, 0.414) and no false negative, so it was raised to 0.42, the lower
// end of the band with the fewest errors (0.42-0.43: no false positive, one false negative),
// since merging two stories hides one from readers while a missed merge only shows a story twice.
// The closest same-story pair above it is at 0.434 (a forest fire), the closest different-story
// pair below it at 0.414.

#[test]
fn threshold_separates_labelled_pairs() {
    let pairs = labelled_pairs();
    let judge = |p: &Pair| p.a.similarity(&p.b);
    for source in [Source::Samples, Source::Written, Source::HeldOut] {
        let subset: Vec<&Pair> = pairs.iter().filter(|p| p.source == source).collect();
        let c = Confusion::of(subset.iter().copied(), THRESHOLD, judge);
        eprintln!("  {source:?}: {} pairs, {c:?}", subset.len());
    }
    let c = Confusion::of(pairs.iter(), THRESHOLD, judge);
    let same = pairs.iter().filter(|p| p.same).count();
    eprintln!(
        "THRESHOLD {THRESHOLD}: {} pairs ({same} same story): precision {:.3}, recall {:.3}",
        pairs.len(),
        c.precision(),
        c.recall()
    );
    for p in pairs.iter().filter(|p| p.same != (judge(p) >= THRESHOLD)) {
        let s = judge(p);
        eprintln!("  misjudged: {} (same story: {}) at {s:.3}", p.name, p.same);
    }
    assert!(c.precision() >= 0.95, "precision {:.3}", c.precision());
    assert!(c.recall() >= 0.9, "recall {:.3}", c.recall());
}

#[test]
fn threshold_sweep_is_printed() {
    let pairs = labelled_pairs();
    eprintln!("t      exact   k=64   k=128  k=256   (false positives/false negatives)");
    for step in 20..=50 {
        let t = f64::from(step) / 100.0;
        let cell = |similarity: &dyn Fn(&Pair) -> f64| {
            let c = Confusion::of(pairs.iter(), t, similarity);
            format!("{}/{}", c.false_pos, c.false_neg)
        };
        eprintln!(
            "{t:.2}  {:>5}  {:>5}  {:>5}  {:>5}",
            cell(&|p| p.jaccard),
            cell(&|p| prefix_similarity(&p.a, &p.b, 64)),
            cell(&|p| prefix_similarity(&p.a, &p.b, 128)),
            cell(&|p| prefix_similarity(&p.a, &p.b, 256)),
        );
    }
    let share_a_band =
        |p: &Pair| (0..BANDS).any(|b| band_key(p.a.values(), b) == band_key(p.b.values(), b));
    let different = pairs.iter().filter(|p| !p.same).count();
    let met = pairs.iter().filter(|p| !p.same && share_a_band(p)).count();
    let missed = pairs.iter().filter(|p| p.same && !share_a_band(p)).count();
    eprintln!("LSH: {met} of {different} different-story pairs share a band, {missed} same do not");
    let mut sorted: Vec<&Pair> = pairs.iter().collect();
    sorted.sort_by(|x, y| y.a.similarity(&y.b).total_cmp(&x.a.similarity(&x.b)));
    let highest_different = sorted.iter().filter(|p| !p.same).take(6);
    let lowest_same = sorted.iter().rev().filter(|p| p.same).take(6);
    for p in highest_different.chain(lowest_same) {
        let s = p.a.similarity(&p.b);
        eprintln!(
            "  {} same={} minhash {s:.3} exact {:.3}",
            p.name, p.same, p.jaccard
        );
    }
}

#[test]
fn sample_decoys_stay_below_the_threshold() {
    let items = sample_items();
    let sig: HashMap<&str, Signature> = items
        .iter()
        .map(|i| (i.key.as_str(), signature(&i.title, &i.text)))
        .collect();
    for (a, b) in SAMPLE_DECOYS {
        let s = sig[a].similarity(&sig[b]);
        assert!(s < THRESHOLD, "{a} ~ {b}: {s:.3}");
    }
}
