//! Building and running the server, so that `main` and the tests start it the same way.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use adapters_postgres::DbStore;
use anyhow::Context as _;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::error::ApiError;
use crate::json_body::BODY_LIMIT;
use crate::prometheus;
use crate::request_guard::guard_request;
use crate::routes;
use crate::telemetry::observe;
use crate::wiring;

/// A built server, bound and ready to run.
pub struct Application {
    addr: SocketAddr,
    store: Arc<DbStore>,
    stop_signals: Option<StopSignals>,
    server: Server,
    /// The metrics listener, when `JT_METRICS_BIND` is not `off`.
    metrics: Option<(SocketAddr, Server)>,
    shutdown: CancellationToken,
    background: Vec<JoinHandle<()>>,
}

/// The server's listening sockets, bound before anything else happens: an address that cannot
/// be listened on (malformed, taken, not this host's) stops the start before any migration.
pub struct Listeners {
    api: TcpListener,
    /// `JT_METRICS_BIND`'s, unless `off`.
    metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds `JT_BIND` and `JT_METRICS_BIND`.
    ///
    /// # Errors
    /// Either cannot be listened on, naming the variable.
    pub fn bind(config: &Config) -> Result<Self, ConfigError> {
        let bind = |variable: &str, address: &str| {
            TcpListener::bind(address)
                .map_err(|e| ConfigError(format!("cannot listen on {variable} {address}: {e}")))
        };
        let api = bind("JT_BIND", &config.bind)?;
        let metrics = match &config.metrics_bind {
            Some(address) => Some(bind("JT_METRICS_BIND", address)?),
            None => None,
        };
        Ok(Self { api, metrics })
    }
}

impl Application {
    /// Binds the listeners ([`Listeners::bind`]), then builds on them ([`Application::build_on`]).
    ///
    /// # Errors
    /// As those two.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let listeners = Listeners::bind(config)?;
        Self::build_on(config, listeners).await
    }

    /// Wires the adapters (applying pending migrations) and starts the background work, serving
    /// on `listeners`.
    ///
    /// # Errors
    /// Wiring failed.
    pub async fn build_on(config: &Config, listeners: Listeners) -> anyhow::Result<Self> {
        // Listen before anything else, so a SIGTERM during start-up (migrations, pool fill) is
        // a graceful stop rather than the default "killed by signal".
        let stop_signals = if config.tuning.handle_signals {
            Some(StopSignals::listen().context("cannot listen for SIGTERM/SIGINT")?)
        } else {
            None
        };
        let wired = wiring::wire(config).await?;
        let Listeners {
            api: listener,
            metrics,
        } = listeners;
        let addr = listener.local_addr()?;
        let metrics = match start_metrics(metrics, &wired) {
            Ok(metrics) => metrics,
            Err(e) => {
                wired.store.close().await;
                return Err(e);
            }
        };
        let shutdown = CancellationToken::new();
        let background = wired.spawn_background(config, &shutdown);
        let store = wired.store.clone();
        let state = web::Data::new(wired.state);
        let cors = config.cors_origins.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(guard_request))
                // Outside the credential checks: a preflight is answered without one.
                .wrap(Condition::new(!cors.is_empty(), cors.middleware()))
                .wrap(from_fn(observe))
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(BODY_LIMIT))
                .app_data(web::PathConfig::default().error_handler(|e, _| {
                    ApiError::invalid(format!("the path is invalid: {e}")).into()
                }))
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    ApiError::invalid(format!("the query string is invalid: {e}")).into()
                }))
                .app_data(
                    web::JsonConfig::default()
                        .limit(BODY_LIMIT)
                        .error_handler(|e, _| json_config_error(&e).into()),
                )
                .configure(routes::configure)
                .default_service(web::to(crate::error::route_not_found))
        })
        // Before `listen`, which captures it.
        .on_connect(|io, data| {
            crate::request_framing::on_connect(io, data);
            crate::open_connections::on_connect(io, data);
        })
        .listen(listener)?
        .shutdown_timeout(config.tuning.shutdown_timeout.as_secs().max(1))
        .disable_signals();
        if let Some(n) = config.tuning.workers {
            server = server.workers(n);
        }
        tracing::info!(%addr, backend = wired.backend, metrics = ?metrics.as_ref().map(|m| m.0), "listening");
        Ok(Self {
            addr,
            store,
            stop_signals,
            server: server.run(),
            metrics,
            shutdown,
            background,
        })
    }

    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` is served, if anywhere.
    #[must_use]
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.0)
    }

    #[must_use]
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM, ctrl-c, or [`ServerHandle::stop`]): in-flight requests
    /// finish, then background work stops and pending usage is flushed.
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        if let Some(signals) = self.stop_signals {
            let handle = self.server.handle();
            tokio::spawn(async move {
                signals.received().await;
                tracing::info!("stop signal received; draining and finishing in-flight requests");
                crate::drain::begin();
                // Until the stop completes: a connection accepted between the signal and the
                // listeners' close is swept too.
                tokio::select! {
                    () = handle.stop(true) => {}
                    () = crate::open_connections::close_idle_until_stopped() => {}
                }
            });
        }
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (
                handle,
                tokio::spawn(server),
                tokio::spawn(prometheus::upkeep()),
            )
        });
        let served = self.server.await;
        if let Some((handle, server, upkeep)) = metrics {
            upkeep.abort();
            handle.stop(false).await;
            let _ = server.await;
        }
        tracing::info!("server stopped; flushing usage and stopping workers");
        self.shutdown.cancel();
        for task in self.background {
            let _ = task.await;
        }
        self.store.close().await;
        served.context("the HTTP server failed")
    }
}

/// The metrics server on its listener, if there is one.
fn start_metrics(
    listener: Option<TcpListener>,
    wired: &wiring::Wired,
) -> anyhow::Result<Option<(SocketAddr, Server)>> {
    let Some(listener) = listener else {
        return Ok(None);
    };
    let addr = listener.local_addr()?;
    Ok(Some((
        addr,
        prometheus::serve(listener, wired.scrape_sources())?,
    )))
}

/// SIGTERM and SIGINT (ctrl-c), registered once.
struct StopSignals {
    terminate: Signal,
    interrupt: Signal,
}

impl StopSignals {
    fn listen() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves at the first of them, including one that arrived before this was awaited.
    async fn received(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

/// actix's own JSON extractor is not used by the routes, but if it ever is, its errors still
/// answer in the contract's shape.
fn json_config_error(e: &actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match e {
        E::Overflow { .. } | E::OverflowKnownLength { .. } => ApiError::PayloadTooLarge,
        E::ContentType => {
            ApiError::invalid("the body must be JSON (`Content-Type: application/json`)")
        }
        _ => ApiError::invalid("the body is not valid JSON"),
    }
}

/// A server running in the background (tests, embedding).
pub struct Running {
    pub addr: SocketAddr,
    /// Where `/metrics` is served, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    pub handle: ServerHandle,
    join: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops gracefully and waits until usage is flushed and workers are done.
    ///
    /// # Errors
    /// The server failed.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.stop(true).await;
        self.join.await.context("the server task panicked")?
    }
}

/// Builds and starts the application on a background task.
///
/// # Errors
/// As [`Application::build`].
pub async fn spawn(config: &Config) -> anyhow::Result<Running> {
    let app = Application::build(config).await?;
    let addr = app.address();
    let metrics_addr = app.metrics_address();
    let handle = app.handle();
    let join = tokio::spawn(app.run_until_stopped());
    Ok(Running {
        addr,
        metrics_addr,
        handle,
        join,
    })
}
