use async_trait::async_trait;

use super::StoreError;
use crate::credits::{Credits, InsufficientCredits};
use crate::ids::{KeyId, TemplateId, UserId};
use crate::monthly_spend::KeyLimitReached;
use crate::template::Document;
use crate::timestamp::Timestamp;

/// What a charge pays for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeKind {
    /// Stores the document; debits the charge's `cost`.
    Render(Document),
    /// Records ownership of the template; debits the charge's `cost` only when it is newly
    /// acquired (buying an owned template charges 0).
    Purchase(TemplateId),
}

/// One paid operation, as a request asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub user_id: UserId,
    /// The API key that authorised the request. The charge is refused when that key is no
    /// longer accepted (revoked since the request was authenticated), so a revocation that has
    /// committed is never followed by a debit made with the key.
    pub key_id: Option<KeyId>,
    pub cost: Credits,
    pub kind: ChargeKind,
    /// When the request asked: the ledger entry's time, and the instant at which the key must
    /// still be accepted.
    pub at: Timestamp,
}

/// What became of one charge. Every outcome but `Charged` changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Applied and durable: `charged` (0 for an owned template) and the balance after it.
    Charged { charged: Credits, balance: Credits },
    /// The balance, after the charges before this one, does not cover it.
    Insufficient(InsufficientCredits),
    /// The user does not exist.
    UnknownUser,
    /// The key is revoked or expired (or not the user's) as of the charge.
    KeyNotAccepted,
    /// The charge would take the key's spend this month past its monthly limit.
    KeyLimitReached(KeyLimitReached),
}

/// The credit ledger's writer.
///
/// Each charge is decided against its user's balance as of the moment it is applied, so when
/// the balance runs out the refusals go exactly to the charges that no longer fit. A charge is
/// applied at most once: when `charge` returns an error, it was not applied. Concurrent charges
/// may share a transaction (the adapter's choice); that changes no outcome.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LedgerWriter: Send + Sync {
    /// Applies `charge` and answers its outcome once a `Charged` one is durable.
    ///
    /// # Errors
    /// `Unavailable` (the store cannot be reached; nothing applied, a retry may succeed),
    /// `Internal` (the charge broke a constraint, e.g. an unknown template; nothing applied).
    async fn charge(&self, charge: Charge) -> Result<ChargeOutcome, StoreError>;
}
