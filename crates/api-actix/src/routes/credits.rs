//! Balances: on the public API (key) and on the dashboard (JWT).

use actix_web::{HttpResponse, web};
use keys_domain::UserId;
use serde_json::json;

use crate::auth::api_key::ApiKeyAuth;
use crate::auth::dashboard_jwt::DashboardUser;
use crate::error::ApiError;
use crate::state::AppState;

async fn balance(
    state: &AppState,
    user: &UserId,
    missing: ApiError,
) -> Result<HttpResponse, ApiError> {
    let balance = state.accounts.balance(user).await?.ok_or(missing)?;
    Ok(HttpResponse::Ok().json(json!({ "balance": balance.get() })))
}

/// `GET /api/v1/public/credits/balance`.
pub async fn public_balance(
    auth: ApiKeyAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    balance(&state, &auth.key.user_id, ApiError::InvalidApiKey).await
}

/// `GET /api/v1/credits/balance`.
pub async fn dashboard_balance(
    user: DashboardUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    balance(
        &state,
        &user.user_id,
        ApiError::InvalidToken("the token's user does not exist"),
    )
    .await
}
