//! Deciding whether one query matches one plain text, and `grep`, which applies a query to lines.
//!
//! It owns the meaning of a query: whole syllables, a bare syllable matching any diacritics, a
//! marked one only itself, phrases as consecutive syllables, AND/OR/exclusion. It must not parse
//! HTML (callers strip it) nor know about subscribers; `index` must agree with it exactly.

use std::io::{BufRead, Write};

use super::fold::FoldedText;
use super::query::{Clause, Phrase, Query, QueryError, QuerySyllable};

impl QuerySyllable {
    /// Whether this query syllable matches a text syllable given in folded and base form.
    pub fn matches(&self, folded: &str, base: &str) -> bool {
        if self.unmarked {
            base == self.folded
        } else {
            folded == self.folded
        }
    }
}

impl Phrase {
    /// Whether the phrase's syllables occur consecutively in `text`.
    pub fn occurs_in(&self, text: &FoldedText) -> bool {
        let len = self.syllables.len();
        if len > text.len() {
            return false;
        }
        (0..=text.len() - len).any(|start| {
            self.syllables
                .iter()
                .zip(start..)
                .all(|(s, i)| s.matches(text.folded(i), text.base(i)))
        })
    }
}

impl Clause {
    /// Whether this clause holds for `text`.
    pub fn holds_for(&self, text: &FoldedText) -> bool {
        match self {
            Clause::Require(alternatives) => alternatives.iter().any(|p| p.occurs_in(text)),
            Clause::Exclude(phrase) => !phrase.occurs_in(text),
        }
    }
}

impl Query {
    /// Whether plain `text` (HTML already stripped) matches the query.
    pub fn matches(&self, text: &str) -> bool {
        self.matches_folded(&FoldedText::new(text))
    }

    /// Like [`Query::matches`], for a text already folded (to test many queries against it).
    pub fn matches_folded(&self, text: &FoldedText) -> bool {
        self.clauses().iter().all(|c| c.holds_for(text))
    }
}

