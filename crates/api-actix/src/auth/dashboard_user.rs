//! The dashboard user of a request, as the dashboard gate (`dashboard_gate`) authenticated it.

use std::future::Ready;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use keys_domain::UserId;

use super::set_by_middleware::set_by_middleware;
use crate::error::{ApiError, Unauthorized};

/// The dashboard user a request's JWT authenticates.
#[derive(Debug, Clone)]
pub struct DashboardUser {
    pub user_id: UserId,
}

impl FromRequest for DashboardUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    /// Set by `dashboard_gate::require_dashboard_user`, which every dashboard route sits behind
    /// (so the token is checked before any body is read); absent means a route was mounted
    /// without it: a wiring bug, answered as a request without a token.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        set_by_middleware(req, Unauthorized::MissingToken)
    }
}
