//! Dashboard writes (create, rotate, revoke, sign-out) per user (docs/api.md,
//! `JT_DASHBOARD_WRITES_PER_MINUTE`): a stolen or scripted token cannot churn keys without
//! bound.

use std::sync::Arc;

use actix_web::http::Method;
use keys_domain::UserId;
use keys_domain::ports::FixedWindowLimiter;

use crate::error::ApiError;

const REFUSAL: &str = "too many dashboard changes in the last minute; retry after the delay given";

pub struct DashboardWriteLimiter(Arc<dyn FixedWindowLimiter>);

impl DashboardWriteLimiter {
    /// Counts writes in `writes`, whose limit is `JT_DASHBOARD_WRITES_PER_MINUTE`.
    #[must_use]
    pub fn new(writes: Arc<dyn FixedWindowLimiter>) -> Self {
        Self(writes)
    }

    /// Takes one write for `user` when `method` writes; reads are never limited here (nor
    /// delayed by a shared limiter's round trip).
    ///
    /// # Errors
    /// `rate_limited`.
    pub async fn take(&self, user: &UserId, method: &Method) -> Result<(), ApiError> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        self.0
            .take(user.as_str())
            .await
            .map_err(|retry_after_seconds| ApiError::Throttled {
                message: REFUSAL,
                retry_after_seconds,
            })
    }
}
