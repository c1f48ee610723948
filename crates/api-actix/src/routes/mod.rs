//! One module per resource; [`configure`] mounts them all.

pub mod app;
pub mod auth;
pub mod credits;
pub mod documents;
pub mod health;
pub mod keys;
pub mod me;
pub mod secret_scanning;
pub mod templates;

use actix_web::middleware::from_fn;
use actix_web::{Resource, Route, guard, web};

use crate::auth::api_key::require_api_key;
use crate::auth::dashboard_gate::require_dashboard_user;
use crate::error::{method_not_allowed, route_not_found};

/// `Allow` of a resource that serves `GET` (and so `HEAD`).
const GET: &str = "GET, HEAD";
const GET_POST: &str = "GET, HEAD, POST";
const POST: &str = "POST";

/// A resource whose unserved methods answer the JSON 405 with `Allow: allow`. `allow` must name
/// the methods of its routes (checked over HTTP in `tests/api/edge.rs`).
pub(crate) fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move { method_not_allowed(allow) }))
}

/// `GET`, and `HEAD` with the same handler (actix sends the headers without the body).
pub(crate) fn get() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Mounts a dashboard resource behind its gate (token, sign-out cut-off, write limit).
macro_rules! dashboard {
    ($resource:expr) => {
        $resource.wrap(from_fn(require_dashboard_user))
    };
}

/// Every route of the contract, plus JSON 404/405 for everything else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz", GET).route(get().to(health::healthz)))
        .service(resource("/readyz", GET).route(get().to(health::readyz)))
        .service(resource("/app", GET).route(get().to(app::index)))
        .service(resource("/app/", GET).route(get().to(app::index)))
        .service(resource("/app/sign-in", GET).route(get().to(app::index)))
        .service(resource("/app/keys", GET).route(get().to(app::index)))
        .service(resource("/app/credits", GET).route(get().to(app::index)))
        .service(resource("/app/assets/{name}", GET).route(get().to(app::asset)))
        .service(
            web::scope("/api/v1/public")
                .wrap(from_fn(require_api_key))
                .service(resource("/credits/balance", GET).route(get().to(credits::public_balance)))
                .service(resource("/me", GET).route(get().to(me::me)))
                .service(resource("/templates", GET).route(get().to(templates::list)))
                .service(
                    resource("/templates/{id}/purchase", POST)
                        .route(web::post().to(templates::purchase)),
                )
                .service(
                    resource("/documents", GET_POST)
                        .route(get().to(documents::list))
                        .route(web::post().to(documents::render)),
                )
                .service(resource("/documents/{id}", GET).route(get().to(documents::get)))
                .default_service(web::to(route_not_found)),
        )
        .service(
            web::scope("/api/v1")
                .service(resource("/auth/email-link", POST).route(web::post().to(auth::email_link)))
                .service(resource("/auth/session", POST).route(web::post().to(auth::session)))
                .service(dashboard!(
                    resource("/auth/sign-out", POST).route(web::post().to(auth::sign_out))
                ))
                .service(dashboard!(
                    resource("/keys/{id}/usage", GET).route(get().to(keys::usage))
                ))
                .service(dashboard!(
                    resource("/keys", GET_POST)
                        .route(get().to(keys::list))
                        .route(web::post().to(keys::create))
                ))
                .service(dashboard!(
                    resource("/keys/{id}", GET).route(get().to(keys::get))
                ))
                .service(dashboard!(
                    resource("/keys/{id}/events", GET).route(get().to(keys::events))
                ))
                .service(dashboard!(
                    resource("/keys/{id}/revoke", POST).route(web::post().to(keys::revoke))
                ))
                .service(dashboard!(
                    resource("/keys/{id}/rotate", POST).route(web::post().to(keys::rotate))
                ))
                .service(dashboard!(
                    resource("/credits/balance", GET).route(get().to(credits::dashboard_balance))
                ))
                .service(dashboard!(
                    resource("/credits/ledger", GET).route(get().to(credits::dashboard_ledger))
                ))
                // Signed by GitHub, not authenticated by a key or token; a larger body limit.
                .service(
                    resource("/secret-scanning/github", POST)
                        .app_data(web::PayloadConfig::new(secret_scanning::REPORT_LIMIT))
                        .route(web::post().to(secret_scanning::github)),
                )
                .default_service(web::to(route_not_found)),
        );
}
