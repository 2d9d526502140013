//! Matching one text against many queries at once: every subscriber's query compiled into one
//! inverted index, so that matching an item costs about the length of its text (plus its
//! matches), not the number of queries.
//!
//! It owns only speed. The meaning of a query is `matcher`'s, and the result for every text must
//! equal running each query's own [`Query::matches`]; the tests check that on random queries.
//!
//! How: every distinct query syllable becomes an atom, a marked one under its folded spelling and
//! a bare one under its base form (it matches every diacritic variant). Each query is filed
//! (`filing`) under one key per alternative of its most selective required clause: an atom, or
//! for a phrase two adjacent atoms. A text's syllables are looked up once each (a marked syllable
//! twice: exactly, and by its base), its adjacent pairs once each, the queries filed under keys
//! present become candidates, and only candidates are verified (`program`). A query of one term
//! or one two-syllable phrase, or an OR of them, needs no verifying: its key being present is
//! its match.

mod filing;
mod program;

use std::collections::HashMap;

use self::filing::{AtomMap, FoldState, Key, key_clause, phrase_key};
use self::program::{NONE, TextAtoms, compile, run};
use super::fold::FoldedText;
use super::query::{Query, QuerySyllable};

/// Posting flag: the query is filed under one key only, so it cannot turn up twice.
const ONCE: u32 = 1 << 31;
/// Posting flag: the query is one clause whose key is all of it, so a candidate is a match.
const TRIVIAL: u32 = 1 << 30;
/// The query number inside a posting.
const NUMBER: u32 = TRIVIAL - 1;

/// One query filed under a key: everything needed to report it without looking elsewhere.
#[derive(Clone, Debug)]
struct Posting<Id> {
    /// Query number | `ONCE` | `TRIVIAL`.
    entry: u32,
    /// Where its program starts in `QueryIndex::program`.
    program: u32,
    id: Id,
}

/// Many queries compiled into one inverted index; see the module documentation.
#[derive(Clone, Debug)]
pub struct QueryIndex<Id = u64> {
    marked: AtomMap,
    bare: AtomMap,
    /// Keys made of two adjacent atoms: `first << 32 | second` → key number.
    pairs: HashMap<u64, u32, FoldState>,
    /// For each key (atoms and pairs share one numbering), the queries filed under it.
    postings: Vec<Vec<Posting<Id>>>,
    /// Number of queries inserted.
    queries: usize,
    /// All queries' programs, one after another (see `program`).
    program: Vec<u32>,
}

/// Reusable buffers for [`QueryIndex::matches_into`], so that matching a stream of texts
/// allocates nothing per text once warm. One scratch serves any index.
#[derive(Clone, Debug, Default)]
pub struct MatchScratch {
    text: FoldedText,
    atoms: TextAtoms,
    /// `queries_seen[number] == atoms.epoch` once a query filed more than once was looked at.
    queries_seen: Vec<u32>,
}

impl MatchScratch {
    /// Starts a new text for an index of `keys` keys and `queries` queries.
    fn next_epoch(&mut self, keys: usize, queries: usize) {
        let atoms = &mut self.atoms;
        if atoms.seen.len() < keys {
            atoms.seen.resize(keys, 0);
        }
        if self.queries_seen.len() < queries {
            self.queries_seen.resize(queries, 0);
        }
        atoms.epoch = atoms.epoch.wrapping_add(1);
        if atoms.epoch == 0 {
            atoms.seen.fill(0);
            self.queries_seen.fill(0);
            atoms.epoch = 1;
        }
    }
}

