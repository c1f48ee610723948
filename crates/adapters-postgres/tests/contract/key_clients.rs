//! Clients per key in the store: written with the usage flush, listed most recently seen first,
//! at most 50 per key, swept after 30 days, and signals raised once per 24 h.

use keys_domain::key_client::{ClientNetwork, ClientUse, MAX_CLIENTS_PER_KEY};
use keys_domain::ports::QueuedWithChange;
use keys_domain::random::OsRandom;
use keys_domain::usage::UsageDelta;
use keys_domain::{Actor, AlertId, ApiKey, EventDetail, KeyEvent, KeyId, PageLimit, PageRequest};

use super::{Store, T0, at, email, insert, new_user};

fn client(octet: u8, agent: &str, seen_ms: i64, browser: bool) -> ClientUse {
    ClientUse {
        network: ClientNetwork::of([198, 51, octet, 7].into()),
        user_agent: agent.into(),
        requests: 2,
        first_seen: at(seen_ms),
        last_seen: at(seen_ms),
        browser,
    }
}

fn delta(key: &ApiKey, clients: Vec<ClientUse>) -> UsageDelta {
    UsageDelta {
        key_id: key.id.clone(),
        user_id: key.user_id.clone(),
        count: 2 * clients.len() as u64,
        last_used_at: clients.iter().map(|c| c.last_seen).max().unwrap_or(T0),
        clients,
    }
}

pub async fn clients_are_written_with_usage_and_listed_most_recent_first(store: impl Store) {
    let user = new_user(&store, 0).await;
    let key = insert(&store, &user, "k", T0).await;
    store
        .record_usage(&[delta(&key, vec![client(1, "curl/8.5.0", 10, false)])])
        .await
        .unwrap();
    store
        .record_usage(&[delta(
            &key,
            vec![client(1, "curl/8.5.0", 30, true), client(2, "-", 20, false)],
        )])
        .await
        .unwrap();
    let page = store
        .clients(&key.id, &PageRequest::first(PageLimit::MAX))
        .await
        .unwrap();
    let got: Vec<(String, &str, u64, bool)> = page
        .items
        .iter()
        .map(|l| {
            let c = &l.client;
            (
                c.network.to_string(),
                c.user_agent.as_str(),
                c.requests,
                c.browser,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("198.51.1.0/24".into(), "curl/8.5.0", 4, true),
            ("198.51.2.0/24".into(), "-", 2, false),
        ]
    );
    let first = &page.items[0].client;
    assert_eq!((first.first_seen, first.last_seen), (at(10), at(30)));
    assert_eq!(key.usage_count, 0);
    let stored = store.find(&user, &key.id).await.unwrap().unwrap();
    assert_eq!(stored.usage_count, 6, "counted in the same flush");
    let ids = [key.id.clone(), KeyId::new("key_never_used")];
    let seen = store.networks_seen(&ids, at(15)).await.unwrap();
    assert_eq!(seen.len(), 1, "only the key that was seen: {seen:?}");
    assert_eq!(seen[&key.id].len(), 2);
    assert!(store.networks_seen(&ids, at(31)).await.unwrap().is_empty());

    // Paged after a position.
    let one = PageRequest {
        limit: PageLimit::new(1).unwrap(),
        after: None,
    };
    let p1 = store.clients(&key.id, &one).await.unwrap();
    assert!(p1.has_more);
    let p2 = store
        .clients(
            &key.id,
            &PageRequest {
                after: Some(p1.items[0].position),
                ..one
            },
        )
        .await
        .unwrap();
    assert_eq!(p2.items[0].client.network.to_string(), "198.51.2.0/24");
    assert!(!p2.has_more);
}

pub async fn at_most_50_clients_per_key_and_old_ones_are_swept(store: impl Store) {
    let user = new_user(&store, 0).await;
    let key = insert(&store, &user, "k", T0).await;
    let many: Vec<ClientUse> = (0..60_u8)
        .map(|i| client(i, "node", i64::from(i), false))
        .collect();
    store.record_usage(&[delta(&key, many)]).await.unwrap();
    let page = store
        .clients(&key.id, &PageRequest::first(PageLimit::MAX))
        .await
        .unwrap();
    assert_eq!(page.items.len(), MAX_CLIENTS_PER_KEY);
    assert_eq!(
        page.items[0].client.last_seen,
        at(59),
        "the least recently seen went"
    );
    assert_eq!(store.sweep_clients(at(30)).await.unwrap(), 20);
    let left = store
        .clients(&key.id, &PageRequest::first(PageLimit::MAX))
        .await
        .unwrap();
    assert_eq!(left.items.len(), 30);
}

pub async fn a_signal_is_raised_once_per_key_per_24_h(store: impl Store) {
    let user = new_user(&store, 0).await;
    let key = insert(&store, &user, "k", T0).await;
    let raise = |ms: i64| {
        let (store, key) = (store.clone(), key.id.clone());
        async move {
            let event = KeyEvent {
                key_id: key.clone(),
                actor: Actor::System,
                at: at(ms),
                detail: EventDetail::BrowserUse {
                    network: "198.51.1.0/24".into(),
                    user_agent: "-".into(),
                    requests: 1,
                },
            };
            let queued = QueuedWithChange {
                id: AlertId::generate(&OsRandom),
                email: email(1),
            };
            store
                .raise_signal(&key, "browser_use", event, queued, at(ms))
                .await
                .unwrap()
        }
    };
    let (a, b) = tokio::join!(raise(0), raise(0));
    assert!(a ^ b, "one of two concurrent raises wins");
    assert!(!raise(23 * 3_600_000).await);
    assert!(raise(24 * 3_600_000).await);
    let events = store
        .events(&key.id, &PageRequest::first(PageLimit::MAX))
        .await
        .unwrap();
    let raised = events
        .items
        .iter()
        .filter(|e| matches!(e.event.detail, EventDetail::BrowserUse { .. }))
        .count();
    assert_eq!(raised, 2);
}
