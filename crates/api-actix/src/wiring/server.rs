//! The server's composition: every adapter chosen from the configuration, the request state,
//! and the background work started beside the server.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use adapters_github::GithubReportVerifier;
use adapters_inprocess::{
    CachedKeyStore, CachedTokenCutoffStore, Caches, CutoffCache, KeyCache, LocalFixedWindow,
    LocalRateLimiter, LocalUsageWindow, NoOtherInstances, PendingUsage,
};
use adapters_jwt::JwtKeys;
use adapters_postgres::DbStore;
use adapters_redis::{
    RedisFixedWindow, RedisRateLimiter, RedisRevocationBus, RedisShared, RedisUsageWindow,
};
use adapters_smtp::{LogMailer, SmtpMailer};
use anyhow::Context as _;
use keys_domain::Timestamp;
use keys_domain::api_key::KeyLimits;
use keys_domain::key_client::CLIENT_RETENTION;
use keys_domain::ports::{
    Clock, DashboardTokens, FixedWindowLimiter, KeyClientStore, KeyStore, Mailer, RateLimiter,
    RevocationNotifier, SettingsStore, SystemClock, UsageRecorder, UsageWindow,
};
use keys_domain::random::{OsRandom, RandomSource};
use keys_domain::usage::HighUsageThreshold;
use keys_domain::use_cases::{
    Admission, AlertDelivery, Authenticator, CatalogService, DashboardSessions, ExpiryReminders,
    Idempotency, KeyAuditTrail, KeyClients, KeyService, KeySignals, KeyUsage, LeakReports, SignIn,
    UsageService,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use workers::{
    KeyChangeWatch, Sweep, UsageFlusher, spawn_delivery_worker, spawn_key_change_watch,
    spawn_sweeper, spawn_usage_flusher,
};

use crate::auth::failure_limit::AuthFailureLimiter;
use crate::config::Config;
use crate::cursor_seal::CursorSeal;
use crate::dashboard_write_limit::DashboardWriteLimiter;
use crate::probe::Probe;
use crate::prometheus::ScrapeSources;
use crate::sign_in_link_limit::SignInLinkLimiter;
use crate::sign_in_queue::SignInQueue;
use crate::state::{AppState, Readiness};

use super::shared::{JWT_SECRET_SETTING, jwt_secret, migrate, open_store};

/// Everything the server runs: the request state and the background work.
pub struct Wired {
    pub state: AppState,
    pub backend: &'static str,
    /// Closed after the server and the background work have stopped.
    pub store: Arc<DbStore>,
    recorder: Arc<dyn UsageRecorder>,
    usage: UsageService,
    delivery: AlertDelivery,
    /// Idle per-key state to drop now and then: the in-process limiters and window (alone or
    /// as Redis fallbacks), the Redis limiter's leases, the Redis per-minute limiters' ended
    /// windows.
    sweeps: Vec<Sweep>,
    /// The revocation bus when Redis is used.
    bus: Option<RedisRevocationBus>,
    /// The key and cut-off caches, whose evictions the feed watcher and the bus report.
    caches: Arc<Caches>,
    /// Counted by the usage flusher, read by the metrics.
    usage_flush_failures: Arc<AtomicU64>,
}

/// `/readyz`'s view of Redis.
struct RedisProbe(RedisShared);

#[async_trait::async_trait]
impl Probe for RedisProbe {
    async fn is_up(&self) -> bool {
        self.0.is_up()
    }
}

/// Connects the adapters the configuration names and builds the use cases. Applies pending
/// migrations first.
///
/// # Errors
/// A bad URL, an unreachable database at start-up, a bad `SMTP_URL` or `MAIL_FROM`.
pub async fn wire(config: &Config) -> anyhow::Result<Wired> {
    let store = open_store(&config.database_url)?;
    let applied = migrate(&store).await?;
    tracing::info!(backend = store.backend_name(), applied, "database ready");

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let random: Arc<dyn RandomSource> = Arc::new(OsRandom);
    let threshold = HighUsageThreshold::new(config.high_usage_threshold)
        .context("JT_HIGH_USAGE_THRESHOLD must be a positive integer")?;
    let secret = jwt_secret(config, store.as_ref()).await?;
    if config.jwt_secret.is_some()
        && store
            .get(JWT_SECRET_SETTING)
            .await
            .context("cannot read the settings")?
            .is_some()
    {
        tracing::warn!(
            "JWT_SECRET or JWT_SECRET_FILE is set, and the database also keeps a generated secret: \
             dashboard tokens that `tokens issue` signs without JWT_SECRET use that one, and this \
             server refuses them; give every command the same JWT_SECRET"
        );
    }
    let jwt: Arc<dyn DashboardTokens> = Arc::new(JwtKeys::new(&secret));
    let cursors = Arc::new(CursorSeal::from_secret(&secret));
    drop(secret);

    let t = &config.tuning;
    let mut cache = KeyCache::new(
        t.key_cache_ttl,
        t.unknown_key_ttl,
        t.key_cache_capacity,
        t.unknown_key_capacity,
    );
    if let Some(interval) = t.key_feed_interval {
        // Three reads may fail before the cache stops trusting itself: within the contract's
        // "revoked on every instance within 1 s" at the default 250 ms.
        cache = cache.following_a_feed(interval * 3);
    }
    // Sign-out is a revocation of dashboard tokens: its TTL bounds another instance's lag when
    // no Redis announces it (the change feed covers keys only).
    let caches = Caches::new(
        cache,
        CutoffCache::new(t.token_cutoff_ttl, t.key_cache_capacity),
    );
    // Writes through it evict what they changed; the notifier only tells other instances.
    let keys: Arc<dyn KeyStore> = Arc::new(CachedKeyStore::new(store.clone(), caches.clone()));

    let shared = match &config.redis_url {
        Some(url) => Some(RedisShared::connect(url).await?),
        None => None,
    };
    // In process: the limiter and window on their own, or the Redis adapters' fallbacks.
    let local_limiter = Arc::new(LocalRateLimiter::new(config.rate_limit));
    let local_window = Arc::new(LocalUsageWindow::new());
    let mut sweeps: Vec<Sweep> = vec![
        {
            let limiter = local_limiter.clone();
            Arc::new(move |_| limiter.sweep())
        },
        {
            let window = local_window.clone();
            Arc::new(move |now| window.sweep(now))
        },
    ];
    let mut per_minute =
        |name, limit| per_minute_limiter(shared.as_ref(), name, limit, &mut sweeps);
    let auth_failures = Arc::new(AuthFailureLimiter::new(
        per_minute("auth-failures", config.auth_failures_per_minute),
        config.trusted_proxies.clone(),
    ));
    let dashboard_writes = Arc::new(DashboardWriteLimiter::new(per_minute(
        "dashboard-writes",
        config.dashboard_writes_per_minute,
    )));
    let sign_in_links = Arc::new(SignInLinkLimiter::new(per_minute(
        "sign-in-links",
        config.sign_in_links_per_minute,
    )));
    let limiter: Arc<dyn RateLimiter>;
    let window: Arc<dyn UsageWindow>;
    let notifier: Arc<dyn RevocationNotifier>;
    let mut bus = None;
    match &shared {
        Some(shared) => {
            let redis_limiter = Arc::new(RedisRateLimiter::new(
                shared.clone(),
                config.rate_limit,
                local_limiter,
            ));
            sweeps.push({
                let limiter = redis_limiter.clone();
                Arc::new(move |_| limiter.sweep())
            });
            limiter = redis_limiter;
            window = Arc::new(RedisUsageWindow::new(shared.clone(), local_window));
            let redis_bus = RedisRevocationBus::new(shared.clone());
            notifier = Arc::new(redis_bus.clone());
            bus = Some(redis_bus);
        }
        None => {
            limiter = local_limiter;
            window = local_window;
            notifier = Arc::new(NoOtherInstances);
        }
    }

    let mailer: Arc<dyn Mailer> = match &config.smtp_url {
        Some(url) => Arc::new(SmtpMailer::from_url(url, &config.mail_from)?),
        None => {
            tracing::warn!(
                "SMTP_URL is not set: emails are written to this log instead of sent, sign-in \
                 links included (each signs its user in once, for 15 minutes); set SMTP_URL \
                 anywhere but on a development machine"
            );
            Arc::new(LogMailer::new(&config.mail_from))
        }
    };

    let verifier = Arc::new(GithubReportVerifier::new(&config.github_scanning_keys)?);
    let sign_in = SignIn {
        accounts: store.clone(),
        links: store.clone(),
        clock: clock.clone(),
        random: random.clone(),
        public_url: config.public_url.clone(),
    };
    let key_usage = KeyUsage {
        keys: keys.clone(),
        history: store.clone(),
        clock: clock.clone(),
    };
    // Spent links and old hourly counts: deleted in the background, off the sweeper's timer.
    sweeps.push({
        let sign_in = sign_in.clone();
        Arc::new(move |_| {
            let sign_in = sign_in.clone();
            tokio::spawn(async move {
                if let Err(e) = sign_in.sweep().await {
                    tracing::warn!(error = %e, "sweeping old sign-in links failed; retried next sweep");
                }
            });
        })
    });
    sweeps.push({
        let key_usage = key_usage.clone();
        Arc::new(move |_| {
            let key_usage = key_usage.clone();
            tokio::spawn(async move {
                if let Err(e) = key_usage.sweep().await {
                    tracing::warn!(error = %e, "sweeping old hourly usage failed; retried next sweep");
                }
            });
        })
    });

    // Clients not seen for 30 days.
    sweeps.push({
        let clients: Arc<dyn KeyClientStore> = store.clone();
        Arc::new(move |now: Timestamp| {
            let clients = clients.clone();
            tokio::spawn(async move {
                if let Err(e) = clients.sweep_clients(now.minus(CLIENT_RETENTION)).await {
                    tracing::warn!(error = %e, "sweeping old key clients failed; retried next sweep");
                }
            });
        })
    });
    // Keys that expire soon: their owners' reminders, queued in the outbox.
    sweeps.push({
        let reminders = ExpiryReminders {
            store: store.clone(),
            clock: clock.clone(),
            random: random.clone(),
        };
        Arc::new(move |_| {
            let reminders = reminders.clone();
            tokio::spawn(async move {
                match reminders.run().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(n, "expiry reminders queued"),
                    Err(e) => {
                        tracing::warn!(error = %e, "expiry reminders not queued; retried next sweep");
                    }
                }
            });
        })
    });

    let recorder: Arc<dyn UsageRecorder> = Arc::new(PendingUsage::new());
    let state = AppState {
        sign_in_queue: {
            // The loop ends with the last sender, when the state is dropped.
            let (requests, _loop) = workers::spawn_sign_in_link_worker(
                sign_in.clone(),
                crate::sign_in_queue::QUEUE_CAPACITY,
                crate::sign_in_queue::LOOKUPS_IN_FLIGHT,
                crate::sign_in_queue::outcome_observer(),
            );
            Arc::new(SignInQueue::new(requests))
        },
        sign_in_links,
        sign_in,
        key_usage,
        admission: Admission {
            authenticator: Authenticator {
                store: keys.clone(),
                clock: clock.clone(),
            },
            usage: recorder.clone(),
            limiter,
        },
        keys: KeyService {
            store: keys.clone(),
            notifier: notifier.clone(),
            clock: clock.clone(),
            random: random.clone(),
            limits: KeyLimits::default(),
        },
        key_clients: KeyClients {
            keys: keys.clone(),
            clients: store.clone(),
        },
        audit: KeyAuditTrail {
            keys: keys.clone(),
            log: store.clone(),
            clock: clock.clone(),
        },
        leaks: LeakReports {
            verifier,
            keys: keys.clone(),
            accounts: store.clone(),
            notifier: notifier.clone(),
            clock: clock.clone(),
            random: random.clone(),
        },
        catalog: CatalogService {
            store: store.clone(),
            ledger: store.clone(),
            clock: clock.clone(),
            random: random.clone(),
        },
        idempotency: Idempotency {
            store: store.clone(),
            clock: clock.clone(),
            random: random.clone(),
        },
        accounts: store.clone(),
        sessions: DashboardSessions {
            cutoffs: Arc::new(CachedTokenCutoffStore::new(store.clone(), caches.clone())),
            notifier,
            clock: clock.clone(),
        },
        auth_failures,
        dashboard_writes,
        body_timeout: t.body_timeout,
        cursors,
        random: random.clone(),
        report_slots: Arc::new(tokio::sync::Semaphore::new(
            crate::routes::secret_scanning::REPORTS_IN_FLIGHT,
        )),
        jwt,
        clock: clock.clone(),
        top_up_url: config.top_up_url.as_str().into(),
        readiness: Readiness {
            database: store.clone(),
            redis: shared.map(|s| Arc::new(RedisProbe(s)) as Arc<dyn Probe>),
            smtp_configured: config.smtp_url.is_some(),
        },
    };
    let signals = config.key_signals.enabled.then(|| {
        KeySignals::new(
            keys.clone(),
            store.clone(),
            store.clone(),
            store.clone(),
            clock.clone(),
            random.clone(),
            config.key_signals,
        )
    });
    let usage = UsageService {
        keys,
        accounts: store.clone(),
        window,
        outbox: store.clone(),
        clock: clock.clone(),
        random: random.clone(),
        threshold,
        signals,
    };
    let delivery = AlertDelivery {
        outbox: store.clone(),
        mailer,
        clock,
        random,
    };
    Ok(Wired {
        state,
        backend: store.backend_name(),
        store,
        recorder,
        usage,
        delivery,
        sweeps,
        bus,
        caches,
        usage_flush_failures: Arc::default(),
    })
}

