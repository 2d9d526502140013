//! Matching one text against many queries at once: every subscriber's query compiled into one
//! inverted index, so that matching an item costs about the length of its text (plus its
//! matches), not the number of queries.
//!
//! It owns only speed. The meaning of a query is `matcher`'s, and the result for every text must
//! equal running each query's own [`Query::matches`]; the tests check that on random queries.
//!
//! How: every distinct query syllable becomes an atom, a marked one under its folded spelling and
//! a bare one under its base form (it matches every diacritic variant). Each query is filed under
//! one atom per alternative of its most selective required clause. A text's syllables are looked
//! up once each (a marked syllable twice: exactly, and by its base), the queries filed under the
//! atoms present become candidates, and only candidates are verified, against the atoms. A query
//! that is one term (or an OR of terms) needs no verifying: being filed under a present atom is
//! matching.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::LazyLock;

use super::fold::{FoldedText, base_form};
use super::query::{Clause, Phrase, Query, QuerySyllable};

/// No atom: a text syllable that no query mentions.
const NONE: u32 = u32::MAX;
/// Posting flag: the query is filed under one atom only, so it cannot turn up twice.
const ONCE: u32 = 1 << 31;
/// Posting flag: the query is a term or an OR of terms, so a candidate is a match.
const TRIVIAL: u32 = 1 << 30;
/// The query number inside a posting.
const NUMBER: u32 = TRIVIAL - 1;

/// Syllables so frequent in Vietnamese news that a query is better filed under another one.
const COMMON: &str = "của và các có là được trong cho những người một với không đã này để năm \
    theo tại về ra đến khi cũng từ nhiều sẽ đó như phải làm thì ông bà anh chị em đi vào lại nhà \
    nước việt nam ngày công trên sau nhưng mà hơn đang vì hiện số hội động tỉnh huyện xã thành phố \
    tháng nhân dân bộ quan kinh tế phát triển chính trị văn hóa giáo dục thể mới lên qua đây nên \
    nhất hai ba trung tâm học sinh trường đồng cao quốc gia tin báo điều việc cùng hành đạo sự tổ \
    chức xây dựng đầu tư giá thị an toàn hoạt cơ sở kết quả tiếp thực chỉ ngoài hay rất họ chúng \
    ta tôi trước bị bằng lần thời gian khu vực đơn vị tác lý đảng ủy ban";

static COMMON_FOLDED: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| COMMON.split_whitespace().collect());
static COMMON_BASES: LazyLock<HashSet<String>> =
    LazyLock::new(|| COMMON.split_whitespace().map(base_form).collect());

/// How costly a syllable is as a filing key: roughly, how often texts will contain it.
fn key_cost(syllable: &QuerySyllable) -> u64 {
    let common = if syllable.unmarked {
        COMMON_BASES.contains(&syllable.folded)
    } else {
        COMMON_FOLDED.contains(syllable.folded.as_str())
    };
    let letters = syllable.folded.chars().count().min(8) as u64;
    let cost = if common { 1000 } else { 20 } + (8 - letters);
    // A bare syllable is found through every diacritic variant.
    if syllable.unmarked { cost * 3 } else { cost }
}

/// The syllable of `phrase` to file it under, and its cost.
fn cheapest_syllable(phrase: &Phrase) -> Option<(u64, &QuerySyllable)> {
    phrase
        .syllables
        .iter()
        .map(|s| (key_cost(s), s))
        .min_by_key(|(cost, _)| *cost)
}

/// A compiled query: `clauses` indexes `QueryIndex::clauses`.
#[derive(Clone, Debug)]
struct Compiled<Id> {
    id: Id,
    clauses: Range<usize>,
}

/// A compiled clause: `phrases` indexes `QueryIndex::phrases`, each a range of `QueryIndex::atoms`.
#[derive(Clone, Debug)]
struct CompiledClause {
    exclude: bool,
    phrases: Range<usize>,
}

