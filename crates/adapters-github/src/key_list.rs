//! GitHub's key list: `{"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]}`.

use std::collections::HashMap;

use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;

/// Where GitHub publishes its secret-scanning keys (`JT_GITHUB_SCANNING_KEYS`' default).
pub const DEFAULT_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";

#[derive(Debug, Deserialize)]
struct KeyListDocument {
    public_keys: Vec<PublishedKey>,
}

#[derive(Debug, Deserialize)]
struct PublishedKey {
    key_identifier: String,
    key: String,
    #[serde(default)]
    is_current: bool,
}

/// One usable key.
#[derive(Debug, Clone)]
pub(crate) struct SigningKeyEntry {
    pub key: VerifyingKey,
    /// GitHub signs only with current keys; a retired one is refused.
    pub is_current: bool,
}

/// Parses the document. A key that is not a P-256 public key in PEM is skipped (and logged):
/// one odd entry must not stop the others from working.
///
/// # Errors
/// The document is not the key list's JSON shape.
pub(crate) fn parse_key_list(bytes: &[u8]) -> Result<HashMap<String, SigningKeyEntry>, String> {
    let doc: KeyListDocument =
        serde_json::from_slice(bytes).map_err(|e| format!("not a key list: {e}"))?;
    let mut keys = HashMap::with_capacity(doc.public_keys.len());
    for published in doc.public_keys {
        match VerifyingKey::from_public_key_pem(published.key.trim()) {
            Ok(key) => {
                keys.insert(
                    published.key_identifier,
                    SigningKeyEntry {
                        key,
                        is_current: published.is_current,
                    },
                );
            }
            Err(e) => tracing::warn!(
                key_identifier = %published.key_identifier,
                error = %e,
                "skipping a secret-scanning key that is not a P-256 public key"
            ),
        }
    }
    Ok(keys)
}
