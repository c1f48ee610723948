//! The names of the service's Prometheus series, and the label values known up front: one
//! definition for the code that records them and for [`crate::prometheus`], which describes
//! and serves them.

/// Requests by `route` (the matched pattern, or `unmatched`) and `status`.
pub const HTTP_REQUESTS: &str = "jt_http_requests_total";
/// Request latency by `route`, in seconds.
pub const HTTP_DURATION: &str = "jt_http_request_duration_seconds";
/// Refused credentials by `type` (the error type of the 401).
pub const AUTH_FAILURES: &str = "jt_auth_failures_total";
/// Every `type` a 401 has ([`crate::error::Unauthorized`]), each at 0 from the start.
pub const AUTH_FAILURE_TYPES: [&str; 11] = [
    "missing_api_key",
    "malformed_api_key",
    "invalid_api_key",
    "revoked_api_key",
    "expired_api_key",
    "network_not_allowed",
    "unsupported_credential",
    "missing_token",
    "invalid_token",
    "api_key_not_accepted",
    "invalid_signature",
];
/// 429s, whichever limit gave them.
pub const RATE_LIMITED: &str = "jt_rate_limited_total";
/// Credits debited by renders and purchases.
pub const CREDITS_DEBITED: &str = "jt_credits_debited_total";
/// Key lookups by `result`: `hit` (answered by the in-process cache) or `miss`.
pub const KEY_CACHE_REQUESTS: &str = "jt_key_cache_requests_total";
/// Alert emails waiting to be sent (read at each scrape).
pub const ALERT_OUTBOX_PENDING: &str = "jt_alert_outbox_pending";
/// Age of the oldest of them, in seconds (0 when none waits), computed at each scrape.
pub const ALERT_OUTBOX_OLDEST_AGE: &str = "jt_alert_outbox_oldest_age_seconds";
/// Failed store calls by `kind` (`unavailable`, `transient`, `internal`), read at each scrape.
pub const DB_ERRORS: &str = "jt_db_errors_total";
/// Pooled connections by `pool` and `state` (`idle`, `in_use`).
pub const DB_CONNECTIONS: &str = "jt_db_connections";
/// The most connections each `pool` opens.
pub const DB_CONNECTIONS_MAX: &str = "jt_db_connections_max";
/// How long store calls waited for a pooled connection, by `pool`.
pub const DB_POOL_WAIT: &str = "jt_db_pool_wait_seconds";
/// 1 while Redis answers, 0 while the instance runs degraded; absent without `REDIS_URL`.
pub const REDIS_UP: &str = "jt_redis_up";
/// Usage flushes the store refused (each is retried; the counts wait in memory meanwhile).
pub const USAGE_FLUSH_FAILURES: &str = "jt_usage_flush_failures_total";
/// 1, labelled with the `version` and `commit` this binary was built from.
pub const BUILD_INFO: &str = "jt_build_info";
/// Keys revoked because they were reported leaked.
pub const LEAKED_KEYS_REVOKED: &str = "jt_leaked_keys_revoked_total";
/// Sign-in link requests by `outcome`.
pub const SIGN_IN_LINK_REQUESTS: &str = "jt_sign_in_link_requests_total";
/// Label values of [`SIGN_IN_LINK_REQUESTS`]'s `outcome`.
pub const SIGN_IN_LINK_OUTCOMES: [&str; 5] = [
    "queued",
    "unknown_address",
    "too_many",
    "store_unavailable",
    "queue_full",
];
/// From a revocation on one instance to its announcement reaching this one, in seconds.
pub const REVOCATION_PROPAGATION: &str = "jt_revocation_propagation_seconds";
/// Ledger transactions by the number of charges they applied (read at each scrape).
pub const LEDGER_BATCH_SIZE: &str = "jt_ledger_batch_size";
/// Ledger transactions by `way`: `confirmed` (PostgreSQL, written from a lane's memory in one
/// statement) or `locked` (read under lock, then written).
pub const LEDGER_BATCHES: &str = "jt_ledger_batches_total";
