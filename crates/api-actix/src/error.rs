//! The one HTTP error type. Every domain error becomes an [`ApiError`] here, and every
//! [`ApiError`] becomes the contract's JSON body, status and headers here — nowhere else.

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use keys_domain::MalformedKey;
use keys_domain::credits::InsufficientCredits;
use keys_domain::monthly_spend::KeyLimitReached;
use keys_domain::ports::StoreError;
use keys_domain::rate_limit::RateDecision;
use keys_domain::scope::Scope;
use keys_domain::use_cases::{
    AdmitError, AuthError, DocumentLookupError, ExchangeError, IdempotencyError, IssueKeyError,
    KeyEventsError, KeyLookupError, LeakReportError, PurchaseError, RenderError, RotateKeyError,
    SignOutError, UpdateKeyError,
};
use serde_json::{Map, Value, json};

use crate::json_response::json_bytes;
use crate::rate_limit_headers::insert_rate_limit_headers;
use crate::request_id::{self, RequestId};
use keys_domain::ports::TokenError;

/// Seconds a client is told to wait when a store is down.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 1;

/// `WWW-Authenticate` without / with a presented credential.
const CHALLENGE: &str = "Bearer realm=\"jobtactics\"";
const CHALLENGE_INVALID: &str = "Bearer realm=\"jobtactics\", error=\"invalid_token\"";

/// `{"error": {...}}`, members in the contract's order: `type`, `message`, then extras.
#[derive(serde::Serialize)]
struct ErrorBody {
    error: ErrorObject,
}

#[derive(serde::Serialize)]
struct ErrorObject {
    #[serde(rename = "type")]
    kind: &'static str,
    message: Cow<'static, str>,
    #[serde(flatten)]
    extras: Map<String, Value>,
    /// The `X-Request-Id` of the response, on every error answered within a request.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<RequestId>,
}

