//! Feed documents into normalised items, in one chain: `decode` (any charset to UTF-8) ->
//! `repair` (shapes feed-rs would refuse) -> read (feed-rs: RSS 0.9x/1.0/2.0, Atom, JSON Feed;
//! a truncated document keeps its whole items) -> `convert` (each entry normalised). Pure: bytes
//! in, items out; no HTTP and no SQL. `parse_remembering` is the same chain with the entries
//! the last stored document held unchanged cut out before feed-rs reads it (see `skim`).

use super::convert::{self, Taken};
use super::skim::{self, Fate, Memory, Seen};
use super::{decode, normalize, repair};
use crate::model::NewItem;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use feed_rs::model;
use serde::Serialize;
use url::Url;

/// What the parser needs to know besides the bytes.
#[derive(Debug, Clone)]
pub struct ParseContext {
    /// The URL the document was fetched from: the base for relative links.
    pub base: Option<Url>,
    /// The charset named by the HTTP Content-Type header, if any.
    pub http_charset: Option<String>,
    /// The operator's timezone, for dates written without an offset.
    pub timezone: Tz,
    /// When the document was read: first-seen time for items without a usable date.
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParsedFeed {
    pub title: Option<String>,
    pub link: Option<String>,
    pub format: &'static str,
    /// RSS `<ttl>` in minutes: a lower bound on the polling interval.
    pub ttl: Option<u32>,
    /// When the document says it last changed (Atom `updated`, RSS `lastBuildDate` or
    /// `pubDate`), else its newest dated item's date.
    pub updated: Option<DateTime<Utc>>,
    pub items: Vec<NewItem>,
    /// Entries dropped because they repeated an earlier entry's identity in the same document.
    pub duplicates: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("empty document")]
    Empty,
    #[error("not a feed: {0}")]
    Invalid(String),
}

/// Parses a feed document: decode -> repair -> read -> convert.
pub fn parse(bytes: &[u8], ctx: &ParseContext) -> Result<ParsedFeed, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let text = decode::decode_to_utf8(bytes, ctx.http_charset.as_deref());
    let text = repair::repair(&text);
    let feed = read(&text, ctx)?;
    Ok(convert::convert(feed, &text, ctx, Taken::default()).0)
}

/// A document read against the memory of the last one stored (see `skim`).
#[derive(Debug)]
pub struct Remembered {
    /// The entries read: new and changed ones only.
    pub parsed: ParsedFeed,
    /// Entries not read again: remembered unchanged.
    pub unchanged: usize,
    /// Of those, how many the rules skipped.
    pub unchanged_skipped: usize,
    /// What to remember of this document; `None` when its entries could not be told apart
    /// safely (the next poll then reads it whole).
    pub memory: Option<Memory>,
    /// For each item of `parsed`, its entry's place in `memory`.
    item_entries: Vec<usize>,
}

impl Remembered {
    /// Drops the items `admits` refuses, remembering them as skipped; returns how many the
    /// rules skip in the whole document (the remembered ones included).
    pub fn apply(&mut self, admits: impl Fn(&NewItem) -> bool) -> usize {
        let mut skipped = 0;
        let mut kept = Vec::with_capacity(self.parsed.items.len());
        let mut kept_entries = Vec::with_capacity(kept.capacity());
        let items = std::mem::take(&mut self.parsed.items);
        for (item, entry) in items
            .into_iter()
            .zip(std::mem::take(&mut self.item_entries))
        {
            if admits(&item) {
                kept.push(item);
                kept_entries.push(entry);
            } else {
                skipped += 1;
                if let Some(m) = &mut self.memory {
                    m.entries[entry].fate = Fate::Skipped;
                }
            }
        }
        self.parsed.items = kept;
        self.item_entries = kept_entries;
        skipped + self.unchanged_skipped
    }
}

/// What decides, besides an entry's own bytes, what it becomes: the parser (this build's
/// version), the base URL and timezone, and the `rules` the caller applies (any stable text).
pub fn salt(ctx: &ParseContext, rules: &str) -> u64 {
    skim::digest(&[
        env!("CARGO_PKG_VERSION").as_bytes(),
        ctx.base.as_ref().map_or("", Url::as_str).as_bytes(),
        ctx.timezone.name().as_bytes(),
        rules.as_bytes(),
    ])
}