/// A limiter of `limit` events per subject and minute: shared through Redis (counters named
/// after `name`) when there is one, with the in-process limiter as its fallback; the
/// in-process one alone otherwise. Whichever exist join the `sweeps`.
fn per_minute_limiter(
    shared: Option<&RedisShared>,
    name: &'static str,
    limit: u32,
    sweeps: &mut Vec<Sweep>,
) -> Arc<dyn FixedWindowLimiter> {
    let local = Arc::new(LocalFixedWindow::new(limit));
    sweeps.push({
        let local = local.clone();
        Arc::new(move |_| local.sweep())
    });
    let Some(shared) = shared else {
        return local;
    };
    let redis = Arc::new(RedisFixedWindow::new(shared.clone(), name, limit, local));
    sweeps.push({
        let redis = redis.clone();
        Arc::new(move |_| redis.sweep())
    });
    redis
}

impl Wired {
    /// What `/metrics` reads at each scrape.
    #[must_use]
    pub fn scrape_sources(&self) -> ScrapeSources {
        ScrapeSources {
            outbox: self.store.clone(),
            clock: self.state.clock.clone(),
            database: self.store.clone(),
            redis: self.state.readiness.redis.clone(),
            usage_flush_failures: self.usage_flush_failures.clone(),
        }
    }

