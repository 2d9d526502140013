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

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Datelike, Utc, Weekday};
use chrono_tz::Tz;
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::{self, ContentType, Headers};
use lettre::message::{Mailbox, Mailboxes, MultiPart};
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value, context};
use std::fmt::Write as _;

mod headers;
pub use headers::{ListUnsubscribe, ListUnsubscribePost};

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

/// File names of the digest templates, in the operator's folder and in `templates/`.
pub const SUBJECT_TEMPLATE: &str = "digest_subject.txt";
pub const TEXT_TEMPLATE: &str = "digest.txt";
pub const HTML_TEMPLATE: &str = "digest.html";
pub const STORY_TEXT_TEMPLATE: &str = "digest_story.txt";
pub const STORY_HTML_TEMPLATE: &str = "digest_story.html";

/// The copies compiled into the binary, used for any file the operator's folder lacks.
const BUILTIN: [(&str, &str); 5] = [
    (
        SUBJECT_TEMPLATE,
        include_str!("../../templates/digest_subject.txt"),
    ),
    (TEXT_TEMPLATE, include_str!("../../templates/digest.txt")),
    (HTML_TEMPLATE, include_str!("../../templates/digest.html")),
    (
        STORY_TEXT_TEMPLATE,
        include_str!("../../templates/digest_story.txt"),
    ),
    (
        STORY_HTML_TEMPLATE,
        include_str!("../../templates/digest_story.html"),
    ),
];

/// The compiled digest templates. Cheap to share; load once and reuse for every email.
#[derive(Clone)]
pub struct Templates {
    env: Environment<'static>,
    /// Where each template came from: the operator's file, or `None` for the built-in copy.
    origins: Vec<(&'static str, Option<PathBuf>)>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// The templates compiled into the binary.
    pub fn builtin() -> Templates {
        let sources = BUILTIN.map(|(name, source)| (name, source.to_string(), None));
        // The built-in copies are fixed at build time and parsed by the unit tests.
        Templates::compile(sources).expect("built-in digest templates are valid")
    }

    /// The templates in `dir`, each file missing there replaced by its built-in copy. The files
    /// are read now: edits take effect at the next load, without rebuilding.
    pub fn load(dir: &Path) -> anyhow::Result<Templates> {
        if !dir.is_dir() {
            bail!("template folder {} does not exist", dir.display());
        }
        let mut sources = Vec::with_capacity(BUILTIN.len());
        for (name, builtin) in BUILTIN {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => sources.push((name, text, Some(path))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    sources.push((name, builtin.to_string(), None));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("reading template {}", path.display()));
                }
            }
        }
        Templates::compile(sources)
    }

    /// Which templates came from the operator's folder (for a log line at start-up).
    pub fn overridden(&self) -> Vec<&Path> {
        self.origins
            .iter()
            .filter_map(|(_, path)| path.as_deref())
            .collect()
    }

    fn compile(
        sources: impl IntoIterator<Item = (&'static str, String, Option<PathBuf>)>,
    ) -> anyhow::Result<Templates> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .context("template syntax settings")?;
        env.set_syntax(syntax);
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_formatter(escape_for_email);
        let mut origins = Vec::new();
        for (name, source, path) in sources {
            env.add_template_owned(name, source)
                .with_context(|| match &path {
                    Some(path) => format!("template {}", path.display()),
                    None => format!("built-in template {name}"),
                })?;
            origins.push((name, path));
        }
        Ok(Templates { env, origins })
    }

    /// `story` as shown in emails to readers in `tz`, with its pieces rendered: prepare once,
    /// place in any number of `DigestView`s.
    pub fn prepare(&self, story: &Story, tz: Tz) -> anyhow::Result<PreparedStory> {
        let mut fields = story_fields(story, tz);
        let ctx = context! { story => Value::from(fields.clone()) };
        let html = self.render(STORY_HTML_TEMPLATE, &ctx)?;
        let text = self.render(STORY_TEXT_TEMPLATE, &ctx)?;
        // One plain map (a merged context would search two maps at every lookup, in every email).
        fields.insert("html", Value::from_safe_string(html));
        fields.insert("text", Value::from(text));
        Ok(PreparedStory(Value::from(fields)))
    }

    fn render(&self, name: &str, ctx: &Value) -> anyhow::Result<String> {
        let origin = self
            .origins
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, path)| path.as_deref());
        let describe = || match origin {
            Some(path) => format!("rendering template {}", path.display()),
            None => format!("rendering built-in template {name}"),
        };
        let template = self.env.get_template(name).with_context(describe)?;
        template.render(ctx).with_context(describe)
    }
}

