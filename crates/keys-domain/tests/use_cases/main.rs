//! Use-case tests against mockall mocks of the ports: one module per service.

mod alert_delivery;
mod authenticator;
mod catalog_service;
mod key_service;
mod support;
mod usage_service;
mod user_service;
