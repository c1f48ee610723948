//! Admit a request made with an API key: authenticate it, count it, then rate-limit it. The one
//! use case a public request goes through before its handler.

use std::net::IpAddr;
use std::sync::Arc;

use crate::api_key::ApiKey;
use crate::key_client::ClientNetwork;
use crate::ports::{RateLimiter, SeenClient, UsageRecorder};
use crate::rate_limit::RateDecision;
use crate::use_cases::{AuthError, Authenticator};

/// Who sends a request: its address (`None` when unknown), the first product token of its
/// `User-Agent`, and whether it carried an `Origin` header (a browser sent it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller<'a> {
    pub addr: Option<IpAddr>,
    pub user_agent: &'a str,
    pub browser: bool,
}

impl Caller<'_> {
    /// A caller known by nothing (tests, tools).
    pub const UNKNOWN: Caller<'static> = Caller {
        addr: None,
        user_agent: "-",
        browser: false,
    };
}

/// A key that may make this request, and its rate-limit state after it.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub key: ApiKey,
    pub rate: RateDecision,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Authenticated (and counted), but over its rate limit.
    #[error("too many requests for this API key")]
    RateLimited(RateDecision),
}

/// Authentication, usage counting and rate limiting, in the contract's order.
#[derive(Clone)]
pub struct Admission {
    pub authenticator: Authenticator,
    pub usage: Arc<dyn UsageRecorder>,
    pub limiter: Arc<dyn RateLimiter>,
}

impl Admission {
    /// Every request a key authenticates is counted, the rate-limited ones included.
    ///
    /// # Errors
    /// `Auth(Malformed | Unknown | Revoked | Expired | NetworkNotAllowed | Store)`,
    /// `RateLimited`.
    pub async fn admit(&self, token: &str, caller: Caller<'_>) -> Result<Admitted, AdmitError> {
        let key = self.authenticator.authenticate(token, caller.addr).await?;
        let seen = caller.addr.map(|addr| SeenClient {
            network: ClientNetwork::of(addr),
            browser: caller.browser,
        });
        let now = self.authenticator.clock.now();
        self.usage
            .record(&key.id, &key.user_id, now, seen, caller.user_agent);
        let rate = self.limiter.check(&key.id).await;
        if !rate.allowed {
            return Err(AdmitError::RateLimited(rate));
        }
        Ok(Admitted { key, rate })
    }
}
