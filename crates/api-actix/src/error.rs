//! The one HTTP error type. Every domain error becomes an [`ApiError`] here, and every
//! [`ApiError`] becomes the contract's JSON body, status and headers here — nowhere else.

use std::cell::RefCell;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use keys_domain::credits::InsufficientCredits;
use keys_domain::ports::StoreError;
use keys_domain::rate_limit::RateDecision;
use keys_domain::use_cases::{
    AuthError, DocumentLookupError, IssueKeyError, KeyLookupError, PurchaseError, RenderError,
    RotateKeyError,
};
use serde_json::{Map, Value, json};

use crate::json_response::json_bytes;
use crate::rate_limit_headers::insert_rate_limit_headers;

/// Where customers top up (the 402 body names it).
pub const TOP_UP_URL: &str = "https://app.jobtactics.io/credits";

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
    message: String,
    #[serde(flatten)]
    extras: Map<String, Value>,
}

/// Every error the API answers with. Messages never contain a presented credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidRequest {
        message: String,
        field: Option<String>,
    },
    #[error("no API key was sent; send `Authorization: Bearer jt_sk_...`")]
    MissingApiKey,
    /// The reason, e.g. "the key's checksum does not match"; never the key itself.
    #[error("the API key is malformed: {0}")]
    MalformedApiKey(String),
    #[error("the API key is not valid")]
    InvalidApiKey,
    #[error("the API key has been revoked")]
    RevokedApiKey,
    #[error("this endpoint accepts only API keys (`Authorization: Bearer jt_sk_...`)")]
    UnsupportedCredential,
    #[error("no dashboard token was sent; send `Authorization: Bearer <token>`")]
    MissingToken,
    #[error("{0}")]
    InvalidToken(&'static str),
    #[error("API keys are not accepted here; use a dashboard token")]
    ApiKeyNotAccepted,
    #[error("{0}")]
    InsufficientCredits(InsufficientCredits),
    #[error("this template is premium and you have not purchased it")]
    TemplateNotPurchased,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("this method is not allowed on this resource")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("too many requests for this API key; retry after the delay given")]
    RateLimited(RateDecision),
    #[error("a service this request needs is temporarily unavailable; retry shortly")]
    ServiceUnavailable,
    #[error("an internal error occurred")]
    Internal,
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

    /// The contract's `type`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid_request",
            Self::MissingApiKey => "missing_api_key",
            Self::MalformedApiKey(_) => "malformed_api_key",
            Self::InvalidApiKey => "invalid_api_key",
            Self::RevokedApiKey => "revoked_api_key",
            Self::UnsupportedCredential => "unsupported_credential",
            Self::MissingToken => "missing_token",
            Self::InvalidToken(_) => "invalid_token",
            Self::ApiKeyNotAccepted => "api_key_not_accepted",
            Self::InsufficientCredits(_) => "insufficient_credits",
            Self::TemplateNotPurchased => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited(_) => "rate_limited",
            Self::ServiceUnavailable => "service_unavailable",
            Self::Internal => "internal_error",
        }
    }

    /// Extra members of the error object.
    fn extras(&self, body: &mut Map<String, Value>) {
        match self {
            Self::InvalidRequest {
                field: Some(field), ..
            } => {
                body.insert("field".into(), json!(field));
            }
            Self::InsufficientCredits(i) => {
                body.insert("required".into(), json!(i.required.get()));
                body.insert("balance".into(), json!(i.balance.get()));
                body.insert("top_up_url".into(), json!(TOP_UP_URL));
            }
            Self::TemplateNotPurchased => {
                body.insert("reason".into(), json!("template_not_purchased"));
            }
            Self::RateLimited(d) => {
                body.insert("retry_after".into(), json!(d.retry_after_seconds()));
            }
            _ => {}
        }
    }

    /// Whether the 401 answers a credential that was presented (vs. none at all).
    fn challenge(&self) -> Option<&'static str> {
        match self {
            Self::MissingApiKey | Self::MissingToken => Some(CHALLENGE),
            Self::MalformedApiKey(_)
            | Self::InvalidApiKey
            | Self::RevokedApiKey
            | Self::UnsupportedCredential
            | Self::InvalidToken(_)
            | Self::ApiKeyNotAccepted => Some(CHALLENGE_INVALID),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::MissingApiKey
            | Self::MalformedApiKey(_)
            | Self::InvalidApiKey
            | Self::RevokedApiKey
            | Self::UnsupportedCredential
            | Self::MissingToken
            | Self::InvalidToken(_)
            | Self::ApiKeyNotAccepted => StatusCode::UNAUTHORIZED,
            Self::InsufficientCredits(_) => StatusCode::PAYMENT_REQUIRED,
            Self::TemplateNotPurchased => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponseBuilder::new(self.status_code());
        if let Some(challenge) = self.challenge() {
            res.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        match self {
            Self::RateLimited(d) => {
                res.insert_header((header::RETRY_AFTER, d.retry_after_seconds()));
            }
            Self::ServiceUnavailable => {
                res.insert_header((header::RETRY_AFTER, UNAVAILABLE_RETRY_AFTER_SECONDS));
            }
            _ => {}
        }
        let mut res = res.insert_header(ContentType::json()).body(self.body());
        if let Self::RateLimited(d) = self {
            insert_rate_limit_headers(res.headers_mut(), d);
        }
        res
    }
}

