//! Logs and per-request observation.
//!
//! Logs: `tracing` to stderr (stdout is for the CLI's JSON), as text or (`JT_LOG_FORMAT=json`)
//! one JSON object per line; a record never spans lines. [`observe`] is the outermost middleware:
//! the request id and trace, the root span, the `X-Request-Id` response header, the HTTP
//! metrics, and the JSON shape of errors that other middleware produced.

use std::io::{self, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue, X_CONTENT_TYPE_OPTIONS};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};
use tracing::Instrument as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::auth::api_key::ApiKeyAuth;
use crate::error::{ApiError, ErrorType};
use crate::metric_names::{AUTH_FAILURES, HTTP_DURATION, HTTP_REQUESTS, RATE_LIMITED};
use crate::prometheus::RouteMetrics;
use crate::request_id::{RequestId, X_REQUEST_ID};
use crate::status_label::status_label;

/// `JT_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "`{other}` is not a log format; use `text` or `json`"
            )),
        }
    }
}

impl LogFormat {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// The filter: `RUST_LOG` when set (an invalid one is an error, not a silent fallback), else
/// `default_filter`.
///
/// # Errors
/// `RUST_LOG` is not a valid filter.
pub fn filter(default_filter: &str) -> anyhow::Result<EnvFilter> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            anyhow::ensure!(
                names_something_known(&v),
                "RUST_LOG `{v}` names no log level (error, warn, info, debug, trace, off) and no \
                 module of this service, so it would silence every line; e.g. RUST_LOG=warn"
            );
            EnvFilter::builder()
                .parse(&v)
                .map_err(|e| anyhow::anyhow!("RUST_LOG `{v}` is not a valid log filter: {e}"))?
        }
        Ok(_) | Err(std::env::VarError::NotPresent) => EnvFilter::new(default_filter),
        Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!("RUST_LOG is not valid UTF-8"),
    };
    Ok(filter)
}

/// Whether request spans carry `method` and `route` (JSON logs only, see [`observe`]).
static SPAN_DETAIL: AtomicBool = AtomicBool::new(false);

/// Levels a directive may name.
const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
/// The crates whose lines this service writes, by target prefix.
const KNOWN_TARGETS: [&str; 17] = [
    "api_actix",
    "adapters_",
    "keys_domain",
    "workers",
    "actix",
    "tokio",
    "hyper",
    "h2",
    "reqwest",
    "rustls",
    "diesel",
    "r2d2",
    "redis",
    "lettre",
    "tracing",
    "metrics",
    "mio",
];

/// Whether at least one of `RUST_LOG`'s directives is a level, or a target of this service
/// with a level: `warning` or `infoo` parse as a target nothing logs under, and would silence
/// the service without a word.
fn names_something_known(value: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .any(|directive| {
            let (target, level) = match directive.rsplit_once('=') {
                Some((target, level)) => (target, Some(level)),
                None if LEVELS.contains(&directive.to_ascii_lowercase().as_str()) => return true,
                None => (directive, None),
            };
            let target = target.split('[').next().unwrap_or(target);
            let known_target =
                target.is_empty() || KNOWN_TARGETS.iter().any(|known| target.starts_with(known));
            let known_level =
                level.is_none_or(|l| LEVELS.contains(&l.to_ascii_lowercase().as_str()));
            known_target && known_level
        })
}

/// Installs the global subscriber (a second call, in tests, keeps the first).
pub fn init(format: LogFormat, filter: EnvFilter) {
    SPAN_DETAIL.store(format == LogFormat::Json, Ordering::Relaxed);
    // A log that cannot be written (stderr's reader gone) is dropped: tracing's own report of
    // the failure would go to the same closed stderr, and `eprintln!` panics there.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(OneLine)
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder
            // Colour codes only for a person at a terminal; they cost formatting on every span.
            .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// stderr, one line per record: a line break inside a record (a multi-line message or field)
/// is written as `\n`, so that log shippers never split a record.
struct OneLine;

impl<'a> MakeWriter<'a> for OneLine {
    type Writer = OneLineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter
    }
}

struct OneLineWriter;

