//! Run-time configuration: what the environment (`docs/api.md`, "Running it") sets, plus tuning knobs
//! that only tests change.

use std::fmt;
use std::time::Duration;

use keys_domain::key_signal::SignalPolicy;
use keys_domain::rate_limit::RateLimitPolicy;

use crate::client_ip::TrustedProxies;
use crate::cors::CorsOrigins;
use crate::jwt_secret::JwtSecret;
use crate::telemetry::LogFormat;

/// Everything the server and the operator commands need.
#[derive(Clone)]
pub struct Config {
    /// `JT_BIND`; port 0 picks a free port (tests).
    pub bind: String,
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `REDIS_URL`; `None`: rate limits, revocations and usage windows stay in-process.
    pub redis_url: Option<String>,
    /// `SMTP_URL`; `None`: alert emails are written to the log.
    pub smtp_url: Option<String>,
    /// `MAIL_FROM`.
    pub mail_from: String,
    /// `JT_PUBLIC_URL`: the address users reach the service at, for links in emails.
    pub public_url: String,
    /// `JT_TOP_UP_URL`: where customers buy credits (a 402's `top_up_url`, the dashboard's link).
    pub top_up_url: String,
    /// `JWT_SECRET` or `JWT_SECRET_FILE`; `None`: generated once and kept in the database.
    pub jwt_secret: Option<JwtSecret>,
    /// `JT_RATE_LIMIT_PER_SECOND` and `JT_RATE_LIMIT_BURST`.
    pub rate_limit: RateLimitPolicy,
    /// `JT_HIGH_USAGE_THRESHOLD` (positive; checked when the service is wired).
    pub high_usage_threshold: u64,
    /// `JT_AUTH_FAILURES_PER_MINUTE`: failed authentications per client IP before 429.
    pub auth_failures_per_minute: u32,
    /// `JT_DASHBOARD_WRITES_PER_MINUTE`: dashboard writes per user before 429.
    pub dashboard_writes_per_minute: u32,
    /// `JT_SIGN_IN_LINKS_PER_MINUTE`: sign-in link requests per client address before 429.
    pub sign_in_links_per_minute: u32,
    /// `JT_KEY_SIGNALS`, `JT_KEY_ESTABLISHED_AFTER_SECONDS`, `JT_SPIKE_FACTOR`,
    /// `JT_SPIKE_MIN_REQUESTS`: the leak signals (docs/signals.md).
    pub key_signals: SignalPolicy,
    /// `JT_TRUSTED_PROXIES`.
    pub trusted_proxies: TrustedProxies,
    /// `JT_GITHUB_SCANNING_KEYS`: GitHub's key-list URL, or `file:///path.json`.
    pub github_scanning_keys: String,
    /// `JT_METRICS_BIND`; `None` (`off`): no metrics listener. Port 0 picks a free port.
    pub metrics_bind: Option<String>,
    /// `JT_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `JT_CORS_ORIGINS`; empty: no CORS headers at all.
    pub cors_origins: CorsOrigins,
    pub tuning: Tuning,
}

