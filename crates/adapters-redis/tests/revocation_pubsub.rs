//! Revocations and sign-outs published by one instance reach another's listener.

// Test helpers fail loudly, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_redis::{Announcement, RedisRevocationBus};
use common::heard::Heard;
use keys_domain::ports::RevocationNotifier;
use keys_domain::{KeyHash, UserId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_another_instance_within_one_second() {
    let listener_bus = RedisRevocationBus::new(common::shared_redis().await);
    let publisher = RedisRevocationBus::new(common::shared_redis().await);
    let hash = KeyHash::of(&common::unique("revoked"));
    let heard = Arc::new(Heard::default());
    let handle = listener_bus.spawn_listener(heard.clone());
    common::eventually("the listener subscribed", Duration::from_secs(10), || {
        heard.resyncs() >= 1
    })
    .await;
    let sent = Instant::now();
    publisher.key_changed(&hash).await;
    let expected = Announcement::KeyChanged(hash);
    common::eventually("the revocation arrived", Duration::from_secs(5), || {
        heard.first(&expected).is_some()
    })
    .await;
    let latency = heard.first(&expected).unwrap() - sent;
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
    let heard = Arc::new(Heard::default());
    let handle = listener_bus.spawn_listener(heard.clone());
    common::eventually("the listener subscribed", Duration::from_secs(10), || {
        heard.resyncs() >= 1
    })
    .await;
    let sent = Instant::now();
    publisher.signed_out(&user).await;
    let expected = Announcement::SignedOut(user);
    common::eventually("the sign-out arrived", Duration::from_secs(5), || {
        heard.first(&expected).is_some()
    })
    .await;
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "took {:?}",
        sent.elapsed()
    );
    handle.abort();
}
