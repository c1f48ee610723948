//! Sign-in link requests per client address (`JT_SIGN_IN_LINKS_PER_MINUTE`, docs/security.md):
//! every `POST /api/v1/auth/email-link` counts, known address or not, so one client cannot fill
//! the queue of link lookups that real users' requests wait in. IPv6 is counted by its /64.

use std::net::IpAddr;
use std::sync::Arc;

use keys_domain::ports::FixedWindowLimiter;

use crate::client_ip::limit_subject;
use crate::error::ApiError;

const REFUSAL: &str =
    "too many sign-in link requests from this address; retry after the delay given";

pub struct SignInLinkLimiter(Arc<dyn FixedWindowLimiter>);

impl SignInLinkLimiter {
    /// Counts requests in `links`, whose limit is `JT_SIGN_IN_LINKS_PER_MINUTE`.
    #[must_use]
    pub fn new(links: Arc<dyn FixedWindowLimiter>) -> Self {
        Self(links)
    }

    /// Takes one request for `client` (nothing to count without a client address).
    ///
    /// # Errors
    /// `rate_limited`, with the seconds until the client's window ends.
    pub async fn take(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(ip) = client else { return Ok(()) };
        self.0
            .take(&limit_subject(ip).to_string())
            .await
            .map_err(|retry_after_seconds| ApiError::Throttled {
                message: REFUSAL,
                retry_after_seconds,
            })
    }
}
