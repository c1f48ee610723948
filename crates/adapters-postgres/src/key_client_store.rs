//! [`KeyClientStore`], and the clients' part of the usage flush's transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use keys_domain::key_client::{ClientNetwork, ClientUse, MAX_CLIENTS_PER_KEY};
use keys_domain::ports::{KeyClientStore, ListedClient, QueuedWithChange, StoreError};
use keys_domain::usage::UsageDelta;
use keys_domain::{KeyEvent, KeyId, ListError, Page, PageRequest, Timestamp};

use crate::alert_outbox::insert_email;
use crate::cached_statements::{AddClientUse, InsertClient};
use crate::connection::{AnyConnection, MultiBackend};
use crate::failure::Failure;
use crate::key_events::write_events;
use crate::schema::key_clients;
use crate::store::DbStore;

/// Keys per query of [`KeyClientStore::networks_seen`].
const NETWORKS_SEEN_CHUNK: usize = 500;

/// How long a signal keeps its key quiet: at most one per key per signal per 24 h.
const SIGNAL_QUIET_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = key_clients)]
struct ClientRow {
    seq: i64,
    network: String,
    user_agent: String,
    first_seen: i64,
    last_seen: i64,
    requests: i64,
    browser: bool,
}

impl ClientRow {
    fn into_listed(self) -> Result<ListedClient, StoreError> {
        let network = ClientNetwork::parse(&self.network).ok_or_else(|| {
            StoreError::Internal(format!("key client {} has a corrupt network", self.seq))
        })?;
        Ok(ListedClient {
            position: self.seq,
            client: ClientUse {
                network,
                user_agent: self.user_agent.into(),
                requests: u64::try_from(self.requests).unwrap_or(0),
                first_seen: Timestamp::from_millis(self.first_seen),
                last_seen: Timestamp::from_millis(self.last_seen),
                browser: self.browser,
            },
        })
    }
}

/// Adds the batch's clients, on the usage flush's transaction, then keeps each key's
/// [`MAX_CLIENTS_PER_KEY`] most recently seen. A client already stored (the common case: a
/// flush carries the clients its keys had in the last one) is one cached update; only a new
/// client is inserted, and only then can its key be over the bound and need trimming.
pub(crate) fn write_clients(conn: &mut AnyConnection, batch: &[UsageDelta]) -> QueryResult<()> {
    for delta in batch {
        let key = delta.key_id.as_str();
        let mut inserted = false;
        for c in &delta.clients {
            let network = c.network.to_string();
            let requests = i64::try_from(c.requests).unwrap_or(i64::MAX);
            let last_seen = c.last_seen.as_millis();
            let updated = AddClientUse {
                key,
                network: &network,
                user_agent: c.user_agent.as_str(),
                requests,
                last_seen,
                browser: c.browser,
            }
            .execute(conn)?;
            if updated > 0 {
                continue;
            }
            // Another instance may insert the same client between the update and here.
            InsertClient {
                key,
                network: &network,
                user_agent: c.user_agent.as_str(),
                first_seen: c.first_seen.as_millis(),
                last_seen,
                requests,
                browser: c.browser,
            }
            .execute(conn)?;
            inserted = true;
        }
        if inserted {
            trim(conn, key)?;
        }
    }
    Ok(())
}

/// Deletes a key's clients past the most recently seen [`MAX_CLIENTS_PER_KEY`].
fn trim(conn: &mut AnyConnection, key: &str) -> QueryResult<()> {
    let keep = i64::try_from(MAX_CLIENTS_PER_KEY).unwrap_or(i64::MAX);
    // A count over the key's index entries is far cheaper than the ordered delete, and a key
    // is almost always under the bound.
    let stored: i64 = key_clients::table
        .filter(key_clients::key_id.eq(key))
        .count()
        .get_result(conn)?;
    if stored <= keep {
        return Ok(());
    }
    diesel::sql_query(
        "DELETE FROM key_clients WHERE key_id = $1 AND seq NOT IN \
         (SELECT seq FROM key_clients WHERE key_id = $1 ORDER BY last_seen DESC, seq DESC LIMIT $2)",
    )
    .bind::<Text, _>(key)
    .bind::<BigInt, _>(keep)
    .execute(conn)?;
    Ok(())
}

