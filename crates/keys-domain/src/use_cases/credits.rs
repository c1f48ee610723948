//! Balances, templates and documents for an authenticated user.

use std::sync::Arc;

use crate::credits::{Credits, InsufficientCredits, prices};
use crate::ids::{DocumentId, KeyId, TemplateId, UserId};
use crate::monthly_spend::KeyLimitReached;
use crate::page::{ListError, Page, PageRequest};
use crate::ports::{
    CatalogStore, Charge, ChargeKind, ChargeOutcome, Clock, LedgerWriter, Purchase, StoreError,
};
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
    /// The paying key was revoked after the request was authenticated.
    #[error("the API key has been revoked")]
    KeyRevoked,
    /// The charge would pass the paying key's monthly credit limit.
    #[error("this charge would pass the API key's monthly credit limit")]
    KeyLimitReached(KeyLimitReached),
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
    /// The paying key was revoked after the request was authenticated.
    #[error("the API key has been revoked")]
    KeyRevoked,
    /// The charge would pass the paying key's monthly credit limit.
    #[error("this charge would pass the API key's monthly credit limit")]
    KeyLimitReached(KeyLimitReached),
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

/// A rendered document and the balance after paying for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedDocument {
    pub document: Document,
    pub charged: Credits,
    pub balance: Credits,
}

/// The outcomes every charged use case shares, so one mapping serves them all.
trait ChargeRefusal: From<InsufficientCredits> + From<StoreError> {
    const UNKNOWN_USER: Self;
    const KEY_REVOKED: Self;
    fn key_limit(reached: KeyLimitReached) -> Self;
}

impl ChargeRefusal for PurchaseError {
    const UNKNOWN_USER: Self = Self::UnknownUser;
    const KEY_REVOKED: Self = Self::KeyRevoked;
    fn key_limit(reached: KeyLimitReached) -> Self {
        Self::KeyLimitReached(reached)
    }
}

impl ChargeRefusal for RenderError {
    const UNKNOWN_USER: Self = Self::UnknownUser;
    const KEY_REVOKED: Self = Self::KeyRevoked;
    fn key_limit(reached: KeyLimitReached) -> Self {
        Self::KeyLimitReached(reached)
    }
}

/// Templates and documents, paid for in credits through the ledger writer.
#[derive(Clone)]
pub struct CatalogService {
    pub store: Arc<dyn CatalogStore>,
    pub ledger: Arc<dyn LedgerWriter>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
}

impl CatalogService {
    /// # Errors
    /// `Store`.
    pub async fn templates(&self, user: &UserId) -> Result<Vec<TemplateListing>, StoreError> {
        self.store.list_templates(user).await
    }

    /// Buys a template (0 for free or already owned ones) with `key`.
    ///
    /// # Errors
    /// `TemplateNotFound`, `Insufficient`, `UnknownUser`, `KeyRevoked`, `Store`.
    pub async fn purchase(
        &self,
        user: &UserId,
        key: &KeyId,
        id: &TemplateId,
    ) -> Result<Purchase, PurchaseError> {
        let listing = self
            .store
            .find_template(user, id)
            .await?
            .ok_or(PurchaseError::TemplateNotFound)?;
        // The price if not owned yet; the ledger writer decides ownership under the lock.
        let charge = Charge {
            user_id: user.clone(),
            key_id: Some(key.clone()),
            cost: listing.template.purchase_price(false),
            kind: ChargeKind::Purchase(listing.template.id.clone()),
            at: self.clock.now(),
        };
        let (charged, balance) = self.charge::<PurchaseError>(charge).await?;
        Ok(Purchase { charged, balance })
    }

    /// Renders a template into a new document for 1 credit, paid with `key`. Nothing is
    /// debited on any error.
    ///
    /// # Errors
    /// `TemplateNotFound`, `TemplateNotOwned`, `Insufficient`, `UnknownUser`, `KeyRevoked`,
    /// `Store`.
    pub async fn render_document(
        &self,
        user: &UserId,
        key: &KeyId,
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
        let now = self.clock.now();
        let document = Document {
            id: DocumentId::generate_at(self.random.as_ref(), now),
            user_id: user.clone(),
            template_id: listing.template.id.clone(),
            content: render(&listing.template.body, fields),
            created_at: now,
        };
        let charge = Charge {
            user_id: user.clone(),
            key_id: Some(key.clone()),
            cost: prices::DOCUMENT_RENDER,
            at: document.created_at,
            kind: ChargeKind::Render(document.clone()),
        };
        let (charged, balance) = self.charge::<RenderError>(charge).await?;
        Ok(RenderedDocument {
            document,
            charged,
            balance,
        })
    }

    /// One charge through the ledger writer: (charged, balance after).
    async fn charge<E: ChargeRefusal>(&self, charge: Charge) -> Result<(Credits, Credits), E> {
        match self.ledger.charge(charge).await? {
            ChargeOutcome::Charged { charged, balance } => Ok((charged, balance)),
            ChargeOutcome::Insufficient(i) => Err(i.into()),
            ChargeOutcome::UnknownUser => Err(E::UNKNOWN_USER),
            ChargeOutcome::KeyNotAccepted => Err(E::KEY_REVOKED),
            ChargeOutcome::KeyLimitReached(reached) => Err(E::key_limit(reached)),
        }
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
