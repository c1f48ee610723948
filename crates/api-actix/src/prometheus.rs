//! Prometheus metrics: one process-wide registry (the `metrics` crate's global recorder), served
//! as text on `JT_METRICS_BIND` by a listener of its own, apart from the API.
//!
//! Recording happens at the edges (the request middleware, the error mapping, the key cache
//! adapter, the paid handlers), never in `keys-domain`. With no listener configured the
//! recorder is not installed and every `counter!` is a no-op.

use std::cell::RefCell;
use std::net::TcpListener;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use keys_domain::ports::{AlertOutbox, Clock};
use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::telemetry::status_label;

/// Requests by `route` (the matched pattern, or `unmatched`) and `status`.
pub const HTTP_REQUESTS: &str = "jt_http_requests_total";
/// Request latency by `route`, in seconds.
pub const HTTP_DURATION: &str = "jt_http_request_duration_seconds";
/// Refused credentials by `type` (the error type of the 401).
pub const AUTH_FAILURES: &str = "jt_auth_failures_total";
/// 429s, whichever limit gave them.
pub const RATE_LIMITED: &str = "jt_rate_limited_total";
/// Credits debited by renders and purchases.
pub const CREDITS_DEBITED: &str = "jt_credits_debited_total";
/// Key lookups by `result`: `hit` (answered by the in-process cache) or `miss`.
pub const KEY_CACHE_REQUESTS: &str = "jt_key_cache_requests_total";
/// Alert emails waiting to be sent.
pub const ALERT_OUTBOX_PENDING: &str = "jt_alert_outbox_pending";
/// Age of the oldest of them, in seconds (0 when none waits).
pub const ALERT_OUTBOX_OLDEST_AGE: &str = "jt_alert_outbox_oldest_age_seconds";
/// Keys revoked because they were reported leaked.
pub const LEAKED_KEYS_REVOKED: &str = "jt_leaked_keys_revoked_total";
/// Sign-in link requests by `outcome`.
pub const SIGN_IN_LINK_REQUESTS: &str = "jt_sign_in_link_requests_total";
/// Label values of [`SIGN_IN_LINK_REQUESTS`]'s `outcome`.
pub const SIGN_IN_LINK_OUTCOMES: [&str; 5] = [
    "queued",
    "unknown_address",
    "too_many",
    "store_unavailable",
    "queue_full",
];
/// From a revocation on one instance to its announcement reaching this one, in seconds.
pub const REVOCATION_PROPAGATION: &str = "jt_revocation_propagation_seconds";

/// How often histograms are folded when nobody scrapes (bounds their memory).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Request latency buckets: the API answers in well under a millisecond when all is well.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];
/// Revocation propagation buckets, around the contract's 1 second.
const PROPAGATION_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The HTTP series of one route, registered once per worker: a request then costs a short
/// scan and two atomic updates instead of two look-ups in the registry.
pub struct RouteMetrics {
    /// The route pattern, e.g. `/api/v1/keys/{id}`.
    pub route: &'static str,
    duration: Histogram,
    /// Counters by status, in the order first seen (a route answers a handful of statuses).
    by_status: RefCell<Vec<(StatusCode, Counter)>>,
}

impl RouteMetrics {
    #[must_use]
    pub fn new(route: &'static str) -> Self {
        Self {
            route,
            duration: histogram!(HTTP_DURATION, "route" => route),
            by_status: RefCell::new(Vec::new()),
        }
    }

    /// One request of this route.
    pub fn record(&self, status: StatusCode, elapsed: Duration) {
        self.duration.record(elapsed);
        let Ok(mut cache) = self.by_status.try_borrow_mut() else {
            return;
        };
        if let Some((_, counter)) = cache.iter().find(|(s, _)| *s == status) {
            counter.increment(1);
        } else {
            let counter =
                counter!(HTTP_REQUESTS, "route" => self.route, "status" => status_label(status));
            counter.increment(1);
            cache.push((status, counter));
        }
    }
}

/// Keys revoked as leaked: the one line the leak handling calls.
pub fn leaked_keys_revoked(n: impl TryInto<u64>) {
    counter!(LEAKED_KEYS_REVOKED).increment(n.try_into().unwrap_or(0));
}

