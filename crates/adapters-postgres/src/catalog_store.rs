//! [`CatalogStore`]: templates, ownership and documents (read side; the ledger writer in
//! `ledger_batch` writes purchases and documents).

use std::collections::HashSet;

use async_trait::async_trait;
use diesel::prelude::*;
use keys_domain::ports::{CatalogStore, StoreError};
use keys_domain::template::{Document, DocumentSummary, Template, TemplateListing};
use keys_domain::{Credits, DocumentId, ListError, Page, PageRequest, TemplateId, Timestamp, UserId};

use crate::connection::AnyConnection;
use crate::pages::document_page;
use crate::schema::{documents, template_ownership, templates};
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
