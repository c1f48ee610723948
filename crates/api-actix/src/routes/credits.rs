//! Balances: on the public API (key) and on the dashboard (JWT); the ledger on the dashboard.

use actix_web::{HttpRequest, HttpResponse, web};
use keys_domain::{LedgerCursor, UserId};

use crate::auth::api_key::ApiKeyAuth;
use crate::auth::dashboard_user::DashboardUser;
use crate::dto::ledger::LedgerItemObject;
use crate::dto::pages::{ListKind, ListParams, PageOf};
use crate::error::{ApiError, Unauthorized};
use crate::state::AppState;

/// `{"balance": N}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Balance {
    balance: u64,
}

async fn balance(
    state: &AppState,
    user: &UserId,
    missing: Unauthorized,
) -> Result<HttpResponse, ApiError> {
    let balance = state.accounts.balance(user).await?.ok_or(missing)?;
    Ok(HttpResponse::Ok().json(Balance {
        balance: balance.get(),
    }))
}

/// `GET /api/v1/public/credits/balance`.
#[utoipa::path(get, path = "/api/v1/public/credits/balance", operation_id = "getBalance", tag = "public",
    description = "The balance of the key's user. Free.",
    responses((status = 200, description = "The balance in credits", body = Balance)))]
pub async fn public_balance(
    auth: ApiKeyAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    balance(&state, &auth.key.user_id, Unauthorized::InvalidApiKey).await
}

/// `GET /api/v1/credits/balance`.
#[utoipa::path(get, path = "/api/v1/credits/balance", operation_id = "getDashboardBalance", tag = "dashboard",
    responses((status = 200, description = "The balance in credits", body = Balance)))]
pub async fn dashboard_balance(
    user: DashboardUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    balance(&state, &user.user_id, Unauthorized::TokenUserGone).await
}

/// `GET /api/v1/credits/ledger`: one page of the user's ledger, newest first.
#[utoipa::path(get, path = "/api/v1/credits/ledger", operation_id = "listLedger", tag = "dashboard",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
        ("starting_after" = Option<String>, Query, description = "the `cursor` of the last entry of the previous page"),
    ),
    responses((status = 200, description = "One page, newest first", body = PageOf<LedgerItemObject>)))]
pub async fn dashboard_ledger(
    user: DashboardUser,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = ListParams::from_request(&req, ListKind::Plain)?;
    let cursors = state
        .cursors
        .scoped(state.random.as_ref(), format!("ledger:{}", user.user_id));
    let page = params.page(|text| cursors.open(text).map(LedgerCursor::from_stored))?;
    let entries = state.accounts.ledger_page(&user.user_id, page).await?;
    let data = entries
        .items
        .iter()
        .map(|p| LedgerItemObject::of(p, cursors.seal(p.cursor.as_stored())))
        .collect();
    Ok(HttpResponse::Ok().json(PageOf {
        data,
        has_more: entries.has_more,
    }))
}