/// Knobs with sensible defaults that are not part of the contract.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// actix workers; `None`: one per core.
    pub workers: Option<usize>,
    /// How often accumulated usage is written (the dashboard shows it within 2 s). Every flush
    /// writes one row per key used since the last, so with many keys in use a shorter interval
    /// costs a row write per request: see the default.
    pub usage_flush_interval: Duration,
    /// The most an accepted key's record stays cached. While the key change feed is read (the
    /// default) a change made elsewhere evicts it within `key_feed_interval`, and a feed that
    /// cannot be read stops the cache within three intervals; without the feed this TTL is what
    /// bounds how late another instance's revocation is honoured.
    pub key_cache_ttl: Duration,
    /// How often the store's key change feed is read; `None`: not at all (then only Redis and
    /// `key_cache_ttl` bound another instance's revocation; some tests isolate the bus so).
    pub key_feed_interval: Option<Duration>,
    /// How long a user's dashboard-token cut-off (sign-out) is cached; bounds how late a
    /// sign-out on another instance ends a session when Redis is not there to announce it.
    pub token_cutoff_ttl: Duration,
    /// How long "no such key" is remembered (at most 1 s, so a new key works quickly everywhere).
    pub unknown_key_ttl: Duration,
    /// Most key records cached (about 540 bytes each). Beyond that the least valuable are
    /// dropped (moka's TinyLFU) and read again from the store when used. With records cached
    /// for a minute the cache fills to its capacity, so the capacity bounds the process's
    /// memory under many distinct keys (docs/performance.md has the figures).
    pub key_cache_capacity: u64,
    /// Most "no such key" answers remembered, apart from the known keys so that a flood of
    /// made-up keys never pushes a known one out.
    pub unknown_key_capacity: u64,
    /// How long a request body may take to arrive before 408 (10 s, docs/api.md).
    pub body_timeout: Duration,
    /// How often the alert outbox is polled.
    pub alert_poll_interval: Duration,
    /// How often idle per-key state, old sign-in links and old hourly usage are dropped.
    pub sweep_interval: Duration,
    /// How often SQLite's WAL is checkpointed in the background (no effect on PostgreSQL).
    pub wal_checkpoint_interval: Duration,
    /// How long in-flight requests get to finish on shutdown.
    pub shutdown_timeout: Duration,
    /// Stop gracefully on SIGTERM / ctrl-c (off in tests, which stop through the handle).
    pub handle_signals: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            workers: None,
            // 1 s rather than less: with many keys rendering on SQLite, a shorter interval
            // writes about one key row per request, in the writers' turn the ledger waits for.
            // The contract's 2 s for the dashboard still holds.
            usage_flush_interval: Duration::from_secs(1),
            key_cache_ttl: Duration::from_secs(60),
            key_feed_interval: Some(Duration::from_millis(250)),
            token_cutoff_ttl: Duration::from_millis(500),
            unknown_key_ttl: Duration::from_secs(1),
            key_cache_capacity: 5_000,
            unknown_key_capacity: 100_000,
            body_timeout: Duration::from_secs(10),
            alert_poll_interval: Duration::from_secs(1),
            sweep_interval: Duration::from_secs(60),
            wal_checkpoint_interval: Duration::from_millis(100),
            shutdown_timeout: Duration::from_secs(10),
            handle_signals: true,
        }
    }
}

/// `MAIL_FROM`'s default.
pub const DEFAULT_MAIL_FROM: &str = "JobTactics <alerts@jobtactics.io>";
/// `JT_PUBLIC_URL`'s default.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";
/// `JT_TOP_UP_URL`'s default.
pub const DEFAULT_TOP_UP_URL: &str = "https://app.jobtactics.io/credits";
/// `JT_BIND`'s default.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// `JT_AUTH_FAILURES_PER_MINUTE`'s default.
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 300;
/// `JT_DASHBOARD_WRITES_PER_MINUTE`'s default.
pub const DEFAULT_DASHBOARD_WRITES_PER_MINUTE: u32 = 60;
/// `JT_SIGN_IN_LINKS_PER_MINUTE`'s default.
pub const DEFAULT_SIGN_IN_LINKS_PER_MINUTE: u32 = 30;
/// `JT_GITHUB_SCANNING_KEYS`' default: where GitHub publishes its secret-scanning keys.
pub const DEFAULT_GITHUB_SCANNING_KEYS: &str =
    "https://api.github.com/meta/public_keys/secret_scanning";
/// `JT_METRICS_BIND`'s default (the command line's; [`Config::for_database`] has none, so
/// that tests never bind a fixed port).
pub const DEFAULT_METRICS_BIND: &str = "127.0.0.1:9464";
/// `DATABASE_URL`'s default.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://jobtactics.db";

