//! One module per resource; [`configure`] mounts them all.

pub mod credits;
pub mod documents;
pub mod health;
pub mod keys;
pub mod me;
pub mod templates;

use actix_web::middleware::from_fn;
use actix_web::{Resource, web};

use crate::auth::api_key::require_api_key;
use crate::error::{method_not_allowed, route_not_found};

/// A resource whose unserved methods answer the JSON 405.
pub(crate) fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Every route of the contract, plus JSON 404/405 for everything else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/readyz").route(web::get().to(health::readyz)))
        .service(
            web::scope("/api/v1/public")
                .wrap(from_fn(require_api_key))
                .service(resource("/credits/balance").route(web::get().to(credits::public_balance)))
                .service(resource("/me").route(web::get().to(me::me)))
                .service(resource("/templates").route(web::get().to(templates::list)))
                .service(
                    resource("/templates/{id}/purchase").route(web::post().to(templates::purchase)),
                )
                .service(
                    resource("/documents")
                        .route(web::get().to(documents::list))
                        .route(web::post().to(documents::render)),
                )
                .service(resource("/documents/{id}").route(web::get().to(documents::get)))
                .default_service(web::to(route_not_found)),
        )
        .service(
            web::scope("/api/v1")
                .service(
                    resource("/keys")
                        .route(web::get().to(keys::list))
                        .route(web::post().to(keys::create)),
                )
                .service(resource("/keys/{id}").route(web::get().to(keys::get)))
                .service(resource("/keys/{id}/revoke").route(web::post().to(keys::revoke)))
                .service(resource("/keys/{id}/rotate").route(web::post().to(keys::rotate)))
                .service(
                    resource("/credits/balance").route(web::get().to(credits::dashboard_balance)),
                )
                .service(
                    resource("/credits/ledger").route(web::get().to(credits::dashboard_ledger)),
                )
                .default_service(web::to(route_not_found)),
        );
}
