//! Use cases: each service holds the ports it drives (`Arc<dyn Port>`, so `main` can choose
//! adapters from configuration at run time) and returns a `thiserror` enum per use case.

mod admit;
mod alert_delivery;
mod authenticate;
mod credits;
mod dashboard_sessions;
mod expiry_reminders;
mod idempotency;
mod key_audit;
mod key_clients;
mod key_signals;
mod key_usage;
mod keys;
mod leak_reports;
mod operator_keys;
mod revocation;
mod sign_in;
mod usage;
mod users;

pub use admit::*;
pub use alert_delivery::*;
pub use authenticate::*;
pub use credits::*;
pub use dashboard_sessions::*;
pub use expiry_reminders::*;
pub use idempotency::*;
pub use key_audit::*;
pub use key_clients::*;
pub use key_signals::*;
pub use key_usage::*;
pub use keys::*;
pub use leak_reports::*;
pub use operator_keys::*;
pub use sign_in::*;
pub use usage::*;
pub use users::*;
