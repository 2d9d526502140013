//! One digest as an email: the templates' output in a multipart/alternative message, 7-bit
//! (quoted-printable, through lettre) or 8-bit (UTF-8 written straight out, for relays that
//! announce 8BITMIME), with RFC 2047 headers, the stable Message-ID and one-click unsubscribe.

use super::DigestView;
use super::headers::{ListUnsubscribe, ListUnsubscribePost};
use super::templates::{
    HTML_TEMPLATE, SUBJECT_TEMPLATE, TEXT_TEMPLATE, Templates, template_context,
};
use anyhow::{Context as _, bail};
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::{self, ContentType, Headers};
use lettre::message::{Mailbox, Mailboxes, MultiPart};
use minijinja::Value;
use std::fmt::Write as _;
use std::time::SystemTime;

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
pub(super) fn eight_bit_lines(text: &str, max: usize) -> Option<String> {
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
