//! Reminders before a key's `expires_at`: one 7 days before, one 1 day before, each once.

use std::time::Duration;

use crate::alert_email::OutgoingEmail;
use crate::email::Email;
use crate::key_name::KeyName;
use crate::key_preview::KeyPreview;
use crate::timestamp::Timestamp;

/// The reminders, by days before the expiry, latest first.
pub const REMINDER_DAYS: [u32; 2] = [1, 7];

const DAY: Duration = Duration::from_secs(86_400);

/// The reminder a key is due at `now`, as days before its expiry; `None` when none is.
///
/// `reminded` is the last reminder sent (its days). A key inside the 1-day window that has not
/// had the 1-day reminder gets it, whether or not it had the 7-day one, so a key created closer
/// to its expiry than a day gets only that one; inside the 7-day window, a key reminded of
/// nothing gets the 7-day one. Nothing once the key has expired.
#[must_use]
pub fn reminder_due(expires_at: Timestamp, reminded: Option<u32>, now: Timestamp) -> Option<u32> {
    if now >= expires_at {
        return None;
    }
    REMINDER_DAYS.into_iter().find(|&days| {
        let window_opens = expires_at.minus(DAY * days);
        now >= window_opens && reminded.is_none_or(|sent| sent > days)
    })
}

/// The "your key expires" email: the key by name and preview, and the date.
#[must_use]
pub fn expiry_reminder_email(
    to: Email,
    key_name: &KeyName,
    preview: &KeyPreview,
    expires_at: Timestamp,
    days_before: u32,
) -> OutgoingEmail {
    let when = if days_before == 1 {
        "tomorrow"
    } else {
        "in 7 days"
    };
    let subject = format!(
        "Your API key \"{}\" ({}) expires {when}",
        key_name.as_str(),
        preview.as_str()
    );
    let body = format!(
        "Hello,\n\n\
         Your JobTactics API key \"{name}\" ({preview}) expires at {at} (UTC).\n\
         From then on, requests made with it are refused with 401 expired_api_key.\n\n\
         If it is still needed, create a new key in Settings -> API keys at\n\
         https://app.jobtactics.io (or rotate this one before it expires: the new key keeps its\n\
         controls) and put it where this one is used.\n\n\
         -- JobTactics\n",
        name = key_name.as_str(),
        preview = preview.as_str(),
        at = expires_at.to_rfc3339(),
    );
    OutgoingEmail { to, subject, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPIRES: Timestamp = Timestamp::from_millis(1_900_000_000_000);

    fn days_before(d: f64) -> Timestamp {
        #[allow(clippy::cast_possible_truncation)]
        let ms = (d * 86_400_000.0) as i64;
        Timestamp::from_millis(EXPIRES.as_millis() - ms)
    }

    #[test]
    fn each_reminder_is_due_once_in_its_window() {
        assert_eq!(reminder_due(EXPIRES, None, days_before(8.0)), None);
        assert_eq!(reminder_due(EXPIRES, None, days_before(7.0)), Some(7));
        assert_eq!(reminder_due(EXPIRES, None, days_before(3.0)), Some(7));
        assert_eq!(reminder_due(EXPIRES, Some(7), days_before(3.0)), None);
        assert_eq!(reminder_due(EXPIRES, Some(7), days_before(1.0)), Some(1));
        assert_eq!(reminder_due(EXPIRES, Some(1), days_before(0.5)), None);
        assert_eq!(reminder_due(EXPIRES, Some(7), EXPIRES), None);
    }

    #[test]
    fn a_key_closer_than_a_day_to_its_expiry_gets_only_the_1_day_reminder() {
        assert_eq!(reminder_due(EXPIRES, None, days_before(0.5)), Some(1));
        assert_eq!(reminder_due(EXPIRES, Some(1), days_before(0.2)), None);
    }

    #[test]
    fn the_email_names_the_key_and_the_date_never_the_key() {
        let e = expiry_reminder_email(
            Email::parse("ada@example.com").unwrap(),
            &KeyName::parse("ci-bot").unwrap(),
            &KeyPreview::of_key("jt_sk_Ab3xSECRETSECRETSECRETSECRETSE9QzTxx"),
            EXPIRES,
            7,
        );
        assert!(e.subject.contains("expires") && e.subject.contains("ci-bot"));
        assert!(e.body.contains(&EXPIRES.to_rfc3339()));
        assert!(!e.body.contains("SECRET") && !e.subject.contains("SECRET"));
    }
}