/// Why a request is not authenticated: every 401 of the contract, in one place.
#[derive(Debug, Clone)]
pub enum Unauthorized {
    MissingApiKey,
    /// Not a well-formed key; the reason never contains the key.
    MalformedApiKey(MalformedKey),
    /// `Bearer` with no token or several.
    NotOneApiKey,
    InvalidApiKey,
    RevokedApiKey,
    /// Past its `expires_at`.
    ExpiredApiKey,
    /// From an address outside its `allowed_networks`.
    NetworkNotAllowed,
    /// A JWT or another scheme on an endpoint that takes API keys.
    UnsupportedCredential,
    MissingToken,
    /// Not exactly one `Bearer` token on a dashboard endpoint.
    NotOneBearerToken,
    InvalidToken(TokenError),
    /// A valid token naming a user who does not exist (any more).
    TokenUserGone,
    ApiKeyNotAccepted,
    /// A secret-scanning report whose signature is missing or does not verify.
    InvalidSignature(&'static str),
    /// A sign-in link's token that is unknown, used or expired.
    InvalidSignInLink,
}

impl Unauthorized {
    /// The contract's `type`, the message, and whether a credential was presented.
    fn row(&self) -> (&'static str, Cow<'static, str>, bool) {
        match self {
            Self::MissingApiKey => (
                "missing_api_key",
                "no API key was sent; send `Authorization: Bearer jt_sk_...`".into(),
                false,
            ),
            Self::MalformedApiKey(reason) => (
                "malformed_api_key",
                format!("the API key is malformed: {reason}").into(),
                true,
            ),
            Self::NotOneApiKey => (
                "malformed_api_key",
                "the API key is malformed: send exactly one token after `Bearer `".into(),
                true,
            ),
            Self::InvalidApiKey => ("invalid_api_key", "the API key is not valid".into(), true),
            Self::RevokedApiKey => (
                "revoked_api_key",
                "the API key has been revoked".into(),
                true,
            ),
            Self::ExpiredApiKey => (
                "expired_api_key",
                "the API key has expired; create a new key in the dashboard".into(),
                true,
            ),
            Self::NetworkNotAllowed => (
                "network_not_allowed",
                "the API key may not be used from this network (see its allowed_networks)".into(),
                true,
            ),
            Self::UnsupportedCredential => (
                "unsupported_credential",
                "this endpoint accepts only API keys (`Authorization: Bearer jt_sk_...`)".into(),
                true,
            ),
            Self::MissingToken => (
                "missing_token",
                "no dashboard token was sent; send `Authorization: Bearer <token>`".into(),
                false,
            ),
            Self::NotOneBearerToken => (
                "invalid_token",
                "send `Authorization: Bearer <token>` with exactly one token".into(),
                true,
            ),
            Self::InvalidToken(e) => ("invalid_token", e.to_string().into(), true),
            Self::TokenUserGone => (
                "invalid_token",
                "the token's user does not exist".into(),
                true,
            ),
            Self::ApiKeyNotAccepted => (
                "api_key_not_accepted",
                "API keys are not accepted here; use a dashboard token".into(),
                true,
            ),
            Self::InvalidSignature(why) => (
                "invalid_signature",
                format!("the report's signature is not valid: {why}").into(),
                true,
            ),
            Self::InvalidSignInLink => (
                "invalid_token",
                "the sign-in link is unknown, already used or expired; ask for a new one".into(),
                true,
            ),
        }
    }
}

/// Every error the API answers with. Messages never contain a presented credential.
#[derive(Debug, Clone)]
pub enum ApiError {
    InvalidRequest {
        message: String,
        field: Option<String>,
    },
    Unauthorized(Unauthorized),
    /// With where to top up (`JT_TOP_UP_URL`), which the 402 body names.
    InsufficientCredits {
        shortfall: InsufficientCredits,
        top_up_url: Arc<str>,
    },
    /// The charge would pass the key's monthly credit limit.
    KeyCreditLimitReached(KeyLimitReached),
    TemplateNotPurchased,
    /// The key lacks the scope the endpoint needs.
    InsufficientScope(Scope),
    NotFound(Cow<'static, str>),
    /// The methods the resource serves, for `Allow`.
    MethodNotAllowed(Cow<'static, str>),
    Conflict(String),
    /// An `Idempotency-Key` sent again with another method, path or body.
    IdempotencyKeyReused,
    PayloadTooLarge,
    /// A secret-scanning report over 1 MiB.
    ReportTooLarge,
    /// The body did not arrive in time; the connection is closed.
    RequestTimeout,
    /// A body with a `Content-Encoding`: bodies are never decompressed.
    UnsupportedMediaType,
    RateLimited(RateDecision),
    /// A 429 that is not one key's rate limit (failed authentications per IP, dashboard writes
    /// per user): `Retry-After` but no key rate-limit headers.
    Throttled {
        message: &'static str,
        retry_after_seconds: u64,
    },
    ServiceUnavailable,
    /// A 503 by design: a bounded queue or a cap on work in flight is full. Answered like
    /// `ServiceUnavailable`, but not a failure of the service, so not logged per request (the
    /// component that refuses logs a count).
    Overloaded(&'static str),
    Internal,
    /// An error that actix or another middleware produced, answered in the contract's shape.
    Other {
        status: StatusCode,
        kind: &'static str,
        message: String,
    },
}

/// One variant's status, `type` and message (and, for a 401, whether a credential was sent).
struct Row {
    status: StatusCode,
    kind: &'static str,
    message: Cow<'static, str>,
    presented: Option<bool>,
}

fn row(status: StatusCode, kind: &'static str, message: impl Into<Cow<'static, str>>) -> Row {
    Row {
        status,
        kind,
        message: message.into(),
        presented: None,
    }
}

impl ApiError {
    /// A 400 about one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// A 400 about the request as a whole.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            field: None,
        }
    }

    /// The table: status, `type` and message of every variant.
    fn row(&self) -> Row {
        match self {
            Self::InvalidRequest { message, .. } => {
                row(StatusCode::BAD_REQUEST, "invalid_request", message.clone())
            }
            Self::Unauthorized(u) => {
                let (kind, message, presented) = u.row();
                Row {
                    presented: Some(presented),
                    ..row(StatusCode::UNAUTHORIZED, kind, message)
                }
            }
            Self::InsufficientCredits { shortfall, .. } => row(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_credits",
                shortfall.to_string(),
            ),
            Self::TemplateNotPurchased => row(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this template is premium and you have not purchased it",
            ),
            Self::KeyCreditLimitReached(_) => row(
                StatusCode::PAYMENT_REQUIRED,
                "key_credit_limit_reached",
                "this charge would pass the API key's monthly credit limit",
            ),
            Self::InsufficientScope(scope) => row(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!(
                    "the API key lacks the scope this endpoint needs: {}",
                    scope.as_str()
                ),
            ),
            Self::NotFound(message) => row(StatusCode::NOT_FOUND, "not_found", message.clone()),
            Self::MethodNotAllowed(_) => row(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this method is not allowed on this resource",
            ),
            Self::Conflict(message) => row(StatusCode::CONFLICT, "conflict", message.clone()),
            Self::IdempotencyKeyReused => row(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                IdempotencyError::Reused.to_string(),
            ),
            Self::PayloadTooLarge => row(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than 64 KiB",
            ),
            Self::ReportTooLarge => row(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the report is larger than 1 MiB",
            ),
            Self::RequestTimeout => row(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body did not arrive within 10 seconds",
            ),
            Self::UnsupportedMediaType => row(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "request bodies are never decompressed; send them without `Content-Encoding`",
            ),
            Self::RateLimited(_) => row(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests for this API key; retry after the delay given",
            ),
            Self::Throttled { message, .. } => {
                row(StatusCode::TOO_MANY_REQUESTS, "rate_limited", *message)
            }
            Self::ServiceUnavailable => row(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "a service this request needs is temporarily unavailable; retry shortly",
            ),
            Self::Overloaded(message) => row(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                *message,
            ),
            Self::Internal => row(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "an internal error occurred",
            ),
            Self::Other {
                status,
                kind,
                message,
            } => row(*status, kind, message.clone()),
        }
    }

    /// The contract's error for a response of `status` that did not come from here (actix's
    /// own errors, another middleware's); `cause`'s message is kept for 4xx only.
    #[must_use]
    pub fn from_status(status: StatusCode, cause: Option<&actix_web::Error>) -> Self {
        let message =
            || cause.map_or_else(|| "the request is invalid".to_owned(), ToString::to_string);
        match status.as_u16() {
            400 => Self::invalid(message()),
            404 => Self::NotFound("no such route".into()),
            408 => Self::RequestTimeout,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            503 => Self::ServiceUnavailable,
            405 => Self::Other {
                status,
                kind: "method_not_allowed",
                message: message(),
            },
            429 => Self::Other {
                status,
                kind: "rate_limited",
                message: message(),
            },
            401 => Self::Other {
                status,
                kind: "invalid_token",
                message: message(),
            },
            403 => Self::Other {
                status,
                kind: "forbidden",
                message: message(),
            },
            _ if status.is_client_error() => Self::Other {
                status,
                kind: "invalid_request",
                message: message(),
            },
            _ => Self::Internal,
        }
    }

    /// The contract's `type`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.row().kind
    }

