use async_trait::async_trait;

use crate::alert_email::OutgoingEmail;

/// Why an email was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Worth retrying: connection refused, timeout, 4xx reply.
    #[error("mail server unavailable: {0}")]
    Transient(String),
    /// Retrying will not help: 5xx reply, bad address.
    #[error("mail rejected: {0}")]
    Permanent(String),
}

/// Sends one email.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Returns `Ok` only once the server accepted the message.
    ///
    /// # Errors
    /// `Transient` or `Permanent`.
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError>;
}