/// minijinja's HTML escaping also turns `/` into `&#x2f;`, which makes every link in the HTML
/// part unreadable to a person viewing the source and to naive link checkers. Escaping `& < > " '`
/// is enough for text and for double-quoted attribute values.
fn escape_for_email(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(text) if matches!(state.auto_escape(), AutoEscape::Html) && !value.is_safe() => {
            Ok(out.write_str(&escape_html(text))?)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// An email as it goes to a relay or into a file: its envelope and its text, CRLF line ends.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub envelope: Envelope,
    pub data: String,
}

impl Rendered {
    /// A lettre message, formatted (7-bit: plain ASCII).
    pub fn from_message(message: &Message) -> Rendered {
        let data = String::from_utf8(message.formatted())
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Rendered {
            envelope: message.envelope().clone(),
            data,
        }
    }
}

/// The digest email for `view`, from `from`, with bodies any SMTP server takes (7-bit:
/// quoted-printable or base64, whichever is shorter).
pub fn render(view: &DigestView, templates: &Templates, from: &Mailbox) -> anyhow::Result<Message> {
    let (subject, text, html) = contents(view, templates)?;
    seven_bit(view, from, subject, text, html)
}

/// The subject, plain text and HTML of `view`'s email, from the templates.
fn contents(view: &DigestView, templates: &Templates) -> anyhow::Result<(String, String, String)> {
    let ctx = template_context(view);
    Ok((
        render_subject(templates, &ctx)?,
        templates.render(TEXT_TEMPLATE, &ctx)?,
        templates.render(HTML_TEMPLATE, &ctx)?,
    ))
}

/// `render` for a server that announced 8BITMIME (RFC 6152), and for files: bodies as UTF-8,
/// about a third smaller than quoted-printable Vietnamese. Assembled here rather than by lettre
/// (which would copy each body twice more, and whose 8-bit check refuses lines of 76 octets or
/// more); lettre still formats the headers. A body with a line that cannot be broken to the
/// 998-octet limit falls back to the 7-bit form.
pub fn render_8bit(
    view: &DigestView,
    templates: &Templates,
    from: &Mailbox,
) -> anyhow::Result<Rendered> {
    let (subject, text, html) = contents(view, templates)?;
    let to = recipient(view)?;
    // No CR, LF or space in a boundary: breaking lines below cannot make or hide one.
    let boundary = boundary(&[&text, &html]);
    let mut headers = Headers::new();
    headers.set(header::From::from(Mailboxes::from(from.clone())));
    headers.set(header::To::from(Mailboxes::from(to.clone())));
    headers.set(header::Subject::from(subject.clone()));
    headers.set(header::MessageId::from(checked_message_id(
        &view.message_id,
    )?));
    headers.set(header::Date::new(SystemTime::from(view.tick)));
    headers.set(ListUnsubscribe::new(&view.unsubscribe_url)?);
    headers.set(ListUnsubscribePost);
    headers.set(header::MIME_VERSION_1_0);
    headers.set(
        ContentType::parse(&format!("multipart/alternative; boundary=\"{boundary}\""))
            .context("multipart content type")?,
    );
    let mut data = String::with_capacity((text.len() + html.len()) * 17 / 16 + 1500);
    let _ = write!(data, "{headers}\r\n");
    // Plain text first, then HTML (RFC 2046: the preferred alternative last). Each body goes
    // straight into the message, its lines ended with CRLF and kept under the limit.
    let mut fits = true;
    for (kind, body) in [("text/plain", &text), ("text/html", &html)] {
        let _ = write!(
            data,
            "--{boundary}\r\nContent-Type: {kind}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        );
        fits = fits && push_eight_bit(&mut data, body, MAX_LINE).is_some();
    }
    if !fits {
        return Ok(Rendered::from_message(&seven_bit(
            view, from, subject, text, html,
        )?));
    }
    let _ = write!(data, "--{boundary}--\r\n");
    let envelope =
        Envelope::new(Some(from.email.clone()), vec![to.email]).context("digest envelope")?;
    Ok(Rendered { envelope, data })
}

/// A multipart boundary that occurs in none of `parts`: random, and numbered so that a retry
/// differs even if no randomness was to be had.
fn boundary(parts: &[&str]) -> String {
    static NUMBER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    loop {
        let mut random = [0u8; 8];
        let _ = getrandom::fill(&mut random);
        let number = NUMBER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let boundary = format!("=_tinbao_{:016x}{number:x}", u64::from_le_bytes(random));
        if !parts
            .iter()
            .any(|p| memchr::memmem::find(p.as_bytes(), boundary.as_bytes()).is_some())
        {
            return boundary;
        }
    }
}

fn recipient(view: &DigestView) -> anyhow::Result<Mailbox> {
    view.to
        .parse()
        .with_context(|| format!("recipient address {:?}", view.to))
}

/// The 7-bit digest email: lettre builds it and picks each body's encoding.
fn seven_bit(
    view: &DigestView,
    from: &Mailbox,
    subject: String,
    text: String,
    html: String,
) -> anyhow::Result<Message> {
    let to = recipient(view)?;
    let message_id = checked_message_id(&view.message_id)?;
    let unsubscribe = ListUnsubscribe::new(&view.unsubscribe_url)?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(message_id))
        .date(SystemTime::from(view.tick))
        .header(unsubscribe)
        .header(ListUnsubscribePost)
        .multipart(MultiPart::alternative_plain_html(text, html))
        .with_context(|| format!("building the digest email for {}", view.to))
}

/// RFC 5322 allows 998 octets per line; leave room.
const MAX_LINE: usize = 990;

/// `text` as an 8-bit MIME body: CRLF line ends, no line longer than `max` octets (a long line
/// is broken at a space: the same text in HTML, a soft wrap in plain text). `None` when that is
/// impossible (a bare CR, a NUL, or a long line without a space), for the 7-bit fallback.
/// (lettre's own 8-bit check refuses any line of 76 octets or more, i.e. nearly every HTML part.)
#[cfg(test)]
fn eight_bit_lines(text: &str, max: usize) -> Option<String> {
    let mut out = String::new();
    push_eight_bit(&mut out, text, max).map(|()| out)
}

/// `eight_bit_lines` appended to `out` (`None`: what was appended is partial; discard it).
fn push_eight_bit(out: &mut String, text: &str, max: usize) -> Option<()> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if memchr::memchr2(b'\r', 0, text.as_bytes()).is_some() {
        // CRLF is a line end; any other CR, or a NUL, refuses.
        for line in body.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.bytes().any(|b| b == b'\r' || b == 0) {
                return None;
            }
            push_line(out, line, max)?;
        }
        return Some(());
    }
    // The usual case (templates write LF): find each LF at memchr speed, copy the line whole.
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', body.as_bytes()).chain([body.len()]) {
        push_line(out, &body[start..end], max)?;
        start = end + 1;
    }
    Some(())
}

