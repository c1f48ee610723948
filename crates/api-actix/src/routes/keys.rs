//! Dashboard key management: create, list, get, revoke, rotate, the audit trail.

use std::convert::Infallible;

use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use keys_domain::ports::KeyListQuery;
use keys_domain::{ApiKey, EventCursor, KeyId};

use crate::auth::dashboard_user::DashboardUser;
use crate::dto::key_clients::KeyClientObject;
use crate::dto::key_events::KeyEventObject;
use crate::dto::keys::{CreateKeyRequest, KeyObject, RotateKeyRequest, UpdateKeyRequest};
use crate::dto::pages::{ListKind, ListParams, PageOf};
use crate::dto::usage::KeyUsageBody;
use crate::error::ApiError;
use crate::idempotency::run_once;
use crate::json_body::{JsonBytes, parse};
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// On every response that carries a full key: no cache, shared or private, may keep it.
const NO_STORE: (actix_web::http::header::HeaderName, HeaderValue) =
    (CACHE_CONTROL, HeaderValue::from_static("no-store"));

/// `POST /api/v1/keys` → 201 with the key, shown this once (and to retries with the same
/// `Idempotency-Key`).
#[utoipa::path(post, path = "/api/v1/keys", operation_id = "createKey", tag = "dashboard",
    request_body = CreateKeyRequest,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "1-255 printable ASCII characters; a retry returns the same key (docs/api.md, Retries)")),
    responses(
        (status = 201, description = "The key object with `key`, the full key, shown this once (`Cache-Control: no-store`), or again to a retry with the same `Idempotency-Key` (`Idempotent-Replayed: true`)", body = KeyObject),
        (status = 409, description = "`conflict`: the name is taken, or 25 keys are not revoked, or a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the key came with another request", body = ErrorBody),
    ))]
pub async fn create(
    user: DashboardUser,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let (name, controls) =
        parse::<CreateKeyRequest>(&body.0)?.try_into_domain(state.clock.now())?;
    let work = {
        let (state, user) = (state.clone(), user.user_id.clone());
        move || async move {
            let issued = state.keys.issue(&user, name, controls).await?;
            tracing::info!(key_id = %issued.key.id, preview = issued.key.preview.as_str(), "key created");
            Ok(HttpResponse::Created()
                .insert_header(NO_STORE)
                .json(KeyObject::issued(&issued, state.clock.now())))
        }
    };
    run_once(&state, &req, &user.user_id, &body.0, work).await
}

/// `GET /api/v1/keys`: one page, newest first, optionally of one `status`.
#[utoipa::path(get, path = "/api/v1/keys", operation_id = "listKeys", tag = "dashboard",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
        ("starting_after" = Option<String>, Query, description = "the `id` of the last key of the previous page"),
        ("status" = Option<String>, Query, description = "`active`, `expiring`, `revoked` or `expired`"),
    ),
    responses((status = 200, description = "One page of key objects, newest first (never `key`)", body = PageOf<KeyObject>)))]
pub async fn list(
    user: DashboardUser,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = ListParams::from_request(&req, ListKind::WithStatus)?;
    let query = KeyListQuery {
        page: params.page(|id| Ok::<_, Infallible>(KeyId::new(id)))?,
        status: params.status,
    };
    let keys = state.keys.list(&user.user_id, &query).await?;
    let now = state.clock.now();
    let data = keys.items.iter().map(|k| KeyObject::of(k, now)).collect();
    Ok(HttpResponse::Ok().json(PageOf {
        data,
        has_more: keys.has_more,
    }))
}

/// `GET /api/v1/keys/{id}`.
#[utoipa::path(get, path = "/api/v1/keys/{id}", operation_id = "getKey", tag = "dashboard",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key object", body = KeyObject),
        (status = 404, description = "`not_found`: no such key, or another user's", body = ErrorBody),
    ))]
pub async fn get(
    user: DashboardUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = state
        .keys
        .get(&user.user_id, &KeyId::new(id.into_inner()))
        .await?;
    with_spend(&state, &key).await
}

/// The key object with `spent_this_month`.
async fn with_spend(state: &AppState, key: &ApiKey) -> Result<HttpResponse, ApiError> {
    let spent = state.keys.spent_this_month(key).await?;
    Ok(HttpResponse::Ok().json(KeyObject {
        spent_this_month: Some(spent.get()),
        ..KeyObject::of(key, state.clock.now())
    }))
}

/// `PATCH /api/v1/keys/{id}`: change the name or the controls.
#[utoipa::path(patch, path = "/api/v1/keys/{id}", operation_id = "updateKey", tag = "dashboard",
    request_body = UpdateKeyRequest,
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key object as changed; every instance applies the change within 1 s", body = KeyObject),
        (status = 400, description = "`invalid_request` with `field`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such key, or another user's", body = ErrorBody),
        (status = 409, description = "`conflict`: the key is revoked or expired, or the name is taken", body = ErrorBody),
    ))]
pub async fn update(
    user: DashboardUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let patch = parse::<UpdateKeyRequest>(&body.0)?.try_into_domain(state.clock.now())?;
    let key = state
        .keys
        .update(&user.user_id, &KeyId::new(id.into_inner()), patch)
        .await?;
    tracing::info!(key_id = %key.id, preview = key.preview.as_str(), "key updated");
    with_spend(&state, &key).await
}

