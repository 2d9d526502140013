//! Rendering one digest email: a `DigestView` (filled by the digest assembler) goes through the
//! operator-editable templates `digest_subject.txt`, `digest.txt` and `digest.html` into a lettre
//! `Message`: multipart/alternative (plain text first, then HTML), UTF-8, RFC 2047 headers,
//! the view's stable Message-ID and one-click unsubscribe headers (RFC 8058).
//!
//! Each story is rendered on its own first, through `digest_story.html` and `digest_story.txt`
//! (`Templates::prepare`), and the email templates place those pieces (`story.html`,
//! `story.text`). Thousands of digests carry the same few hundred stories: a run prepares each
//! story once and every email that shows it reuses the pieces.
//!
//! This module is pure: it reads template files when asked to load them and otherwise touches
//! no database, network or clock. It never sends mail.
//!
//! Template variables (all strings unless said otherwise; dates are in the subscriber's timezone):
//!
//! | name | value |
//! | --- | --- |
//! | `place` | "Lào Cai", or a general label |
//! | `date` | the tick's local date, "28/11" |
//! | `date_long` | "Thứ Sáu, ngày 28/11/2025" |
//! | `count` | number of stories in this email (integer) |
//! | `more` | stories left out by the cap (integer); `more_url` where to read them, or none |
//! | `total` | `count + more` (integer) |
//! | `sections` | list of `{title, count, stories}` |
//! | `story` | `{title, url (none unless http/https), source, summary, time ("07:30 28/11"), also, also_names}` |
//! | `story.also` | list of `{name, url}`: other outlets; `also_names` is "A, B" |
//! | `story.html`, `story.text` | the story as `digest_story.html` / `digest_story.txt` rendered it (in the email templates only) |
//! | `manage_url`, `unsubscribe_url`, `base_url`, `to` | absolute links and the recipient |
//!
//! `.html` templates escape every value (story text is plain text); `.txt` templates do not.
//! Printing an unknown variable is an error naming the template and line, so a typo in an
//! operator's template is caught instead of leaving a blank in thousands of emails.

mod headers;
mod message;
mod templates;

pub use headers::{ListUnsubscribe, ListUnsubscribePost};
pub use message::{Rendered, render, render_8bit, subject};
pub use templates::{
    HTML_TEMPLATE, STORY_HTML_TEMPLATE, STORY_TEXT_TEMPLATE, SUBJECT_TEMPLATE, TEXT_TEMPLATE,
    Templates,
};

#[cfg(test)]
use message::eight_bit_lines;
#[cfg(test)]
use templates::escape_html;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::Value;

/// Everything a digest email shows. Built by the digest assembler; rendered by `render`.
#[derive(Debug, Clone)]
pub struct DigestView {
    pub to: String,
    /// The schedule tick this digest is for (UTC).
    pub tick: DateTime<Utc>,
    /// The subscriber's timezone: dates in the email are shown in it.
    pub timezone: Tz,
    /// A place for the subject ("Lào Cai"), or a general label ("tin tỉnh") when topics span several.
    pub place: String,
    pub sections: Vec<Section>,
    /// Stories left out by the `max_items` cap, and where to read them.
    pub more: usize,
    pub more_url: Option<String>,
    pub manage_url: String,
    pub unsubscribe_url: String,
    pub base_url: String,
    /// Stable per subscriber and tick, e.g. "<digest.12.1764310800@tinbao.example.vn>".
    pub message_id: String,
}

/// One topic's stories, newest first.
#[derive(Debug, Clone)]
pub struct Section {
    /// Human description of the topic, e.g. "Thời sự · Lào Cai · “Lào Cai” lũ".
    pub title: String,
    pub stories: Vec<PreparedStory>,
}

/// A story ready for any number of emails: its template values and its two rendered pieces.
/// Made by `Templates::prepare`; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct PreparedStory(Value);

#[derive(Debug, Clone)]
pub struct Story {
    pub title: String,
    pub url: Option<String>,
    pub source: String,
    /// Plain text, already shortened.
    pub summary: String,
    pub published: DateTime<Utc>,
    /// Other outlets carrying the same story: (name, link).
    pub also: Vec<(String, Option<String>)>,
}

#[cfg(test)]
mod tests;
