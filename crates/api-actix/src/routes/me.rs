//! `GET /api/v1/public/me`: who a key authenticates as.

use actix_web::HttpResponse;
use serde_json::json;

use crate::auth::api_key::ApiKeyAuth;

pub async fn me(auth: ApiKeyAuth) -> HttpResponse {
    let k = &auth.key;
    HttpResponse::Ok().json(json!({
        "user_id": k.user_id.as_str(),
        "key": { "id": k.id.as_str(), "name": k.name.as_str(), "preview": k.preview.as_str() },
    }))
}
