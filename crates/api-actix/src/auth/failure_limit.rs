//! Failed authentications per client IP (docs/api.md): after `JT_AUTH_FAILURES_PER_MINUTE`
//! failures in a minute, every request from that address is 429 before its credential is
//! looked at, so a flood of made-up keys (the checksum is public) reaches no store. An IPv6
//! client is counted by its /64 ([`limit_subject`]).

use std::net::IpAddr;
use std::time::Instant;

use actix_web::HttpRequest;
use actix_web::ResponseError as _;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderName;

use crate::client_ip::{TrustedProxies, limit_subject};
use crate::error::ApiError;
use crate::minute_limiter::MinuteLimiter;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

const REFUSAL: &str =
    "too many failed authentications from this address; retry after the delay given";

/// The limiter and the rule that names the client.
pub struct AuthFailureLimiter {
    failures: MinuteLimiter<IpAddr>,
    trusted: TrustedProxies,
}

impl AuthFailureLimiter {
    #[must_use]
    pub fn new(per_minute: u32, trusted: TrustedProxies) -> Self {
        Self {
            failures: MinuteLimiter::new(per_minute),
            trusted,
        }
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

    /// 429 when `client` is over its limit; counts nothing.
    ///
    /// # Errors
    /// `rate_limited`.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(ip) = client else { return Ok(()) };
        match self.failures.refused(&limit_subject(ip), Instant::now()) {
            None => Ok(()),
            Some(retry_after_seconds) => Err(ApiError::Throttled {
                message: REFUSAL,
                retry_after_seconds,
            }),
        }
    }

    /// Counts `outcome` against `client` when it is a failed authentication (a 401); store
    /// outages (503) and a key's own rate limit are not the client's failures.
    pub fn record<T>(&self, client: Option<IpAddr>, outcome: &Result<T, ApiError>) {
        if let (Some(ip), Err(e)) = (client, outcome)
            && e.status_code() == StatusCode::UNAUTHORIZED
        {
            self.failures.count(limit_subject(ip), Instant::now());
        }
    }

    /// Forgets ended windows.
    pub fn sweep(&self) {
        self.failures.sweep(Instant::now());
    }
}
