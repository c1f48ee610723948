//! The [`TokenCutoffStore`] decorator of the dashboard's sign-out check: `tokens_cutoff` from
//! the cut-off cache of [`Caches`], and every sign-out reported to [`Caches`] before it
//! returns (see [`crate::cutoff_cache`] for the cache's bounds).

use std::sync::Arc;

use async_trait::async_trait;
use keys_domain::ports::{CacheInvalidation, StoreError, TokenCutoffStore};
use keys_domain::{Timestamp, UserId};

use crate::caches::Caches;

/// A [`TokenCutoffStore`] that answers `tokens_cutoff` from the cut-off cache of [`Caches`],
/// and tells [`Caches`] of its sign-outs.
pub struct CachedTokenCutoffStore {
    inner: Arc<dyn TokenCutoffStore>,
    caches: Arc<Caches>,
}

impl CachedTokenCutoffStore {
    #[must_use]
    pub fn new(inner: Arc<dyn TokenCutoffStore>, caches: Arc<Caches>) -> Self {
        Self { inner, caches }
    }
}

#[async_trait]
impl TokenCutoffStore for CachedTokenCutoffStore {
    async fn tokens_cutoff(&self, user: &UserId) -> Result<Option<Timestamp>, StoreError> {
        let cache = self.caches.cutoffs();
        if let Some(hit) = cache.entries.get(user) {
            return Ok(hit);
        }
        let generation = cache.generation();
        let cutoff = self.inner.tokens_cutoff(user).await?;
        cache.insert_if_current(user, cutoff, generation);
        Ok(cutoff)
    }

    async fn raise_tokens_cutoff(&self, user: &UserId, at: Timestamp) -> Result<bool, StoreError> {
        // Evicted even when the write fails: it may have committed before the error.
        let raised = self.inner.raise_tokens_cutoff(user, at).await;
        self.caches.signed_out(user);
        raised
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use futures_executor::block_on;
    use keys_domain::ports::MockTokenCutoffStore;

    use super::*;
    use crate::cutoff_cache::CutoffCache;
    use crate::key_cache::KeyCache;

    /// `cutoffs` with a key cache beside it, as the service holds them.
    fn caches(cutoffs: CutoffCache) -> Arc<Caches> {
        Caches::new(
            KeyCache::new(Duration::from_secs(1), Duration::from_secs(1), 10, 10),
            cutoffs,
        )
    }

    const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);
    const TTL: Duration = Duration::from_secs(60);

    fn ada() -> UserId {
        UserId::new("usr_ada")
    }

    /// A store that counts reads and answers whatever `cutoff` holds.
    fn counting_store(cutoff: Arc<Mutex<Option<Timestamp>>>) -> MockTokenCutoffStore {
        let mut store = MockTokenCutoffStore::new();
        let read = cutoff.clone();
        store
            .expect_tokens_cutoff()
            .returning(move |_| Ok(*read.lock().unwrap()));
        store.expect_raise_tokens_cutoff().returning(move |_, at| {
            *cutoff.lock().unwrap() = Some(at);
            Ok(true)
        });
        store
    }

    #[test]
    fn a_read_cutoff_is_served_from_memory_until_its_user_signs_out_here() {
        let cutoff = Arc::new(Mutex::new(None));
        let mut inner = MockTokenCutoffStore::new();
        // Exactly two reads: the first, and the one after the sign-out evicted the entry.
        let read = cutoff.clone();
        inner
            .expect_tokens_cutoff()
            .times(2)
            .returning(move |_| Ok(*read.lock().unwrap()));
        inner
            .expect_raise_tokens_cutoff()
            .times(1)
            .returning(move |_, at| {
                *cutoff.lock().unwrap() = Some(at);
                Ok(true)
            });
        let cache = caches(CutoffCache::new(TTL, 100));
        let store = CachedTokenCutoffStore::new(Arc::new(inner), cache);
        for _ in 0..5 {
            assert_eq!(block_on(store.tokens_cutoff(&ada())), Ok(None));
        }
        assert_eq!(block_on(store.raise_tokens_cutoff(&ada(), T0)), Ok(true));
        for _ in 0..5 {
            assert_eq!(block_on(store.tokens_cutoff(&ada())), Ok(Some(T0)));
        }
    }

