//! Dashboard sign-in by email link, and sign-out (docs/dashboard.md).

use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use keys_domain::sign_in_link::SESSION_LIFETIME;

use crate::auth::dashboard_user::DashboardUser;
use crate::dto::auth::{EmailLinkRequest, Session, SessionRequest};
use crate::error::ApiError;
use crate::json_body::JsonBody;
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `POST /api/v1/auth/email-link` → 202 whatever the address. The lookup and the write happen
/// after the answer, so its timing tells nothing about whether the address has an account; the
/// request is queued before the answer, so none answered 202 is dropped (`sign_in_queue.rs`).
#[utoipa::path(post, path = "/api/v1/auth/email-link", operation_id = "requestSignInLink", tag = "dashboard",
    request_body = EmailLinkRequest,
    responses(
        (status = 202, description = "Accepted, for known and unknown addresses alike; a known one gets an email with a one-time link (15 minutes, at most 5 an hour)"),
        (status = 400, description = "`invalid_request`: `email` missing or not an address", body = ErrorBody),
        (status = 429, description = "`rate_limited`: this client address (IPv6: its /64) asked for `JT_SIGN_IN_LINKS_PER_MINUTE` links in the last minute (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the queue of link requests stayed full for 10 s (`Retry-After`); nothing was accepted", body = ErrorBody),
    ))]
pub async fn email_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<EmailLinkRequest>,
) -> Result<HttpResponse, ApiError> {
    let client = state.auth_failures.client(&req);
    state.auth_failures.check(client)?;
    state.sign_in_links.take(client).await?;
    let email = body.0.try_into_domain()?;
    state.sign_in_queue.submit(email).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// `POST /api/v1/auth/session`: a link's token → a dashboard token (12 h). Unknown, used and
/// expired tokens are one answer, 401 `invalid_token`, and count as failed authentications.
#[utoipa::path(post, path = "/api/v1/auth/session", operation_id = "createSession", tag = "dashboard",
    request_body = SessionRequest,
    responses(
        (status = 200, description = "A dashboard token (at most 12 hours), when it expires, and the account's email address (`Cache-Control: no-store`)", body = Session),
        (status = 401, description = "`invalid_token`: the link's token is unknown, used or expired", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: a store is down (`Retry-After`)", body = ErrorBody),
        (status = 500, description = "`internal_error`: an unexpected failure, logged with the request id", body = ErrorBody),
    ))]
pub async fn session(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<SessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let client = state.auth_failures.client(&req);
    state.auth_failures.check(client)?;
    let outcome = exchange(&state, body.0).await;
    state.auth_failures.record(client, &outcome).await;
    outcome
}

async fn exchange(state: &AppState, body: SessionRequest) -> Result<HttpResponse, ApiError> {
    let token = body
        .token
        .ok_or_else(|| ApiError::invalid_field("token", "token is required"))?;
    let signed_in = state.sign_in.exchange(&token).await?;
    let user = signed_in.user_id;
    let now = state.clock.now();
    let jwt = state
        .jwt
        .issue(&user, now, SESSION_LIFETIME)
        .map_err(|_| ApiError::Internal)?;
    // `exp` is whole seconds after the whole-second `iat`.
    let expires_at = keys_domain::Timestamp::from_millis(now.as_millis().div_euclid(1000) * 1000)
        .plus(SESSION_LIFETIME);
    tracing::info!(user_id = %user, "signed in by email link");
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(Session {
            token: &jwt,
            expires_at,
            email: signed_in.email.as_str(),
        }))
}

/// `POST /api/v1/auth/sign-out` → 204; every dashboard token of the user issued until now is
/// refused from here on, on every instance.
#[utoipa::path(post, path = "/api/v1/auth/sign-out", operation_id = "signOut", tag = "dashboard",
    responses((status = 204, description = "Signed out: every dashboard token of the user issued until now is refused")))]
pub async fn sign_out(
    user: DashboardUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.sessions.sign_out(&user.user_id).await?;
    tracing::info!(user_id = %user.user_id, "signed out");
    Ok(HttpResponse::NoContent().finish())
}
