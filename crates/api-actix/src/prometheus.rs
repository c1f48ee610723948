//! Prometheus metrics: one process-wide registry (the `metrics` crate's global recorder), served
//! as text on `JT_METRICS_BIND` by a listener of its own, apart from the API.
//!
//! Recording happens at the edges (the request middleware, the error mapping, the key cache
//! adapter, the paid handlers), never in `keys-domain`. With no listener configured the
//! recorder is not installed and every `counter!` is a no-op.
//!
//! What other parts already keep (the store's pools and failed calls, Redis's state, the usage
//! flusher's failures, the alert outbox, `/proc/self`) is read at each scrape instead, from
//! [`ScrapeSources`], and written after the registry's text: it costs nothing between scrapes,
//! and a gauge computed when scraped cannot freeze while its source is down.

mod process;
mod text;

use std::cell::RefCell;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use adapters_postgres::DbStore;
use anyhow::Context as _;
use keys_domain::Timestamp;
use keys_domain::ports::{AlertOutbox, Clock};
use metrics::{Counter, Histogram, Unit, counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::metric_names::{
    ALERT_OUTBOX_OLDEST_AGE, ALERT_OUTBOX_PENDING, AUTH_FAILURE_TYPES, AUTH_FAILURES, BUILD_INFO,
    CREDITS_DEBITED, DB_CONNECTIONS, DB_CONNECTIONS_MAX, DB_ERRORS, DB_POOL_WAIT, HTTP_DURATION,
    HTTP_REQUESTS, KEY_CACHE_REQUESTS, LEAKED_KEYS_REVOKED, LEDGER_BATCH_SIZE, LEDGER_BATCHES,
    RATE_LIMITED, REDIS_UP, REVOCATION_PROPAGATION, SIGN_IN_LINK_OUTCOMES, SIGN_IN_LINK_REQUESTS,
    USAGE_FLUSH_FAILURES,
};
use crate::probe::Probe;
use crate::status_label::status_label;
use text::Text;

/// The commit, from `build.rs`.
const BUILD_COMMIT: &str = match option_env!("JT_BUILD_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

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
    for kind in AUTH_FAILURE_TYPES {
        counter!(AUTH_FAILURES, "type" => kind).absolute(0);
    }
    describe_counter!(RATE_LIMITED, "requests refused with 429");
    describe_counter!(CREDITS_DEBITED, "credits debited by renders and purchases");
    describe_counter!(KEY_CACHE_REQUESTS, "API key lookups by cache result");
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
}

/// What a scrape reads besides the registry.
#[derive(Clone)]
pub struct ScrapeSources {
    pub outbox: Arc<dyn AlertOutbox>,
    pub clock: Arc<dyn Clock>,
    /// The store's pools and its failed calls.
    pub database: Arc<DbStore>,
    /// Redis's state; `None` without `REDIS_URL`.
    pub redis: Option<Arc<dyn Probe>>,
    /// Usage flushes the store refused, as the flusher counts them.
    pub usage_flush_failures: Arc<AtomicU64>,
}

/// The alert outbox as last read.
#[derive(Debug, Clone, Copy, Default)]
struct OutboxSeen {
    pending: u64,
    oldest: Option<Timestamp>,
}

/// The metrics listener's state.
struct Scraper {
    handle: PrometheusHandle,
    sources: ScrapeSources,
    outbox: Mutex<OutboxSeen>,
}

/// The metrics listener: `GET /metrics` (and `HEAD`), one worker, nothing else.
///
/// # Errors
/// The registry cannot be installed, or the server cannot start on `listener`.
pub fn serve(listener: TcpListener, sources: ScrapeSources) -> anyhow::Result<Server> {
    let handle = registry()?;
    let state = web::Data::new(Scraper {
        handle,
        sources,
        outbox: Mutex::new(OutboxSeen::default()),
    });
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

async fn scrape(state: web::Data<Scraper>) -> HttpResponse {
    let outbox = read_outbox(&state).await;
    let now = state.sources.clock.now();
    let mut text = Text::after(state.handle.render());
    write_sources(&mut text, &state.sources, outbox, now).await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text.finish())
}

/// The outbox now, or as last read while the store cannot say: its oldest email only gets older
/// meanwhile (none can be sent without the store), so its age keeps growing from it rather than
/// freezing, and an alert on it fires during an outage too.
async fn read_outbox(state: &Scraper) -> OutboxSeen {
    let read = state.sources.outbox.backlog().await;
    let mut seen = state.outbox.lock().unwrap_or_else(PoisonError::into_inner);
    match read {
        Ok(backlog) => {
            *seen = OutboxSeen {
                pending: backlog.pending,
                oldest: backlog.oldest,
            };
        }
        // The store's outage is logged, and counted in `jt_db_errors_total`, where it is seen.
        Err(e) => tracing::debug!(error = %e, "cannot read the alert outbox for metrics"),
    }
    *seen
}

/// The series computed at scrape time, after the registry's.
async fn write_sources(
    text: &mut Text,
    sources: &ScrapeSources,
    outbox: OutboxSeen,
    now: Timestamp,
) {
    text.family(
        BUILD_INFO,
        "gauge",
        "1, labelled with the version and commit of the running binary",
    );
    text.sample(
        BUILD_INFO,
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("commit", BUILD_COMMIT),
        ],
        1,
    );

    text.family(
        ALERT_OUTBOX_PENDING,
        "gauge",
        "alert emails waiting to be sent (as last read while the database is down)",
    );
    text.sample(ALERT_OUTBOX_PENDING, &[], outbox.pending);
    text.family(
        ALERT_OUTBOX_OLDEST_AGE,
        "gauge",
        "age of the oldest alert email waiting to be sent, in seconds",
    );
    let age_ms = outbox
        .oldest
        .map_or(0, |t| (now.as_millis() - t.as_millis()).max(0));
    #[allow(clippy::cast_precision_loss)]
    text.sample(ALERT_OUTBOX_OLDEST_AGE, &[], age_ms as f64 / 1000.0);

    text.family(
        DB_ERRORS,
        "counter",
        "failed database calls by kind: unavailable (no connection), transient (a retry can fix it), internal (unexpected)",
    );
    for (kind, n) in sources.database.error_counts().by_kind() {
        text.sample(DB_ERRORS, &[("kind", kind)], n);
    }
    let pools = sources.database.pool_states();
    text.family(
        DB_CONNECTIONS,
        "gauge",
        "pooled database connections by pool and state",
    );
    for p in &pools {
        text.sample(
            DB_CONNECTIONS,
            &[("pool", p.pool), ("state", "idle")],
            p.idle,
        );
        text.sample(
            DB_CONNECTIONS,
            &[("pool", p.pool), ("state", "in_use")],
            p.in_use,
        );
    }
    text.family(
        DB_CONNECTIONS_MAX,
        "gauge",
        "the most database connections each pool opens",
    );
    for p in &pools {
        text.sample(DB_CONNECTIONS_MAX, &[("pool", p.pool)], p.max);
    }
    text.family(
        DB_POOL_WAIT,
        "histogram",
        "time database calls waited for a pooled connection, timed-out waits included",
    );
    let bucket = format!("{DB_POOL_WAIT}_bucket");
    for p in &pools {
        for (le, n) in &p.waits.buckets {
            text.sample(&bucket, &[("pool", p.pool), ("le", &le.to_string())], n);
        }
        text.sample(&bucket, &[("pool", p.pool), ("le", "+Inf")], p.waits.count);
        text.sample(
            &format!("{DB_POOL_WAIT}_sum"),
            &[("pool", p.pool)],
            p.waits.sum_seconds,
        );
        text.sample(
            &format!("{DB_POOL_WAIT}_count"),
            &[("pool", p.pool)],
            p.waits.count,
        );
    }

    write_ledger_batches(text, &sources.database);

    if let Some(redis) = &sources.redis {
        text.family(
            REDIS_UP,
            "gauge",
            "1 while Redis answers, 0 while this instance runs degraded (local rate limits and usage windows)",
        );
        text.sample(REDIS_UP, &[], u8::from(redis.is_up().await));
    }

    text.family(
        USAGE_FLUSH_FAILURES,
        "counter",
        "usage flushes the database refused (each is retried; the counts wait in memory)",
    );
    text.sample(
        USAGE_FLUSH_FAILURES,
        &[],
        sources.usage_flush_failures.load(Ordering::Relaxed),
    );

    write_process(text, &process::read());
}

