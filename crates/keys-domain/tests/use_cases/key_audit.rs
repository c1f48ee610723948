//! `KeyAuditTrail`: the owner's key only; an ended grace period shows as a `revoked` event.

use std::sync::Arc;

use keys_domain::ports::{MockKeyEventLog, MockKeyStore};
use keys_domain::use_cases::{KeyAuditTrail, KeyEventsError};
use keys_domain::{
    Actor, EventCursor, EventDetail, KeyEvent, KeyState, Page, PageLimit, PageRequest,
    PositionedEvent, RevocationReason,
};

use crate::support::{T0, clock_at, other_user, secs, stored_key, user};

fn stored(seq: i64, detail: EventDetail, key: &keys_domain::ApiKey) -> PositionedEvent {
    PositionedEvent {
        cursor: EventCursor::from_stored(seq),
        event: KeyEvent {
            key_id: key.id.clone(),
            actor: Actor::User,
            at: T0.minus(secs(100)),
            detail,
        },
    }
}

#[test]
fn another_user_s_key_is_not_found_and_its_trail_never_read() {
    let (key, _) = stored_key(&user(), "ci", KeyState::Active, 1);
    let mut keys = MockKeyStore::new();
    keys.expect_find().returning(|_, _| Ok(None));
    let mut log = MockKeyEventLog::new();
    log.expect_events().never();
    let trail = KeyAuditTrail {
        keys: Arc::new(keys),
        log: Arc::new(log),
        clock: Arc::new(clock_at(T0)),
    };
    let out = futures_executor::block_on(trail.events(
        &other_user(),
        &key.id,
        &PageRequest::first(PageLimit::DEFAULT),
    ));
    assert_eq!(out, Err(KeyEventsError::NotFound));
}

#[test]
fn an_ended_grace_period_reads_as_revoked_by_the_system_on_the_first_page_only() {
    let revokes_at = T0.minus(secs(10));
    let (key, _) = stored_key(&user(), "ci", KeyState::Expiring { revokes_at }, 2);
    let events = vec![
        stored(7, EventDetail::RevocationScheduled { revokes_at }, &key),
        stored(
            3,
            EventDetail::Created {
                name: "ci".into(),
                rotated_from: None,
            },
            &key,
        ),
    ];
    let mut keys = MockKeyStore::new();
    let found = key.clone();
    keys.expect_find()
        .returning(move |_, _| Ok(Some(found.clone())));
    let mut log = MockKeyEventLog::new();
    let page = events.clone();
    log.expect_events().returning(move |_, req| {
        Ok(Page {
            items: page
                .iter()
                .filter(|e| req.after.is_none_or(|a| e.cursor < a))
                .take(req.limit.get())
                .cloned()
                .collect(),
            has_more: false,
        })
    });
    let trail = KeyAuditTrail {
        keys: Arc::new(keys),
        log: Arc::new(log),
        clock: Arc::new(clock_at(T0)),
    };
    let two = PageLimit::new(2).unwrap();
    let first =
        futures_executor::block_on(trail.events(&user(), &key.id, &PageRequest::first(two)))
            .unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(first.has_more);
    let derived = &first.items[0];
    assert_eq!(derived.event.actor, Actor::System);
    assert_eq!(derived.event.at, revokes_at);
    assert_eq!(
        derived.event.detail,
        EventDetail::Revoked {
            reason: RevocationReason::Rotation
        }
    );
    assert!(derived.cursor > EventCursor::from_stored(7));
    // The next page continues after the last item shown, with nothing derived again.
    let next = futures_executor::block_on(trail.events(
        &user(),
        &key.id,
        &PageRequest {
            limit: two,
            after: Some(first.items[1].cursor),
        },
    ))
    .unwrap();
    assert_eq!(next.items, events[1..]);
}
