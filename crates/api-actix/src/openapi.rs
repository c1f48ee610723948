//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and the
//! DTOs' schemas. What every endpoint of a kind shares (its credential, the errors of its gate
//! and of the request pipeline) is added from the route table, so it cannot drift either.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use actix_web::http::Method;

use crate::routes::{self, ENDPOINTS, Gate};

#[allow(dead_code)] // read by the schema derive only
/// The error body: `{"error": {"type", "message", "request_id", …}}`.
#[derive(ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[allow(dead_code)] // read by the schema derive only
/// The error object. `type` is the stable part to branch on; `message` is for people.
#[derive(ToSchema)]
pub struct ErrorDetail {
    /// E.g. `invalid_request`, `invalid_api_key`, `insufficient_credits`, `rate_limited`.
    #[schema(rename = "type")]
    kind: String,
    message: String,
    /// The response's `X-Request-Id`.
    request_id: String,
    /// 400: the field at fault, where there is one.
    field: Option<String>,
    /// 402: the operation's cost.
    required: Option<u64>,
    /// 402: the balance.
    balance: Option<u64>,
    /// 402: where to top up.
    top_up_url: Option<String>,
    /// 403: `template_not_purchased`.
    reason: Option<String>,
    /// 429: seconds to wait (also `Retry-After`).
    retry_after: Option<u64>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "JobTactics API",
        description = "API keys, credits, templates and documents. Errors are `{\"error\": {\"type\", \"message\", \"request_id\"}}`; every response carries `X-Request-Id`.",
    ),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::docs::openapi_json,
        routes::docs::page,
        routes::docs::script,
        routes::docs::stylesheet,
        routes::credits::public_balance,
        routes::me::me,
        routes::templates::list,
        routes::templates::purchase,
        routes::documents::list,
        routes::documents::render,
        routes::documents::get,
        routes::keys::list,
        routes::keys::create,
        routes::keys::get,
        routes::keys::update,
        routes::keys::clients,
        routes::keys::revoke,
        routes::keys::rotate,
        routes::credits::dashboard_balance,
        routes::credits::dashboard_ledger,
        routes::keys::events,
        routes::secret_scanning::github,
        routes::keys::usage,
        routes::auth::email_link,
        routes::auth::session,
        routes::auth::sign_out,
        routes::app::index,
        routes::app::view,
        routes::app::asset,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&ByGate),
    tags(
        (name = "public", description = "Called with an API key: `Authorization: Bearer jt_sk_…`"),
        (name = "dashboard", description = "Called with a dashboard token (JWT)"),
        (name = "secret scanning", description = "Called by GitHub's secret scanning; the body's signature is the credential"),
        (name = "dashboard page", description = "The dashboard in the browser (HTML, scripts, styles); no credential"),
        (name = "operations", description = "Health and this documentation; no credential"),
    )
)]
pub struct ApiDoc;

/// The document, serialized once.
pub static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
});

/// Security schemes, and the responses every endpoint of a gate shares.
struct ByGate;

impl Modify for ByGate {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("jt_sk_…")
                    .description(Some("An API key: `Authorization: Bearer jt_sk_…`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "dashboard_jwt",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A dashboard token (HS256 JWT)"))
                    .build(),
            ),
        );
        for endpoint in ENDPOINTS {
            let Some(item) = doc.paths.paths.get_mut(endpoint.path) else {
                continue;
            };
            for (method, op) in [
                (Method::GET, &mut item.get),
                (Method::POST, &mut item.post),
                (Method::PATCH, &mut item.patch),
            ] {
                let Some(op) = op else { continue };
                decorate(op, endpoint.gate);
                if let Some((_, scope)) = endpoint.scopes.iter().find(|(m, _)| *m == method) {
                    let description = format!(
                        "`insufficient_scope`: the key lacks `{}` (`required_scope`); with `WWW-Authenticate: Bearer realm=\"jobtactics\", error=\"insufficient_scope\", scope=\"{}\"`",
                        scope.as_str(),
                        scope.as_str()
                    );
                    op.responses
                        .responses
                        .entry("403".to_owned())
                        .and_modify(|r| {
                            if let RefOr::T(r) = r {
                                r.description = format!("{}; or {description}", r.description);
                            }
                        })
                        .or_insert_with(|| error(&description));
                }
            }
        }
    }
}

fn error(description: &str) -> RefOr<Response> {
    let content = utoipa::openapi::content::ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    ResponseBuilder::new()
        .description(description)
        .content("application/json", content)
        .into()
}

fn decorate(op: &mut Operation, gate: Gate) {
    let mut shared: BTreeMap<&str, &str> = BTreeMap::new();
    match gate {
        Gate::Open | Gate::Signed => {}
        Gate::ApiKey => {
            op.security = Some(vec![SecurityRequirement::new(
                "api_key",
                Vec::<String>::new(),
            )]);
            shared.insert("401", "`missing_api_key`, `malformed_api_key`, `invalid_api_key`, `revoked_api_key`, `expired_api_key` (past the key's `expires_at`), `network_not_allowed` (outside its `allowed_networks`) or `unsupported_credential`; with `WWW-Authenticate`");
            shared.insert("429", "`rate_limited`: the key's rate limit, or too many failed authentications from this address; `Retry-After`");
            shared.insert(
                "503",
                "`service_unavailable`: a store is down; `Retry-After`",
            );
        }
        Gate::Dashboard => {
            op.security = Some(vec![SecurityRequirement::new(
                "dashboard_jwt",
                Vec::<String>::new(),
            )]);
            shared.insert("401", "`missing_token`, `invalid_token` or `api_key_not_accepted`; with `WWW-Authenticate`");
            shared.insert("429", "`rate_limited`: too many dashboard writes or failed authentications; `Retry-After`");
            shared.insert(
                "503",
                "`service_unavailable`: a store is down; `Retry-After`",
            );
        }
    }
    let has_body = op.request_body.is_some();
    if has_body {
        shared.insert("400", "`invalid_request`: malformed JSON, wrong types, failed validation, or a body that is not `application/json` (`field` names the field at fault)");
        shared.insert(
            "408",
            "`request_timeout`: the body did not arrive within 10 seconds",
        );
        shared.insert(
            "413",
            "`payload_too_large`: the body is over the limit (64 KiB)",
        );
        shared.insert(
            "415",
            "`unsupported_media_type`: a `Content-Encoding` other than `identity`",
        );
    } else if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
        shared.insert(
            "400",
            "`invalid_request`: a bad path or query parameter (`field` names it)",
        );
    }
    shared.insert("405", "`method_not_allowed`, with `Allow`");
    for (status, description) in shared {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error(description));
    }
}
