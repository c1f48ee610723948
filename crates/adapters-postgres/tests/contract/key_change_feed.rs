//! The key change feed: every key change that commits is read by a follower of the feed, in
//! order, and none is skipped however concurrent transactions commit.

use std::collections::HashSet;
use std::sync::Arc;

use keys_domain::ports::{ChangePosition, KeyChangeFeed, StateChange};
use keys_domain::{Actor, ApiKey, EventDetail, KeyEvent, KeyHash, KeyState, RevocationReason};

use super::{Store, at, insert, new_user};

/// An operator's revocation of an active `key`, with its `revoked` event.
pub fn revocation(key: &ApiKey) -> StateChange {
    let now = at(10);
    StateChange {
        events: vec![KeyEvent {
            key_id: key.id.clone(),
            actor: Actor::Operator,
            at: now,
            detail: EventDetail::Revoked {
                reason: RevocationReason::Operator,
            },
        }],
        reason: Some(RevocationReason::Operator),
        ..StateChange::new(KeyState::Active, KeyState::Revoked { revoked_at: now })
    }
}

/// Reads everything after `from` and returns it with the new position.
async fn follow(
    store: &impl KeyChangeFeed,
    from: ChangePosition,
) -> (Vec<KeyHash>, ChangePosition) {
    let mut keys = Vec::new();
    let mut at = from;
    loop {
        let page = store.changed_after(at, 2).await.unwrap();
        let n = page.keys.len();
        keys.extend(page.keys);
        at = page.last;
        if n < 2 {
            return (keys, at);
        }
    }
}

pub async fn the_feed_returns_each_change_after_a_position_in_order(store: impl Store) {
    let user = new_user(&store, 0).await;
    let start = store.head().await.unwrap();
    assert_eq!(follow(&store, start).await, (vec![], start));

    let a = insert(&store, &user, "a", at(0)).await;
    let b = insert(&store, &user, "b", at(1)).await;
    store
        .transition(&user, &a.id, revocation(&a))
        .await
        .unwrap();
    let (keys, after) = follow(&store, start).await;
    // Created a, created b, revoked a: read two at a time, to the end.
    assert_eq!(keys, vec![a.hash, b.hash, a.hash]);
    assert!(after > start);
    assert_eq!(store.head().await.unwrap(), after);
    // Nothing new: the same position again.
    assert_eq!(follow(&store, after).await, (vec![], after));
}

pub async fn concurrent_changes_are_never_skipped_by_a_follower(store: impl Store) {
    const KEYS: usize = 60;
    // One user per key: a user's key changes queue on the user's row lock, keys of different
    // users commit concurrently.
    let mut keys = Vec::new();
    for i in 0..KEYS {
        let user = new_user(&store, 0).await;
        keys.push(insert(&store, &user, &format!("k{i}"), at(0)).await);
    }
    let start = store.head().await.unwrap();
    let store = Arc::new(store);
    // Revocations commit concurrently while a follower reads the feed as fast as it can; a
    // change that took its position before another but committed after it must still be read.
    let writers: Vec<_> = keys
        .iter()
        .cloned()
        .map(|key| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .transition(&key.user_id, &key.id, revocation(&key))
                    .await
                    .unwrap()
                    .unwrap();
            })
        })
        .collect();
    let follower = {
        let store = store.clone();
        tokio::spawn(async move {
            let (mut seen, mut at) = (HashSet::new(), start);
            loop {
                let done = seen.len() == KEYS;
                let (keys, next) = follow(store.as_ref(), at).await;
                seen.extend(keys);
                at = next;
                if done || seen.len() == KEYS {
                    return (seen, at);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    let (seen, at) = tokio::time::timeout(std::time::Duration::from_secs(30), follower)
        .await
        .expect("the follower saw every revocation")
        .unwrap();
    let revoked: HashSet<KeyHash> = keys.iter().map(|k| k.hash).collect();
    assert_eq!(seen, revoked);
    // And a read after all of them committed finds nothing it has not read.
    assert_eq!(follow(store.as_ref(), at).await.0, Vec::<KeyHash>::new());
}
