//! The audit trail and revocation reasons: written in the transactions of the changes they
//! record, read a page at a time, newest first.

use std::time::Duration;

use keys_domain::api_key::KeyLimits;
use keys_domain::ports::{QueuedWithChange, Rotation, StateChange};
use keys_domain::random::OsRandom;
use keys_domain::{
    Actor, AlertId, EventCursor, EventDetail, KeyEvent, KeyEventKind, KeyId, KeyState, PageLimit,
    PageRequest, PositionedEvent, RevocationReason,
};

use super::{Store, T0, alert_event, at, email, insert, new_key, new_user};

async fn trail(store: &impl Store, key: &KeyId) -> Vec<PositionedEvent> {
    store
        .events(key, &PageRequest::first(PageLimit::MAX))
        .await
        .unwrap()
        .items
}

fn kinds(events: &[PositionedEvent]) -> Vec<KeyEventKind> {
    events.iter().map(|e| e.event.kind()).collect()
}

fn leak_change(key: &KeyId, n: usize) -> StateChange {
    let now = at(10);
    let event = |detail| KeyEvent {
        key_id: key.clone(),
        actor: Actor::GithubSecretScanning,
        at: now,
        detail,
    };
    StateChange {
        expected: KeyState::Active,
        to: KeyState::Revoked { revoked_at: now },
        reason: Some(RevocationReason::Leaked),
        events: vec![
            event(EventDetail::leak_reported(
                "https://github.com/o/r",
                "content",
            )),
            event(EventDetail::Revoked {
                reason: RevocationReason::Leaked,
            }),
        ],
        email: Some(QueuedWithChange {
            id: AlertId::generate(&OsRandom),
            email: email(n),
        }),
    }
}

pub async fn creation_rotation_and_revocation_are_recorded_newest_first(store: impl Store) {
    let user = new_user(&store, 0).await;
    let old = insert(&store, &user, "ci", T0).await;
    assert_eq!(old.revocation_reason, None);
    let created = trail(&store, &old.id).await;
    assert_eq!(kinds(&created), [KeyEventKind::Created]);
    assert_eq!(created[0].event.actor, Actor::User);
    assert_eq!(
        created[0].event.detail,
        EventDetail::Created {
            name: "ci".into(),
            rotated_from: None
        }
    );

    // Rotation with a grace period: the old key is scheduled, the new one created from it.
    let (new, _) = new_key(&user, "ci-2", at(5));
    let new_id = new.id.clone();
    let revokes_at = at(5).plus(Duration::from_secs(60));
    store
        .rotate(
            &user,
            Rotation {
                old_id: old.id.clone(),
                old_hash: old.hash,
                expected: KeyState::Active,
                old_to: KeyState::Expiring { revokes_at },
                new_key: new,
                limits: KeyLimits::default(),
                now: at(5),
            },
        )
        .await
        .unwrap();
    let old_trail = trail(&store, &old.id).await;
    assert_eq!(
        kinds(&old_trail),
        [
            KeyEventKind::RevocationScheduled,
            KeyEventKind::Rotated,
            KeyEventKind::Created
        ]
    );
    assert_eq!(
        old_trail[0].event.detail,
        EventDetail::RevocationScheduled { revokes_at }
    );
    assert_eq!(
        old_trail[1].event.detail,
        EventDetail::Rotated {
            replaced_by: new_id.clone()
        }
    );
    let new_trail = trail(&store, &new_id).await;
    assert_eq!(
        new_trail[0].event.detail,
        EventDetail::Created {
            name: "ci-2".into(),
            rotated_from: Some(old.id.clone())
        }
    );
    let stored = store.find(&user, &old.id).await.unwrap().unwrap();
    assert_eq!(stored.revocation_reason, Some(RevocationReason::Rotation));

    // Pages: one at a time, each cursor leading to the next older event.
    let one = PageLimit::new(1).unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .events(&old.id, &PageRequest { limit: one, after })
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|e| e.event.kind()));
        after = page.items.last().map(|e| e.cursor);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen, kinds(&old_trail));
    let past_end = store
        .events(
            &old.id,
            &PageRequest {
                limit: one,
                after: Some(EventCursor::from_stored(1)),
            },
        )
        .await
        .unwrap();
    assert!(past_end.items.is_empty() && !past_end.has_more);
}

pub async fn a_revocation_writes_reason_events_and_email_once(store: impl Store) {
    let user = new_user(&store, 0).await;
    let key = insert(&store, &user, "ci", T0).await;
    // Many reporters at once: the compare-and-set lets one write.
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let (store, user, id) = (store.clone(), user.clone(), key.id.clone());
            tokio::spawn(async move {
                store
                    .transition(&user, &id, leak_change(&id, n))
                    .await
                    .unwrap()
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        let stored = t.await.unwrap();
        assert!(matches!(stored.state, KeyState::Revoked { .. }));
        assert_eq!(stored.revocation_reason, Some(RevocationReason::Leaked));
    }
    let events = trail(&store, &key.id).await;
    assert_eq!(
        kinds(&events),
        [
            KeyEventKind::Revoked,
            KeyEventKind::LeakReported,
            KeyEventKind::Created
        ]
    );
    let queued = store.claim_due(at(100), at(200), 100).await.unwrap();
    assert_eq!(queued.len(), 1, "one email");
    assert_eq!(queued[0].key_id, Some(key.id.clone()));
    store.mark_sent(&queued[0].id, at(150)).await.unwrap();

    // A change that loses writes nothing.
    let again = store
        .transition(&user, &key.id, leak_change(&key.id, 99))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.revocation_reason, Some(RevocationReason::Leaked));
    assert_eq!(trail(&store, &key.id).await.len(), 3);
    assert!(
        store
            .claim_due(at(300), at(400), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_usage_alert_is_recorded_only_when_enqueued(store: impl Store) {
    let user = new_user(&store, 0).await;
    let key = insert(&store, &user, "ci", T0).await;
    for _ in 0..3 {
        store
            .enqueue(
                AlertId::generate(&OsRandom),
                &key.id,
                email(1),
                alert_event(&key.id),
                T0,
            )
            .await
            .unwrap();
    }
    let events = trail(&store, &key.id).await;
    assert_eq!(
        kinds(&events),
        [KeyEventKind::HighUsageAlert, KeyEventKind::Created]
    );
    assert_eq!(events[0].event.actor, Actor::System);
}

pub async fn an_ended_grace_period_is_recorded_when_settled(store: impl Store) {
    let user = new_user(&store, 0).await;
    let old = insert(&store, &user, "ci", T0).await;
    let revokes_at = at(60_000);
    store
        .transition(
            &user,
            &old.id,
            StateChange {
                reason: Some(RevocationReason::Rotation),
                ..StateChange::new(KeyState::Active, KeyState::Expiring { revokes_at })
            },
        )
        .await
        .unwrap();
    // Any later insert for the user settles the ended grace period.
    insert(&store, &user, "other", at(120_000)).await;
    let events = trail(&store, &old.id).await;
    assert_eq!(events[0].event.actor, Actor::System);
    assert_eq!(events[0].event.at, revokes_at);
    assert_eq!(
        events[0].event.detail,
        EventDetail::Revoked {
            reason: RevocationReason::Rotation
        }
    );
}
