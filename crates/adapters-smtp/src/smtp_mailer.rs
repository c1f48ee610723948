//! The mailer port over SMTP.

use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use keys_domain::alert_email::OutgoingEmail;
use keys_domain::ports::{MailError, Mailer};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

/// Per network step (connect, each command): a dead server must not hold the worker for long.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole conversation: a server that answers slowly but steadily is cut off here.
const SEND_DEADLINE: Duration = Duration::from_secs(30);

/// Sends emails to an SMTP server, one connection per email (alerts are rare).
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The URL without its password, for logs and Debug.
    server: String,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// `smtp://host:port` plain (no TLS, optional `user:pass@`), `smtp://…?tls=required` for
    /// STARTTLS, `smtps://user:pass@host:port` implicit TLS. `from` is `MAIL_FROM`, e.g.
    /// `JobTactics <alerts@jobtactics.io>`.
    ///
    /// # Errors
    /// An unparsable URL or sender address (the message never contains the password).
    pub fn from_url(url: &str, from: &str) -> anyhow::Result<SmtpMailer> {
        let server = redact_password(url);
        let from: Mailbox = from
            .parse()
            .with_context(|| format!("MAIL_FROM `{from}` is not a valid sender address"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("SMTP_URL `{server}` is not usable: {e}"))?
            .timeout(Some(STEP_TIMEOUT))
            .build();
        Ok(SmtpMailer {
            transport,
            from,
            server,
        })
    }

    /// Whether the server answers a connection now (for readiness reports).
    pub async fn is_reachable(&self) -> bool {
        matches!(
            tokio::time::timeout(SEND_DEADLINE, self.transport.test_connection()).await,
            Ok(Ok(true))
        )
    }

    fn message(&self, email: &OutgoingEmail) -> Result<Message, MailError> {
        let to: Mailbox =
            email.to.as_str().parse().map_err(|e| {
                MailError::Permanent(format!("recipient address is not usable: {e}"))
            })?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.as_str())
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.clone())
            .map_err(|e| MailError::Permanent(format!("email cannot be built: {e}")))
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let message = self.message(email)?;
        let result = match tokio::time::timeout(SEND_DEADLINE, self.transport.send(message)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_elapsed) => Err(MailError::Transient(format!(
                "no answer from the mail server within {}s",
                SEND_DEADLINE.as_secs()
            ))),
        };
        if let Err(e) = &result {
            tracing::warn!(server = %self.server, error = %e, "alert email not accepted");
        }
        result
    }
}

/// 5xx replies will not change on retry; everything else (4xx, refused connection, timeout,
/// TLS or protocol trouble) may pass later.
fn classify(e: &lettre::transport::smtp::Error) -> MailError {
    if e.is_permanent() {
        MailError::Permanent(e.to_string())
    } else {
        MailError::Transient(e.to_string())
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`; anything else unchanged.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
    let masked = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        user.to_owned()
    };
    format!("{scheme}://{masked}@{host}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDER: &str = "Alerts <alerts@example.com>";

    #[test]
    fn redacts_only_the_password() {
        assert_eq!(
            redact_password("smtps://bob:s3cr:et@mail.example.com:465"),
            "smtps://bob:***@mail.example.com:465"
        );
        assert_eq!(
            redact_password("smtp://127.0.0.1:2525"),
            "smtp://127.0.0.1:2525"
        );
        assert_eq!(
            redact_password("smtp://bob@h:25/x?tls=required"),
            "smtp://bob@h:25/x?tls=required"
        );
    }

    #[test]
    fn debug_and_errors_never_show_the_password() {
        let m = SmtpMailer::from_url("smtps://bob:hunter2@mail.example.com:465", SENDER).unwrap();
        let dbg = format!("{m:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("mail.example.com"));

        let err = SmtpMailer::from_url("ftp://bob:hunter2@h:1", SENDER).unwrap_err();
        assert!(!format!("{err:#}").contains("hunter2"));
    }

    #[test]
    fn refuses_a_bad_sender() {
        assert!(SmtpMailer::from_url("smtp://127.0.0.1:2525", "not an address").is_err());
        assert!(SmtpMailer::from_url("smtp://127.0.0.1:2525", SENDER).is_ok());
    }
}
