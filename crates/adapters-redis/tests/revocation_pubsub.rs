//! Revocations and sign-outs published by one instance reach another's listener.

// Test helpers fail loudly, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adapters_redis::{Announcement, RedisRevocationBus};
use keys_domain::ports::RevocationNotifier;
use keys_domain::{KeyHash, UserId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_another_instance_within_one_second() {
    let listener_bus = RedisRevocationBus::new(common::shared_redis().await);
    let publisher = RedisRevocationBus::new(common::shared_redis().await);
    let hash = KeyHash::of(&common::unique("revoked"));
    let seen: Arc<Mutex<Option<Instant>>> = Arc::default();
    let resyncs = Arc::new(AtomicU32::new(0));
    let handle = {
        let (seen, resyncs) = (seen.clone(), resyncs.clone());
        listener_bus.spawn_listener(
            Arc::new(move |a| {
                if a == Announcement::KeyChanged(hash) {
                    seen.lock().unwrap().get_or_insert_with(Instant::now);
                }
            }),
            Arc::new(move || {
                resyncs.fetch_add(1, Ordering::SeqCst);
            }),
        )
    };
    common::eventually("the listener subscribed", Duration::from_secs(10), || {
        resyncs.load(Ordering::SeqCst) >= 1
    })
    .await;
    let sent = Instant::now();
    publisher.key_changed(&hash).await;
    common::eventually("the revocation arrived", Duration::from_secs(5), || {
        seen.lock().unwrap().is_some()
    })
    .await;
    let latency = seen.lock().unwrap().unwrap() - sent;
    assert!(
        latency < Duration::from_secs(1),
        "revocation took {latency:?}"
    );
    handle.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_reaches_another_instance_within_one_second() {
    let listener_bus = RedisRevocationBus::new(common::shared_redis().await);
    let publisher = RedisRevocationBus::new(common::shared_redis().await);
    let user = UserId::new(common::unique("usr_signed_out"));
    let heard: Arc<Mutex<Vec<Announcement>>> = Arc::default();
    let resyncs = Arc::new(AtomicU32::new(0));
    let handle = {
        let (heard, resyncs) = (heard.clone(), resyncs.clone());
        listener_bus.spawn_listener(
            Arc::new(move |a| heard.lock().unwrap().push(a)),
            Arc::new(move || {
                resyncs.fetch_add(1, Ordering::SeqCst);
            }),
        )
    };
    common::eventually("the listener subscribed", Duration::from_secs(10), || {
        resyncs.load(Ordering::SeqCst) >= 1
    })
    .await;
    let sent = Instant::now();
    publisher.signed_out(&user).await;
    let expected = Announcement::SignedOut(user);
    common::eventually("the sign-out arrived", Duration::from_secs(5), || {
        heard.lock().unwrap().contains(&expected)
    })
    .await;
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "took {:?}",
        sent.elapsed()
    );
    handle.abort();
}
