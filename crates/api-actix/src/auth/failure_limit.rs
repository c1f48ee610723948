//! Failed authentications per client IP (docs/api.md): after `JT_AUTH_FAILURES_PER_MINUTE`
//! failures in a minute, every request from that address is 429 before its credential is
//! looked at, so a flood of made-up keys (the checksum is public) reaches no store. An IPv6
//! client is counted by its /64 ([`crate::client_ip::limit_subject`]).

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::ResponseError as _;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderName;
use keys_domain::ports::FixedWindowLimiter;

use crate::client_ip::{TrustedProxies, limit_subject};
use crate::error::ApiError;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

const REFUSAL: &str =
    "too many failed authentications from this address; retry after the delay given";

/// The limiter and the rule that names the client.
pub struct AuthFailureLimiter {
    failures: Arc<dyn FixedWindowLimiter>,
    trusted: TrustedProxies,
}

impl AuthFailureLimiter {
    /// Counts failures in `failures`, whose limit is `JT_AUTH_FAILURES_PER_MINUTE`.
    #[must_use]
    pub fn new(failures: Arc<dyn FixedWindowLimiter>, trusted: TrustedProxies) -> Self {
        Self { failures, trusted }
    }

    /// The request's client address; `None` without a socket peer (nothing to limit by).
    #[must_use]
    pub fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if self.trusted.is_empty() {
            return Some(peer);
        }
        let hops = req
            .headers()
            .get_all(&X_FORWARDED_FOR)
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>();
        Some(self.trusted.client_ip(peer, hops.into_iter()))
    }

    /// 429 when `client` is over its limit; counts nothing and does no I/O (every request to
    /// an authenticated route runs it).
    ///
    /// # Errors
    /// `rate_limited`.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(ip) = client else { return Ok(()) };
        match self.failures.refused(&limit_subject(ip)) {
            None => Ok(()),
            Some(retry_after_seconds) => Err(ApiError::Throttled {
                message: REFUSAL,
                retry_after_seconds,
            }),
        }
    }

    /// Counts `outcome` against `client` when it is a failed authentication (a 401); store
    /// outages (503) and a key's own rate limit are not the client's failures. Only a failure
    /// costs a shared limiter a round trip.
    pub async fn record<T>(&self, client: Option<IpAddr>, outcome: &Result<T, ApiError>) {
        if let (Some(ip), Err(e)) = (client, outcome)
            && e.status_code() == StatusCode::UNAUTHORIZED
        {
            self.failures.count(&limit_subject(ip).to_string()).await;
        }
    }
}