/// The registry, installed once per process (tests start many apps in one process; they share
/// it, so their assertions look for their own series).
///
/// # Errors
/// Another recorder was installed first.
pub fn registry() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(REVOCATION_PROPAGATION.into()),
                        PROPAGATION_BUCKETS,
                    )
                })
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| e.to_string())?;
            describe();
            Ok(handle)
        })
        .clone()
        .map_err(|e| anyhow::anyhow!("cannot install the metrics registry: {e}"))
}

/// Help texts, and the series that must read 0 before their first event.
fn describe() {
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route pattern and status");
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by route pattern"
    );
    describe_counter!(AUTH_FAILURES, "refused credentials by error type");
    describe_counter!(RATE_LIMITED, "requests refused with 429");
    describe_counter!(CREDITS_DEBITED, "credits debited by renders and purchases");
    describe_counter!(KEY_CACHE_REQUESTS, "API key lookups by cache result");
    describe_gauge!(ALERT_OUTBOX_PENDING, "alert emails waiting to be sent");
    describe_gauge!(
        ALERT_OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "age of the oldest alert email waiting to be sent"
    );
    describe_counter!(
        LEAKED_KEYS_REVOKED,
        "keys revoked because they were reported leaked"
    );
    describe_histogram!(
        REVOCATION_PROPAGATION,
        Unit::Seconds,
        "time from a revocation on another instance to this instance hearing of it"
    );
    describe_counter!(
        SIGN_IN_LINK_REQUESTS,
        "sign-in link requests by outcome (answered 202 unless queue_full)"
    );
    for outcome in SIGN_IN_LINK_OUTCOMES {
        counter!(SIGN_IN_LINK_REQUESTS, "outcome" => outcome).absolute(0);
    }
    counter!(RATE_LIMITED).absolute(0);
    counter!(CREDITS_DEBITED).absolute(0);
    counter!(LEAKED_KEYS_REVOKED).absolute(0);
    counter!(KEY_CACHE_REQUESTS, "result" => "hit").absolute(0);
    counter!(KEY_CACHE_REQUESTS, "result" => "miss").absolute(0);
    gauge!(ALERT_OUTBOX_PENDING).set(0.0);
    gauge!(ALERT_OUTBOX_OLDEST_AGE).set(0.0);
}

/// What a scrape reads besides the registry.
#[derive(Clone)]
pub struct ScrapeSources {
    pub outbox: Arc<dyn AlertOutbox>,
    pub clock: Arc<dyn Clock>,
}

/// The metrics listener: `GET /metrics` (and `HEAD`), one worker, nothing else.
///
/// # Errors
/// The registry cannot be installed, or the server cannot start on `listener`.
pub fn serve(listener: TcpListener, sources: ScrapeSources) -> anyhow::Result<Server> {
    let handle = registry()?;
    let state = web::Data::new((handle, sources));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(scrape))
            .route("/metrics", web::head().to(scrape))
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .context("cannot serve metrics")?
    .run();
    Ok(server)
}

/// Folds histogram samples now and then, so that they take bounded memory when nobody scrapes.
/// Runs until dropped.
///
/// # Errors
/// The registry cannot be installed.
pub async fn upkeep() -> anyhow::Result<()> {
    let handle = registry()?;
    let mut every = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}

async fn scrape(state: web::Data<(PrometheusHandle, ScrapeSources)>) -> HttpResponse {
    let (handle, sources) = &**state;
    // Read at scrape time: costs nothing between scrapes. A store outage leaves the last values.
    match sources.outbox.backlog().await {
        Ok(backlog) => {
            #[allow(clippy::cast_precision_loss)]
            gauge!(ALERT_OUTBOX_PENDING).set(backlog.pending as f64);
            let age_ms = backlog.oldest.map_or(0, |t| {
                (sources.clock.now().as_millis() - t.as_millis()).max(0)
            });
            #[allow(clippy::cast_precision_loss)]
            gauge!(ALERT_OUTBOX_OLDEST_AGE).set(age_ms as f64 / 1000.0);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the alert outbox for metrics"),
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}
