//! [`ReportVerifier`] for GitHub: cached key list, one re-read for an unknown identifier.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keys_domain::ports::{ReportVerifier, VerifyError};
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Verifier as _;
use tokio::sync::Mutex;

use crate::key_list::{SigningKeyEntry, parse_key_list};

/// How long a key list is trusted before it is read again.
const KEY_LIST_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Least time between two reads prompted by unknown identifiers, so that a stream of forged
/// identifiers cannot turn into a stream of requests to GitHub.
const MIN_REREAD_INTERVAL: Duration = Duration::from_secs(1);
/// Longest a read of GitHub's URL may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
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

#[derive(Default)]
struct Cached {
    keys: HashMap<String, SigningKeyEntry>,
    read_at: Option<Instant>,
}

/// Verifies GitHub's signatures with the keys GitHub publishes.
pub struct GithubReportVerifier {
    source: KeyListSource,
    client: reqwest::Client,
    cached: Mutex<Cached>,
    reread_interval: Duration,
}

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
        Ok(Self {
            source: KeyListSource::parse(location)?,
            client,
            cached: Mutex::new(Cached::default()),
            reread_interval: MIN_REREAD_INTERVAL,
        })
    }

    /// Changes the least time between re-reads prompted by unknown identifiers (tests).
    #[must_use]
    pub fn with_reread_interval(mut self, interval: Duration) -> Self {
        self.reread_interval = interval;
        self
    }

    async fn read(&self) -> Result<HashMap<String, SigningKeyEntry>, String> {
        let bytes = match &self.source {
            KeyListSource::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            KeyListSource::Url(url) => {
                let response = self
                    .client
                    .get(url)
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

    /// The key named `id`: from the cache while it is fresh, else after one read.
    async fn key(&self, id: &str) -> Result<SigningKeyEntry, VerifyError> {
        let mut cached = self.cached.lock().await;
        let age = cached.read_at.map(|at| at.elapsed());
        let stale = age.is_none_or(|age| age >= KEY_LIST_TTL);
        let unknown = !cached.keys.contains_key(id);
        let may_reread = age.is_none_or(|age| age >= self.reread_interval);
        if stale || (unknown && may_reread) {
            match self.read().await {
                Ok(keys) => {
                    tracing::info!(keys = keys.len(), "read GitHub's secret-scanning keys");
                    cached.keys = keys;
                    cached.read_at = Some(Instant::now());
                }
                // A stale list still verifies what it can; GitHub's keys change rarely.
                Err(e) if !cached.keys.is_empty() => {
                    tracing::warn!(error = %e, "cannot refresh GitHub's secret-scanning keys");
                }
                Err(e) => return Err(VerifyError::Unavailable(e)),
            }
        }
        cached
            .keys
            .get(id)
            .cloned()
            .ok_or(VerifyError::Invalid("unknown Github-Public-Key-Identifier"))
    }
}

#[async_trait]
impl ReportVerifier for GithubReportVerifier {
    async fn verify(
        &self,
        key_identifier: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        // Parse the signature before any key is looked up (and possibly read).
        let signature = signature.trim();
        if signature.len() > MAX_SIGNATURE_CHARS {
            return Err(VerifyError::Invalid("the signature is malformed"));
        }
        let der = STANDARD
            .decode(signature)
            .map_err(|_| VerifyError::Invalid("the signature is not base64"))?;
        let signature = Signature::from_der(&der)
            .map_err(|_| VerifyError::Invalid("the signature is not a DER ECDSA signature"))?;
        let entry = self.key(key_identifier.trim()).await?;
        if !entry.is_current {
            return Err(VerifyError::Invalid("the signing key is no longer current"));
        }
        entry
            .key
            .verify(body, &signature)
            .map_err(|_| VerifyError::Invalid("the signature does not match the body"))
    }
}
