//! `SmtpMailer` against a real SMTP server (aiosmtpd) over TCP.

mod support;

use adapters_smtp::SmtpMailer;
use adapters_smtp::testing::SENDER;
use adapters_smtp::testing::{DEFERRED_RECIPIENT, REJECTED_RECIPIENT, TestSmtpServer, free_port};
use keys_domain::ports::{MailError, Mailer};
use support::email_to;

#[tokio::test]
async fn delivers_one_message_with_sender_recipient_subject_and_body() {
    let server = TestSmtpServer::start();
    let mailer = SmtpMailer::from_url(&server.url(), SENDER).unwrap();
    let email = email_to("ada@example.com");

    mailer.send(&email).await.unwrap();

    let got = server.messages();
    assert_eq!(got.len(), 1, "{got:#?}");
    let m = &got[0];
    assert_eq!(m.from, "alerts@jobtactics.io");
    assert_eq!(m.to, vec!["ada@example.com".to_owned()]);
    assert_eq!(m.header_from, SENDER);
    assert_eq!(m.header_to, "ada@example.com");
    assert_eq!(m.subject, email.subject);
    assert!(
        m.content_type.starts_with("text/plain"),
        "{}",
        m.content_type
    );
    assert!(
        m.content_type.to_lowercase().contains("utf-8"),
        "{}",
        m.content_type
    );
    assert_eq!(m.body.trim_end(), email.body.trim_end());
}

#[tokio::test]
async fn uses_the_configured_sender() {
    let server = TestSmtpServer::start();
    let mailer = SmtpMailer::from_url(&server.url(), "Ops <ops@example.org>").unwrap();
    mailer.send(&email_to("ada@example.com")).await.unwrap();
    let m = &server.messages()[0];
    assert_eq!(m.from, "ops@example.org");
    assert_eq!(m.header_from, "Ops <ops@example.org>");
}

#[tokio::test]
async fn unreachable_server_is_transient() {
    let url = format!("smtp://127.0.0.1:{}", free_port());
    let mailer = SmtpMailer::from_url(&url, SENDER).unwrap();
    let err = mailer.send(&email_to("ada@example.com")).await.unwrap_err();
    assert!(matches!(err, MailError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn stopped_server_is_transient_and_works_again_after_restart() {
    let mut server = TestSmtpServer::start();
    let mailer = SmtpMailer::from_url(&server.url(), SENDER).unwrap();
    server.stop();
    let err = mailer.send(&email_to("ada@example.com")).await.unwrap_err();
    assert!(matches!(err, MailError::Transient(_)), "{err:?}");

    server.restart();
    mailer.send(&email_to("ada@example.com")).await.unwrap();
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn a_5xx_rejection_is_permanent() {
    let server = TestSmtpServer::start();
    let mailer = SmtpMailer::from_url(&server.url(), SENDER).unwrap();
    let err = mailer
        .send(&email_to(REJECTED_RECIPIENT))
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Permanent(_)), "{err:?}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_4xx_rejection_is_transient() {
    let server = TestSmtpServer::start();
    let mailer = SmtpMailer::from_url(&server.url(), SENDER).unwrap();
    let err = mailer
        .send(&email_to(DEFERRED_RECIPIENT))
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Transient(_)), "{err:?}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn reports_reachability() {
    let mut server = TestSmtpServer::start();
    let mailer = SmtpMailer::from_url(&server.url(), SENDER).unwrap();
    assert!(mailer.is_reachable().await);
    server.stop();
    assert!(!mailer.is_reachable().await);
}
