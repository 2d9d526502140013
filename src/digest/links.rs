//! Subscribers' links: manage, unsubscribe and confirm URLs carrying a signed token. A token is
//! the purpose, the subscriber id and the issue time, authenticated with HMAC-SHA256 under the
//! installation's secret (truncated to 128 bits), base64url. Nothing per subscriber is stored, so
//! there is no token table to leak; checks are constant-time; a confirm link expires.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Manage = 1,
    Unsubscribe = 2,
    /// Double opt-in; valid for `CONFIRM_VALID`.
    Confirm = 3,
}

/// How long a confirmation link works.
pub const CONFIRM_VALID: chrono::Duration = chrono::Duration::hours(48);

const TAG: usize = 16;

#[derive(Clone)]
pub struct Links {
    secret: Vec<u8>,
    base: Url,
}

impl Links {
    pub fn new(secret: Vec<u8>, base: Url) -> Links {
        Links { secret, base }
    }

    pub fn token(&self, purpose: Purpose, subscriber_id: i64, issued: DateTime<Utc>) -> String {
        let mut payload = Vec::with_capacity(17 + TAG);
        payload.push(purpose as u8);
        payload.extend_from_slice(&subscriber_id.to_be_bytes());
        payload.extend_from_slice(&issued.timestamp().to_be_bytes());
        let tag = self.tag(&payload);
        payload.extend_from_slice(&tag[..TAG]);
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// The subscriber a token is for, if it is genuine, for this purpose, and (for a confirm
    /// token) not expired.
    pub fn verify(&self, purpose: Purpose, token: &str, now: DateTime<Utc>) -> Option<i64> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        if bytes.len() != 17 + TAG || bytes[0] != purpose as u8 {
            return None;
        }
        let (payload, tag) = bytes.split_at(17);
        let expected = self.tag(payload);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..TAG], tag)) {
            return None;
        }
        let id = i64::from_be_bytes(payload[1..9].try_into().ok()?);
        let issued =
            DateTime::from_timestamp(i64::from_be_bytes(payload[9..17].try_into().ok()?), 0)?;
        if purpose == Purpose::Confirm && now - issued > CONFIRM_VALID {
            return None;
        }
        Some(id)
    }

    pub fn url(&self, purpose: Purpose, subscriber_id: i64, issued: DateTime<Utc>) -> String {
        let path = match purpose {
            Purpose::Manage => "manage",
            Purpose::Unsubscribe => "unsubscribe",
            Purpose::Confirm => "confirm",
        };
        format!(
            "{}{path}/{}",
            self.base,
            self.token(purpose, subscriber_id, issued)
        )
    }

    fn tag(&self, payload: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links {
        Links::new(vec![7; 32], Url::parse("https://tin.example.vn/").unwrap())
    }

    #[test]
    fn a_token_verifies_for_its_purpose_only() {
        let now = Utc::now();
        let t = links().token(Purpose::Unsubscribe, 42, DateTime::default());
        assert_eq!(links().verify(Purpose::Unsubscribe, &t, now), Some(42));
        assert_eq!(links().verify(Purpose::Manage, &t, now), None);
        assert!(
            links()
                .url(Purpose::Manage, 42, DateTime::default())
                .starts_with("https://tin.example.vn/manage/")
        );
    }

    #[test]
    fn a_forged_or_altered_token_is_refused() {
        let now = Utc::now();
        let t = links().token(Purpose::Manage, 42, DateTime::default());
        let other = Links::new(vec![8; 32], Url::parse("https://tin.example.vn/").unwrap());
        assert_eq!(other.verify(Purpose::Manage, &t, now), None);
        let mut bytes = URL_SAFE_NO_PAD.decode(&t).unwrap();
        bytes[8] ^= 1; // another subscriber id
        assert_eq!(
            links().verify(Purpose::Manage, &URL_SAFE_NO_PAD.encode(bytes), now),
            None
        );
        assert_eq!(links().verify(Purpose::Manage, "not-a-token", now), None);
    }

    #[test]
    fn a_confirm_link_expires_after_48_hours() {
        let issued = Utc::now() - chrono::Duration::hours(47);
        let t = links().token(Purpose::Confirm, 5, issued);
        assert_eq!(links().verify(Purpose::Confirm, &t, Utc::now()), Some(5));
        assert_eq!(
            links().verify(
                Purpose::Confirm,
                &t,
                Utc::now() + chrono::Duration::hours(2)
            ),
            None
        );
    }
}
