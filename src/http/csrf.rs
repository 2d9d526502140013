//! CSRF protection for the self-service forms: a signed double-submit token. A page with a
//! form sets a random cookie (HttpOnly, SameSite=Strict, Secure under https) and puts
//! HMAC-SHA256(installation secret, cookie) in a hidden field; a POST is accepted only if the
//! field matches its cookie (compared in constant time). Another site can neither read the
//! cookie nor forge the field, and SameSite=Strict keeps the cookie off its requests anyway.
//!
//! The unsubscribe POST is exempt: RFC 8058 one-click comes from a mail client with no cookie,
//! and the link's own token already proves the request came from the subscriber's mailbox.

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const COOKIE: &str = "tinbao_csrf";

/// A form's CSRF state: the field value, and the cookie to set if the browser had none.
pub struct Csrf {
    pub field: String,
    pub set_cookie: Option<HeaderValue>,
}

/// The CSRF field for a page, reusing the browser's cookie when it sent a well-formed one.
pub fn issue(secret: &[u8], headers: &HeaderMap, secure: bool) -> Csrf {
    if let Some(cookie) = cookie(headers) {
        return Csrf {
            field: sign(secret, &cookie),
            set_cookie: None,
        };
    }
    let mut raw = [0u8; 16];
    if getrandom::fill(&mut raw).is_err() {
        // Without randomness no form can be accepted; the page still renders.
        return Csrf {
            field: String::new(),
            set_cookie: None,
        };
    }
    let value: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let attributes = if secure {
        "; Path=/; HttpOnly; SameSite=Strict; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Strict"
    };
    Csrf {
        field: sign(secret, &value),
        set_cookie: HeaderValue::from_str(&format!("{COOKIE}={value}{attributes}")).ok(),
    }
}

/// Whether a POST's field matches the cookie it came with.
pub fn check(secret: &[u8], headers: &HeaderMap, field: Option<&str>) -> bool {
    let (Some(cookie), Some(field)) = (cookie(headers), field) else {
        return false;
    };
    let expected = sign(secret, &cookie);
    expected.len() == field.len()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            field.as_bytes(),
        ))
}

/// Our cookie's value, if present and of the form we issue (32 hex digits).
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn sign(secret: &[u8], cookie: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(b"csrf:");
    mac.update(cookie.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn a_field_is_accepted_only_with_its_own_cookie() {
        let secret = [3u8; 32];
        let issued = issue(&secret, &HeaderMap::new(), false);
        let set = issued.set_cookie.unwrap();
        let set = set.to_str().unwrap();
        assert!(set.contains("SameSite=Strict") && set.contains("HttpOnly"));
        let pair = set.split(';').next().unwrap();
        assert!(check(&secret, &with_cookie(pair), Some(&issued.field)));
        let other = format!("{COOKIE}={}", "0".repeat(32));
        assert!(!check(&secret, &with_cookie(&other), Some(&issued.field)));
        assert!(!check(&secret, &HeaderMap::new(), Some(&issued.field)));
        assert!(!check(&[4u8; 32], &with_cookie(pair), Some(&issued.field)));
        assert!(!check(&secret, &with_cookie(pair), None));
    }
}
