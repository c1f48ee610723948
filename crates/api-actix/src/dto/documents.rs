//! Document bodies.

use keys_domain::template::{Document, DocumentSummary, Fields};
use keys_domain::use_cases::RenderedDocument;
use keys_domain::{TemplateId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// `POST /api/v1/public/documents`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RenderDocumentRequest {
    #[schema(value_type = String, required = true, example = "classic")]
    template_id: Option<String>,
    /// Values of the template's `{{field}}` placeholders.
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    fields: Option<Fields>,
}

impl RenderDocumentRequest {
    /// # Errors
    /// `invalid_request` naming `template_id`.
    pub fn try_into_domain(self) -> Result<(TemplateId, Fields), ApiError> {
        let id = self
            .template_id
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid_field("template_id", "template_id is required"))?;
        Ok((TemplateId::new(id), self.fields.unwrap_or_default()))
    }
}

/// A stored document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentObject<'a> {
    pub id: &'a str,
    pub template_id: &'a str,
    pub content: &'a str,
    #[serde(serialize_with = "super::wire::timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-27T22:23:00.123Z")]
    pub created_at: Timestamp,
}

impl<'a> DocumentObject<'a> {
    #[must_use]
    pub fn of(d: &'a Document) -> Self {
        Self {
            id: d.id.as_str(),
            template_id: d.template_id.as_str(),
            content: &d.content,
            created_at: d.created_at,
        }
    }
}

/// A document as a list shows it: no `content` (read one document for that).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentListItem<'a> {
    pub id: &'a str,
    pub template_id: &'a str,
    #[serde(serialize_with = "super::wire::timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-27T22:23:00.123Z")]
    pub created_at: Timestamp,
}

impl<'a> DocumentListItem<'a> {
    #[must_use]
    pub fn of(d: &'a DocumentSummary) -> Self {
        Self {
            id: d.id.as_str(),
            template_id: d.template_id.as_str(),
            created_at: d.created_at,
        }
    }
}

/// The 201 body of a render: the document, what it cost and the balance after.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RenderedDocumentObject<'a> {
    pub id: &'a str,
    pub template_id: &'a str,
    pub content: &'a str,
    pub charged: u64,
    pub balance: u64,
    #[serde(serialize_with = "super::wire::timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-27T22:23:00.123Z")]
    pub created_at: Timestamp,
}

impl<'a> RenderedDocumentObject<'a> {
    #[must_use]
    pub fn of(r: &'a RenderedDocument) -> Self {
        Self {
            id: r.document.id.as_str(),
            template_id: r.document.template_id.as_str(),
            content: &r.document.content,
            charged: r.charged.get(),
            balance: r.balance.get(),
            created_at: r.document.created_at,
        }
    }
}
