//! Paged lists: every item exactly once, newest first, one page at a time, filters and cursors.

use keys_domain::api_key::{ApiKey, KeyLimits};
use keys_domain::ports::{KeyListQuery, StateChange};
use keys_domain::{
    GrantAmount, KeyId, KeyState, KeyStatus, LedgerCursor, ListError, Page, PageLimit, PageRequest,
    Timestamp, UserId,
};

use super::{Store, T0, all_keys, document, new_key, new_user};

/// Room for more than one page of live keys.
const MANY: KeyLimits = KeyLimits {
    max_live_keys: 1000,
};

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + ms)
}

fn limit(n: u64) -> PageLimit {
    PageLimit::new(n).unwrap()
}

async fn insert_many(store: &impl Store, user: &UserId, n: i64) -> Vec<ApiKey> {
    let mut keys = Vec::new();
    for i in 0..n {
        // Three keys per instant, so ties on created_at are ordered by id.
        let (key, _) = new_key(user, &format!("k{i}"), at(i / 3));
        keys.push(store.insert(key, MANY, at(i / 3)).await.unwrap());
    }
    keys
}

/// List order: created_at descending, then id descending.
fn newest_first(mut keys: Vec<ApiKey>) -> Vec<KeyId> {
    keys.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    keys.into_iter().map(|k| k.id).collect()
}

/// Every page of `status` keys, `per_page` at a time, as of `now`.
async fn walk_keys(
    store: &impl Store,
    user: &UserId,
    status: Option<KeyStatus>,
    per_page: u64,
    now: Timestamp,
) -> Vec<Page<ApiKey>> {
    let mut pages: Vec<Page<ApiKey>> = Vec::new();
    loop {
        let after = pages.last().map(|p| p.items.last().unwrap().id.clone());
        let query = KeyListQuery {
            page: PageRequest {
                limit: limit(per_page),
                after,
            },
            status,
        };
        let page = store.list(user, &query, now).await.unwrap();
        assert!(page.items.len() <= usize::try_from(per_page).unwrap());
        let more = page.has_more;
        if !more && page.items.is_empty() && !pages.is_empty() {
            panic!("has_more was true but the next page is empty");
        }
        pages.push(page);
        if !more {
            return pages;
        }
    }
}

fn ids(pages: &[Page<ApiKey>]) -> Vec<KeyId> {
    pages
        .iter()
        .flat_map(|p| p.items.iter().map(|k| k.id.clone()))
        .collect()
}

pub async fn key_pages_hold_every_key_once_newest_first(store: impl Store) {
    let user = new_user(&store, 0).await;
    let other = new_user(&store, 0).await;
    let keys = insert_many(&store, &user, 45).await;
    insert_many(&store, &other, 4).await;
    let expected = newest_first(keys);

    let pages = walk_keys(&store, &user, None, 7, at(100)).await;
    assert_eq!(ids(&pages), expected);
    assert_eq!(pages.len(), 7, "45 keys at 7 a page");
    assert!(pages[..6].iter().all(|p| p.has_more && p.items.len() == 7));
    assert!(!pages[6].has_more);
    assert_eq!(pages[6].items.len(), 3);

    // Exactly one full page: no more.
    let exact = walk_keys(&store, &user, None, 45, at(100)).await;
    assert_eq!(exact.len(), 1);
    assert!(!exact[0].has_more);
    // The default page is the newest 20.
    let first = store
        .list(
            &user,
            &KeyListQuery {
                page: PageRequest::first(PageLimit::DEFAULT),
                status: None,
            },
            at(100),
        )
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|k| k.id.clone()).collect::<Vec<_>>(),
        expected[..20]
    );
    assert!(first.has_more);
}

pub async fn key_pages_filter_by_status_as_of_now(store: impl Store) {
    let user = new_user(&store, 0).await;
    let keys = insert_many(&store, &user, 12).await;
    let now = at(1000);
    // 0..4 stay active; 4..7 expire after `now`; 7..9 expired before `now`; 9..12 revoked.
    for (i, key) in keys.iter().enumerate() {
        let to = match i {
            0..4 => continue,
            4..7 => KeyState::Expiring {
                revokes_at: at(2000),
            },
            7..9 => KeyState::Expiring {
                revokes_at: at(500),
            },
            _ => KeyState::Revoked { revoked_at: at(10) },
        };
        let stored = store
            .transition(&user, &key.id, StateChange::new(KeyState::Active, to))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.state, to);
    }
    let pick = |range: std::ops::Range<usize>| newest_first(keys[range].to_vec());
    for (status, want) in [
        (KeyStatus::Active, pick(0..4)),
        (KeyStatus::Expiring, pick(4..7)),
        (KeyStatus::Revoked, pick(7..12)),
    ] {
        let pages = walk_keys(&store, &user, Some(status), 2, now).await;
        assert_eq!(ids(&pages), want, "{status:?}");
        for p in &pages {
            for k in &p.items {
                assert_eq!(k.state.status(now), status);
            }
        }
    }
    // A cursor may name a key of another status: it is only a position.
    let after_revoked = KeyListQuery {
        page: PageRequest {
            limit: limit(100),
            after: Some(keys[10].id.clone()),
        },
        status: Some(KeyStatus::Active),
    };
    let page = store.list(&user, &after_revoked, now).await.unwrap();
    let older_active: Vec<KeyId> = pick(0..4)
        .into_iter()
        .filter(|id| {
            let k = keys.iter().find(|k| &k.id == id).unwrap();
            (k.created_at, &k.id) < (keys[10].created_at, &keys[10].id)
        })
        .collect();
    assert_eq!(
        page.items.into_iter().map(|k| k.id).collect::<Vec<_>>(),
        older_active
    );
}

