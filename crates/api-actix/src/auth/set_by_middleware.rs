//! What an authenticating middleware left on the request, handed out by the extractors.

use std::future::{Ready, ready};

use actix_web::{HttpMessage as _, HttpRequest};

use crate::error::ApiError;

/// The `T` a middleware stored in the request's extensions. Absent means a route was mounted
/// without that middleware: a wiring bug, answered 500, never a client error.
pub(crate) fn set_by_middleware<T: Clone + 'static>(
    req: &HttpRequest,
) -> Ready<Result<T, ApiError>> {
    ready(
        req.extensions()
            .get::<T>()
            .cloned()
            .ok_or(ApiError::Internal),
    )
}
