//! Sign-in link requests per client address (`JT_SIGN_IN_LINKS_PER_MINUTE`, docs/security.md):
//! every `POST /api/v1/auth/email-link` counts, known address or not, so one client cannot fill
//! the queue of link lookups that real users' requests wait in. IPv6 is counted by its /64.

use std::net::IpAddr;
use std::time::Instant;

use crate::client_ip::limit_subject;
use crate::error::ApiError;
use crate::minute_limiter::MinuteLimiter;

const REFUSAL: &str =
    "too many sign-in link requests from this address; retry after the delay given";

pub struct SignInLinkLimiter(MinuteLimiter<IpAddr>);

impl SignInLinkLimiter {
    #[must_use]
    pub fn new(per_minute: u32) -> Self {
        Self(MinuteLimiter::new(per_minute))
    }

    /// Takes one request for `client` (nothing to count without a client address).
    ///
    /// # Errors
    /// `rate_limited`, with the seconds until the client's window ends.
    pub fn take(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(ip) = client else { return Ok(()) };
        self.0
            .take(limit_subject(ip), Instant::now())
            .map_err(|retry_after_seconds| ApiError::Throttled {
                message: REFUSAL,
                retry_after_seconds,
            })
    }

    /// Forgets ended windows.
    pub fn sweep(&self) {
        self.0.sweep(Instant::now());
    }
}
