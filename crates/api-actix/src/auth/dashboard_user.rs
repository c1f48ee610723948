//! The dashboard-JWT extractor of dashboard endpoints.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use keys_domain::UserId;
use keys_domain::key_secret::PREFIX;

use super::bearer::{Credential, credential};
use crate::error::{ApiError, Unauthorized};
use crate::state::AppState;

/// The dashboard user a request's JWT authenticates.
#[derive(Debug, Clone)]
pub struct DashboardUser {
    pub user_id: UserId,
}

impl DashboardUser {
    /// # Errors
    /// `missing_token`, `invalid_token`, `api_key_not_accepted`.
    pub fn authenticate(req: &HttpRequest) -> Result<Self, ApiError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or(ApiError::Internal)?;
        let token = match credential(req) {
            Credential::Missing => return Err(Unauthorized::MissingToken.into()),
            Credential::Other | Credential::MalformedBearer => {
                return Err(Unauthorized::NotOneBearerToken.into());
            }
            Credential::Bearer(token) => token,
        };
        if token.starts_with(PREFIX) {
            return Err(Unauthorized::ApiKeyNotAccepted.into());
        }
        let user_id = state
            .jwt
            .verify(token)
            .map_err(Unauthorized::InvalidToken)?;
        tracing::Span::current().record("user_id", user_id.as_str());
        Ok(Self { user_id })
    }
}

impl FromRequest for DashboardUser {
    type Error = ApiError;
    // Verification is CPU only, so this resolves on first poll: before any body extractor that
    // follows it in a handler's arguments can fail, keeping 401 ahead of 400.
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::authenticate(req))
    }
}
