//! `POST /api/v1/secret-scanning/github`: GitHub's secret-scanning partner endpoint.
//!
//! No API key or dashboard token: the signature is the credential. Its failures are not
//! counted by the per-IP limiter of failed authentications, and that limiter never refuses it,
//! so that a burst of bad requests from anyone cannot lock GitHub's shared addresses out
//! (`docs/secret-scanning.md`).
//!
//! Memory: a request whose signature headers are missing, malformed or name no current key is
//! refused before its body is read, and at most [`REPORTS_IN_FLIGHT`] reports are read and handled at once (503 with `Retry-After`
//! beyond), so bodies buffered at once stay under `REPORTS_IN_FLIGHT` × 1 MiB whatever the
//! number of connections.

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use keys_domain::report_digest::{ReportDigest, ReportDigester};
use keys_domain::use_cases::SignedReport;

use crate::dto::secret_scanning::{ReportedMatch, TokenLabelObject, parse_report};
use crate::error::ApiError;
use crate::log_throttle::{LOG_EVERY, LogThrottle};
use crate::openapi::ErrorBody;
use crate::prometheus::leaked_keys_revoked;
use crate::state::AppState;

/// Largest report accepted (1 MiB); larger is 413.
pub const REPORT_LIMIT: usize = 1024 * 1024;
/// Reports read and handled at once. GitHub sends a report per push that leaks, one at a time
/// per batch, and retries a 503.
pub const REPORTS_IN_FLIGHT: usize = 8;

const KEY_IDENTIFIER: &str = "Github-Public-Key-Identifier";

const SIGNATURE: &str = "Github-Public-Key-Signature";

/// Refusals for want of a slot: one log line per 10 s.
static SLOTS_FULL: LogThrottle = LogThrottle::new(LOG_EVERY);

/// Verifies, revokes what is ours and still works, answers one label per token.
#[utoipa::path(post, path = "/api/v1/secret-scanning/github", operation_id = "receiveSecretScanningReport", tag = "secret scanning",
    description = "GitHub's secret-scanning partner endpoint: the body is signed (ECDSA P-256, SHA-256) by GitHub; a reported key that is ours is revoked at once with reason `leaked`.",
    params(
        ("Github-Public-Key-Identifier" = String, Header, description = "Which of GitHub's published keys signed the body"),
        ("Github-Public-Key-Signature" = String, Header, description = "Base64 DER signature over the raw body bytes"),
    ),
    request_body = Vec<ReportedMatch>,
    responses(
        (status = 200, description = "One label per reported token", body = Vec<TokenLabelObject>),
        (status = 401, description = "`invalid_signature`: missing or bad signature; nothing was revoked", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: 8 reports are being handled, or GitHub's keys cannot be read (`Retry-After`); nothing was revoked", body = ErrorBody),
    ))]
pub async fn github(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    // Headers first: a report that cannot verify is refused before its body is read.
    state
        .leaks
        .check_headers(header(KEY_IDENTIFIER), header(SIGNATURE))
        .await?;
    let Ok(_slot) = state.report_slots.clone().try_acquire_owned() else {
        if let Some(n) = SLOTS_FULL.event(std::time::Instant::now()) {
            tracing::warn!(
                refused = n,
                "secret-scanning reports refused with 503: {REPORTS_IN_FLIGHT} are being read"
            );
        }
        return Err(ApiError::Overloaded(
            "too many secret-scanning reports are being handled; retry shortly",
        ));
    };
    let (body, body_digest) = read_body(&req, payload, &state).await?;
    let signed = SignedReport {
        key_identifier: header(KEY_IDENTIFIER),
        signature: header(SIGNATURE),
        body: &body,
        body_digest: &body_digest,
    };
    let outcome = state.leaks.receive(signed, parse_report).await?;
    leaked_keys_revoked(outcome.revoked);
    if outcome.revoked > 0 {
        tracing::warn!(
            tokens = outcome.labels.len(),
            revoked = outcome.revoked,
            "leaked keys reported by GitHub secret scanning were revoked"
        );
    } else {
        tracing::info!(
            tokens = outcome.labels.len(),
            "secret-scanning report handled"
        );
    }
    let labels: Vec<_> = outcome.labels.iter().map(TokenLabelObject::of).collect();
    Ok(HttpResponse::Ok().json(labels))
}

/// How much of a report over [`REPORT_LIMIT`] is read and thrown away before the 413.
const DISCARD_LIMIT: usize = 4 * REPORT_LIMIT;

/// The raw body, up to [`REPORT_LIMIT`], and its SHA-256, taken chunk by chunk as the body
/// streams in, within the body deadline.
async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(web::Bytes, ReportDigest), ApiError> {
    let mut payload = payload.into_inner();
    if declared_length(req).is_some_and(|n| n > REPORT_LIMIT) {
        // Refusing on the header alone would close the connection under a client that may
        // still be sending a megabyte, which then sees a broken pipe instead of the 413. Read
        // (and drop) what it sends first, within the same deadline.
        let _ = tokio::time::timeout(state.body_timeout, discard(&mut payload)).await;
        return Err(ApiError::ReportTooLarge);
    }
    let capacity = declared_length(req).unwrap_or(0);
    match tokio::time::timeout(
        state.body_timeout,
        hash_while_reading(&mut payload, capacity),
    )
    .await
    {
        Err(_) => Err(ApiError::RequestTimeout),
        Ok(Err(Overflow::TooLarge)) => Err(ApiError::ReportTooLarge),
        Ok(Err(Overflow::Unreadable)) => {
            Err(ApiError::invalid("the request body could not be read"))
        }
        Ok(Ok(read)) => Ok(read),
    }
}

/// Why a body was not read whole.
enum Overflow {
    TooLarge,
    Unreadable,
}

/// Reads every chunk into one buffer (at most [`REPORT_LIMIT`] bytes), hashing each as it
/// arrives.
async fn hash_while_reading(
    payload: &mut actix_web::dev::Payload,
    capacity: usize,
) -> Result<(web::Bytes, ReportDigest), Overflow> {
    let mut body = web::BytesMut::with_capacity(capacity.min(REPORT_LIMIT));
    let mut digest = ReportDigester::default();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Overflow::Unreadable)?;
        if body.len() + chunk.len() > REPORT_LIMIT {
            return Err(Overflow::TooLarge);
        }
        digest.update(&chunk);
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), digest.finish()))
}

/// The request's `Content-Length`, when it has a readable one.
fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads and drops the body, up to [`DISCARD_LIMIT`] bytes.
async fn discard(payload: &mut actix_web::dev::Payload) {
    let mut read = 0;
    while let Some(Ok(chunk)) = payload.next().await {
        read += chunk.len();
        if read > DISCARD_LIMIT {
            return;
        }
    }
}
