//! A mailer that writes emails to the log instead of sending them.

use async_trait::async_trait;
use keys_domain::alert_email::OutgoingEmail;
use keys_domain::ports::{MailError, Mailer};

/// Used when `SMTP_URL` is unset: every email is logged (it carries a key's name and preview,
/// never the key) as one log line, and counts as accepted, so the outbox marks it sent.
#[derive(Debug, Clone)]
pub struct LogMailer {
    from: String,
}

impl LogMailer {
    #[must_use]
    pub fn new(from: &str) -> Self {
        Self {
            from: from.to_owned(),
        }
    }
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        tracing::info!(
            from = %self.from,
            to = %email.to.as_str(),
            subject = %email.subject,
            body = %email.body,
            "SMTP_URL is not set: email logged instead of sent"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keys_domain::Email;

    #[tokio::test]
    async fn accepts_every_email() {
        let mailer = LogMailer::new("JobTactics <alerts@jobtactics.io>");
        let email = OutgoingEmail {
            to: Email::parse("ada@example.com").unwrap(),
            subject: "High usage".to_owned(),
            body: "hello".to_owned(),
        };
        assert_eq!(mailer.send(&email).await, Ok(()));
    }
}
