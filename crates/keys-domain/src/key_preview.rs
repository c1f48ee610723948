//! The preview of a key: first 10 characters (`jt_sk_` + 4), `...`, last 4.

/// A key's preview, e.g. `jt_sk_Ab3x...9QzT`. Safe to log and display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPreview(std::sync::Arc<str>);

impl KeyPreview {
    /// The preview of a full key string (ASCII by construction).
    #[must_use]
    pub fn of_key(key: &str) -> Self {
        let head = key.get(..10).unwrap_or(key);
        let tail = key.get(key.len().saturating_sub(4)..).unwrap_or("");
        Self(format!("{head}...{tail}").into())
    }

    /// A preview read back from a store.
    #[must_use]
    pub fn from_stored(s: String) -> Self {
        Self(s.into())
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
