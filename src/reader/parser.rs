//! Feed documents into normalised items, in one chain: `decode` (any charset to UTF-8) ->
//! `repair` (shapes feed-rs would refuse) -> read (feed-rs: RSS 0.9x/1.0/2.0, Atom, JSON Feed;
//! a truncated document keeps its whole items) -> `convert` (each entry normalised). Pure: bytes
//! in, items out; no HTTP and no SQL.

use super::{convert, decode, normalize, repair};
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
    Ok(convert::convert(feed, &text, ctx))
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
mod quiet_panics {
    use std::cell::{Cell, RefCell};
    use std::sync::Once;

    thread_local! {
        static CATCHING: Cell<bool> = const { Cell::new(false) };
        static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    /// Runs `f`; a panic inside it becomes `Err(its message)`.
    pub(super) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
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
