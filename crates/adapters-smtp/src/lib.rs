//! Alert email delivery.
//!
//! - [`SmtpMailer`]: the [`Mailer`](keys_domain::ports::Mailer) port over SMTP (lettre on tokio).
//! - [`LogMailer`]: the same port writing emails to the log, for when `SMTP_URL` is unset.
//! - [`spawn_delivery_worker`]: the background task that drains the outbox.
//!
//! See `docs/alerts.md` for the outbox lifecycle and delivery guarantees.

mod delivery_worker;
mod log_mailer;
mod smtp_mailer;
#[cfg(feature = "testing")]
pub mod testing;

pub use delivery_worker::{DELIVERY_BATCH, spawn_delivery_worker};
pub use log_mailer::LogMailer;
pub use smtp_mailer::{DEFAULT_MAIL_FROM, SmtpMailer};
