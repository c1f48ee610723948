//! The operator commands' factories: a store without a pool, migrations and their status, and
//! the use cases a command runs, announcing nothing unless told where Redis is.

use std::sync::Arc;

use adapters_inprocess::NoOtherInstances;
use adapters_postgres::DbStore;
use adapters_redis::{RedisRevocationBus, RedisShared};
use anyhow::Context as _;
use keys_domain::ports::{RevocationNotifier, SystemClock};
use keys_domain::random::OsRandom;
use keys_domain::use_cases::{DashboardSessions, OperatorKeys, UserService};

use crate::config::redact_url;

/// The settings row holding the generated JWT secret.
/// Opens the database for an operator command: no pool, so no thread is still opening a
/// connection when the command exits.
///
/// # Errors
/// An unsupported URL.
pub fn open_command_store(database_url: &str) -> anyhow::Result<Arc<DbStore>> {
    let store = DbStore::connect_one_shot(database_url)
        .with_context(|| format!("cannot open DATABASE_URL {}", redact_url(database_url)))?;
    Ok(Arc::new(store))
}

/// `migrate --status`: `{"applied": [names], "pending": [names]}`, oldest first; applies nothing.
///
/// # Errors
/// The database is unreachable.
pub async fn migration_status(store: &Arc<DbStore>) -> anyhow::Result<String> {
    let store = store.clone();
    let status = tokio::task::spawn_blocking(move || store.migration_status())
        .await
        .context("the migration task failed")??;
    let line = serde_json::json!({
        "applied": status.applied,
        "pending": status.pending,
        "unknown": status.unknown,
    })
    .to_string();
    if !status.unknown.is_empty() {
        return Err(PrintedFailure {
            line,
            reason: format!(
                "the database holds migrations this release does not know: {}",
                status.unknown.join(", ")
            ),
        }
        .into());
    }
    if !status.pending.is_empty() {
        return Err(PrintedFailure {
            line,
            reason: format!("{} migrations are pending", status.pending.len()),
        }
        .into());
    }
    Ok(line)
}

/// A command's failure that still has its line to print on stdout (`migrate --status` with
/// migrations pending or unknown).
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct PrintedFailure {
    /// Printed on stdout, as on success.
    pub line: String,
    pub reason: String,
}

/// Sign-out and the token cut-off over `store`, uncached and announcing nothing (as a process
/// other than the servers would: they see it when their cached cut-off expires).
#[must_use]
pub fn dashboard_sessions(store: &Arc<DbStore>) -> DashboardSessions {
    DashboardSessions {
        cutoffs: store.clone(),
        notifier: Arc::new(NoOtherInstances),
        clock: Arc::new(SystemClock),
    }
}

/// The operator use cases over `store`.
#[must_use]
pub fn user_service(store: &Arc<DbStore>) -> UserService {
    UserService {
        accounts: store.clone(),
        clock: Arc::new(SystemClock),
        random: Arc::new(OsRandom),
    }
}

/// The operator's key commands over `store`, announcing revocations on Redis when `redis_url`
/// is set (so running instances forget the key at once).
///
/// # Errors
/// Redis cannot be reached.
pub async fn operator_keys(
    store: &Arc<DbStore>,
    redis_url: Option<&str>,
) -> anyhow::Result<OperatorKeys> {
    let notifier: Arc<dyn RevocationNotifier> = match redis_url {
        Some(url) => Arc::new(RedisRevocationBus::new(RedisShared::connect(url).await?)),
        None => Arc::new(NoOtherInstances),
    };
    Ok(OperatorKeys {
        keys: store.clone(),
        notifier,
        clock: Arc::new(SystemClock),
    })
}
