//! Black-box HTTP tests: each starts the real service on port 0 over a fresh store and talks to
//! it with reqwest. Most run on both stores (an embedded SQLite file and a fresh PostgreSQL
//! database), see `on_both_backends!`.

// Test helpers fail loudly, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod helpers;

mod abuse_limits;
mod auth;
mod clean_exit;
mod cli;
mod cli_amounts;
mod cli_keys;
mod dashboard_sign_in;
mod dashboard_tokens;
mod documented_statuses;
mod edge;
mod idempotency;
mod key_clients;
mod key_controls;
mod keys;
mod lists;
mod logs;
mod look_alike_names;
mod metrics_alerts;
mod observability;
mod openapi;
mod operations;
mod outage;
mod paid_path;
mod public;
mod raw_http;
mod secret_scanning;
mod sign_in_flood;
mod startup_errors;
mod store_beside_server;
mod top_up;
