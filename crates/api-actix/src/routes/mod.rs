//! One module per resource; [`ENDPOINTS`] is the one route table: [`configure`] mounts exactly
//! what it lists, the OpenAPI document is checked against it (`tests/api/openapi.rs`), and its
//! paths are the `route` label of the metrics. A route mounted any other way would be neither
//! documented nor measured, so there is no other way.

pub mod app;
pub mod auth;
pub mod credits;
pub mod docs;
pub mod documents;
pub mod health;
pub mod keys;
pub mod me;
pub mod secret_scanning;
pub mod templates;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{Route, guard, web};
use keys_domain::scope::Scope;

use crate::auth::api_key::Scopes;
use crate::auth::api_key::require_api_key;
use crate::auth::dashboard_gate::require_dashboard_user;
use crate::error::method_not_allowed;
use crate::prometheus::RouteMetrics;

/// Which credential an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// None (health, the API's own documentation).
    Open,
    /// `Authorization: Bearer jt_sk_…`.
    ApiKey,
    /// A dashboard JWT.
    Dashboard,
    /// No credential: the body is signed by its sender (GitHub's secret scanning).
    Signed,
    /// No credential yet: signing in (the body carries an address, or a link's one-time
    /// token). The handlers refuse a client over its failed-authentication limit, as the two
    /// credential gates do, and count a bad link's token as a failure.
    SignIn,
}

/// Each method of a path with the handler it runs (`|r| r.to(handler)`).
pub type Methods = &'static [(Method, fn(Route) -> Route)];

/// A path, its credential, and each method with the handler it runs.
pub struct Endpoint {
    /// The full route pattern, e.g. `/api/v1/keys/{id}`.
    pub path: &'static str,
    pub gate: Gate,
    pub methods: Methods,
    /// A body limit other than the default 64 KiB.
    pub body_limit: Option<usize>,
    /// The scope each method needs of an API key (public endpoints only; a method not listed
    /// needs none).
    pub scopes: Scopes,
}

/// Every route of the service, in the order actix tries them: it matches a request's path
/// against each resource in turn, paying for every pattern it tries and a regex search for a
/// pattern with a `{segment}`, so a route far down the table spends a visible share of a
/// request finding itself (`scripts/instr-per-request.sh` shows it). So `/healthz` (the
/// probes and the bench's baseline) comes first, then the public API that every client
/// request goes to, then the dashboard's API and the pages. No two patterns match the same
/// path (a test below checks it), so the order changes nothing but the cost.
pub const ENDPOINTS: &[Endpoint] = &[
    open("/healthz", &[(Method::GET, |r| r.to(health::healthz))]),
    public("/api/v1/public/me", &[(Method::GET, |r| r.to(me::me))], &[]),
    public(
        "/api/v1/public/documents",
        &[
            (Method::GET, |r| r.to(documents::list)),
            (Method::POST, |r| r.to(documents::render)),
        ],
        &[
            (Method::GET, Scope::DocumentsRead),
            (Method::POST, Scope::DocumentsWrite),
        ],
    ),
    public(
        "/api/v1/public/credits/balance",
        &[(Method::GET, |r| r.to(credits::public_balance))],
        &[(Method::GET, Scope::CreditsRead)],
    ),
    public(
        "/api/v1/public/templates",
        &[(Method::GET, |r| r.to(templates::list))],
        &[],
    ),
    public(
        "/api/v1/public/documents/{id}",
        &[(Method::GET, |r| r.to(documents::get))],
        &[(Method::GET, Scope::DocumentsRead)],
    ),
    public(
        "/api/v1/public/templates/{id}/purchase",
        &[(Method::POST, |r| r.to(templates::purchase))],
        &[(Method::POST, Scope::TemplatesPurchase)],
    ),
    dashboard(
        "/api/v1/keys",
        &[
            (Method::GET, |r| r.to(keys::list)),
            (Method::POST, |r| r.to(keys::create)),
        ],
    ),
    dashboard(
        "/api/v1/keys/{id}",
        &[
            (Method::GET, |r| r.to(keys::get)),
            (Method::PATCH, |r| r.to(keys::update)),
        ],
    ),
    dashboard(
        "/api/v1/keys/{id}/events",
        &[(Method::GET, |r| r.to(keys::events))],
    ),
    dashboard(
        "/api/v1/keys/{id}/usage",
        &[(Method::GET, |r| r.to(keys::usage))],
    ),
    dashboard(
        "/api/v1/keys/{id}/clients",
        &[(Method::GET, |r| r.to(keys::clients))],
    ),
    dashboard(
        "/api/v1/keys/{id}/revoke",
        &[(Method::POST, |r| r.to(keys::revoke))],
    ),
    dashboard(
        "/api/v1/keys/{id}/rotate",
        &[(Method::POST, |r| r.to(keys::rotate))],
    ),
    dashboard(
        "/api/v1/credits/balance",
        &[(Method::GET, |r| r.to(credits::dashboard_balance))],
    ),
    dashboard(
        "/api/v1/credits/ledger",
        &[(Method::GET, |r| r.to(credits::dashboard_ledger))],
    ),
    sign_in(
        "/api/v1/auth/email-link",
        &[(Method::POST, |r| r.to(auth::email_link))],
    ),
    sign_in(
        "/api/v1/auth/session",
        &[(Method::POST, |r| r.to(auth::session))],
    ),
    dashboard(
        "/api/v1/auth/sign-out",
        &[(Method::POST, |r| r.to(auth::sign_out))],
    ),
    Endpoint {
        path: "/api/v1/secret-scanning/github",
        gate: Gate::Signed,
        methods: &[(Method::POST, |r| r.to(secret_scanning::github))],
        body_limit: Some(secret_scanning::REPORT_LIMIT),
        scopes: &[],
    },
    open("/readyz", &[(Method::GET, |r| r.to(health::readyz))]),
    open(
        "/openapi.json",
        &[(Method::GET, |r| r.to(docs::openapi_json))],
    ),
    open("/docs", &[(Method::GET, |r| r.to(docs::page))]),
    open("/app", &[(Method::GET, |r| r.to(app::index))]),
    open("/app/{view}", &[(Method::GET, |r| r.to(app::view))]),
    open("/app/assets/{name}", &[(Method::GET, |r| r.to(app::asset))]),
    open("/docs/docs.js", &[(Method::GET, |r| r.to(docs::script))]),
    open(
        "/docs/docs.css",
        &[(Method::GET, |r| r.to(docs::stylesheet))],
    ),
];

