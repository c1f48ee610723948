//! The two credentials: API keys on public endpoints, dashboard JWTs on dashboard endpoints.
//! Each extractor refuses the other's credential with its own error type.

pub mod api_key;
pub mod bearer;
pub mod dashboard_gate;
pub mod dashboard_user;
pub mod failure_limit;
mod set_by_middleware;
