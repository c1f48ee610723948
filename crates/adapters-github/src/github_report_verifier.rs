//! [`ReportVerifier`] for GitHub: a cached key list. A report naming a known key never waits for
//! a read; an unknown identifier may prompt one read (single flight, 2 s at most), at most one
//! a second, and after failures at most one per backoff (1 s, 2 s, … 60 s), so forged
//! identifiers cannot turn into a stream of requests to GitHub or of log lines.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keys_domain::ports::{ReportVerifier, VerifyError};
use keys_domain::report_digest::ReportDigest;
use p256::ecdsa::Signature;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;

use crate::key_list::{SigningKeyEntry, parse_key_list};

/// Age from which a report that uses the list also starts a read in the background, so the
/// list is renewed daily without any report waiting for it. While reads fail, the list keeps
/// verifying the keys it has: GitHub's keys change rarely, and revoking a leaked key is worth
/// more than a day-old list's risk.
const REFRESH_AFTER: Duration = Duration::from_secs(23 * 60 * 60);
/// Least time between two reads prompted by unknown identifiers, so that a stream of forged
/// identifiers cannot turn into a stream of requests to GitHub.
const MIN_REREAD_INTERVAL: Duration = Duration::from_secs(1);
/// After a failed read, the next waits 1 s, 2 s, 4 s… up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Longest a background read of GitHub's URL may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a read prompted by an unknown identifier may take: its report waits for it.
const UNKNOWN_ID_FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest base64 signature accepted (a DER P-256 signature is at most 72 bytes).
const MAX_SIGNATURE_CHARS: usize = 200;

/// Where the key list is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyListSource {
    Url(String),
    File(PathBuf),
}

impl KeyListSource {
    /// `https://…` / `http://…`, or `file:///absolute/path.json`.
    ///
    /// # Errors
    /// Any other scheme.
    pub fn parse(location: &str) -> anyhow::Result<Self> {
        if let Some(path) = location.strip_prefix("file://") {
            anyhow::ensure!(
                path.starts_with('/'),
                "JT_GITHUB_SCANNING_KEYS: a file:// location needs an absolute path (file:///path.json)"
            );
            return Ok(Self::File(PathBuf::from(path)));
        }
        anyhow::ensure!(
            location.starts_with("https://") || location.starts_with("http://"),
            "JT_GITHUB_SCANNING_KEYS must be an https:// URL or file:///path.json"
        );
        Ok(Self::Url(location.to_owned()))
    }
}

/// What was read, and when reads were tried.
#[derive(Default)]
struct Cache {
    keys: HashMap<String, SigningKeyEntry>,
    /// The last successful read.
    read_at: Option<Instant>,
    /// The last read attempt, whatever came of it.
    attempted_at: Option<Instant>,
    /// Failed reads since the last successful one.
    failures: u32,
}

impl Cache {
    /// Whether a read may start at `now`: at least `interval` after the last attempt, and after
    /// a failure at least the backoff (1 s, 2 s, … [`MAX_BACKOFF`]).
    fn may_read(&self, now: Instant, interval: Duration) -> bool {
        let backoff = match self.failures {
            0 => Duration::ZERO,
            n => Duration::from_secs(1_u64 << (n - 1).min(6)).min(MAX_BACKOFF),
        };
        self.attempted_at
            .is_none_or(|at| now.saturating_duration_since(at) >= interval.max(backoff))
    }
}

/// The verifier's state, shared with its background reads.
struct Inner {
    source: KeyListSource,
    client: reqwest::Client,
    /// Never held across an await: a report for a known identifier never waits for a read.
    cache: std::sync::Mutex<Cache>,
    /// Held by the one read in flight (single flight); reports that need its result wait here.
    reading: tokio::sync::Mutex<()>,
    reread_interval: Duration,
    /// Read attempts since start (tests, logs).
    reads: AtomicU64,
}

/// Verifies GitHub's signatures with the keys GitHub publishes.
pub struct GithubReportVerifier(Arc<Inner>);

impl GithubReportVerifier {
    /// A verifier reading its keys from `location` (nothing is read until the first report).
    ///
    /// # Errors
    /// A bad location, or no HTTP client could be built.
    pub fn new(location: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("jobtactics-api-actix/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client for GitHub's keys")?;
        Ok(Self(Arc::new(Inner {
            source: KeyListSource::parse(location)?,
            client,
            cache: std::sync::Mutex::new(Cache::default()),
            reading: tokio::sync::Mutex::new(()),
            reread_interval: MIN_REREAD_INTERVAL,
            reads: AtomicU64::new(0),
        })))
    }

    /// Changes the least time between re-reads prompted by unknown identifiers (tests).
    ///
    /// # Panics
    /// When called after the verifier was shared (it is a builder step).
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn with_reread_interval(mut self, interval: Duration) -> Self {
        Arc::get_mut(&mut self.0)
            .expect("with_reread_interval is called before the verifier is shared")
            .reread_interval = interval;
        self
    }

