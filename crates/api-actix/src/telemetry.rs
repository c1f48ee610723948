//! Logs: `tracing` to stderr (stdout is for the CLI's JSON), one root span per request with its
//! request id, and the key only ever as its id (never a header, never the key).

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use crate::auth::api_key::ApiKeyAuth;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `RUST_LOG` overrides `default_filter`.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // tracing-actix-web emits a WARN for every response that carries an error, i.e. every 401,
    // 404 and 429: a log line per refused request is a flood under attack and costs a third of
    // the throughput of the 401 path. Our root span logs client errors at debug and server
    // errors at error already, so its middleware only speaks for errors.
    let filter = match "tracing_actix_web::middleware=error".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal; they cost formatting on every span.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The request's root span: tracing-actix-web's fields (method, route, status, request id, …;
/// no headers). Its end event names the authenticated key by id, never the key itself.
pub struct RootSpan;

impl RootSpanBuilder for RootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing_actix_web::root_span!(request)
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(res) => res.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        span.record("http.status_code", status.as_u16());
        // Client errors are routine (401s, 429s under load): debug, not a warning per request.
        // Server errors are logged with their cause. The event's fields are only built when it
        // will be written, and the key is named here rather than recorded on the span by the
        // hot path (the fmt layer formats a span record at once, logged or not).
        let server_error = status.is_server_error();
        if !server_error && !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let (error, key_id) = match outcome {
            Ok(res) => (
                res.response().error().map(ToString::to_string),
                res.request()
                    .extensions()
                    .get::<ApiKeyAuth>()
                    .map(|a| a.key.id.to_string()),
            ),
            Err(e) => (Some(e.to_string()), None),
        };
        if server_error {
            span.record("otel.status_code", "ERROR");
            tracing::error!(parent: &span, status = status.as_u16(), key_id = key_id.as_deref(), error = error.as_deref(), "request failed");
        } else {
            tracing::debug!(parent: &span, status = status.as_u16(), key_id = key_id.as_deref(), error = error.as_deref(), "request done");
        }
    }
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Returns the request id as `x-request-id`, so a client can quote it.
///
/// # Errors
/// What the inner service returns.
pub async fn request_id_header(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().map(ToString::to_string);
    let mut res = next.call(req).await?;
    if let Some(v) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    Ok(res)
}
