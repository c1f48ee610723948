//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and the
//! DTOs' schemas. What every endpoint of a kind shares (its credential, the answers of its gate,
//! of its body and of the request pipeline) is added from the route table, so it cannot drift
//! either: each operation lists every status the service can give on it.

use std::sync::LazyLock;

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use actix_web::http::Method;

use crate::json_body::BODY_LIMIT;
use crate::routes::{self, ENDPOINTS, Endpoint, Gate};

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
    modifiers(&ByGate, &ParameterBounds),
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

/// Security schemes, and every answer an operation can give that is not its handler's own:
/// the request pipeline's, its gate's and its body's, from the route table ([`ENDPOINTS`]) that
/// mounts it. `tests/api/documented_statuses.rs` drives every route through every status it
/// documents, and checks that it gives no other.
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
                (Method::PUT, &mut item.put),
                (Method::DELETE, &mut item.delete),
            ] {
                let Some(op) = op else { continue };
                match endpoint.gate {
                    Gate::ApiKey => op.security = Some(vec![requirement("api_key")]),
                    Gate::Dashboard => op.security = Some(vec![requirement("dashboard_jwt")]),
                    Gate::Open | Gate::Signed | Gate::SignIn => {}
                }
                for (status, description) in shared_answers(endpoint, &method, op) {
                    add(op, status, &description);
                }
            }
        }
    }
}

/// The bounds the service checks on the parameters every list and every retried write share,
/// in their schemas, so a client generated from the document (or a fuzzer) sends what is
/// accepted: `limit` 1 to 100, `Idempotency-Key` 1 to 255 printable ASCII characters, the key
/// list's `status` one of three.
struct ParameterBounds;

impl Modify for ParameterBounds {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let limit = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(100))
            .build();
        let idempotency_key = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(255))
            .pattern(Some("^[ -~]+$"))
            .build();
        let key_status = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["active", "expiring", "revoked", "expired"]))
            .build();
        for (path, item) in &mut doc.paths.paths {
            let keys_list = path == "/api/v1/keys";
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                for p in op.parameters.iter_mut().flatten() {
                    let bounded = match (&p.parameter_in, p.name.as_str()) {
                        (ParameterIn::Query, "limit") => &limit,
                        (ParameterIn::Header, "Idempotency-Key") => &idempotency_key,
                        (ParameterIn::Query, "status") if keys_list => &key_status,
                        _ => continue,
                    };
                    p.schema = Some(RefOr::T(Schema::Object(bounded.clone())));
                }
            }
        }
    }
}

fn requirement(scheme: &str) -> SecurityRequirement {
    SecurityRequirement::new(scheme, Vec::<String>::new())
}

