//! Sign-in bodies: the link request, the exchange, the session it returns.

use keys_domain::{Email, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// `POST /api/v1/auth/email-link`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EmailLinkRequest {
    /// The address to send a sign-in link to, if it has an account. The pattern is the
    /// service's whole rule (one `@`, a dotted domain, no whitespace or control characters).
    #[schema(
        value_type = String,
        max_length = 254,
        pattern = r"^[^@\s\x00-\x1F\x7F-\x9F]+@[^@.\s\x00-\x1F\x7F-\x9F]+(\.[^@.\s\x00-\x1F\x7F-\x9F]+)+$",
        example = "ada@example.com"
    )]
    email: Option<String>,
}

impl EmailLinkRequest {
    /// # Errors
    /// `invalid_request` naming `email` (missing or not an address: says nothing about
    /// whether an account exists).
    pub fn try_into_domain(self) -> Result<Email, ApiError> {
        let raw = self
            .email
            .ok_or_else(|| ApiError::invalid_field("email", "email is required"))?;
        Email::parse(&raw)
            .map_err(|_| ApiError::invalid_field("email", "email is not a valid email address"))
    }
}

/// `POST /api/v1/auth/session`. Its `Debug` hides the token.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SessionRequest {
    /// The one-time token of the link (`#token=…`).
    #[schema(value_type = String)]
    pub token: Option<String>,
}

impl std::fmt::Debug for SessionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionRequest { token: … }")
    }
}

/// The dashboard token a link was exchanged for.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Session<'a> {
    /// A dashboard token (JWT), at most 12 hours.
    pub token: &'a str,
    #[serde(serialize_with = "super::wire::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// The account's email address: the page says which account a link would switch to.
    #[schema(value_type = String, format = Email)]
    pub email: &'a str,
}