#[async_trait]
impl KeyClientStore for DbStore {
    async fn networks_seen(
        &self,
        keys: &[KeyId],
        since: Timestamp,
    ) -> Result<HashMap<KeyId, Vec<ClientNetwork>>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let keys = keys.to_vec();
        self.run(move |conn| {
            let mut seen: HashMap<KeyId, Vec<ClientNetwork>> = HashMap::new();
            // Well below both backends' limits on bound parameters.
            for chunk in keys.chunks(NETWORKS_SEEN_CHUNK) {
                let rows: Vec<(String, String)> = key_clients::table
                    .filter(key_clients::key_id.eq_any(chunk.iter().map(KeyId::as_str)))
                    .filter(key_clients::last_seen.ge(since.as_millis()))
                    .select((key_clients::key_id, key_clients::network))
                    .distinct()
                    .load(conn)?;
                for (key, network) in rows {
                    if let Some(network) = ClientNetwork::parse(&network) {
                        seen.entry(KeyId::new(key)).or_default().push(network);
                    }
                }
            }
            Ok(seen)
        })
        .await
    }

    async fn clients(
        &self,
        key: &KeyId,
        page: &PageRequest<i64>,
    ) -> Result<Page<ListedClient>, ListError> {
        let (key, page) = (key.clone(), page.clone());
        self.run(move |conn| {
            let mut rows = key_clients::table
                .filter(key_clients::key_id.eq(key.as_str()))
                .into_boxed::<MultiBackend>();
            if let Some(after) = page.after {
                let (at, seq): (i64, i64) = key_clients::table
                    .filter(key_clients::key_id.eq(key.as_str()))
                    .filter(key_clients::seq.eq(after))
                    .select((key_clients::last_seen, key_clients::seq))
                    .first(conn)
                    .optional()?
                    .ok_or(Failure::Port(ListError::UnknownCursor))?;
                rows = rows.filter(
                    key_clients::last_seen
                        .lt(at)
                        .or(key_clients::last_seen.eq(at).and(key_clients::seq.lt(seq))),
                );
            }
            let rows = rows
                .order((key_clients::last_seen.desc(), key_clients::seq.desc()))
                .limit(page.limit.fetch())
                .select(ClientRow::as_select())
                .load(conn)?;
            Ok(Page::from_overfetch(rows, page.limit).try_map(ClientRow::into_listed)?)
        })
        .await
    }

    async fn sweep_clients(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.run_write(move |conn| {
            let n = diesel::delete(
                key_clients::table.filter(key_clients::last_seen.lt(before.as_millis())),
            )
            .execute(conn)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn raise_signal(
        &self,
        key: &KeyId,
        signal: &str,
        event: KeyEvent,
        email: QueuedWithChange,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (key, signal) = (key.clone(), signal.to_owned());
        self.run_write(move |conn| {
            conn.transaction(|conn| {
                let now_ms = now.as_millis();
                // Insert, or move `last_at` forward only when the last one is 24 h old: the
                // row's lock makes two instances' attempts take turns, and one of them wins.
                let raised = diesel::sql_query(
                    "INSERT INTO key_signals (key_id, signal, last_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key_id, signal) DO UPDATE SET last_at = excluded.last_at \
                     WHERE key_signals.last_at <= $4",
                )
                .bind::<Text, _>(key.as_str())
                .bind::<Text, _>(signal.as_str())
                .bind::<BigInt, _>(now_ms)
                .bind::<BigInt, _>(now_ms - SIGNAL_QUIET_MS)
                .execute(conn)?;
                if raised == 0 {
                    return Ok(false);
                }
                write_events(conn, std::slice::from_ref(&event))?;
                insert_email(conn, &email.id, &key, &email.email, now)?;
                Ok(true)
            })
        })
        .await
    }
}
