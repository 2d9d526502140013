//! The topic query language: turning what a subscriber typed into clauses of phrases, each with
//! its column, or into a [`QueryError`] that says where and why the query is malformed.
//!
//! It owns syntax only. Spelling comes from `fold`; deciding whether a text matches lives in
//! `matcher` (one query) and `index` (many queries at once).
//!
//! Grammar, loosest first: a query is clauses ANDed together; a clause is one unit or
//! `unit OR unit …`; a unit is a phrase, or `-phrase` to exclude it (not inside an OR). A phrase
//! is `"quoted words"`, a run of Capitalised words (`Lào Cai`; punctuation after a word ends the
//! run, so `Lào Cai, Yên Bái` is two phrases), or one word; one word joined by punctuation
//! (`COVID-19`, `H'Mông`) is a phrase of its syllables. Quotes may be `"` or `“ ”`. Words with no
//! letter or digit (`&`, `—`) are ignored, as punctuation is in text.

use std::fmt;

use unicode_normalization::char::is_combining_mark;

use super::fold::FoldedText;

/// A parsed topic query. Build one with [`Query::parse`]; match with [`Query::matches`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    source: String,
    clauses: Vec<Clause>,
}

/// One ANDed part of a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Clause {
    /// At least one of these phrases must occur: one phrase, or the alternatives of `A OR B`.
    Require(Vec<Phrase>),
    /// This phrase must not occur (`-term`, `-"phrase"`).
    Exclude(Phrase),
}

/// Consecutive syllables that must occur in order; punctuation between them is ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phrase {
    /// 1-based character column where the phrase starts in the query (its `-` aside).
    pub column: usize,
    /// How the phrase was written.
    pub kind: PhraseKind,
    /// At least one syllable.
    pub syllables: Vec<QuerySyllable>,
}

/// How a phrase was written in the query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhraseKind {
    /// One whitespace-delimited word: one syllable, or several joined by punctuation.
    Word,
    /// Between quotes.
    Quoted,
    /// A run of two or more Capitalised words.
    Capitalised,
}

/// One folded query syllable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuerySyllable {
    /// NFC, lower case, canonical tone placement.
    pub folded: String,
    /// Written without any diacritic, so it matches the syllable with any diacritics.
    pub unmarked: bool,
}

/// A malformed query: where (1-based character column) and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {reason}")]
pub struct QueryError {
    /// 1-based column, counted in characters, of the part at fault.
    pub column: usize,
    /// What is wrong there.
    pub reason: QueryErrorKind,
}

/// The ways a query can be malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryErrorKind {
    #[error("empty query")]
    Empty,
    #[error("unbalanced quote")]
    UnbalancedQuote,
    #[error("empty phrase")]
    EmptyPhrase,
    #[error("dangling OR")]
    DanglingOr,
    #[error("nothing to exclude after '-'")]
    DanglingMinus,
    #[error("an exclusion cannot be an OR alternative")]
    ExclusionInOr,
    #[error("only exclusions; name something to look for")]
    OnlyExclusions,
}

fn error(column: usize, reason: QueryErrorKind) -> QueryError {
    QueryError { column, reason }
}

impl Query {
    /// Parses `source`; see the module documentation for the grammar.
    pub fn parse(source: &str) -> Result<Self, QueryError> {
        let chars: Vec<char> = source.chars().collect();
        let tokens = tokenize(&chars)?;
        let items = units(&tokens)?;
        let clauses = clauses(items)?;
        Ok(Self {
            source: source.to_owned(),
            clauses,
        })
    }

    /// The query as typed.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The ANDed clauses; at least one is a [`Clause::Require`].
    pub fn clauses(&self) -> &[Clause] {
        &self.clauses
    }
}

/// Prints an equivalent query in folded form, e.g. `"lào cai" lũ OR lụt -bão`.
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, clause) in self.clauses.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match clause {
                Clause::Require(alternatives) => {
                    for (j, phrase) in alternatives.iter().enumerate() {
                        if j > 0 {
                            f.write_str(" OR ")?;
                        }
                        write!(f, "{phrase}")?;
                    }
                }
                Clause::Exclude(phrase) => write!(f, "-{phrase}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Phrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.syllables.iter().map(|s| s.folded.as_str()).collect();
        match words.as_slice() {
            [one] => f.write_str(one),
            _ => write!(f, "\"{}\"", words.join(" ")),
        }
    }
}

#[derive(Debug)]
enum TokenKind {
    Or,
    Word(String),
    Quoted(String),
}

#[derive(Debug)]
struct Token {
    column: usize,
    /// Column of a `-` written before the token.
    minus: Option<usize>,
    kind: TokenKind,
}

fn is_quote(c: char) -> bool {
    matches!(c, '"' | '“' | '”')
}

