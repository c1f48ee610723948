//! A request with both `Content-Length` and `Transfer-Encoding` is refused (400) and its
//! connection closed (RFC 9112 §6.1): a proxy in front may frame the body by the other header,
//! and whatever it reads as a second request would be smuggled past it.
//!
//! Closing is not enough on its own: actix answers requests it already read from the same
//! connection (pipelined behind the refused one) before it closes. So the refusal also marks the
//! connection, and every later request on it gets the same 400.

use std::any::Any;
use std::cell::Cell;

use actix_web::HttpRequest;
use actix_web::dev::Extensions;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

use crate::error::ApiError;

/// Per-connection mark: a request on this connection had ambiguous framing.
#[derive(Debug, Default)]
pub struct AmbiguousFraming(Cell<bool>);

/// `HttpServer::on_connect` hook: every connection starts unmarked.
pub fn on_connect(_: &dyn Any, data: &mut Extensions) {
    data.insert(AmbiguousFraming::default());
}

/// # Errors
/// `invalid_request` when both framing headers are present, or an earlier request on the same
/// connection had both.
pub fn refuse_ambiguous_length(req: &HttpRequest) -> Result<(), ApiError> {
    let mark = req.conn_data::<AmbiguousFraming>();
    let headers = req.headers();
    let ambiguous = headers.contains_key(TRANSFER_ENCODING) && headers.contains_key(CONTENT_LENGTH);
    if ambiguous {
        if let Some(mark) = mark {
            mark.0.set(true);
        }
    }
    if ambiguous || mark.is_some_and(|m| m.0.get()) {
        Err(ApiError::invalid(
            "send either `Content-Length` or `Transfer-Encoding`, not both",
        ))
    } else {
        Ok(())
    }
}
