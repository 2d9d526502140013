//! Compiled queries ("programs") and running them against the atoms found in one text.
//!
//! A program is a flat run of `u32`s, so verifying a candidate reads one short stretch of
//! memory: the clause count, then per clause a header (`EXCLUDE` | phrase count) and its phrases,
//! each a length and its atoms. Clauses most likely to fail come first; the clause the query is
//! filed under, which the text is known to touch, comes last. It must mean exactly what
//! `matcher` means.

use crate::text::query::{Clause, Phrase, Query, QuerySyllable};

/// Program flag: the clause excludes its phrase.
const EXCLUDE: u32 = 1 << 31;
/// No atom: a text syllable that no query mentions.
pub(super) const NONE: u32 = u32::MAX;

/// Where the index's atoms are in the current text.
#[derive(Clone, Debug, Default)]
pub(super) struct TextAtoms {
    /// For each text syllable, its marked atom and its bare atom (or `NONE`).
    pub(super) at: Vec<[u32; 2]>,
    /// Distinct atoms (and pairs of atoms) present in the text.
    pub(super) present: Vec<u32>,
    /// `seen[atom] == epoch` when the atom is present in the current text.
    pub(super) seen: Vec<u32>,
    /// Numbers the current text, so that stamps left by earlier texts need no clearing.
    pub(super) epoch: u32,
}

impl TextAtoms {
    fn is_present(&self, atom: u32) -> bool {
        self.seen.get(atom as usize) == Some(&self.epoch)
    }

    /// Notes that `atom` (or a pair key) is present in the current text.
    pub(super) fn mark(&mut self, atom: u32) {
        if let Some(stamp) = self.seen.get_mut(atom as usize)
            && *stamp != self.epoch
        {
            *stamp = self.epoch;
            self.present.push(atom);
        }
    }
}

/// Appends the program of `query` to `out`, with its `key` clause last; `atom` names syllables.
pub(super) fn compile(
    query: &Query,
    key: Option<&[Phrase]>,
    atom: &mut dyn FnMut(&QuerySyllable) -> u32,
    out: &mut Vec<u32>,
) {
    let is_key = |clause: &&Clause| match (clause, key) {
        (Clause::Require(alternatives), Some(key)) => std::ptr::eq(alternatives.as_slice(), key),
        _ => false,
    };
    let others = query.clauses().iter().filter(|c| !is_key(c));
    let (required, excluded): (Vec<_>, Vec<_>) =
        others.partition(|c| matches!(c, Clause::Require(_)));
    let last = query.clauses().iter().filter(is_key);
    out.push(query.clauses().len() as u32);
    for clause in required.into_iter().chain(excluded).chain(last) {
        let (header, phrases) = match clause {
            Clause::Require(alternatives) => (0, alternatives.as_slice()),
            Clause::Exclude(phrase) => (EXCLUDE, std::slice::from_ref(phrase)),
        };
        out.push(header | phrases.len() as u32);
        for phrase in phrases {
            out.push(phrase.syllables.len() as u32);
            for syllable in &phrase.syllables {
                out.push(atom(syllable));
            }
        }
    }
}

/// Whether the program at the start of `program` holds for the text; `None` if it is cut short.
pub(super) fn run(program: &[u32], atoms: &TextAtoms) -> Option<bool> {
    let (&clauses, mut rest) = program.split_first()?;
    for _ in 0..clauses {
        let (&header, tail) = rest.split_first()?;
        rest = tail;
        let mut found = false;
        for _ in 0..header & !EXCLUDE {
            let (&len, tail) = rest.split_first()?;
            let (phrase, tail) = tail.split_at_checked(len as usize)?;
            rest = tail;
            found = found || occurs(phrase, atoms);
        }
        if found == (header & EXCLUDE != 0) {
            return Some(false);
        }
    }
    Some(true)
}

/// Whether the atoms of `phrase` occur consecutively in the text.
fn occurs(phrase: &[u32], atoms: &TextAtoms) -> bool {
    if !phrase.iter().all(|&atom| atoms.is_present(atom)) {
        return false;
    }
    phrase.len() <= 1
        || atoms.at.windows(phrase.len()).any(|window| {
            window
                .iter()
                .zip(phrase)
                .all(|(pair, atom)| pair.contains(atom))
        })
}
