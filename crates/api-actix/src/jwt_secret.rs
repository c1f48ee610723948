//! The HS256 secret of dashboard tokens, from `JWT_SECRET` or the file `JWT_SECRET_FILE` names
//! (docs/api.md). Never a command-line flag: argv is visible to every local user. At least
//! 32 bytes, or the service refuses to start: an empty or one-letter secret let anyone who knew
//! a user id forge dashboard tokens.

use std::fmt;
use std::path::Path;

use anyhow::Context as _;

/// The shortest secret accepted (HS256's key should be at least its output size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// A configured secret and the variable it came from (to name it in errors).
#[derive(Clone, PartialEq, Eq)]
pub struct JwtSecret {
    value: String,
    origin: &'static str,
}

impl JwtSecret {
    /// A secret read from `origin` (`JWT_SECRET` or `JWT_SECRET_FILE`). Checked by
    /// [`JwtSecret::checked`], when the service or a command needs it.
    #[must_use]
    pub fn new(value: impl Into<String>, origin: &'static str) -> Self {
        Self {
            value: value.into(),
            origin,
        }
    }

    /// `JWT_SECRET` and `JWT_SECRET_FILE` from the environment; `None` when neither is set.
    ///
    /// # Errors
    /// Both are set, or the file cannot be read.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        let value = std::env::var("JWT_SECRET").ok();
        let file = std::env::var_os("JWT_SECRET_FILE");
        match (value, file) {
            (Some(_), Some(_)) => {
                anyhow::bail!("set JWT_SECRET or JWT_SECRET_FILE, not both")
            }
            (Some(value), None) => Ok(Some(Self::new(value, "JWT_SECRET"))),
            (None, Some(path)) => Self::from_file(Path::new(&path)).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The file's contents without the trailing newline an editor or `echo` adds.
    ///
    /// # Errors
    /// The file cannot be read or is not UTF-8.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let raw = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read JWT_SECRET_FILE {}", path.display()))?;
        let value = raw.strip_suffix('\n').unwrap_or(&raw);
        let value = value.strip_suffix('\r').unwrap_or(value);
        Ok(Self::new(value, "JWT_SECRET_FILE"))
    }

    /// The secret's bytes, unchecked (tests sign tokens with it).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.value.as_bytes()
    }

    /// The secret's bytes, if long enough.
    ///
    /// # Errors
    /// Shorter than [`MIN_JWT_SECRET_BYTES`], naming the variable.
    pub fn checked(&self) -> anyhow::Result<&[u8]> {
        anyhow::ensure!(
            self.value.len() >= MIN_JWT_SECRET_BYTES,
            "{} must hold at least {MIN_JWT_SECRET_BYTES} bytes (it holds {}); \
             generate one with `openssl rand -base64 48`",
            self.origin,
            self.value.len()
        );
        Ok(self.value.as_bytes())
    }
}

impl From<&str> for JwtSecret {
    fn from(value: &str) -> Self {
        Self::new(value, "JWT_SECRET")
    }
}

impl From<String> for JwtSecret {
    fn from(value: String) -> Self {
        Self::new(value, "JWT_SECRET")
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwtSecret({}: ***)", self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused_naming_their_variable() {
        for short in ["", "a", &"x".repeat(31)] {
            let e = JwtSecret::new(short, "JWT_SECRET").checked().unwrap_err();
            assert!(
                e.to_string()
                    .contains("JWT_SECRET must hold at least 32 bytes"),
                "{e}"
            );
        }
        let e = JwtSecret::new("a", "JWT_SECRET_FILE")
            .checked()
            .unwrap_err();
        assert!(e.to_string().starts_with("JWT_SECRET_FILE "), "{e}");
        assert_eq!(
            JwtSecret::from("y".repeat(32)).checked().unwrap(),
            "y".repeat(32).as_bytes()
        );
    }

    #[test]
    fn a_file_secret_loses_its_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, format!(" {}\n", "z".repeat(40))).unwrap();
        let s = JwtSecret::from_file(&path).unwrap();
        assert_eq!(
            s.checked().unwrap(),
            format!(" {}", "z".repeat(40)).as_bytes()
        );
        assert!(JwtSecret::from_file(&dir.path().join("missing")).is_err());
        assert!(!format!("{s:?}").contains("zzz"));
    }
}
