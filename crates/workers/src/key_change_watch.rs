//! Keeps this instance's key cache current from the store's change feed, so that a key revoked,
//! rotated or created on another instance (or by an operator's command) is evicted here within
//! one read interval, with or without Redis.
//!
//! The first read only notes where the feed ends and evicts everything (what was cached before
//! it could be stale). Each later read evicts the keys changed since, page by page, and then
//! tells the cache that everything committed before the read began is evicted, which renews
//! the cache's trust in what it holds. A failed read renews nothing: the cache's bound then makes
//! it ask the store, so an unreadable feed costs lookups, never a revoked key accepted for longer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keys_domain::ports::{CacheInvalidation, ChangePosition, KeyChangeFeed, StoreError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Changes read per query; a longer backlog (after an outage) is read in several.
const PAGE: u32 = 500;

pub struct KeyChangeWatch {
    feed: Arc<dyn KeyChangeFeed>,
    cache: Arc<dyn CacheInvalidation>,
    /// Where the next read starts; `None` until the first read succeeded.
    position: Option<ChangePosition>,
}

impl KeyChangeWatch {
    #[must_use]
    pub fn new(feed: Arc<dyn KeyChangeFeed>, cache: Arc<dyn CacheInvalidation>) -> Self {
        Self {
            feed,
            cache,
            position: None,
        }
    }

    /// Reads the feed once and evicts what changed; returns how many keys were evicted.
    ///
    /// # Errors
    /// The feed's: nothing is renewed, and the next read starts where this one did (the keys
    /// evicted before a later page failed are simply evicted again).
    pub async fn read_once(&mut self) -> Result<usize, StoreError> {
        let started = Instant::now();
        let evicted = match self.position {
            None => {
                let head = self.feed.head().await?;
                self.cache.keys_may_have_changed();
                self.position = Some(head);
                0
            }
            Some(mut at) => {
                let mut evicted = 0;
                loop {
                    let changes = self.feed.changed_after(at, PAGE).await?;
                    for key in &changes.keys {
                        self.cache.key_changed(key);
                    }
                    evicted += changes.keys.len();
                    at = changes.last;
                    if changes.keys.len() < PAGE as usize {
                        break;
                    }
                }
                self.position = Some(at);
                evicted
            }
        };
        self.cache.keys_current_as_of(started);
        Ok(evicted)
    }
}

/// Reads every `interval` until `shutdown`. A read that takes longer than `interval` is given
/// up (the cache stops trusting itself meanwhile) and retried.
#[must_use = "the watch stops when its shutdown token is cancelled"]
pub fn spawn_key_change_watch(
    mut watch: KeyChangeWatch,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let outcome = tokio::time::timeout(interval, watch.read_once()).await;
            match outcome {
                Ok(Ok(_)) if failing => {
                    tracing::info!("key change feed readable again; key cache trusted again");
                    failing = false;
                }
                Ok(Err(error)) if !failing => {
                    tracing::warn!(
                        %error,
                        "cannot read the key change feed: cached keys are looked up again until it can be read"
                    );
                    failing = true;
                }
                Err(_) if !failing => {
                    tracing::warn!(
                        "reading the key change feed timed out: cached keys are looked up again until it can be read"
                    );
                    failing = true;
                }
                _ => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use keys_domain::KeyHash;
    use keys_domain::ports::{KeyChanges, MockCacheInvalidation, MockKeyChangeFeed};
    use mockall::Sequence;

    use super::*;

    fn changes(keys: &[KeyHash], last: i64) -> KeyChanges {
        KeyChanges {
            keys: keys.to_vec(),
            last: ChangePosition(last),
        }
    }

    #[tokio::test]
    async fn the_first_read_evicts_everything_and_later_reads_start_where_the_last_ended() {
        let (a, b) = (KeyHash::of("a"), KeyHash::of("b"));
        let mut feed = MockKeyChangeFeed::new();
        feed.expect_head()
            .times(1)
            .returning(|| Ok(ChangePosition(40)));
        let mut seq = Sequence::new();
        feed.expect_changed_after()
            .withf(|after, _| *after == ChangePosition(40))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _| Ok(changes(&[a, b], 42)));
        feed.expect_changed_after()
            .withf(|after, _| *after == ChangePosition(42))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|after, _| Ok(changes(&[], after.0)));
        let mut cache = MockCacheInvalidation::new();
        cache
            .expect_keys_may_have_changed()
            .times(1)
            .return_const(());
        let evicted = Arc::new(Mutex::new(Vec::new()));
        let seen = evicted.clone();
        cache
            .expect_key_changed()
            .returning(move |k| seen.lock().unwrap().push(*k));
        cache.expect_keys_current_as_of().times(3).return_const(());

        let mut watch = KeyChangeWatch::new(Arc::new(feed), Arc::new(cache));
        assert_eq!(watch.read_once().await.unwrap(), 0);
        assert_eq!(watch.read_once().await.unwrap(), 2);
        assert_eq!(watch.read_once().await.unwrap(), 0);
        assert_eq!(*evicted.lock().unwrap(), vec![a, b]);
    }

    #[tokio::test]
    async fn a_failed_read_renews_nothing_and_the_next_one_starts_at_the_same_place() {
        let a = KeyHash::of("a");
        let mut feed = MockKeyChangeFeed::new();
        feed.expect_head()
            .times(1)
            .returning(|| Ok(ChangePosition(7)));
        let mut seq = Sequence::new();
        feed.expect_changed_after()
            .withf(|after, _| *after == ChangePosition(7))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Err(StoreError::Unavailable("down".into())));
        feed.expect_changed_after()
            .withf(|after, _| *after == ChangePosition(7))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _| Ok(changes(&[a], 8)));
        let mut cache = MockCacheInvalidation::new();
        cache.expect_keys_may_have_changed().return_const(());
        cache.expect_key_changed().times(1).return_const(());
        // The first read and the third renew; the failed second one does not.
        cache.expect_keys_current_as_of().times(2).return_const(());

        let mut watch = KeyChangeWatch::new(Arc::new(feed), Arc::new(cache));
        watch.read_once().await.unwrap();
        assert!(watch.read_once().await.is_err());
        assert_eq!(watch.read_once().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_backlog_longer_than_a_page_is_read_to_its_end() {
        let keys: Vec<KeyHash> = (0..PAGE).map(|i| KeyHash::of(&format!("k{i}"))).collect();
        let full = keys.clone();
        let mut feed = MockKeyChangeFeed::new();
        feed.expect_head().returning(|| Ok(ChangePosition(0)));
        let mut seq = Sequence::new();
        feed.expect_changed_after()
            .withf(|after, _| *after == ChangePosition(0))
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _| Ok(changes(&full, i64::from(PAGE))));
        feed.expect_changed_after()
            .withf(|after, _| *after == ChangePosition(i64::from(PAGE)))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(changes(&[KeyHash::of("last")], i64::from(PAGE) + 1)));
        let mut cache = MockCacheInvalidation::new();
        cache.expect_keys_may_have_changed().return_const(());
        cache
            .expect_key_changed()
            .times(PAGE as usize + 1)
            .return_const(());
        cache.expect_keys_current_as_of().return_const(());

        let mut watch = KeyChangeWatch::new(Arc::new(feed), Arc::new(cache));
        watch.read_once().await.unwrap();
        assert_eq!(watch.read_once().await.unwrap(), PAGE as usize + 1);
    }
}
