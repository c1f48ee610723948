//! What the server and the operator commands both do: open the pooled store, apply pending
//! migrations, read the dashboard-token secret.

use std::sync::Arc;

use adapters_postgres::DbStore;
use anyhow::Context as _;
use keys_domain::base62;
use keys_domain::ports::SettingsStore;
use keys_domain::random::OsRandom;

use crate::config::{Config, redact_url};
use adapters_jwt::JwtKeys;

/// The settings row holding the generated JWT secret.
/// The settings row holding the generated JWT secret.
pub(super) const JWT_SECRET_SETTING: &str = "jwt_secret";

/// Opens the database named by `DATABASE_URL` with a connection pool, for the server (lazily:
/// an unreachable database is an error of each call, not of this one).
///
/// # Errors
/// An unsupported URL.
pub fn open_store(database_url: &str) -> anyhow::Result<Arc<DbStore>> {
    let store = DbStore::connect(database_url)
        .with_context(|| format!("cannot open DATABASE_URL {}", redact_url(database_url)))?;
    Ok(Arc::new(store))
}

/// `JWT_SECRET` (or `JWT_SECRET_FILE`), or the one generated on first use and kept in the
/// database, so that the CLI and every server instance agree without configuration.
///
/// # Errors
/// A configured secret under 32 bytes (naming its variable); the database is unavailable.
pub async fn jwt_keys(config: &Config, settings: &dyn SettingsStore) -> anyhow::Result<JwtKeys> {
    Ok(JwtKeys::new(&jwt_secret(config, settings).await?))
}

/// The dashboard token secret: `JWT_SECRET`/`JWT_SECRET_FILE`, else the one generated once and
/// kept in the database.
pub(super) async fn jwt_secret(
    config: &Config,
    settings: &dyn SettingsStore,
) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.checked()?.to_vec());
    }

    let candidate = base62::random_chars(&OsRandom, 43);
    let secret = settings
        .get_or_insert(JWT_SECRET_SETTING, &candidate)
        .await
        .context("cannot read or store the generated JWT secret")?;
    Ok(secret.into_bytes())
}

/// Applies pending migrations; how many.
///
/// # Errors
/// The database is unreachable or a migration failed.
pub async fn migrate(store: &Arc<DbStore>) -> anyhow::Result<usize> {
    let store = store.clone();
    let applied = tokio::task::spawn_blocking(move || store.run_migrations())
        .await
        .context("the migration task failed")??;
    Ok(applied)
}
