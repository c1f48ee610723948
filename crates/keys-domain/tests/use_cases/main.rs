//! Use-case tests against mockall mocks of the ports: one module per service.

// A failed unwrap is a failed test. clippy.toml's allow-unwrap-in-tests does not reach the
// helper functions (and proptest bodies) of an integration-test crate, hence the crate-wide allow.
#![allow(clippy::unwrap_used)]

mod admission;
mod alert_delivery;
mod authenticator;
mod catalog_service;
mod dashboard_sessions;
mod expiry_reminders;
mod idempotency;
mod key_audit;
mod key_service;
mod key_signals;
mod key_usage;
mod leak_reports;
mod operator_keys;
mod sign_in;
mod support;
mod usage_service;
mod user_service;
