//! `CatalogService`: purchases and rendering go to the ledger writer as one charge each, paid
//! with the request's key; nothing is charged when a check fails, and every refusal the writer
//! answers maps to its error.

use std::sync::Arc;

use keys_domain::credits::{Credits, InsufficientCredits};
use keys_domain::ports::{
    ChargeKind, ChargeOutcome, MockCatalogStore, MockLedgerWriter, StoreError,
};
use keys_domain::template::{Fields, Template, TemplateListing};
use keys_domain::use_cases::{CatalogService, PurchaseError, RenderError};
use keys_domain::{KeyId, TemplateId};

use crate::support::{SeqRandom, T0, clock_at, user};

fn service(store: MockCatalogStore, ledger: MockLedgerWriter) -> CatalogService {
    CatalogService {
        store: Arc::new(store),
        ledger: Arc::new(ledger),
        clock: Arc::new(clock_at(T0)),
        random: Arc::new(SeqRandom::new(11)),
    }
}

fn key() -> KeyId {
    KeyId::new("key_paying")
}

fn template(id: &str, premium: bool, price: u64, body: &str) -> Template {
    Template {
        id: TemplateId::new(id),
        name: id.to_uppercase(),
        premium,
        price: Credits::new(price),
        body: body.to_owned(),
    }
}

fn executive() -> Template {
    template("executive", true, 50, "Executive {{name}}")
}

fn classic() -> Template {
    template("classic", false, 0, "Dear {{ name }}, {{role}}{{missing}}.")
}

fn finds(listing: Option<TemplateListing>) -> MockCatalogStore {
    let mut store = MockCatalogStore::new();
    store
        .expect_find_template()
        .withf(|u, _| *u == user())
        .times(1)
        .returning(move |_, _| Ok(listing.clone()));
    store
}

fn listing(template: Template, owned: bool) -> Option<TemplateListing> {
    Some(TemplateListing { template, owned })
}

fn never_charged() -> MockLedgerWriter {
    let mut ledger = MockLedgerWriter::new();
    ledger.expect_charge().never();
    ledger
}

/// A writer that answers `outcome` to one charge.
fn answers(outcome: Result<ChargeOutcome, StoreError>) -> MockLedgerWriter {
    let mut ledger = MockLedgerWriter::new();
    ledger
        .expect_charge()
        .times(1)
        .returning(move |_| outcome.clone());
    ledger
}

fn short() -> InsufficientCredits {
    InsufficientCredits {
        required: Credits::new(50),
        balance: Credits::new(10),
    }
}

// ---- purchase ----

fn purchase(
    store: MockCatalogStore,
    ledger: MockLedgerWriter,
) -> Result<(u64, u64), PurchaseError> {
    futures_executor::block_on(service(store, ledger).purchase(
        &user(),
        &key(),
        &TemplateId::new("whatever"),
    ))
    .map(|p| (p.charged.get(), p.balance.get()))
}

#[test]
fn purchase_of_unknown_template_is_not_found_and_charges_nothing() {
    assert_eq!(
        purchase(finds(None), never_charged()),
        Err(PurchaseError::TemplateNotFound)
    );
}

/// Purchases `listing` and returns the cost the writer was asked to charge.
fn cost_passed_for(listing_: Option<TemplateListing>) -> u64 {
    let mut ledger = MockLedgerWriter::new();
    ledger
        .expect_charge()
        .withf(|c| {
            c.user_id == user()
                && c.key_id == Some(key())
                && c.at == T0
                && matches!(&c.kind, ChargeKind::Purchase(t) if t == &executive().id || t == &classic().id)
        })
        .times(1)
        .returning(|c| {
            Ok(ChargeOutcome::Charged {
                charged: c.cost,
                balance: Credits::new(70),
            })
        });
    let (charged, balance) = purchase(finds(listing_), ledger).unwrap();
    assert_eq!(balance, 70);
    charged
}

#[test]
fn purchase_asks_for_the_price_of_a_premium_template_and_zero_for_a_free_one() {
    // The writer decides ownership under its lock: an owned premium template is charged 0
    // there (see the contract suite), so the request always carries the price.
    assert_eq!(cost_passed_for(listing(executive(), false)), 50);
    assert_eq!(cost_passed_for(listing(executive(), true)), 50);
    assert_eq!(cost_passed_for(listing(classic(), true)), 0);
}

