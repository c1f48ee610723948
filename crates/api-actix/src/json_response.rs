//! JSON responses written into one buffer sized for them up front.
//!
//! `HttpResponseBuilder::json` serializes into an empty `Vec` that reallocates several times for
//! a body of a few hundred bytes; on the hot path (`/me`) that was a visible share of the
//! request. Cold routes keep `.json()`; error bodies are built in `error.rs`.

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, HttpResponseBuilder};
use serde::Serialize;

/// Larger than every hot-path body, so none of them reallocates.
const INITIAL_CAPACITY: usize = 384;

/// `builder`'s response with `value` as its JSON body.
pub fn json_response(mut builder: HttpResponseBuilder, value: &impl Serialize) -> HttpResponse {
    let mut body = Vec::with_capacity(INITIAL_CAPACITY);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => builder.insert_header(ContentType::json()).body(body),
        // Only a `Serialize` impl that fails can get here; ours are plain structs.
        Err(e) => {
            tracing::error!(error = %e, "a response body could not be serialized");
            HttpResponse::InternalServerError().finish()
        }
    }
}
