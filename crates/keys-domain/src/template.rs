//! Templates, premium ownership, and rendering `{{field}}` placeholders.

use std::collections::BTreeMap;

use crate::credits::Credits;
use crate::ids::{DocumentId, TemplateId, UserId};
use crate::timestamp::Timestamp;

/// A catalogue template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: TemplateId,
    pub name: String,
    pub premium: bool,
    pub price: Credits,
    /// Text with `{{field}}` placeholders.
    pub body: String,
}

impl Template {
    /// The ownership rule: free templates belong to everyone; premium ones only once bought.
    #[must_use]
    pub fn usable_by(&self, purchased: bool) -> bool {
        !self.premium || purchased
    }

    /// What buying it costs a user who does (not) own it yet: 0 for free or owned templates.
    #[must_use]
    pub fn purchase_price(&self, purchased: bool) -> Credits {
        if self.premium && !purchased {
            self.price
        } else {
            Credits::ZERO
        }
    }
}

/// A template with whether the asking user owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateListing {
    pub template: Template,
    pub owned: bool,
}

/// A rendered document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: DocumentId,
    pub user_id: UserId,
    pub template_id: TemplateId,
    pub content: String,
    pub created_at: Timestamp,
}

/// A document as a list shows it: without its content, which can be large.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentSummary {
    pub id: DocumentId,
    pub template_id: TemplateId,
    pub created_at: Timestamp,
}

/// Field values for rendering.
pub type Fields = BTreeMap<String, String>;

/// Replaces each `{{name}}` (spaces inside the braces allowed) with its field value; unknown
/// placeholders render as empty text. Values are inserted verbatim and never re-scanned, so a
/// value containing `{{x}}` cannot inject another field.
#[must_use]
pub fn render(body: &str, fields: &Fields) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        if let Some(end) = after.find("}}") {
            let name = after[..end].trim();
            if let Some(v) = fields.get(name) {
                out.push_str(v);
            }
            rest = &after[end + 2..];
        } else {
            out.push_str(&rest[start..]);
            rest = "";
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders_without_reinjection() {
        let mut f = Fields::new();
        f.insert("name".into(), "Ada {{title}}".into());
        f.insert("title".into(), "Countess".into());
        assert_eq!(
            render("Hi {{ name }}, {{title}}{{missing}}!", &f),
            "Hi Ada {{title}}, Countess!"
        );
        assert_eq!(render("open {{name", &f), "open {{name");
    }

    #[test]
    fn ownership_and_price_rules() {
        let t = Template {
            id: TemplateId::new("executive"),
            name: "Executive".into(),
            premium: true,
            price: Credits::new(50),
            body: String::new(),
        };
        assert!(!t.usable_by(false));
        assert!(t.usable_by(true));
        assert_eq!(t.purchase_price(false), Credits::new(50));
        assert_eq!(t.purchase_price(true), Credits::ZERO);
    }
}