impl Write for OneLineWriter {
    /// The formatter hands over one whole record per call.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let body = buf.strip_suffix(b"\n").unwrap_or(buf);
        let mut err = io::stderr().lock();
        if body.contains(&b'\n') || body.contains(&b'\r') {
            let mut escaped = Vec::with_capacity(buf.len() + 16);
            for &b in body {
                match b {
                    b'\n' => escaped.extend_from_slice(b"\\n"),
                    b'\r' => escaped.extend_from_slice(b"\\r"),
                    _ => escaped.push(b),
                }
            }
            escaped.push(b'\n');
            err.write_all(&escaped)?;
        } else {
            err.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// `X-Content-Type-Options` on every answer.
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// The outermost middleware (see the module's documentation). The request id is the current
/// one ([`crate::request_id::current`]) while the request runs, so every error body quotes it.
///
/// # Errors
/// None: an error of the inner services becomes its JSON response here.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let started = Instant::now();
    let (id, trace) = RequestId::and_trace(req.headers());
    // Few fields: the fmt layer formats them on every request, logged or not. The method and
    // route pattern each cost a visible share of a bare request's instructions, so they
    // are recorded only for JSON logs, which a log pipeline reads by field; left empty, a field
    // costs nothing. The end event has them in both formats.
    let detailed = SPAN_DETAIL.load(Ordering::Relaxed);
    let span = tracing::info_span!(
        "request",
        method = tracing::field::Empty,
        route = tracing::field::Empty,
        request_id = id.as_str(),
        trace_id = trace.trace_id.as_str(),
        parent_span_id = trace.parent_id.as_deref(),
    );
    if detailed {
        span.record("method", req.method().as_str());
    }
    // No clone of the request may be held while it is routed (actix needs it unshared).
    let outcome = id
        .clone()
        .scope(next.call(req))
        .instrument(span.clone())
        .await;
    let mut res = match outcome {
        Ok(res) if res.status().as_u16() >= 400 && is_foreign_error(&res) => {
            let e = ApiError::from_status(res.status(), res.response().error());
            let res = res.into_response(id.clone().sync_scope(|| e.error_response()));
            res.map_into_right_body()
        }
        Ok(res) => res.map_into_left_body(),
        Err(e) => {
            // Unreachable with today's middleware (each answers its errors as responses); if
            // one ever returns an error, it is still answered in the contract's shape.
            let status = e.as_response_error().status_code();
            let api = ApiError::from_status(status, Some(&e));
            let mut response = id.clone().sync_scope(|| api.error_response());
            if let Ok(v) = HeaderValue::from_str(id.as_str()) {
                response.headers_mut().insert(X_REQUEST_ID.clone(), v);
            }
            response
                .headers_mut()
                .insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
            metrics::counter!(HTTP_REQUESTS, "route" => "unmatched", "status" => status_label(status))
                .increment(1);
            return Err(actix_web::error::InternalError::from_response(e, response).into());
        }
    };
    let status = res.status();
    count_refusal(&res);
    let route = match res.request().app_data::<RouteMetrics>() {
        Some(m) => {
            m.record(status, started.elapsed());
            m.route
        }
        None => {
            metrics::counter!(HTTP_REQUESTS, "route" => "unmatched", "status" => status_label(status))
                .increment(1);
            metrics::histogram!(HTTP_DURATION, "route" => "unmatched").record(started.elapsed());
            "unmatched"
        }
    };
    if detailed {
        span.record("route", route);
    }
    log_end(&span, &res, route);
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    // Every answer, JSON included (it echoes the client's `X-Request-Id`): never sniffed as
    // something a browser would run.
    res.headers_mut().insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    if crate::drain::draining() {
        res.response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(res)
}

/// Counts a refused credential (a 401, by its error `type`) or a rate limit (a 429, whichever
/// limit gave it).
fn count_refusal<B>(res: &ServiceResponse<B>) {
    match res.status() {
        StatusCode::UNAUTHORIZED => {
            let kind = res
                .response()
                .extensions()
                .get::<ErrorType>()
                .map_or("other", |t| t.0);
            metrics::counter!(AUTH_FAILURES, "type" => kind).increment(1);
        }
        StatusCode::TOO_MANY_REQUESTS => metrics::counter!(RATE_LIMITED).increment(1),
        _ => {}
    }
}

/// An error response that is not the contract's JSON (actix's own, or another middleware's,
/// e.g. CORS): rewritten, so that every error has the same shape and a `request_id`.
fn is_foreign_error<B>(res: &ServiceResponse<B>) -> bool {
    let json = res
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    !json
        && res
            .response()
            .error()
            .is_none_or(|e| e.as_error::<ApiError>().is_none())
}

/// Client errors are routine (401s, 429s under load): debug, not a line per request. Server
/// errors are logged with their cause. The fields are built only when the event is written, and
/// the key is named here by id, never the key itself.
fn log_end<B>(span: &tracing::Span, res: &ServiceResponse<B>, route: &str) {
    let status = res.status();
    // An overload refusal is a 503 by design, counted by the component that refuses; a
    // dependency's outage is logged by its start and end where it is seen (the store, Redis).
    // Neither is a line per request.
    let server_error = status.is_server_error()
        && !res
            .response()
            .error()
            .and_then(|e| e.as_error::<ApiError>())
            .is_some_and(|e| matches!(e, ApiError::Overloaded(_) | ApiError::ServiceUnavailable));
    if !server_error && !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let error = res.response().error().map(ToString::to_string);
    let key_id = res
        .request()
        .extensions()
        .get::<ApiKeyAuth>()
        .map(|a| a.key.id.to_string());
    let (method, path) = (res.request().method().as_str(), res.request().path());
    if server_error {
        tracing::error!(parent: span, method, path, status = status.as_u16(), route, key_id = key_id.as_deref(), error = error.as_deref(), "request failed");
    } else {
        tracing::debug!(parent: span, method, path, status = status.as_u16(), route, key_id = key_id.as_deref(), error = error.as_deref(), "request done");
    }
}

#[cfg(test)]
mod tests {
    use super::names_something_known;

    #[test]
    fn a_filter_must_name_a_level_or_a_target_of_this_service() {
        for known in [
            "warn",
            "INFO",
            "info,api_actix=debug",
            "api_actix",
            "adapters_postgres=trace",
            "api_actix[request]=debug",
            "=info",
            "warning,info",
        ] {
            assert!(names_something_known(known), "{known}");
        }
        for silent in [
            "warning",
            "infoo",
            "api_actx=debug",
            "foo=info",
            "api_actix=loud",
            ",",
        ] {
            assert!(!names_something_known(silent), "{silent}");
        }
    }
}