fn tokenize(chars: &[char]) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let mut minus = None;
        if c == '-' {
            minus = Some(i + 1);
            i += 1;
            match chars.get(i) {
                Some(&next) if !next.is_whitespace() && next != '-' => {}
                _ => return Err(error(i, QueryErrorKind::DanglingMinus)),
            }
        }
        let column = i + 1;
        let rest = &chars[i..];
        let (kind, len) = if rest.first().copied().is_some_and(is_quote) {
            let close = rest[1..]
                .iter()
                .position(|&c| is_quote(c))
                .ok_or(error(column, QueryErrorKind::UnbalancedQuote))?;
            (
                TokenKind::Quoted(rest[1..=close].iter().collect()),
                close + 2,
            )
        } else {
            let len = rest
                .iter()
                .position(|&c| c.is_whitespace() || is_quote(c))
                .unwrap_or(rest.len());
            let word: String = rest[..len].iter().collect();
            let kind = if word == "OR" && minus.is_none() {
                TokenKind::Or
            } else {
                TokenKind::Word(word)
            };
            (kind, len)
        };
        tokens.push(Token {
            column,
            minus,
            kind,
        });
        i += len;
    }
    Ok(tokens)
}

/// A phrase with its exclusion mark, or an `OR`, in query order.
enum Item {
    Or(usize),
    Unit {
        minus: Option<usize>,
        phrase: Phrase,
    },
}

fn query_syllables(raw: &str) -> Vec<QuerySyllable> {
    FoldedText::new(raw)
        .iter()
        .map(|(folded, base)| QuerySyllable {
            folded: folded.to_owned(),
            unmarked: folded == base,
        })
        .collect()
}

/// Whether a word starts with a capital letter (its first letter or digit is upper case).
fn is_capitalised(raw: &str) -> bool {
    raw.chars()
        .find(|c| c.is_alphanumeric())
        .is_some_and(char::is_uppercase)
}

/// Whether a word ends in punctuation (`Cai,`), which ends a run of Capitalised words.
fn ends_with_punctuation(raw: &str) -> bool {
    raw.chars()
        .next_back()
        .is_some_and(|c| !c.is_alphanumeric() && !is_combining_mark(c))
}

fn capitalised_word(token: &Token) -> Option<&str> {
    match &token.kind {
        TokenKind::Word(raw) if token.minus.is_none() && is_capitalised(raw) => Some(raw),
        _ => None,
    }
}

fn units(tokens: &[Token]) -> Result<Vec<Item>, QueryError> {
    let mut items = Vec::new();
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        i += 1;
        let (kind, syllables) = match &token.kind {
            TokenKind::Or => {
                items.push(Item::Or(token.column));
                continue;
            }
            TokenKind::Quoted(inner) => (PhraseKind::Quoted, query_syllables(inner)),
            TokenKind::Word(raw) => {
                let mut syllables = query_syllables(raw);
                let mut kind = PhraseKind::Word;
                let mut last = raw.as_str();
                if is_capitalised(raw) {
                    while !ends_with_punctuation(last)
                        && let Some(next) = tokens.get(i).and_then(capitalised_word)
                    {
                        syllables.extend(query_syllables(next));
                        kind = PhraseKind::Capitalised;
                        last = next;
                        i += 1;
                    }
                }
                (kind, syllables)
            }
        };
        if syllables.is_empty() {
            match (token.minus, kind) {
                (_, PhraseKind::Quoted) => {
                    return Err(error(token.column, QueryErrorKind::EmptyPhrase));
                }
                (Some(minus), _) => return Err(error(minus, QueryErrorKind::DanglingMinus)),
                (None, _) => continue,
            }
        }
        let phrase = Phrase {
            column: token.column,
            kind,
            syllables,
        };
        items.push(Item::Unit {
            minus: token.minus,
            phrase,
        });
    }
    Ok(items)
}

fn clauses(items: Vec<Item>) -> Result<Vec<Clause>, QueryError> {
    let mut clauses = Vec::new();
    let mut first_exclusion = None;
    let mut items = items.into_iter().peekable();
    while let Some(item) = items.next() {
        let (minus, phrase) = match item {
            Item::Or(column) => return Err(error(column, QueryErrorKind::DanglingOr)),
            Item::Unit { minus, phrase } => (minus, phrase),
        };
        let mut alternatives = vec![(minus, phrase)];
        while let Some(&Item::Or(column)) = items.peek() {
            items.next();
            match items.next() {
                Some(Item::Unit { minus, phrase }) => alternatives.push((minus, phrase)),
                _ => return Err(error(column, QueryErrorKind::DanglingOr)),
            }
        }
        if let [(Some(minus), _)] = alternatives.as_slice() {
            first_exclusion.get_or_insert(*minus);
            if let Some((_, phrase)) = alternatives.pop() {
                clauses.push(Clause::Exclude(phrase));
            }
            continue;
        }
        if let Some(minus) = alternatives.iter().find_map(|(minus, _)| *minus) {
            return Err(error(minus, QueryErrorKind::ExclusionInOr));
        }
        clauses.push(Clause::Require(
            alternatives.into_iter().map(|(_, phrase)| phrase).collect(),
        ));
    }
    if clauses.iter().any(|c| matches!(c, Clause::Require(_))) {
        return Ok(clauses);
    }
    Err(match first_exclusion {
        Some(column) => error(column, QueryErrorKind::OnlyExclusions),
        None => error(1, QueryErrorKind::Empty),
    })
}

#[cfg(test)]
mod tests;