pub async fn an_unknown_or_foreign_cursor_is_refused(store: impl Store) {
    let user = new_user(&store, 10).await;
    let other = new_user(&store, 10).await;
    let theirs = insert_many(&store, &other, 1).await.remove(0);
    insert_many(&store, &user, 2).await;
    for after in [theirs.id.clone(), KeyId::new("key_nope")] {
        let query = KeyListQuery {
            page: PageRequest {
                limit: limit(5),
                after: Some(after),
            },
            status: None,
        };
        assert_eq!(
            store.list(&user, &query, T0).await,
            Err(ListError::UnknownCursor)
        );
    }
    let their_doc = document(&other, at(1));
    super::render_paid(&store, their_doc.clone()).await;
    for after in [their_doc.id, keys_domain::DocumentId::new("doc_nope")] {
        let page = PageRequest {
            limit: limit(5),
            after: Some(after),
        };
        assert_eq!(
            store.list_documents(&user, &page).await,
            Err(ListError::UnknownCursor)
        );
    }
    assert_eq!(all_keys(&store, &user).await.len(), 2);
}

pub async fn document_pages_hold_every_document_once_without_content(store: impl Store) {
    let user = new_user(&store, 100).await;
    let other = new_user(&store, 100).await;
    let mut docs = Vec::new();
    for i in 0..23 {
        let d = document(&user, at(i / 2));
        super::render_paid(&store, d.clone()).await;
        docs.push(d);
    }
    super::render_paid(&store, document(&other, at(5))).await;
    // Newest first: the order the ledger recorded them in, latest first, also between two
    // documents of the same millisecond.
    docs.reverse();
    let expected: Vec<_> = docs.iter().map(super::summary).collect();

    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_documents(
                &user,
                &PageRequest {
                    limit: limit(5),
                    after,
                },
            )
            .await
            .unwrap();
        pages += 1;
        after = page.items.last().map(|d| d.id.clone());
        seen.extend(page.items);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, 5, "23 documents at 5 a page");
    assert_eq!(seen, expected);
}

pub async fn ledger_pages_hold_every_entry_once_newest_first(store: impl Store) {
    let user = new_user(&store, 10).await;
    let other = new_user(&store, 10).await;
    for i in 0..6 {
        store
            .grant(
                &user,
                GrantAmount::new(i + 1).unwrap(),
                at(i64::try_from(i).unwrap()),
            )
            .await
            .unwrap();
        super::render_paid(&store, document(&user, at(10))).await;
        store
            .grant(&other, GrantAmount::new(1).unwrap(), at(0))
            .await
            .unwrap();
    }
    let mut expected = super::assert_ledger_matches(&store, &user).await;
    expected.reverse();
    assert_eq!(expected.len(), 13);

    let mut seen = Vec::new();
    let mut cursors: Vec<LedgerCursor> = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .ledger_page(
                &user,
                PageRequest {
                    limit: limit(4),
                    after,
                },
            )
            .await
            .unwrap();
        after = page.items.last().map(|e| e.cursor);
        for e in page.items {
            cursors.push(e.cursor);
            seen.push(e.entry);
        }
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen, expected);
    assert!(cursors.windows(2).all(|w| w[0] > w[1]), "newest first");
    // A cursor past the end gives an empty last page.
    let past_end = store
        .ledger_page(
            &user,
            PageRequest {
                limit: limit(4),
                after: cursors.last().copied(),
            },
        )
        .await
        .unwrap();
    assert!(past_end.items.is_empty() && !past_end.has_more);
    // An unknown user simply has no entries.
    let none = store
        .ledger_page(&UserId::new("usr_nobody"), PageRequest::first(limit(4)))
        .await
        .unwrap();
    assert!(none.items.is_empty() && !none.has_more);
}