    #[test]
    fn another_instances_sign_out_is_seen_once_the_bus_evicts_the_user() {
        let cutoff = Arc::new(Mutex::new(None));
        let cache = caches(CutoffCache::new(TTL, 100));
        let store =
            CachedTokenCutoffStore::new(Arc::new(counting_store(cutoff.clone())), cache.clone());
        assert_eq!(block_on(store.tokens_cutoff(&ada())), Ok(None));
        // Another instance signs Ada out: the database changes behind this cache.
        *cutoff.lock().unwrap() = Some(T0);
        assert_eq!(
            block_on(store.tokens_cutoff(&ada())),
            Ok(None),
            "still cached"
        );
        cache.signed_out(&ada());
        assert_eq!(block_on(store.tokens_cutoff(&ada())), Ok(Some(T0)));
        *cutoff.lock().unwrap() = Some(T0.plus(Duration::from_secs(5)));
        cache.announcements_may_have_been_missed();
        assert_eq!(
            block_on(store.tokens_cutoff(&ada())),
            Ok(Some(T0.plus(Duration::from_secs(5))))
        );
    }

    #[test]
    fn a_cached_cutoff_expires_after_the_ttl() {
        let cutoff = Arc::new(Mutex::new(None));
        let cache = caches(CutoffCache::new(Duration::from_millis(50), 100));
        let store = CachedTokenCutoffStore::new(Arc::new(counting_store(cutoff.clone())), cache);
        assert_eq!(block_on(store.tokens_cutoff(&ada())), Ok(None));
        *cutoff.lock().unwrap() = Some(T0);
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(block_on(store.tokens_cutoff(&ada())), Ok(Some(T0)));
    }

    #[test]
    fn a_read_that_raced_an_eviction_is_not_cached() {
        let cache = caches(CutoffCache::new(TTL, 100));
        let during_read = cache.clone();
        let mut inner = MockTokenCutoffStore::new();
        let mut reads = 0;
        inner.expect_tokens_cutoff().times(2).returning(move |_| {
            reads += 1;
            if reads == 1 {
                // A sign-out elsewhere lands while this (stale) read is in flight.
                during_read.signed_out(&ada());
                return Ok(None);
            }
            Ok(Some(T0))
        });
        let store = CachedTokenCutoffStore::new(Arc::new(inner), cache);
        assert_eq!(block_on(store.tokens_cutoff(&ada())), Ok(None));
        assert_eq!(
            block_on(store.tokens_cutoff(&ada())),
            Ok(Some(T0)),
            "the stale read was not kept"
        );
    }

    #[test]
    fn store_errors_are_not_cached_and_a_failed_sign_out_still_evicts() {
        let mut inner = MockTokenCutoffStore::new();
        let mut reads = 0;
        inner.expect_tokens_cutoff().times(3).returning(move |_| {
            reads += 1;
            match reads {
                1 => Err(StoreError::Unavailable("down".into())),
                2 => Ok(None),
                _ => Ok(Some(T0)),
            }
        });
        inner
            .expect_raise_tokens_cutoff()
            .returning(|_, _| Err(StoreError::Unavailable("lost during commit".into())));
        let store =
            CachedTokenCutoffStore::new(Arc::new(inner), caches(CutoffCache::new(TTL, 100)));
        assert!(block_on(store.tokens_cutoff(&ada())).is_err());
        assert_eq!(block_on(store.tokens_cutoff(&ada())), Ok(None));
        assert!(block_on(store.raise_tokens_cutoff(&ada(), T0)).is_err());
        assert_eq!(block_on(store.tokens_cutoff(&ada())), Ok(Some(T0)));
    }
}
