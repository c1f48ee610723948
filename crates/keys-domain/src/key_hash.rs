//! SHA-256 of a full key: what the stores keep and look keys up by.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The 32-byte SHA-256 digest of a full key string.
#[derive(Clone, Copy, Eq)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// SHA-256 of `key`.
    #[must_use]
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// From stored bytes; `None` unless exactly 32 bytes.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The digest bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex (for Redis channels and cache keys; never a secret).
    #[must_use]
    pub fn to_hex(&self) -> String {
        use fmt::Write;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// From 64 hex characters.
    #[must_use]
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }

    /// Constant-time equality, so timing does not reveal how many leading bytes matched.
    #[must_use]
    pub fn ct_eq(&self, other: &Self) -> bool {
        // Compared as four words rather than 32 bytes: same guarantee, an eighth of the
        // optimisation barriers on the hot path.
        self.words().ct_eq(&other.words()).into()
    }

    fn words(&self) -> [u64; 4] {
        let mut words = [0u64; 4];
        for (w, chunk) in words.iter_mut().zip(self.0.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *w = u64::from_ne_bytes(b);
        }
        words
    }
}

/// Plain equality, as used by hash maps and caches keyed by the hash. A digest is not a secret
/// a timing difference could reveal byte by byte (finding a key from its hash means inverting
/// SHA-256); the authenticator still confirms its match with [`KeyHash::ct_eq`].
impl PartialEq for KeyHash {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl std::hash::Hash for KeyHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not the key, but a short form is all a log ever needs.
        write!(f, "KeyHash({}…)", &self.to_hex()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_equality_is_by_value() {
        let h = KeyHash::of("jt_sk_x");
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(KeyHash::from_slice(h.as_bytes()), Some(h));
        assert_ne!(h, KeyHash::of("jt_sk_y"));
        assert!(KeyHash::from_slice(&[0u8; 31]).is_none());
    }
}