/// `POST /api/v1/keys/{id}/revoke`, idempotent.
#[utoipa::path(post, path = "/api/v1/keys/{id}/revoke", operation_id = "revokeKey", tag = "dashboard",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key object, `status: revoked` (unchanged if it already was)", body = KeyObject),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn revoke(
    user: DashboardUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = state
        .keys
        .revoke(&user.user_id, &KeyId::new(id.into_inner()))
        .await?;
    tracing::info!(key_id = %key.id, preview = key.preview.as_str(), "key revoked");
    Ok(HttpResponse::Ok().json(KeyObject::of(&key, state.clock.now())))
}

/// `POST /api/v1/keys/{id}/rotate` → 201 with the new key, once per `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/keys/{id}/rotate", operation_id = "rotateKey", tag = "dashboard",
    params(
        ("id" = String, Path, description = "The key's id"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "1-255 printable ASCII characters; a retry returns the same new key"),
    ),
    request_body = RotateKeyRequest,
    responses(
        (status = 201, description = "The new key object with `key`, shown this once (or again to a retry with the same `Idempotency-Key`)", body = KeyObject),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: the key is revoked, or the name is taken, or a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the key came with another request", body = ErrorBody),
    ))]
pub async fn rotate(
    user: DashboardUser,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let (name, grace) = parse::<RotateKeyRequest>(&body.0)?.try_into_domain()?;
    let old = KeyId::new(id.into_inner());
    let work = {
        let (state, user) = (state.clone(), user.user_id.clone());
        move || async move {
            let issued = state.keys.rotate(&user, &old, name, grace).await?;
            tracing::info!(old_key_id = %old, key_id = %issued.key.id, "key rotated");
            Ok(HttpResponse::Created()
                .insert_header(NO_STORE)
                .json(KeyObject::issued(&issued, state.clock.now())))
        }
    };
    run_once(&state, &req, &user.user_id, &body.0, work).await
}

/// `GET /api/v1/keys/{id}/events`: one page of the key's audit trail, newest first.
#[utoipa::path(get, path = "/api/v1/keys/{id}/events", operation_id = "listKeyEvents", tag = "dashboard",
    params(
        ("id" = String, Path, description = "The key's id"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
        ("starting_after" = Option<String>, Query, description = "the `cursor` of the last event of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of the key's events, newest first", body = PageOf<KeyEventObject>),
        (status = 404, description = "`not_found`: no such key, or another user's", body = ErrorBody),
    ))]
pub async fn events(
    user: DashboardUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = ListParams::from_request(&req, ListKind::Plain)?;
    let key = KeyId::new(id.into_inner());
    let cursors = state.cursors.scoped(
        state.random.as_ref(),
        format!("events:{}:{}", user.user_id, key.as_str()),
    );
    let page = params.page(|text| cursors.open(text).map(EventCursor::from_stored))?;
    let events = state.audit.events(&user.user_id, &key, &page).await?;
    let data = events
        .items
        .iter()
        .map(|p| KeyEventObject::of(p, cursors.seal(p.cursor.as_stored())))
        .collect();
    Ok(HttpResponse::Ok().json(PageOf {
        data,
        has_more: events.has_more,
    }))
}

/// `GET /api/v1/keys/{id}/clients`: where the key is used, most recently seen first.
#[utoipa::path(get, path = "/api/v1/keys/{id}/clients", operation_id = "listKeyClients", tag = "dashboard",
    params(
        ("id" = String, Path, description = "The key's id"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
        ("starting_after" = Option<String>, Query, description = "the `cursor` of the last client of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of the key's clients (network and user agent, never a full address), most recently seen first; visible within 2 s of a request", body = PageOf<KeyClientObject>),
        (status = 404, description = "`not_found`: no such key, or another user's", body = ErrorBody),
    ))]
pub async fn clients(
    user: DashboardUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = ListParams::from_request(&req, ListKind::Plain)?;
    let key = KeyId::new(id.into_inner());
    let cursors = state.cursors.scoped(
        state.random.as_ref(),
        format!("clients:{}:{}", user.user_id, key.as_str()),
    );
    let page = params.page(|text| cursors.open(text))?;
    let clients = state.key_clients.list(&user.user_id, &key, &page).await?;
    let data = clients
        .items
        .iter()
        .map(|c| KeyClientObject::of(c, cursors.seal(c.position)))
        .collect();
    Ok(HttpResponse::Ok().json(PageOf {
        data,
        has_more: clients.has_more,
    }))
}

/// `GET /api/v1/keys/{id}/usage`: the last 24 whole hours and the current one, oldest first.
#[utoipa::path(get, path = "/api/v1/keys/{id}/usage", operation_id = "getKeyUsage", tag = "dashboard",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "25 hourly counts, oldest first", body = KeyUsageBody),
        (status = 404, description = "`not_found`: no such key, or another user's", body = ErrorBody),
    ))]
pub async fn usage(
    user: DashboardUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let hours = state
        .key_usage
        .hours(&user.user_id, &KeyId::new(id.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(KeyUsageBody::of(&hours)))
}
