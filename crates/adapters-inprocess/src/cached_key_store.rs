//! The [`KeyStore`] decorator of the hot path: `find_by_hash` from the key cache of [`Caches`],
//! everything else from the store, and every write's changed keys reported to [`Caches`]
//! before it returns (see [`crate::key_cache`] for the cache's bounds).

use std::sync::Arc;

use async_trait::async_trait;
use keys_domain::api_key::KeyLimits;
use keys_domain::monthly_spend::SpendMonth;
use keys_domain::ports::{
    CacheInvalidation, InsertKeyError, KeyListQuery, KeyStore, KeyUpdate, RotateKeyStoreError,
    Rotation, StateChange, StoreError, UpdateKeyStoreError,
};
use keys_domain::usage::UsageDelta;
use keys_domain::{ApiKey, Credits, KeyHash, KeyId, ListError, NewApiKey, Page, Timestamp, UserId};

use crate::caches::Caches;

/// `jt_key_cache_requests_total{result="hit"|"miss"}`: a no-op unless the binary installed a
/// metrics recorder.
const CACHE_REQUESTS: &str = "jt_key_cache_requests_total";

/// A [`KeyStore`] that answers `find_by_hash` from the key cache of [`Caches`], delegates
/// everything else, and tells [`Caches`] what its writes changed.
pub struct CachedKeyStore {
    inner: Arc<dyn KeyStore>,
    caches: Arc<Caches>,
}

impl CachedKeyStore {
    #[must_use]
    pub fn new(inner: Arc<dyn KeyStore>, caches: Arc<Caches>) -> Self {
        Self { inner, caches }
    }
}

#[async_trait]
impl KeyStore for CachedKeyStore {
    async fn insert(
        &self,
        key: NewApiKey,
        limits: KeyLimits,
        now: Timestamp,
    ) -> Result<ApiKey, InsertKeyError> {
        let hash = key.hash;
        let stored = self.inner.insert(key, limits, now).await?;
        // A remembered "no such key" would refuse the new key for up to a second.
        self.caches.key_changed(&hash);
        Ok(stored)
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
        let cache = self.caches.keys();
        if let Some(hit) = cache.get(hash) {
            metrics::counter!(CACHE_REQUESTS, "result" => "hit").increment(1);
            return Ok(hit);
        }
        metrics::counter!(CACHE_REQUESTS, "result" => "miss").increment(1);
        let generation = cache.generation();
        let found = self.inner.find_by_hash(hash).await?;
        cache.insert_if_current(*hash, found.clone(), generation);
        Ok(found)
    }

    async fn find(&self, user: &UserId, id: &KeyId) -> Result<Option<ApiKey>, StoreError> {
        self.inner.find(user, id).await
    }

    async fn list(
        &self,
        user: &UserId,
        query: &KeyListQuery,
        now: Timestamp,
    ) -> Result<Page<ApiKey>, ListError> {
        self.inner.list(user, query, now).await
    }

    async fn transition(
        &self,
        user: &UserId,
        id: &KeyId,
        change: StateChange,
    ) -> Result<Option<ApiKey>, StoreError> {
        let stored = self.inner.transition(user, id, change).await?;
        if let Some(key) = &stored {
            self.caches.key_changed(&key.hash);
        }
        Ok(stored)
    }

    async fn rotate(
        &self,
        user: &UserId,
        rotation: Rotation,
    ) -> Result<ApiKey, RotateKeyStoreError> {
        let (old_hash, new_hash) = (rotation.old_hash, rotation.new_key.hash);
        let stored = self.inner.rotate(user, rotation).await?;
        self.caches.key_changed(&old_hash);
        self.caches.key_changed(&new_hash);
        Ok(stored)
    }

    async fn update(
        &self,
        user: &UserId,
        id: &KeyId,
        update: KeyUpdate,
    ) -> Result<Option<ApiKey>, UpdateKeyStoreError> {
        let stored = self.inner.update(user, id, update).await?;
        if let Some(key) = &stored {
            self.caches.key_changed(&key.hash);
        }
        Ok(stored)
    }

    async fn spent_in(&self, id: &KeyId, month: SpendMonth) -> Result<Credits, StoreError> {
        self.inner.spent_in(id, month).await
    }

