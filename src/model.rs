//! The values that cross layers: what a poll hands to storage (each normalised item, the
//! response validators to send next time). Plain data, no behaviour, defined below both the
//! reader that makes them and the storage that keeps them.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One normalised item, ready to store.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NewItem {
    pub key: String,
    pub guid: Option<String>,
    pub url: Option<String>,
    pub canonical_url: Option<String>,
    pub title: String,
    pub summary_html: String,
    pub content_html: String,
    /// Plain text of the summary (else the content): what topic queries match against.
    pub text: String,
    pub authors: Vec<String>,
    pub categories: Vec<String>,
    pub image_url: Option<String>,
    pub published: DateTime<Utc>,
    pub date_estimated: bool,
    pub updated: Option<DateTime<Utc>>,
    pub content_hash: String,
    /// The stored form of the item's near-duplicate signature (`cluster::Signature::to_bytes` of
    /// title and text). The poll makes it, off the async workers, for the items it is about to
    /// insert or update; empty for the rest, which are not written.
    #[serde(skip)]
    pub signature: Vec<u8>,
}

/// The validators of the last good response, sent back as If-None-Match / If-Modified-Since.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}
