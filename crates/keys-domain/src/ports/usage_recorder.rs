use crate::ids::{KeyId, UserId};
use crate::key_client::ClientNetwork;
use crate::timestamp::Timestamp;
use crate::usage::UsageDelta;

/// Where one request came from: its network, and whether it carried an `Origin` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenClient {
    pub network: ClientNetwork,
    pub browser: bool,
}

/// Counts authenticated requests in memory until a background flush hands them to
/// [`UsageService::flush`](crate::use_cases::UsageService::flush) in one batch, so the hot path
/// never writes to a store. Infallible: nothing here does I/O.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait UsageRecorder: Send + Sync {
    /// Counts one request by `key` (owned by `user`) at `at`, from `client` with `user_agent`
    /// (the first product token of its `User-Agent`).
    fn record(
        &self,
        key: &KeyId,
        user: &UserId,
        at: Timestamp,
        client: Option<SeenClient>,
        user_agent: &str,
    );

    /// Takes everything pending; requests counted meanwhile wait for the next batch.
    fn take(&self) -> Vec<UsageDelta>;

    /// Puts back a batch the store did not take, merged with what was counted since.
    fn restore(&self, batch: Vec<UsageDelta>);
}