    async fn record_usage(&self, batch: &[UsageDelta]) -> Result<(), StoreError> {
        self.inner.record_usage(batch).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use keys_domain::KeyState;
    use keys_domain::ports::MockKeyStore;
    use keys_domain::random::OsRandom;
    use keys_domain::{ApiKeySecret, KeyName};
    use tokio::sync::Notify;

    use std::time::{Duration, Instant};

    use super::*;
    use crate::cutoff_cache::CutoffCache;
    use crate::key_cache::KeyCache;

    fn key(state: KeyState) -> (ApiKey, KeyHash) {
        let secret = ApiKeySecret::generate(&OsRandom);
        let key = ApiKey {
            id: KeyId::new("key_1"),
            user_id: UserId::new("usr_1"),
            name: KeyName::parse("ci").unwrap(),
            preview: secret.preview(),
            hash: secret.hash(),
            state,
            created_at: Timestamp::from_millis(0),
            last_used_at: None,
            usage_count: 0,
            revocation_reason: None,
            controls: Default::default(),
        };
        let hash = key.hash;
        (key, hash)
    }

    fn cache() -> Arc<Caches> {
        caches(KeyCache::new(
            Duration::from_millis(500),
            Duration::from_secs(1),
            1000,
            1000,
        ))
    }

    /// `keys` with a cut-off cache beside it, as the service holds them.
    fn caches(keys: KeyCache) -> Arc<Caches> {
        Caches::new(keys, CutoffCache::new(Duration::from_secs(1), 10))
    }

    #[tokio::test]
    async fn unknown_keys_never_push_known_keys_out() {
        let (k, hash) = key(KeyState::Active);
        let mut inner = MockKeyStore::new();
        let stored = k.clone();
        inner
            .expect_find_by_hash()
            .withf(move |h| *h == hash)
            .times(1)
            .returning(move |_| Ok(Some(stored.clone())));
        inner
            .expect_find_by_hash()
            .withf(move |h| *h != hash)
            .returning(|_| Ok(None));
        let c = caches(KeyCache::new(
            Duration::from_secs(60),
            Duration::from_secs(60),
            10,
            10,
        ));
        let store = CachedKeyStore::new(Arc::new(inner), c.clone());
        store.find_by_hash(&hash).await.unwrap();
        for i in 0..2000 {
            let unknown = KeyHash::of(&format!("unknown-{i}"));
            assert_eq!(store.find_by_hash(&unknown).await.unwrap(), None);
        }
        c.keys().entries.run_pending_tasks();
        c.keys().unknown.run_pending_tasks();
        assert!(
            c.keys().unknown.entry_count() <= 10,
            "the negative cache is bounded"
        );
        // Served from the cache: the mock allows one lookup of the known key.
        assert_eq!(store.find_by_hash(&hash).await.unwrap(), Some(k));
    }

    #[tokio::test]
    async fn known_and_unknown_keys_are_served_from_cache_but_errors_are_not() {
        let (k, hash) = key(KeyState::Active);
        let other = KeyHash::of("other");
        let failing = KeyHash::of("failing");
        let mut inner = MockKeyStore::new();
        let stored = k.clone();
        inner
            .expect_find_by_hash()
            .withf(move |h| *h == hash)
            .times(1)
            .returning(move |_| Ok(Some(stored.clone())));
        inner
            .expect_find_by_hash()
            .withf(move |h| *h == other)
            .times(1)
            .returning(|_| Ok(None));
        inner
            .expect_find_by_hash()
            .withf(move |h| *h == failing)
            .times(2)
            .returning(|_| Err(StoreError::Unavailable("down".into())));
        let store = CachedKeyStore::new(Arc::new(inner), cache());
        for _ in 0..3 {
            assert_eq!(store.find_by_hash(&hash).await.unwrap(), Some(k.clone()));
            assert_eq!(store.find_by_hash(&other).await.unwrap(), None);
        }
        assert!(store.find_by_hash(&failing).await.is_err());
        assert!(store.find_by_hash(&failing).await.is_err());
    }

    #[tokio::test]
    async fn an_accepted_key_is_looked_up_again_after_its_ttl() {
        let (k, hash) = key(KeyState::Active);
        let mut inner = MockKeyStore::new();
        inner
            .expect_find_by_hash()
            .times(2)
            .returning(move |_| Ok(Some(k.clone())));
        let c = caches(KeyCache::new(
            Duration::from_millis(50),
            Duration::from_millis(50),
            10,
            10,
        ));
        let store = CachedKeyStore::new(Arc::new(inner), c);
        store.find_by_hash(&hash).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        store.find_by_hash(&hash).await.unwrap();
    }

    #[tokio::test]
    async fn a_cache_following_a_feed_serves_keys_only_while_the_feed_is_read() {
        let (k, hash) = key(KeyState::Active);
        let mut inner = MockKeyStore::new();
        inner
            .expect_find_by_hash()
            .times(3)
            .returning(move |_| Ok(Some(k.clone())));
        let c = caches(
            KeyCache::new(Duration::from_secs(60), Duration::from_secs(1), 10, 10)
                .following_a_feed(Duration::from_millis(100)),
        );
        let store = CachedKeyStore::new(Arc::new(inner), c.clone());
        // Before the first read of the feed, every lookup asks the store.
        store.find_by_hash(&hash).await.unwrap();
        store.find_by_hash(&hash).await.unwrap();
        c.keys_current_as_of(Instant::now());
        store.find_by_hash(&hash).await.unwrap();
        // No read of the feed for longer than the bound: asked again, despite the 60 s TTL.
        tokio::time::sleep(Duration::from_millis(150)).await;
        store.find_by_hash(&hash).await.unwrap();
    }

    #[tokio::test]
    async fn eviction_forgets_at_once() {
        let (k, hash) = key(KeyState::Active);
        let mut inner = MockKeyStore::new();
        inner
            .expect_find_by_hash()
            .times(2)
            .returning(move |_| Ok(Some(k.clone())));
        let c = cache();
        let store = CachedKeyStore::new(Arc::new(inner), c.clone());
        store.find_by_hash(&hash).await.unwrap();
        c.key_changed(&hash);
        store.find_by_hash(&hash).await.unwrap();
    }

    #[tokio::test]
    async fn every_write_through_the_store_evicts_what_it_changed() {
        let (old, old_hash) = key(KeyState::Active);
        let (new, new_hash) = key(KeyState::Active);
        let mut inner = MockKeyStore::new();
        // Each hash is read from the store twice: before its write, and again after it.
        let stored = old.clone();
        inner
            .expect_find_by_hash()
            .withf(move |h| *h == old_hash)
            .times(2)
            .returning(move |_| Ok(Some(stored.clone())));
        inner
            .expect_find_by_hash()
            .withf(move |h| *h == new_hash)
            .times(2)
            .returning(|_| Ok(None));
        let rotated = new.clone();
        inner
            .expect_rotate()
            .times(1)
            .returning(move |_, _| Ok(rotated.clone()));
        let store = CachedKeyStore::new(Arc::new(inner), cache());
        store.find_by_hash(&old_hash).await.unwrap();
        store.find_by_hash(&new_hash).await.unwrap(); // "no such key", remembered
        let rotation = Rotation {
            old_id: old.id.clone(),
            old_hash,
            expected: KeyState::Active,
            old_to: KeyState::Revoked {
                revoked_at: Timestamp::from_millis(1),
            },
            new_key: NewApiKey {
                id: new.id.clone(),
                user_id: new.user_id.clone(),
                name: new.name.clone(),
                preview: new.preview.clone(),
                hash: new_hash,
                created_at: Timestamp::from_millis(1),
                controls: Default::default(),
            },
            limits: KeyLimits::default(),
            now: Timestamp::from_millis(1),
        };
        store.rotate(&old.user_id, rotation).await.unwrap();
        store.find_by_hash(&old_hash).await.unwrap();
        store.find_by_hash(&new_hash).await.unwrap();
    }

    /// A store whose first lookup blocks until released, to interleave an eviction.
    struct SlowStore {
        key: ApiKey,
        calls: AtomicUsize,
        started: Notify,
        release: Notify,
    }

    #[async_trait]
    impl KeyStore for SlowStore {
        async fn insert(
            &self,
            _: NewApiKey,
            _: KeyLimits,
            _: Timestamp,
        ) -> Result<ApiKey, InsertKeyError> {
            unimplemented!()
        }
        async fn find_by_hash(&self, _: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                self.started.notify_one();
                self.release.notified().await;
            }
            Ok(Some(self.key.clone()))
        }
        async fn find(&self, _: &UserId, _: &KeyId) -> Result<Option<ApiKey>, StoreError> {
            unimplemented!()
        }
        async fn list(
            &self,
            _: &UserId,
            _: &KeyListQuery,
            _: Timestamp,
        ) -> Result<Page<ApiKey>, ListError> {
            unimplemented!()
        }
        async fn transition(
            &self,
            _: &UserId,
            _: &KeyId,
            _: StateChange,
        ) -> Result<Option<ApiKey>, StoreError> {
            unimplemented!()
        }
        async fn rotate(&self, _: &UserId, _: Rotation) -> Result<ApiKey, RotateKeyStoreError> {
            unimplemented!()
        }
        async fn update(
            &self,
            _: &UserId,
            _: &KeyId,
            _: KeyUpdate,
        ) -> Result<Option<ApiKey>, UpdateKeyStoreError> {
            unimplemented!()
        }
        async fn spent_in(&self, _: &KeyId, _: SpendMonth) -> Result<Credits, StoreError> {
            unimplemented!()
        }
        async fn record_usage(&self, _: &[UsageDelta]) -> Result<(), StoreError> {
            unimplemented!()
        }
    }

    #[tokio::test]
    async fn a_lookup_in_flight_during_an_eviction_does_not_reinsert_stale_state() {
        let (k, hash) = key(KeyState::Active);
        let slow = Arc::new(SlowStore {
            key: k,
            calls: AtomicUsize::new(0),
            started: Notify::new(),
            release: Notify::new(),
        });
        let c = cache();
        let store = Arc::new(CachedKeyStore::new(slow.clone(), c.clone()));
        let lookup = tokio::spawn({
            let store = store.clone();
            async move { store.find_by_hash(&hash).await }
        });
        slow.started.notified().await;
        c.key_changed(&hash); // the revocation lands while the stale read is in flight
        slow.release.notify_one();
        lookup.await.unwrap().unwrap();
        store.find_by_hash(&hash).await.unwrap();
        assert_eq!(
            slow.calls.load(Ordering::SeqCst),
            2,
            "stale entry was cached"
        );
    }
}
