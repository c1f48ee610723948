//! Rendered documents: create (1 credit), list (newest first), get (own only).

use actix_web::{HttpResponse, web};
use keys_domain::DocumentId;

use crate::auth::api_key::ApiKeyAuth;
use crate::dto::documents::{DocumentObject, RenderDocumentRequest, RenderedDocumentObject};
use crate::dto::keys::ListOf;
use crate::error::ApiError;
use crate::json_body::JsonBody;
use crate::state::AppState;

/// `POST /api/v1/public/documents`.
pub async fn render(
    auth: ApiKeyAuth,
    state: web::Data<AppState>,
    body: JsonBody<RenderDocumentRequest>,
) -> Result<HttpResponse, ApiError> {
    let (template, fields) = body.0.try_into_domain()?;
    let rendered = state
        .catalog
        .render_document(&auth.key.user_id, &template, &fields)
        .await?;
    Ok(HttpResponse::Created().json(RenderedDocumentObject::of(&rendered)))
}

/// `GET /api/v1/public/documents`.
pub async fn list(auth: ApiKeyAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let docs = state.catalog.documents(&auth.key.user_id).await?;
    let data = docs.iter().map(DocumentObject::of).collect();
    Ok(HttpResponse::Ok().json(ListOf { data }))
}

/// `GET /api/v1/public/documents/{id}`.
pub async fn get(
    auth: ApiKeyAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = DocumentId::new(id.into_inner());
    let doc = state.catalog.document(&auth.key.user_id, &id).await?;
    Ok(HttpResponse::Ok().json(DocumentObject::of(&doc)))
}
