use async_trait::async_trait;

use crate::report_digest::ReportDigest;

/// Why a signed report was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Missing, malformed or wrong signature, unknown or retired signing key.
    #[error("{0}")]
    Invalid(&'static str),
    /// The signer's public keys could not be read; the sender should retry.
    #[error("the signing keys cannot be read: {0}")]
    Unavailable(String),
}

/// Checks that a body was signed by the reporter (GitHub's secret scanning).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReportVerifier: Send + Sync {
    /// Verifies `signature` (as sent) over the body whose SHA-256 is `body_digest`, with the key
    /// named `key_identifier`.
    ///
    /// # Errors
    /// `Invalid` with a reason safe to show the sender, `Unavailable`.
    async fn verify(
        &self,
        key_identifier: &str,
        signature: &str,
        body_digest: &ReportDigest,
    ) -> Result<(), VerifyError>;

    /// What can be checked before the body is read: `signature` is well formed and
    /// `key_identifier` names a current key (an unknown one may prompt a read of the keys, as in
    /// `verify`). Passing says nothing about the body.
    ///
    /// # Errors
    /// `Invalid` with a reason safe to show the sender, `Unavailable`.
    async fn check_headers(&self, key_identifier: &str, signature: &str)
    -> Result<(), VerifyError>;
}
