//! The full API key string, `jt_sk_` + 32 random + 6 checksum characters (base62).
//!
//! Never change the prefix: scanners and customers' tooling match on it.
//! The secret has no `Display`, no `Serialize`, and a redacted `Debug`: the only way to read it
//! is [`ApiKeySecret::expose`], once, for the response that creates the key.

use std::fmt;

use crate::base62;
use crate::key_hash::KeyHash;
use crate::key_preview::KeyPreview;
use crate::random::RandomSource;

/// The fixed prefix of every key.
pub const PREFIX: &str = "jt_sk_";
/// Length of the random part.
pub const RANDOM_LEN: usize = 32;
/// Length of the checksum part.
pub const CHECKSUM_LEN: usize = 6;
/// Total length of a key.
pub const KEY_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;

/// Why a string is not a well-formed key. Each way is distinct so logs and tests can tell them
/// apart; clients see one `malformed_api_key` error for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedKey {
    #[error("the key does not start with `jt_sk_`")]
    MissingPrefix,
    #[error("the key is {actual} characters long; keys are {KEY_LEN}")]
    WrongLength { actual: usize },
    #[error("the key contains a character outside 0-9A-Za-z")]
    BadAlphabet,
    #[error("the key's checksum does not match")]
    BadChecksum,
}

/// A full API key. Holding one means holding a bearer credential.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// A new key from `random` (32 unbiased base62 characters, ≈190.5 bits) plus its checksum.
    pub fn generate(random: &dyn RandomSource) -> Self {
        let mut s = String::with_capacity(KEY_LEN);
        s.push_str(PREFIX);
        s.push_str(&base62::random_chars(random, RANDOM_LEN));
        let checksum = checksum_of(&s);
        s.push_str(&checksum);
        Self(s)
    }

    /// Parses a presented key. Checks prefix, length, alphabet and checksum, in that order,
    /// without touching any store.
    ///
    /// # Errors
    /// The first [`MalformedKey`] reason that applies.
    pub fn parse(s: &str) -> Result<Self, MalformedKey> {
        if !s.starts_with(PREFIX) {
            return Err(MalformedKey::MissingPrefix);
        }
        if s.len() != KEY_LEN {
            let actual = s.chars().count();
            // 44 characters but more bytes: some are multi-byte, so outside the alphabet.
            return Err(if actual == KEY_LEN {
                MalformedKey::BadAlphabet
            } else {
                MalformedKey::WrongLength { actual }
            });
        }
        let body = &s.as_bytes()[PREFIX.len()..];
        if !body.iter().all(|&b| base62::is_base62(b)) {
            return Err(MalformedKey::BadAlphabet);
        }
        let (head, checksum) = s.split_at(PREFIX.len() + RANDOM_LEN);
        if checksum_digits(head) != checksum.as_bytes() {
            return Err(MalformedKey::BadChecksum);
        }
        Ok(Self(s.to_owned()))
    }

    /// SHA-256 of the full key string: the only form that is stored.
    #[must_use]
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }

    /// The preview shown in dashboards, e.g. `jt_sk_Ab3x...9QzT`.
    #[must_use]
    pub fn preview(&self) -> KeyPreview {
        KeyPreview::of_key(&self.0)
    }

    /// The full key. Call it only to hand the key to its owner, once.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({}, redacted)", self.preview().as_str())
    }
}

/// CRC-32 (zlib polynomial) of `head` as 6 base62 digits, most significant first.
fn checksum_of(head: &str) -> String {
    checksum_digits(head)
        .iter()
        .copied()
        .map(char::from)
        .collect()
}

/// The same digits on the stack: parsing runs on every request and must not allocate for it.
/// 62^6 > 2^32, so six digits always suffice.
fn checksum_digits(head: &str) -> [u8; CHECKSUM_LEN] {
    let mut value = crc32fast::hash(head.as_bytes());
    let mut digits = [b'0'; CHECKSUM_LEN];
    for d in digits.iter_mut().rev() {
        *d = base62::ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(std::sync::atomic::AtomicU8);
    impl RandomSource for Counter {
        fn fill_bytes(&self, buf: &mut [u8]) {
            for b in buf {
                *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn generated_key_has_the_contract_shape() {
        let k = ApiKeySecret::generate(&Counter(0.into()));
        assert_eq!(k.expose().len(), 44);
        assert!(
            k.expose()
                .starts_with("jt_sk_0123456789ABCDEFGHIJKLMNOPQRSTUV")
        );
        assert_eq!(ApiKeySecret::parse(k.expose()), Ok(k.clone()));
    }

    #[test]
    fn checksum_is_crc32_in_base62() {
        let head = format!("jt_sk_{}", "a".repeat(32));
        let crc = crc32fast::hash(head.as_bytes());
        let expected = base62::encode_padded(u64::from(crc), 6);
        assert_eq!(checksum_of(&head), expected);
        assert!(ApiKeySecret::parse(&format!("{head}{expected}")).is_ok());
    }

    #[test]
    fn each_malformation_has_its_own_error() {
        let good = ApiKeySecret::generate(&crate::random::OsRandom);
        let s = good.expose();
        assert_eq!(
            ApiKeySecret::parse(&s.replace("jt_sk_", "jt_pk_")),
            Err(MalformedKey::MissingPrefix)
        );
        assert_eq!(
            ApiKeySecret::parse(&s[..43]),
            Err(MalformedKey::WrongLength { actual: 43 })
        );
        let mut bad_alpha = s.to_owned();
        bad_alpha.replace_range(10..11, "-");
        assert_eq!(
            ApiKeySecret::parse(&bad_alpha),
            Err(MalformedKey::BadAlphabet)
        );
        let mut bad_sum = s.to_owned();
        let last = if s.ends_with('0') { "1" } else { "0" };
        bad_sum.replace_range(43..44, last);
        assert_eq!(
            ApiKeySecret::parse(&bad_sum),
            Err(MalformedKey::BadChecksum)
        );
        assert_eq!(ApiKeySecret::parse(""), Err(MalformedKey::MissingPrefix));
        // Multi-byte characters must not panic on slicing.
        assert!(ApiKeySecret::parse("jt_sk_ééééééééééééééééééé").is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = ApiKeySecret::generate(&crate::random::OsRandom);
        let dbg = format!("{k:?}");
        assert!(!dbg.contains(k.expose()));
        assert!(dbg.contains("redacted"));
    }
}
