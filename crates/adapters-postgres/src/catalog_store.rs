//! [`CatalogStore`]: templates, ownership, documents, and the charges that pay for them.

use std::collections::HashSet;

use async_trait::async_trait;
use diesel::prelude::*;
use keys_domain::credits::{InsufficientCredits, LedgerReason};
use keys_domain::ports::{CatalogStore, ChargeError, Purchase, StoreError};
use keys_domain::template::{Document, DocumentSummary, Template, TemplateListing};
use keys_domain::{
    Credits, DocumentId, ListError, Page, PageRequest, TemplateId, Timestamp, UserId,
};

use crate::account_store::{append_ledger, read_balance};
use crate::connection::AnyConnection;
use crate::failure::Failure;
use crate::key_store::lock_user;
use crate::on_conflict::OnConflictDoNothing;
use crate::pages::document_page;
use crate::schema::{documents, template_ownership, templates, users};
use crate::store::DbStore;

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = templates)]
struct TemplateRow {
    id: String,
    name: String,
    premium: bool,
    price: i64,
    body: String,
}

impl From<TemplateRow> for Template {
    fn from(r: TemplateRow) -> Self {
        Template {
            id: TemplateId::new(r.id),
            name: r.name,
            premium: r.premium,
            price: Credits::from_stored(r.price),
            body: r.body,
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = documents)]
struct DocumentRow {
    id: String,
    user_id: String,
    template_id: String,
    content: String,
    created_at: i64,
}

impl From<DocumentRow> for Document {
    fn from(r: DocumentRow) -> Self {
        Document {
            id: DocumentId::new(r.id),
            user_id: UserId::new(r.user_id),
            template_id: TemplateId::new(r.template_id),
            content: r.content,
            created_at: Timestamp::from_millis(r.created_at),
        }
    }
}

fn listing(template: Template, purchased: &HashSet<String>) -> TemplateListing {
    let owned = template.usable_by(purchased.contains(template.id.as_str()));
    TemplateListing { template, owned }
}

fn purchased_ids(conn: &mut AnyConnection, user: &str) -> QueryResult<HashSet<String>> {
    Ok(template_ownership::table
        .filter(template_ownership::user_id.eq(user))
        .select(template_ownership::template_id)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// Debits `cost` with a ledger entry: the conditional decrement that can never overspend.
/// Returns the new balance. Call inside a transaction; on `Err` the caller rolls it back.
fn debit(
    conn: &mut AnyConnection,
    user: &str,
    cost: Credits,
    reason: &LedgerReason,
    now: Timestamp,
) -> Result<Credits, Failure<ChargeError>> {
    let cost_i = cost.as_i64();
    let n = diesel::update(
        users::table
            .filter(users::id.eq(user))
            .filter(users::balance.ge(cost_i)),
    )
    .set(users::balance.eq(users::balance - cost_i))
    .execute(conn)?;
    let balance = read_balance(conn, user)?.ok_or(Failure::Port(ChargeError::UnknownUser))?;
    if n == 0 {
        return Err(Failure::Port(ChargeError::Insufficient(
            InsufficientCredits {
                required: cost,
                balance: Credits::from_stored(balance),
            },
        )));
    }
    if cost_i > 0 {
        append_ledger(conn, user, -cost_i, balance, reason, now)?;
    }
    Ok(Credits::from_stored(balance))
}

#[async_trait]
impl CatalogStore for DbStore {
    async fn list_templates(&self, user: &UserId) -> Result<Vec<TemplateListing>, StoreError> {
        let user = user.clone();
        self.run(move |conn| {
            let rows = templates::table
                .order((templates::sort_order.asc(), templates::id.asc()))
                .select(TemplateRow::as_select())
                .load(conn)?;
            let purchased = purchased_ids(conn, user.as_str())?;
            Ok(rows
                .into_iter()
                .map(|r| listing(r.into(), &purchased))
                .collect())
        })
        .await
    }

    async fn find_template(
        &self,
        user: &UserId,
        id: &TemplateId,
    ) -> Result<Option<TemplateListing>, StoreError> {
        let (user, id) = (user.clone(), id.clone());
        self.run(move |conn| {
            let Some(row) = templates::table
                .find(id.as_str())
                .select(TemplateRow::as_select())
                .first(conn)
                .optional()?
            else {
                return Ok(None);
            };
            let purchased = purchased_ids(conn, user.as_str())?;
            Ok(Some(listing(row.into(), &purchased)))
        })
        .await
    }

    async fn purchase(
        &self,
        user: &UserId,
        template: &Template,
        price: Credits,
        now: Timestamp,
    ) -> Result<Purchase, ChargeError> {
        let (user, template_id) = (user.clone(), template.id.clone());
        self.run(move |conn| {
            conn.transaction(|conn| {
                if !lock_user(conn, user.as_str())? {
                    return Err(Failure::Port(ChargeError::UnknownUser));
                }
                // Ownership first: only the purchase that actually records it pays.
                let acquired = diesel::insert_into(template_ownership::table).values((
                    template_ownership::user_id.eq(user.as_str()),
                    template_ownership::template_id.eq(template_id.as_str()),
                    template_ownership::acquired_at.eq(now.as_millis()),
                ));
                let newly = OnConflictDoNothing(acquired).execute(conn)? == 1;
                if newly && price > Credits::ZERO {
                    let reason = LedgerReason::TemplatePurchase(template_id.as_str().to_owned());
                    let balance = debit(conn, user.as_str(), price, &reason, now)?;
                    return Ok(Purchase {
                        charged: price,
                        balance,
                    });
                }
                let balance = read_balance(conn, user.as_str())?
                    .ok_or(Failure::Port(ChargeError::UnknownUser))?;
                Ok(Purchase {
                    charged: Credits::ZERO,
                    balance: Credits::from_stored(balance),
                })
            })
        })
        .await
    }

    async fn create_document(
        &self,
        document: Document,
        cost: Credits,
    ) -> Result<Credits, ChargeError> {
        self.run(move |conn| {
            conn.transaction(|conn| {
                // The conditional decrement is the first statement, so it is also the lock.
                let reason = LedgerReason::DocumentRender(document.id.as_str().to_owned());
                let balance = debit(
                    conn,
                    document.user_id.as_str(),
                    cost,
                    &reason,
                    document.created_at,
                )?;
                diesel::insert_into(documents::table)
                    .values((
                        documents::id.eq(document.id.as_str()),
                        documents::user_id.eq(document.user_id.as_str()),
                        documents::template_id.eq(document.template_id.as_str()),
                        documents::content.eq(document.content.as_str()),
                        documents::created_at.eq(document.created_at.as_millis()),
                    ))
                    .execute(conn)?;
                Ok(balance)
            })
        })
        .await
    }

    async fn list_documents(
        &self,
        user: &UserId,
        page: &PageRequest<DocumentId>,
    ) -> Result<Page<DocumentSummary>, ListError> {
        let (user, page) = (user.clone(), page.clone());
        self.run(move |conn| document_page(conn, &user, &page))
            .await
    }

    async fn find_document(
        &self,
        user: &UserId,
        id: &DocumentId,
    ) -> Result<Option<Document>, StoreError> {
        let (user, id) = (user.clone(), id.clone());
        self.run(move |conn| {
            let row = documents::table
                .filter(documents::id.eq(id.as_str()))
                .filter(documents::user_id.eq(user.as_str()))
                .select(DocumentRow::as_select())
                .first(conn)
                .optional()?;
            Ok(row.map(Document::from))
        })
        .await
    }
}