impl Config {
    /// The documented defaults with `database_url`; what tests start from.
    #[must_use]
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            bind: DEFAULT_BIND.to_owned(),
            database_url: database_url.into(),
            redis_url: None,
            smtp_url: None,
            mail_from: DEFAULT_MAIL_FROM.to_owned(),
            public_url: DEFAULT_PUBLIC_URL.to_owned(),
            top_up_url: DEFAULT_TOP_UP_URL.to_owned(),
            jwt_secret: None,
            rate_limit: RateLimitPolicy {
                per_second: 20,
                burst: 40,
            },
            high_usage_threshold: 10_000,
            auth_failures_per_minute: DEFAULT_AUTH_FAILURES_PER_MINUTE,
            dashboard_writes_per_minute: DEFAULT_DASHBOARD_WRITES_PER_MINUTE,
            sign_in_links_per_minute: DEFAULT_SIGN_IN_LINKS_PER_MINUTE,
            key_signals: SignalPolicy::default(),
            trusted_proxies: TrustedProxies::default(),
            github_scanning_keys: DEFAULT_GITHUB_SCANNING_KEYS.to_owned(),
            metrics_bind: None,
            log_format: LogFormat::Text,
            cors_origins: CorsOrigins::default(),
            tuning: Tuning::default(),
        }
    }
}

/// A setting the service cannot start with. Reported as one line in the log's format, with exit
/// status 2, before any migration runs (`main`); anything else that stops the start is a failure
/// of the service (exit status 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// Whether `e` is (or wraps) a [`ConfigError`].
    #[must_use]
    pub fn is(e: &anyhow::Error) -> bool {
        e.chain().any(<dyn std::error::Error>::is::<Self>)
    }
}

/// Redis URL schemes the Redis client accepts.
const REDIS_SCHEMES: [&str; 7] = [
    "redis://",
    "rediss://",
    "valkey://",
    "valkeys://",
    "unix://",
    "redis+unix://",
    "valkey+unix://",
];

impl Config {
    /// What can be checked without touching the database or the network, so that a setting
    /// that cannot work stops every command before anything (a migration, a file) is written:
    /// `DATABASE_URL`, the JWT secret's length; for the server (`serving`) also `REDIS_URL`,
    /// `SMTP_URL` and `MAIL_FROM`. The listen addresses are checked by binding them, first
    /// thing ([`crate::startup::Listeners::bind`]).
    ///
    /// # Errors
    /// The first setting that cannot work, naming its variable.
    pub fn check(&self, serving: bool) -> Result<(), ConfigError> {
        let database =
            adapters_postgres::connection::Target::parse(&self.database_url).map_err(|e| {
                ConfigError(format!(
                    "DATABASE_URL {}: {e}",
                    redact_url(&self.database_url)
                ))
            })?;
        if let adapters_postgres::connection::Target::Sqlite(path) = &database {
            let dir = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty());
            if let Some(dir) = dir.filter(|d| !d.is_dir()) {
                return Err(ConfigError(format!(
                    "DATABASE_URL names the SQLite file {path}, but the directory {} does not exist (create it, or point DATABASE_URL elsewhere)",
                    dir.display()
                )));
            }
        }
        if let Some(secret) = &self.jwt_secret {
            secret
                .checked()
                .map_err(|e| ConfigError(format!("{e:#}")))?;
        }
        if !serving {
            return Ok(());
        }
        if let Some(url) = &self.redis_url
            && !REDIS_SCHEMES.iter().any(|scheme| url.starts_with(scheme))
        {
            return Err(ConfigError(format!(
                "REDIS_URL `{}` is not a Redis URL (redis://host:port, rediss://… or unix:///path)",
                redact_url(url)
            )));
        }
        if let Some(url) = &self.smtp_url {
            // Builds the transport only (it connects when the first email goes out).
            adapters_smtp::SmtpMailer::from_url(url, &self.mail_from)
                .map_err(|e| ConfigError(format!("{e:#}")))?;
        }
        Ok(())
    }
}

/// A URL as logs may show it: the password of its user info and the value of every query
/// parameter that can hold a secret (`password`, `sslpassword`, any name with `pass`, `secret`,
/// `token` or `key`) become `***`: `postgres://app:***@db/jt?sslmode=require&password=***`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let mut out = redact_user_info(base);
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if is_secret_param(name) => format!("{name}=***"),
                _ => param.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "key"]
        .iter()
        .any(|word| name.contains(word))
}

