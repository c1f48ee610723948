//! SHA-256 of a signed report's body, computed while the body streams in.

use sha2::{Digest, Sha256};

/// The SHA-256 digest of a report body, exactly as received: what the report's signature signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportDigest([u8; 32]);

impl ReportDigest {
    /// SHA-256 of a whole `body`.
    #[must_use]
    pub fn of(body: &[u8]) -> Self {
        Self(Sha256::digest(body).into())
    }

    /// The digest bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Hashes a body chunk by chunk as it arrives, so the signature can be checked as soon as the
/// last byte is in, without a second pass over the buffered body.
#[derive(Debug, Clone, Default)]
pub struct ReportDigester(Sha256);

impl ReportDigester {
    /// Adds the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    /// The digest of every chunk added, in order.
    #[must_use]
    pub fn finish(self) -> ReportDigest {
        ReportDigest(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_digest_equals_the_whole_body_digest() {
        let body = br#"[{"token":"x","type":"jobtactics_api_key"}]"#;
        let mut d = ReportDigester::default();
        for chunk in body.chunks(7) {
            d.update(chunk);
        }
        assert_eq!(d.finish(), ReportDigest::of(body));
    }
}
