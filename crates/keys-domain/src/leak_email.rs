//! The email to a key's owner when the key was found in public and revoked.

use crate::alert_email::OutgoingEmail;
use crate::email::Email;
use crate::key_name::KeyName;
use crate::key_preview::KeyPreview;

/// Where the leak was seen, as the report said.
#[derive(Debug, Clone, Copy)]
pub struct LeakSite<'a> {
    pub url: &'a str,
    pub source: &'a str,
}

/// Composes the "your key was exposed" email. Names the key by name and preview only.
#[must_use]
pub fn leaked_key_email(
    to: Email,
    key_name: &KeyName,
    preview: &KeyPreview,
    site: LeakSite<'_>,
) -> OutgoingEmail {
    let subject = format!(
        "Your API key \"{}\" ({}) was exposed and has been revoked",
        key_name.as_str(),
        preview.as_str()
    );
    let source = if site.source.is_empty() {
        "unknown"
    } else {
        site.source
    };
    let body = format!(
        "Hello,\n\n\
         Your JobTactics API key \"{name}\" ({preview}) was found in public by GitHub secret\n\
         scanning, at:\n\n    {url}\n    (source: {source})\n\n\
         Anyone could have copied it, so we revoked it at once: requests made with it are now\n\
         refused with 401 revoked_api_key.\n\n\
         What to do:\n\
         1. Create a new key in Settings -> API keys at https://app.jobtactics.io and put it\n\
            where the old one was used, this time in a secret store or environment variable,\n\
            never in code.\n\
         2. Remove the old key from the place above (and from its history: rewriting a commit\n\
            does not remove copies already made).\n\
         3. Check the key's usage and your credit ledger for requests you do not recognise.\n\n\
         -- JobTactics\n",
        name = key_name.as_str(),
        preview = preview.as_str(),
        url = site.url,
    );
    OutgoingEmail { to, subject, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_key_and_the_place_never_the_key() {
        let e = leaked_key_email(
            Email::parse("ada@example.com").unwrap(),
            &KeyName::parse("ci-bot").unwrap(),
            &KeyPreview::of_key("jt_sk_Ab3xSECRETSECRETSECRETSECRETSE9QzTxx"),
            LeakSite {
                url: "https://github.com/o/r/blob/abc/.env",
                source: "content",
            },
        );
        assert!(e.subject.contains("exposed"));
        assert!(e.subject.contains("ci-bot") && e.subject.contains("jt_sk_Ab3x..."));
        assert!(e.body.contains("https://github.com/o/r/blob/abc/.env"));
        assert!(e.body.contains("content"));
        assert!(e.body.contains("Create a new key"));
        assert!(!e.body.contains("SECRET") && !e.subject.contains("SECRET"));
    }
}
