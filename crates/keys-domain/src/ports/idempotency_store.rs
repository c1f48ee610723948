use async_trait::async_trait;

use super::StoreError;
use crate::idempotency_key::{LookupHash, RequestFingerprint};
use crate::timestamp::Timestamp;

/// A request asking to run under an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub lookup: LookupHash,
    pub request: RequestFingerprint,
    pub created_at: Timestamp,
    /// After this instant the record is gone: a later claim with the same look-up starts anew.
    pub expires_at: Timestamp,
}

/// A live record found under a look-up hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub request: RequestFingerprint,
    /// The sealed first response; `None` while the first request runs (or if it never
    /// finished, see `docs/idempotency.md`).
    pub sealed: Option<Vec<u8>>,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// No live record: this request now holds the look-up and runs.
    Claimed,
    /// A live record: the claim changed nothing.
    Existing(IdempotencyRecord),
}

/// Durable idempotency records, shared by every instance: a look-up hash, the request's
/// fingerprint, and once the first request finished, its sealed response. Never the
/// `Idempotency-Key` value nor anything readable without it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Inserts a running record unless a live one (expiring after `claim.created_at`) holds the
    /// look-up; an expired one is replaced. Atomic: of concurrent claims of one look-up, exactly
    /// one is `Claimed`.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn claim(&self, claim: IdempotencyClaim) -> Result<ClaimOutcome, StoreError>;

    /// Stores the sealed response of a running record. A record no longer running (swept,
    /// or completed) is left as it is.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn complete(&self, lookup: &LookupHash, sealed: Vec<u8>) -> Result<(), StoreError>;

    /// Deletes a running record, so a retry runs again. A completed record stays.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn release(&self, lookup: &LookupHash) -> Result<(), StoreError>;

    /// Deletes every record that expired at or before `now`; how many.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn sweep_expired(&self, now: Timestamp) -> Result<u64, StoreError>;
}
