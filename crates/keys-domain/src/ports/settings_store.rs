use async_trait::async_trait;

use super::StoreError;

/// Small durable settings, e.g. the generated JWT secret shared by the CLI and the server.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The value of `name`, inserting `value` first if there is none. Concurrent callers all get
    /// the one value that won.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn get_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError>;

    /// The value of `name`, if it has one; inserts nothing.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn get(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Whether the store answers a trivial query now (for `/readyz`).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn ping(&self) -> Result<(), StoreError>;
}