impl<Id> Default for QueryIndex<Id> {
    fn default() -> Self {
        Self {
            marked: AtomMap::default(),
            bare: AtomMap::default(),
            pairs: HashMap::default(),
            postings: Vec::new(),
            queries: 0,
            program: Vec::new(),
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

fn pair_code(first: u32, second: u32) -> u64 {
    (u64::from(first) << 32) | u64::from(second)
}

impl<Id: Copy> QueryIndex<Id> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of queries inserted.
    pub fn len(&self) -> usize {
        self.queries
    }

    /// Whether no query was inserted.
    pub fn is_empty(&self) -> bool {
        self.queries == 0
    }

    /// Adds `query` under `id`. Ids need not be unique; a repeated id is reported once per insert.
    ///
    /// # Panics
    /// Past 2^30 (about a billion) queries or 2^32 compiled syllables, which no process could
    /// hold anyway.
    pub fn insert(&mut self, id: Id, query: &Query) {
        let number = u32::try_from(self.queries).ok().filter(|&n| n <= NUMBER);
        let program = u32::try_from(self.program.len()).ok();
        let (Some(number), Some(program)) = (number, program) else {
            panic!("a QueryIndex holds at most {NUMBER} queries and 2^32 compiled syllables");
        };
        let key = key_clause(query);
        let mut compiled = std::mem::take(&mut self.program);
        compile(
            query,
            key,
            &mut |syllable| self.atom(syllable),
            &mut compiled,
        );
        self.program = compiled;
        self.queries += 1;
        let Some(key) = key else {
            return;
        };
        let mut entry = number;
        if key.len() == 1 {
            entry |= ONCE;
        }
        if query.clauses().len() == 1 && key.iter().all(|p| p.syllables.len() <= 2) {
            entry |= TRIVIAL;
        }
        for (_, phrase_key) in key.iter().filter_map(phrase_key) {
            let key = self.key(phrase_key);
            if let Some(posting) = self.postings.get_mut(key as usize)
                && posting.last().map(|p| p.entry) != Some(entry)
            {
                posting.push(Posting { entry, program, id });
            }
        }
    }

    /// The number of a new key with an empty posting list.
    fn new_key(&mut self) -> u32 {
        self.postings.push(Vec::new());
        u32::try_from(self.postings.len() - 1).unwrap_or(NONE)
    }

    /// The atom of a query syllable, created on first sight.
    fn atom(&mut self, syllable: &QuerySyllable) -> u32 {
        let map = if syllable.unmarked {
            &self.bare
        } else {
            &self.marked
        };
        if let Some(atom) = map.get(&syllable.folded) {
            return atom;
        }
        let atom = self.new_key();
        let map = if syllable.unmarked {
            &mut self.bare
        } else {
            &mut self.marked
        };
        map.insert(&syllable.folded, atom);
        atom
    }

    /// The key number of `key`, created on first sight.
    fn key(&mut self, key: Key<'_>) -> u32 {
        match key {
            Key::One(syllable) => self.atom(syllable),
            Key::Two(first, second) => {
                let code = pair_code(self.atom(first), self.atom(second));
                if let Some(&pair) = self.pairs.get(&code) {
                    return pair;
                }
                let pair = self.new_key();
                self.pairs.insert(code, pair);
                pair
            }
        }
    }

    /// The ids of the queries that match plain `text`, in insertion order.
    pub fn matches(&self, text: &str) -> Vec<Id> {
        let mut hits = Vec::new();
        let mut scratch = MatchScratch::default();
        self.find(text, &mut scratch, |number, id| hits.push((number, id)));
        hits.sort_unstable_by_key(|&(number, _)| number);
        hits.into_iter().map(|(_, id)| id).collect()
    }

    /// Appends to `out` the ids of the queries that match plain `text`, in no particular order,
    /// reusing `scratch`: the fast path for matching a stream of items.
    pub fn matches_into(&self, text: &str, scratch: &mut MatchScratch, out: &mut Vec<Id>) {
        self.find(text, scratch, |_, id| out.push(id));
    }

    /// Calls `hit` with the number and id of every query matching `text`, each once.
    fn find(&self, text: &str, scratch: &mut MatchScratch, mut hit: impl FnMut(u32, Id)) {
        scratch.text.refill(text);
        scratch.next_epoch(self.postings.len(), self.queries);
        self.locate(&scratch.text, &mut scratch.atoms);
        let MatchScratch {
            atoms,
            queries_seen,
            ..
        } = scratch;
        for &key in &atoms.present {
            let posting = self
                .postings
                .get(key as usize)
                .map_or(&[][..], Vec::as_slice);
            for p in posting {
                let number = p.entry & NUMBER;
                if p.entry & ONCE == 0 {
                    // Filed under several keys: look at it only the first time.
                    match queries_seen.get_mut(number as usize) {
                        Some(stamp) if *stamp != atoms.epoch => *stamp = atoms.epoch,
                        _ => continue,
                    }
                }
                if p.entry & TRIVIAL != 0 || self.verify(p.program, atoms) {
                    hit(number, p.id);
                }
            }
        }
    }

    /// Fills `atoms` (after `MatchScratch::next_epoch`) with the keys found in `text`.
    fn locate(&self, text: &FoldedText, atoms: &mut TextAtoms) {
        atoms.at.clear();
        atoms.present.clear();
        for i in 0..text.len() {
            let marked = if text.is_unmarked(i) {
                None
            } else {
                self.marked.get(text.folded(i))
            };
            let bare = self.bare.get(text.base(i));
            let pair = [marked.unwrap_or(NONE), bare.unwrap_or(NONE)];
            for atom in pair {
                atoms.mark(atom);
            }
            atoms.at.push(pair);
        }
        if self.pairs.is_empty() {
            return;
        }
        for i in 1..atoms.at.len() {
            let (before, after) = (atoms.at[i - 1], atoms.at[i]);
            for first in before.into_iter().filter(|&a| a != NONE) {
                for second in after.into_iter().filter(|&a| a != NONE) {
                    if let Some(&pair) = self.pairs.get(&pair_code(first, second)) {
                        atoms.mark(pair);
                    }
                }
            }
        }
    }

    /// Runs the program starting at `start` against the located atoms.
    fn verify(&self, start: u32, atoms: &TextAtoms) -> bool {
        let program = self.program.get(start as usize..).unwrap_or_default();
        run(program, atoms).unwrap_or(false)
    }
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
        let index = index(&["dang", "lao dong", "\"lao dong\""]);
        assert_eq!(index.matches("Xây dựng Đảng"), [0]);
        assert_eq!(index.matches("người lao động"), [1, 2]);
        assert_eq!(index.matches("động lão"), [1]);
    }

    #[test]
    fn a_query_filed_under_a_common_word_is_still_found() {
        let index = index(&["của", "của lũ"]);
        assert_eq!(index.matches("nước của lũ"), [0, 1]);
    }

    #[test]
    fn a_phrase_is_found_through_its_rarest_pair() {
        let index = index(&[
            "\"nguy cơ sạt lở đất\"",
            "Bát Xát",
            "\"sạt lở\" -\"Lào Cai\"",
        ]);
        assert_eq!(index.matches("Nguy cơ sạt lở đất ở Bát Xát"), [0, 1, 2]);
        assert_eq!(index.matches("nguy cơ sạt, lở đất ở Lào Cai"), [0]);
        assert_eq!(
            index.matches("đất lở sạt cơ nguy; Xát Bát"),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn an_or_of_terms_present_twice_is_reported_once() {
        let index = index(&[
            "lũ OR bão",
            "lũ OR \"lũ quét\"",
            "\"lũ quét\" OR \"quét lũ\"",
        ]);
        assert_eq!(index.matches("bão gây lũ quét, quét lũ"), [0, 1, 2]);
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
