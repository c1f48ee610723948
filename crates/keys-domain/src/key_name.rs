//! A key's human name: 1 to 100 characters after trimming and NFC normalisation, with no
//! control, format or line/paragraph separator characters.
//!
//! Normalising before the store's uniqueness check means two names that render alike through
//! composed versus decomposed accents (`é` and `e` + U+0301) are the same name. Rejecting
//! format characters (Unicode category Cf: zero-width space and joiners, bidi overrides such as
//! U+202E, the BOM …) and separators (Zl, Zp) removes the invisible characters that make
//! `ci-bot` and `ci-bot` + U+200B look identical in the dashboard.

use unicode_normalization::UnicodeNormalization as _;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKeyName {
    #[error("name must not be empty")]
    Empty,
    #[error("name must be at most 100 characters")]
    TooLong,
    #[error("name must not contain control characters")]
    ControlCharacter,
    #[error("name must not contain invisible formatting or line separator characters")]
    InvisibleCharacter,
}

/// A validated, trimmed, NFC-normalised key name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyName(std::sync::Arc<str>);

/// Format (Cf), line separator (Zl) and paragraph separator (Zp) characters: invisible, or
/// able to reorder or break the text around them.
fn is_invisible(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

impl KeyName {
    /// Maximum length in characters (Unicode scalar values), after trimming and normalising.
    pub const MAX_CHARS: usize = 100;

    /// Trims, NFC-normalises and validates `raw`.
    ///
    /// # Errors
    /// [`InvalidKeyName`] saying which rule failed.
    pub fn parse(raw: &str) -> Result<Self, InvalidKeyName> {
        let normalised: String = raw.trim().nfc().collect();
        let name = normalised.trim();
        if name.is_empty() {
            return Err(InvalidKeyName::Empty);
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidKeyName::ControlCharacter);
        }
        if name.chars().any(is_invisible) {
            return Err(InvalidKeyName::InvisibleCharacter);
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(InvalidKeyName::TooLong);
        }
        Ok(Self(name.into()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_separator_characters_are_refused() {
        for bad in [
            "ci-bot\u{200b}",  // zero-width space
            "ci\u{200d}-bot",  // zero-width joiner
            "\u{202e}tob-ic",  // right-to-left override
            "ci-bot\u{2066}",  // left-to-right isolate
            "\u{feff}ci-bot",  // byte order mark
            "ci\u{00ad}-bot",  // soft hyphen
            "ci-bot\u{2028}x", // line separator
            "ci-bot\u{2029}x", // paragraph separator
            "ci-bot\u{e0041}", // tag character
        ] {
            assert_eq!(
                KeyName::parse(bad),
                Err(InvalidKeyName::InvisibleCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_are_nfc_normalised() {
        let decomposed = KeyName::parse("cafe\u{301}").unwrap();
        let composed = KeyName::parse("caf\u{e9}").unwrap();
        assert_eq!(decomposed, composed);
        assert_eq!(decomposed.as_str(), "caf\u{e9}");
        // Visible non-ASCII names stay allowed.
        assert!(KeyName::parse("Schlüssel für CI – 日本").is_ok());
    }

    #[test]
    fn the_length_limit_counts_normalised_characters() {
        // 100 decomposed é are 200 scalar values but 100 characters once composed.
        let name = "e\u{301}".repeat(100);
        assert_eq!(KeyName::parse(&name).unwrap().as_str().chars().count(), 100);
        assert_eq!(
            KeyName::parse(&"e\u{301}".repeat(101)),
            Err(InvalidKeyName::TooLong)
        );
    }
}
