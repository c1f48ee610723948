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
use crate::json_body::JsonBody;
use crate::openapi::ErrorBody;
use crate::prometheus::CREDITS_DEBITED;
use crate::state::AppState;

/// `POST /api/v1/public/documents`.
#[utoipa::path(post, path = "/api/v1/public/documents", tag = "public",
    description = "Renders a template. Costs 1 credit; a 402, 403 or 404 debits nothing.",
    request_body = RenderDocumentRequest,
    responses(
        (status = 201, description = "Rendered and charged", body = RenderedDocumentObject),
        (status = 402, description = "`insufficient_credits`", body = ErrorBody),
        (status = 403, description = "`forbidden`, `reason`: `template_not_purchased`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such template", body = ErrorBody),
    ))]
pub async fn render(
    auth: ApiKeyAuth,
    state: web::Data<AppState>,
    body: JsonBody<RenderDocumentRequest>,
) -> Result<HttpResponse, ApiError> {
    let (template, fields) = body.0.try_into_domain()?;
    let rendered = state
        .catalog
        .render_document(&auth.key.user_id, &auth.key.id, &template, &fields)
        .await?;
    metrics::counter!(CREDITS_DEBITED).increment(rendered.charged.get());
    Ok(HttpResponse::Created().json(RenderedDocumentObject::of(&rendered)))
}

/// `GET /api/v1/public/documents`: one page, newest first, without content.
#[utoipa::path(get, path = "/api/v1/public/documents", tag = "public",
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
#[utoipa::path(get, path = "/api/v1/public/documents/{id}", tag = "public",
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
