//! Why a key was revoked, as the key object's `revocation_reason` shows it.

/// The cause of a revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// Its owner revoked it in the dashboard.
    User,
    /// A rotation replaced it (at once, or when its grace period ended).
    Rotation,
    /// It was found in public (a secret-scanning report, or an operator who said so).
    Leaked,
    /// An operator revoked it from the command line.
    Operator,
}

impl RevocationReason {
    /// The wire's (and the stores') spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Rotation => "rotation",
            Self::Leaked => "leaked",
            Self::Operator => "operator",
        }
    }

    /// The reason spelled as [`RevocationReason::as_str`] does; `None` for anything else.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::User, Self::Rotation, Self::Leaked, Self::Operator]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for r in [
            RevocationReason::User,
            RevocationReason::Rotation,
            RevocationReason::Leaked,
            RevocationReason::Operator,
        ] {
            assert_eq!(RevocationReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(RevocationReason::parse("LEAKED"), None);
    }
}
