//! The API-key extractor of public endpoints: the credential header, then the `Admission` use
//! case (key, its expiry and networks → usage count → rate limit), then the route's scope.
//!
//! Public routes sit behind [`require_api_key`], which authenticates before any other extractor
//! (e.g. a JSON body) runs, so the order of checks is always credential → rate limit → scope →
//! the handler's ownership and credit checks. Handlers then take [`ApiKeyAuth`], which reads the
//! result from the request. The middleware also writes the rate-limit headers on every response
//! to an authenticated request, whatever its status.

use std::future::Ready;
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{ORIGIN, USER_AGENT};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use keys_domain::ApiKey;
use keys_domain::key_client::user_agent_token;
use keys_domain::rate_limit::RateDecision;
use keys_domain::scope::Scope;
use keys_domain::use_cases::{Admitted, Caller};

use super::bearer::{Credential, credential, looks_like_jwt};
use super::set_by_middleware::set_by_middleware;
use crate::error::{ApiError, Unauthorized};
use crate::rate_limit_headers::insert_rate_limit_headers;
use crate::state::AppState;

/// The scope each method of a public endpoint needs (the route table's column).
pub type Scopes = &'static [(Method, Scope)];

/// An authenticated, rate-limit-admitted API key.
#[derive(Debug, Clone)]
pub struct ApiKeyAuth {
    pub key: Arc<ApiKey>,
    pub rate: RateDecision,
}

impl ApiKeyAuth {
    /// Runs the checks. A malformed key is refused before any I/O; a store outage is 503.
    /// Every request that a key authenticates is counted, the rate-limited ones included.
    ///
    /// # Errors
    /// The 401s of the contract, 429, 503.
    pub async fn authenticate(req: &HttpRequest) -> Result<Self, ApiError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or(ApiError::Internal)?;
        // Before the credential is even parsed: a client over its failure limit costs nothing.
        let client = state.auth_failures.client(req);
        state.auth_failures.check(client)?;
        let auth = Self::authenticate_key(req, state, client).await;
        state.auth_failures.record(client, &auth).await;
        auth
    }

    async fn authenticate_key(
        req: &HttpRequest,
        state: &AppState,
        client: Option<IpAddr>,
    ) -> Result<Self, ApiError> {
        let token = match credential(req) {
            Credential::Missing => return Err(Unauthorized::MissingApiKey.into()),
            Credential::Other => return Err(Unauthorized::UnsupportedCredential.into()),
            Credential::MalformedBearer => return Err(Unauthorized::NotOneApiKey.into()),
            Credential::Bearer(token) if looks_like_jwt(token) => {
                return Err(Unauthorized::UnsupportedCredential.into());
            }
            Credential::Bearer(token) => token,
        };
        let headers = req.headers();
        let caller = Caller {
            addr: client,
            user_agent: user_agent_token(headers.get(USER_AGENT).and_then(|v| v.to_str().ok())),
            // A browser's request carries `Origin`; Node's and Deno's `fetch` send
            // `Sec-Fetch-Mode: cors` without it, which is server-side use.
            browser: headers.contains_key(ORIGIN),
        };
        let Admitted { key, rate } = state.admission.admit(token, caller).await?;
        Ok(Self {
            key: Arc::new(key),
            rate,
        })
    }
}

impl FromRequest for ApiKeyAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Routes with this extractor are mounted behind `require_api_key`; without it there is
        // nothing to read: a wiring bug, answered as a request without a key.
        set_by_middleware(req, Unauthorized::MissingApiKey)
    }
}

/// Middleware of the public scope: authenticate first (credential, expiry, network, rate
/// limit), then check the scope the method needs (`scopes`), then run the route, then add the
/// key's rate-limit headers.
///
/// # Errors
/// Only what the inner service returns as an error (handlers' errors are responses).
pub async fn require_api_key(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    scopes: Scopes,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    match ApiKeyAuth::authenticate(req.request()).await {
        Ok(auth) => {
            let rate = auth.rate;
            if let Some(missing) = missing_scope(&auth.key, req.method(), scopes) {
                let mut res = req.error_response(ApiError::InsufficientScope(missing));
                insert_rate_limit_headers(res.headers_mut(), &rate);
                return Ok(res.map_into_right_body());
            }
            req.extensions_mut().insert(auth);
            let mut res = next.call(req).await?;
            insert_rate_limit_headers(res.headers_mut(), &rate);
            Ok(res.map_into_left_body())
        }
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

/// The scope `method` needs (`HEAD` as `GET`) when the key lacks it.
fn missing_scope(key: &ApiKey, method: &Method, scopes: Scopes) -> Option<Scope> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    scopes
        .iter()
        .find(|(m, _)| m == method)
        .map(|(_, scope)| *scope)
        .filter(|scope| !key.controls.scopes.allows(*scope))
}
