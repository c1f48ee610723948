//! The template catalogue and purchases.

use actix_web::{HttpRequest, HttpResponse, web};
use keys_domain::TemplateId;

use crate::auth::api_key::ApiKeyAuth;
use crate::dto::keys::ListOf;
use crate::dto::templates::{PurchaseObject, TemplateObject};
use crate::error::ApiError;
use crate::idempotency::run_once;
use crate::metric_names::CREDITS_DEBITED;
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `GET /api/v1/public/templates`.
#[utoipa::path(get, path = "/api/v1/public/templates", operation_id = "listTemplates", tag = "public",
    description = "The catalogue, with what the caller owns. Free.",
    responses((status = 200, description = "Every template", body = ListOf<TemplateObject>)))]
pub async fn list(auth: ApiKeyAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let listings = state.catalog.templates(&auth.key.user_id).await?;
    let data = listings.iter().map(TemplateObject::of).collect();
    Ok(HttpResponse::Ok().json(ListOf { data }))
}

/// `POST /api/v1/public/templates/{id}/purchase`, once per `Idempotency-Key`. It takes no
/// body, so the key's fingerprint is the method and path.
#[utoipa::path(post, path = "/api/v1/public/templates/{id}/purchase", operation_id = "purchaseTemplate", tag = "public",
    description = "Debits the template's price; an owned or free template charges 0. \
        With `Idempotency-Key`, a retry gets the first response again.",
    params(
        ("id" = String, Path, description = "The template's id, e.g. `executive`"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "1-255 printable ASCII characters; see docs/api.md, Retries"),
    ),
    responses(
        (status = 200, description = "Owned now (or a replay: `Idempotent-Replayed: true`)", body = PurchaseObject),
        (status = 402, description = "`insufficient_credits` (`required`, `balance`, `top_up_url`), or `key_credit_limit_reached`: the charge would pass the key's `monthly_credit_limit` (`limit`, `spent`, `resets_at`); nothing was debited", body = ErrorBody),
        (status = 404, description = "`not_found`: no such template", body = ErrorBody),
        (status = 409, description = "`conflict`: a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the key came with another request", body = ErrorBody),
    ))]
pub async fn purchase(
    auth: ApiKeyAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = TemplateId::new(id.into_inner());
    let work = {
        let (state, key) = (state.clone(), auth.key.clone());
        move || async move {
            let purchase = state
                .catalog
                .purchase(&key.user_id, &key.id, &id)
                .await
                .map_err(|e| ApiError::of_purchase(e, &state.top_up_url))?;
            metrics::counter!(CREDITS_DEBITED).increment(purchase.charged.get());
            Ok(HttpResponse::Ok().json(PurchaseObject::of(&id, purchase)))
        }
    };
    run_once(&state, &req, &auth.key.user_id, &[], work).await
}