/// Why [`grep`] failed.
#[derive(Debug, thiserror::Error)]
pub enum GrepError {
    /// The query is malformed; nothing was read.
    #[error("invalid query: {0}")]
    Query(#[from] QueryError),
    /// Reading input or writing output failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Copies to `out`, unchanged, the lines of `input` that match `query`, and says whether any did.
///
/// Lines are split on `\n`; a line's own terminator (`\n` or `\r\n`) is kept, and a last line
/// without one gets `\n`, as grep does. Bytes that are not UTF-8 are matched as U+FFFD and
/// still copied unchanged.
pub fn grep(query: &str, input: &mut dyn BufRead, out: &mut dyn Write) -> Result<bool, GrepError> {
    let query = Query::parse(query)?;
    let mut line = Vec::new();
    let mut folded = FoldedText::default();
    let mut any = false;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        folded.refill(&String::from_utf8_lossy(&line));
        if query.matches_folded(&folded) {
            any = true;
            out.write_all(&line)?;
            if !line.ends_with(b"\n") {
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(query: &str, text: &str) -> bool {
        match Query::parse(query) {
            Ok(query) => query.matches(text),
            Err(e) => panic!("{query:?}: {e}"),
        }
    }

    #[test]
    fn case_and_d_bar_are_folded() {
        assert!(matches("đảng", "XÂY DỰNG ĐẢNG"));
        assert!(matches("ĐẢNG", "xây dựng đảng"));
    }

    #[test]
    fn old_and_new_tone_placement_are_the_same_word() {
        assert!(matches("hoà bình", "Hòa Bình"));
        assert!(matches("thủy điện", "nhà máy thuỷ điện"));
        assert!(matches("khoẻ", "sức khỏe"));
    }

    #[test]
    fn terms_match_whole_syllables_never_a_prefix() {
        assert!(!matches("Hà", "Hàn Quốc"));
        assert!(!matches("ha", "Hàn Quốc"));
        assert!(matches("Hà", "Hà Nội"));
    }

    #[test]
    fn bare_syllable_matches_any_diacritics() {
        assert!(matches("lao", "Lào"));
        assert!(matches("lao", "lão"));
        assert!(matches("lao", "lao động"));
        assert!(matches("dang", "Đảng"));
    }

    #[test]
    fn marked_syllable_matches_only_itself() {
        assert!(matches("lũ", "lũ quét"));
        for other in ["lu", "lú", "lữ", "lụ"] {
            assert!(!matches("lũ", other), "{other}");
        }
        assert!(!matches("đang", "Đảng"));
        assert!(!matches("đảng", "dang"));
    }

    #[test]
    fn quoted_words_match_consecutive_syllables() {
        assert!(matches(r#""sạt lở""#, "nguy cơ sạt lở đất"));
        assert!(!matches(r#""sạt lở""#, "lở đất gây sạt"));
        assert!(!matches(r#""sạt lở""#, "sạt mái, rồi lở"));
    }

    #[test]
    fn punctuation_between_phrase_syllables_is_ignored() {
        assert!(matches(r#""lào cai""#, "Lào - Cai"));
        assert!(matches(r#""lào cai""#, "(Lào)Cai"));
    }

    #[test]
    fn capitalised_run_is_a_phrase() {
        assert!(matches("Lào Cai", "Báo Lào Cai đưa tin"));
        assert!(!matches("Lào Cai", "Cai nghiện ma túy tại Lào"));
        assert!(!matches("Bát Xát", "Xát bát"));
    }

    #[test]
    fn other_unquoted_syllables_are_separate_terms() {
        assert!(matches("cai lào", "Cai nghiện ma túy tại Lào"));
    }

    #[test]
    fn terms_are_anded() {
        assert!(matches("lũ quét", "lũ quét ở Yên Bái"));
        assert!(matches("quét lũ", "lũ quét ở Yên Bái"));
        assert!(!matches("lũ bão", "lũ quét ở Yên Bái"));
    }

    #[test]
    fn or_matches_either_side() {
        assert!(matches("lũ OR bão", "cơn bão số 3"));
        assert!(matches("lũ OR bão", "lũ quét"));
        assert!(!matches("lũ OR bão", "nắng nóng"));
        assert!(matches("lũ OR bão Yên Bái", "bão ở Yên Bái"));
        assert!(!matches("lũ OR bão Yên Bái", "bão ở Lào Cai"));
    }

    #[test]
    fn minus_excludes_a_term_or_a_phrase() {
        assert!(!matches("lũ -quét", "lũ quét"));
        assert!(matches("lũ -quét", "lũ ống"));
        assert!(!matches(r#"lũ -"Lào Cai""#, "lũ ở Lào Cai"));
        assert!(matches(r#"lũ -"Lào Cai""#, "lũ ở Lào"));
    }

    #[test]
    fn decomposed_text_matches_like_composed_text() {
        assert!(matches("Lào Cai", "La\u{300}o Cai"));
        assert!(matches("lũ", "lu\u{303}"));
    }

    #[test]
    fn grep_prints_matching_lines_unchanged() {
        let input = "Lũ quét ở Bát Xát\r\nGiá vàng tăng\nKhắc phục hậu quả lũ";
        let mut out = Vec::new();
        let any = grep("lũ", &mut input.as_bytes(), &mut out).expect("greps");
        assert!(any);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "Lũ quét ở Bát Xát\r\nKhắc phục hậu quả lũ\n"
        );
    }

    #[test]
    fn grep_says_when_nothing_matched() {
        let mut out = Vec::new();
        let any = grep("bão", &mut "Giá vàng tăng\n".as_bytes(), &mut out).expect("greps");
        assert!(!any);
        assert!(out.is_empty());
    }

    #[test]
    fn grep_reports_a_malformed_query_before_reading() {
        let mut out = Vec::new();
        let result = grep("\"lũ", &mut "lũ\n".as_bytes(), &mut out);
        assert!(matches!(
            result,
            Err(GrepError::Query(QueryError { column: 1, .. }))
        ));
    }

    #[test]
    fn grep_copies_lines_that_are_not_utf8_unchanged() {
        let input: &[u8] = b"l\xc5\xa9 \xff\n";
        let mut out = Vec::new();
        assert!(grep("lũ", &mut &input[..], &mut out).expect("greps"));
        assert_eq!(out, input);
    }
}