    /// Extra members of the error object, for the few variants that have them.
    fn extras(&self, body: &mut Map<String, Value>) {
        match self {
            Self::InvalidRequest {
                field: Some(field), ..
            } => {
                body.insert("field".into(), json!(field));
            }
            Self::InsufficientCredits {
                shortfall,
                top_up_url,
            } => {
                body.insert("required".into(), json!(shortfall.required.get()));
                body.insert("balance".into(), json!(shortfall.balance.get()));
                body.insert("top_up_url".into(), json!(top_up_url.as_ref()));
            }
            Self::TemplateNotPurchased => {
                body.insert("reason".into(), json!("template_not_purchased"));
            }
            Self::KeyCreditLimitReached(r) => {
                body.insert("limit".into(), json!(r.limit.get()));
                body.insert("spent".into(), json!(r.spent.get()));
                body.insert("resets_at".into(), json!(r.resets_at.to_rfc3339()));
            }
            Self::InsufficientScope(scope) => {
                body.insert("required_scope".into(), json!(scope.as_str()));
            }
            Self::RateLimited(d) => {
                body.insert("retry_after".into(), json!(d.retry_after_seconds()));
            }
            Self::Throttled {
                retry_after_seconds,
                ..
            } => {
                body.insert("retry_after".into(), json!(retry_after_seconds));
            }
            _ => {}
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.row().message)
    }
}

impl std::error::Error for ApiError {}

impl From<Unauthorized> for ApiError {
    fn from(u: Unauthorized) -> Self {
        Self::Unauthorized(u)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.row().status
    }

