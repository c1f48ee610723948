//! Rendered documents: create (1 credit), list (newest first), get (own only).

use std::convert::Infallible;

use actix_web::{HttpRequest, HttpResponse, web};
use keys_domain::DocumentId;

use crate::auth::api_key::ApiKeyAuth;
use crate::dto::documents::{
    DocumentListItem, DocumentObject, RenderDocumentRequest, RenderedDocumentObject,
};
use crate::dto::pages::{ListKind, ListParams, PageOf};
use crate::error::ApiError;
use crate::idempotency::run_once;
use crate::json_body::{JsonBytes, parse};
use crate::metric_names::CREDITS_DEBITED;
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `POST /api/v1/public/documents`, once per `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/public/documents", operation_id = "renderDocument", tag = "public",
    description = "Renders a template. Costs 1 credit; a 402, 403 or 404 debits nothing. \
        With `Idempotency-Key`, a retry gets the first response again and is not charged.",
    request_body = RenderDocumentRequest,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "1-255 printable ASCII characters; see docs/api.md, Retries")),
    responses(
        (status = 201, description = "Rendered and charged (or a replay: `Idempotent-Replayed: true`)", body = RenderedDocumentObject),
        (status = 402, description = "`insufficient_credits` (`required`, `balance`, `top_up_url`), or `key_credit_limit_reached`: the charge would pass the key's `monthly_credit_limit` (`limit`, `spent`, `resets_at`); nothing was debited", body = ErrorBody),
        (status = 403, description = "`forbidden`, `reason`: `template_not_purchased`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such template", body = ErrorBody),
        (status = 409, description = "`conflict`: a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the key came with another request", body = ErrorBody),
    ))]
pub async fn render(
    auth: ApiKeyAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let (template, fields) = parse::<RenderDocumentRequest>(&body.0)?.try_into_domain()?;
    let work = {
        let (state, key) = (state.clone(), auth.key.clone());
        move || async move {
            let rendered = state
                .catalog
                .render_document(&key.user_id, &key.id, &template, &fields)
                .await
                .map_err(|e| ApiError::of_render(e, &state.top_up_url))?;
            metrics::counter!(CREDITS_DEBITED).increment(rendered.charged.get());
            Ok(HttpResponse::Created().json(RenderedDocumentObject::of(&rendered)))
        }
    };
    run_once(&state, &req, &auth.key.user_id, &body.0, work).await
}

/// `GET /api/v1/public/documents`: one page, newest first, without content.
#[utoipa::path(get, path = "/api/v1/public/documents", operation_id = "listDocuments", tag = "public",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
        ("starting_after" = Option<String>, Query, description = "the `id` of the last document of the previous page"),
    ),
    responses((status = 200, description = "One page of the caller's documents, newest first, without `content`", body = PageOf<DocumentListItem>)))]
pub async fn list(
    auth: ApiKeyAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = ListParams::from_request(&req, ListKind::Plain)?;
    let page = params.page(|id| Ok::<_, Infallible>(DocumentId::new(id)))?;
    let docs = state.catalog.documents(&auth.key.user_id, &page).await?;
    let data = docs.items.iter().map(DocumentListItem::of).collect();
    Ok(HttpResponse::Ok().json(PageOf {
        data,
        has_more: docs.has_more,
    }))
}

/// `GET /api/v1/public/documents/{id}`.
#[utoipa::path(get, path = "/api/v1/public/documents/{id}", operation_id = "getDocument", tag = "public",
    params(("id" = String, Path, description = "The document's id")),
    responses(
        (status = 200, description = "The document with its content", body = DocumentObject),
        (status = 404, description = "`not_found`: no such document, or another user's", body = ErrorBody),
    ))]
pub async fn get(
    auth: ApiKeyAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = DocumentId::new(id.into_inner());
    let doc = state.catalog.document(&auth.key.user_id, &id).await?;
    Ok(HttpResponse::Ok().json(DocumentObject::of(&doc)))
}
