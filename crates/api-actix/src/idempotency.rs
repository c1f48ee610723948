//! `Idempotency-Key` on the wire: the header, running a handler's work once per key, and the
//! replay. The records and the sealing are the `Idempotency` use case's (docs/idempotency.md).

use std::future::Future;

use actix_web::body::{BoxBody, to_bytes};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, ContentType, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use keys_domain::UserId;
use keys_domain::idempotency_key::IdempotencyKey;
use keys_domain::sealed_response::RecordedResponse;
use keys_domain::use_cases::{Begun, IdempotentRequest, Recorded};

use crate::error::ApiError;
use crate::request_id;
use crate::state::AppState;

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// On a replayed response: `true`.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// How the header is named in a 400's `field`.
const FIELD: &str = "Idempotency-Key";

/// The request's `Idempotency-Key`, if it sent one.
///
/// # Errors
/// `invalid_request` (with `field`) for a value that is not 1–255 printable ASCII characters,
/// or for the header sent twice.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::invalid_field(
            FIELD,
            "send the Idempotency-Key header once",
        ));
    }
    IdempotencyKey::parse(value.as_bytes())
        .map(Some)
        .map_err(|e| ApiError::invalid_field(FIELD, e.to_string()))
}

/// Runs `work` once per `Idempotency-Key` of `user`: without the header, just runs it (no
/// store call); with it, claims the key first and answers a replay, a 409 while the first
/// request runs, or a 422 for another request under the same key.
///
/// The claimed work runs in its own task, so a client that disconnects (a lost response, the
/// case retries are for) does not cancel it between its effect and its record.
///
/// # Errors
/// `invalid_request` (the header), `conflict`, `idempotency_key_reused`, a store error; and
/// whatever `work` returns.
pub async fn run_once<F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    user: &UserId,
    body: &[u8],
    work: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = Result<HttpResponse, ApiError>> + 'static,
{
    let Some(key) = idempotency_key(req)? else {
        return work().await;
    };
    let begun = state
        .idempotency
        .begin(IdempotentRequest {
            user,
            key: &key,
            method: req.method().as_str(),
            path: req.path(),
            body,
        })
        .await?;
    let in_flight = match begun {
        Begun::Replay(recorded) => return Ok(replay(&recorded)),
        Begun::Run(in_flight) => in_flight,
    };
    let records = state.idempotency.clone();
    // The task-local request id does not follow a spawned task: carry it over, so the work's
    // errors quote it like any other.
    let request_id = request_id::current();
    let task = actix_web::rt::spawn(async move {
        let run = async move { work().await.unwrap_or_else(|e| e.error_response()) };
        let response = match request_id {
            Some(id) => id.scope(run).await,
            None => run.await,
        };
        let (head, body) = response.into_parts();
        let Ok(bytes) = to_bytes(body).await else {
            // Our bodies are in memory; this does not happen. The key stays running.
            tracing::error!("an idempotent response body could not be read");
            return ApiError::Internal.error_response();
        };
        let recorded = RecordedResponse {
            status: head.status().as_u16(),
            body: bytes.to_vec(),
        };
        match records.finish(in_flight, &recorded).await {
            Ok(Recorded::Stored | Recorded::Released) => {}
            // The work is done (or refused) either way; the client gets its answer. A retry
            // gets 409 until the record expires: never a second execution.
            Err(e) => tracing::warn!(
                error = %e,
                status = recorded.status,
                "an idempotent request finished but its record was not updated"
            ),
        }
        head.set_body(BoxBody::new(bytes))
    });
    task.await.map_err(|e| {
        tracing::error!(error = %e, "an idempotent request's task failed");
        ApiError::Internal
    })
}

/// The first response again: its status and body, marked as a replay, never cached (a key
/// creation's body holds the full key).
fn replay(recorded: &RecordedResponse) -> HttpResponse {
    let status = StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::OK);
    HttpResponse::build(status)
        .insert_header(ContentType::json())
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")))
        .body(recorded.body.clone())
}
