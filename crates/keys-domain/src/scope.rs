//! What a key may do: the public endpoints' permissions, and a key's set of them.

/// One permission a public endpoint may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    CreditsRead,
    DocumentsRead,
    DocumentsWrite,
    TemplatesPurchase,
}

impl Scope {
    /// Every scope, in the order the key object lists them.
    pub const ALL: [Self; 4] = [
        Self::CreditsRead,
        Self::DocumentsRead,
        Self::DocumentsWrite,
        Self::TemplatesPurchase,
    ];

    /// The contract's spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CreditsRead => "credits:read",
            Self::DocumentsRead => "documents:read",
            Self::DocumentsWrite => "documents:write",
            Self::TemplatesPurchase => "templates:purchase",
        }
    }

    /// The scope spelled as [`Scope::as_str`] does; `None` for anything else.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == s)
    }

    const fn bit(self) -> u8 {
        match self {
            Self::CreditsRead => 1,
            Self::DocumentsRead => 2,
            Self::DocumentsWrite => 4,
            Self::TemplatesPurchase => 8,
        }
    }
}

/// A key's scopes: any subset of [`Scope::ALL`], all four by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes(u8);

impl Default for Scopes {
    fn default() -> Self {
        Self::ALL
    }
}

/// A scope list named something that is not a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "scopes must be a list of credits:read, documents:read, documents:write and templates:purchase; {0:?} is not one of them"
)]
pub struct UnknownScope(pub String);

impl Scopes {
    /// Every scope: what a key without the control may do.
    pub const ALL: Self = Self(0b1111);

    /// Whether the set holds `scope`.
    #[must_use]
    pub const fn allows(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether the set is every scope (the control is not narrowing anything).
    #[must_use]
    pub const fn is_all(self) -> bool {
        self.0 == Self::ALL.0
    }

    /// The scopes in the set, in [`Scope::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.allows(*s))
    }

    /// From the wire's list (repeats are harmless; an empty list leaves only the endpoints
    /// that need no scope).
    ///
    /// # Errors
    /// [`UnknownScope`] naming the first entry that is not a scope.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, UnknownScope> {
        names.into_iter().try_fold(Self(0), |set, name| {
            Scope::parse(name)
                .map(|s| Self(set.0 | s.bit()))
                .ok_or_else(|| UnknownScope(name.chars().take(40).collect()))
        })
    }

    /// The stored form: the names joined by `,` (empty for none).
    #[must_use]
    pub fn to_stored(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(",")
    }

    /// From [`Scopes::to_stored`]; `None` when a name is not a scope.
    #[must_use]
    pub fn from_stored(s: &str) -> Option<Self> {
        Self::parse(s.split(',').filter(|n| !n.is_empty())).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_refuse_unknown_names() {
        let some = Scopes::parse(["documents:write", "credits:read", "credits:read"]).unwrap();
        assert!(some.allows(Scope::CreditsRead) && some.allows(Scope::DocumentsWrite));
        assert!(!some.allows(Scope::DocumentsRead) && !some.allows(Scope::TemplatesPurchase));
        assert_eq!(some.to_stored(), "credits:read,documents:write");
        assert_eq!(Scopes::from_stored(&some.to_stored()), Some(some));
        assert_eq!(Scopes::from_stored(""), Scopes::parse([]).ok());
        assert!(Scopes::ALL.is_all() && Scopes::default().is_all());
        assert_eq!(
            Scopes::parse(["documents:delete"]),
            Err(UnknownScope("documents:delete".into()))
        );
    }
}