const fn open(path: &'static str, methods: Methods) -> Endpoint {
    Endpoint {
        path,
        gate: Gate::Open,
        methods,
        body_limit: None,
        scopes: &[],
    }
}

const fn sign_in(path: &'static str, methods: Methods) -> Endpoint {
    Endpoint {
        path,
        gate: Gate::SignIn,
        methods,
        body_limit: None,
        scopes: &[],
    }
}

const fn public(path: &'static str, methods: Methods, scopes: Scopes) -> Endpoint {
    Endpoint {
        path,
        gate: Gate::ApiKey,
        methods,
        body_limit: None,
        scopes,
    }
}

const fn dashboard(path: &'static str, methods: Methods) -> Endpoint {
    Endpoint {
        path,
        gate: Gate::Dashboard,
        methods,
        body_limit: None,
        scopes: &[],
    }
}

impl Endpoint {
    /// The `Allow` header of the resource: its methods, `HEAD` wherever `GET` is.
    #[must_use]
    pub fn allow(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for (m, _) in self.methods {
            names.push(m.as_str());
            if *m == Method::GET {
                names.push("HEAD");
            }
        }
        names.sort_unstable();
        names.join(", ")
    }
}

/// The route of `method`: `GET` also answers `HEAD` with the same handler (actix sends the
/// headers without the body).
fn route_for(method: &Method) -> Route {
    if *method == Method::GET {
        web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
    } else {
        web::route().method(method.clone())
    }
}

/// Mounts [`ENDPOINTS`], each behind its gate, with the JSON 405 (and `Allow`) for the methods
/// it does not serve; everything else is the JSON 404 of the app's default service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for endpoint in ENDPOINTS {
        let allow = endpoint.allow();
        let mut resource = web::resource(endpoint.path)
            // The route pattern, for the metrics' `route` label (never the raw path: that
            // would be one series per id), with its series' handles.
            .app_data(RouteMetrics::new(endpoint.path))
            .default_service(web::to(move || {
                let allow = allow.clone();
                async move { method_not_allowed(allow) }
            }));
        if let Some(limit) = endpoint.body_limit {
            resource = resource.app_data(web::PayloadConfig::new(limit));
        }
        for (method, handler) in endpoint.methods {
            resource = resource.route(handler(route_for(method)));
        }
        match endpoint.gate {
            // The sign-in handlers check the failure limit themselves: only they know the
            // client's outcome (a link's token that does not work counts as a failure).
            Gate::Open | Gate::Signed | Gate::SignIn => cfg.service(resource),
            Gate::ApiKey => {
                let scopes = endpoint.scopes;
                cfg.service(
                    resource.wrap(from_fn(move |req, next| require_api_key(req, next, scopes))),
                )
            }
            Gate::Dashboard => cfg.service(resource.wrap(from_fn(require_dashboard_user))),
        };
    }
}

#[cfg(test)]
mod tests {
    use actix_web::dev::ResourceDef;

    use super::ENDPOINTS;

    /// The route table's order is free to follow the traffic only while no path matches two
    /// patterns: each pattern, its segments filled in, must match that pattern alone.
    #[test]
    fn no_path_matches_two_patterns() {
        let patterns: Vec<ResourceDef> =
            ENDPOINTS.iter().map(|e| ResourceDef::new(e.path)).collect();
        for endpoint in ENDPOINTS {
            let path = endpoint
                .path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "x1"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let matching: Vec<&str> = patterns
                .iter()
                .filter(|p| p.is_match(&path))
                .map(|p| p.pattern().unwrap_or_default())
                .collect();
            assert_eq!(matching, vec![endpoint.path], "{path}");
        }
    }
}
