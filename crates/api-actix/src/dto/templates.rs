//! Template bodies.

use keys_domain::TemplateId;
use keys_domain::ports::Purchase;
use keys_domain::template::TemplateListing;
use serde::Serialize;

/// One catalogue entry with the caller's ownership.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateObject<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub premium: bool,
    pub price: u64,
    pub owned: bool,
}

impl<'a> TemplateObject<'a> {
    #[must_use]
    pub fn of(l: &'a TemplateListing) -> Self {
        Self {
            id: l.template.id.as_str(),
            name: &l.template.name,
            premium: l.template.premium,
            price: l.template.price.get(),
            owned: l.owned,
        }
    }
}

/// The 200 body of a purchase.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurchaseObject<'a> {
    pub template_id: &'a str,
    pub owned: bool,
    pub charged: u64,
    pub balance: u64,
}

impl<'a> PurchaseObject<'a> {
    #[must_use]
    pub fn of(id: &'a TemplateId, p: Purchase) -> Self {
        Self {
            template_id: id.as_str(),
            owned: true,
            charged: p.charged.get(),
            balance: p.balance.get(),
        }
    }
}
