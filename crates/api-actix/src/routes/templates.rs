//! The template catalogue and purchases.

use actix_web::{HttpResponse, web};
use keys_domain::TemplateId;

use crate::auth::api_key::ApiKeyAuth;
use crate::dto::keys::ListOf;
use crate::dto::templates::{PurchaseObject, TemplateObject};
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::prometheus::CREDITS_DEBITED;
use crate::state::AppState;

/// `GET /api/v1/public/templates`.
#[utoipa::path(get, path = "/api/v1/public/templates", tag = "public",
    description = "The catalogue, with what the caller owns. Free.",
    responses((status = 200, description = "Every template", body = ListOf<TemplateObject>)))]
pub async fn list(auth: ApiKeyAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let listings = state.catalog.templates(&auth.key.user_id).await?;
    let data = listings.iter().map(TemplateObject::of).collect();
    Ok(HttpResponse::Ok().json(ListOf { data }))
}

/// `POST /api/v1/public/templates/{id}/purchase`.
#[utoipa::path(post, path = "/api/v1/public/templates/{id}/purchase", tag = "public",
    description = "Debits the template's price; an owned or free template charges 0.",
    params(("id" = String, Path, description = "The template's id, e.g. `executive`")),
    responses(
        (status = 200, description = "Owned now", body = PurchaseObject),
        (status = 402, description = "`insufficient_credits`: nothing was debited", body = ErrorBody),
        (status = 404, description = "`not_found`: no such template", body = ErrorBody),
    ))]
pub async fn purchase(
    auth: ApiKeyAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = TemplateId::new(id.into_inner());
    let purchase = state
        .catalog
        .purchase(&auth.key.user_id, &auth.key.id, &id)
        .await?;
    metrics::counter!(CREDITS_DEBITED).increment(purchase.charged.get());
    Ok(HttpResponse::Ok().json(PurchaseObject::of(&id, purchase)))
}
