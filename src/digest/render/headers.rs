//! The list headers of a digest email, as lettre header types: one-click unsubscribe
//! (RFC 2369 `List-Unsubscribe`, RFC 8058 `List-Unsubscribe-Post`).

use anyhow::bail;
use lettre::message::header::{Header, HeaderName, HeaderValue};

use super::templates::web_link;

type ParseError = Box<dyn std::error::Error + Send + Sync>;

/// `List-Unsubscribe: <https://…>` (RFC 2369), the link a mail client offers as "unsubscribe".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUnsubscribe(String);

impl ListUnsubscribe {
    /// The header for `url`, which must be an absolute http(s) URL in plain ASCII: the header is
    /// not RFC 2047-encoded, and a client that cannot parse it would hide the unsubscribe button.
    pub fn new(url: &str) -> anyhow::Result<ListUnsubscribe> {
        let usable = web_link(Some(url)).is_some()
            && url
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | ','));
        if !usable {
            bail!("unsubscribe link {url:?} is not a plain absolute http(s) URL");
        }
        Ok(ListUnsubscribe(url.to_string()))
    }

    pub fn url(&self) -> &str {
        &self.0
    }
}

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, ParseError> {
        let url = s
            .trim()
            .strip_prefix('<')
            .and_then(|s| s.split_once('>'))
            .map(|(url, _)| url)
            .ok_or("List-Unsubscribe is not of the form <URL>")?;
        Ok(ListUnsubscribe::new(url).map_err(|e| e.to_string())?)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): the client may unsubscribe
/// with one POST to the List-Unsubscribe link, without opening a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListUnsubscribePost;

const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(s: &str) -> Result<Self, ParseError> {
        if s.trim() == ONE_CLICK {
            Ok(ListUnsubscribePost)
        } else {
            Err(format!("List-Unsubscribe-Post must be {ONE_CLICK:?}").into())
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), ONE_CLICK.to_string())
    }
}
