//! [`IdempotencyStore`]: the `idempotency_records` table, shared by every instance.

use async_trait::async_trait;
use diesel::prelude::*;
use keys_domain::Timestamp;
use keys_domain::idempotency_key::{LookupHash, RequestFingerprint};
use keys_domain::ports::{
    ClaimOutcome, IdempotencyClaim, IdempotencyRecord, IdempotencyStore, StoreError,
};

use crate::on_conflict::OnConflictDoNothing;
use crate::schema::idempotency_records as records;
use crate::store::DbStore;

#[async_trait]
impl IdempotencyStore for DbStore {
    async fn claim(&self, claim: IdempotencyClaim) -> Result<ClaimOutcome, StoreError> {
        self.run(move |conn| {
            conn.transaction(|conn| {
                let lookup = claim.lookup.as_bytes().as_slice();
                // An expired record is gone as far as callers can tell, swept or not. This
                // delete is also the write that makes SQLite take its lock up front.
                diesel::delete(
                    records::table
                        .filter(records::lookup.eq(lookup))
                        .filter(records::expires_at.le(claim.created_at.as_millis())),
                )
                .execute(conn)?;
                // Of concurrent inserts of one look-up, the primary key lets exactly one in;
                // PostgreSQL makes the others wait for it to commit, then skip.
                let inserted = OnConflictDoNothing(diesel::insert_into(records::table).values((
                    records::lookup.eq(lookup),
                    records::request.eq(claim.request.as_bytes().as_slice()),
                    records::created_at.eq(claim.created_at.as_millis()),
                    records::expires_at.eq(claim.expires_at.as_millis()),
                )))
                .execute(conn)?;
                if inserted == 1 {
                    return Ok(ClaimOutcome::Claimed);
                }
                let (request, sealed) = records::table
                    .find(lookup)
                    .select((records::request, records::sealed))
                    .first::<(Vec<u8>, Option<Vec<u8>>)>(conn)?;
                let request = RequestFingerprint::from_slice(&request).ok_or_else(|| {
                    StoreError::Internal("a stored request fingerprint is not 32 bytes".into())
                })?;
                Ok(ClaimOutcome::Existing(IdempotencyRecord {
                    request,
                    sealed,
                }))
            })
        })
        .await
    }

    async fn complete(&self, lookup: &LookupHash, sealed: Vec<u8>) -> Result<(), StoreError> {
        let lookup = *lookup;
        self.run(move |conn| {
            diesel::update(
                records::table
                    .filter(records::lookup.eq(lookup.as_bytes().as_slice()))
                    .filter(records::sealed.is_null()),
            )
            .set(records::sealed.eq(Some(sealed)))
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    async fn release(&self, lookup: &LookupHash) -> Result<(), StoreError> {
        let lookup = *lookup;
        self.run(move |conn| {
            diesel::delete(
                records::table
                    .filter(records::lookup.eq(lookup.as_bytes().as_slice()))
                    .filter(records::sealed.is_null()),
            )
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    async fn sweep_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.run(move |conn| {
            let n = diesel::delete(records::table.filter(records::expires_at.le(now.as_millis())))
                .execute(conn)?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }
}
