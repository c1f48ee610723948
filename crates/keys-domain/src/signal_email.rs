//! The emails of the leak signals: the key by name and preview, what was seen, what to do.

use crate::alert_email::OutgoingEmail;
use crate::email::Email;
use crate::key_name::KeyName;
use crate::key_preview::KeyPreview;

/// What a signal's email says was seen.
#[derive(Debug, Clone, Copy)]
pub enum SignalSeen<'a> {
    NewNetwork {
        network: &'a str,
        user_agent: &'a str,
    },
    BrowserUse {
        network: &'a str,
        user_agent: &'a str,
    },
    UsageSpike {
        count: u64,
        busiest: u64,
    },
}

const WHAT_TO_DO: &str = "If this was not you or one of your services, rotate the key now (Settings -> API keys\n\
     at https://app.jobtactics.io), then check its clients and your credit ledger. If it was,\n\
     there is nothing to do; you can narrow where the key works with its allowed networks.\n";

/// Composes a signal's email. Names the key by name and preview only.
#[must_use]
pub fn signal_email(
    to: Email,
    key_name: &KeyName,
    preview: &KeyPreview,
    seen: SignalSeen<'_>,
) -> OutgoingEmail {
    let key = format!("\"{}\" ({})", key_name.as_str(), preview.as_str());
    let (subject, what) = match seen {
        SignalSeen::NewNetwork {
            network,
            user_agent,
        } => (
            format!("Your API key {key} was used from a new network"),
            format!(
                "was just used from a network it has not been used from in the last 30 days:\n\n    \
                 network {network}, user agent {user_agent}\n"
            ),
        ),
        SignalSeen::BrowserUse {
            network,
            user_agent,
        } => (
            format!("Your API key {key} was used from a browser"),
            format!(
                "was sent by a web browser (the request carried an Origin header), from:\n\n    \
                 network {network}, user agent {user_agent}\n\n\
                 API keys are for server-side use only: a key in a web page can be read by anyone\n\
                 who loads the page.\n"
            ),
        ),
        SignalSeen::UsageSpike { count, busiest } => (
            format!("Your API key {key} shows unusual use"),
            format!(
                "made {count} requests in the current hour; its busiest hour of the 7 days\n                 before had {busiest}.\n"
            ),
        ),
    };
    let body =
        format!("Hello,\n\nYour JobTactics API key {key} {what}\n{WHAT_TO_DO}\n-- JobTactics\n");
    OutgoingEmail { to, subject, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_the_signal_and_never_the_key() {
        let (to, name) = (
            Email::parse("ada@example.com").unwrap(),
            KeyName::parse("ci-bot").unwrap(),
        );
        let preview = KeyPreview::of_key("jt_sk_Ab3xSECRETSECRETSECRETSECRETSE9QzTxx");
        let seen = [
            (
                SignalSeen::NewNetwork {
                    network: "203.0.113.0/24",
                    user_agent: "curl/8.5.0",
                },
                "new network",
            ),
            (
                SignalSeen::BrowserUse {
                    network: "203.0.113.0/24",
                    user_agent: "Mozilla/5.0",
                },
                "browser",
            ),
        ];
        let seen = seen.into_iter().chain([(
            SignalSeen::UsageSpike {
                count: 5_000,
                busiest: 40,
            },
            "unusual use",
        )]);
        for (seen, words) in seen {
            let e = signal_email(to.clone(), &name, &preview, seen);
            assert!(e.subject.contains(words), "{}", e.subject);
            assert!(e.subject.contains("ci-bot"));
            assert!(!e.body.contains("SECRET") && !e.subject.contains("SECRET"));
        }
    }
}