/// Many queries compiled into one inverted index; see the module documentation.
#[derive(Clone, Debug)]
pub struct QueryIndex<Id = u64> {
    marked: HashMap<String, u32>,
    bare: HashMap<String, u32>,
    /// For each atom, the queries filed under it: query number | `ONCE` | `TRIVIAL`.
    postings: Vec<Vec<u32>>,
    queries: Vec<Compiled<Id>>,
    clauses: Vec<CompiledClause>,
    phrases: Vec<Range<usize>>,
    atoms: Vec<u32>,
}

/// Reusable buffers for [`QueryIndex::matches_into`], so that matching a stream of texts
/// allocates nothing per text once warm. One scratch serves any index.
#[derive(Clone, Debug, Default)]
pub struct MatchScratch {
    text: FoldedText,
    /// For each text syllable, its marked atom and its bare atom (or `NONE`).
    at: Vec<[u32; 2]>,
    /// Distinct atoms present in the text.
    present: Vec<u32>,
    /// `seen[atom] == epoch` when the atom is present in the current text.
    seen: Vec<u32>,
    epoch: u32,
    /// Queries filed more than once, to deduplicate before verifying.
    candidates: Vec<u32>,
    /// Numbers of the matching queries.
    hits: Vec<u32>,
}

impl MatchScratch {
    fn is_present(&self, atom: u32) -> bool {
        self.seen.get(atom as usize) == Some(&self.epoch)
    }

    /// Starts a new text for an index of `atoms` atoms.
    fn next_epoch(&mut self, atoms: usize) {
        if self.seen.len() < atoms {
            self.seen.resize(atoms, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.seen.fill(0);
            self.epoch = 1;
        }
    }
}

impl<Id> Default for QueryIndex<Id> {
    fn default() -> Self {
        Self {
            marked: HashMap::new(),
            bare: HashMap::new(),
            postings: Vec::new(),
            queries: Vec::new(),
            clauses: Vec::new(),
            phrases: Vec::new(),
            atoms: Vec::new(),
        }
    }
}

impl<Id: Copy> FromIterator<(Id, Query)> for QueryIndex<Id> {
    fn from_iter<I: IntoIterator<Item = (Id, Query)>>(queries: I) -> Self {
        let mut index = Self::default();
        for (id, query) in queries {
            index.insert(id, &query);
        }
        index
    }
}

impl<Id: Copy> QueryIndex<Id> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of queries inserted.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether no query was inserted.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Adds `query` under `id`. Ids need not be unique; a repeated id is reported once per insert.
    ///
    /// # Panics
    /// Past 2^30 (about a billion) queries, which no process could hold anyway.
    pub fn insert(&mut self, id: Id, query: &Query) {
        let number = u32::try_from(self.queries.len())
            .ok()
            .filter(|&n| n <= NUMBER);
        let Some(number) = number else {
            panic!("a QueryIndex holds at most {NUMBER} queries");
        };
        let first_clause = self.clauses.len();
        for clause in query.clauses() {
            let (exclude, phrases) = match clause {
                Clause::Require(alternatives) => (false, alternatives.as_slice()),
                Clause::Exclude(phrase) => (true, std::slice::from_ref(phrase)),
            };
            let first_phrase = self.phrases.len();
            for phrase in phrases {
                let start = self.atoms.len();
                for syllable in &phrase.syllables {
                    let atom = self.atom(syllable);
                    self.atoms.push(atom);
                }
                self.phrases.push(start..self.atoms.len());
            }
            self.clauses.push(CompiledClause {
                exclude,
                phrases: first_phrase..self.phrases.len(),
            });
        }
        self.queries.push(Compiled {
            id,
            clauses: first_clause..self.clauses.len(),
        });
        self.file(number, query);
    }

