//! `CatalogService`: purchases and rendering; nothing is charged when a check fails.

use std::sync::Arc;

use keys_domain::TemplateId;
use keys_domain::credits::{Credits, InsufficientCredits};
use keys_domain::ports::{ChargeError, MockCatalogStore, Purchase, StoreError};
use keys_domain::template::{Fields, Template, TemplateListing};
use keys_domain::use_cases::{CatalogService, PurchaseError, RenderError};

use crate::support::{SeqRandom, T0, clock_at, user};

fn service(store: MockCatalogStore) -> CatalogService {
    CatalogService {
        store: Arc::new(store),
        clock: Arc::new(clock_at(T0)),
        random: Arc::new(SeqRandom::new(11)),
    }
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

fn finds(store: &mut MockCatalogStore, listing: Option<TemplateListing>) {
    store
        .expect_find_template()
        .withf(|u, _| *u == user())
        .times(1)
        .returning(move |_, _| Ok(listing.clone()));
}

fn listing(template: Template, owned: bool) -> Option<TemplateListing> {
    Some(TemplateListing { template, owned })
}

fn short() -> InsufficientCredits {
    InsufficientCredits {
        required: Credits::new(50),
        balance: Credits::new(10),
    }
}

// ---- purchase ----

#[test]
fn purchase_of_unknown_template_is_not_found_and_charges_nothing() {
    let mut store = MockCatalogStore::new();
    finds(&mut store, None);
    store.expect_purchase().never();
    let got = futures_executor::block_on(service(store).purchase(&user(), &TemplateId::new("x")));
    assert_eq!(got, Err(PurchaseError::TemplateNotFound));
}

/// Purchases `listing` and returns the price the store was asked to charge.
fn price_passed_for(listing_: Option<TemplateListing>) -> u64 {
    let mut store = MockCatalogStore::new();
    finds(&mut store, listing_);
    store
        .expect_purchase()
        .withf(|u, _, _, now| *u == user() && *now == T0)
        .times(1)
        .returning(|_, _, price, _| {
            Ok(Purchase {
                charged: price,
                balance: Credits::new(70),
            })
        });
    let got =
        futures_executor::block_on(service(store).purchase(&user(), &TemplateId::new("whatever")))
            .unwrap();
    assert_eq!(got.balance, Credits::new(70));
    got.charged.get()
}

#[test]
fn purchase_charges_the_price_once_and_zero_for_free_or_owned_templates() {
    assert_eq!(price_passed_for(listing(executive(), false)), 50);
    assert_eq!(price_passed_for(listing(executive(), true)), 0);
    assert_eq!(price_passed_for(listing(classic(), true)), 0);
    assert_eq!(price_passed_for(listing(classic(), false)), 0);
}

fn purchase_with_store_error(err: ChargeError) -> PurchaseError {
    let mut store = MockCatalogStore::new();
    finds(&mut store, listing(executive(), false));
    store
        .expect_purchase()
        .times(1)
        .returning(move |_, _, _, _| Err(err.clone()));
    futures_executor::block_on(service(store).purchase(&user(), &TemplateId::new("executive")))
        .unwrap_err()
}

#[test]
fn purchase_maps_store_errors() {
    assert_eq!(
        purchase_with_store_error(ChargeError::Insufficient(short())),
        PurchaseError::Insufficient(short())
    );
    assert_eq!(
        purchase_with_store_error(ChargeError::UnknownUser),
        PurchaseError::UnknownUser
    );
    let down = StoreError::Unavailable("down".into());
    assert_eq!(
        purchase_with_store_error(ChargeError::Store(down.clone())),
        PurchaseError::Store(down)
    );
}

// ---- render_document ----

fn render(
    store: MockCatalogStore,
    fields: &Fields,
) -> Result<keys_domain::use_cases::RenderedDocument, RenderError> {
    futures_executor::block_on(service(store).render_document(
        &user(),
        &TemplateId::new("whatever"),
        fields,
    ))
}

#[test]
fn rendering_a_premium_template_not_owned_is_forbidden_and_charges_nothing() {
    let mut store = MockCatalogStore::new();
    finds(&mut store, listing(executive(), false));
    store.expect_create_document().never();
    assert_eq!(
        render(store, &Fields::new()),
        Err(RenderError::TemplateNotOwned)
    );
}

#[test]
fn rendering_an_unknown_template_is_not_found() {
    let mut store = MockCatalogStore::new();
    finds(&mut store, None);
    store.expect_create_document().never();
    assert_eq!(
        render(store, &Fields::new()),
        Err(RenderError::TemplateNotFound)
    );
}

#[test]
fn rendering_with_a_short_balance_is_insufficient() {
    let one_short = InsufficientCredits {
        required: Credits::new(1),
        balance: Credits::ZERO,
    };
    let mut store = MockCatalogStore::new();
    finds(&mut store, listing(classic(), true));
    store
        .expect_create_document()
        .times(1)
        .returning(move |_, _| Err(ChargeError::Insufficient(one_short)));
    assert_eq!(
        render(store, &Fields::new()),
        Err(RenderError::Insufficient(one_short))
    );
}

#[test]
fn rendering_maps_other_store_errors() {
    let down = StoreError::Unavailable("down".into());
    for (err, want) in [
        (ChargeError::UnknownUser, RenderError::UnknownUser),
        (
            ChargeError::Store(down.clone()),
            RenderError::Store(down.clone()),
        ),
    ] {
        let mut store = MockCatalogStore::new();
        finds(&mut store, listing(classic(), true));
        store
            .expect_create_document()
            .times(1)
            .returning(move |_, _| Err(err.clone()));
        assert_eq!(render(store, &Fields::new()), Err(want));
    }

    let mut store = MockCatalogStore::new();
    store
        .expect_find_template()
        .returning(|_, _| Err(StoreError::Unavailable("down".into())));
    store.expect_create_document().never();
    assert_eq!(render(store, &Fields::new()), Err(RenderError::Store(down)));
}

#[test]
fn rendering_fills_placeholders_and_charges_one_credit() {
    let mut store = MockCatalogStore::new();
    finds(&mut store, listing(classic(), false));
    store
        .expect_create_document()
        .withf(|doc, cost| {
            *cost == Credits::new(1)
                && doc.user_id == user()
                && doc.template_id.as_str() == "classic"
                && doc.created_at == T0
                && doc.content == "Dear Ada, Countess."
        })
        .times(1)
        .returning(|_, _| Ok(Credits::new(119)));
    let mut fields = Fields::new();
    fields.insert("name".into(), "Ada".into());
    fields.insert("role".into(), "Countess".into());

    let out = render(store, &fields).unwrap();
    assert_eq!(out.charged, Credits::new(1));
    assert_eq!(out.balance, Credits::new(119));
    assert_eq!(out.document.content, "Dear Ada, Countess.");
    assert!(out.document.id.as_str().starts_with("doc_"));
    assert_eq!(out.document.id.as_str().len(), 24);
}

#[test]
fn an_owned_premium_template_renders() {
    let mut store = MockCatalogStore::new();
    finds(&mut store, listing(executive(), true));
    store
        .expect_create_document()
        .withf(|doc, _| doc.content == "Executive Ada")
        .times(1)
        .returning(|_, _| Ok(Credits::new(5)));
    let mut fields = Fields::new();
    fields.insert("name".into(), "Ada".into());
    assert_eq!(render(store, &fields).unwrap().balance, Credits::new(5));
}
