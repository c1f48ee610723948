//! The JSON body extractor: size limit, content type, and errors that name the field at fault,
//! all as the contract's JSON errors (never actix's plain-text ones).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::ApiError;
use crate::state::AppState;

/// Largest accepted request body (64 KiB); larger is 413.
pub const BODY_LIMIT: usize = 64 * 1024;
/// How long a body may take to arrive when no state configures it (docs/api.md).
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// A request body parsed as JSON into a DTO.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let raw = JsonBytes::from_request(req, payload);
        Box::pin(async move { parse(&raw.await?.0).map(JsonBody) })
    }
}

/// A JSON request body as received, checked for size, content type and arrival time but not
/// parsed: for handlers that also need the exact bytes (an `Idempotency-Key` fingerprint).
#[derive(Debug)]
pub struct JsonBytes(pub web::Bytes);

impl FromRequest for JsonBytes {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = check_content_type(req);
        let body = web::Bytes::from_request(req, payload);
        // A body trickled in a byte at a time would otherwise hold its connection forever.
        let deadline = req
            .app_data::<web::Data<AppState>>()
            .map_or(BODY_TIMEOUT, |s| s.body_timeout);
        Box::pin(async move {
            content_type?;
            let bytes = tokio::time::timeout(deadline, body)
                .await
                .map_err(|_| ApiError::RequestTimeout)?
                .map_err(|e| payload_error(&e))?;
            Ok(JsonBytes(bytes))
        })
    }
}

/// The body must be declared JSON (`application/json` or `…+json`); a body sent as a form (curl's
/// `-d` default) or with no type at all gets a message that says what to send.
fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(CONTENT_TYPE) else {
        return Err(ApiError::invalid(
            "the body must be JSON sent with `Content-Type: application/json`; this request has no Content-Type",
        ));
    };
    let sent = value.to_str().unwrap_or("");
    let essence = sent
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        let shown: String = essence.chars().take(100).collect();
        Err(ApiError::invalid(format!(
            "the body must be JSON sent with `Content-Type: application/json`; this request's Content-Type is `{shown}`"
        )))
    }
}

fn payload_error(e: &actix_web::Error) -> ApiError {
    match e.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => ApiError::PayloadTooLarge,
        _ => ApiError::invalid("the request body could not be read"),
    }
}

/// Parses `bytes`; the error names the field when one is at fault.
///
/// # Errors
/// `invalid_request`.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("a JSON body is required"));
    }
    // The well-formed body, the common case, without the path tracking (a measurable share of a
    // paid request's CPU); only a failure is parsed again to name the field at fault.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            // serde reads a struct from an array too; the contract's bodies are objects.
            Category::Data if path.starts_with('[') => {
                ApiError::invalid("the body must be a JSON object")
            }
            Category::Data if path != "." => ApiError::invalid_field(
                path.clone(),
                format!("`{path}` is invalid: {}", scrub(&inner.to_string())),
            ),
            Category::Data => ApiError::invalid(format!(
                "the body is invalid: {}",
                scrub(&inner.to_string())
            )),
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::invalid(format!("the body is not valid JSON: {inner}"))
            }
        }
    })?;
    de.end()
        .map_err(|_| ApiError::invalid("the body has trailing characters after the JSON value"))?;
    Ok(value)
}

/// serde quotes the offending value in its messages; a value that holds a key must not come back.
fn scrub(message: &str) -> String {
    if message.contains(keys_domain::key_secret::PREFIX) {
        "wrong type or value".to_owned()
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Dto {
        name: Option<String>,
        fields: Option<BTreeMap<String, String>>,
        n: Option<i64>,
    }

    fn field(r: Result<Dto, ApiError>) -> Option<String> {
        match r {
            Err(ApiError::InvalidRequest { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(field(parse(br#"{"name": 5}"#)).as_deref(), Some("name"));
        assert_eq!(
            field(parse(br#"{"fields": {"a": 1}}"#)).as_deref(),
            Some("fields.a")
        );
        assert_eq!(field(parse(br#"{"n": 1.5}"#)).as_deref(), Some("n"));
        assert_eq!(field(parse(br#"{"name": "#)), None);
        assert_eq!(field(parse(b"[1]")), None);
        assert_eq!(field(parse(b"  ")), None);
        assert_eq!(field(parse(br#"{} x"#)), None);
        assert!(parse::<Dto>(br#"{"name": "ci", "other": 1}"#).is_ok());
    }

    #[test]
    fn never_echoes_a_key() {
        let key = keys_domain::ApiKeySecret::generate(&keys_domain::random::OsRandom);
        let body = format!(r#"{{"n": "{}"}}"#, key.expose());
        let Err(e) = parse::<Dto>(body.as_bytes()) else {
            panic!()
        };
        assert!(!e.to_string().contains(key.expose()));
    }
}
