//! The dashboard's ports: sign-in links (limit, single use, expiry, sweeping, the outbox) and
//! hourly usage.

use std::sync::Arc;

use keys_domain::alert_email::OutgoingEmail;
use keys_domain::hourly_usage::{HourCount, hour_start};
use keys_domain::ports::{LinkEmail, NewSignInLink};
use keys_domain::random::OsRandom;
use keys_domain::sign_in_link::{SignInToken, SignInTokenHash};
use keys_domain::usage::UsageDelta;
use keys_domain::{AlertId, Email, SignInLinkId, Timestamp, UserId};

use super::{Store, T0, at, insert, new_user};

const MINUTE: i64 = 60_000;

fn link(user: &UserId, created_at: Timestamp) -> (NewSignInLink, LinkEmail, SignInToken) {
    let token = SignInToken::generate(&OsRandom);
    let link = NewSignInLink {
        id: SignInLinkId::generate(&OsRandom),
        user_id: user.clone(),
        token_hash: token.hash(),
        created_at,
        expires_at: Timestamp::from_millis(created_at.as_millis() + 15 * MINUTE),
    };
    let email = LinkEmail {
        id: AlertId::generate(&OsRandom),
        email: OutgoingEmail {
            to: Email::parse("owner@example.com").unwrap(),
            subject: "Your JobTactics sign-in link".into(),
            body: format!("https://x.example/app/sign-in#token={}", token.expose()),
        },
    };
    (link, email, token)
}

async fn issue(store: &impl Store, user: &UserId, now: Timestamp) -> Option<SignInToken> {
    let (l, e, t) = link(user, now);
    let window_start = Timestamp::from_millis(now.as_millis() - 60 * MINUTE);
    store
        .issue(l, e, window_start, 5)
        .await
        .unwrap()
        .then_some(t)
}

pub async fn sign_in_links_are_limited_per_user_and_queue_their_email(store: impl Store) {
    let user = new_user(&store, 0).await;
    let other = new_user(&store, 0).await;
    for i in 0..5 {
        assert!(
            issue(&store, &user, at(i * MINUTE)).await.is_some(),
            "link {i}"
        );
    }
    assert!(
        issue(&store, &user, at(10 * MINUTE)).await.is_none(),
        "the 6th in an hour"
    );
    assert!(
        issue(&store, &other, at(10 * MINUTE)).await.is_some(),
        "per user"
    );
    // An hour after the first, one slot is free again (the window is the hour before now).
    assert!(issue(&store, &user, at(60 * MINUTE + 1)).await.is_some());
    assert!(issue(&store, &user, at(60 * MINUTE + 2)).await.is_none());
    // Each stored link queued its email, and only those.
    let queued = store
        .claim_due(at(62 * MINUTE), at(63 * MINUTE), 100)
        .await
        .unwrap();
    assert_eq!(queued.len(), 7);
    assert!(queued.iter().all(|q| q.key_id.is_none()));
    assert!(queued.iter().all(|q| q.email.body.contains("#token=")));
    // An unknown user gets nothing stored.
    assert!(
        issue(&store, &UserId::new("usr_nobody"), at(0))
            .await
            .is_none()
    );
}

pub async fn a_link_is_consumed_once_and_only_before_it_expires(store: impl Store) {
    let user = new_user(&store, 0).await;
    let token = issue(&store, &user, T0).await.unwrap();
    assert_eq!(
        store.consume(&token.hash(), at(MINUTE)).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        store.consume(&token.hash(), at(2 * MINUTE)).await.unwrap(),
        None,
        "used"
    );
    let late = issue(&store, &user, T0).await.unwrap();
    assert_eq!(
        store.consume(&late.hash(), at(15 * MINUTE)).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store
            .consume(&SignInTokenHash::of("nothing"), T0)
            .await
            .unwrap(),
        None
    );
}

pub async fn concurrent_exchanges_of_one_link_have_one_winner(store: impl Store) {
    let user = new_user(&store, 0).await;
    let token = issue(&store, &user, T0).await.unwrap();
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let hash = token.hash();
            tokio::spawn(async move { store.consume(&hash, at(MINUTE)).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

pub async fn sent_sign_in_emails_are_done_with_and_old_links_are_swept(store: impl Store) {
    let user = new_user(&store, 0).await;
    let token = issue(&store, &user, T0).await.unwrap();
    let queued = store.claim_due(at(1), at(MINUTE), 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    store.mark_sent(&queued[0].id, at(2)).await.unwrap();
    // The link still works (it was sent, not used) ...
    let fresh = issue(&store, &user, at(3)).await.unwrap();
    // ... and sweeping removes only links created before the cut.
    assert_eq!(store.sweep_sign_in_links(at(3)).await.unwrap(), 1);
    assert_eq!(store.consume(&token.hash(), at(4)).await.unwrap(), None);
    assert_eq!(
        store.consume(&fresh.hash(), at(4)).await.unwrap(),
        Some(user)
    );
    let left = store.claim_due(at(5), at(MINUTE), 10).await.unwrap();
    assert_eq!(left.len(), 1, "the swept link's email went with it");
}

pub async fn usage_hours_are_written_with_usage_count_and_swept(store: impl Store) {
    let user = new_user(&store, 0).await;
    let key = insert(&store, &user, "hours", T0).await;
    let other = insert(&store, &user, "other", T0).await;
    let h0 = hour_start(T0);
    let h1 = Timestamp::from_millis(h0.as_millis() + 3_600_000);
    let delta = |k: &keys_domain::ApiKey, count, when| UsageDelta {
        key_id: k.id.clone(),
        user_id: user.clone(),
        count,
        last_used_at: when,
        clients: Vec::new(),
    };
    store
        .record_usage(&[delta(&key, 3, h0), delta(&other, 9, h0)])
        .await
        .unwrap();
    store
        .record_usage(&[delta(&key, 2, Timestamp::from_millis(h0.as_millis() + 10))])
        .await
        .unwrap();
    store.record_usage(&[delta(&key, 4, h1)]).await.unwrap();
    let hours = store.hourly_usage(&key.id, h0).await.unwrap();
    assert_eq!(
        hours,
        vec![
            HourCount {
                start: h0,
                count: 5
            },
            HourCount {
                start: h1,
                count: 4
            }
        ]
    );
    assert_eq!(
        store
            .find(&user, &key.id)
            .await
            .unwrap()
            .unwrap()
            .usage_count,
        9
    );
    assert_eq!(store.hourly_usage(&key.id, h1).await.unwrap().len(), 1);
    assert_eq!(
        store.sweep_usage_hours(h1).await.unwrap(),
        2,
        "both keys' first hour"
    );
    assert_eq!(store.hourly_usage(&key.id, h0).await.unwrap().len(), 1);
}