/// Parses a feed document like `parse`, but reads only the entries `known` (the memory of the
/// last stored document, under the same `salt`) does not hold unchanged.
pub fn parse_remembering(
    bytes: &[u8],
    ctx: &ParseContext,
    known: Option<&Memory>,
    salt: u64,
) -> Result<Remembered, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let text = decode::decode_to_utf8(bytes, ctx.http_charset.as_deref());
    let text = repair::repair(&text);
    let spans = skim::entry_spans(&text);
    let salt_bytes = salt.to_le_bytes();
    let digests: Vec<u64> = spans
        .iter()
        .flatten()
        .map(|r| skim::digest(&[&salt_bytes, text[r.clone()].as_bytes()]))
        .collect();
    // Remembered entries by digest; identical entries of one document, in their order.
    let mut known_by_digest: std::collections::HashMap<u64, Vec<Seen>> = Default::default();
    for e in known
        .filter(|m| m.salt == salt)
        .iter()
        .flat_map(|m| m.entries.iter().rev())
    {
        known_by_digest.entry(e.digest).or_default().push(*e);
    }
    // Each span: the remembered entry it repeats, if any.
    let remembered: Vec<Option<Seen>> = digests
        .iter()
        .map(|d| known_by_digest.get_mut(d).and_then(Vec::pop))
        .collect();
    let cut: Vec<std::ops::Range<usize>> = spans
        .iter()
        .flatten()
        .zip(&remembered)
        .filter(|(_, r)| r.is_some())
        .map(|(s, _)| s.clone())
        .collect();
    let attempt = if cut.is_empty() {
        None
    } else {
        let stripped = skim::cut(&text, &cut);
        read(&stripped, ctx).ok().map(|feed| (feed, stripped))
    };
    let (feed, read_text, remembered) = match attempt {
        Some((feed, stripped)) => (feed, std::borrow::Cow::Owned(stripped), remembered),
        // Nothing to cut, or the cut text does not read: the whole document, nothing assumed.
        None => {
            let feed = read(&text, ctx)?;
            (feed, text, vec![None; digests.len()])
        }
    };
    let mut taken = Taken::default();
    for seen in remembered
        .iter()
        .flatten()
        .filter(|s| s.fate != Fate::Duplicate)
    {
        taken.keys.insert(seen.key);
        if seen.link != 0 {
            taken.links.insert(seen.link);
        }
    }
    let fresh = remembered.iter().filter(|r| r.is_none()).count();
    let entries_match = spans.is_some() && feed.entries.len() == fresh;
    let (mut parsed, outcomes) = convert::convert(feed, &read_text, ctx, taken);
    let unchanged: Vec<&Seen> = remembered.iter().flatten().collect();
    parsed.duplicates += unchanged
        .iter()
        .filter(|s| s.fate == Fate::Duplicate)
        .count();
    let unchanged_skipped = unchanged.iter().filter(|s| s.fate == Fate::Skipped).count();
    let mut item_entries = Vec::with_capacity(parsed.items.len());
    let memory = entries_match.then(|| {
        let mut outcomes = outcomes.into_iter();
        let entries = digests
            .iter()
            .zip(&remembered)
            .enumerate()
            .map(|(place, (&digest, seen))| match seen {
                Some(seen) => *seen,
                None => match outcomes.next().flatten() {
                    Some((key, link)) => {
                        item_entries.push(place);
                        Seen {
                            digest,
                            key,
                            link,
                            fate: Fate::Stored,
                        }
                    }
                    None => Seen {
                        digest,
                        key: 0,
                        link: 0,
                        fate: Fate::Duplicate,
                    },
                },
            })
            .collect();
        Memory { salt, entries }
    });
    if memory.is_none() {
        // Items without entries to note against: `apply` still needs one place per item.
        item_entries = vec![0; parsed.items.len()];
    }
    Ok(Remembered {
        parsed,
        unchanged: unchanged.len(),
        unchanged_skipped,
        memory,
        item_entries,
    })
}

/// feed-rs on the repaired text. A document cut off mid-way still holds whole items: when the
/// whole fails, what `repair::salvage_truncated` keeps is read instead.
fn read(text: &str, ctx: &ParseContext) -> Result<model::Feed, ParseError> {
    match parse_guarded(text, ctx) {
        Ok(feed) => Ok(feed),
        Err(first) => match repair::salvage_truncated(text) {
            Some(salvaged) => parse_guarded(&salvaged, ctx).map_err(|_| first),
            None => Err(first),
        },
    }
}

/// Runs feed-rs on `text` with a parser of its own: a feed-rs parser keeps per-entry state that
/// a failed parse can leave behind (its MediaRSS scope), and a second document read with it
/// panics. A panic inside the library costs this document, not the process, and prints nothing
/// (see `quiet_panics`): the message becomes the document's error.
fn parse_guarded(text: &str, ctx: &ParseContext) -> Result<model::Feed, ParseError> {
    let tz = ctx.timezone;
    let parser = feed_rs::parser::Builder::new()
        .base_uri(ctx.base.as_ref().map(Url::as_str))
        // An empty id marks "no GUID in the source", so identity falls back to link or hash
        // (feed-rs would otherwise invent a random one, which would make items reappear as new).
        .id_generator(|_, _, _| String::new())
        .timestamp_parser(move |t| normalize::parse_date(t, tz))
        .build();
    quiet_panics::catch(|| parser.parse(text.as_bytes()))
        .map_err(|message| {
            ParseError::Invalid(format!(
                "the feed parser failed on this document (internal error: {message})"
            ))
        })?
        .map_err(|e| ParseError::Invalid(e.to_string()))
}

/// Panics caught while a document is parsed, kept from the process's panic output: the default
/// hook would print a backtrace to stderr for a panic that is already handled as the document's
/// error. Panics anywhere else reach the previous hook as before.
pub(super) mod quiet_panics {
    use std::cell::{Cell, RefCell};
    use std::sync::Once;

    thread_local! {
        static CATCHING: Cell<bool> = const { Cell::new(false) };
        static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    /// Runs `f`; a panic inside it becomes `Err(its message)`.
    pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if CATCHING.with(Cell::get) {
                    let place = info
                        .location()
                        .map(|l| format!(" at {}:{}", l.file(), l.line()))
                        .unwrap_or_default();
                    let text = info
                        .payload()
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| info.payload().downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic".to_string());
                    MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{text}{place}")));
                } else {
                    previous(info);
                }
            }));
        });
        let was = CATCHING.with(|c| c.replace(true));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        CATCHING.with(|c| c.set(was));
        result.map_err(|_| {
            MESSAGE
                .with(|m| m.borrow_mut().take())
                .unwrap_or_else(|| "panic".to_string())
        })
    }
}

#[cfg(test)]
mod tests;
