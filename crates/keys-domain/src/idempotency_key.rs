//! An `Idempotency-Key` value, and what is derived from it: the look-up hash a store may keep,
//! the key that seals the replay, and the fingerprint of the request.
//!
//! The value itself is the secret: a store holds only what HKDF-SHA256 derives from it (with the
//! user's id as salt, one label per use), so a stored replay cannot be read without the value.
//! See `docs/idempotency.md`.

use std::fmt;

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ids::UserId;

/// The longest accepted value, in characters (all ASCII, so also bytes).
pub const MAX_LEN: usize = 255;

/// HKDF labels: one per derived value, so no derived value tells anything about another.
const LOOKUP_LABEL: &[u8] = b"jobtactics idempotency v1: look-up";
const SEAL_LABEL: &[u8] = b"jobtactics idempotency v1: seal";
const REQUEST_LABEL: &[u8] = b"jobtactics idempotency v1: request";

/// A valid `Idempotency-Key`: 1 to 255 printable ASCII characters (space to `~`).
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// Why a value is not an `Idempotency-Key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidIdempotencyKey {
    #[error("the Idempotency-Key header must not be empty")]
    Empty,
    #[error("the Idempotency-Key header must be at most 255 characters")]
    TooLong,
    #[error("the Idempotency-Key header must be printable ASCII characters only")]
    NotPrintable,
}

impl IdempotencyKey {
    /// Checks `raw` (a header's bytes).
    ///
    /// # Errors
    /// `Empty`, `TooLong`, `NotPrintable`.
    pub fn parse(raw: &[u8]) -> Result<Self, InvalidIdempotencyKey> {
        if raw.is_empty() {
            return Err(InvalidIdempotencyKey::Empty);
        }
        if raw.len() > MAX_LEN {
            return Err(InvalidIdempotencyKey::TooLong);
        }
        if !raw.iter().all(|b| (b' '..=b'~').contains(b)) {
            return Err(InvalidIdempotencyKey::NotPrintable);
        }
        // Printable ASCII is UTF-8.
        String::from_utf8(raw.to_vec())
            .map(Self)
            .map_err(|_| InvalidIdempotencyKey::NotPrintable)
    }

    /// What this value derives for `user`: everything the store and the seal need.
    #[must_use]
    pub fn derive(&self, user: &UserId) -> DerivedSecrets {
        let kdf = Hkdf::<Sha256>::new(Some(user.as_str().as_bytes()), self.0.as_bytes());
        let mut lookup = [0u8; 32];
        let mut seal = [0u8; 32];
        let mut request = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: these cannot fail.
        let ok = kdf.expand(LOOKUP_LABEL, &mut lookup).is_ok()
            && kdf.expand(SEAL_LABEL, &mut seal).is_ok()
            && kdf.expand(REQUEST_LABEL, &mut request).is_ok();
        debug_assert!(ok, "HKDF-SHA256 expands 32 bytes");
        DerivedSecrets {
            lookup: LookupHash(lookup),
            seal_key: seal,
            request_key: request,
        }
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value unlocks a stored replay (possibly a full API key): never logged.
        f.write_str("IdempotencyKey(…)")
    }
}

/// What a store looks a record up by: HKDF of the value and the user, under its own label.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LookupHash([u8; 32]);

impl LookupHash {
    /// From stored bytes; `None` unless exactly 32 bytes.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for LookupHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LookupHash({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// The fingerprint of a request (method, path, body), keyed by the value: equal fingerprints
/// mean the same request; a store cannot test guesses of a body against it without the value.
#[derive(Clone, Copy, Eq)]
pub struct RequestFingerprint([u8; 32]);

impl RequestFingerprint {
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for RequestFingerprint {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for RequestFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestFingerprint(…)")
    }
}

/// The values derived from one `Idempotency-Key` for one user.
#[derive(Clone)]
pub struct DerivedSecrets {
    pub lookup: LookupHash,
    /// The AEAD key of the sealed replay.
    pub(crate) seal_key: [u8; 32],
    request_key: [u8; 32],
}

impl DerivedSecrets {
    /// HMAC-SHA256 of the method, path and body, each length-prefixed so no two requests
    /// share an encoding.
    #[must_use]
    pub fn fingerprint(&self, method: &str, path: &str, body: &[u8]) -> RequestFingerprint {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.request_key) else {
            // HMAC takes keys of any length.
            return RequestFingerprint([0; 32]);
        };
        for part in [method.as_bytes(), path.as_bytes(), body] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        RequestFingerprint(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for DerivedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DerivedSecrets")
            .field("lookup", &self.lookup)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> IdempotencyKey {
        IdempotencyKey::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn accepts_1_to_255_printable_ascii_characters() {
        assert!(IdempotencyKey::parse(b"a").is_ok());
        assert!(IdempotencyKey::parse(&[b'~'; 255]).is_ok());
        assert!(IdempotencyKey::parse(b"order 42 / retry").is_ok());
        assert_eq!(
            IdempotencyKey::parse(b""),
            Err(InvalidIdempotencyKey::Empty)
        );
        assert_eq!(
            IdempotencyKey::parse(&[b'a'; 256]),
            Err(InvalidIdempotencyKey::TooLong)
        );
        for bad in [&b"tab\there"[..], b"nl\n", b"\x7f", "caf\u{e9}".as_bytes()] {
            assert_eq!(
                IdempotencyKey::parse(bad),
                Err(InvalidIdempotencyKey::NotPrintable)
            );
        }
    }

    #[test]
    fn derived_values_depend_on_value_and_user_and_differ_by_label() {
        let (u1, u2) = (UserId::new("usr_1"), UserId::new("usr_2"));
        let a = key("k-1").derive(&u1);
        assert_eq!(a.lookup, key("k-1").derive(&u1).lookup);
        assert_ne!(a.lookup, key("k-2").derive(&u1).lookup);
        assert_ne!(a.lookup, key("k-1").derive(&u2).lookup);
        assert_ne!(a.lookup.as_bytes(), &a.seal_key);
        assert_ne!(&a.seal_key, &a.request_key);
    }

    #[test]
    fn fingerprints_tell_method_path_and_body_apart() {
        let s = key("k").derive(&UserId::new("usr_1"));
        let f = s.fingerprint("POST", "/a", b"{}");
        assert_eq!(f, s.fingerprint("POST", "/a", b"{}"));
        assert_ne!(f, s.fingerprint("PUT", "/a", b"{}"));
        assert_ne!(f, s.fingerprint("POST", "/b", b"{}"));
        assert_ne!(f, s.fingerprint("POST", "/a", b"{ }"));
        // Length prefixes: moving bytes between parts changes the fingerprint.
        assert_ne!(
            s.fingerprint("POST", "/a", b"x"),
            s.fingerprint("POST", "/ax", b"")
        );
        let other = key("k2").derive(&UserId::new("usr_1"));
        assert_ne!(f, other.fingerprint("POST", "/a", b"{}"));
    }

    #[test]
    fn debug_never_shows_the_value() {
        let k = key("super-secret-value");
        assert!(!format!("{k:?}").contains("super-secret"));
        assert!(!format!("{:?}", k.derive(&UserId::new("u"))).contains("super-secret"));
    }
}
