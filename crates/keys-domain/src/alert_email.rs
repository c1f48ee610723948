//! The high-usage alert email and its delivery retry schedule.

use std::time::Duration;

use crate::email::Email;
use crate::key_name::KeyName;
use crate::key_preview::KeyPreview;

/// An email ready to send. Contains no key, only its name and preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: Email,
    pub subject: String,
    pub body: String,
}

/// Composes the high-usage alert for the owner of a key.
#[must_use]
pub fn high_usage_alert(
    to: Email,
    key_name: &KeyName,
    preview: &KeyPreview,
    count: u64,
    threshold: u64,
) -> OutgoingEmail {
    let subject = format!(
        "High usage on API key \"{}\" ({})",
        key_name.as_str(),
        preview.as_str()
    );
    let body = format!(
        "Hello,\n\n\
         Your JobTactics API key \"{name}\" ({preview}) made {count} requests in the last 24 hours,\n\
         which crosses the high-usage threshold of {threshold} requests per 24 hours.\n\n\
         If you do not recognise this traffic, treat the key as leaked: revoke it now in\n\
         Settings -> API keys at https://app.jobtactics.io, create a new key with a different\n\
         name, and update every consumer that used the old one.\n\n\
         You will get at most one such email per key per 24 hours.\n\n\
         -- JobTactics\n",
        name = key_name.as_str(),
        preview = preview.as_str(),
    );
    OutgoingEmail { to, subject, body }
}

/// Delay before delivery attempt `attempt + 1` after `attempt` failures: exponential from 1 s,
/// capped at 5 minutes, with full jitter in [50 %, 100 %] so many instances do not retry in step.
/// `jitter` is a uniform random value in [0, 1).
#[must_use]
pub fn retry_delay(attempt: u32, jitter: f64) -> Duration {
    let base_ms: u64 = 1000u64.saturating_mul(1u64 << attempt.min(20)).min(300_000);
    let factor = 0.5 + 0.5 * jitter.clamp(0.0, 1.0);
    // The product is at most 300 000 and non-negative, so the cast is exact enough.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    Duration::from_millis((base_ms as f64 * factor) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_the_key_by_name_and_preview_only() {
        let e = high_usage_alert(
            Email::parse("ada@example.com").unwrap(),
            &KeyName::parse("ci-bot").unwrap(),
            &KeyPreview::of_key("jt_sk_Ab3xSECRETSECRETSECRETSECRETSE9QzTxx"),
            10_001,
            10_000,
        );
        assert!(e.subject.contains("High usage"));
        assert!(e.subject.contains("ci-bot"));
        assert!(e.subject.contains("jt_sk_Ab3x..."));
        assert!(e.body.contains("10001") && e.body.contains("10000"));
        assert!(e.body.contains("Settings -> API keys"));
        assert!(!e.body.contains("SECRET"));
    }

    #[test]
    fn retry_delay_grows_and_is_capped() {
        assert_eq!(retry_delay(0, 1.0), Duration::from_secs(1));
        assert_eq!(retry_delay(3, 1.0), Duration::from_secs(8));
        assert_eq!(retry_delay(30, 1.0), Duration::from_secs(300));
        assert_eq!(retry_delay(3, 0.0), Duration::from_secs(4));
    }
}
