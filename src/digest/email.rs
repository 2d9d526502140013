//! A subscriber's address, validated on construction: past this boundary an address is
//! well-formed, trimmed and lower-cased. RFC 5321 §2.4 lets a local part be case-sensitive, but
//! no mail provider treats it so, and comparing addresses case-blind is what stops one person
//! subscribing twice as "Ban.Doc@" and "ban.doc@".

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriberEmail(String);

impl SubscriberEmail {
    pub fn parse(input: &str) -> Result<SubscriberEmail, String> {
        let text = input.trim();
        let address: lettre::Address = text
            .parse()
            .map_err(|e| format!("{text:?} is not an email address ({e})"))?;
        let domain = address.domain().to_lowercase();
        if !domain.contains('.') {
            return Err(format!("{text:?}: the domain {domain:?} has no dot"));
        }
        Ok(SubscriberEmail(format!(
            "{}@{domain}",
            address.user().to_lowercase()
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        assert_eq!(
            SubscriberEmail::parse("  Ban.Doc@Example.VN ")
                .unwrap()
                .as_str(),
            "ban.doc@example.vn"
        );
    }

    #[test]
    fn malformed_addresses_are_refused_with_a_reason() {
        for bad in ["", "ban-doc", "ban doc@example.vn", "a@b", "@example.vn"] {
            assert!(SubscriberEmail::parse(bad).is_err(), "{bad}");
        }
    }
}