    fn error_response(&self) -> HttpResponse {
        let Row {
            status,
            kind,
            message,
            presented,
        } = self.row();
        let mut res = HttpResponseBuilder::new(status);
        match presented {
            Some(false) => {
                res.insert_header((header::WWW_AUTHENTICATE, CHALLENGE));
            }
            Some(true) => {
                res.insert_header((header::WWW_AUTHENTICATE, CHALLENGE_INVALID));
            }
            None => {}
        }
        match self {
            Self::RateLimited(d) => {
                res.insert_header((header::RETRY_AFTER, d.retry_after_seconds()));
            }
            Self::Throttled {
                retry_after_seconds,
                ..
            } => {
                res.insert_header((header::RETRY_AFTER, *retry_after_seconds));
            }
            Self::ServiceUnavailable | Self::Overloaded(_) => {
                res.insert_header((header::RETRY_AFTER, UNAVAILABLE_RETRY_AFTER_SECONDS));
            }
            Self::MethodNotAllowed(allow) => {
                res.insert_header((header::ALLOW, allow.as_ref()));
            }
            // RFC 6750 section 3.1.
            Self::InsufficientScope(scope) => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        "Bearer realm=\"jobtactics\", error=\"insufficient_scope\", scope=\"{}\"",
                        scope.as_str()
                    ),
                ));
            }
            // The rest of a body that did not arrive is not worth waiting for.
            Self::RequestTimeout => {
                res.force_close();
            }
            _ => {}
        }
        let mut res = res
            .insert_header(ContentType::json())
            .body(self.body(kind, message));
        if let Self::RateLimited(d) = self {
            insert_rate_limit_headers(res.headers_mut(), d);
        }
        res.extensions_mut().insert(ErrorType(kind));
        res
    }
}

/// The error `type` of a response this module built, for the telemetry that counts refusals.
#[derive(Debug, Clone, Copy)]
pub struct ErrorType(pub &'static str);

/// Only reachable if serializing a map of strings and numbers failed.
const FALLBACK_BODY: &[u8] =
    br#"{"error":{"type":"internal_error","message":"an internal error occurred"}}"#;

impl ApiError {
    /// The contract's JSON body.
    fn body(&self, kind: &'static str, message: Cow<'static, str>) -> Bytes {
        let mut extras = Map::new();
        self.extras(&mut extras);
        serialize_body(kind, message, extras)
    }
}

fn serialize_body(
    kind: &'static str,
    message: Cow<'static, str>,
    extras: Map<String, Value>,
) -> Bytes {
    let error = ErrorObject {
        kind,
        message,
        extras,
        request_id: request_id::current(),
    };
    json_bytes(&ErrorBody { error }).unwrap_or_else(|| Bytes::from_static(FALLBACK_BODY))
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // The store logs an outage's start and end; a line per request would flood.
            StoreError::Unavailable(_) => Self::ServiceUnavailable,
            StoreError::Internal(reason) => {
                tracing::error!(%reason, "store error");
                Self::Internal
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Malformed(m) => Unauthorized::MalformedApiKey(m).into(),
            AuthError::Unknown => Unauthorized::InvalidApiKey.into(),
            AuthError::Revoked => Unauthorized::RevokedApiKey.into(),
            AuthError::Expired => Unauthorized::ExpiredApiKey.into(),
            AuthError::NetworkNotAllowed => Unauthorized::NetworkNotAllowed.into(),
            AuthError::Store(s) => s.into(),
        }
    }
}

impl From<AdmitError> for ApiError {
    fn from(e: AdmitError) -> Self {
        match e {
            AdmitError::Auth(e) => e.into(),
            AdmitError::RateLimited(d) => Self::RateLimited(d),
        }
    }
}

// The domain's error messages are the user-facing ones; this layer adds status and `type`.

