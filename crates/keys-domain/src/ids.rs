//! Opaque identifiers: a short type prefix and 20 random base62 characters (≈119 bits).

use crate::base62;
use crate::random::RandomSource;

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        // `Arc<str>`: a key record is cloned out of the cache on every request, and cloning
        // an id is then a reference-count bump instead of an allocation.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            /// The prefix of generated ids of this kind.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh random id.
            pub fn generate(random: &dyn RandomSource) -> Self {
                Self(format!("{}{}", $prefix, base62::random_chars(random, 20)).into())
            }

            /// An id as given by a client or a store. Ids are opaque: any string is accepted
            /// and simply matches nothing when it is not one of ours.
            #[must_use]
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into().into())
            }

            /// The text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

opaque_id!(
    /// A user (account) id.
    UserId, "usr_"
);
opaque_id!(
    /// An API key's id (not the key: safe to log).
    KeyId, "key_"
);
opaque_id!(
    /// A rendered document's id.
    DocumentId, "doc_"
);
opaque_id!(
    /// An outbox email's id.
    AlertId, "alr_"
);
opaque_id!(
    /// A sign-in link's id (not its token: safe to log).
    SignInLinkId, "sil_"
);
opaque_id!(
    /// A template id, e.g. `classic` (chosen by the catalogue, not generated).
    TemplateId, "tpl_"
);
