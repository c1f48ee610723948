//! Running an operator command (everything but `serve`) against the store, and its output.

use std::sync::Arc;
use std::time::Duration;

use adapters_postgres::DbStore;
use anyhow::Context as _;
use keys_domain::ports::{Clock, SystemClock};
use serde_json::json;

use crate::config::Config;
use crate::dto::keys::KeyObject;
use crate::wiring;

use super::schema::{Command, CreditsCommand, KeysCommand, TokensCommand, UsersCommand};

#[derive(serde::Serialize)]
struct CreatedUser<'a> {
    id: &'a str,
    email: &'a str,
    balance: u64,
}

/// Runs an operator command (everything but `serve`); the line to print on success. Pending
/// migrations are applied first, so the commands work on a brand-new database.
///
/// # Errors
/// A message for stderr: taken or invalid email, unknown user, bad amount, database down.
pub async fn run_operator_command(config: &Config, command: Command) -> anyhow::Result<String> {
    // A weak configured secret stops every command, as it stops the server.
    if let Some(secret) = &config.jwt_secret {
        secret.checked()?;
    }
    let store = wiring::open_command_store(&config.database_url)?;
    let result = run_with_store(config, command, &store).await;
    store.close().await;
    result
}

async fn run_with_store(
    config: &Config,
    command: Command,
    store: &Arc<DbStore>,
) -> anyhow::Result<String> {
    if let Command::Migrate { status: true } = command {
        return wiring::migration_status(store).await;
    }
    // A copy of what is there: nothing is migrated first.
    if let Command::Backup { to } = &command {
        store.backup_into(to).await?;
        let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or_default();
        return Ok(json!({ "backup": to.display().to_string(), "bytes": bytes }).to_string());
    }
    let applied = wiring::migrate(store).await?;
    match command {
        Command::Serve(_) => anyhow::bail!("`serve` is not an operator command"),
        Command::Migrate { .. } => Ok(json!({ "applied": applied }).to_string()),
        Command::Keys { command } => run_keys(command, store).await,
        Command::Backup { .. } => anyhow::bail!("`backup` was handled above"),
        Command::Users {
            command: UsersCommand::Create { email, credits },
        } => {
            let user = wiring::user_service(store)
                .create(&email, credits.0)
                .await?;
            // A struct, so the members print in the contract's order: id, email, balance.
            let printed = CreatedUser {
                id: user.id.as_str(),
                email: user.email.as_str(),
                balance: user.balance.get(),
            };
            Ok(serde_json::to_string(&printed)?)
        }
        Command::Tokens {
            command: TokensCommand::Issue { user, ttl_seconds },
        } => {
            let found = wiring::user_service(store)
                .find(&user)
                .await?
                .with_context(|| format!("no user matches `{user}`"))?;
            let keys = wiring::jwt_keys(config, store.as_ref()).await?;
            if config.jwt_secret.is_none() {
                // On stderr, apart from the token's line: whoever pipes the token still sees it.
                #[allow(clippy::print_stderr)]
                {
                    eprintln!(
                        "note: JWT_SECRET and JWT_SECRET_FILE are unset: the token is signed with \
                         the secret kept in the database, which a server configured with \
                         JWT_SECRET or JWT_SECRET_FILE refuses"
                    );
                }
            }
            let token = keys
                .issue(
                    &found.id,
                    SystemClock.now(),
                    Duration::from_secs(ttl_seconds),
                )
                .context("cannot sign the token")?;
            Ok(token)
        }
        Command::Credits {
            command: CreditsCommand::Grant { user, amount },
        } => {
            let balance = wiring::user_service(store).grant(&user, amount).await?;
            Ok(json!({ "balance": balance.get() }).to_string())
        }
    }
}

/// `keys list` and `keys revoke`.
async fn run_keys(command: KeysCommand, store: &Arc<DbStore>) -> anyhow::Result<String> {
    let now = SystemClock.now();
    match command {
        KeysCommand::List { user } => {
            let found = wiring::user_service(store)
                .find(&user)
                .await?
                .with_context(|| format!("no user matches `{user}`"))?;
            let keys = wiring::operator_keys(store, None)
                .await?
                .list(&found.id)
                .await?;
            let lines = keys
                .iter()
                .map(|k| serde_json::to_string(&KeyObject::of(k, now)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(lines.join("\n"))
        }
        KeysCommand::Revoke { reason, redis_url } => {
            let presented = read_one_key_from_stdin()?;
            let operator = wiring::operator_keys(store, redis_url.as_deref()).await?;
            let (key, revoked_now) = operator.revoke(&presented, reason.domain()).await?;
            if revoked_now {
                tracing::warn!(key_id = %key.id, preview = key.preview.as_str(), reason = reason.domain().as_str(), "key revoked by an operator");
            }
            Ok(serde_json::to_string(&KeyObject::of(
                &key,
                SystemClock.now(),
            ))?)
        }
    }
}

/// One key from standard input: surrounding whitespace (the newline of `echo`) is ignored.
fn read_one_key_from_stdin() -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut text)
        .context("cannot read the key from standard input")?;
    let key = text.trim();
    anyhow::ensure!(
        !key.is_empty(),
        "pipe the full key on standard input, e.g. `printf %s \"$KEY\" | api-actix keys revoke`"
    );
    Ok(key.to_owned())
}