    /// How many times the key list was read or tried since start.
    #[must_use]
    pub fn reads(&self) -> u64 {
        self.0.reads.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // Poisoned only by a panic while the lock was held; the cache itself stays coherent.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn read(&self, timeout: Duration) -> Result<HashMap<String, SigningKeyEntry>, String> {
        let bytes = match &self.source {
            KeyListSource::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            KeyListSource::Url(url) => {
                let response = self
                    .client
                    .get(url)
                    .timeout(timeout)
                    .header("Accept", "application/json")
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| format!("cannot fetch {url}: {e}"))?;
                response
                    .bytes()
                    .await
                    .map_err(|e| format!("cannot read {url}: {e}"))?
                    .to_vec()
            }
        };
        parse_key_list(&bytes)
    }

    /// One read, if the cache allows one now; the caller holds `reading`. The error of a failed
    /// read, or `None`.
    async fn read_into_cache(&self, timeout: Duration) -> Option<String> {
        {
            let mut cache = self.cache();
            if !cache.may_read(Instant::now(), self.reread_interval) {
                return None;
            }
            cache.attempted_at = Some(Instant::now());
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let read = self.read(timeout).await;
        let mut cache = self.cache();
        match read {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "read GitHub's secret-scanning keys");
                cache.keys = keys;
                cache.read_at = Some(Instant::now());
                cache.failures = 0;
                None
            }
            Err(e) => {
                cache.failures = cache.failures.saturating_add(1);
                // One line per attempt: the backoff bounds them to one a minute.
                tracing::warn!(error = %e, failures = cache.failures, "cannot read GitHub's secret-scanning keys");
                Some(e)
            }
        }
    }

    /// Starts a read in the background unless one is in flight.
    fn refresh_in_background(self: &Arc<Self>) {
        let inner = self.clone();
        tokio::spawn(async move {
            let Ok(_reading) = inner.reading.try_lock() else {
                return;
            };
            let _ = inner.read_into_cache(FETCH_TIMEOUT).await;
        });
    }

    /// The key named `id`. A known one is answered from the cache at once (a read starts in the
    /// background once the list is [`REFRESH_AFTER`] old); an unknown one waits for the read in
    /// flight, or starts one if the backoff allows.
    async fn key(self: &Arc<Self>, id: &str) -> Result<SigningKeyEntry, VerifyError> {
        let (known, refresh_due) = {
            let cache = self.cache();
            let due = cache
                .read_at
                .is_some_and(|at| at.elapsed() >= REFRESH_AFTER)
                && cache.may_read(Instant::now(), self.reread_interval);
            (cache.keys.get(id).cloned(), due)
        };
        if let Some(entry) = known {
            if refresh_due {
                self.refresh_in_background();
            }
            return Ok(entry);
        }
        let failed = {
            let _reading = self.reading.lock().await;
            // A read that finished while this one waited may have brought the key.
            if let Some(entry) = self.cache().keys.get(id).cloned() {
                return Ok(entry);
            }
            self.read_into_cache(UNKNOWN_ID_FETCH_TIMEOUT).await
        };
        let cache = self.cache();
        match cache.keys.get(id) {
            Some(entry) => Ok(entry.clone()),
            None if cache.keys.is_empty() => {
                Err(VerifyError::Unavailable(failed.unwrap_or_else(|| {
                    "GitHub's keys were not read yet; the last read failed".to_owned()
                })))
            }
            None => Err(VerifyError::Invalid("unknown Github-Public-Key-Identifier")),
        }
    }
}

#[async_trait]
impl ReportVerifier for GithubReportVerifier {
    async fn verify(
        &self,
        key_identifier: &str,
        signature: &str,
        body_digest: &ReportDigest,
    ) -> Result<(), VerifyError> {
        let (signature, entry) = self.signature_and_key(key_identifier, signature).await?;
        // ECDSA P-256 with SHA-256 signs the body's digest: the digest taken while the body was
        // read is all the check needs.
        entry
            .key
            .verify_prehash(body_digest.as_bytes(), &signature)
            .map_err(|_| VerifyError::Invalid("the signature does not match the body"))
    }

    async fn check_headers(
        &self,
        key_identifier: &str,
        signature: &str,
    ) -> Result<(), VerifyError> {
        self.signature_and_key(key_identifier, signature)
            .await
            .map(|_| ())
    }
}

impl GithubReportVerifier {
    /// The parsed signature and the current key it names. The signature is parsed before any
    /// key is looked up (and possibly read).
    async fn signature_and_key(
        &self,
        key_identifier: &str,
        signature: &str,
    ) -> Result<(Signature, SigningKeyEntry), VerifyError> {
        let signature = signature.trim();
        if signature.len() > MAX_SIGNATURE_CHARS {
            return Err(VerifyError::Invalid("the signature is malformed"));
        }
        let der = STANDARD
            .decode(signature)
            .map_err(|_| VerifyError::Invalid("the signature is not base64"))?;
        let signature = Signature::from_der(&der)
            .map_err(|_| VerifyError::Invalid("the signature is not a DER ECDSA signature"))?;
        let entry = self.0.key(key_identifier.trim()).await?;
        if !entry.is_current {
            return Err(VerifyError::Invalid("the signing key is no longer current"));
        }
        Ok((signature, entry))
    }
}
