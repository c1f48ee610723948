//! Dashboard tokens as JWTs (HS256), with a memo of recently verified tokens: the
//! `DashboardTokens` port's one implementation.

mod jwt_keys;

pub use jwt_keys::JwtKeys;