/// How the paid path grouped charges into transactions, and which way it wrote them.
fn write_ledger_batches(text: &mut Text, database: &DbStore) {
    let sizes = database.ledger_batch_sizes();
    text.family(
        LEDGER_BATCH_SIZE,
        "histogram",
        "ledger transactions by the number of charges each applied",
    );
    let bucket = format!("{LEDGER_BATCH_SIZE}_bucket");
    for (le, n) in sizes.cumulative() {
        let le = le.map_or_else(|| "+Inf".to_owned(), |le| le.to_string());
        text.sample(&bucket, &[("le", &le)], n);
    }
    text.sample(&format!("{LEDGER_BATCH_SIZE}_sum"), &[], sizes.charges);
    text.sample(&format!("{LEDGER_BATCH_SIZE}_count"), &[], sizes.total());
    let (confirmed, locked) = database.ledger_batch_ways();
    text.family(
        LEDGER_BATCHES,
        "counter",
        "ledger transactions by way: confirmed (written from memory in one statement, PostgreSQL) or locked",
    );
    text.sample(LEDGER_BATCHES, &[("way", "confirmed")], confirmed);
    text.sample(LEDGER_BATCHES, &[("way", "locked")], locked);
}

/// `process_*`, as every Prometheus client library names them.
fn write_process(text: &mut Text, p: &process::ProcessStats) {
    let mut gauge = |name: &str, kind: &str, help: &str, value: Option<f64>| {
        if let Some(v) = value {
            text.family(name, kind, help);
            text.sample(name, &[], v);
        }
    };
    #[allow(clippy::cast_precision_loss)]
    let float = |n: Option<u64>| n.map(|n| n as f64);
    gauge(
        "process_cpu_seconds_total",
        "counter",
        "user and system CPU time spent, in seconds",
        p.cpu_seconds,
    );
    gauge(
        "process_resident_memory_bytes",
        "gauge",
        "resident memory size, in bytes",
        float(p.resident_bytes),
    );
    gauge(
        "process_virtual_memory_bytes",
        "gauge",
        "virtual memory size, in bytes",
        float(p.virtual_bytes),
    );
    gauge(
        "process_open_fds",
        "gauge",
        "open file descriptors",
        float(p.open_fds),
    );
    gauge(
        "process_max_fds",
        "gauge",
        "the most file descriptors the process may open",
        float(p.max_fds),
    );
    gauge(
        "process_start_time_seconds",
        "gauge",
        "when the process started, in seconds since the Unix epoch",
        p.start_time_seconds,
    );
}

