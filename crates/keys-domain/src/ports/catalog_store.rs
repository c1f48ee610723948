use async_trait::async_trait;

use super::StoreError;
use crate::credits::{Credits, InsufficientCredits};
use crate::ids::{DocumentId, TemplateId, UserId};
use crate::page::{ListError, Page, PageRequest};
use crate::template::{Document, DocumentSummary, Template, TemplateListing};
use crate::timestamp::Timestamp;

/// Why a charged operation was not done. Nothing was debited in any case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    #[error(transparent)]
    Insufficient(#[from] InsufficientCredits),
    #[error("no such user")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The result of a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purchase {
    pub charged: Credits,
    pub balance: Credits,
}

/// Templates, their ownership, and documents. Charges are single transactions: a conditional
/// decrement (`… WHERE balance >= cost`) plus a ledger entry plus the resource.
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

    /// Buys `template` for `user` in one transaction: records ownership (a no-op if already
    /// owned) and, only when it was newly acquired, debits `price` with a ledger entry. Two
    /// concurrent purchases charge once. A free or owned template charges 0.
    ///
    /// # Errors
    /// `Insufficient` (nothing recorded), `UnknownUser`, `Store(Unavailable)`.
    async fn purchase(
        &self,
        user: &UserId,
        template: &Template,
        price: Credits,
        now: Timestamp,
    ) -> Result<Purchase, ChargeError>;

    /// Debits `cost` with a ledger entry and stores `document`, in one transaction; the new
    /// balance.
    ///
    /// # Errors
    /// `Insufficient` (nothing stored), `UnknownUser`, `Store(Unavailable)`.
    async fn create_document(
        &self,
        document: Document,
        cost: Credits,
    ) -> Result<Credits, ChargeError>;

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
