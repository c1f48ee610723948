//! Alert email delivery.
//!
//! - [`SmtpMailer`]: the [`Mailer`](keys_domain::ports::Mailer) port over SMTP (lettre on tokio).
//! - [`LogMailer`]: the same port writing emails to the log, for when `SMTP_URL` is unset.
//!
//! See `docs/alerts.md` for the outbox lifecycle and delivery guarantees.

mod log_mailer;
mod smtp_mailer;
#[cfg(feature = "testing")]
pub mod testing;

pub use log_mailer::LogMailer;
pub use smtp_mailer::SmtpMailer;
