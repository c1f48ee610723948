//! One Redis connection shared by the adapters, and whether Redis is up.
//!
//! Requests never wait on a Redis that is down: while it is marked down the adapters answer
//! locally at once, and a background task pings Redis until it answers again.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};

/// Bound on one command, reply included: a request is delayed at most this long by a Redis
/// that has just died.
pub(crate) const OP_TIMEOUT: Duration = Duration::from_millis(250);
/// Bound on establishing a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// Health pings while Redis is up (a failed command marks it down sooner).
const PING_WHILE_UP: Duration = Duration::from_secs(1);
/// Health pings while Redis is down: how quickly shared mode comes back.
const PING_WHILE_DOWN: Duration = Duration::from_millis(250);

/// A cheap-to-clone handle on Redis: the command connection and the up/down state.
#[derive(Clone)]
pub struct RedisShared {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    manager: RwLock<ConnectionManager>,
    up: AtomicBool,
}

impl std::fmt::Debug for RedisShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("RedisShared")
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl RedisShared {
    /// Prepares the connection and checks Redis once. A Redis that is down at start does not fail
    /// the process: the adapters run degraded (logged) and a background task keeps retrying.
    ///
    /// # Errors
    /// Only an unparsable `url`.
    pub async fn connect(url: &str) -> anyhow::Result<RedisShared> {
        let client = Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
        let manager = new_manager(&client).context("REDIS_URL is not usable")?;
        let shared = RedisShared {
            inner: Arc::new(Inner {
                client,
                manager: RwLock::new(manager),
                up: AtomicBool::new(false),
            }),
        };
        if shared.ping().await {
            shared.inner.up.store(true, Ordering::Release);
            tracing::info!(
                "redis: connected; rate limits, usage windows and revocations are shared"
            );
        } else {
            tracing::warn!(
                "redis: unreachable at start; running degraded (local rate limits and usage windows) until it answers"
            );
        }
        tokio::spawn(health_loop(Arc::downgrade(&shared.inner)));
        Ok(shared)
    }

    /// Whether shared mode is on (`/readyz` reports `"redis": "up"`/`"down"`).
    #[must_use]
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Acquire)
    }

    /// The client, for connections of their own (pub/sub).
    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Runs `op` on the command connection within [`OP_TIMEOUT`]. `None` at once while Redis is
    /// down, and `None` (marking it down) when `op` fails or times out.
    pub(crate) async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        if !self.is_up() {
            return None;
        }
        self.attempt(what, op).await
    }

    /// Like [`RedisShared::run`] but tried even while Redis is marked down, for rare messages
    /// worth a bounded wait (a revocation).
    pub(crate) async fn attempt<T, F, Fut>(&self, what: &'static str, op: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        match tokio::time::timeout(OP_TIMEOUT, op(self.manager())).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                self.mark_down(&format_args!("{what} failed: {error}"));
                None
            }
            Err(_) => {
                self.mark_down(&format_args!("{what} timed out after {OP_TIMEOUT:?}"));
                None
            }
        }
    }

    fn manager(&self) -> ConnectionManager {
        self.inner
            .manager
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn mark_down(&self, why: &dyn std::fmt::Display) {
        if self.inner.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                "redis: {why}; running degraded (local rate limits and usage windows) until it answers"
            );
        }
    }

    fn mark_up(&self) {
        if !self.inner.up.swap(true, Ordering::AcqRel) {
            tracing::info!("redis: answering again; back to shared rate limits and usage windows");
        }
    }

    async fn ping(&self) -> bool {
        let mut conn = self.manager();
        let ping = redis::cmd("PING");
        let pong = ping.query_async::<String>(&mut conn);
        matches!(tokio::time::timeout(OP_TIMEOUT, pong).await, Ok(Ok(_)))
    }

    /// A fresh connection manager, so that recovery never depends on an old one's retry state.
    fn renew_manager(&self) {
        if let Ok(manager) = new_manager(&self.inner.client) {
            *self
                .inner
                .manager
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = manager;
        }
    }
}

fn new_manager(client: &Client) -> Result<ConnectionManager, RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(OP_TIMEOUT))
        // The health loop does the long-term retrying; the manager only retries briefly.
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(200));
    ConnectionManager::new_lazy_with_config(client.clone(), config)
}

/// Pings Redis for as long as some handle on it lives, flipping the up/down state.
async fn health_loop(inner: Weak<Inner>) {
    loop {
        let Some(shared) = inner.upgrade().map(|inner| RedisShared { inner }) else {
            return;
        };
        let was_up = shared.is_up();
        let interval = if was_up {
            PING_WHILE_UP
        } else {
            PING_WHILE_DOWN
        };
        drop(shared);
        tokio::time::sleep(interval).await;
        let Some(shared) = inner.upgrade().map(|inner| RedisShared { inner }) else {
            return;
        };
        if shared.ping().await {
            shared.mark_up();
        } else {
            shared.mark_down(&"health ping failed");
            shared.renew_manager();
        }
    }
}
