/// The failure every store port can return besides its own variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or timed out (pool exhausted, connection refused, …).
    /// Transient: the caller answers 503 with `Retry-After`.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with something that breaks an invariant (corrupt row, bug).
    #[error("store error: {0}")]
    Internal(String),
}
