//! Authenticate a presented API key: parse → look up by hash → constant-time compare →
//! revoked? → expired? → from an allowed network?

use std::net::IpAddr;
use std::sync::Arc;

use crate::api_key::ApiKey;
use crate::key_controls::ControlRefusal;
use crate::key_secret::{ApiKeySecret, MalformedKey};
use crate::ports::{Clock, KeyStore, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a well-formed key; no store was touched.
    #[error("the API key is malformed: {0}")]
    Malformed(#[from] MalformedKey),
    /// Well-formed, but no such key.
    #[error("the API key is not valid")]
    Unknown,
    /// Revoked, or its rotation grace period ended.
    #[error("the API key has been revoked")]
    Revoked,
    /// Its `expires_at` has passed.
    #[error("the API key has expired")]
    Expired,
    /// The client's address is outside the key's `allowed_networks`.
    #[error("the API key may not be used from this network")]
    NetworkNotAllowed,
    /// The key store could not answer: 503, never 401.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Authenticates API keys. `store` is usually a cache in front of the database.
#[derive(Clone)]
pub struct Authenticator {
    pub store: Arc<dyn KeyStore>,
    pub clock: Arc<dyn Clock>,
}

impl Authenticator {
    /// The key record a presented token authenticates as, for a request from `client` (`None`
    /// when the address is unknown).
    ///
    /// # Errors
    /// `Malformed`, `Unknown`, `Revoked`, `Expired`, `NetworkNotAllowed`, `Store`.
    pub async fn authenticate(
        &self,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<ApiKey, AuthError> {
        let secret = ApiKeySecret::parse(token)?;
        let hash = secret.hash();
        let key = self
            .store
            .find_by_hash(&hash)
            .await?
            .ok_or(AuthError::Unknown)?;
        // The lookup was by hash already; the constant-time compare guards against a store that
        // matched loosely (e.g. a prefix index) without leaking timing.
        if !key.hash.ct_eq(&hash) {
            return Err(AuthError::Unknown);
        }
        let now = self.clock.now();
        if !key.state.is_accepted(now) {
            return Err(AuthError::Revoked);
        }
        match key.controls.admit(now, client) {
            Ok(()) => Ok(key),
            Err(ControlRefusal::Expired) => Err(AuthError::Expired),
            Err(ControlRefusal::NetworkNotAllowed) => Err(AuthError::NetworkNotAllowed),
        }
    }
}