    /// The atom of a query syllable, created on first sight.
    fn atom(&mut self, syllable: &QuerySyllable) -> u32 {
        let map = if syllable.unmarked {
            &mut self.bare
        } else {
            &mut self.marked
        };
        if let Some(&atom) = map.get(&syllable.folded) {
            return atom;
        }
        let atom = u32::try_from(self.postings.len()).unwrap_or(NONE);
        map.insert(syllable.folded.clone(), atom);
        self.postings.push(Vec::new());
        atom
    }

    /// Files query `number` under one atom per alternative of its cheapest required clause.
    fn file(&mut self, number: u32, query: &Query) {
        let required = query.clauses().iter().filter_map(|clause| match clause {
            Clause::Require(alternatives) => Some(alternatives),
            Clause::Exclude(_) => None,
        });
        let cost = |alternatives: &&Vec<Phrase>| -> u64 {
            alternatives
                .iter()
                .filter_map(cheapest_syllable)
                .map(|(cost, _)| cost)
                .sum()
        };
        let Some(keys) = required.min_by_key(cost) else {
            return;
        };
        let trivial = query.clauses().len() == 1 && keys.iter().all(|p| p.syllables.len() == 1);
        let mut entry = number;
        if keys.len() == 1 {
            entry |= ONCE;
        }
        if trivial {
            entry |= TRIVIAL;
        }
        for (_, syllable) in keys.iter().filter_map(cheapest_syllable) {
            let atom = self.atom(syllable);
            if let Some(posting) = self.postings.get_mut(atom as usize)
                && posting.last() != Some(&entry)
            {
                posting.push(entry);
            }
        }
    }

    /// The ids of the queries that match plain `text`, in insertion order.
    pub fn matches(&self, text: &str) -> Vec<Id> {
        let mut scratch = MatchScratch::default();
        self.find(text, &mut scratch);
        scratch.hits.sort_unstable();
        self.ids(&scratch.hits).collect()
    }

    /// Appends to `out` the ids of the queries that match plain `text`, in no particular order,
    /// reusing `scratch`: the fast path for matching a stream of items.
    pub fn matches_into(&self, text: &str, scratch: &mut MatchScratch, out: &mut Vec<Id>) {
        self.find(text, scratch);
        out.extend(self.ids(&scratch.hits));
    }

    fn ids<'a>(&'a self, numbers: &'a [u32]) -> impl Iterator<Item = Id> + 'a {
        numbers
            .iter()
            .filter_map(|&n| self.queries.get(n as usize))
            .map(|q| q.id)
    }

    /// Fills `scratch.hits` with the numbers of the queries matching `text`.
    fn find(&self, text: &str, scratch: &mut MatchScratch) {
        scratch.text.refill(text);
        self.locate_atoms(scratch);
        scratch.hits.clear();
        scratch.candidates.clear();
        for i in 0..scratch.present.len() {
            let posting = self
                .postings
                .get(scratch.present[i] as usize)
                .map_or(&[][..], Vec::as_slice);
            for &entry in posting {
                let number = entry & NUMBER;
                match (entry & ONCE != 0, entry & TRIVIAL != 0) {
                    (true, true) => scratch.hits.push(number),
                    (true, false) => {
                        if self.verify(number, scratch) {
                            scratch.hits.push(number);
                        }
                    }
                    (false, _) => scratch.candidates.push(entry),
                }
            }
        }
        let mut candidates = std::mem::take(&mut scratch.candidates);
        candidates.sort_unstable();
        candidates.dedup();
        for &entry in &candidates {
            let number = entry & NUMBER;
            if entry & TRIVIAL != 0 || self.verify(number, scratch) {
                scratch.hits.push(number);
            }
        }
        scratch.candidates = candidates;
    }