impl From<IssueKeyError> for ApiError {
    fn from(e: IssueKeyError) -> Self {
        match e {
            IssueKeyError::DuplicateName | IssueKeyError::TooManyKeys(_) => {
                Self::Conflict(e.to_string())
            }
            IssueKeyError::UnknownUser => Unauthorized::TokenUserGone.into(),
            IssueKeyError::Store(s) => s.into(),
        }
    }
}

impl From<ExchangeError> for ApiError {
    fn from(e: ExchangeError) -> Self {
        match e {
            ExchangeError::InvalidLink => Unauthorized::InvalidSignInLink.into(),
            ExchangeError::Store(s) => s.into(),
        }
    }
}

impl From<SignOutError> for ApiError {
    fn from(e: SignOutError) -> Self {
        match e {
            SignOutError::UnknownUser => Unauthorized::TokenUserGone.into(),
            SignOutError::Store(s) => s.into(),
        }
    }
}

impl From<KeyLookupError> for ApiError {
    fn from(e: KeyLookupError) -> Self {
        match e {
            KeyLookupError::NotFound => Self::NotFound(e.to_string().into()),
            KeyLookupError::Store(s) => s.into(),
        }
    }
}

impl From<KeyEventsError> for ApiError {
    fn from(e: KeyEventsError) -> Self {
        match e {
            KeyEventsError::NotFound => Self::NotFound(e.to_string().into()),
            KeyEventsError::List(e) => e.into(),
        }
    }
}

impl From<LeakReportError> for ApiError {
    fn from(e: LeakReportError) -> Self {
        match e {
            LeakReportError::InvalidSignature(why) => Unauthorized::InvalidSignature(why).into(),
            LeakReportError::Malformed(message) => Self::invalid(message),
            LeakReportError::Unavailable(reason) => {
                tracing::warn!(%reason, "a secret-scanning report cannot be handled now");
                Self::ServiceUnavailable
            }
        }
    }
}

impl From<RotateKeyError> for ApiError {
    fn from(e: RotateKeyError) -> Self {
        match e {
            RotateKeyError::NotFound => Self::NotFound(e.to_string().into()),
            RotateKeyError::DuplicateName
            | RotateKeyError::AlreadyRevoked
            | RotateKeyError::Expired
            | RotateKeyError::TooManyKeys(_)
            | RotateKeyError::Conflict => Self::Conflict(e.to_string()),
            RotateKeyError::Store(s) => s.into(),
        }
    }
}

impl From<UpdateKeyError> for ApiError {
    fn from(e: UpdateKeyError) -> Self {
        match e {
            UpdateKeyError::NotFound => Self::NotFound(e.to_string().into()),
            UpdateKeyError::Final(_) | UpdateKeyError::DuplicateName => {
                Self::Conflict(e.to_string())
            }
            UpdateKeyError::Store(s) => s.into(),
        }
    }
}

impl From<IdempotencyError> for ApiError {
    fn from(e: IdempotencyError) -> Self {
        match e {
            IdempotencyError::InProgress => Self::Conflict(e.to_string()),
            IdempotencyError::Reused => Self::IdempotencyKeyReused,
            IdempotencyError::Store(s) => s.into(),
        }
    }
}

// Keys reference their user, so an authenticated key without a user means it was deleted.
// The paid operations' errors are no `From`: a 402 names where to top up, which the caller
// passes (the app's `JT_TOP_UP_URL`), so no 402 can be built without it.

impl ApiError {
    /// A purchase's refusal; a 402 names `top_up_url`.
    #[must_use]
    pub fn of_purchase(e: PurchaseError, top_up_url: &Arc<str>) -> Self {
        match e {
            PurchaseError::TemplateNotFound => Self::NotFound(e.to_string().into()),
            PurchaseError::Insufficient(shortfall) => Self::InsufficientCredits {
                shortfall,
                top_up_url: top_up_url.clone(),
            },
            PurchaseError::UnknownUser => Unauthorized::InvalidApiKey.into(),
            PurchaseError::KeyRevoked => Unauthorized::RevokedApiKey.into(),
            PurchaseError::KeyLimitReached(r) => Self::KeyCreditLimitReached(r),
            PurchaseError::Store(s) => s.into(),
        }
    }

