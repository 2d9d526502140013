//! Vietnamese text: folding, syllables, and the topic query language (owned by issue 4).
//!
//! Pure logic, no I/O beyond the reader and writer handed to [`grep`]. `fold` spells syllables
//! one way, `query` parses what a subscriber typed, `matcher` says whether one query matches one
//! text, and `index` matches many queries at once with the same result.

mod fold;
mod index;
mod matcher;
mod query;

#[cfg(test)]
mod properties;

pub use fold::{FoldedText, base_form, fold_syllable, syllables};
pub use index::{MatchScratch, QueryIndex};
pub use matcher::{GrepError, grep};
pub use query::{Clause, Phrase, PhraseKind, Query, QueryError, QueryErrorKind, QuerySyllable};
