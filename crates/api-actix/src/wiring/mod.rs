//! The composition root: the one module that names adapter crates and chooses them from the
//! configuration. `main.rs` (the binary) and the tests both build the service through it, so
//! they run exactly the same wiring.
//!
//! - [`server`]: the server's composition ([`wire`]) and its background work.
//! - [`commands`]: the operator commands' factories (a store without a pool, migrations, the
//!   use cases a command runs).
//! - [`shared`]: what both do: open the pooled store, migrate, read the dashboard-token secret.

mod commands;
mod server;
mod shared;

pub use commands::{
    PrintedFailure, dashboard_sessions, migration_status, open_command_store, operator_keys,
    user_service,
};
pub use server::{Wired, wire};
pub use shared::{jwt_keys, migrate, open_store};
