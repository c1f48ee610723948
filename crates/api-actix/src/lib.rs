//! The JobTactics key service over HTTP (actix-web), and its operator CLI: HTTP, CLI and wiring
//! only.
//!
//! Layout: [`routes`] (one module per resource) call the use cases of `keys-domain`;
//! [`auth`] holds the two credential extractors (dashboard tokens are verified through the
//! `DashboardTokens` port, JWTs in `adapters-jwt`); [`error`] maps every domain error to the contract's JSON; [`dto`] and
//! [`rate_limit_headers`] are the wire formats; [`wiring`] is the composition root; [`startup`]
//! builds the server.

pub mod auth;
pub mod body_encoding;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod cors;
pub mod cursor_seal;
pub mod dashboard_write_limit;
pub mod drain;
pub mod dto;
pub mod error;
pub mod idempotency;
pub mod json_body;
pub mod json_response;
pub mod jwt_secret;
pub mod log_throttle;
pub mod metric_names;
pub mod open_connections;
pub mod openapi;
pub mod probe;
pub mod prometheus;
pub mod rate_limit_headers;
pub mod request_framing;
pub mod request_guard;
pub mod request_id;
pub mod routes;
pub mod sign_in_link_limit;
pub mod sign_in_queue;
pub mod startup;
pub mod state;
pub mod status_label;
pub mod telemetry;
pub mod wiring;
