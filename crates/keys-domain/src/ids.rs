//! Opaque identifiers: a short type prefix and 20 random base62 characters (≈119 bits).

use crate::base62;
use crate::random::RandomSource;

/// Base62 characters after a generated id's prefix.
const ID_CHARS: usize = 20;

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
                Self(format!("{}{}", $prefix, base62::random_chars(random, ID_CHARS)).into())
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

/// Characters of a time-ordered id's creation time: 62^8 ms reach the year 8888.
const TIME_CHARS: usize = 8;

impl DocumentId {
    /// A fresh id that sorts after every id generated at an earlier millisecond: 8 base62
    /// characters of `at` (milliseconds since the epoch) then 12 random ones (≈71 bits, for ids
    /// made in the same millisecond). Documents are inserted at a high rate, and a random id
    /// made every insert dirty a random page of the id index, which the database then writes
    /// out (SQLite's WAL, PostgreSQL's full-page images); time-ordered ids all land on the last
    /// page. Ids stay opaque: the creation time they reveal is already the document's
    /// `created_at`.
    pub fn generate_at(random: &dyn RandomSource, at: crate::timestamp::Timestamp) -> Self {
        let millis = u64::try_from(at.as_millis()).unwrap_or(0);
        let mut id = String::with_capacity(Self::PREFIX.len() + ID_CHARS);
        id.push_str(Self::PREFIX);
        id.push_str(&base62::encode_padded(millis, TIME_CHARS));
        id.push_str(&base62::random_chars(random, ID_CHARS - TIME_CHARS));
        Self(id.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsRandom;
    use crate::timestamp::Timestamp;

    #[test]
    fn document_ids_are_twenty_base62_characters_ordered_by_time() {
        let at = Timestamp::from_millis(1_800_000_000_000);
        let first = DocumentId::generate_at(&OsRandom, at);
        let rest = first.as_str().strip_prefix("doc_").unwrap();
        assert_eq!(rest.len(), 20);
        assert!(rest.bytes().all(base62::is_base62), "{first}");
        let mut previous = first;
        for step in [1, 2, 999, 86_400_000, 10 * 365 * 86_400_000] {
            let next =
                DocumentId::generate_at(&OsRandom, at.plus(std::time::Duration::from_millis(step)));
            assert!(next > previous, "{next} sorts after {previous}");
            previous = next;
        }
        // Same millisecond: different ids.
        assert_ne!(
            DocumentId::generate_at(&OsRandom, at),
            DocumentId::generate_at(&OsRandom, at)
        );
    }
}
