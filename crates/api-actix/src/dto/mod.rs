//! Request bodies (validated into domain types by `try_into_domain`) and response bodies.

pub mod auth;
pub mod documents;
pub mod key_clients;
pub mod key_controls;
pub mod key_events;
pub mod keys;
pub mod ledger;
pub mod pages;
pub mod secret_scanning;
pub mod templates;
pub mod usage;
pub mod whole_number;
pub mod wire;
