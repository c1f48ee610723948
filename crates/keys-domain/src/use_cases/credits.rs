//! Balances, templates and documents for an authenticated user.

use std::sync::Arc;

use crate::credits::{Credits, InsufficientCredits, prices};
use crate::ids::{DocumentId, TemplateId, UserId};
use crate::page::{ListError, Page, PageRequest};
use crate::ports::{CatalogStore, ChargeError, Clock, Purchase, StoreError};
use crate::random::RandomSource;
use crate::template::{Document, DocumentSummary, Fields, TemplateListing, render};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurchaseError {
    #[error("no such template")]
    TemplateNotFound,
    #[error(transparent)]
    Insufficient(#[from] InsufficientCredits),
    #[error("no such user")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("no such template")]
    TemplateNotFound,
    #[error("this template is premium and you have not purchased it")]
    TemplateNotOwned,
    #[error(transparent)]
    Insufficient(#[from] InsufficientCredits),
    #[error("no such user")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentLookupError {
    #[error("no such document")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A failed charge as the use case's error: the same three outcomes for every charged use case.
fn charge_failed<E: From<InsufficientCredits> + From<StoreError>>(
    e: ChargeError,
    unknown_user: E,
) -> E {
    match e {
        ChargeError::Insufficient(i) => i.into(),
        ChargeError::UnknownUser => unknown_user,
        ChargeError::Store(s) => s.into(),
    }
}

/// A rendered document and the balance after paying for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedDocument {
    pub document: Document,
    pub charged: Credits,
    pub balance: Credits,
}

/// Templates and documents, paid for in credits.
#[derive(Clone)]
pub struct CatalogService {
    pub store: Arc<dyn CatalogStore>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
}

impl CatalogService {
    /// # Errors
    /// `Store`.
    pub async fn templates(&self, user: &UserId) -> Result<Vec<TemplateListing>, StoreError> {
        self.store.list_templates(user).await
    }

    /// Buys a template (0 for free or already owned ones).
    ///
    /// # Errors
    /// `TemplateNotFound`, `Insufficient`, `UnknownUser`, `Store`.
    pub async fn purchase(
        &self,
        user: &UserId,
        id: &TemplateId,
    ) -> Result<Purchase, PurchaseError> {
        let listing = self
            .store
            .find_template(user, id)
            .await?
            .ok_or(PurchaseError::TemplateNotFound)?;
        let price = listing.template.purchase_price(listing.owned);
        self.store
            .purchase(user, &listing.template, price, self.clock.now())
            .await
            .map_err(|e| charge_failed(e, PurchaseError::UnknownUser))
    }

    /// Renders a template into a new document for 1 credit. Nothing is debited on any error.
    ///
    /// # Errors
    /// `TemplateNotFound`, `TemplateNotOwned`, `Insufficient`, `UnknownUser`, `Store`.
    pub async fn render_document(
        &self,
        user: &UserId,
        template: &TemplateId,
        fields: &Fields,
    ) -> Result<RenderedDocument, RenderError> {
        let listing = self
            .store
            .find_template(user, template)
            .await?
            .ok_or(RenderError::TemplateNotFound)?;
        if !listing.template.usable_by(listing.owned) {
            return Err(RenderError::TemplateNotOwned);
        }
        let document = Document {
            id: DocumentId::generate(self.random.as_ref()),
            user_id: user.clone(),
            template_id: listing.template.id.clone(),
            content: render(&listing.template.body, fields),
            created_at: self.clock.now(),
        };
        let cost = prices::DOCUMENT_RENDER;
        let balance = self
            .store
            .create_document(document.clone(), cost)
            .await
            .map_err(|e| charge_failed(e, RenderError::UnknownUser))?;
        Ok(RenderedDocument {
            document,
            charged: cost,
            balance,
        })
    }

    /// One page of the user's documents, newest first, without content.
    ///
    /// # Errors
    /// `UnknownCursor`, `Store`.
    pub async fn documents(
        &self,
        user: &UserId,
        page: &PageRequest<DocumentId>,
    ) -> Result<Page<DocumentSummary>, ListError> {
        self.store.list_documents(user, page).await
    }

    /// # Errors
    /// `NotFound` (also for another user's document), `Store`.
    pub async fn document(
        &self,
        user: &UserId,
        id: &DocumentId,
    ) -> Result<Document, DocumentLookupError> {
        self.store
            .find_document(user, id)
            .await?
            .ok_or(DocumentLookupError::NotFound)
    }
}
