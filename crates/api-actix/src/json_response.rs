//! JSON bodies written into one buffer sized for them up front.
//!
//! `HttpResponseBuilder::json` serializes into an empty `Vec` that reallocates several times for
//! a body of a few hundred bytes; on the hot paths (`/me`, the error bodies of refused keys) that
//! was a visible share of the request. Cold routes keep `.json()`.

use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, HttpResponseBuilder};
use serde::Serialize;

/// Larger than every hot-path body, so none of them reallocates.
const INITIAL_CAPACITY: usize = 384;

/// `value` as JSON, or `None` (logged) if its `Serialize` impl failed; ours are plain structs
/// and maps of strings and numbers, so that does not happen.
pub fn json_bytes(value: &impl Serialize) -> Option<Bytes> {
    let mut body = Vec::with_capacity(INITIAL_CAPACITY);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => Some(Bytes::from(body)),
        Err(e) => {
            tracing::error!(error = %e, "a response body could not be serialized");
            None
        }
    }
}

/// `builder`'s response with `value` as its JSON body.
pub fn json_response(mut builder: HttpResponseBuilder, value: &impl Serialize) -> HttpResponse {
    match json_bytes(value) {
        Some(body) => builder.insert_header(ContentType::json()).body(body),
        None => HttpResponse::InternalServerError().finish(),
    }
}
