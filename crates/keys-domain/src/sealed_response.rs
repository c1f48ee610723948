//! A recorded response, sealed with ChaCha20-Poly1305 under the key derived from the
//! `Idempotency-Key` value: what the store keeps of a replay, unreadable without that value.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};

use crate::idempotency_key::DerivedSecrets;
use crate::random::RandomSource;

/// Bytes of the random nonce stored in front of the ciphertext.
const NONCE_LEN: usize = 12;
/// The first byte of every sealed record, so the format can change later.
const VERSION: u8 = 1;

/// The first response to an idempotent request: its status and body (JSON bytes). Headers are
/// not recorded: a replay carries the content type and `Cache-Control: no-store` of its own.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl fmt::Debug for RecordedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body may hold a full key.
        f.debug_struct("RecordedResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A stored record that could not be opened: tampered with, or sealed under another key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored replay could not be opened")]
pub struct UnreadableReplay;

/// `version ‖ nonce ‖ ChaCha20-Poly1305(status ‖ body)`, with the look-up hash as associated
/// data so a sealed record moved to another row does not open.
#[must_use]
pub fn seal(
    secrets: &DerivedSecrets,
    response: &RecordedResponse,
    random: &dyn RandomSource,
) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new((&secrets.seal_key).into());
    // A fresh nonce per seal: a key whose first attempt failed and was retried seals again
    // under the same derived key, and a nonce must never repeat under one key.
    let mut nonce = [0u8; NONCE_LEN];
    random.fill_bytes(&mut nonce);
    let mut plain = Vec::with_capacity(2 + response.body.len());
    plain.extend_from_slice(&response.status.to_be_bytes());
    plain.extend_from_slice(&response.body);
    let aad = secrets.lookup.as_bytes();
    let Ok(ciphertext) = cipher.encrypt(
        Nonce::from_slice(&nonce),
        Payload {
            msg: &plain,
            aad: aad.as_slice(),
        },
    ) else {
        // Only fails for messages over 256 GiB; bodies are kilobytes. An empty record
        // never opens, so the worst case is a 500 on replay, never a wrong answer.
        return Vec::new();
    };
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

/// Opens what [`seal`] made with the same secrets.
///
/// # Errors
/// `UnreadableReplay` for any other bytes.
pub fn open(secrets: &DerivedSecrets, sealed: &[u8]) -> Result<RecordedResponse, UnreadableReplay> {
    let (&version, rest) = sealed.split_first().ok_or(UnreadableReplay)?;
    if version != VERSION || rest.len() < NONCE_LEN {
        return Err(UnreadableReplay);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let cipher = ChaCha20Poly1305::new((&secrets.seal_key).into());
    let plain = cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: secrets.lookup.as_bytes().as_slice(),
            },
        )
        .map_err(|_| UnreadableReplay)?;
    let (status, body) = plain.split_at_checked(2).ok_or(UnreadableReplay)?;
    Ok(RecordedResponse {
        status: u16::from_be_bytes([status[0], status[1]]),
        body: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserId;
    use crate::idempotency_key::IdempotencyKey;
    use crate::random::OsRandom;

    fn secrets(value: &str, user: &str) -> DerivedSecrets {
        IdempotencyKey::parse(value.as_bytes())
            .unwrap()
            .derive(&UserId::new(user))
    }

    fn response() -> RecordedResponse {
        RecordedResponse {
            status: 201,
            body: br#"{"key":"secret-looking"}"#.to_vec(),
        }
    }

    #[test]
    fn round_trips_and_hides_the_body() {
        let s = secrets("k-1", "usr_1");
        let sealed = seal(&s, &response(), &OsRandom);
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(open(&s, &sealed), Ok(response()));
        // Two seals of the same response differ (fresh nonces).
        assert_ne!(sealed, seal(&s, &response(), &OsRandom));
    }

    #[test]
    fn another_value_another_user_or_a_changed_byte_does_not_open() {
        let s = secrets("k-1", "usr_1");
        let sealed = seal(&s, &response(), &OsRandom);
        assert_eq!(
            open(&secrets("k-2", "usr_1"), &sealed),
            Err(UnreadableReplay)
        );
        assert_eq!(
            open(&secrets("k-1", "usr_2"), &sealed),
            Err(UnreadableReplay)
        );
        let mut flipped = sealed.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        assert_eq!(open(&s, &flipped), Err(UnreadableReplay));
        assert_eq!(open(&s, &[]), Err(UnreadableReplay));
        assert_eq!(open(&s, &[VERSION, 0, 0]), Err(UnreadableReplay));
    }

    #[test]
    fn debug_does_not_show_the_body() {
        assert!(!format!("{:?}", response()).contains("secret"));
    }
}
