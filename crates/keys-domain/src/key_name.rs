//! A key's human name: 1 to 100 characters after trimming, no control characters.

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKeyName {
    #[error("name must not be empty")]
    Empty,
    #[error("name must be at most 100 characters")]
    TooLong,
    #[error("name must not contain control characters")]
    ControlCharacter,
}

/// A validated, trimmed key name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyName(std::sync::Arc<str>);

impl serde::Serialize for KeyName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl KeyName {
    /// Maximum length in characters (Unicode scalar values), after trimming.
    pub const MAX_CHARS: usize = 100;

    /// Trims and validates `raw`.
    ///
    /// # Errors
    /// [`InvalidKeyName`] saying which rule failed.
    pub fn parse(raw: &str) -> Result<Self, InvalidKeyName> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(InvalidKeyName::Empty);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(InvalidKeyName::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(InvalidKeyName::ControlCharacter);
        }
        Ok(Self(trimmed.into()))
    }

    /// A name read back from a store (validated when it was written).
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
