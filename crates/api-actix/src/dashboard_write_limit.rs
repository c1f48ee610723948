//! Dashboard writes (create, rotate, revoke, sign-out) per user (docs/api.md,
//! `JT_DASHBOARD_WRITES_PER_MINUTE`): a stolen or scripted token cannot churn keys without
//! bound. Per instance: behind N instances a user gets up to N times the limit.

use std::time::Instant;

use actix_web::http::Method;
use keys_domain::UserId;

use crate::error::ApiError;
use crate::minute_limiter::MinuteLimiter;

const REFUSAL: &str = "too many dashboard changes in the last minute; retry after the delay given";

pub struct DashboardWriteLimiter(MinuteLimiter<UserId>);

impl DashboardWriteLimiter {
    #[must_use]
    pub fn new(per_minute: u32) -> Self {
        Self(MinuteLimiter::new(per_minute))
    }

    /// Takes one write for `user` when `method` writes; reads are never limited here.
    ///
    /// # Errors
    /// `rate_limited`.
    pub fn take(&self, user: &UserId, method: &Method) -> Result<(), ApiError> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        self.0
            .take(user.clone(), Instant::now())
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
