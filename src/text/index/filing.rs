//! Where the index files each query: which required clause, and for each of its alternatives
//! which syllable (or pair of adjacent syllables) texts are least likely to contain. Also the map
//! from syllable spellings to atoms.
//!
//! Only speed depends on these choices, never a result: any required clause and any syllable of
//! a phrase would find every match, the rarer ones just bring fewer false candidates.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::LazyLock;

use crate::text::fold::base_form;
use crate::text::query::{Clause, Phrase, Query, QuerySyllable};

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

/// Roughly how often texts contain a syllable, in arbitrary units.
fn syllable_cost(syllable: &QuerySyllable) -> u64 {
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

/// What a phrase is filed under.
#[derive(Clone, Copy, Debug)]
pub(super) enum Key<'a> {
    /// One of its syllables.
    One(&'a QuerySyllable),
    /// Two of its syllables that must stand side by side: far rarer than either alone.
    Two(&'a QuerySyllable, &'a QuerySyllable),
}

/// The key to file `phrase` under, with its cost.
pub(super) fn phrase_key(phrase: &Phrase) -> Option<(u64, Key<'_>)> {
    match phrase.syllables.as_slice() {
        [] => None,
        [one] => Some((syllable_cost(one), Key::One(one))),
        many => many
            .windows(2)
            .filter_map(|pair| match pair {
                [a, b] => Some((
                    (syllable_cost(a) * syllable_cost(b) / 1000).max(1),
                    Key::Two(a, b),
                )),
                _ => None,
            })
            .min_by_key(|(cost, _)| *cost),
    }
}

/// The required clause to file `query` under: the one whose keys texts contain least often.
pub(super) fn key_clause(query: &Query) -> Option<&[Phrase]> {
    let required = query.clauses().iter().filter_map(|clause| match clause {
        Clause::Require(alternatives) => Some(alternatives.as_slice()),
        Clause::Exclude(_) => None,
    });
    let cost = |alternatives: &&[Phrase]| -> u64 {
        alternatives
            .iter()
            .filter_map(phrase_key)
            .map(|(cost, _)| cost)
            .sum()
    };
    required.min_by_key(cost)
}

/// Hashing for the index's fixed-size keys (packed syllables, atom pairs): one folded 64×64-bit
/// multiply per word, seeded at random per map so that colliding keys cannot be prepared in
/// advance. SipHash, the default, cost a fifth of the matching time.
#[derive(Clone, Copy, Debug)]
pub(super) struct FoldState {
    seed: u64,
}

impl Default for FoldState {
    fn default() -> Self {
        Self {
            seed: RandomState::new().hash_one(0x7469_6e62_616f_u64),
        }
    }
}

impl BuildHasher for FoldState {
    type Hasher = FoldHasher;

    fn build_hasher(&self) -> FoldHasher {
        FoldHasher {
            state: self.seed,
            seed: self.seed,
        }
    }
}

/// See [`FoldState`].
#[derive(Clone, Copy, Debug)]
pub(super) struct FoldHasher {
    state: u64,
    seed: u64,
}

/// An odd constant with well-spread bits (the fractional part of π).
const SPREAD: u64 = 0x243F_6A88_85A3_08D3;

fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word, self.seed ^ SPREAD);
    }

    fn write_u128(&mut self, word: u128) {
        self.write_u64(word as u64);
        self.write_u64((word >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.state.rotate_left(23)
    }
}

/// Atoms by spelling. A syllable of up to 16 bytes (every Vietnamese one) is keyed by its bytes
/// packed into a `u128`, so that a lookup compares registers instead of chasing a pointer to a
/// string; syllables never contain NUL, so the zero padding cannot make two of them equal.
#[derive(Clone, Debug, Default)]
pub(super) struct AtomMap {
    short: HashMap<u128, u32, FoldState>,
    long: HashMap<String, u32>,
}

impl AtomMap {
    fn pack(syllable: &str) -> Option<u128> {
        let bytes = syllable.as_bytes();
        let mut packed = [0u8; 16];
        packed.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(u128::from_le_bytes(packed))
    }

    pub(super) fn get(&self, syllable: &str) -> Option<u32> {
        match Self::pack(syllable) {
            Some(key) => self.short.get(&key).copied(),
            None => self.long.get(syllable).copied(),
        }
    }

    pub(super) fn insert(&mut self, syllable: &str, atom: u32) {
        match Self::pack(syllable) {
            Some(key) => self.short.insert(key, atom),
            None => self.long.insert(syllable.to_owned(), atom),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Query {
        Query::parse(query).unwrap_or_else(|e| panic!("{query:?}: {e}"))
    }

    #[test]
    fn a_phrase_is_filed_under_a_pair_and_a_word_under_itself() {
        let query = parse("\"sạt lở đất\" lũ");
        let key = key_clause(&query)
            .and_then(|k| k.first())
            .and_then(phrase_key);
        assert!(matches!(key, Some((_, Key::Two(_, _)))), "{key:?}");
    }

    #[test]
    fn a_rare_word_is_preferred_to_a_common_one() {
        let query = parse("của quét");
        let key = key_clause(&query)
            .and_then(|k| k.first())
            .and_then(phrase_key);
        assert!(
            matches!(key, Some((_, Key::One(s))) if s.folded == "quét"),
            "{key:?}"
        );
    }

    #[test]
    fn long_syllables_are_kept_apart_from_short_ones() {
        let mut map = AtomMap::default();
        let long = "supercalifragilistic";
        map.insert("lũ", 1);
        map.insert(long, 2);
        assert_eq!(
            (map.get("lũ"), map.get(long), map.get("lu")),
            (Some(1), Some(2), None)
        );
    }
}
