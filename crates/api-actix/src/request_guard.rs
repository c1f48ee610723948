//! The first middleware every request meets: refusals that must happen before a body is read
//! or a route runs (body encoding, ambiguous framing). Each rule lives in its own module.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;

use crate::body_encoding::refuse_encoded_body;
use crate::open_connections::{Busy, BusyUntilSent};
use crate::request_framing::refuse_ambiguous_length;

/// Runs the checks; a refused request is answered at once and its connection closed (its body
/// was not read, so nothing after it on the connection can be trusted to start a request).
///
/// # Errors
/// Only what the inner service returns as an error.
pub async fn guard_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let busy = Busy::mark(req.request());
    match refuse_ambiguous_length(req.request()).and_then(|()| refuse_encoded_body(req.headers())) {
        Ok(()) => Ok(next
            .call(req)
            .await?
            .map_body(|_, body| BusyUntilSent::new(body, busy))
            .map_into_left_body()),
        Err(e) => {
            let mut res = req.error_response(e);
            res.response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
            Ok(res.map_into_right_body())
        }
    }
}
