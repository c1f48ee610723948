//! Safe retries: a request sent with an `Idempotency-Key` runs once per user and key for 24
//! hours; a retry gets the first response again. See `docs/idempotency.md`.

use std::sync::Arc;
use std::time::Duration;

use crate::idempotency_key::{DerivedSecrets, IdempotencyKey};
use crate::ids::UserId;
use crate::ports::{ClaimOutcome, Clock, IdempotencyClaim, IdempotencyStore, StoreError};
use crate::random::RandomSource;
use crate::sealed_response::{RecordedResponse, open, seal};
use crate::timestamp::Timestamp;

/// How long a record (running or completed) holds its key.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A request that carries an `Idempotency-Key`.
#[derive(Debug, Clone, Copy)]
pub struct IdempotentRequest<'a> {
    pub user: &'a UserId,
    pub key: &'a IdempotencyKey,
    pub method: &'a str,
    /// The path without the query string.
    pub path: &'a str,
    /// The body as received (empty for a request without one).
    pub body: &'a [u8],
}

/// What to do with a request after [`Idempotency::begin`].
#[derive(Debug)]
pub enum Begun {
    /// First of its key: run it, then hand its response to [`Idempotency::finish`].
    Run(InFlight),
    /// Done before: answer this, and do nothing else.
    Replay(RecordedResponse),
}

/// A claimed key whose request is running.
#[derive(Debug)]
pub struct InFlight {
    secrets: DerivedSecrets,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyError {
    #[error(
        "a request with this Idempotency-Key is still being processed (or was interrupted); \
         retry it after a moment"
    )]
    InProgress,
    #[error(
        "this Idempotency-Key was already used with a different method, path or body; \
         use a new key for a new request"
    )]
    Reused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a finished request was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored: retries get this response.
    Stored,
    /// Released: a retry runs again.
    Released,
}

/// Whether a response is kept for replay: only successes, the results of requests that did
/// what they were asked. Any error (402 before a top-up, 409, 503, …) changed nothing, so the
/// key is released and a retry runs anew.
#[must_use]
pub fn is_replayable(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The idempotency records, over a store shared by every instance.
#[derive(Clone)]
pub struct Idempotency {
    pub store: Arc<dyn IdempotencyStore>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
}

impl Idempotency {
    /// Claims the request's key, or finds what became of it.
    ///
    /// # Errors
    /// `InProgress` (the first request with this key still runs, or never finished),
    /// `Reused` (the key came with another method, path or body), `Store`.
    pub async fn begin(&self, request: IdempotentRequest<'_>) -> Result<Begun, IdempotencyError> {
        let secrets = request.key.derive(request.user);
        let fingerprint = secrets.fingerprint(request.method, request.path, request.body);
        let now = self.clock.now();
        let claim = IdempotencyClaim {
            lookup: secrets.lookup,
            request: fingerprint,
            created_at: now,
            expires_at: now.plus(REPLAY_WINDOW),
        };
        match self.store.claim(claim).await? {
            ClaimOutcome::Claimed => Ok(Begun::Run(InFlight { secrets })),
            ClaimOutcome::Existing(record) if record.request != fingerprint => {
                Err(IdempotencyError::Reused)
            }
            ClaimOutcome::Existing(record) => match record.sealed {
                None => Err(IdempotencyError::InProgress),
                Some(sealed) => open(&secrets, &sealed)
                    .map(Begun::Replay)
                    .map_err(|e| StoreError::Internal(e.to_string()).into()),
            },
        }
    }

    /// Records the response of a request that [`Idempotency::begin`] let run: a success is
    /// sealed and stored, anything else releases the key.
    ///
    /// # Errors
    /// `Store`: the record was neither stored nor released, so it stays running and retries
    /// get `InProgress` until it expires (never a second execution).
    pub async fn finish(
        &self,
        in_flight: InFlight,
        response: &RecordedResponse,
    ) -> Result<Recorded, StoreError> {
        let lookup = in_flight.secrets.lookup;
        if is_replayable(response.status) {
            let sealed = seal(&in_flight.secrets, response, self.random.as_ref());
            self.store.complete(&lookup, sealed).await?;
            Ok(Recorded::Stored)
        } else {
            self.store.release(&lookup).await?;
            Ok(Recorded::Released)
        }
    }

    /// Drops the records that expired by `now`; how many.
    ///
    /// # Errors
    /// `Store`.
    pub async fn sweep_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.store.sweep_expired(now).await
    }
}
