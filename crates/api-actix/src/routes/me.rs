//! `GET /api/v1/public/me`: who a key authenticates as.

use actix_web::HttpResponse;
use keys_domain::scope::Scope;
use serde::Serialize;

use crate::auth::api_key::ApiKeyAuth;
use crate::json_response::json_response;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me<'a> {
    user_id: &'a str,
    key: KeySummary<'a>,
    /// The key's scopes (also under `key`), for a client that checks what it may do.
    #[schema(value_type = Vec<String>)]
    scopes: &'a [&'static str],
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeySummary<'a> {
    id: &'a str,
    name: &'a str,
    preview: &'a str,
    /// Any of `credits:read`, `documents:read`, `documents:write`, `templates:purchase`.
    #[schema(value_type = Vec<String>)]
    scopes: &'a [&'static str],
}

/// `GET /api/v1/public/me`.
#[utoipa::path(get, path = "/api/v1/public/me", operation_id = "getMe", tag = "public",
    description = "Who the key authenticates as. Free.",
    responses((status = 200, description = "The key's user and the key", body = Me)))]
pub async fn me(auth: ApiKeyAuth) -> HttpResponse {
    let k = &auth.key;
    let mut names = [""; Scope::ALL.len()];
    let mut n = 0;
    for scope in k.controls.scopes.iter() {
        names[n] = scope.as_str();
        n += 1;
    }
    let scopes = &names[..n];
    json_response(
        HttpResponse::Ok(),
        &Me {
            user_id: k.user_id.as_str(),
            key: KeySummary {
                id: k.id.as_str(),
                name: k.name.as_str(),
                preview: k.preview.as_str(),
                scopes,
            },
            scopes,
        },
    )
}