    /// Starts the background work: usage flushing, alert delivery, state sweeping, following
    /// the key change feed. Each stops when `shutdown` is cancelled; the usage flusher flushes
    /// once more on its way out.
    #[must_use]
    pub fn spawn_background(
        &self,
        config: &Config,
        shutdown: &CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let t = &config.tuning;
        let mut flusher = UsageFlusher::new(self.recorder.clone(), self.usage.clone())
            .counting_failures_in(self.usage_flush_failures.clone());
        if let Some(keys) = self.store.usage_flush_chunk() {
            flusher = flusher.in_chunks_of(keys);
        }
        let mut tasks = vec![
            spawn_usage_flusher(flusher, t.usage_flush_interval, shutdown.clone()),
            spawn_delivery_worker(
                self.delivery.clone(),
                t.alert_poll_interval,
                shutdown.clone(),
            ),
            spawn_sweeper(
                self.sweeps.clone(),
                Some(self.state.idempotency.clone()),
                self.state.clock.clone(),
                t.sweep_interval,
                shutdown.clone(),
            ),
        ];
        if let Some(checkpointer) = self.store.spawn_wal_checkpointer(t.wal_checkpoint_interval) {
            let token = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                token.cancelled().await;
                checkpointer.abort();
            }));
        }
        if let Some(interval) = t.key_feed_interval {
            let watch = KeyChangeWatch::new(self.store.clone(), self.caches.clone());
            tasks.push(spawn_key_change_watch(watch, interval, shutdown.clone()));
        }
        if let Some(bus) = &self.bus {
            // Other instances' revocations and sign-outs evict here.
            let listener = bus.spawn_listener(self.caches.clone());
            let token = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                token.cancelled().await;
                listener.abort();
            }));
        }
        tasks
    }
}
