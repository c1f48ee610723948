//! The template catalogue and purchases.

use actix_web::{HttpResponse, web};
use keys_domain::TemplateId;

use crate::auth::api_key::ApiKeyAuth;
use crate::dto::keys::ListOf;
use crate::dto::templates::{PurchaseObject, TemplateObject};
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /api/v1/public/templates`.
pub async fn list(auth: ApiKeyAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let listings = state.catalog.templates(&auth.key.user_id).await?;
    let data = listings.iter().map(TemplateObject::of).collect();
    Ok(HttpResponse::Ok().json(ListOf { data }))
}

/// `POST /api/v1/public/templates/{id}/purchase`.
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
    Ok(HttpResponse::Ok().json(PurchaseObject::of(&id, purchase)))
}
