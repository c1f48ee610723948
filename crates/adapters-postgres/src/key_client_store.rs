//! [`KeyClientStore`], and the clients' part of the usage flush's transaction.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use keys_domain::key_client::{ClientNetwork, ClientUse, MAX_CLIENTS_PER_KEY};
use keys_domain::ports::{KeyClientStore, ListedClient, QueuedWithChange, StoreError};
use keys_domain::usage::UsageDelta;
use keys_domain::{KeyEvent, KeyId, ListError, Page, PageRequest, Timestamp};

use crate::alert_outbox::insert_email;
use crate::connection::{AnyConnection, MultiBackend};
use crate::failure::Failure;
use crate::key_events::write_events;
use crate::schema::key_clients;
use crate::store::DbStore;

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
                user_agent: self.user_agent,
                requests: u64::try_from(self.requests).unwrap_or(0),
                first_seen: Timestamp::from_millis(self.first_seen),
                last_seen: Timestamp::from_millis(self.last_seen),
                browser: self.browser,
            },
        })
    }
}

/// Adds the batch's clients, on the usage flush's transaction, then keeps each key's
/// [`MAX_CLIENTS_PER_KEY`] most recently seen. One statement per client: a flush carries a
/// client per key in the common case.
pub(crate) fn write_clients(conn: &mut AnyConnection, batch: &[UsageDelta]) -> QueryResult<()> {
    for delta in batch {
        if delta.clients.is_empty() {
            continue;
        }
        let key = delta.key_id.as_str();
        for c in &delta.clients {
            // `last_seen` and `browser` only grow, whichever of two instances' flushes lands
            // last; the same text on both backends.
            diesel::sql_query(
                "INSERT INTO key_clients \
                 (key_id, network, user_agent, first_seen, last_seen, requests, browser) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (key_id, network, user_agent) DO UPDATE SET \
                 requests = key_clients.requests + excluded.requests, \
                 last_seen = CASE WHEN excluded.last_seen > key_clients.last_seen \
                 THEN excluded.last_seen ELSE key_clients.last_seen END, \
                 browser = (key_clients.browser OR excluded.browser)",
            )
            .bind::<Text, _>(key)
            .bind::<Text, _>(c.network.to_string())
            .bind::<Text, _>(&c.user_agent)
            .bind::<BigInt, _>(c.first_seen.as_millis())
            .bind::<BigInt, _>(c.last_seen.as_millis())
            .bind::<BigInt, _>(i64::try_from(c.requests).unwrap_or(i64::MAX))
            .bind::<Bool, _>(c.browser)
            .execute(conn)?;
        }
        trim(conn, key)?;
    }
    Ok(())
}

/// Deletes a key's clients past the most recently seen [`MAX_CLIENTS_PER_KEY`].
fn trim(conn: &mut AnyConnection, key: &str) -> QueryResult<()> {
    let keep = i64::try_from(MAX_CLIENTS_PER_KEY).unwrap_or(i64::MAX);
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
        key: &KeyId,
        since: Timestamp,
    ) -> Result<Vec<ClientNetwork>, StoreError> {
        let key = key.clone();
        self.run(move |conn| {
            let rows: Vec<String> = key_clients::table
                .filter(key_clients::key_id.eq(key.as_str()))
                .filter(key_clients::last_seen.ge(since.as_millis()))
                .select(key_clients::network)
                .distinct()
                .load(conn)?;
            Ok(rows
                .iter()
                .filter_map(|n| ClientNetwork::parse(n))
                .collect())
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
