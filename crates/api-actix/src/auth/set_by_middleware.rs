//! What an authenticating middleware left on the request, handed out by the extractors.

use std::future::{Ready, ready};

use actix_web::{HttpMessage as _, HttpRequest};

use crate::error::{ApiError, Unauthorized};

/// The `T` a middleware stored in the request's extensions. Absent means a route was mounted
/// without that middleware: a wiring bug, logged, and answered as an unauthenticated request
/// (`otherwise`), so the route fails closed with the 401 its gate would give.
pub(crate) fn set_by_middleware<T: Clone + 'static>(
    req: &HttpRequest,
    otherwise: Unauthorized,
) -> Ready<Result<T, ApiError>> {
    let found = req.extensions().get::<T>().cloned();
    ready(found.ok_or_else(|| {
        tracing::error!(
            path = req.path(),
            "a route was mounted without its authentication middleware; answered 401"
        );
        ApiError::from(otherwise)
    }))
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError as _;
    use actix_web::test::TestRequest;

    use super::*;

    #[derive(Clone)]
    struct Gate;

    #[test]
    fn a_route_without_its_middleware_answers_401_not_500() {
        let req = TestRequest::default().to_http_request();
        let Err(e) = set_by_middleware::<Gate>(&req, Unauthorized::MissingToken).into_inner()
        else {
            panic!("nothing was set");
        };
        assert_eq!(e.status_code(), 401);
        req.extensions_mut().insert(Gate);
        assert!(
            set_by_middleware::<Gate>(&req, Unauthorized::MissingToken)
                .into_inner()
                .is_ok()
        );
    }
}