/// What an operation of `endpoint` may answer besides its handler's own, by where it comes from.
fn shared_answers(
    endpoint: &Endpoint,
    method: &Method,
    op: &Operation,
) -> Vec<(&'static str, String)> {
    let mut answers: Vec<(&'static str, String)> = Vec::new();
    let mut say = |status, description: &str| answers.push((status, description.to_owned()));
    // The request pipeline (`request_guard`), before any route is chosen.
    say(
        "400",
        "`invalid_request`: both `Content-Length` and `Transfer-Encoding` (the connection is closed)",
    );
    say(
        "415",
        "`unsupported_media_type`: a `Content-Encoding` other than `identity` (bodies are never decompressed; the connection is closed)",
    );
    say("405", "`method_not_allowed`, with `Allow`");
    // The gate.
    let outage = "`service_unavailable`: a store is down; `Retry-After`";
    let internal = "`internal_error`: an unexpected failure, logged with the request id";
    match endpoint.gate {
        Gate::Open => {}
        Gate::ApiKey => {
            say(
                "401",
                "`missing_api_key`, `malformed_api_key`, `invalid_api_key`, `revoked_api_key`, `expired_api_key` (past the key's `expires_at`), `network_not_allowed` (outside its `allowed_networks`) or `unsupported_credential`; with `WWW-Authenticate`",
            );
            if let Some((_, scope)) = endpoint.scopes.iter().find(|(m, _)| m == method) {
                say(
                    "403",
                    &format!(
                        "`insufficient_scope`: the key lacks `{}` (`required_scope`); with `WWW-Authenticate: Bearer realm=\"jobtactics\", error=\"insufficient_scope\", scope=\"{}\"`",
                        scope.as_str(),
                        scope.as_str()
                    ),
                );
            }
            say(
                "429",
                "`rate_limited`: the key's rate limit, or too many failed authentications from this address; `Retry-After`",
            );
            say("503", outage);
            say("500", internal);
        }
        Gate::Dashboard => {
            say(
                "401",
                "`missing_token`, `invalid_token` or `api_key_not_accepted`; with `WWW-Authenticate`",
            );
            if matches!(*method, Method::GET | Method::HEAD) {
                say(
                    "429",
                    "`rate_limited`: too many failed authentications from this address; `Retry-After`",
                );
            } else {
                say(
                    "429",
                    "`rate_limited`: too many dashboard writes by this user, or too many failed authentications from this address; `Retry-After`",
                );
            }
            say("503", outage);
            say("500", internal);
        }
        Gate::SignIn => say(
            "429",
            "`rate_limited`: too many failed authentications from this address; `Retry-After`",
        ),
        Gate::Signed => {
            say("503", outage);
            say("500", internal);
        }
    }
    // What the handler reads before its own work.
    if op.request_body.is_some() {
        say(
            "400",
            "`invalid_request`: malformed JSON, wrong types, failed validation, or a body that is not `application/json` (`field` names the field at fault)",
        );
        say(
            "408",
            "`request_timeout`: the body did not arrive within 10 seconds",
        );
        let limit = endpoint.body_limit.unwrap_or(BODY_LIMIT);
        say(
            "413",
            &format!(
                "`payload_too_large`: the body is over the limit ({})",
                size(limit)
            ),
        );
    } else if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
        say(
            "400",
            "`invalid_request`: a bad path, query or header parameter (`field` names it)",
        );
    }
    answers
}

/// `65536` → `64 KiB`, `1048576` → `1 MiB`.
fn size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// Adds `status` to `op`'s responses, or its description to the one already there (the
/// handler's own comes first).
fn add(op: &mut Operation, status: &str, description: &str) {
    let responses = &mut op.responses.responses;
    match responses.get_mut(status) {
        Some(RefOr::T(response)) => {
            if !response.description.contains(description) {
                response.description = format!("{}; or {description}", response.description);
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            responses.insert(status.to_owned(), error(description));
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

#[cfg(test)]
mod tests {
    use keys_domain::Email;
    use keys_domain::allowed_networks::AllowedNetworks;
    use proptest::prelude::*;
    use proptest::string::string_regex;
    use utoipa::OpenApi as _;

    use super::ApiDoc;

    /// A pattern of the document, without the anchors proptest's generator does not take.
    fn pattern(pointer: &str) -> String {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let anchored = doc.pointer(pointer).and_then(|v| v.as_str()).unwrap();
        anchored
            .strip_prefix('^')
            .and_then(|p| p.strip_suffix('$'))
            .unwrap()
            .to_owned()
    }

    // A client that trusts the document (a generated client, a property-based tester) sends
    // anything its patterns allow: each must be accepted, not answered 400.
    proptest! {
        #[test]
        fn every_network_the_document_allows_is_accepted(
            cidr in string_regex(&pattern("/components/schemas/Cidr/pattern")).unwrap()
        ) {
            prop_assert!(AllowedNetworks::parse([cidr.as_str()]).is_ok(), "{cidr:?}");
        }

        #[test]
        fn every_email_the_document_allows_is_accepted(
            email in string_regex(
                &pattern("/components/schemas/EmailLinkRequest/properties/email/pattern")
            ).unwrap()
        ) {
            prop_assume!(email.chars().count() <= 254);
            prop_assert!(Email::parse(&email).is_ok(), "{email:?}");
        }
    }
}
