//! Normalisation of what a feed said into what tinbao stores: plain-text titles, sanitised HTML
//! with a plain-text twin, absolute and canonical links, UTC dates (with a Vietnamese-local
//! fallback), and the identity key of an item. Pure functions only: no I/O, no clock reads
//! (callers pass `now`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use regex::Regex;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;
use url::Url;

pub use crate::text::{clean_text, html_to_text, nfc, text_of_sanitized, title_text};

/// An allow-list HTML sanitiser for one document (ammonia's defaults: no scripts, styles,
/// event handlers or `javascript:` links), resolving relative links against the document's base
/// and marking links `noopener noreferrer`. Built once per document: building one is far
/// costlier than using it.
pub struct Sanitizer {
    builder: ammonia::Builder<'static>,
}

impl Sanitizer {
    pub fn new(base: Option<&Url>) -> Sanitizer {
        let mut builder = ammonia::Builder::default();
        builder.link_rel(Some("noopener noreferrer"));
        match base {
            Some(base) => builder.url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone())),
            None => builder.url_relative(ammonia::UrlRelative::PassThrough),
        };
        Sanitizer { builder }
    }

    /// The sanitised, NFC form of an HTML fragment, without characters XML 1.0 forbids.
    pub fn clean(&self, html: &str) -> String {
        let html = html.trim();
        if html.is_empty() {
            return String::new();
        }
        if crate::text::markup_depth(html) > crate::text::MAX_MARKUP_DEPTH {
            // Too deep to parse in reasonable time: its text, as one escaped paragraph.
            let text = crate::text::strip_tags(html)
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            return format!("<p>{}</p>", nfc(crate::text::clean_text(&text).as_str()));
        }
        let cleaned = self.builder.clean(html).to_string();
        let cleaned: String = cleaned
            .chars()
            .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
            .collect();
        nfc(cleaned.trim())
    }
}

/// Sanitises one fragment (convenience for single use; see `Sanitizer`).
pub fn sanitize_html(html: &str, base: Option<&Url>) -> String {
    Sanitizer::new(base).clean(html)
}

/// Resolves `href` against `base`; absolute http(s) URLs only.
pub fn absolute_link(href: &str, base: Option<&Url>) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let url = match Url::parse(href) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => base?.join(href).ok()?,
        Err(_) => return None,
    };
    matches!(url.scheme(), "http" | "https").then_some(url)
}

/// The canonical form of a link, used as an identity and for cross-source matching: no fragment,
/// no tracking parameters (utm_*, fbclid, gclid, …), lower-case host (the URL parser already
/// lower-cases it), no default port.
pub fn canonical_link(url: &Url) -> String {
    let mut u = url.clone();
    u.set_fragment(None);
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| !is_tracking_param(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(kept);
    }
    u.to_string()
}

fn is_tracking_param(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("utm_")
        || matches!(
            k.as_str(),
            "fbclid" | "gclid" | "dclid" | "msclkid" | "mc_cid" | "mc_eid" | "zarsrc" | "igshid"
        )
}

/// Parses a feed date: RFC 3339, RFC 2822 (with the usual sloppiness), then forms Vietnamese
/// sites write, read in the operator's timezone `tz` unless they carry an offset:
/// `28/11/2026 07:30`, `Thứ bảy, 28/11/2026, 07:30 (GMT+7)`, `2026-11-28 07:30:00`.
pub fn parse_date(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    if let Some(d) = parse_rfc2822_lenient(t) {
        return Some(d);
    }
    parse_local_date(t, tz)
}