    /// Fills `scratch.at`, `scratch.present` and `scratch.seen` from `scratch.text`.
    fn locate_atoms(&self, scratch: &mut MatchScratch) {
        scratch.next_epoch(self.postings.len());
        let MatchScratch {
            text,
            at,
            present,
            seen,
            epoch,
            ..
        } = scratch;
        at.clear();
        present.clear();
        for i in 0..text.len() {
            let marked = if text.is_unmarked(i) {
                None
            } else {
                self.marked.get(text.folded(i))
            };
            let bare = self.bare.get(text.base(i));
            let pair = [
                marked.copied().unwrap_or(NONE),
                bare.copied().unwrap_or(NONE),
            ];
            for atom in pair {
                if let Some(mark) = seen.get_mut(atom as usize)
                    && *mark != *epoch
                {
                    *mark = *epoch;
                    present.push(atom);
                }
            }
            at.push(pair);
        }
    }

    fn verify(&self, number: u32, scratch: &MatchScratch) -> bool {
        let Some(query) = self.queries.get(number as usize) else {
            return false;
        };
        self.clauses
            .get(query.clauses.clone())
            .unwrap_or_default()
            .iter()
            .all(|clause| {
                let phrases = self.phrases.get(clause.phrases.clone()).unwrap_or_default();
                let occurs = phrases.iter().any(|range| {
                    let atoms = self.atoms.get(range.clone()).unwrap_or_default();
                    occurs(atoms, scratch)
                });
                occurs != clause.exclude
            })
    }
}

/// Whether the atoms of a phrase occur consecutively in the scratch's text.
fn occurs(atoms: &[u32], scratch: &MatchScratch) -> bool {
    if !atoms.iter().all(|&atom| scratch.is_present(atom)) {
        return false;
    }
    atoms.len() <= 1
        || scratch.at.windows(atoms.len()).any(|window| {
            window
                .iter()
                .zip(atoms)
                .all(|(pair, atom)| pair.contains(atom))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(queries: &[&str]) -> QueryIndex<usize> {
        queries
            .iter()
            .enumerate()
            .map(|(id, q)| (id, Query::parse(q).unwrap_or_else(|e| panic!("{q:?}: {e}"))))
            .collect()
    }

    #[test]
    fn index_finds_every_matching_query_in_insertion_order() {
        let index = index(&[
            "lũ",
            "Lào Cai",
            "bão OR lũ",
            "lao",
            "lũ -quét",
            "đảng",
            "Hà",
        ]);
        assert_eq!(index.matches("Lũ quét ở Lào Cai"), [0, 1, 2, 3]);
        assert_eq!(index.matches("Cai nghiện tại Lào, lũ ống"), [0, 2, 3, 4]);
        assert_eq!(index.matches("Hàn Quốc"), Vec::<usize>::new());
    }

    #[test]
    fn bare_query_syllables_are_found_through_any_variant() {
        let index = index(&["dang", "lao dong"]);
        assert_eq!(index.matches("Xây dựng Đảng"), [0]);
        assert_eq!(index.matches("người lao động"), [1]);
    }

    #[test]
    fn a_query_filed_under_a_common_word_is_still_found() {
        let index = index(&["của", "của lũ"]);
        assert_eq!(index.matches("nước của lũ"), [0, 1]);
    }

    #[test]
    fn an_or_of_terms_present_twice_is_reported_once() {
        let index = index(&["lũ OR bão", "lũ OR \"lũ quét\""]);
        assert_eq!(index.matches("bão gây lũ quét"), [0, 1]);
    }

    #[test]
    fn one_scratch_serves_texts_and_indexes_in_turn() {
        let (small, large) = (index(&["lũ"]), index(&["bão", "gió", "lũ"]));
        let mut scratch = MatchScratch::default();
        let mut out = Vec::new();
        large.matches_into("bão và gió", &mut scratch, &mut out);
        small.matches_into("lũ", &mut scratch, &mut out);
        large.matches_into("nắng", &mut scratch, &mut out);
        out.sort_unstable();
        assert_eq!(out, [0, 0, 1]);
    }

    #[test]
    fn an_empty_index_matches_nothing() {
        assert!(QueryIndex::<u64>::new().matches("lũ").is_empty());
    }
}
