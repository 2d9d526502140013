//! Subscribers' links: confirm, manage and unsubscribe URLs carrying a random token. A token is
//! 24 bytes from the OS's randomness, base64url (32 characters): 8 bytes of selector, by which
//! the stored row is found, and 16 bytes (128 bits) of secret. Only the SHA-256 of the whole
//! token is stored, and it is compared in constant time, so neither a copy of the database nor
//! the timing of a lookup yields a working link. Each email mints its own tokens; they expire
//! (a confirm link after `CONFIRM_VALID`, the others after `LINK_VALID`).
//!
//! The installation's secret (settings table) is kept here too: it signs the pages' CSRF
//! tokens (see `http::csrf`).

use crate::storage::{NewToken, Store};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Manage,
    Unsubscribe,
    /// Double opt-in; valid for `CONFIRM_VALID`.
    Confirm,
    /// A subscriber's private feed of their topics: one per subscriber, valid until revoked.
    Feed,
}

impl Purpose {
    /// The name stored with the token, and the URL's path segment.
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Manage => "manage",
            Purpose::Unsubscribe => "unsubscribe",
            Purpose::Confirm => "confirm",
            Purpose::Feed => "feed",
        }
    }

    fn valid_for(self) -> chrono::Duration {
        match self {
            Purpose::Confirm => CONFIRM_VALID,
            Purpose::Manage | Purpose::Unsubscribe => LINK_VALID,
            Purpose::Feed => FEED_VALID,
        }
    }
}

/// How long a confirmation link works.
pub const CONFIRM_VALID: chrono::Duration = chrono::Duration::hours(48);
/// How long the manage and unsubscribe links of one email work.
pub const LINK_VALID: chrono::Duration = chrono::Duration::days(90);

/// A private feed's token works until it is revoked: this is only a date far enough away.
const FEED_VALID: chrono::Duration = chrono::Duration::days(365 * 100);

const SELECTOR: usize = 8;
const SECRET: usize = 16;

/// A freshly drawn token: the text for the link and what gets stored.
#[derive(Debug, Clone)]
pub struct Token {
    pub text: String,
    pub selector: String,
    pub hash: String,
}

impl Token {
    pub fn generate() -> anyhow::Result<Token> {
        let mut raw = [0u8; SELECTOR + SECRET];
        getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
        Ok(Token {
            text: URL_SAFE_NO_PAD.encode(raw),
            selector: hex(&raw[..SELECTOR]),
            hash: hex(&Sha256::digest(raw)),
        })
    }

    /// A private feed's token: a random selector and a secret derived from it with the
    /// installation's secret, so that the subscriber's page can show the same address again
    /// from the stored selector (only its hash is stored, as for every token).
    fn derived(secret: &[u8], selector: [u8; SELECTOR]) -> Token {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"private feed:");
        mac.update(&selector);
        let mut raw = [0u8; SELECTOR + SECRET];
        raw[..SELECTOR].copy_from_slice(&selector);
        raw[SELECTOR..].copy_from_slice(&mac.finalize().into_bytes()[..SECRET]);
        Token {
            text: URL_SAFE_NO_PAD.encode(raw),
            selector: hex(&selector),
            hash: hex(&Sha256::digest(raw)),
        }
    }

    /// The selector and hash of a token as it came in a URL; `None` if it cannot be one.
    fn parse(text: &str) -> Option<(String, [u8; 32])> {
        let raw = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        if raw.len() != SELECTOR + SECRET {
            return None;
        }
        Some((hex(&raw[..SELECTOR]), Sha256::digest(&raw).into()))
    }
}

#[derive(Clone)]
pub struct Links {
    secret: Vec<u8>,
    base: Url,
}

/// An email's own manage and unsubscribe URLs.
#[derive(Debug, Clone)]
pub struct EmailLinks {
    pub manage: String,
    pub unsubscribe: String,
}

impl Links {
    pub fn new(secret: Vec<u8>, base: Url) -> Links {
        Links { secret, base }
    }

