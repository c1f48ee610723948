//! The ports: what the domain needs from the outside world, one trait per concern.
//!
//! Every trait is `Send + Sync` and (where it does I/O) async via `async-trait`. With the `mocks`
//! feature (and in this crate's tests) each has a mockall mock, `MockKeyStore` and so on.
//!
//! Errors: a store that cannot answer returns [`StoreError::Unavailable`], which the HTTP layer
//! turns into 503 + `Retry-After`. It is never folded into "not found": a client must not be told
//! its key is invalid because a database is down.

mod account_store;
mod alert_outbox;
mod cache_invalidation;
mod catalog_store;
mod clock;
mod dashboard_tokens;
mod expiry_reminder_store;
mod fixed_window_limiter;
mod idempotency_store;
mod key_change_feed;
mod key_client_store;
mod key_event_log;
mod key_store;
mod ledger_writer;
mod mailer;
mod rate_limiter;
mod report_verifier;
mod revocation;
mod settings_store;
mod sign_in_link_store;
mod store_error;
mod token_cutoff_store;
mod usage_history;
mod usage_recorder;
mod usage_window;

pub use account_store::*;
pub use alert_outbox::*;
pub use cache_invalidation::*;
pub use catalog_store::*;
pub use clock::*;
pub use dashboard_tokens::*;
pub use expiry_reminder_store::*;
pub use fixed_window_limiter::*;
pub use idempotency_store::*;
pub use key_change_feed::*;
pub use key_client_store::*;
pub use key_event_log::*;
pub use key_store::*;
pub use ledger_writer::*;
pub use mailer::*;
pub use rate_limiter::*;
pub use report_verifier::*;
pub use revocation::*;
pub use settings_store::*;
pub use sign_in_link_store::*;
pub use store_error::*;
pub use token_cutoff_store::*;
pub use usage_history::*;
pub use usage_recorder::*;
pub use usage_window::*;