    /// A render's refusal; a 402 names `top_up_url`.
    #[must_use]
    pub fn of_render(e: RenderError, top_up_url: &Arc<str>) -> Self {
        match e {
            RenderError::TemplateNotFound => Self::NotFound(e.to_string().into()),
            RenderError::TemplateNotOwned => Self::TemplateNotPurchased,
            RenderError::Insufficient(shortfall) => Self::InsufficientCredits {
                shortfall,
                top_up_url: top_up_url.clone(),
            },
            RenderError::UnknownUser => Unauthorized::InvalidApiKey.into(),
            RenderError::KeyRevoked => Unauthorized::RevokedApiKey.into(),
            RenderError::KeyLimitReached(r) => Self::KeyCreditLimitReached(r),
            RenderError::Store(s) => s.into(),
        }
    }
}

impl From<DocumentLookupError> for ApiError {
    fn from(e: DocumentLookupError) -> Self {
        match e {
            DocumentLookupError::NotFound => Self::NotFound(e.to_string().into()),
            DocumentLookupError::Store(s) => s.into(),
        }
    }
}

/// The JSON 404 for any path no route matches.
pub async fn route_not_found() -> HttpResponse {
    ApiError::NotFound("no such route".into()).error_response()
}

/// The JSON 405 for a known path with a method it does not serve; `allow` lists those it does.
pub fn method_not_allowed(allow: impl Into<Cow<'static, str>>) -> HttpResponse {
    ApiError::MethodNotAllowed(allow.into()).error_response()
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;
    use keys_domain::Credits;

    use super::*;

    async fn body(e: &ApiError) -> Value {
        let res = e.error_response();
        serde_json::from_slice(&to_bytes(res.into_body()).await.unwrap()).unwrap()
    }

    #[actix_web::test]
    async fn insufficient_credits_names_required_balance_and_top_up() {
        let e = ApiError::InsufficientCredits {
            shortfall: InsufficientCredits {
                required: Credits::new(50),
                balance: Credits::new(7),
            },
            top_up_url: "https://shop.example.com/credits".into(),
        };
        assert_eq!(e.status_code(), StatusCode::PAYMENT_REQUIRED);
        let b = body(&e).await;
        assert_eq!(b["error"]["type"], "insufficient_credits");
        assert_eq!(b["error"]["required"], 50);
        assert_eq!(b["error"]["balance"], 7);
        assert_eq!(b["error"]["top_up_url"], "https://shop.example.com/credits");
    }

    #[actix_web::test]
    async fn a_store_outage_is_503_with_retry_after_never_401() {
        let e: ApiError = AuthError::Store(StoreError::Unavailable("down".into())).into();
        let res = e.error_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "1");
        assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[actix_web::test]
    async fn unauthorized_carries_the_challenge() {
        let missing = ApiError::from(Unauthorized::MissingApiKey).error_response();
        assert_eq!(
            missing.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            CHALLENGE
        );
        let bad = ApiError::from(Unauthorized::InvalidApiKey).error_response();
        assert_eq!(
            bad.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            CHALLENGE_INVALID
        );
        let b = body(&ApiError::invalid_field("name", "bad")).await;
        assert_eq!(b["error"]["field"], "name");
    }

    #[actix_web::test]
    async fn every_body_is_its_own_errors() {
        // Errors that share a type or a message, one after another: each body answers its own.
        let sequence: [ApiError; 8] = [
            Unauthorized::InvalidApiKey.into(),
            Unauthorized::InvalidApiKey.into(),
            Unauthorized::MalformedApiKey(MalformedKey::BadChecksum).into(),
            Unauthorized::MalformedApiKey(MalformedKey::MissingPrefix).into(),
            ApiError::NotFound("no such key".into()),
            ApiError::NotFound("no such template".into()),
            Unauthorized::RevokedApiKey.into(),
            Unauthorized::InvalidApiKey.into(),
        ];
        for e in &sequence {
            assert_eq!(
                body(e).await,
                json!({ "error": { "type": e.kind(), "message": e.to_string() } }),
                "{e:?}"
            );
        }
    }
}