thread_local! {
    /// The last body without extras built on this worker thread, by type and message. Refusals
    /// come in runs (a client retrying a bad key, a flood of random keys), and each one would
    /// otherwise serialize and escape the same JSON again.
    static LAST_BODY: RefCell<Option<(&'static str, String, Bytes)>> = const { RefCell::new(None) };
}

/// Only reachable if serializing a map of strings and numbers failed.
const FALLBACK_BODY: &[u8] =
    br#"{"error":{"type":"internal_error","message":"an internal error occurred"}}"#;

impl ApiError {
    /// The contract's JSON body.
    fn body(&self) -> Bytes {
        let mut extras = Map::new();
        self.extras(&mut extras);
        let (kind, message) = (self.kind(), self.to_string());
        if !extras.is_empty() {
            return serialize_body(kind, message, extras);
        }
        LAST_BODY.with_borrow_mut(|last| {
            if let Some((k, m, body)) = last
                && *k == kind
                && *m == message
            {
                return body.clone();
            }
            let body = serialize_body(kind, message.clone(), Map::new());
            *last = Some((kind, message, body.clone()));
            body
        })
    }
}

fn serialize_body(kind: &'static str, message: String, extras: Map<String, Value>) -> Bytes {
    let error = ErrorObject {
        kind,
        message,
        extras,
    };
    json_bytes(&ErrorBody { error }).unwrap_or_else(|| Bytes::from_static(FALLBACK_BODY))
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "store unavailable");
                Self::ServiceUnavailable
            }
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
            AuthError::Malformed(m) => Self::MalformedApiKey(m.to_string()),
            AuthError::Unknown => Self::InvalidApiKey,
            AuthError::Revoked => Self::RevokedApiKey,
            AuthError::Store(s) => s.into(),
        }
    }
}

const KEY_NOT_FOUND: &str = "no such key";
const TOKEN_USER_GONE: &str = "the token's user does not exist";
const DUPLICATE_NAME: &str = "you already have a key with this name";

impl From<IssueKeyError> for ApiError {
    fn from(e: IssueKeyError) -> Self {
        match e {
            IssueKeyError::DuplicateName => Self::Conflict(DUPLICATE_NAME.into()),
            IssueKeyError::TooManyKeys(_) => Self::Conflict(e.to_string()),
            IssueKeyError::UnknownUser => Self::InvalidToken(TOKEN_USER_GONE),
            IssueKeyError::Store(s) => s.into(),
        }
    }
}

