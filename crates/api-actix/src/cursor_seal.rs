//! The `cursor` of a ledger entry or a key event, as clients see it: sealed, so that it reveals
//! nothing and works only where it was handed out.
//!
//! A position is a store-wide sequence number: in the clear, the gaps between a user's own
//! cursors would count every other user's activity. A sealed cursor is
//! `base64url(nonce ‖ position ⊕ pad ‖ tag)`: `nonce` is 8 random bytes, `pad` the first 8
//! bytes of HMAC-SHA256(key, "pad" ‖ nonce), `tag` the first 16 bytes of
//! HMAC-SHA256(key, "tag" ‖ scope ‖ nonce ‖ position). The scope names the list and its owner
//! (`ledger:<user id>`, `events:<user id>:<key id>`), so another user's cursor, one from another
//! list, or a tampered one does not open. The key is derived from the dashboard token secret, so
//! every instance opens the others' cursors, and rotating that secret retires old cursors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use keys_domain::random::RandomSource;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const NONCE_BYTES: usize = 8;
const POSITION_BYTES: usize = 8;
const TAG_BYTES: usize = 16;
const SEALED_BYTES: usize = NONCE_BYTES + POSITION_BYTES + TAG_BYTES;

/// Seals and opens cursors with one key.
pub struct CursorSeal {
    key: [u8; 32],
}

impl std::fmt::Debug for CursorSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSeal(redacted)")
    }
}

impl CursorSeal {
    /// The seal of the service whose dashboard tokens are signed with `secret`.
    #[must_use]
    pub fn from_secret(secret: &[u8]) -> Self {
        let key = mac(secret, &[b"jobtactics cursor seal v1"]);
        Self { key }
    }

    /// `position` sealed for `scope`.
    #[must_use]
    pub fn seal(&self, random: &dyn RandomSource, scope: &str, position: i64) -> String {
        let mut nonce = [0_u8; NONCE_BYTES];
        random.fill_bytes(&mut nonce);
        let plain = position.to_be_bytes();
        let tag = mac(&self.key, &[b"tag", scope.as_bytes(), &nonce, &plain]);
        let mut sealed = [0_u8; SEALED_BYTES];
        sealed[..NONCE_BYTES].copy_from_slice(&nonce);
        sealed[NONCE_BYTES..NONCE_BYTES + POSITION_BYTES]
            .copy_from_slice(&self.padded(&nonce, &plain));
        sealed[NONCE_BYTES + POSITION_BYTES..].copy_from_slice(&tag[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// The position `text` seals for `scope`; `None` for anything this seal did not make for
    /// that scope.
    #[must_use]
    pub fn open(&self, scope: &str, text: &str) -> Option<i64> {
        if text.len() > 64 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let sealed: [u8; SEALED_BYTES] = bytes.try_into().ok()?;
        let (nonce, rest) = sealed.split_at(NONCE_BYTES);
        let (hidden, tag) = rest.split_at(POSITION_BYTES);
        let plain = self.padded(nonce, hidden);
        let mut check = HmacSha256::new_from_slice(&self.key).ok()?;
        for part in [b"tag".as_slice(), scope.as_bytes(), nonce, &plain] {
            check.update(part);
        }
        // Constant time: a wrong tag tells nothing about how close it was.
        check.verify_truncated_left(tag).ok()?;
        Some(i64::from_be_bytes(plain))
    }

    /// `bytes` XOR the pad of `nonce`: hides a position, and shows a hidden one again.
    fn padded(&self, nonce: &[u8], bytes: &[u8]) -> [u8; POSITION_BYTES] {
        let pad = mac(&self.key, &[b"pad", nonce]);
        std::array::from_fn(|i| bytes[i] ^ pad[i])
    }
}

/// A seal bound to one list's scope, as a list handler uses it.
pub struct ScopedSeal<'a> {
    seal: &'a CursorSeal,
    random: &'a dyn RandomSource,
    scope: String,
}

/// The text is no cursor of this list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotThisListsCursor;

impl CursorSeal {
    /// The seal for the list named by `scope`, sealing with nonces from `random`.
    #[must_use]
    pub fn scoped<'a>(&'a self, random: &'a dyn RandomSource, scope: String) -> ScopedSeal<'a> {
        ScopedSeal {
            seal: self,
            random,
            scope,
        }
    }
}

impl ScopedSeal<'_> {
    /// The position `text` seals for this list.
    ///
    /// # Errors
    /// [`NotThisListsCursor`] for anything else.
    pub fn open(&self, text: &str) -> Result<i64, NotThisListsCursor> {
        self.seal.open(&self.scope, text).ok_or(NotThisListsCursor)
    }

    #[must_use]
    pub fn seal(&self, position: i64) -> String {
        self.seal.seal(self.random, &self.scope, position)
    }
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        return [0; 32];
    };
    for part in parts {
        m.update(part);
    }
    m.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use keys_domain::random::OsRandom;

    use super::*;

    #[test]
    fn a_cursor_opens_only_in_its_scope_and_under_its_key() {
        let seal = CursorSeal::from_secret(b"a dashboard token secret of 32 bytes!");
        let text = seal.seal(&OsRandom, "ledger:u1", 42);
        assert_eq!(seal.open("ledger:u1", &text), Some(42));
        assert_eq!(seal.open("ledger:u2", &text), None, "another user's");
        assert_eq!(seal.open("events:u1:k1", &text), None, "another list's");
        let other = CursorSeal::from_secret(b"another secret, also 32 bytes long!!");
        assert_eq!(other.open("ledger:u1", &text), None, "another key's");
        for junk in ["", "2", "ev_3", "!!!!", &"A".repeat(43), &"A".repeat(500)] {
            assert_eq!(seal.open("ledger:u1", junk), None, "{junk:?}");
        }
    }

    #[test]
    fn no_byte_can_be_changed_and_nothing_counts_in_the_clear() {
        let seal = CursorSeal::from_secret(b"a dashboard token secret of 32 bytes!");
        let text = seal.seal(&OsRandom, "ledger:u1", 7);
        let raw = URL_SAFE_NO_PAD.decode(&text).unwrap();
        for i in 0..raw.len() {
            let mut tampered = raw.clone();
            tampered[i] ^= 1;
            assert_eq!(
                seal.open("ledger:u1", &URL_SAFE_NO_PAD.encode(&tampered)),
                None,
                "byte {i}"
            );
        }
        // The same position sealed twice reads differently: nothing to subtract.
        assert_ne!(text, seal.seal(&OsRandom, "ledger:u1", 7));
    }
}
