//! An email address, checked just enough to refuse obvious mistakes.

/// The address is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid email address")]
pub struct InvalidEmail(pub String);

/// A trimmed, lower-cased address with one `@`, a non-empty local part and a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// # Errors
    /// [`InvalidEmail`] for anything that is not `local@domain.tld` (at most 254 characters as
    /// sent, no whitespace or control characters). The API document states the same rule as a
    /// pattern: the limit counts characters, as a JSON Schema `maxLength` does, not the bytes of
    /// the lower-cased form.
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let trimmed = raw.trim();
        let bad = || InvalidEmail(trimmed.chars().take(254).collect());
        if trimmed.chars().count() > 254
            || trimmed.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad());
        }
        let s = trimmed.to_lowercase();
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty());
        if local.is_empty() || !domain_ok {
            return Err(bad());
        }
        Ok(Self(s))
    }

    /// An address read back from a store.
    #[must_use]
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_addresses_and_refuses_junk() {
        assert_eq!(
            Email::parse(" Ada@Example.com ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "", "ada", "ada@", "@x.io", "ada@x", "a b@x.io", "a@b@x.io", "a@x..io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_length_limit_counts_characters_as_sent() {
        let local = "é".repeat(249);
        assert!(
            Email::parse(&format!("{local}@x.io")).is_ok(),
            "254 characters"
        );
        assert!(
            Email::parse(&format!("{local}e@x.io")).is_err(),
            "255 characters"
        );
    }
}