fn parse_rfc2822_lenient(t: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc2822(t) {
        return Some(d.with_timezone(&Utc));
    }
    // Common faults: a spelled-out weekday or month, "GMT+7", "UTC", a trailing period.
    static ZONE_NAME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\s(GMT|UTC)\s*([+-])(\d{1,2})(?::?(\d{2}))?$").expect("constant regex")
    });
    let mut s = t.trim_end_matches('.').to_string();
    if let Some(c) = ZONE_NAME.captures(&s) {
        let hours: u32 = c[3].parse().ok()?;
        let minutes: u32 = c.get(4).map_or(Some(0), |m| m.as_str().parse().ok())?;
        let replacement = format!(" {}{hours:02}{minutes:02}", &c[2]);
        s = ZONE_NAME.replace(&s, replacement.as_str()).into_owned();
    } else if s.ends_with(" UTC") || s.ends_with(" Z") {
        s = format!(
            "{} +0000",
            s.trim_end_matches(" UTC").trim_end_matches(" Z")
        );
    }
    for (long, short) in LONG_NAMES {
        s = s.replace(long, short);
    }
    DateTime::parse_from_rfc2822(&s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

const LONG_NAMES: [(&str, &str); 19] = [
    ("Monday", "Mon"),
    ("Tuesday", "Tue"),
    ("Wednesday", "Wed"),
    ("Thursday", "Thu"),
    ("Friday", "Fri"),
    ("Saturday", "Sat"),
    ("Sunday", "Sun"),
    ("January", "Jan"),
    ("February", "Feb"),
    ("March", "Mar"),
    ("April", "Apr"),
    ("June", "Jun"),
    ("July", "Jul"),
    ("August", "Aug"),
    ("September", "Sep"),
    ("Sept", "Sep"),
    ("October", "Oct"),
    ("November", "Nov"),
    ("December", "Dec"),
];

fn parse_local_date(t: &str, tz: Tz) -> Option<DateTime<Utc>> {
    static DMY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})\b").expect("constant regex")
    });
    static YMD: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b(\d{4})-(\d{1,2})-(\d{1,2})").expect("constant regex"));
    static HM: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:^|[^\d/.\-])(\d{1,2})[:h](\d{2})(?::(\d{2}))?").expect("constant regex")
    });
    static OFFSET: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(?:GMT|UTC)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?|([+-])(\d{2}):?(\d{2})$")
            .expect("constant regex")
    });

    let date = if let Some(c) = YMD.captures(t) {
        NaiveDate::from_ymd_opt(c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?)?
    } else {
        let c = DMY.captures(t)?;
        NaiveDate::from_ymd_opt(c[3].parse().ok()?, c[2].parse().ok()?, c[1].parse().ok()?)?
    };
    // Look for the time outside the date itself.
    let without_date = YMD.replace(&DMY.replace(t, " "), " ").into_owned();
    let time = match HM.captures(&without_date) {
        Some(c) => NaiveTime::from_hms_opt(
            c[1].parse().ok()?,
            c[2].parse().ok()?,
            c.get(3).map_or(Some(0), |m| m.as_str().parse().ok())?,
        )?,
        None => NaiveTime::MIN,
    };
    let local = NaiveDateTime::new(date, time);
    if let Some(c) = OFFSET.captures(&without_date) {
        let (sign, h, m) = match c.get(1) {
            Some(s) => (s.as_str(), &c[2], c.get(3).map_or("0", |m| m.as_str())),
            None => (&c[4], &c[5], &c[6]),
        };
        let secs = (h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60)
            * if sign == "-" { -1 } else { 1 };
        let offset = chrono::FixedOffset::east_opt(secs)?;
        return offset
            .from_local_datetime(&local)
            .single()
            .map(|d| d.with_timezone(&Utc));
    }
    tz.from_local_datetime(&local)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
}

/// The date an item is filed under: its published (else updated) date, unless it has none or
/// claims to be more than a day in the future, in which case the time tinbao first saw it is
/// used and the date is flagged as estimated.
pub fn effective_date(
    published: Option<DateTime<Utc>>,
    updated: Option<DateTime<Utc>>,
    first_seen: DateTime<Utc>,
) -> (DateTime<Utc>, bool) {
    match published.or(updated) {
        Some(d) if d <= first_seen + chrono::Duration::days(1) => (d, false),
        _ => (first_seen, true),
    }
}

/// The identity of an item within its feed: the GUID, else the canonical link, else a hash of
/// its title and date (or title and text when it has no date of its own). Prefixed so that the
/// three kinds never collide.
pub fn item_key(
    guid: Option<&str>,
    canonical: Option<&str>,
    title: &str,
    date: Option<DateTime<Utc>>,
    text: &str,
) -> String {
    if let Some(g) = guid.map(str::trim).filter(|g| !g.is_empty()) {
        return format!("g:{g}");
    }
    if let Some(l) = canonical {
        return format!("l:{l}");
    }
    let second = match date {
        Some(d) => d.timestamp().to_string(),
        None => text.to_string(),
    };
    format!("h:{}", short_hash(&[title, &second]))
}

/// A short, stable hex digest of the parts (SHA-256, first 16 bytes).
pub fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
