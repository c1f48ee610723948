//! The leak signals of a flush, with mocked stores: which candidates become signals, and how
//! often the store is asked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use keys_domain::credits::Credits;
use keys_domain::key_client::{ClientNetwork, ClientUse};
use keys_domain::key_signal::SignalPolicy;
use keys_domain::ports::{
    MockAccountStore, MockKeyClientStore, MockKeyStore, MockUsageHistory, User,
};
use keys_domain::usage::UsageDelta;
use keys_domain::use_cases::KeySignals;
use keys_domain::{ApiKey, EventDetail, KeyState};

use crate::support::{SeqRandom, T0, clock_at, email, secs, stored_key, user};

fn client(octet: u8, browser: bool) -> ClientUse {
    ClientUse {
        network: ClientNetwork::of([198, 51, octet, 1].into()),
        user_agent: "curl/8.5.0".into(),
        requests: 1,
        first_seen: T0,
        last_seen: T0,
        browser,
    }
}

fn delta(key: &ApiKey, clients: Vec<ClientUse>) -> UsageDelta {
    UsageDelta {
        key_id: key.id.clone(),
        user_id: key.user_id.clone(),
        count: 1,
        last_used_at: T0,
        clients,
    }
}

/// Signals for `key`, whose store remembers `seen` networks; counts the raises.
fn signals(key: &ApiKey, seen: Vec<ClientNetwork>, raises: Arc<AtomicUsize>) -> KeySignals {
    let mut keys = MockKeyStore::new();
    let found = key.clone();
    keys.expect_find()
        .returning(move |_, _| Ok(Some(found.clone())));
    let mut clients = MockKeyClientStore::new();
    clients
        .expect_networks_seen()
        .times(1)
        .returning(move |keys, _| {
            Ok(keys
                .iter()
                .filter(|_| !seen.is_empty())
                .map(|k| (k.clone(), seen.clone()))
                .collect())
        });
    clients
        .expect_raise_signal()
        .returning(move |_, signal, event, queued, _| {
            let ok = match (&event.detail, signal) {
                (EventDetail::NewNetwork { network, .. }, "new_network") => {
                    network == "198.51.2.0/24" && queued.email.subject.contains("new network")
                }
                (EventDetail::BrowserUse { .. }, "browser_use") => {
                    queued.email.subject.contains("browser")
                }
                _ => false,
            };
            assert!(ok, "{signal}: {event:?}");
            raises.fetch_add(1, Ordering::SeqCst);
            Ok(true)
        });
    let mut accounts = MockAccountStore::new();
    accounts.expect_find_user().returning(|_| {
        Ok(Some(User {
            id: user(),
            email: email(),
            balance: Credits::ZERO,
            created_at: T0,
        }))
    });
    KeySignals::new(
        Arc::new(keys),
        Arc::new(clients),
        Arc::new(accounts),
        Arc::new(MockUsageHistory::new()),
        Arc::new(clock_at(T0)),
        Arc::new(SeqRandom::new(3)),
        SignalPolicy {
            spike_min_requests: 1_000_000,
            ..SignalPolicy::default()
        },
    )
}

fn flush(s: &KeySignals, batch: &[UsageDelta]) -> usize {
    futures_executor::block_on(async {
        let (candidates, errors) = s.before_write(batch).await;
        assert_eq!(errors, 0);
        s.after_write(batch, candidates).await.raised
    })
}

#[test]
fn an_established_key_on_a_new_network_and_a_browser_raise_once_each() {
    // Created two days before T0: established.
    let (mut key, _) = stored_key(&user(), "ci", KeyState::Active, 1);
    key.created_at = T0.minus(secs(2 * 86_400));
    let raises = Arc::new(AtomicUsize::new(0));
    let s = signals(
        &key,
        vec![ClientNetwork::of([198, 51, 1, 1].into())],
        raises.clone(),
    );
    let batch = [delta(&key, vec![client(1, false), client(2, true)])];
    assert_eq!(flush(&s, &batch), 2);
    // Again at once: this instance knows both networks now (the store is asked once, see the
    // mock) and both signals are quiet for the day.
    assert_eq!(flush(&s, &batch), 0);
    assert_eq!(raises.load(Ordering::SeqCst), 2);
}

#[test]
fn a_young_key_or_its_first_network_raises_no_new_network() {
    let (young, _) = stored_key(&user(), "new", KeyState::Active, 2);
    let mut young = young;
    young.created_at = T0.minus(secs(60));
    let raises = Arc::new(AtomicUsize::new(0));
    let s = signals(
        &young,
        vec![ClientNetwork::of([198, 51, 1, 1].into())],
        raises.clone(),
    );
    assert_eq!(flush(&s, &[delta(&young, vec![client(2, false)])]), 0);

    let (mut old, _) = stored_key(&user(), "old", KeyState::Active, 3);
    old.created_at = T0.minus(secs(10 * 86_400));
    let s = signals(&old, vec![], raises.clone());
    assert_eq!(flush(&s, &[delta(&old, vec![client(2, false)])]), 0);
    assert_eq!(raises.load(Ordering::SeqCst), 0);
}