/// One line and its CRLF, broken at spaces into pieces of at most `max` octets.
fn push_line(out: &mut String, mut line: &str, max: usize) -> Option<()> {
    while line.len() > max {
        // A space is one byte in UTF-8, so cutting there never splits a character.
        let cut = line.as_bytes()[..=max].iter().rposition(|b| *b == b' ')?;
        out.push_str(&line[..cut]);
        out.push_str("\r\n");
        line = &line[cut + 1..];
    }
    out.push_str(line);
    out.push_str("\r\n");
    Some(())
}

/// The subject line `render` would use, decoded.
pub fn subject(view: &DigestView, templates: &Templates) -> anyhow::Result<String> {
    render_subject(templates, &template_context(view))
}

fn render_subject(templates: &Templates, ctx: &Value) -> anyhow::Result<String> {
    let raw = templates.render(SUBJECT_TEMPLATE, ctx)?;
    // A header is one line: whatever line breaks the template left become single spaces.
    let subject = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if subject.is_empty() {
        bail!("template {SUBJECT_TEMPLATE} produced an empty subject");
    }
    Ok(subject)
}

/// A Message-ID as RFC 5322 wants it: `<left@right>`, printable ASCII, no spaces.
fn checked_message_id(id: &str) -> anyhow::Result<String> {
    let inner = id.strip_prefix('<').and_then(|s| s.strip_suffix('>'));
    match inner {
        Some(inner)
            if inner.contains('@')
                && inner
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '<' && c != '>') =>
        {
            Ok(id.to_string())
        }
        _ => bail!("digest Message-ID {id:?} is not of the form <left@right>"),
    }
}

