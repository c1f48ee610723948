//! The JobTactics key service over HTTP (actix-web), and its operator CLI.
//!
//! Layout: [`routes`] (one module per resource) call the use cases of `keys-domain`;
//! [`auth`] holds the two credential extractors; [`error`] maps every domain error to the
//! contract's JSON; [`key_cache`] and [`usage_flusher`] keep the hot path free of database
//! writes and most reads; [`wiring`] is the composition root; [`startup`] builds the server.

pub mod auth;
pub mod cli;
pub mod config;
pub mod dto;
pub mod error;
pub mod json_body;
pub mod json_response;
pub mod key_cache;
pub mod rate_limit_headers;
pub mod revocation_fanout;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod usage_flusher;
pub mod wiring;
