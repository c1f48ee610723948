//! [`CatalogStore`]: templates, ownership and documents (read side; the ledger writer in
//! `ledger_batch` writes purchases and documents).

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use diesel::prelude::*;
use keys_domain::ports::{CatalogStore, StoreError};
use keys_domain::template::{Document, DocumentSummary, Template, TemplateListing};
use keys_domain::{
    Credits, DocumentId, ListError, Page, PageRequest, TemplateId, Timestamp, UserId,
};

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

impl DbStore {
    /// The catalogue, from memory or (every [`crate::template_cache::CATALOGUE_TTL`]) the
    /// database.
    async fn catalogue(&self) -> Result<Arc<Vec<Template>>, StoreError> {
        if let Some(templates) = self.template_cache().get() {
            return Ok(templates);
        }
        let rows: Vec<TemplateRow> = self
            .run(|conn| {
                Ok(templates::table
                    .order((templates::sort_order.asc(), templates::id.asc()))
                    .select(TemplateRow::as_select())
                    .load(conn)?)
            })
            .await?;
        Ok(self
            .template_cache()
            .put(rows.into_iter().map(Template::from).collect()))
    }
}

#[async_trait]
impl CatalogStore for DbStore {
    async fn list_templates(&self, user: &UserId) -> Result<Vec<TemplateListing>, StoreError> {
        let catalogue = self.catalogue().await?;
        let user = user.clone();
        let purchased = self
            .run(move |conn| Ok(purchased_ids(conn, user.as_str())?))
            .await?;
        Ok(catalogue
            .iter()
            .map(|t| listing(t.clone(), &purchased))
            .collect())
    }

    async fn find_template(
        &self,
        user: &UserId,
        id: &TemplateId,
    ) -> Result<Option<TemplateListing>, StoreError> {
        let catalogue = self.catalogue().await?;
        let Some(template) = catalogue.iter().find(|t| &t.id == id).cloned() else {
            return Ok(None);
        };
        if template.usable_by(false) {
            // Free: owned by everyone, no ownership row to read.
            return Ok(Some(TemplateListing {
                template,
                owned: true,
            }));
        }
        let (user, id) = (user.clone(), id.clone());
        let purchased = self
            .run(move |conn| {
                Ok(template_ownership::table
                    .find((user.as_str(), id.as_str()))
                    .select(template_ownership::template_id)
                    .first::<String>(conn)
                    .optional()?
                    .is_some())
            })
            .await?;
        Ok(Some(TemplateListing {
            template,
            owned: purchased,
        }))
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
