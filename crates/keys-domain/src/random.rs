//! Where randomness comes from: a small trait so tests can be deterministic.

/// A source of cryptographically secure random bytes.
pub trait RandomSource: Send + Sync {
    /// Fills `buf` entirely with random bytes.
    fn fill_bytes(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG (`getrandom`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill_bytes(&self, buf: &mut [u8]) {
        // The OS CSPRNG failing is unrecoverable: issuing a key from weak randomness would be
        // worse than stopping. It does not happen on any supported platform.
        #[allow(clippy::expect_used)]
        getrandom::fill(buf).expect("the operating system's CSPRNG is unavailable");
    }
}