impl From<KeyLookupError> for ApiError {
    fn from(e: KeyLookupError) -> Self {
        match e {
            KeyLookupError::NotFound => Self::NotFound(KEY_NOT_FOUND),
            KeyLookupError::Store(s) => s.into(),
        }
    }
}

impl From<RotateKeyError> for ApiError {
    fn from(e: RotateKeyError) -> Self {
        match e {
            RotateKeyError::NotFound => Self::NotFound(KEY_NOT_FOUND),
            RotateKeyError::DuplicateName => Self::Conflict(DUPLICATE_NAME.into()),
            RotateKeyError::AlreadyRevoked
            | RotateKeyError::TooManyKeys(_)
            | RotateKeyError::Conflict => Self::Conflict(e.to_string()),
            RotateKeyError::Store(s) => s.into(),
        }
    }
}

const TEMPLATE_NOT_FOUND: &str = "no such template";
// Keys reference their user, so an authenticated key without a user means it was deleted.
const KEY_USER_GONE: AuthError = AuthError::Unknown;

impl From<PurchaseError> for ApiError {
    fn from(e: PurchaseError) -> Self {
        match e {
            PurchaseError::TemplateNotFound => Self::NotFound(TEMPLATE_NOT_FOUND),
            PurchaseError::Insufficient(i) => Self::InsufficientCredits(i),
            PurchaseError::UnknownUser => KEY_USER_GONE.into(),
            PurchaseError::Store(s) => s.into(),
        }
    }
}

impl From<RenderError> for ApiError {
    fn from(e: RenderError) -> Self {
        match e {
            RenderError::TemplateNotFound => Self::NotFound(TEMPLATE_NOT_FOUND),
            RenderError::TemplateNotOwned => Self::TemplateNotPurchased,
            RenderError::Insufficient(i) => Self::InsufficientCredits(i),
            RenderError::UnknownUser => KEY_USER_GONE.into(),
            RenderError::Store(s) => s.into(),
        }
    }
}

impl From<DocumentLookupError> for ApiError {
    fn from(e: DocumentLookupError) -> Self {
        match e {
            DocumentLookupError::NotFound => Self::NotFound("no such document"),
            DocumentLookupError::Store(s) => s.into(),
        }
    }
}

/// The JSON 404 for any path no route matches.
pub async fn route_not_found() -> HttpResponse {
    ApiError::NotFound("no such route").error_response()
}

/// The JSON 405 for a known path with a method it does not serve.
pub async fn method_not_allowed() -> HttpResponse {
    ApiError::MethodNotAllowed.error_response()
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
        let e = ApiError::InsufficientCredits(InsufficientCredits {
            required: Credits::new(50),
            balance: Credits::new(7),
        });
        assert_eq!(e.status_code(), StatusCode::PAYMENT_REQUIRED);
        let b = body(&e).await;
        assert_eq!(b["error"]["type"], "insufficient_credits");
        assert_eq!(b["error"]["required"], 50);
        assert_eq!(b["error"]["balance"], 7);
        assert_eq!(b["error"]["top_up_url"], TOP_UP_URL);
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
        let missing = ApiError::MissingApiKey.error_response();
        assert_eq!(
            missing.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            CHALLENGE
        );
        let bad = ApiError::InvalidApiKey.error_response();
        assert_eq!(
            bad.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            CHALLENGE_INVALID
        );
        let b = body(&ApiError::invalid_field("name", "bad")).await;
        assert_eq!(b["error"]["field"], "name");
    }

    #[actix_web::test]
    async fn a_reused_body_is_never_another_errors() {
        // The per-thread reuse keys on type and message: alternate errors that share one or
        // the other, and check every body against the error it answers.
        let sequence = [
            ApiError::InvalidApiKey,
            ApiError::InvalidApiKey,
            ApiError::MalformedApiKey("the key's checksum does not match".into()),
            ApiError::MalformedApiKey("the key does not start with `jt_sk_`".into()),
            ApiError::NotFound("no such key"),
            ApiError::NotFound("no such template"),
            ApiError::RevokedApiKey,
            ApiError::InvalidApiKey,
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
