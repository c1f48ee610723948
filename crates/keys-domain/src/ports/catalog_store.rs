use async_trait::async_trait;

use super::StoreError;
use crate::credits::Credits;
use crate::ids::{DocumentId, TemplateId, UserId};
use crate::page::{ListError, Page, PageRequest};
use crate::template::{Document, DocumentSummary, TemplateListing};

/// The result of a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purchase {
    pub charged: Credits,
    pub balance: Credits,
}

/// Templates, their ownership, and documents (read side). Purchases and renders are written
/// by the [`super::LedgerWriter`], which charges them in batches.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// The catalogue, each with whether `user` owns it (free templates are always owned).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn list_templates(&self, user: &UserId) -> Result<Vec<TemplateListing>, StoreError>;

    /// One template with ownership; `None` for an unknown id.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn find_template(
        &self,
        user: &UserId,
        id: &TemplateId,
    ) -> Result<Option<TemplateListing>, StoreError>;

    /// One page of the user's documents, newest first (by `created_at`, then id), without
    /// their content, after the document `page.after` names.
    ///
    /// # Errors
    /// `UnknownCursor` when `after` is not one of the user's documents, `Store(Unavailable)`.
    async fn list_documents(
        &self,
        user: &UserId,
        page: &PageRequest<DocumentId>,
    ) -> Result<Page<DocumentSummary>, ListError>;

    /// One of the user's documents; `None` when unknown or another user's.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn find_document(
        &self,
        user: &UserId,
        id: &DocumentId,
    ) -> Result<Option<Document>, StoreError>;
}