#[cfg(test)]
mod tests {
    use super::AUTH_FAILURE_TYPES;
    use crate::error::{ApiError, Unauthorized};
    use keys_domain::ports::TokenError;

    /// Every 401's `type` is among the series present from the start. A new variant does not
    /// compile here until it is listed.
    #[test]
    fn every_auth_failure_type_is_registered_from_the_start() {
        let one_of_each = |u: &Unauthorized| match u {
            Unauthorized::MissingApiKey
            | Unauthorized::MalformedApiKey(_)
            | Unauthorized::NotOneApiKey
            | Unauthorized::InvalidApiKey
            | Unauthorized::RevokedApiKey
            | Unauthorized::ExpiredApiKey
            | Unauthorized::NetworkNotAllowed
            | Unauthorized::UnsupportedCredential
            | Unauthorized::MissingToken
            | Unauthorized::NotOneBearerToken
            | Unauthorized::InvalidToken(_)
            | Unauthorized::TokenUserGone
            | Unauthorized::ApiKeyNotAccepted
            | Unauthorized::InvalidSignature(_)
            | Unauthorized::InvalidSignInLink => (),
        };
        let all = [
            Unauthorized::MissingApiKey,
            Unauthorized::MalformedApiKey(keys_domain::MalformedKey::MissingPrefix),
            Unauthorized::NotOneApiKey,
            Unauthorized::InvalidApiKey,
            Unauthorized::RevokedApiKey,
            Unauthorized::ExpiredApiKey,
            Unauthorized::NetworkNotAllowed,
            Unauthorized::UnsupportedCredential,
            Unauthorized::MissingToken,
            Unauthorized::NotOneBearerToken,
            Unauthorized::InvalidToken(TokenError::Expired),
            Unauthorized::TokenUserGone,
            Unauthorized::ApiKeyNotAccepted,
            Unauthorized::InvalidSignature("missing"),
            Unauthorized::InvalidSignInLink,
        ];
        let mut seen = std::collections::BTreeSet::new();
        for u in all {
            one_of_each(&u);
            let kind = ApiError::Unauthorized(u).kind();
            assert!(AUTH_FAILURE_TYPES.contains(&kind), "{kind} is not listed");
            seen.insert(kind);
        }
        assert_eq!(
            seen.len(),
            AUTH_FAILURE_TYPES.len(),
            "a listed type no 401 has"
        );
    }
}