#[test]
fn purchase_maps_every_refusal() {
    let down = StoreError::Unavailable("down".into());
    for (outcome, want) in [
        (
            Ok(ChargeOutcome::Insufficient(short())),
            PurchaseError::Insufficient(short()),
        ),
        (Ok(ChargeOutcome::UnknownUser), PurchaseError::UnknownUser),
        (Ok(ChargeOutcome::KeyNotAccepted), PurchaseError::KeyRevoked),
        (Err(down.clone()), PurchaseError::Store(down.clone())),
    ] {
        let got = purchase(finds(listing(executive(), false)), answers(outcome));
        assert_eq!(got, Err(want));
    }
}

// ---- render_document ----

fn render(
    store: MockCatalogStore,
    ledger: MockLedgerWriter,
    fields: &Fields,
) -> Result<keys_domain::use_cases::RenderedDocument, RenderError> {
    futures_executor::block_on(service(store, ledger).render_document(
        &user(),
        &key(),
        &TemplateId::new("whatever"),
        fields,
    ))
}

#[test]
fn rendering_a_premium_template_not_owned_is_forbidden_and_charges_nothing() {
    assert_eq!(
        render(
            finds(listing(executive(), false)),
            never_charged(),
            &Fields::new()
        ),
        Err(RenderError::TemplateNotOwned)
    );
}

#[test]
fn rendering_an_unknown_template_is_not_found() {
    assert_eq!(
        render(finds(None), never_charged(), &Fields::new()),
        Err(RenderError::TemplateNotFound)
    );
}

#[test]
fn rendering_maps_every_refusal() {
    let one_short = InsufficientCredits {
        required: Credits::new(1),
        balance: Credits::ZERO,
    };
    let down = StoreError::Unavailable("down".into());
    for (outcome, want) in [
        (
            Ok(ChargeOutcome::Insufficient(one_short)),
            RenderError::Insufficient(one_short),
        ),
        (Ok(ChargeOutcome::UnknownUser), RenderError::UnknownUser),
        (Ok(ChargeOutcome::KeyNotAccepted), RenderError::KeyRevoked),
        (Err(down.clone()), RenderError::Store(down.clone())),
    ] {
        let got = render(
            finds(listing(classic(), true)),
            answers(outcome),
            &Fields::new(),
        );
        assert_eq!(got, Err(want));
    }

    let mut store = MockCatalogStore::new();
    store
        .expect_find_template()
        .returning(|_, _| Err(StoreError::Unavailable("down".into())));
    assert_eq!(
        render(store, never_charged(), &Fields::new()),
        Err(RenderError::Store(down))
    );
}

#[test]
fn rendering_fills_placeholders_and_charges_one_credit_with_the_key() {
    let mut ledger = MockLedgerWriter::new();
    ledger
        .expect_charge()
        .withf(|c| {
            c.cost == Credits::new(1)
                && c.user_id == user()
                && c.key_id == Some(key())
                && c.at == T0
                && matches!(&c.kind, ChargeKind::Render(doc)
                    if doc.user_id == user()
                        && doc.template_id.as_str() == "classic"
                        && doc.created_at == T0
                        && doc.content == "Dear Ada, Countess.")
        })
        .times(1)
        .returning(|_| {
            Ok(ChargeOutcome::Charged {
                charged: Credits::new(1),
                balance: Credits::new(119),
            })
        });
    let mut fields = Fields::new();
    fields.insert("name".into(), "Ada".into());
    fields.insert("role".into(), "Countess".into());

    let out = render(finds(listing(classic(), false)), ledger, &fields).unwrap();
    assert_eq!(out.charged, Credits::new(1));
    assert_eq!(out.balance, Credits::new(119));
    assert_eq!(out.document.content, "Dear Ada, Countess.");
    assert!(out.document.id.as_str().starts_with("doc_"));
    assert_eq!(out.document.id.as_str().len(), 24);
}

#[test]
fn an_owned_premium_template_renders() {
    let ledger = answers(Ok(ChargeOutcome::Charged {
        charged: Credits::new(1),
        balance: Credits::new(5),
    }));
    let mut fields = Fields::new();
    fields.insert("name".into(), "Ada".into());
    let out = render(finds(listing(executive(), true)), ledger, &fields).unwrap();
    assert_eq!(out.document.content, "Executive Ada");
    assert_eq!(out.balance, Credits::new(5));
}
