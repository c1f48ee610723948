//! Reports of leaked keys from GitHub's secret scanning: verify, revoke, tell the owner.

use std::sync::Arc;

use crate::alert_email::OutgoingEmail;
use crate::api_key::ApiKey;
use crate::ids::AlertId;
use crate::key_event::{Actor, EventDetail};
use crate::key_hash::KeyHash;
use crate::key_secret::ApiKeySecret;
use crate::leak_email::{LeakSite, leaked_key_email};
use crate::ports::{
    AccountStore, Clock, KeyStore, QueuedWithChange, ReportVerifier, RevocationNotifier,
    StoreError, UserRef, VerifyError,
};
use crate::random::RandomSource;
use crate::report_digest::ReportDigest;
use crate::revocation_reason::RevocationReason;

use super::KeyLookupError;
use super::revocation::{RevokeOrder, Revoked, revoke_key};

/// A report's body with the headers that sign it, exactly as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedReport<'a> {
    pub key_identifier: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
    /// SHA-256 of `body`, taken as it was read.
    pub body_digest: &'a ReportDigest,
}

/// One match in a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedToken {
    pub token: String,
    pub token_type: String,
    pub url: String,
    pub source: String,
}

/// Whether a reported token is one of our keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenLabel {
    /// One of our keys, revoked now or before.
    TruePositive,
    FalsePositive,
}

/// The answer for one reported token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledToken {
    /// SHA-256 of the token as reported, lower-case hex.
    pub token_hash: String,
    pub token_type: String,
    pub label: TokenLabel,
}

/// What a report changed, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportOutcome {
    pub labels: Vec<LabelledToken>,
    /// Keys this report revoked.
    pub revoked: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeakReportError {
    /// Missing or bad signature: nothing was read or revoked.
    #[error("{0}")]
    InvalidSignature(&'static str),
    /// The signed body is not a report (the reason names what is wrong).
    #[error("{0}")]
    Malformed(String),
    /// The signing keys or a store could not be read: retry later. Revocations made before
    /// the failure stand; a retry finds those keys revoked and labels them all the same.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<VerifyError> for LeakReportError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Invalid(why) => Self::InvalidSignature(why),
            VerifyError::Unavailable(e) => Self::Unavailable(e),
        }
    }
}

impl From<StoreError> for LeakReportError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// Receives secret-scanning reports.
#[derive(Clone)]
pub struct LeakReports {
    pub verifier: Arc<dyn ReportVerifier>,
    pub keys: Arc<dyn KeyStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub notifier: Arc<dyn RevocationNotifier>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
}

/// Why a report is refused when its signature headers are missing.
const MISSING_HEADERS: &str =
    "the Github-Public-Key-Identifier and Github-Public-Key-Signature headers are required";

impl LeakReports {
    /// Refuses, before the body is read, a report whose signature headers are missing or
    /// malformed or name no current key, so that only a report that may verify is read.
    ///
    /// # Errors
    /// `InvalidSignature`, `Unavailable` (the signer's keys cannot be read).
    pub async fn check_headers(
        &self,
        key_identifier: Option<&str>,
        signature: Option<&str>,
    ) -> Result<(), LeakReportError> {
        let (Some(id), Some(signature)) = (key_identifier, signature) else {
            return Err(LeakReportError::InvalidSignature(MISSING_HEADERS));
        };
        Ok(self.verifier.check_headers(id, signature).await?)
    }

    /// Verifies the signature over the raw body, then `parse`s it and handles each token:
    /// one of our keys that still works is revoked (reason `leaked`, a `leak_reported` event,
    /// an email to its owner, all in one transaction); each token is labelled.
    ///
    /// # Errors
    /// `InvalidSignature` (nothing parsed), `Malformed`, `Unavailable`.
    pub async fn receive(
        &self,
        signed: SignedReport<'_>,
        parse: impl FnOnce(&[u8]) -> Result<Vec<ReportedToken>, String> + Send,
    ) -> Result<ReportOutcome, LeakReportError> {
        let (Some(id), Some(signature)) = (signed.key_identifier, signed.signature) else {
            return Err(LeakReportError::InvalidSignature(MISSING_HEADERS));
        };
        self.verifier
            .verify(id, signature, signed.body_digest)
            .await?;
        let tokens = parse(signed.body).map_err(LeakReportError::Malformed)?;
        let mut outcome = ReportOutcome {
            labels: Vec::with_capacity(tokens.len()),
            revoked: 0,
        };
        for reported in &tokens {
            let (label, revoked) = self.handle(reported).await?;
            outcome.revoked += usize::from(revoked);
            outcome.labels.push(LabelledToken {
                token_hash: KeyHash::of(&reported.token).to_hex(),
                token_type: reported.token_type.clone(),
                label,
            });
        }
        Ok(outcome)
    }

    /// One token: its label, and whether this call revoked it.
    async fn handle(
        &self,
        reported: &ReportedToken,
    ) -> Result<(TokenLabel, bool), LeakReportError> {
        // Not a well-formed key: not ours, and no store is asked.
        let Ok(secret) = ApiKeySecret::parse(&reported.token) else {
            return Ok((TokenLabel::FalsePositive, false));
        };
        let hash = secret.hash();
        let Some(key) = self.keys.find_by_hash(&hash).await? else {
            return Ok((TokenLabel::FalsePositive, false));
        };
        if !hash.ct_eq(&key.hash) {
            return Ok((TokenLabel::FalsePositive, false));
        }
        if !key.state.is_accepted(self.clock.now()) {
            return Ok((TokenLabel::TruePositive, false));
        }
        let order = RevokeOrder {
            actor: Actor::GithubSecretScanning,
            reason: RevocationReason::Leaked,
            before: vec![EventDetail::leak_reported(&reported.url, &reported.source)],
            email: self.email_for(&key, reported).await?,
        };
        let revoked = revoke_key(
            self.keys.as_ref(),
            self.notifier.as_ref(),
            self.clock.as_ref(),
            key,
            order,
        )
        .await
        .map_err(|e| match e {
            KeyLookupError::Store(e) => LeakReportError::from(e),
            KeyLookupError::NotFound => LeakReportError::Unavailable("the key vanished".into()),
        })?;
        Ok((TokenLabel::TruePositive, matches!(revoked, Revoked::Now(_))))
    }

    /// The email to the key's owner; `None` when the owner is gone.
    async fn email_for(
        &self,
        key: &ApiKey,
        reported: &ReportedToken,
    ) -> Result<Option<QueuedWithChange>, StoreError> {
        let Some(owner) = self
            .accounts
            .find_user(&UserRef::Id(key.user_id.clone()))
            .await?
        else {
            return Ok(None);
        };
        let EventDetail::LeakReported { url, source } =
            EventDetail::leak_reported(&reported.url, &reported.source)
        else {
            return Ok(None);
        };
        let email: OutgoingEmail = leaked_key_email(
            owner.email,
            &key.name,
            &key.preview,
            LeakSite {
                url: &url,
                source: &source,
            },
        );
        Ok(Some(QueuedWithChange {
            id: AlertId::generate(self.random.as_ref()),
            email,
        }))
    }
}
