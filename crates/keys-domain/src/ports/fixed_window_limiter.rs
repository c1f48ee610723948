use async_trait::async_trait;

/// At most a fixed number of events per subject in one-minute windows (failed authentications
/// per client address, sign-in link requests, dashboard writes per user). A subject is an opaque
/// string the caller builds (an address, a user id); each limiter counts one kind of event.
///
/// Refusals carry the whole seconds until the subject's window ends, at least 1 (for
/// `Retry-After`). Infallible by design, like [`crate::ports::RateLimiter`]: a shared limiter
/// whose backend is down falls back to a local one rather than failing requests.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait FixedWindowLimiter: Send + Sync {
    /// `Some(retry_after_seconds)` when `subject` is known to be at its limit in its current
    /// window. Counts nothing and does no I/O: it runs before every authentication, so while no
    /// subject is at its limit it answers `None` without formatting `subject` or looking it up.
    /// A shared limiter may learn late that another instance filled the window: callers that
    /// must not exceed the limit use [`FixedWindowLimiter::take`].
    fn refused(&self, subject: &dyn std::fmt::Display) -> Option<u64>;

    /// Counts one event for `subject`, even past the limit (a failed authentication happened
    /// whatever the limit says; later [`FixedWindowLimiter::refused`] calls see it).
    async fn count(&self, subject: &str);

    /// Counts one event for `subject` unless its window is already at the limit; a refused
    /// event counts nothing.
    ///
    /// # Errors
    /// `Err(retry_after_seconds)` when refused.
    async fn take(&self, subject: &str) -> Result<(), u64>;
}