    /// The installation's secret (for signing CSRF tokens).
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Mints one token per purpose for a subscriber, stores their hashes, and returns the
    /// absolute URLs in the same order.
    pub async fn mint(
        &self,
        store: &Store,
        subscriber_id: i64,
        purposes: &[Purpose],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<String>> {
        let mut urls = self
            .mint_many(store, &[subscriber_id], purposes, now)
            .await?;
        Ok(urls.pop().unwrap_or_default())
    }

    /// The manage and unsubscribe links every email to an active subscriber carries, fresh for
    /// each email, for several subscribers in one write (a batch of digests), in order.
    pub async fn mint_email_links(
        &self,
        store: &Store,
        subscriber_ids: &[i64],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<EmailLinks>> {
        let minted = self
            .mint_many(
                store,
                subscriber_ids,
                &[Purpose::Manage, Purpose::Unsubscribe],
                now,
            )
            .await?;
        Ok(minted
            .into_iter()
            .map(|urls| {
                let mut urls = urls.into_iter();
                EmailLinks {
                    manage: urls.next().unwrap_or_default(),
                    unsubscribe: urls.next().unwrap_or_default(),
                }
            })
            .collect())
    }

    /// `mint` for several subscribers in one write (a batch of digests): for each subscriber, in
    /// order, the URLs of `purposes`.
    pub async fn mint_many(
        &self,
        store: &Store,
        subscriber_ids: &[i64],
        purposes: &[Purpose],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Vec<String>>> {
        let mut urls = Vec::with_capacity(subscriber_ids.len());
        let mut rows = Vec::with_capacity(subscriber_ids.len() * purposes.len());
        for &subscriber_id in subscriber_ids {
            let mut theirs = Vec::with_capacity(purposes.len());
            for &purpose in purposes {
                let token = Token::generate()?;
                theirs.push(self.url(purpose, &token.text));
                rows.push((
                    subscriber_id,
                    NewToken {
                        selector: token.selector,
                        hash: token.hash,
                        purpose: purpose.name(),
                        expires_at: now + purpose.valid_for(),
                    },
                ));
            }
            urls.push(theirs);
        }
        store.insert_tokens(&rows, now).await?;
        Ok(urls)
    }

    /// The subscriber a token is for, if it is stored, for this purpose, and not expired.
    pub async fn verify(
        &self,
        store: &Store,
        purpose: Purpose,
        text: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<i64>> {
        let Some((selector, hash)) = Token::parse(text) else {
            return Ok(None);
        };
        let Some(row) = store.token(&selector).await? else {
            return Ok(None);
        };
        let stored = unhex(&row.hash).unwrap_or_default();
        let genuine: bool = subtle::ConstantTimeEq::ct_eq(&stored[..], &hash[..]).into();
        Ok(
            (genuine && row.purpose == purpose.name() && row.expires_at > now)
                .then_some(row.subscriber_id),
        )
    }

    /// The subscriber's private feed (`{base}feeds/me/{token}.atom`), made on first asking.
    pub async fn private_feed(
        &self,
        store: &Store,
        subscriber_id: i64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        let selector = match store.feed_selector(subscriber_id).await? {
            Some(selector) => selector,
            None => {
                let mut selector = [0u8; SELECTOR];
                getrandom::fill(&mut selector)
                    .map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
                let token = Token::derived(&self.secret, selector);
                store
                    .insert_tokens(
                        &[(
                            subscriber_id,
                            NewToken {
                                selector: token.selector.clone(),
                                hash: token.hash,
                                purpose: Purpose::Feed.name(),
                                expires_at: now + Purpose::Feed.valid_for(),
                            },
                        )],
                        now,
                    )
                    .await?;
                token.selector
            }
        };
        let raw: [u8; SELECTOR] = unhex(&selector)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("stored feed selector {selector:?} is not 8 bytes"))?;
        let token = Token::derived(&self.secret, raw);
        Ok(format!("{}feeds/me/{}.atom", self.base, token.text))
    }

    /// The absolute URL of a token: `{base}{purpose}/{token}`.
    pub fn url(&self, purpose: Purpose, token: &str) -> String {
        format!("{}{}/{token}", self.base, purpose.name())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_their_hash_is_what_is_stored() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert_ne!(a.text, b.text);
        assert_eq!(a.text.len(), 32);
        let (selector, hash) = Token::parse(&a.text).unwrap();
        assert_eq!(selector, a.selector);
        assert_eq!(hex(&hash), a.hash);
        assert!(!a.hash.contains(&a.text));
    }

    #[test]
    fn a_feed_token_is_derived_from_its_selector_and_the_secret() {
        let a = Token::derived(b"one", [7; SELECTOR]);
        assert_eq!(a.text, Token::derived(b"one", [7; SELECTOR]).text);
        assert_ne!(a.text, Token::derived(b"two", [7; SELECTOR]).text);
        assert_ne!(a.text, Token::derived(b"one", [8; SELECTOR]).text);
        let (selector, hash) = Token::parse(&a.text).unwrap();
        assert_eq!((selector, hex(&hash)), (a.selector, a.hash));
    }

    #[test]
    fn malformed_tokens_are_not_parsed() {
        assert!(Token::parse("not-a-token").is_none());
        assert!(Token::parse("").is_none());
        assert!(Token::parse(&URL_SAFE_NO_PAD.encode([0u8; 23])).is_none());
    }
}
