//! Vietnamese text: plain text out of HTML, folding, syllables, and the topic query language.
//!
//! Pure logic, no I/O beyond the reader and writer handed to [`grep`]. `plain` turns what feeds
//! send into NFC plain text, `fold` spells syllables one way, `query` parses what a subscriber
//! typed, `matcher` says whether one query matches one text, and `index` matches many queries at
//! once with the same result.

mod fold;
mod index;
mod matcher;
mod plain;
mod query;

#[cfg(test)]
mod properties;

pub use fold::{FoldedText, base_form, fold_syllable, syllables};
pub use index::{MatchScratch, QueryIndex};
pub use matcher::{GrepError, grep};
pub use plain::{
    MAX_MARKUP_DEPTH, clean_text, html_to_text, markup_depth, nfc, parseable, strip_tags,
    text_of_sanitized, title_text,
};
pub use query::{Clause, Phrase, PhraseKind, Query, QueryError, QueryErrorKind, QuerySyllable};
