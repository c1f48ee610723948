//! Helpers shared by this crate's integration tests.
// Each test binary compiles this module and uses only part of it; a failed unwrap in test
// support is a failed test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod memory_outbox;

use keys_domain::Email;
use keys_domain::alert_email::OutgoingEmail;

/// An alert-like email to `to`.
pub fn email_to(to: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: Email::parse(to).unwrap(),
        subject: "High usage on API key \"ci-bot\" (jt_sk_Ab3x...)".to_owned(),
        body:
            "Hello,\n\nYour key \"ci-bot\" crossed the threshold — ünïcödé too.\n\n-- JobTactics\n"
                .to_owned(),
    }
}