fn template_context(view: &DigestView) -> Value {
    let tz = view.timezone;
    let local = view.tick.with_timezone(&tz);
    let count: usize = view.sections.iter().map(|s| s.stories.len()).sum();
    let sections: Vec<Value> = view.sections.iter().map(section_value).collect();
    context! {
        to => &view.to,
        place => &view.place,
        date => local.format("%d/%m").to_string(),
        date_long => format!("{}, ngày {}", weekday_vi(local.weekday()), local.format("%d/%m/%Y")),
        count,
        more => view.more,
        total => count + view.more,
        more_url => web_link(view.more_url.as_deref()),
        manage_url => &view.manage_url,
        unsubscribe_url => &view.unsubscribe_url,
        base_url => &view.base_url,
        sections,
    }
}

fn section_value(section: &Section) -> Value {
    let stories: Vec<Value> = section.stories.iter().map(|s| s.0.clone()).collect();
    context! {
        title => &section.title,
        count => stories.len(),
        stories,
    }
}

fn story_fields(story: &Story, tz: Tz) -> BTreeMap<&'static str, Value> {
    let also: Vec<Value> = story
        .also
        .iter()
        .map(|(name, url)| context! { name, url => web_link(url.as_deref()) })
        .collect();
    let also_names = story
        .also
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    BTreeMap::from([
        ("title", Value::from(story.title.as_str())),
        ("url", Value::from(web_link(story.url.as_deref()))),
        ("source", Value::from(story.source.as_str())),
        ("summary", Value::from(story.summary.as_str())),
        (
            "time",
            Value::from(
                story
                    .published
                    .with_timezone(&tz)
                    .format("%H:%M %d/%m")
                    .to_string(),
            ),
        ),
        ("also", Value::from(also)),
        ("also_names", Value::from(also_names)),
    ])
}

/// Only http and https links reach an email: a `javascript:` or `data:` link from a feed would
/// be a trap for the reader, so the story is shown without a link instead.
fn web_link(url: Option<&str>) -> Option<String> {
    let url = url?.trim();
    let scheme = url.split_once(':')?.0;
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        .then(|| url.to_string())
}

fn weekday_vi(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Thứ Hai",
        Weekday::Tue => "Thứ Ba",
        Weekday::Wed => "Thứ Tư",
        Weekday::Thu => "Thứ Năm",
        Weekday::Fri => "Thứ Sáu",
        Weekday::Sat => "Thứ Bảy",
        Weekday::Sun => "Chủ Nhật",
    }
}

#[cfg(test)]
mod tests;