/// `scheme://user:***@host/...` for a URL with user info; any other URL unchanged.
fn redact_user_info(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let sep = if path.is_empty() && !rest.contains('/') {
        ""
    } else {
        "/"
    };
    format!("{scheme}://{user}:***@{host}{sep}{path}")
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("mail_from", &self.mail_from)
            .field("public_url", &self.public_url)
            .field("top_up_url", &self.top_up_url)
            .field("jwt_secret", &self.jwt_secret)
            .field("rate_limit", &self.rate_limit)
            .field("high_usage_threshold", &self.high_usage_threshold)
            .field("auth_failures_per_minute", &self.auth_failures_per_minute)
            .field(
                "dashboard_writes_per_minute",
                &self.dashboard_writes_per_minute,
            )
            .field("sign_in_links_per_minute", &self.sign_in_links_per_minute)
            .field("key_signals", &self.key_signals)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("github_scanning_keys", &self.github_scanning_keys)
            .field("metrics_bind", &self.metrics_bind)
            .field("log_format", &self.log_format)
            .field("cors_origins", &self.cors_origins)
            .field("tuning", &self.tuning)
            .finish()
    }
}

/// `JT_METRICS_BIND`'s value: `off` (any case) disables the listener.
#[must_use]
pub fn metrics_bind(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty() && !v.eq_ignore_ascii_case("off")).then(|| v.to_owned())
}

impl Config {
    /// One readable line for the start-up log: every setting, secrets masked.
    #[must_use]
    pub fn summary(&self) -> String {
        let unset = || "unset".to_owned();
        format!(
            "bind={} database={} redis={} smtp={} mail_from={:?} public_url={} top_up_url={} jwt_secret={} \
             rate_limit={}/s burst {} high_usage_threshold={} auth_failures_per_minute={} \
             dashboard_writes_per_minute={} sign_in_links_per_minute={} trusted_proxies={} github_scanning_keys={} metrics={} log_format={} cors_origins={}",
            self.bind,
            redact_url(&self.database_url),
            self.redis_url.as_deref().map_or_else(unset, redact_url),
            self.smtp_url.as_deref().map_or_else(unset, redact_url),
            self.mail_from,
            self.public_url,
            self.top_up_url,
            if self.jwt_secret.is_some() {
                "configured (hidden)"
            } else {
                "kept in the database"
            },
            self.rate_limit.per_second,
            self.rate_limit.burst,
            self.high_usage_threshold,
            self.auth_failures_per_minute,
            self.dashboard_writes_per_minute,
            self.sign_in_links_per_minute,
            self.trusted_proxies,
            self.github_scanning_keys,
            self.metrics_bind.as_deref().unwrap_or("off"),
            self.log_format.as_str(),
            self.cors_origins,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets_and_passwords() {
        let mut c = Config::for_database("postgres://app:hunter2@db:5432/jt");
        c.jwt_secret = Some("topsecret".into());
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"));
        assert!(!dbg.contains("topsecret"));
        assert!(dbg.contains("postgres://app:***@db:5432/jt"));
        assert_eq!(
            redact_url("sqlite://jobtactics.db"),
            "sqlite://jobtactics.db"
        );
        assert_eq!(redact_url("redis://:pw@h"), "redis://:***@h");
    }

    #[test]
    fn secrets_in_query_parameters_are_masked_too() {
        assert_eq!(
            redact_url("postgres://app@db/jt?sslmode=require&password=QsecretPW"),
            "postgres://app:***@db/jt?sslmode=require&password=***"
        );
        assert_eq!(
            redact_url("postgres://app:pw@db/jt?sslpassword=x&application_name=jt"),
            "postgres://app:***@db/jt?sslpassword=***&application_name=jt"
        );
        assert_eq!(
            redact_url("smtps://mail:25?auth_token=abc&Api-Key=def"),
            "smtps://mail:25?auth_token=***&Api-Key=***"
        );
        let mut c = Config::for_database("postgres://app@db/jt?password=QsecretPW");
        c.redis_url = Some("redis://h:6379/0?password=RsecretPW".into());
        assert!(!c.summary().contains("secretPW"), "{}", c.summary());
        assert!(!format!("{c:?}").contains("secretPW"));
    }
}
