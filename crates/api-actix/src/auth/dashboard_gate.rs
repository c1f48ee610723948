//! The gate in front of every dashboard route: failed-authentication limit per client IP →
//! dashboard JWT (HS256, at most 24 h) → the user's sign-out cut-off → the per-user write limit.
//!
//! A middleware rather than an extractor: the cut-off is a store read, and an asynchronous
//! extractor would race a handler's body extractor, letting a 400 overtake the 401.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpRequest, web};
use keys_domain::key_secret::PREFIX;
use keys_domain::use_cases::SessionCheckError;

use super::bearer::{Credential, credential};
use super::dashboard_user::DashboardUser;
use crate::error::{ApiError, Unauthorized};
use crate::state::AppState;
use keys_domain::ports::TokenError;

impl From<SessionCheckError> for ApiError {
    fn from(e: SessionCheckError) -> Self {
        match e {
            SessionCheckError::SignedOut => {
                Unauthorized::InvalidToken(TokenError::SignedOut).into()
            }
            SessionCheckError::Store(s) => s.into(),
        }
    }
}

/// Middleware of dashboard resources: authenticates, then runs the route with the
/// [`DashboardUser`] it reads.
///
/// # Errors
/// Only what the inner service returns as an error (handlers' errors are responses).
pub async fn require_dashboard_user(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    match admit(req.request()).await {
        Ok(user) => {
            req.extensions_mut().insert(user);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

async fn admit(req: &HttpRequest) -> Result<DashboardUser, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or(ApiError::Internal)?;
    let client = state.auth_failures.client(req);
    state.auth_failures.check(client)?;
    let user = authenticate(req, state).await;
    state.auth_failures.record(client, &user).await;
    let user = user?;
    state
        .dashboard_writes
        .take(&user.user_id, req.method())
        .await?;
    Ok(user)
}

/// `missing_token`, `invalid_token` (bad, too long-lived or signed-out token),
/// `api_key_not_accepted`, or 503 when the cut-off cannot be read.
async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<DashboardUser, ApiError> {
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
    let verified = state
        .jwt
        .verify(token, state.clock.now())
        .map_err(Unauthorized::InvalidToken)?;
    state
        .sessions
        .check(&verified.user_id, verified.issued_at)
        .await?;
    tracing::Span::current().record("user_id", verified.user_id.as_str());
    Ok(DashboardUser {
        user_id: verified.user_id,
    })
}
