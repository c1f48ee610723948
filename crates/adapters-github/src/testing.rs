//! A stand-in for GitHub in tests: a P-256 key pair made on the spot, its key list, signatures.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::json;

/// One signing key, named `identifier`.
pub struct TestSigner {
    pub identifier: String,
    key: SigningKey,
}

impl TestSigner {
    /// A fresh key pair from the OS CSPRNG.
    ///
    /// # Panics
    /// The OS has no randomness (tests only).
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn generate(identifier: &str) -> Self {
        loop {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).expect("OS randomness");
            // A random 32-byte string is a valid scalar but for a 2^-32 chance; draw again then.
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return Self {
                    identifier: identifier.to_owned(),
                    key,
                };
            }
        }
    }

    /// The public key in PEM, as GitHub's list carries it.
    ///
    /// # Panics
    /// Never for a valid key (tests only).
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn public_key_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("PEM encoding")
    }

    /// The base64 DER signature of `body`, as `Github-Public-Key-Signature` carries it.
    #[must_use]
    pub fn sign(&self, body: &[u8]) -> String {
        let signature: Signature = self.key.sign(body);
        STANDARD.encode(signature.to_der().as_bytes())
    }
}

/// GitHub's key-list document for `signers`, each with its `is_current`.
#[must_use]
pub fn key_list(signers: &[(&TestSigner, bool)]) -> String {
    let keys: Vec<_> = signers
        .iter()
        .map(|(s, current)| {
            json!({
                "key_identifier": s.identifier,
                "key": s.public_key_pem(),
                "is_current": current,
            })
        })
        .collect();
    json!({ "public_keys": keys }).to_string()
}
